//! `nas-runner score` end to end on the `toy` space with synthetic data.
mod bin_util;

fn score(args: &[&str]) -> std::process::Output {
    bin_util::run(bin_util::nas_runner(&["score"]).args(args))
}

#[test]
fn one_line_per_arch_in_order_with_errors_recorded() {
    let dir = tempfile::tempdir().unwrap();
    let archs = dir.path().join("archs.txt");
    std::fs::write(&archs, "conv:4\n# a comment\n\nskip:4\nbogus\nlinear:8\n").unwrap();
    let out = dir.path().join("scores.jsonl");
    let o = score(&[
        "--space",
        "toy",
        "--archs",
        archs.to_str().unwrap(),
        "--metrics",
        "params,synflow,angle_loss,naswot",
        "--data",
        "random",
        "--batch-size",
        "20",
        "--seed",
        "1",
        "--device",
        "cpu",
        "--option",
        "iterations=5",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(
        o.status.success(),
        "stderr: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    let text = std::fs::read_to_string(&out).unwrap();
    let lines: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).expect("JSON line"))
        .collect();
    let archs: Vec<&str> = lines.iter().map(|l| l["arch"].as_str().unwrap()).collect();
    assert_eq!(archs, ["conv:4", "skip:4", "bogus", "linear:8"]);

    let conv = &lines[0];
    // stem 9*3*4 + 8, cell 9*16 + 8, classifier 4*10 + 10.
    assert_eq!(conv["metrics"]["params"], 318.0);
    assert!(conv["metrics"]["synflow"].as_f64().unwrap() > 0.0);
    assert!(conv["metrics"]["naswot"].as_f64().unwrap().is_finite());
    assert!(conv["metrics"]["angle_loss"]["cos"].is_number());
    assert!(conv["metrics"]["angle_loss"]["degenerate"].is_boolean());
    for m in ["params", "synflow", "angle_loss", "naswot"] {
        assert!(conv["seconds"][m].as_f64().unwrap() >= 0.0, "{m}");
    }
    assert!(conv.get("errors").is_none());

    let skip = &lines[1]["metrics"]["angle_loss"];
    assert_eq!(skip["degenerate"], true);
    assert_eq!(skip["cos"], 0.0);
    assert_eq!(skip["loss"], 100.0);

    assert!(lines[2]["errors"]["arch"]
        .as_str()
        .unwrap()
        .contains("bogus"));
    assert!(lines[3]["metrics"]["params"].is_number());
}

#[test]
fn same_seed_same_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let archs = dir.path().join("archs.txt");
    std::fs::write(&archs, "conv:3\n").unwrap();
    let run = || {
        let o = score(&[
            "--space",
            "toy",
            "--archs",
            archs.to_str().unwrap(),
            "--metrics",
            "grad_norm,jacob_cov,angle_loss",
            "--data",
            "random",
            "--batch-size",
            "10",
            "--device",
            "cpu",
            "--option",
            "iterations=3",
        ]);
        assert!(
            o.status.success(),
            "stderr: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
        v["metrics"].to_string()
    };
    assert_eq!(run(), run());
}

#[test]
fn bad_metric_name_exits_2_listing_valid_names() {
    let dir = tempfile::tempdir().unwrap();
    let archs = dir.path().join("archs.txt");
    std::fs::write(&archs, "conv:4\n").unwrap();
    let o = score(&[
        "--space",
        "toy",
        "--archs",
        archs.to_str().unwrap(),
        "--metrics",
        "params,snipp",
        "--data",
        "random",
    ]);
    assert_eq!(o.status.code(), Some(2));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("snipp") && err.contains("naswot") && err.contains("angle_loss"),
        "{err}"
    );
    assert!(o.stdout.is_empty());
}

#[test]
fn unreadable_inputs_exit_2() {
    let o = score(&[
        "--space",
        "toy",
        "--archs",
        "/nonexistent/archs.txt",
        "--metrics",
        "params",
        "--data",
        "random",
    ]);
    assert_eq!(o.status.code(), Some(2));
    let dir = tempfile::tempdir().unwrap();
    let archs = dir.path().join("archs.txt");
    std::fs::write(&archs, "conv:4\n").unwrap();
    let o = score(&[
        "--space",
        "toy",
        "--archs",
        archs.to_str().unwrap(),
        "--metrics",
        "naswot",
        "--data",
        dir.path().join("nothing-here").to_str().unwrap(),
    ]);
    assert_eq!(
        o.status.code(),
        Some(2),
        "stderr: {}",
        String::from_utf8_lossy(&o.stderr)
    );
}

/// A stopped run (one complete record, then half a line) resumes where it stopped and ends with
/// the records an uninterrupted run writes; another run's output is refused, not appended to.
#[test]
fn resume_appends_after_the_complete_records() {
    let dir = tempfile::tempdir().unwrap();
    let archs = dir.path().join("archs.txt");
    std::fs::write(&archs, "conv:3\nlinear:4\nconv:5\n").unwrap();
    let run = |out: &std::path::Path, resume: bool| {
        let mut args = vec![
            "--space",
            "toy",
            "--archs",
            archs.to_str().unwrap(),
            "--metrics",
            "params,grad_norm",
            "--data",
            "random",
            "--batch-size",
            "10",
            "--device",
            "cpu",
            "--out",
            out.to_str().unwrap(),
        ];
        if resume {
            args.push("--resume");
        }
        score(&args)
    };
    let full = dir.path().join("full.jsonl");
    assert!(run(&full, false).status.success());
    let full_text = std::fs::read_to_string(&full).unwrap();
    let strip = |t: &str| -> Vec<serde_json::Value> {
        t.lines()
            .map(|l| {
                let mut v: serde_json::Value = serde_json::from_str(l).unwrap();
                v.as_object_mut().unwrap().remove("seconds");
                v
            })
            .collect()
    };

    let stopped = dir.path().join("stopped.jsonl");
    let first_end = full_text.find('\n').unwrap() + 1;
    let partial = &full_text[..first_end + 20];
    std::fs::write(&stopped, partial).unwrap();
    let o = run(&stopped, true);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(String::from_utf8_lossy(&o.stderr).contains("resuming after 1 of 3"));
    let resumed = std::fs::read_to_string(&stopped).unwrap();
    // The kept record is byte for byte the stopped run's; the rest are scored again.
    assert!(resumed.starts_with(&full_text[..first_end]));
    assert_eq!(strip(&resumed), strip(&full_text));

    let other = dir.path().join("other.jsonl");
    std::fs::write(&other, "{\"arch\":\"linear:4\",\"metrics\":{}}\n").unwrap();
    let o = run(&other, true);
    assert_eq!(o.status.code(), Some(2));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("--resume") && err.contains("conv:3"), "{err}");
    assert_eq!(
        std::fs::read_to_string(&other).unwrap(),
        "{\"arch\":\"linear:4\",\"metrics\":{}}\n",
        "refused output left as it was"
    );
}

//! `nas-runner train-bench` and `decode-bench`, run as processes: JSON lines on stdout, exit
//! code 2 naming the bad net or path.
mod bin_util;
mod train_util;

use serde_json::Value;
use std::process::Output;

const ARCH: &str =
    "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_1x1~1|+|skip_connect~0|nor_conv_3x3~1|avg_pool_3x3~2|";

fn runner(args: &[&str]) -> Output {
    bin_util::run(&mut bin_util::nas_runner(args))
}

fn lines(out: &Output) -> Vec<Value> {
    bin_util::assert_ok(out);
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{l}: {e}")))
        .collect()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn train_bench_prints_one_line_per_net() {
    let net = format!("nb201:{ARCH}");
    let out = runner(&[
        "train-bench",
        "--nets",
        &net,
        "--batch",
        "4",
        "--steps",
        "1",
        "--warmup",
        "0",
        "--threads",
        "1",
    ]);
    let v = lines(&out);
    assert_eq!(v.len(), 1, "{v:?}");
    let v = &v[0];
    let inspect = lines(&runner(&["inspect", "--space", "nb201", "--arch", ARCH]));
    assert_eq!(v["net"], net.as_str());
    assert_eq!(v["params"], inspect[0]["params"]);
    assert_eq!(v["batch"], 4);
    assert_eq!(v["steps"], 1);
    assert!(v["seconds"].as_f64().unwrap() >= 0.0, "{v}");
    assert!(v["images_per_s"].as_f64().unwrap() > 0.0, "{v}");
}

#[test]
fn train_bench_rejects_unknown_nets_and_bad_archs() {
    let out = runner(&["train-bench", "--nets", "resnet18", "--steps", "1"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("resnet18"), "{}", stderr(&out));
    assert!(out.stdout.is_empty());
    // A bad architecture after a good one: nothing runs.
    let nets = format!("nb201:{ARCH},nb201:|conv~0|");
    let out = runner(&["train-bench", "--nets", &nets, "--steps", "1"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("nb201:|conv~0|"), "{}", stderr(&out));
    assert!(out.stdout.is_empty());
    let out = runner(&[
        "train-bench",
        "--nets",
        &format!("nb201:{ARCH}"),
        "--batch",
        "0",
    ]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("--batch"), "{}", stderr(&out));
}

#[test]
fn decode_bench_times_each_size() {
    let dir = tempfile::tempdir().unwrap();
    let tar = dir.path().join("three.tar.gz");
    let files: Vec<_> = train_util::cifar_jpegs(1).into_iter().take(3).collect();
    train_util::write_tar_gz(&tar, "./", &files);
    let tar = tar.to_str().unwrap();
    let v = lines(&runner(&[
        "decode-bench",
        "--tar",
        tar,
        "--size",
        "32,48",
        "--repeats",
        "2",
    ]));
    assert_eq!(v.len(), 2, "{v:?}");
    for (line, size) in v.iter().zip([32, 48]) {
        assert_eq!(line["size"], size);
        assert_eq!(line["images"], 3);
        assert!(line["seconds"].as_f64().unwrap() >= 0.0, "{line}");
        assert!(line["images_per_s"].as_f64().unwrap() > 0.0, "{line}");
        assert!(line["read_seconds"].as_f64().unwrap() >= 0.0, "{line}");
    }
    let v = lines(&runner(&[
        "decode-bench",
        "--tar",
        tar,
        "--size",
        "32",
        "--limit",
        "2",
        "--repeats",
        "1",
    ]));
    assert_eq!(v.len(), 1);
    assert_eq!(v[0]["images"], 2);
}

#[test]
fn decode_bench_names_a_missing_tar() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nope.tar.gz");
    let missing = missing.to_str().unwrap();
    let out = runner(&["decode-bench", "--tar", missing]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains(missing), "{}", stderr(&out));
    let out = runner(&["decode-bench", "--tar", missing, "--size", "32,x"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("--size"), "{}", stderr(&out));
}

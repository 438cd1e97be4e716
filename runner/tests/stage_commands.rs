//! The cluster's stage commands as the operator runs them: one `nas-runner <stage> --spec`
//! process per pod, against a real S3 protocol server (s3s + s3s-fs, in-process), on a small
//! cut of the real Fashion-MNIST. Checks the stage contract: artifacts, `_SUCCESS` skipping,
//! termination summaries, exit codes 0/2/1, and that no secret reaches the output.
mod bin_util;
mod stage_util;
mod train_util;

use nas_api::contract::{Outcome, Stage};
use nas_api::records::{Summary, TopK};
use nas_api::resolved::ResolvedSpec;
use nas_runner::store::testing::TEST_SECRET_KEY;
use nas_runner::store::ObjectStore;
use stage_util::*;
#[test]
fn every_stage_runs_as_its_own_process_and_a_rerun_does_no_work_twice() {
    let f = Fixture::new();
    let (spec, resolved) = f.spec("u-1", 6, &|y| y);
    let root = "runs/team-a/tiny/u-1/";

    let s = ok("stage-data", &spec, &[]);
    assert_eq!((s.stage, s.outcome), (Stage::StageData, Outcome::Succeeded));
    assert_eq!(s.values["trainImages"], 400.0);
    let s0 = ok("score", &spec, &["--shard", "0/2"]);
    // The second shard takes its index from the Indexed Job's variable.
    let (out, s1) = stage("score", &spec, &[], &[("JOB_COMPLETION_INDEX", "1")]);
    assert!(out.status.success(), "{s1:?}");
    assert_eq!((s0.index, s1.index), (Some(0), Some(1)));
    assert_eq!(s0.scored.unwrap() + s1.scored.unwrap(), 6);
    let sel = ok("select", &spec, &[]);
    assert_eq!(sel.top_k.len(), 2);
    // Select counts every shard: the operator's count when score pods are gone with their Job.
    assert_eq!(sel.scored, Some(6));
    // Results asked for too early: exit 1, naming how far the search got; nothing written.
    let uri = format!("s3://{BUCKET}/{root}summary.json");
    let early = f.dir.path().join("early");
    let out = results(&f, &uri, &early);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("has not finished: stage train (0 finalists trained)")
            && err.contains("stages done: stage-data, score, select")
            && err.contains("kubectl describe nassearch tiny"),
        "{err}"
    );
    assert!(!early.exists());
    assert!(sel
        .top_k
        .iter()
        .all(|c| c.params.is_some() && c.rank.is_some()));
    let t0 = ok("train", &spec, &["--shard", "0"]);
    let t1 = ok("train", &spec, &["--index", "1"]);
    for t in [&t0, &t1] {
        let acc = t.best.as_ref().and_then(|b| b.val_accuracy).unwrap();
        assert!((0.0..=100.0).contains(&acc), "{t:?}");
    }
    let ev = ok("evaluate", &spec, &[]);
    let best = ev.best.clone().unwrap();
    assert!(best.top1_error.is_some() && best.top5_error.is_some());
    let rep = ok("report", &spec, &[]);
    assert_eq!(
        rep.results_uri.as_deref(),
        Some(format!("s3://{BUCKET}/{root}summary.json").as_str())
    );

    // Every artifact of the layout is in the bucket.
    let bucket = f.bucket();
    let keys = bucket.list(root).unwrap();
    for k in [
        "spec.json",
        "data/train/index.json",
        "data/train/_SUCCESS",
        "data/test/_SUCCESS",
        "candidates.jsonl",
        "score/shard-00000.jsonl",
        "score/shard-00000._SUCCESS",
        "score/shard-00001._SUCCESS",
        "select/ranking.jsonl",
        "select/topk.json",
        "eval/report.json",
        "eval/_SUCCESS",
        "summary.json",
        "candidates.csv",
        "report.md",
        "plots/search-score-vs-params.svg",
        "_SUCCESS",
    ] {
        assert!(
            keys.contains(&format!("{root}{k}")),
            "{k} missing from {keys:?}"
        );
    }
    let topk: TopK = serde_json::from_slice(&get(&bucket, root, "select/topk.json")).unwrap();
    for e in &topk.entries {
        let dir = format!("{root}train/cand-{:06}/", e.index);
        assert!(
            keys.contains(&format!("{dir}metrics.json"))
                && keys.contains(&format!("{dir}_SUCCESS"))
        );
        assert!(
            keys.iter()
                .any(|k| k.starts_with(&format!("{dir}checkpoints/"))),
            "{dir}"
        );
    }
    let summary: Summary = serde_json::from_slice(&get(&bucket, root, "summary.json")).unwrap();
    assert_eq!(
        (summary.candidates, summary.scored, summary.uid.as_str()),
        (6, 6, "u-1")
    );
    assert_eq!(summary.winner.as_ref().map(|w| w.index), best.index);
    let stored: ResolvedSpec = serde_json::from_slice(&get(&bucket, root, "spec.json")).unwrap();
    assert_eq!(stored.spec_hash, resolved.spec_hash);

    // `nas-runner results` fetches what a user opens, and prints the winner.
    let fetched = f.dir.path().join("fetched");
    let out = results(&f, &uri, &fetched);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    let line = String::from_utf8_lossy(&out.stdout);
    assert_eq!(line.lines().count(), 1, "{line}");
    let winner: nas_api::records::Winner = serde_json::from_str(line.trim()).unwrap();
    assert_eq!(Some(&winner), summary.winner.as_ref());
    for k in [
        "summary.json",
        "report.md",
        "candidates.csv",
        "plots/search-score-vs-params.svg",
    ] {
        assert_eq!(
            std::fs::read(fetched.join(k)).unwrap(),
            get(&bucket, root, k),
            "{k}"
        );
    }
    assert!(!err.contains(TEST_SECRET_KEY), "{err}");
    // A URI where no search is: exit 1 saying so; a malformed one: exit 2.
    let out = results(
        &f,
        &format!("s3://{BUCKET}/runs/nowhere/summary.json"),
        &fetched,
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("no search has started here"), "{err}");
    let out = results(&f, "ftp://x/summary.json", &fetched);
    assert_eq!(out.status.code(), Some(2));

    // A retried pod of any stage finds its `_SUCCESS` and does nothing; the bytes stay.
    let kept = [
        "score/shard-00000.jsonl",
        "summary.json",
        "eval/report.json",
    ];
    let snapshot = || -> Vec<Vec<u8>> { kept.iter().map(|k| get(&bucket, root, k)).collect() };
    let before = snapshot();
    for (name, args) in [
        ("stage-data", vec![]),
        ("score", vec!["--shard", "0/2"]),
        ("select", vec![]),
        ("train", vec!["--shard", "1"]),
        ("evaluate", vec![]),
        ("report", vec![]),
    ] {
        let s = ok(name, &spec, &args);
        assert_eq!(s.outcome, Outcome::Skipped, "{name}: {s:?}");
    }
    let reselect = ok("select", &spec, &[]);
    assert_eq!(
        reselect.scored,
        Some(6),
        "a skipped select still counts every shard"
    );
    let rerun = ok("score", &spec, &["--shard", "0"]);
    assert_eq!(
        rerun.scored, s0.scored,
        "a skipped shard still reports its counts"
    );
    assert_eq!(before, snapshot());

    // An index the spec does not have is a configuration error.
    let (out, s) = stage("score", &spec, &["--shard", "0/3"], &[]);
    assert_eq!(out.status.code(), Some(2));
    assert!(s.message.contains("spec.sampling.shards"), "{s:?}");
    let (out, s) = stage("train", &spec, &["--shard", "5"], &[]);
    assert_eq!(out.status.code(), Some(2));
    assert!(s.message.contains("spec.selection.topK"), "{s:?}");
}

#[test]
fn a_score_pod_killed_mid_shard_is_redone_alone_and_matches_a_clean_run() {
    let f = Fixture::new();
    let (spec, _) = f.spec("u-kill", 12, &|y| y);
    let root = "runs/team-a/tiny/u-kill/";
    ok("stage-data", &spec, &[]);
    let first = ok("score", &spec, &["--shard", "0/2"]);
    assert_eq!(first.outcome, Outcome::Succeeded);

    // Kill shard 1 after its first candidate.
    let mut pod = Running::start("score", &spec, &["--shard", "1/2"], &[]);
    pod.wait_for("score: shard 1: 1/");
    pod.kill();
    let bucket = f.bucket();
    assert!(!bucket
        .exists(&format!("{root}score/shard-00001._SUCCESS"))
        .unwrap());
    assert!(!bucket
        .exists(&format!("{root}score/shard-00001.jsonl"))
        .unwrap());

    // The retry: shard 0 is not redone, shard 1 is.
    let again0 = ok("score", &spec, &["--shard", "0/2"]);
    let again1 = ok("score", &spec, &["--shard", "1/2"]);
    assert_eq!(
        (again0.outcome, again1.outcome),
        (Outcome::Skipped, Outcome::Succeeded)
    );
    assert_eq!(again1.scored, Some(6));

    // Same metric values as a search that was never interrupted.
    assert_eq!(
        metrics_of(&get(&bucket, root, "score/shard-00001.jsonl")),
        clean_shard_metrics(&f, "u-clean", 12)
    );
}

#[test]
fn wrong_credentials_exit_2_naming_bucket_and_endpoint_but_not_the_secret() {
    let f = Fixture::new();
    let (spec, _) = f.spec("u-cred", 4, &|y| y);
    let secret = "wrong-secret-DO-NOT-PRINT-42";
    let (out, s) = stage(
        "stage-data",
        &spec,
        &[],
        &[("AWS_SECRET_ACCESS_KEY", secret)],
    );
    assert_eq!(out.status.code(), Some(2), "{s:?}");
    assert_eq!(s.outcome, Outcome::InvalidConfig);
    assert!(
        s.message.contains(BUCKET) && s.message.contains(&f.server.endpoint()),
        "{s:?}"
    );
    let all = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        !all.contains(secret) && !all.contains(TEST_SECRET_KEY),
        "{all}"
    );
}

#[test]
fn a_missing_bucket_exits_2_naming_it() {
    let f = Fixture::new();
    let (spec, _) = f.spec("u-nob", 4, &|y| {
        y.replace("bucket: nas-test", "bucket: no-such-bucket")
    });
    let (out, s) = stage("stage-data", &spec, &[], &[]);
    assert_eq!(out.status.code(), Some(2), "{s:?}");
    assert!(s.message.contains("no-such-bucket"), "{s:?}");
}

#[test]
fn a_sampling_strategy_the_runner_lacks_exits_2_naming_the_field() {
    let f = Fixture::new();
    for strategy in ["exhaustive", "evolutionary"] {
        let uid = format!("u-{strategy}");
        let (spec, _) = f.spec(&uid, 4, &|y| {
            y.replace(
                "sampling: {",
                &format!("sampling: {{strategy: {strategy}, "),
            )
        });
        let (out, s) = stage("score", &spec, &["--shard", "0/2"], &[]);
        assert_eq!(out.status.code(), Some(2), "{s:?}");
        assert!(
            s.message.contains("spec.sampling.strategy") && s.message.contains(strategy),
            "{s:?}"
        );
    }
}

#[test]
fn a_stopped_server_is_retried_then_fails_with_a_retryable_exit_code() {
    let mut f = Fixture::new();
    let (spec, _) = f.spec("u-stop", 4, &|y| y);
    ok("stage-data", &spec, &[]);
    f.server.stop();
    let (out, s) = stage("score", &spec, &["--shard", "0/2"], &[]);
    assert_eq!(out.status.code(), Some(1), "{s:?}");
    assert_eq!(s.outcome, Outcome::Failed);
    assert!(
        s.message.contains(&f.server.endpoint()) || s.message.contains("127.0.0.1"),
        "{s:?}"
    );
    // Back up: the retried pod finishes the shard.
    f.server.restart().unwrap();
    assert_eq!(
        ok("score", &spec, &["--shard", "0/2"]).outcome,
        Outcome::Succeeded
    );
}

#[test]
fn bad_specs_exit_2_naming_the_file_or_field() {
    let f = Fixture::new();
    let missing = f.dir.path().join("nope.json");
    let (out, s) = stage("select", &missing, &[], &[]);
    assert_eq!(out.status.code(), Some(2));
    assert!(s.message.contains("nope.json"), "{s:?}");

    let garbage = f.dir.path().join("garbage.json");
    std::fs::write(&garbage, "{\"schemaVersion\": 1}").unwrap();
    let (out, s) = stage("select", &garbage, &[], &[]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        s.message.contains("garbage.json") && s.message.contains("resolved NASSearch spec"),
        "{s:?}"
    );

    // A spec.json edited by hand past the CRD's rules names the field.
    let (spec, _) = f.spec("u-bad", 4, &|y| y);
    let text = std::fs::read_to_string(&spec)
        .unwrap()
        .replace("\"topK\": 2", "\"topK\": 0");
    std::fs::write(&spec, text).unwrap();
    let (out, s) = stage("select", &spec, &[], &[]);
    assert_eq!(out.status.code(), Some(2));
    assert!(s.message.contains("topK"), "{s:?}");

    // A spec whose hash differs from the one already in the artifact root is refused.
    let (spec, _) = f.spec("u-edit", 4, &|y| y);
    ok("stage-data", &spec, &[]);
    let (edited, _) = f.spec("u-edit", 5, &|y| y);
    let (out, s) = stage("score", &edited, &["--shard", "0"], &[]);
    assert_eq!(out.status.code(), Some(2));
    assert!(s.message.contains("spec changed"), "{s:?}");
}

#[test]
fn a_raw_data_set_in_s3_is_downloaded_then_staged() {
    let f = Fixture::new();
    let bucket = f.bucket();
    for entry in std::fs::read_dir(&f.data).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        bucket
            .put_file(&format!("datasets/fashion-mnist/{name}"), &path)
            .unwrap();
    }
    let source = format!("s3://{BUCKET}/datasets/fashion-mnist");
    let (spec, _) = f.spec("u-s3src", 4, &|y| {
        y.replace(&f.data.display().to_string(), &source)
    });
    let scratch = f.dir.path().join("scratch");
    let scratch_s = scratch.display().to_string();
    let (out, s) = stage(
        "stage-data",
        &spec,
        &[],
        &[("NAS_SCRATCH", scratch_s.as_str())],
    );
    assert!(out.status.success(), "{s:?}");
    assert_eq!(
        (s.values["trainImages"], s.values["testImages"]),
        (400.0, 200.0)
    );
    assert!(scratch.join("nas-source-u-s3src/fashion-mnist").is_dir());

    // A source prefix with nothing under it names what is missing.
    let (spec, _) = f.spec("u-s3none", 4, &|y| {
        y.replace(
            &f.data.display().to_string(),
            &format!("s3://{BUCKET}/datasets/nothing"),
        )
    });
    let (out, s) = stage(
        "stage-data",
        &spec,
        &[],
        &[("NAS_SCRATCH", scratch_s.as_str())],
    );
    assert_eq!(out.status.code(), Some(2), "{s:?}");
    assert!(s.message.contains("datasets/nothing"), "{s:?}");
}

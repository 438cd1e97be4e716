//! A pod stopped on request: the kubelet sends SIGTERM to the pods of a Job that is suspended
//! (by the user or by Kueue), preempted or drained. The runner stops at its next unit boundary,
//! keeps what it finished, writes an `interrupted` summary and exits 143, which the Job's
//! podFailurePolicy does not count; the next pod picks up where it stopped.
mod bin_util;
mod stage_util;
mod train_util;

use nas_api::contract::Outcome;
use nas_runner::store::ObjectStore;
use stage_util::*;

#[test]
fn a_score_pod_stopped_by_sigterm_keeps_its_records_and_the_next_pod_scores_only_the_rest() {
    let f = Fixture::new();
    let (spec, _) = f.spec("u-term", 12, &|y| y);
    let root = "runs/team-a/tiny/u-term/";
    ok("stage-data", &spec, &[]);

    let mut pod = Running::start("score", &spec, &["--shard", "1/2"], &[]);
    pod.wait_for("score: shard 1: 1/");
    let (_, summary) = pod.stop();
    assert!(summary.message.contains("kept"), "{summary:?}");
    let bucket = f.bucket();
    assert!(!bucket
        .exists(&format!("{root}score/shard-00001._SUCCESS"))
        .unwrap());
    let kept = records_of(&get(&bucket, root, "score/shard-00001.partial.jsonl"));
    assert!((1..6).contains(&kept.len()), "{} kept of 6", kept.len());

    // The shard's next pod keeps those records as they are and scores the rest.
    let again = ok("score", &spec, &["--shard", "1/2"]);
    assert_eq!(again.outcome, Outcome::Succeeded);
    assert_eq!(again.scored, Some(6));
    assert_eq!(again.values.get("resumed"), Some(&(kept.len() as f64)));
    let records = records_of(&get(&bucket, root, "score/shard-00001.jsonl"));
    assert_eq!(records.len(), 6);
    for k in &kept {
        let r = records.iter().find(|r| r.index == k.index).unwrap();
        assert_eq!(
            serde_json::to_string(r).unwrap(),
            serde_json::to_string(k).unwrap(),
            "candidate {} was scored again",
            k.index
        );
    }
    assert!(!bucket
        .exists(&format!("{root}score/shard-00001.partial.jsonl"))
        .unwrap());

    // Same metric values as a shard that was never stopped.
    assert_eq!(
        metrics_of(&get(&bucket, root, "score/shard-00001.jsonl")),
        clean_shard_metrics(&f, "u-term-clean", 12)
    );
}

#[test]
fn a_stage_that_reaches_no_boundary_in_time_is_ended_by_the_watchdog_with_exit_143() {
    let f = Fixture::new();
    // One candidate takes far longer than the stop wait: the watchdog ends the pod in it.
    let (spec, _) = f.spec("u-dog", 6, &|y| {
        y.replace("angleLossSteps: 5", "angleLossSteps: 100000")
    });
    ok("stage-data", &spec, &[]);
    let env = [("NAS_STOP_WAIT_SECONDS", "1")];
    let mut pod = Running::start("score", &spec, &["--shard", "0/2"], &env);
    pod.wait_for("scoring the shard");
    let (_, summary) = pod.stop();
    assert!(summary.message.contains("no unit boundary"), "{summary:?}");
}

#[test]
fn a_train_pod_stopped_by_sigterm_checkpoints_and_the_next_pod_resumes_from_there() {
    let f = Fixture::new();
    let (spec, _) = f.spec("u-train", 4, &|y| {
        y.replace(
            "preset: short, overrides: {epochs: 1, batchSize: 64}",
            "preset: short, overrides: {epochs: 8, batchSize: 16}",
        )
    });
    let root = "runs/team-a/tiny/u-train/";
    ok("stage-data", &spec, &[]);
    ok("score", &spec, &["--shard", "0/2"]);
    ok("score", &spec, &["--shard", "1/2"]);
    ok("select", &spec, &[]);

    let mut pod = Running::start("train", &spec, &["--shard", "0"], &[]);
    pod.wait_for("stage starts");
    std::thread::sleep(std::time::Duration::from_secs(2));
    let (_, summary) = pod.stop();
    assert!(summary.message.contains("checkpoint"), "{summary:?}");
    let keys = f.bucket().list(&format!("{root}train/")).unwrap();
    assert!(
        keys.iter().any(|k| k.contains("checkpoints/")),
        "no checkpoint kept: {keys:?}"
    );
    assert!(!keys.iter().any(|k| k.ends_with("_SUCCESS")), "{keys:?}");

    let again = ok("train", &spec, &["--shard", "0"]);
    assert_eq!(again.outcome, Outcome::Succeeded);
    let step = again.values.get("resumedFromStep").copied().unwrap_or(0.0);
    assert!(step >= 1.0, "the next pod started over: {again:?}");
}

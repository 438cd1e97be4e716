//! The Job builder: names, owner references, labels, failure policy, credentials by reference.
mod common;

use common::*;
use nas_api::contract::Stage;
use nas_api::resolved::ResolvedSpec;
use nas_operator::jobs::{build_job, job_name, name_key, spec_configmap, JobKind, SPEC_KEY};

#[test]
fn score_job_is_indexed_with_the_failure_policy() {
    let s = search();
    let r = ResolvedSpec::from_search(&s).unwrap();
    let job = build_job(&s, &r, JobKind::Stage(Stage::Score));
    let meta = &job.metadata;
    assert_eq!(
        meta.name.as_deref(),
        Some(job_name("s1", JobKind::Stage(Stage::Score), &name_key(&r)).as_str())
    );
    let owner = &meta.owner_references.as_ref().unwrap()[0];
    assert_eq!(
        (owner.kind.as_str(), owner.name.as_str(), owner.uid.as_str()),
        ("NASSearch", "s1", "uid-1")
    );
    assert_eq!(owner.controller, Some(true));
    let labels = meta.labels.as_ref().unwrap();
    assert_eq!(labels["app.kubernetes.io/managed-by"], "nas-operator");
    assert_eq!(labels["app.kubernetes.io/instance"], "s1");
    assert_eq!(labels["nas.example.dev/spec-hash"], r.spec_hash);

    let spec = job.spec.as_ref().unwrap();
    assert_eq!(spec.completion_mode.as_deref(), Some("Indexed"));
    assert_eq!(spec.completions, Some(4));
    assert_eq!(spec.backoff_limit_per_index, Some(3));
    assert_eq!(spec.max_failed_indexes, Some(1));
    assert_eq!(spec.backoff_limit, None);
    assert_eq!(spec.pod_replacement_policy.as_deref(), Some("Failed"));
    assert_eq!(spec.suspend, Some(false));
    let rules = &spec.pod_failure_policy.as_ref().unwrap().rules;
    let summary: Vec<(String, Option<i32>)> = rules
        .iter()
        .map(|r| {
            (
                r.action.clone(),
                r.on_exit_codes.as_ref().map(|e| e.values[0]),
            )
        })
        .collect();
    assert_eq!(
        summary,
        [
            ("Ignore".into(), None),
            ("Ignore".into(), Some(143)),
            ("FailJob".into(), Some(2)),
            ("FailIndex".into(), Some(3))
        ]
    );
    assert_eq!(
        rules[0].on_pod_conditions.as_ref().unwrap()[0].type_,
        "DisruptionTarget"
    );

    let pod = spec.template.spec.as_ref().unwrap();
    assert_eq!(pod.restart_policy.as_deref(), Some("Never"));
    // The runner's stop watchdog (20 s after SIGTERM) must fit in the grace period.
    assert_eq!(pod.termination_grace_period_seconds, Some(30));
    let c = &pod.containers[0];
    assert_eq!(
        c.command.as_deref().unwrap(),
        ["nas-runner", "score", "--spec", "/etc/nas/spec/spec.json"]
    );
    assert_eq!(
        c.termination_message_path.as_deref(),
        Some("/dev/termination-log")
    );
    let gpus = &c.resources.as_ref().unwrap().limits.as_ref().unwrap()["nvidia.com/gpu"];
    assert_eq!(gpus.0, "1");
    // Credentials by reference only: the operator never reads the Secret.
    let env = c.env.as_ref().unwrap();
    let key = env
        .iter()
        .find(|e| e.name == "AWS_SECRET_ACCESS_KEY")
        .unwrap();
    assert!(key.value.is_none());
    let sel = key
        .value_from
        .as_ref()
        .unwrap()
        .secret_key_ref
        .as_ref()
        .unwrap();
    assert_eq!(
        (sel.name.as_str(), sel.key.as_str()),
        ("s3-creds", "AWS_SECRET_ACCESS_KEY")
    );
}

#[test]
fn non_indexed_stage_fails_the_job_on_exit_3() {
    let s = search();
    let r = ResolvedSpec::from_search(&s).unwrap();
    let job = build_job(&s, &r, JobKind::Stage(Stage::Select));
    let spec = job.spec.unwrap();
    assert_eq!(spec.completion_mode.as_deref(), Some("NonIndexed"));
    assert_eq!(spec.backoff_limit, Some(2));
    assert_eq!(spec.backoff_limit_per_index, None);
    let actions: Vec<_> = spec
        .pod_failure_policy
        .unwrap()
        .rules
        .iter()
        .map(|r| r.action.clone())
        .collect();
    assert_eq!(actions, ["Ignore", "Ignore", "FailJob", "FailJob"]);
}

#[test]
fn names_fit_dns_labels_and_stay_distinct() {
    let long = "a".repeat(80);
    for stage in Stage::ALL {
        let n = job_name(&long, JobKind::Stage(stage), "0123456789abcdef");
        assert!(n.len() <= 52, "{n}");
        assert!(n.ends_with(&format!("-{}-01234567", stage.as_str())), "{n}");
    }
    assert_ne!(
        job_name("x", JobKind::Stage(Stage::Score), "aaaaaaaa"),
        job_name("x", JobKind::Stage(Stage::Score), "bbbbbbbb")
    );
}

#[test]
fn spec_configmap_holds_the_resolved_spec() {
    let s = search();
    let r = ResolvedSpec::from_search(&s).unwrap();
    let cm = spec_configmap(&s, &r);
    let json = &cm.data.as_ref().unwrap()[SPEC_KEY];
    let back: ResolvedSpec = serde_json::from_str(json).unwrap();
    assert_eq!(back, r.for_jobs());
    assert_eq!(back.spec.artifacts, r.spec.artifacts);
    assert_eq!(cm.immutable, Some(true));
}

#[test]
fn the_immutable_spec_configmap_keeps_its_name_and_bytes_across_suspend_ttl_deletion_and_generation(
) {
    // An API server refuses other data under an immutable ConfigMap's name (422).
    let s = search();
    let before = spec_configmap(&s, &ResolvedSpec::from_search(&s).unwrap());
    let mut changed = s.clone();
    changed.spec.suspend = !s.spec.suspend;
    changed.spec.ttl_seconds_after_finished = Some(0);
    changed.spec.delete_artifacts_on_deletion = !s.spec.delete_artifacts_on_deletion;
    changed.metadata.generation = Some(s.metadata.generation.unwrap_or(1) + 5);
    let after = spec_configmap(&changed, &ResolvedSpec::from_search(&changed).unwrap());
    assert_eq!(before.metadata.name, after.metadata.name);
    assert_eq!(before.data, after.data);
}

#[test]
fn two_searches_whose_names_share_their_start_and_whose_specs_are_equal_get_distinct_names() {
    let prefix = "a-search-name-long-enough-to-be-cut-in-jobs";
    let mut a = search();
    a.metadata.name = Some(format!("{prefix}-one"));
    a.metadata.uid = Some("uid-one".into());
    let mut b = a.clone();
    b.metadata.name = Some(format!("{prefix}-two"));
    b.metadata.uid = Some("uid-two".into());
    let (ra, rb) = (
        ResolvedSpec::from_search(&a).unwrap(),
        ResolvedSpec::from_search(&b).unwrap(),
    );
    assert_eq!(ra.spec_hash, rb.spec_hash);
    for stage in Stage::ALL {
        let (ja, jb) = (
            build_job(&a, &ra, JobKind::Stage(stage)),
            build_job(&b, &rb, JobKind::Stage(stage)),
        );
        assert_ne!(ja.metadata.name, jb.metadata.name, "{stage:?}");
        assert!(ja.metadata.name.as_ref().unwrap().len() <= 52);
    }
    assert_ne!(
        spec_configmap(&a, &ra).metadata.name,
        spec_configmap(&b, &rb).metadata.name
    );
}

#[test]
fn the_cleanup_configmap_is_owned_by_the_cleanup_job_and_holds_the_spec() {
    let s = search();
    let r = ResolvedSpec::from_search(&s).unwrap();
    let cm = nas_operator::jobs::cleanup_configmap(&r, "s1-cleanup-abcd", "job-uid");
    let owner = &cm.metadata.owner_references.as_ref().unwrap()[0];
    assert_eq!(
        (owner.kind.as_str(), owner.uid.as_str()),
        ("Job", "job-uid")
    );
    assert_eq!(cm.metadata.name.as_deref(), Some("s1-cleanup-abcd"));
    let back: ResolvedSpec = serde_json::from_str(&cm.data.as_ref().unwrap()[SPEC_KEY]).unwrap();
    assert_eq!(back, r.for_jobs());
}

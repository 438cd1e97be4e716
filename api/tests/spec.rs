//! The NASSearch spec: defaults, the client-side validation that mirrors the CEL rules, the
//! resolved spec, and the generated CRD's schema features.
use std::path::Path;

use kube::CustomResourceExt;
use nas_api::crd::{NASSearch, NASSearchSpec};
use nas_api::resolved::{spec_hash, ResolveError, ResolvedSpec};
use nas_api::spec::{Metric, SamplingStrategy, SecretKeyRef, SpaceName};
use nas_api::validate::{validate, validate_update, FieldError};

const MINIMAL: &str = r#"
apiVersion: nas.example.dev/v1alpha1
kind: NASSearch
metadata: {name: s, namespace: team}
spec:
  runner: {image: "runner:1"}
  dataset: {source: "s3://data/cifar10", format: cifar10}
  space: {name: nb201}
  artifacts:
    bucket: b
    credentials: {fromEnvironment: true}
"#;

fn minimal() -> NASSearchSpec {
    serde_yaml::from_str::<NASSearch>(MINIMAL).unwrap().spec
}

fn paths(r: Result<(), Vec<FieldError>>) -> Vec<String> {
    r.err()
        .unwrap_or_default()
        .into_iter()
        .map(|e| e.path)
        .collect()
}

fn example(name: &str) -> String {
    let p = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../examples")
        .join(name);
    std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

#[test]
fn defaults_fill_a_minimal_spec() {
    let s = minimal();
    assert_eq!(s.metrics.names, vec![Metric::AngleLoss, Metric::Params]);
    assert_eq!(s.sampling.strategy, SamplingStrategy::Random);
    assert_eq!(s.sampling.candidates, 1000);
    assert_eq!(s.sampling.shards, 1);
    assert_eq!(s.selection.top_k, 5);
    assert_eq!(s.dataset.resolution, 32);
    assert_eq!(s.dataset.splits.validation_percent, 10);
    assert_eq!(s.artifacts.prefix, "nas");
    assert!(!s.suspend);
    assert_eq!(validate(&s), Ok(()));
}

#[test]
fn examples_are_valid() {
    for name in ["nb201-cifar10.yaml", "darts-imagenet.yaml"] {
        let r = ResolvedSpec::from_yaml(&example(name)).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(r.namespace, "default");
        assert!(r
            .artifacts_root
            .starts_with("s3://nas-artifacts/searches/default/"));
    }
}

#[test]
fn top_k_above_candidates_is_rejected() {
    let mut s = minimal();
    s.sampling.candidates = 3;
    s.selection.top_k = 4;
    let errs = validate(&s).unwrap_err();
    assert!(errs.iter().any(|e| e
        .message
        .contains("selection.topK must be at most sampling.candidates")));
}

#[test]
fn exactly_one_credentials_source() {
    let mut s = minimal();
    s.artifacts.credentials.from_environment = None;
    assert_eq!(paths(validate(&s)), ["spec.artifacts.credentials"]);
    s.artifacts.credentials.from_environment = Some(false);
    assert_eq!(paths(validate(&s)), ["spec.artifacts.credentials"]);
    s.artifacts.credentials.secret_ref = Some(SecretKeyRef {
        name: "k".into(),
        access_key_id_key: "a".into(),
        secret_access_key_key: "b".into(),
    });
    assert_eq!(validate(&s), Ok(()));
    s.artifacts.credentials.from_environment = Some(true);
    assert_eq!(paths(validate(&s)), ["spec.artifacts.credentials"]);
}

#[test]
fn budgets_must_be_positive() {
    let mut s = minimal();
    s.sampling.candidates = 0;
    s.selection.top_k = 0;
    s.constraints.max_params = Some(0);
    s.train.overrides.epochs = Some(0);
    s.evaluate.overrides.learning_rate = Some(-0.1);
    let p = paths(validate(&s));
    for want in [
        "spec.sampling.candidates",
        "spec.selection.topK",
        "spec.constraints.maxParams",
        "spec.train.overrides.epochs",
        "spec.evaluate.overrides.learningRate",
    ] {
        assert!(p.iter().any(|x| x == want), "{want} missing from {p:?}");
    }
}

#[test]
fn exhaustive_needs_nb201() {
    let mut s = minimal();
    s.sampling.strategy = SamplingStrategy::Exhaustive;
    s.sampling.candidates = 15_625;
    assert_eq!(validate(&s), Ok(()));
    s.sampling.candidates = 15_626;
    assert!(validate(&s).is_err());
    s.sampling.candidates = 100;
    s.space.name = SpaceName::Darts;
    assert!(validate(&s).is_err());
}

#[test]
fn duplicate_metrics_and_bad_sources_are_named() {
    let mut s = minimal();
    s.metrics.names = vec![Metric::Params, Metric::Params];
    s.dataset.source = "http://x".into();
    s.artifacts.endpoint = Some("minio:9000".into());
    let p = paths(validate(&s));
    assert!(p.contains(&"spec.metrics.names".to_string()), "{p:?}");
    assert!(p.contains(&"spec.dataset.source".to_string()), "{p:?}");
    assert!(p.contains(&"spec.artifacts.endpoint".to_string()), "{p:?}");
}

#[test]
fn space_and_seed_are_immutable() {
    let old = minimal();
    let mut new = old.clone();
    new.sampling.candidates = 2000;
    assert_eq!(validate_update(&old, &new), Ok(()));
    new.sampling.seed = 7;
    new.space.channels = Some(32);
    let p = paths(validate_update(&old, &new));
    assert_eq!(p, ["spec.space", "spec.sampling.seed"]);
}

#[test]
fn unknown_enum_values_fail_to_parse() {
    let bad = MINIMAL.replace("name: nb201", "name: nb301");
    let err = ResolvedSpec::from_yaml(&bad).unwrap_err();
    assert!(matches!(err, ResolveError::Parse(_)), "{err}");
    assert!(err.to_string().contains("nb301"), "{err}");
}

#[test]
fn invalid_yaml_spec_names_the_field() {
    let bad = MINIMAL.replace("{fromEnvironment: true}", "{}");
    let err = ResolvedSpec::from_yaml(&bad).unwrap_err().to_string();
    assert!(err.contains("spec.artifacts.credentials"), "{err}");
}

#[test]
fn unknown_fields_are_errors_naming_them_as_a_cluster_refuses_them() {
    // A misspelt or unsupported override used to be dropped: the run trained with the preset.
    let bad = MINIMAL.replace(
        "space: {name: nb201}",
        "space: {name: nb201, depth: 3}\n  evaluate: {preset: nb201, overrides: {epochs: 2, \
         shuffleBuffer: 50000}}\n  sampling: {candidats: 4}",
    );
    let err = ResolvedSpec::from_yaml(&bad).unwrap_err();
    let ResolveError::Invalid(errs) = &err else {
        panic!("{err}")
    };
    let mut p: Vec<&str> = errs.iter().map(|e| e.path.as_str()).collect();
    p.sort();
    assert_eq!(
        p,
        [
            "spec.evaluate.overrides.shuffleBuffer",
            "spec.sampling.candidats",
            "spec.space.depth"
        ],
        "{err}"
    );
    assert!(err.to_string().contains("unknown field"), "{err}");
    // Empty and null values carry no setting and stay accepted.
    let empty = MINIMAL
        .replace(
            "space: {name: nb201}",
            "space: {name: nb201}\n  ttlSecondsAfterFinished: null",
        )
        .replace("namespace: team}", "namespace: team, annotations: {}}");
    ResolvedSpec::from_yaml(&empty).unwrap();
}

#[test]
fn spec_hash_ignores_suspend_but_not_budgets() {
    let a = minimal();
    let mut b = a.clone();
    b.suspend = true;
    b.ttl_seconds_after_finished = Some(10);
    assert_eq!(spec_hash(&a), spec_hash(&b));
    b.sampling.candidates += 1;
    assert_ne!(spec_hash(&a), spec_hash(&b));
    assert_eq!(spec_hash(&a).len(), 16);
}

#[test]
fn resolved_spec_round_trips_and_roots_artifacts() {
    let mut search: NASSearch = serde_yaml::from_str(MINIMAL).unwrap();
    search.metadata.uid = Some("u-1".into());
    search.metadata.generation = Some(3);
    search.spec.artifacts.prefix = "/runs/".into();
    let r = ResolvedSpec::from_search(&search).unwrap();
    assert_eq!(r.artifacts_root, "s3://b/runs/team/s/u-1/");
    assert_eq!(r.generation, 3);
    let back: ResolvedSpec = serde_json::from_str(&r.to_json()).unwrap();
    assert_eq!(back, r);
    search.metadata.uid = None;
    assert!(matches!(
        ResolvedSpec::from_search(&search),
        Err(ResolveError::MissingMetadata("uid"))
    ));
}

#[test]
fn crd_carries_names_rules_columns_and_status() {
    let crd = NASSearch::crd();
    assert_eq!(crd.spec.group, "nas.example.dev");
    assert_eq!(crd.spec.names.plural, "nassearches");
    assert_eq!(
        crd.spec.names.short_names.as_deref(),
        Some(&["nas".to_string()][..])
    );
    assert_eq!(crd.spec.scope, "Namespaced");
    let v = &crd.spec.versions[0];
    assert_eq!(v.name, "v1alpha1");
    assert!(v
        .subresources
        .as_ref()
        .and_then(|s| s.status.as_ref())
        .is_some());
    let cols: Vec<_> = v
        .additional_printer_columns
        .iter()
        .flatten()
        .map(|c| c.name.as_str())
        .collect();
    assert_eq!(cols, ["Phase", "Stage", "Scored", "Best", "Age", "Results"]);
    let json = serde_json::to_string(&crd).unwrap();
    for rule in [
        "self.selection.topK <= self.sampling.candidates",
        "self == oldSelf",
        "has(self.secretRef)",
        "self > 0",
    ] {
        assert!(json.contains(rule), "rule {rule} missing");
    }
    // Descriptions reach `kubectl explain`.
    assert!(json.contains("Number of best-ranked candidates trained"));
}

//! The CRD generated from the Rust types matches the committed snapshot in manifests/ (which
//! the chart's crds/ copies; scripts/check-packaging.sh checks that copy and regenerates both).
use std::path::Path;

#[test]
fn crd_matches_the_committed_snapshot() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../manifests/crd.yaml");
    let committed =
        std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    assert!(
        nas_operator::crd_yaml() == committed,
        "manifests/crd.yaml is out of date: run scripts/check-packaging.sh --update"
    );
}

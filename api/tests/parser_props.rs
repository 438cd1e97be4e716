//! Property tests (a brief fuzzing run in every CI) of the API's parsers of user and network
//! input: the NASSearch YAML as `nas-runner local` reads it (parse, validate, resolve), the
//! resolved spec JSON the runner reads from its ConfigMap or store, termination summaries, and
//! store URIs. Each damages valid inputs from `examples/` and the contract (the corpus) and must
//! end in `Ok` or an error, never a panic. `scripts/fuzz.sh` runs them long.
use nas_api::contract::{Outcome, Stage, TerminationSummary};
use nas_api::resolved::ResolvedSpec;
use nas_api::uri::StoreUri;
use proptest::prelude::*;

const EXAMPLES: [&str; 3] = [
    include_str!("../../examples/quickstart.yaml"),
    include_str!("../../examples/nb201-cifar10.yaml"),
    include_str!("../../examples/darts-imagenet.yaml"),
];

/// `text` with character edits: (position, replacement or deletion).
fn damaged(text: &str, edits: &[(usize, Option<char>)]) -> String {
    let mut chars: Vec<char> = text.chars().collect();
    for &(at, c) in edits {
        if chars.is_empty() {
            break;
        }
        let at = at % chars.len();
        match c {
            Some(c) => chars[at] = c,
            None => {
                chars.remove(at);
            }
        }
    }
    chars.into_iter().collect()
}

fn edits() -> impl Strategy<Value = Vec<(usize, Option<char>)>> {
    prop::collection::vec(
        (
            any::<usize>(),
            prop::option::of(prop_oneof![
                Just(':'),
                Just(' '),
                Just('\n'),
                Just('-'),
                Just('9'),
                Just('"'),
                Just('{'),
                Just('['),
                any::<char>()
            ]),
        ),
        1..6,
    )
}

/// `PROPTEST_CASES` when set (`scripts/fuzz.sh`), else `default`: an explicit `cases` in the
/// config would override the variable.
fn cases(default: u32) -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(default)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(128), ..ProptestConfig::default() })]

    #[test]
    fn damaged_searches_resolve_or_fail_cleanly(which in 0usize..3, e in edits()) {
        let text = damaged(EXAMPLES[which], &e);
        if let Ok(resolved) = ResolvedSpec::from_yaml(&text) {
            // What resolves must survive the trip the runner makes: JSON in a ConfigMap.
            let json = serde_json::to_string(&resolved).unwrap();
            let back: ResolvedSpec = serde_json::from_str(&json).unwrap();
            prop_assert_eq!(back.spec_hash, resolved.spec_hash);
        }
    }

    #[test]
    fn damaged_resolved_specs_never_panic(which in 0usize..3, e in edits()) {
        let resolved = ResolvedSpec::from_yaml(EXAMPLES[which]).unwrap();
        let json = serde_json::to_string(&resolved).unwrap();
        let _ = serde_json::from_str::<ResolvedSpec>(&damaged(&json, &e));
    }

    #[test]
    fn damaged_termination_summaries_never_panic(e in edits(), msg in ".{0,80}") {
        let mut s = TerminationSummary::new(Stage::Score, Some(2), Outcome::Succeeded, msg);
        s.scored = Some(7);
        let json = damaged(&s.to_json_bounded(), &e);
        if let Ok(back) = serde_json::from_str::<TerminationSummary>(&json) {
            let _ = back.to_json_bounded();
        }
    }

    #[test]
    fn store_uris_parse_or_fail_cleanly(s in ".{0,120}", e in edits()) {
        let _ = StoreUri::parse(&s);
        let _ = StoreUri::parse(&damaged("s3://bucket/a/b/spec.json", &e));
        let _ = StoreUri::parse(&damaged("file:///tmp/x/spec.json", &e));
    }
}

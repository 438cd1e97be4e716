//! Parsing the runner's termination message: the JSON summary (at most 4 KiB) a runner pod
//! writes to its termination-message path on exit, which the operator reads from the Pod status
//! instead of the object store (it has no store credentials).
//!
//! The runner's side of this contract is `nas_api::contract`; the fields read here are all
//! optional so that a runner that reports less (or more) still parses.
use nas_api::contract::TERMINATION_MESSAGE_MAX_BYTES;
use nas_api::crd::CandidateSummary;
use serde::{Deserialize, Serialize};

/// What one runner pod reports on exit.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase", default)]
pub struct StageSummary {
    /// The stage the pod ran (`score`, `train`, ...).
    pub stage: Option<String>,
    /// `JOB_COMPLETION_INDEX` of an Indexed stage.
    pub index: Option<u32>,
    /// Candidates this pod scored (score stage).
    pub scored: Option<u64>,
    /// Candidates this pod could not score.
    pub failed: Option<u64>,
    /// The best candidate this pod knows of: its trained candidate (train), the winner
    /// with its test errors (evaluate).
    pub best: Option<CandidateSummary>,
    /// The selected candidates, best first (select).
    #[serde(rename = "topK")]
    pub top_k: Vec<CandidateSummary>,
    /// Where the results are (report).
    pub results_uri: Option<String>,
    /// Why the pod failed, if it did.
    pub error: Option<String>,
}

/// A termination message as read from a Pod.
#[derive(Clone, Debug, PartialEq)]
pub enum TerminationMessage {
    /// A runner summary.
    Summary(Box<StageSummary>),
    /// Anything else (e.g. the tail of the log Kubernetes falls back to on error), cut to 512
    /// bytes.
    Text(String),
}

/// Longest free text kept from a message that is not a summary.
const TEXT_MAX: usize = 512;

/// Parses a termination message. Never fails: a message that is not a summary (too large, not
/// JSON) is kept as bounded text so that failure reasons still reach the status.
pub fn parse(message: &str) -> TerminationMessage {
    let trimmed = message.trim();
    if trimmed.len() <= TERMINATION_MESSAGE_MAX_BYTES && trimmed.starts_with('{') {
        if let Ok(s) = serde_json::from_str::<StageSummary>(trimmed) {
            return TerminationMessage::Summary(Box::new(s));
        }
    }
    TerminationMessage::Text(truncate(trimmed, TEXT_MAX))
}

/// Cuts `s` to at most `max` bytes on a character boundary, marking the cut with `…`.
pub fn truncate(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_string();
    }
    let mut end = max.saturating_sub('…'.len_utf8());
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &s[..end])
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A brief fuzzing run (xorshift, fixed seed: the same cases in every CI) over damaged
    /// summaries and noise: whatever a pod writes, the operator gets a summary or bounded text.
    #[test]
    fn damaged_messages_never_panic_and_stay_bounded() {
        let corpus = [
            r#"{"schema":1,"stage":"score","index":3,"outcome":"succeeded","exitCode":0,"message":"shard 3","scored":250,"failed":1}"#,
            r#"{"stage":"select","topK":[{"arch":"|nor_conv_3x3~0|+|skip_connect~0|none~1|","rank":1,"params":1200}]}"#,
            r#"{"stage":"evaluate","best":{"arch":"x","top1Error":0.2,"valAccuracy":81.5},"resultsUri":"s3://b/p/"}"#,
        ];
        let mut state = 0x9E37_79B9_7F4A_7C15u64;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        for case in 0..4000 {
            let mut bytes = corpus[case % corpus.len()].as_bytes().to_vec();
            for _ in 0..1 + next() % 6 {
                if bytes.is_empty() {
                    break;
                }
                let at = (next() as usize) % bytes.len();
                match next() % 4 {
                    0 => bytes[at] = next() as u8,
                    1 => {
                        bytes.remove(at);
                    }
                    2 => bytes.insert(at, b"{}[]\",0:-9e999"[(next() % 14) as usize]),
                    _ => bytes.truncate(at.max(1)),
                }
            }
            let text = String::from_utf8_lossy(&bytes);
            match parse(&text) {
                TerminationMessage::Text(t) => assert!(t.len() <= TEXT_MAX, "{t}"),
                TerminationMessage::Summary(_) => {}
            }
        }
    }

    #[test]
    fn parses_a_score_summary() {
        let m = parse(r#"{"stage":"score","index":3,"scored":250,"failed":1,"extra":true}"#);
        let TerminationMessage::Summary(s) = m else {
            panic!("not a summary: {m:?}")
        };
        assert_eq!(s.index, Some(3));
        assert_eq!(s.scored, Some(250));
        assert_eq!(s.failed, Some(1));
    }

    #[test]
    fn parses_select_top_k() {
        let m = parse(
            r#"{"stage":"select","topK":[{"arch":"a","rank":1,"params":10},{"arch":"b","rank":2}]}"#,
        );
        let TerminationMessage::Summary(s) = m else {
            panic!("not a summary")
        };
        assert_eq!(s.top_k.len(), 2);
        assert_eq!(s.top_k[0].arch, "a");
        assert_eq!(s.top_k[0].params, Some(10));
    }

    /// The runner writes `nas_api::contract::TerminationSummary`; every field the operator
    /// folds into the status must come through.
    #[test]
    fn reads_what_the_runner_writes() {
        use nas_api::contract::{Outcome, Stage, TerminationSummary};
        let mut w = TerminationSummary::new(Stage::Train, Some(1), Outcome::Undoable, "boom");
        w.scored = Some(7);
        w.failed = Some(2);
        w.error = Some("diverged".into());
        w.results_uri = Some("s3://b/summary.json".into());
        w.best = Some(CandidateSummary {
            arch: "x".into(),
            top1_error: Some(24.1),
            ..CandidateSummary::default()
        });
        w.top_k = vec![CandidateSummary {
            arch: "y".into(),
            rank: Some(1),
            ..CandidateSummary::default()
        }];
        let TerminationMessage::Summary(r) = parse(&w.to_json_bounded()) else {
            panic!("the runner's summary does not parse")
        };
        assert_eq!(r.stage.as_deref(), Some("train"));
        assert_eq!((r.index, r.scored, r.failed), (Some(1), Some(7), Some(2)));
        assert_eq!(r.error.as_deref(), Some("diverged"));
        assert_eq!(r.results_uri.as_deref(), Some("s3://b/summary.json"));
        assert_eq!(r.best, w.best);
        assert_eq!(r.top_k, w.top_k);
    }

    #[test]
    fn oversized_or_non_json_messages_become_bounded_text() {
        let big = format!("{{\"stage\":\"score\",\"error\":\"{}\"}}", "x".repeat(5000));
        match parse(&big) {
            TerminationMessage::Text(t) => assert!(t.len() <= TEXT_MAX),
            other => panic!("expected text, got {other:?}"),
        }
        assert_eq!(
            parse("Traceback: boom"),
            TerminationMessage::Text("Traceback: boom".into())
        );
    }

    #[test]
    fn truncate_respects_char_boundaries() {
        let s = "é".repeat(400);
        let t = truncate(&s, 101);
        assert!(t.len() <= 101);
        assert!(t.ends_with('…'));
    }
}

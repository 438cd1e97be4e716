//! The contract between operator and runner: stages, exit codes, the termination summary.
use crate::crd::{CandidateSummary, NASSearchSpec};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Runner exit codes, mapped to the Job's podFailurePolicy by the operator.
pub mod exit_code {
    /// Stage done.
    pub const OK: i32 = 0;
    /// Invalid configuration: fail the whole Job, retrying cannot help.
    pub const INVALID_CONFIG: i32 = 2;
    /// This shard or candidate cannot be done: fail the index.
    pub const UNDOABLE: i32 = 3;
    /// Worth another try (IO, the network, a crash): counted against the Job's retries.
    pub const RETRY: i32 = 1;
    /// Stopped on request (SIGTERM: the pod was deleted, its Job suspended or preempted),
    /// finished work kept: not counted against retries. 128 + SIGTERM, as a shell reports it.
    pub const INTERRUPTED: i32 = 143;
    // Any other code is treated as RETRY.
}

/// Seconds a runner pod is given between SIGTERM and SIGKILL (Kubernetes' default, set
/// explicitly on every runner pod so that [`STOP_WAIT_SECONDS`] fits inside it).
pub const TERMINATION_GRACE_SECONDS: i64 = 30;
/// Seconds a runner waits after SIGTERM for its stage to reach a unit boundary before it ends
/// the stage itself: inside [`TERMINATION_GRACE_SECONDS`], with time left to write the summary.
pub const STOP_WAIT_SECONDS: u64 = 20;

/// Where Kubernetes reads the termination message from.
pub const TERMINATION_MESSAGE_PATH: &str = "/dev/termination-log";
/// Kubernetes truncates termination messages at 4096 bytes; ours must fit whole.
pub const TERMINATION_MESSAGE_MAX_BYTES: usize = 4096;

/// Both binaries' log line format, `text` or `json` (or their `--log-format` flag).
pub const LOG_FORMAT_ENV: &str = "NAS_LOG_FORMAT";
/// Both binaries' log filter (`tracing` directives such as `info,nas_runner=debug`).
pub const LOG_FILTER_ENV: &str = "RUST_LOG";

/// The stages of a search, in pipeline order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Stage {
    StageData,
    Score,
    Select,
    Train,
    Evaluate,
    Report,
}

impl Stage {
    pub const ALL: [Stage; 6] = [
        Stage::StageData,
        Stage::Score,
        Stage::Select,
        Stage::Train,
        Stage::Evaluate,
        Stage::Report,
    ];

    /// The runner subcommand and the Job name part.
    pub fn as_str(self) -> &'static str {
        match self {
            Stage::StageData => "stage-data",
            Stage::Score => "score",
            Stage::Select => "select",
            Stage::Train => "train",
            Stage::Evaluate => "evaluate",
            Stage::Report => "report",
        }
    }

    /// Stages that run as Indexed Jobs, one pod per unit (score shards, train finalists); the
    /// others run one pod.
    pub fn is_indexed(self) -> bool {
        self.unit_field().is_some()
    }

    /// The spec field that sets the number of units of an indexed stage.
    pub fn unit_field(self) -> Option<&'static str> {
        match self {
            Stage::Score => Some("spec.sampling.shards"),
            Stage::Train => Some("spec.selection.topK"),
            _ => None,
        }
    }

    /// How many units (Job completions) the stage has for `spec`: 1 unless indexed.
    pub fn units(self, spec: &NASSearchSpec) -> u32 {
        match self {
            Stage::Score => spec.sampling.shards,
            Stage::Train => spec.selection.top_k,
            _ => 1,
        }
    }
}

/// How a stage run ended, as the operator sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Outcome {
    /// Work done now.
    Succeeded,
    /// The unit's `_SUCCESS` existed: nothing to do.
    Skipped,
    InvalidConfig,
    Undoable,
    /// Transient failure: the pod is retried.
    Failed,
    /// Stopped on request with its finished work kept; resumed by the next pod.
    Interrupted,
}

impl Outcome {
    /// The process exit code that goes with this outcome.
    /// The one mapping from an outcome to the process exit code.
    pub fn exit_code(self) -> i32 {
        match self {
            Outcome::Succeeded | Outcome::Skipped => exit_code::OK,
            Outcome::InvalidConfig => exit_code::INVALID_CONFIG,
            Outcome::Undoable => exit_code::UNDOABLE,
            Outcome::Failed => exit_code::RETRY,
            Outcome::Interrupted => exit_code::INTERRUPTED,
        }
    }
}

/// What a runner writes to [`TERMINATION_MESSAGE_PATH`] on exit; the operator reads it from the
/// Pod status. Always serialise it with [`TerminationSummary::to_json_bounded`], which keeps it
/// within [`TERMINATION_MESSAGE_MAX_BYTES`] (Kubernetes would cut it, leaving invalid JSON).
///
/// camelCase like the resource: the candidate summaries go into the status as they are.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TerminationSummary {
    #[serde(default = "schema_v1")]
    pub schema: u32,
    pub stage: Stage,
    /// The shard (score) or finalist (train) index of an Indexed Job's pod.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub index: Option<u32>,
    pub outcome: Outcome,
    pub exit_code: i32,
    /// One human-readable line (the error, or what was done).
    pub message: String,
    /// Candidates this pod scored (score stage).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scored: Option<u64>,
    /// Candidates this pod could not score.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failed: Option<u64>,
    /// The best candidate this pod knows of: its trained finalist (train), the winner with its
    /// test errors (evaluate, report).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub best: Option<CandidateSummary>,
    /// The selected candidates, best first (select).
    #[serde(default, rename = "topK", skip_serializing_if = "Vec::is_empty")]
    pub top_k: Vec<CandidateSummary>,
    /// Where the results are (report).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub results_uri: Option<String>,
    /// Why the pod failed, if it did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Headline numbers such as `seconds` or `imagesPerSecond`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub values: BTreeMap<String, f64>,
    /// The first per-candidate errors, for the status.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<String>,
    /// Keys written, relative to the search root.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub artifacts: Vec<String>,
    /// Set when lists or the message were shortened to fit.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub truncated: bool,
}

fn schema_v1() -> u32 {
    1
}

/// The marker appended to a shortened message.
const ELLIPSIS: &str = "…";
/// No single error line needs more than this in a status.
const MAX_ERROR_CHARS: usize = 300;

impl TerminationSummary {
    pub fn new(
        stage: Stage,
        index: Option<u32>,
        outcome: Outcome,
        message: impl Into<String>,
    ) -> Self {
        TerminationSummary {
            schema: crate::records::SCHEMA_VERSION,
            stage,
            index,
            outcome,
            exit_code: outcome.exit_code(),
            message: message.into(),
            scored: None,
            failed: None,
            best: None,
            top_k: Vec::new(),
            results_uri: None,
            error: None,
            values: BTreeMap::new(),
            errors: Vec::new(),
            artifacts: Vec::new(),
            truncated: false,
        }
    }

    /// Compact JSON of at most [`TERMINATION_MESSAGE_MAX_BYTES`] bytes. Shortens, in order:
    /// each error line, the artifact, error and top-K lists (from the end), the values, the
    /// error, then the message; sets `truncated` when anything was cut. Non-finite values are
    /// dropped from `values` (JSON has no NaN).
    pub fn to_json_bounded(&self) -> String {
        let mut s = self.clone();
        s.values.retain(|_, v| v.is_finite());
        for e in &mut s.errors {
            if e.chars().count() > MAX_ERROR_CHARS {
                *e = shorten(e, MAX_ERROR_CHARS);
                s.truncated = true;
            }
        }
        let json = s.json();
        if json.len() <= TERMINATION_MESSAGE_MAX_BYTES {
            return json;
        }
        s.truncated = true;
        let mut len = s.json().len();
        // Lists first, from the end; lengths are tracked rather than re-serialised per element.
        if pop_while_over(&mut s.artifacts, &mut len) {
            len = s.json().len();
        }
        if pop_while_over(&mut s.errors, &mut len) {
            len = s.json().len();
        }
        if pop_while_over(&mut s.top_k, &mut len) {
            len = s.json().len();
        }
        while len > TERMINATION_MESSAGE_MAX_BYTES && s.values.pop_last().is_some() {
            len = s.json().len();
        }
        if len > TERMINATION_MESSAGE_MAX_BYTES && s.error.is_some() {
            s.error = s.error.as_deref().map(|e| shorten(e, MAX_ERROR_CHARS));
            len = s.json().len();
        }
        if len <= TERMINATION_MESSAGE_MAX_BYTES {
            return s.json();
        }
        // Only the message is left to cut: cut exactly the excess (measured in its escaped
        // form), plus room for the ellipsis, in one step.
        let excess = len - TERMINATION_MESSAGE_MAX_BYTES;
        let escaped = serde_json::to_string(&s.message).unwrap_or_default().len();
        match escaped.checked_sub(excess + 2 + ELLIPSIS.len()) {
            Some(budget) if budget > 0 => s.message = cut_to_escaped_len(&s.message, budget),
            _ => s.message.clear(),
        }
        let json = s.json();
        if json.len() <= TERMINATION_MESSAGE_MAX_BYTES {
            json
        } else {
            // Unreachable with the fields above, but never hand Kubernetes more than it keeps.
            minimal(&s)
        }
    }

    fn json(&self) -> String {
        serde_json::to_string(self).unwrap_or_else(|_| minimal(self))
    }
}

/// Pops elements off the end of `list` while `len` (the summary's JSON length) is over the
/// limit, subtracting each one's length and comma. Returns true when the list became empty:
/// its field then disappears from the JSON and the caller must measure again.
fn pop_while_over<T: Serialize>(list: &mut Vec<T>, len: &mut usize) -> bool {
    while *len > TERMINATION_MESSAGE_MAX_BYTES {
        let Some(x) = list.pop() else { return false };
        if list.is_empty() {
            return true;
        }
        *len -= serde_json::to_string(&x).map_or(0, |j| j.len()) + 1;
    }
    false
}

/// Keeps at most `max_chars` characters, marking the cut.
fn shorten(s: &str, max_chars: usize) -> String {
    let mut out: String = s.chars().take(max_chars.saturating_sub(1)).collect();
    out.push_str(ELLIPSIS);
    out
}

/// The longest prefix of `s` whose JSON-escaped body is at most `budget` bytes, plus the
/// ellipsis.
fn cut_to_escaped_len(s: &str, budget: usize) -> String {
    let mut used = 0;
    let mut out = String::new();
    for c in s.chars() {
        let n = serde_json::to_string(&c.to_string())
            .map(|e| e.len() - 2)
            .unwrap_or(6);
        if used + n > budget {
            break;
        }
        used += n;
        out.push(c);
    }
    out.push_str(ELLIPSIS);
    out
}

fn minimal(s: &TerminationSummary) -> String {
    format!(
        r#"{{"schema":{},"stage":"{}","outcome":{},"exitCode":{},"message":"","truncated":true}}"#,
        s.schema,
        s.stage.as_str(),
        serde_json::to_string(&s.outcome).unwrap_or_else(|_| "\"failed\"".into()),
        s.exit_code
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn candidate(i: u64) -> CandidateSummary {
        CandidateSummary {
            index: Some(i),
            arch: format!(
                "|nor_conv_3x3~0|+|none~0|skip_connect~1|+|none~0|none~1|avg_pool_3x3~{i}|"
            ),
            rank: Some(i as u32 + 1),
            ..CandidateSummary::default()
        }
    }

    fn big() -> TerminationSummary {
        let mut s = TerminationSummary::new(
            Stage::Score,
            Some(7),
            Outcome::Undoable,
            "é\"\n".repeat(3000),
        );
        s.errors = (0..200)
            .map(|i| format!("candidate {i}: {}", "x".repeat(500)))
            .collect();
        s.artifacts = (0..500)
            .map(|i| format!("score/shard-{i:05}.jsonl"))
            .collect();
        s.top_k = (0..1000).map(candidate).collect();
        s.values = (0..100).map(|i| (format!("v{i}"), f64::from(i))).collect();
        s.values.insert("nan".into(), f64::NAN);
        s
    }

    #[test]
    fn small_summary_is_unchanged() {
        let mut s = TerminationSummary::new(Stage::Select, None, Outcome::Succeeded, "ranked 100");
        s.top_k = vec![candidate(3), candidate(1)];
        let json = s.to_json_bounded();
        let back: TerminationSummary = serde_json::from_str(&json).unwrap();
        assert_eq!(back, s);
        assert!(!json.contains("truncated"));
        assert_eq!(back.exit_code, exit_code::OK);
    }

    #[test]
    fn oversized_summary_is_cut_to_fit_and_stays_valid_json() {
        let s = big();
        let json = s.to_json_bounded();
        assert!(
            json.len() <= TERMINATION_MESSAGE_MAX_BYTES,
            "{} bytes",
            json.len()
        );
        let back: TerminationSummary = serde_json::from_str(&json).unwrap();
        assert!(back.truncated);
        assert_eq!(
            (back.stage, back.index, back.exit_code),
            (Stage::Score, Some(7), exit_code::UNDOABLE)
        );
        assert!(back.message.ends_with(ELLIPSIS));
        // The message was cut only as much as needed: the result is close to the limit.
        assert!(
            json.len() > TERMINATION_MESSAGE_MAX_BYTES - 16,
            "{} bytes",
            json.len()
        );
        assert!(!back.values.contains_key("nan"));
    }

    #[test]
    fn lists_are_cut_before_the_message() {
        let mut s =
            TerminationSummary::new(Stage::Score, Some(1), Outcome::Failed, "S3 unreachable");
        s.artifacts = (0..1000)
            .map(|i| format!("score/shard-{i:05}.jsonl"))
            .collect();
        let back: TerminationSummary = serde_json::from_str(&s.to_json_bounded()).unwrap();
        assert_eq!(back.message, "S3 unreachable");
        assert!(back.truncated && !back.artifacts.is_empty() && back.artifacts.len() < 1000);
        assert_eq!(back.artifacts[0], "score/shard-00000.jsonl");
    }

    #[test]
    fn long_error_lines_are_shortened() {
        let mut s = TerminationSummary::new(Stage::Score, Some(1), Outcome::Succeeded, "ok");
        s.errors = vec!["y".repeat(1000)];
        let back: TerminationSummary = serde_json::from_str(&s.to_json_bounded()).unwrap();
        assert_eq!(back.errors[0].chars().count(), MAX_ERROR_CHARS);
        assert!(back.truncated);
    }

    proptest::proptest! {
        #[test]
        fn always_within_the_limit(msg in ".{0,6000}", errs in proptest::collection::vec(".{0,400}", 0..40), n in 0usize..2000) {
            let mut s = TerminationSummary::new(Stage::Train, Some(3), Outcome::Failed, msg);
            s.errors = errs;
            s.top_k = (0..n as u64).map(candidate).collect();
            let json = s.to_json_bounded();
            proptest::prop_assert!(json.len() <= TERMINATION_MESSAGE_MAX_BYTES);
            let back: TerminationSummary = serde_json::from_str(&json).unwrap();
            proptest::prop_assert_eq!(back.stage, Stage::Train);
        }
    }
}

//! The contract between operator and runner: stages, exit codes, the termination summary.
use serde::{Deserialize, Serialize};

/// Runner exit codes, mapped to the Job's podFailurePolicy by the operator.
pub mod exit_code {
    /// Stage done.
    pub const OK: i32 = 0;
    /// Invalid configuration: fail the whole Job, retrying cannot help.
    pub const INVALID_CONFIG: i32 = 2;
    /// This shard or candidate cannot be done: fail the index.
    pub const UNDOABLE: i32 = 3;
    // Anything else: transient, retried.
}

/// Where Kubernetes reads the termination message from.
pub const TERMINATION_MESSAGE_PATH: &str = "/dev/termination-log";
/// Kubernetes truncates termination messages at 4096 bytes; ours must fit whole.
pub const TERMINATION_MESSAGE_MAX_BYTES: usize = 4096;

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
    pub const ALL: [Stage; 6] =
        [Stage::StageData, Stage::Score, Stage::Select, Stage::Train, Stage::Evaluate, Stage::Report];

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
}

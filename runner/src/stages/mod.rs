//! The stage commands the operator schedules, and the ad-hoc commands (`inspect`, `score`,
//! `train-bench`, `decode-bench`, `results`).

pub mod bench_cmd;
pub mod inspect;
pub mod local;
pub mod results;
pub mod score_cli;
pub mod stage_cmd;

use nas_api::contract::{exit_code, Outcome};

/// The process exit status of a command that ended with `outcome` (every contract code fits a
/// byte; anything else would be a retry).
pub fn exit_status(outcome: Outcome) -> u8 {
    u8::try_from(outcome.exit_code()).unwrap_or(exit_code::RETRY as u8)
}

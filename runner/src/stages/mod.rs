//! The stage commands the operator schedules, and the ad-hoc commands (`inspect`, `score`,
//! `train-bench`, `decode-bench`, `results`).

pub mod bench_cmd;
pub mod inspect;
pub mod local;
pub mod results;
pub mod score_cli;
pub mod stage_cmd;

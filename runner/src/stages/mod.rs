//! The stage commands the operator schedules, and the ad-hoc commands (`inspect`, `score`).

pub mod inspect;
pub mod local;
pub mod score_cli;
pub mod stage_cmd;

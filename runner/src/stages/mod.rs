//! The stage commands the operator schedules, and the ad-hoc commands.

pub mod score_cli;

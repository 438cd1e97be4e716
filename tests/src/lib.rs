//! Test doubles for end-to-end tests: a Kubernetes API server that speaks the real HTTP API
//! ([`apiserver`]) and a Job controller that runs each Job's pod template as local processes
//! ([`jobcontroller`]), and [`cluster`], which puts them together with the real operator and
//! runner binaries and an S3 server for the scenarios in `tests/scenarios.rs`.
pub mod apiserver;
pub mod cluster;
pub mod jobcontroller;

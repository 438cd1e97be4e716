//! Test doubles for end-to-end tests: a Kubernetes API server that speaks the real HTTP API
//! ([`apiserver`]) and a Job controller that runs each Job's pod template as local processes
//! ([`jobcontroller`]).
pub mod apiserver;
pub mod jobcontroller;

//! `nas-runner` as a library: everything the stage commands are made of.
//!
//! * [`space`]: search spaces (NAS-Bench-201, DARTS): encodings, sampling, mutation.
//! * [`nn`]: network builders in tch, exact parameter and FLOP counts, weight init.
//! * [`metrics`]: one module per architecture metric behind one registry, plus rank utilities.
//! * [`data`]: data-set readers, staging into packed shards, the streaming loader.
//! * [`train`]: the trainer, recipes, checkpoints.
//! * [`store`]: the object store (S3 and local folder).
//! * [`stages`]: the stage commands the operator schedules, and `local`.
//! * [`device`]: picking CPU or CUDA.
//! * [`interrupt`]: stopping on SIGTERM at a unit boundary with the finished work kept.

/// The libtorch release tch 0.24 binds (and `scripts/bootstrap-libtorch.sh` installs).
pub const LIBTORCH_VERSION: &str = "2.11.0";

pub mod data;
pub mod device;
pub mod interrupt;
pub mod metrics;
pub mod nn;
pub mod panics;
pub mod pipeline;
pub mod progress;
pub mod space;
pub mod stages;
pub mod store;
pub mod telemetry;
pub mod train;

/// Test helpers (the S3 server, the JPEG encoder) for the integration tests.
#[cfg(feature = "test-support")]
pub use nas_testkit as testkit;

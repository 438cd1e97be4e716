//! The NASSearch operator: a pure planner `(spec, status, observed Jobs) -> actions` and a thin
//! IO shell around it (kube-rs Controller, server-side apply, events, metrics).
//!
//! * [`planner`]: the pure decision function; [`jobs`] and [`status`] build what it returns;
//!   [`observed`] and [`termination`] reduce Jobs and pods to what it reads.
//! * [`reconcile`]: carries a plan out against the API server; [`controller`] runs it.
//! * [`metrics`], [`leader`], [`telemetry`]: the process around the controller.

pub mod controller;
pub mod jobs;
pub mod leader;
pub mod metrics;
pub mod object;
pub mod observed;
pub mod planner;
pub mod reason;
pub mod reconcile;
pub mod status;
pub mod telemetry;
pub mod termination;

/// The NASSearch CustomResourceDefinition as YAML, as `nas-operator crd` prints it.
pub fn crd_yaml() -> String {
    let crd = nas_api::schema::definition();
    // Serializing a CRD value to YAML cannot fail.
    serde_yaml::to_string(&crd).unwrap_or_default()
}

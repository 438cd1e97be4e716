//! The shared vocabulary of the NAS search system.
//!
//! * [`crd`]: the `NASSearch` custom resource (spec, status, CEL rules) users `kubectl apply`;
//!   its parts in [`spec`], the client-side equivalent of its CEL rules in [`validate`].
//! * [`resolved`]: the resolved spec (`spec.json`) the operator hands the runner, and its hash.
//! * [`schema`]: the CRD as the cluster receives it (every integer bounded).
//! * [`contract`]: what the operator hands the runner (the resolved spec, stages, exit codes) and
//!   the termination summary the runner hands back.
//! * [`layout`]: the artifact key layout under one search's prefix.
//! * [`records`]: result records (score lines, rankings, training metrics, summary).
//! * [`names`]: the Kubernetes name rules fields copied into Jobs and pods must meet.
//! * [`uri`]: store locations (`s3://bucket/key`, `file:///path`, plain paths).
//!
//! No libtorch, no Kubernetes client runtime and no AWS SDK here: both binaries depend on it.

pub mod contract;
pub mod crd;
pub mod layout;
pub mod names;
pub mod records;
pub mod resolved;
pub mod schema;
pub mod spec;
pub mod strict;
pub mod uri;
pub mod validate;

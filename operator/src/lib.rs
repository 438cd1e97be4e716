//! The NASSearch operator: a pure planner `(spec, status, observed Jobs) -> actions` and a thin
//! IO shell around it (kube-rs Controller, server-side apply, events, metrics).

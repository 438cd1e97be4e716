//! End-to-end tests on a real Kubernetes control plane: [`controlplane`] starts etcd,
//! kube-apiserver, kube-controller-manager and kube-scheduler (built from Go modules by
//! `scripts/build-kube.sh`), [`kubelet`] runs the pods bound to its Node as local processes,
//! [`tools`] runs kubectl and helm, and [`cluster`] puts them together with the chart, the real
//! operator and runner binaries and an S3 server for the scenarios in `tests/scenarios.rs` and
//! `tests/cluster_policies.rs`, which share [`scenario`]'s helpers.
pub mod cluster;
pub mod controlplane;
pub mod kubelet;
pub mod scenario;
pub mod tools;

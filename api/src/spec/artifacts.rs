//! Where a search's artifacts go, and which credentials the runner pods use to write them.
use kube::KubeSchema;
use serde::{Deserialize, Serialize};

/// The S3 (or S3-compatible) location of the artifacts.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct ArtifactsSpec {
    /// Bucket name.
    #[schemars(length(min = 1, max = 255))]
    pub bucket: String,
    /// Key prefix under the bucket; the search writes below
    /// `{prefix}/{namespace}/{name}/{uid}/`.
    #[serde(default = "default_prefix")]
    pub prefix: String,
    /// Endpoint URL of an S3-compatible server (`http://` or `https://`); empty for AWS.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 2048))]
    #[x_kube(validation = Rule::new("self.startsWith('http://') || self.startsWith('https://')").message("artifacts.endpoint must start with http:// or https://"))]
    pub endpoint: Option<String>,
    /// Region of the bucket.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    /// Address buckets by path (`endpoint/bucket/key`) instead of by host name; most
    /// self-hosted S3 servers need it.
    #[serde(default)]
    pub force_path_style: bool,
    /// Credentials of the runner pods: exactly one of `secretRef` and `fromEnvironment`.
    pub credentials: CredentialsSpec,
}

fn default_prefix() -> String {
    "nas".into()
}

/// Credentials source of the runner pods. The operator never reads the Secret: it only names it
/// in the pods' environment.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default, KubeSchema)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("(has(self.secretRef) ? 1 : 0) + ((has(self.fromEnvironment) && self.fromEnvironment) ? 1 : 0) == 1").message("artifacts.credentials needs exactly one of secretRef and fromEnvironment: true"))]
pub struct CredentialsSpec {
    /// A Secret in the search's namespace holding an access key pair.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_ref: Option<SecretKeyRef>,
    /// Use what the pod's environment provides (workload identity, instance role, or variables
    /// injected by the cluster).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from_environment: Option<bool>,
}

/// A Secret holding an access key pair.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct SecretKeyRef {
    /// Name of the Secret.
    #[schemars(length(min = 1, max = 253))]
    pub name: String,
    /// Key of the access key id in the Secret.
    #[serde(default = "default_access_key_key")]
    pub access_key_id_key: String,
    /// Key of the secret access key in the Secret.
    #[serde(default = "default_secret_key_key")]
    pub secret_access_key_key: String,
}

fn default_access_key_key() -> String {
    "AWS_ACCESS_KEY_ID".into()
}
fn default_secret_key_key() -> String {
    "AWS_SECRET_ACCESS_KEY".into()
}

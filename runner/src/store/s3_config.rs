//! Settings of the S3 backend, and where they come from in a pod.
//!
//! [`S3Config::from_env`] reads the standard AWS variables, so a pod configured for any AWS
//! tool (IRSA's `AWS_WEB_IDENTITY_TOKEN_FILE`, `AWS_PROFILE`, static keys) works unchanged:
//!
//! | variable | meaning |
//! |---|---|
//! | `AWS_ENDPOINT_URL_S3`, else `AWS_ENDPOINT_URL` | endpoint of an S3-compatible store |
//! | `AWS_REGION`, else `AWS_DEFAULT_REGION` | region (default `us-east-1`) |
//! | `AWS_S3_FORCE_PATH_STYLE` (`true`/`1`) | path-style addressing (`endpoint/bucket/key`) |
//! | `AWS_CA_BUNDLE` | PEM file of extra trusted CA certificates |
//! | `NAS_S3_MAX_ATTEMPTS`, `NAS_S3_RETRY_BASE_MS` | retries of throttling, 5xx and timeouts (default 6 attempts from 200 ms, doubling) |
//! | credentials | the SDK's default chain: environment, web identity, profile, container, IMDS |
use super::{RetryPolicy, StoreError};
use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

/// S3's smallest part size (except the last part).
pub const MIN_PART_SIZE: usize = 5 * 1024 * 1024;
/// S3's largest part size.
pub const MAX_PART_SIZE: usize = 5 * 1024 * 1024 * 1024;
/// S3's largest part count.
pub const MAX_PARTS: u64 = 10_000;

/// A secret that never appears in `Debug` output or logs.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(s: impl Into<String>) -> Self {
        Secret(s.into())
    }
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum S3Credentials {
    /// The SDK's default provider chain: environment, web identity (IRSA), profile, container
    /// and instance metadata.
    DefaultChain,
    Static {
        access_key_id: String,
        secret_access_key: Secret,
        session_token: Option<Secret>,
    },
}

#[derive(Clone, Debug)]
pub struct S3Config {
    pub bucket: String,
    /// Key prefix the store is rooted at inside the bucket (no leading or trailing `/`).
    pub prefix: String,
    /// `None`: the default chain's region, else `us-east-1`.
    pub region: Option<String>,
    /// `http(s)://host:port` of an S3-compatible store; `None` for AWS.
    pub endpoint: Option<String>,
    pub path_style: bool,
    pub credentials: S3Credentials,
    /// PEM file with CA certificates to trust besides the system's.
    pub ca_bundle: Option<PathBuf>,
    /// Part size of multipart uploads; memory use is at most `upload_concurrency` parts.
    pub part_size: usize,
    /// Files at least this large are uploaded in parts.
    pub multipart_threshold: u64,
    pub upload_concurrency: usize,
    pub retry: RetryPolicy,
    pub connect_timeout: Duration,
    /// Limit on one attempt of one request (one part, one small object).
    pub attempt_timeout: Duration,
    /// Check at open that the bucket exists and the credentials may use it, so that a wrong
    /// setting fails the stage at once with `Config`, not after its first work.
    pub verify_bucket: bool,
}

impl S3Config {
    pub fn new(bucket: impl Into<String>) -> Self {
        S3Config {
            bucket: bucket.into(),
            prefix: String::new(),
            region: None,
            endpoint: None,
            path_style: false,
            credentials: S3Credentials::DefaultChain,
            ca_bundle: None,
            part_size: 16 * 1024 * 1024,
            multipart_threshold: 32 * 1024 * 1024,
            upload_concurrency: 4,
            retry: RetryPolicy::default(),
            connect_timeout: Duration::from_secs(10),
            attempt_timeout: Duration::from_secs(300),
            verify_bucket: true,
        }
    }

    /// Settings from the standard AWS environment variables (see the module docs).
    pub fn from_env(bucket: impl Into<String>) -> Result<Self, StoreError> {
        Self::from_vars(bucket, |k| std::env::var(k).ok().filter(|v| !v.is_empty()))
    }

    /// [`from_env`](Self::from_env) with the variables looked up by `var`, for tests.
    pub fn from_vars(
        bucket: impl Into<String>,
        var: impl Fn(&str) -> Option<String>,
    ) -> Result<Self, StoreError> {
        let mut c = S3Config::new(bucket);
        c.endpoint = var("AWS_ENDPOINT_URL_S3").or_else(|| var("AWS_ENDPOINT_URL"));
        c.region = var("AWS_REGION").or_else(|| var("AWS_DEFAULT_REGION"));
        if let Some(v) = var("AWS_S3_FORCE_PATH_STYLE") {
            c.path_style = match v.to_ascii_lowercase().as_str() {
                "1" | "true" | "yes" => true,
                "0" | "false" | "no" => false,
                _ => {
                    return Err(StoreError::Config(format!(
                        "AWS_S3_FORCE_PATH_STYLE is '{v}': expected true or false"
                    )))
                }
            };
        }
        c.ca_bundle = var("AWS_CA_BUNDLE").map(PathBuf::from);
        if let Some(v) = var("NAS_S3_MAX_ATTEMPTS") {
            c.retry.max_attempts = v.trim().parse().ok().filter(|n| *n >= 1).ok_or_else(|| {
                StoreError::Config(format!(
                    "NAS_S3_MAX_ATTEMPTS is '{v}': expected a whole number of at least 1"
                ))
            })?;
        }
        if let Some(v) = var("NAS_S3_RETRY_BASE_MS") {
            let ms: u64 = v.trim().parse().map_err(|_| {
                StoreError::Config(format!(
                    "NAS_S3_RETRY_BASE_MS is '{v}': expected milliseconds"
                ))
            })?;
            c.retry.base_delay = std::time::Duration::from_millis(ms);
            c.retry.max_delay = c.retry.max_delay.max(c.retry.base_delay);
        }
        Ok(c)
    }

    /// The endpoint as error messages name it.
    pub fn endpoint_label(&self) -> String {
        match &self.endpoint {
            Some(e) => e.clone(),
            None => format!(
                "AWS S3 (region {})",
                self.region.as_deref().unwrap_or("from the default chain")
            ),
        }
    }

    /// Checks the settings that need no network.
    pub fn validate(&self) -> Result<(), StoreError> {
        let err = |m: String| Err(StoreError::Config(m));
        if self.bucket.is_empty() {
            return err("S3 bucket name is empty".into());
        }
        if let Some(e) = &self.endpoint {
            if !(e.starts_with("http://") || e.starts_with("https://")) {
                return err(format!(
                    "S3 endpoint '{e}' must start with http:// or https://"
                ));
            }
        }
        if !(MIN_PART_SIZE..=MAX_PART_SIZE).contains(&self.part_size) {
            return err(format!(
                "S3 part_size {} is outside S3's limits [{MIN_PART_SIZE}, {MAX_PART_SIZE}] bytes",
                self.part_size
            ));
        }
        if self.upload_concurrency == 0 {
            return err("S3 upload_concurrency must be at least 1".into());
        }
        if self.retry.max_attempts == 0 {
            return err("S3 retry.max_attempts must be at least 1".into());
        }
        if let S3Credentials::Static {
            access_key_id,
            secret_access_key,
            ..
        } = &self.credentials
        {
            if access_key_id.is_empty() || secret_access_key.expose().is_empty() {
                return err(
                    "S3 static credentials need both an access key id and a secret access key"
                        .into(),
                );
            }
        }
        Ok(())
    }

    /// The part size for a file of `len` bytes: the configured one, grown if the file would
    /// need more than S3's 10,000 parts.
    pub fn part_size_for(&self, len: u64) -> usize {
        let needed = len.div_ceil(MAX_PARTS);
        usize::try_from(needed).map_or(MAX_PART_SIZE, |n| n.max(self.part_size).min(MAX_PART_SIZE))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    #[test]
    fn secret_is_redacted() {
        let c = S3Credentials::Static {
            access_key_id: "AKIA".into(),
            secret_access_key: Secret::new("hunter2"),
            session_token: None,
        };
        assert!(!format!("{c:?}").contains("hunter2"));
    }

    #[test]
    fn reads_the_environment() {
        let vars: HashMap<&str, &str> = [
            ("AWS_ENDPOINT_URL", "http://generic:9000"),
            ("AWS_ENDPOINT_URL_S3", "http://minio:9000"),
            ("AWS_DEFAULT_REGION", "eu-west-1"),
            ("AWS_S3_FORCE_PATH_STYLE", "true"),
            ("AWS_CA_BUNDLE", "/etc/ca.pem"),
        ]
        .into();
        let c = S3Config::from_vars("b", |k| vars.get(k).map(|v| v.to_string())).unwrap();
        assert_eq!(c.endpoint.as_deref(), Some("http://minio:9000"));
        assert_eq!(c.region.as_deref(), Some("eu-west-1"));
        assert!(c.path_style);
        assert_eq!(c.ca_bundle, Some(PathBuf::from("/etc/ca.pem")));
        assert_eq!(c.credentials, S3Credentials::DefaultChain);
        let bad = S3Config::from_vars("b", |k| {
            (k == "AWS_S3_FORCE_PATH_STYLE").then(|| "maybe".to_string())
        });
        assert!(matches!(bad, Err(StoreError::Config(m)) if m.contains("AWS_S3_FORCE_PATH_STYLE")));
    }

    #[test]
    fn validation() {
        assert!(S3Config::new("b").validate().is_ok());
        let mut c = S3Config::new("b");
        c.part_size = 1024;
        assert!(c.validate().is_err());
        let mut c = S3Config::new("b");
        c.endpoint = Some("minio:9000".into());
        assert!(c.validate().is_err());
    }

    #[test]
    fn part_size_grows_for_huge_files() {
        let c = S3Config::new("b");
        assert_eq!(c.part_size_for(100), c.part_size);
        let huge = 10_000 * c.part_size as u64 * 3;
        assert_eq!(c.part_size_for(huge), c.part_size * 3);
    }
}

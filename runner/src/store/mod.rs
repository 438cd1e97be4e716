//! The object store: one blocking trait, two backends (S3 and a local folder).
//!
//! Blocking on purpose: the runner's stages are tensor code on worker threads; the S3 backend
//! owns a Tokio runtime and waits on it. Both backends share the key rules ([`validate_key`]),
//! list order (byte-wise sorted keys) and errors (`NotFound` for a missing key, `Config` for
//! settings that retrying cannot fix, `Transient` after retries ran out).

pub mod local;
mod retry;
pub mod s3;
mod s3_client;
mod s3_config;
#[cfg(feature = "test-support")]
pub mod testing;

pub use local::LocalStore;
pub use retry::RetryPolicy;
pub use s3::S3Store;
pub use s3_config::{S3Config, S3Credentials, Secret};

use nas_api::contract::Outcome;
use nas_api::uri::StoreUri;
use std::path::Path;
use thiserror::Error;

#[derive(Debug, Error)]
pub enum StoreError {
    #[error("object {key} not found in {location}")]
    NotFound { location: String, key: String },
    /// Credentials, bucket or endpoint are wrong: retrying will not help.
    #[error("{0}")]
    Config(String),
    /// Network, throttling, 5xx: retried already, may work later.
    #[error("{0}")]
    Transient(String),
    #[error("{context}: {source}")]
    Io {
        context: String,
        source: std::io::Error,
    },
    #[error("invalid object key '{key}': {reason}")]
    InvalidKey { key: String, reason: String },
    /// The bytes read do not match the checksum stored with the object, even after re-reading.
    #[error("object {key} in {location} is corrupt: sha256 {actual}, expected {expected}")]
    Corrupt {
        location: String,
        key: String,
        expected: String,
        actual: String,
    },
    /// The store refused the request for a reason other than credentials or a missing bucket.
    #[error("{0}")]
    Rejected(String),
}

impl StoreError {
    /// How a stage that fails with this error ends: configuration errors fail the Job,
    /// everything else is worth a retry of the pod.
    pub fn outcome(&self) -> Outcome {
        match self {
            StoreError::Config(_) | StoreError::InvalidKey { .. } => Outcome::InvalidConfig,
            _ => Outcome::Failed,
        }
    }

    pub fn is_not_found(&self) -> bool {
        matches!(self, StoreError::NotFound { .. })
    }
}

/// Keys are `/`-separated and relative to the store's root (bucket + prefix, or folder).
///
/// Both backends are safe to call from several threads at once. A key and a key below it
/// (`a` and `a/b`) cannot both exist in a local folder; the layout never needs that.
pub trait ObjectStore: Send + Sync {
    /// Human-readable location (`s3://bucket/prefix`, `file:///path`), never credentials.
    fn describe(&self) -> String;
    /// Writes the whole object at once: readers see the old bytes or the new ones, never a mix.
    fn put(&self, key: &str, bytes: &[u8]) -> Result<(), StoreError>;
    /// Reads the whole object, verified against the checksum stored with it.
    fn get(&self, key: &str) -> Result<Vec<u8>, StoreError>;
    /// Uploads a local file (multipart for large ones), without reading it whole into memory.
    fn put_file(&self, key: &str, path: &Path) -> Result<(), StoreError>;
    /// Downloads to a local file, atomically (temporary file, then rename).
    fn get_to_file(&self, key: &str, path: &Path) -> Result<(), StoreError>;
    fn exists(&self, key: &str) -> Result<bool, StoreError>;
    /// Keys that start with `prefix` (a plain string prefix, e.g. `score/shard-`), sorted.
    fn list(&self, prefix: &str) -> Result<Vec<String>, StoreError>;
    /// Removes the object; removing a missing one is not an error.
    fn delete(&self, key: &str) -> Result<(), StoreError>;

    /// `get`, with a missing object as `None`.
    fn get_opt(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        match self.get(key) {
            Ok(bytes) => Ok(Some(bytes)),
            Err(StoreError::NotFound { .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }
}

/// Name prefix of the local backend's temporary files; no key component may start with it.
pub(crate) const TEMP_MARKER: &str = ".nas-tmp.";

/// The key rules both backends enforce, so that a layout that works locally works on S3 and
/// the reverse: non-empty `/`-separated components, none empty, `.`, `..` or a temporary
/// file's name, no backslash or control character.
pub fn validate_key(key: &str) -> Result<(), StoreError> {
    let bad = |reason: &str| {
        Err(StoreError::InvalidKey {
            key: key.into(),
            reason: reason.into(),
        })
    };
    if key.is_empty() {
        return bad("empty");
    }
    if key.len() > 1024 {
        return bad("longer than 1024 bytes");
    }
    if key.starts_with('/') || key.ends_with('/') {
        return bad("must not start or end with '/'");
    }
    if key.contains('\\') || key.chars().any(char::is_control) {
        return bad("must not contain '\\' or control characters");
    }
    for c in key.split('/') {
        if c.is_empty() || c == "." || c == ".." {
            return bad("components must not be empty, '.' or '..'");
        }
        if c.starts_with(TEMP_MARKER) {
            return bad("components must not start with the temporary-file marker '.nas-tmp.'");
        }
    }
    Ok(())
}

/// A list prefix: empty, or a key's beginning (it may end with `/` or mid-component).
pub(crate) fn validate_prefix(prefix: &str) -> Result<(), StoreError> {
    if prefix.is_empty() {
        return Ok(());
    }
    let trimmed = prefix.strip_suffix('/').unwrap_or(prefix);
    if trimmed.is_empty() {
        return Err(StoreError::InvalidKey {
            key: prefix.into(),
            reason: "a list prefix must not be '/'".into(),
        });
    }
    validate_key(trimmed)
}

/// Opens the store rooted at `uri`: the bucket and key prefix of an `s3://` URI (with the
/// other S3 settings from `s3`, see [`S3Config::from_env`]), or a local folder, created if
/// missing.
pub fn open_store(
    uri: &StoreUri,
    s3: Option<&S3Config>,
) -> Result<Box<dyn ObjectStore>, StoreError> {
    match uri {
        StoreUri::S3 { bucket, key } => {
            let mut config = match s3 {
                Some(c) => c.clone(),
                None => S3Config::from_env(bucket)?,
            };
            config.bucket = bucket.clone();
            config.prefix = key.clone();
            Ok(Box::new(S3Store::open(config)?))
        }
        StoreUri::File { path } => Ok(Box::new(LocalStore::open(path)?)),
    }
}

/// Opens the store that holds the object at `uri` (e.g. `--spec s3://b/p/ns/n/uid/spec.json`),
/// rooted at the bucket (or at the file's folder), and returns the object's key in it.
pub fn open_object(
    uri: &StoreUri,
    s3: Option<&S3Config>,
) -> Result<(Box<dyn ObjectStore>, String), StoreError> {
    match uri {
        StoreUri::S3 { bucket, key } => {
            validate_key(key)?;
            let root = StoreUri::S3 {
                bucket: bucket.clone(),
                key: String::new(),
            };
            Ok((open_store(&root, s3)?, key.clone()))
        }
        StoreUri::File { .. } => {
            let (dir, name) = uri
                .split_last()
                .ok_or_else(|| StoreError::Config(format!("'{uri}' does not name a file")))?;
            Ok((open_store(&dir, s3)?, name))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use nas_api::contract::exit_code;

    #[test]
    fn key_rules() {
        for ok in [
            "a",
            "a/b.json",
            "score/shard-00001._SUCCESS",
            ".hidden/x",
            "é/ü",
        ] {
            assert!(validate_key(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "/a",
            "a/",
            "a//b",
            "a/./b",
            "../a",
            "a\\b",
            "a/.nas-tmp.1.2.x",
            "a\nb",
        ] {
            assert!(
                matches!(validate_key(bad), Err(StoreError::InvalidKey { .. })),
                "{bad:?}"
            );
        }
        assert!(validate_prefix("").is_ok());
        assert!(validate_prefix("score/").is_ok());
        assert!(validate_prefix("score/shard-").is_ok());
        assert!(validate_prefix("/").is_err());
        assert!(validate_prefix("../").is_err());
    }

    #[test]
    fn exit_codes() {
        assert_eq!(
            StoreError::Config("x".into()).outcome().exit_code(),
            exit_code::INVALID_CONFIG
        );
        assert_eq!(
            StoreError::Transient("x".into()).outcome().exit_code(),
            exit_code::RETRY
        );
    }
}

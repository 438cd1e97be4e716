//! The object store: one blocking trait, two backends (S3 and a local folder).
//!
//! Blocking on purpose: the runner's stages are tensor code on worker threads; the S3 backend
//! owns a Tokio runtime and blocks on it.

pub mod local;
pub use local::LocalStore;

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
}

/// Keys are `/`-separated and relative to the store's root (bucket + prefix, or folder).
pub trait ObjectStore: Send + Sync {
    /// Human-readable location (`s3://bucket/prefix`, `file:///path`), never credentials.
    fn describe(&self) -> String;
    fn put(&self, key: &str, bytes: &[u8]) -> Result<(), StoreError>;
    fn get(&self, key: &str) -> Result<Vec<u8>, StoreError>;
    /// Uploads a local file (multipart for large ones), without reading it whole into memory.
    fn put_file(&self, key: &str, path: &Path) -> Result<(), StoreError>;
    /// Downloads to a local file, atomically (temporary file, then rename).
    fn get_to_file(&self, key: &str, path: &Path) -> Result<(), StoreError>;
    fn exists(&self, key: &str) -> Result<bool, StoreError>;
    /// Keys under `prefix`, sorted.
    fn list(&self, prefix: &str) -> Result<Vec<String>, StoreError>;
    fn delete(&self, key: &str) -> Result<(), StoreError>;
}

//! S3 backend (aws-sdk-s3): any S3-compatible store, path-style or virtual-hosted.
//!
//! The store owns a small Tokio runtime; each blocking call spawns its operation there and
//! waits for the result on a channel, so it never nests runtimes and may be called from any
//! thread. From async code, call it through `spawn_blocking`: it blocks the calling thread.
//!
//! Integrity: every object this store writes carries the sha256 of its bytes in the user
//! metadata `sha256`; reads hash what arrives and retry on a mismatch, then fail with
//! `Corrupt`. Objects written by other tools (without that metadata) are read unverified.
//!
//! Large files are uploaded in parts, at most `upload_concurrency` parts in memory at once;
//! a failed upload is aborted so no orphaned parts are billed.
use super::local::{sync_dir, temp_beside};
use super::retry::{with_retries, Failure};
use super::s3_client::{build_client, classify, Target};
use super::{validate_key, validate_prefix, ObjectStore, RetryPolicy, S3Config, StoreError};
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{CompletedMultipartUpload, CompletedPart};
use futures::{StreamExt, TryStreamExt};
use sha2::{Digest, Sha256};
use std::fs::File;
use std::future::Future;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

/// User-metadata key of the object's sha256 (hex).
pub const SHA256_METADATA: &str = "sha256";

pub struct S3Store {
    inner: Arc<Inner>,
    /// `Some` until drop; shut down in the background so dropping never blocks or panics.
    rt: Option<tokio::runtime::Runtime>,
}

struct Inner {
    client: aws_sdk_s3::Client,
    target: Target,
    /// `""` or `prefix/`.
    prefix: String,
    policy: RetryPolicy,
    /// Part sizes and concurrency; its credentials are not used after the client is built.
    cfg: S3Config,
}

impl S3Store {
    /// Connects, and with `verify_bucket` checks that the bucket exists and the credentials
    /// may use it (`Config` error naming bucket and endpoint otherwise).
    pub fn open(cfg: S3Config) -> Result<Self, StoreError> {
        cfg.validate()?;
        let prefix = cfg.prefix.trim_matches('/').to_string();
        validate_prefix(&prefix).map_err(|e| StoreError::Config(format!("S3 key prefix: {e}")))?;
        let prefix = if prefix.is_empty() {
            prefix
        } else {
            format!("{prefix}/")
        };
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("nas-s3")
            .enable_all()
            .build()
            .map_err(|source| StoreError::Io {
                context: "starting the S3 client's runtime".into(),
                source,
            })?;
        let build_cfg = cfg.clone();
        let client = run_on(&rt, async move { build_client(&build_cfg).await })?;
        let inner = Inner {
            client,
            target: Target {
                bucket: cfg.bucket.clone(),
                endpoint: cfg.endpoint_label(),
            },
            prefix,
            policy: cfg.retry,
            cfg: cfg.clone(),
        };
        let store = S3Store {
            inner: Arc::new(inner),
            rt: Some(rt),
        };
        if cfg.verify_bucket {
            store.check_bucket()?;
        }
        Ok(store)
    }

    /// HeadBucket: fails with `Config` if the bucket is missing or the credentials are refused.
    pub fn check_bucket(&self) -> Result<(), StoreError> {
        let inner = self.inner.clone();
        self.run(async move { inner.check_bucket().await })
    }

    fn run<T: Send + 'static>(
        &self,
        fut: impl Future<Output = Result<T, StoreError>> + Send + 'static,
    ) -> Result<T, StoreError> {
        match &self.rt {
            Some(rt) => run_on(rt, fut),
            None => Err(StoreError::Transient(
                "the S3 client's runtime is shut down".into(),
            )),
        }
    }
}

/// Runs `fut` on `rt` and waits for it on a channel: works from any thread, inside another
/// runtime too (where `Runtime::block_on` would panic).
fn run_on<T: Send + 'static>(
    rt: &tokio::runtime::Runtime,
    fut: impl Future<Output = Result<T, StoreError>> + Send + 'static,
) -> Result<T, StoreError> {
    let (tx, rx) = std::sync::mpsc::sync_channel(1);
    rt.spawn(async move {
        let _ = tx.send(fut.await);
    });
    rx.recv().unwrap_or_else(|_| {
        Err(StoreError::Transient(
            "the S3 operation was cancelled".into(),
        ))
    })
}

impl Drop for S3Store {
    fn drop(&mut self) {
        if let Some(rt) = self.rt.take() {
            rt.shutdown_background();
        }
    }
}

fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// Compares a computed hash with the stored one; `None` stored means unverifiable.
fn verify(
    expected: Option<&String>,
    actual: &str,
    mismatch: &Mutex<Option<(String, String)>>,
) -> Result<(), Failure> {
    match expected {
        Some(e) if !e.eq_ignore_ascii_case(actual) => {
            if let Ok(mut m) = mismatch.lock() {
                *m = Some((e.clone(), actual.to_string()));
            }
            Err(Failure::Retry(format!(
                "sha256 mismatch: got {actual}, expected {e}"
            )))
        }
        _ => Ok(()),
    }
}

fn io_fatal(context: String) -> impl FnOnce(std::io::Error) -> Failure {
    move |source| Failure::Fatal(StoreError::Io { context, source })
}

impl Inner {
    fn full(&self, key: &str) -> String {
        format!("{}{key}", self.prefix)
    }

    fn location(&self) -> String {
        format!(
            "s3://{}/{} at {}",
            self.target.bucket, self.prefix, self.target.endpoint
        )
    }

    fn corrupt_or_transient(
        &self,
        key: &str,
        mismatch: &Mutex<Option<(String, String)>>,
        msg: String,
    ) -> StoreError {
        match mismatch.lock().ok().and_then(|mut m| m.take()) {
            Some((expected, actual)) => StoreError::Corrupt {
                location: self.location(),
                key: key.into(),
                expected,
                actual,
            },
            None => StoreError::Transient(msg),
        }
    }

    async fn check_bucket(&self) -> Result<(), StoreError> {
        let what = "check bucket";
        with_retries(
            &self.policy,
            what,
            || async {
                self.client
                    .head_bucket()
                    .bucket(&self.target.bucket)
                    .send()
                    .await
                    .map(drop)
                    .map_err(|e| classify(e, &self.target, what, None))
            },
            StoreError::Transient,
        )
        .await
    }

    async fn put(&self, key: String, body: bytes::Bytes) -> Result<(), StoreError> {
        let sha = sha256_hex(&body);
        let what = format!("put {key}");
        let full = self.full(&key);
        with_retries(
            &self.policy,
            &what,
            || async {
                self.client
                    .put_object()
                    .bucket(&self.target.bucket)
                    .key(&full)
                    .metadata(SHA256_METADATA, &sha)
                    .body(ByteStream::from(body.clone()))
                    .send()
                    .await
                    .map(drop)
                    .map_err(|e| classify(e, &self.target, &what, None))
            },
            StoreError::Transient,
        )
        .await
    }

    async fn get(&self, key: String) -> Result<Vec<u8>, StoreError> {
        let what = format!("get {key}");
        let full = self.full(&key);
        let mismatch = Mutex::new(None);
        with_retries(
            &self.policy,
            &what,
            || async {
                let out = self
                    .client
                    .get_object()
                    .bucket(&self.target.bucket)
                    .key(&full)
                    .send()
                    .await
                    .map_err(|e| classify(e, &self.target, &what, Some(&key)))?;
                let expected = out.metadata().and_then(|m| m.get(SHA256_METADATA)).cloned();
                let bytes = out
                    .body
                    .collect()
                    .await
                    .map_err(|e| Failure::Retry(format!("{what}: reading the body: {e}")))?
                    .into_bytes();
                verify(expected.as_ref(), &sha256_hex(&bytes), &mismatch)?;
                Ok(bytes.to_vec())
            },
            |msg| self.corrupt_or_transient(&key, &mismatch, msg),
        )
        .await
    }

    async fn get_to_file(&self, key: String, dest: PathBuf) -> Result<(), StoreError> {
        let what = format!("get {key}");
        let full = self.full(&key);
        let mismatch = Mutex::new(None);
        if let Some(dir) = dest.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|source| StoreError::Io {
                context: format!("creating folder {}", dir.display()),
                source,
            })?;
        }
        with_retries(
            &self.policy,
            &what,
            || async {
                let tmp = temp_beside(&dest);
                let result = self
                    .download_once(&full, &key, &what, &tmp, &dest, &mismatch)
                    .await;
                if result.is_err() {
                    let _ = std::fs::remove_file(&tmp);
                }
                result
            },
            |msg| self.corrupt_or_transient(&key, &mismatch, msg),
        )
        .await
    }

    /// One attempt: streams the body into `tmp` while hashing, checks, renames onto `dest`.
    async fn download_once(
        &self,
        full: &str,
        key: &str,
        what: &str,
        tmp: &Path,
        dest: &Path,
        mismatch: &Mutex<Option<(String, String)>>,
    ) -> Result<(), Failure> {
        let mut out = self
            .client
            .get_object()
            .bucket(&self.target.bucket)
            .key(full)
            .send()
            .await
            .map_err(|e| classify(e, &self.target, what, Some(key)))?;
        let expected = out.metadata().and_then(|m| m.get(SHA256_METADATA)).cloned();
        let mut file =
            File::create(tmp).map_err(io_fatal(format!("creating {}", tmp.display())))?;
        let mut hasher = Sha256::new();
        while let Some(chunk) = out
            .body
            .try_next()
            .await
            .map_err(|e| Failure::Retry(format!("{what}: reading the body: {e}")))?
        {
            hasher.update(&chunk);
            file.write_all(&chunk)
                .map_err(io_fatal(format!("writing {}", tmp.display())))?;
        }
        file.sync_all()
            .map_err(io_fatal(format!("syncing {}", tmp.display())))?;
        drop(file);
        verify(expected.as_ref(), &hex::encode(hasher.finalize()), mismatch)?;
        std::fs::rename(tmp, dest).map_err(io_fatal(format!(
            "renaming {} to {}",
            tmp.display(),
            dest.display()
        )))?;
        sync_dir(dest.parent().unwrap_or(Path::new("."))).map_err(Failure::Fatal)
    }

    async fn put_file(&self, key: String, path: PathBuf) -> Result<(), StoreError> {
        let io = |context: String| move |source| StoreError::Io { context, source };
        let len = std::fs::metadata(&path)
            .map_err(io(format!("reading {}", path.display())))?
            .len();
        if len < self.cfg.multipart_threshold {
            let bytes = std::fs::read(&path).map_err(io(format!("reading {}", path.display())))?;
            return self.put(key, bytes.into()).await;
        }
        let hash_path = path.clone();
        let sha = tokio::task::spawn_blocking(move || hash_file(&hash_path))
            .await
            .map_err(|e| StoreError::Transient(format!("hashing {}: {e}", path.display())))?
            .map_err(io(format!("reading {}", path.display())))?;
        let full = self.full(&key);
        let what = format!("start multipart upload of {key}");
        let upload_id = with_retries(
            &self.policy,
            &what,
            || async {
                let out = self
                    .client
                    .create_multipart_upload()
                    .bucket(&self.target.bucket)
                    .key(&full)
                    .metadata(SHA256_METADATA, &sha)
                    .send()
                    .await
                    .map_err(|e| classify(e, &self.target, &what, None))?;
                out.upload_id()
                    .map(str::to_string)
                    .ok_or_else(|| Failure::Retry(format!("{what}: the response has no upload id")))
            },
            StoreError::Transient,
        )
        .await?;
        let result = self.upload_parts(&key, &full, &path, len, &upload_id).await;
        if result.is_err() {
            // Best effort: the store also expires abandoned uploads by its lifecycle rules.
            let aborted = self
                .client
                .abort_multipart_upload()
                .bucket(&self.target.bucket)
                .key(&full)
                .upload_id(&upload_id)
                .send()
                .await;
            if let Err(e) = aborted {
                tracing::warn!(key, error = %aws_sdk_s3::error::DisplayErrorContext(&e), "could not abort multipart upload");
            }
        }
        result
    }

    async fn upload_parts(
        &self,
        key: &str,
        full: &str,
        path: &Path,
        len: u64,
        upload_id: &str,
    ) -> Result<(), StoreError> {
        let part_size = self.cfg.part_size_for(len) as u64;
        let count = len.div_ceil(part_size);
        let mut parts: Vec<CompletedPart> = futures::stream::iter(0..count)
            .map(|i| async move {
                let offset = i * part_size;
                let n = part_size.min(len - offset);
                let part_path = path.to_path_buf();
                let data = tokio::task::spawn_blocking(move || read_range(&part_path, offset, n))
                    .await
                    .map_err(|e| StoreError::Transient(format!("reading part {}: {e}", i + 1)))?
                    .map_err(|source| StoreError::Io {
                        context: format!("reading {}", path.display()),
                        source,
                    })?;
                let number = i32::try_from(i + 1).unwrap_or(i32::MAX);
                let what = format!("upload part {number}/{count} of {key}");
                let etag = with_retries(
                    &self.policy,
                    &what,
                    || async {
                        let out = self
                            .client
                            .upload_part()
                            .bucket(&self.target.bucket)
                            .key(full)
                            .upload_id(upload_id)
                            .part_number(number)
                            .body(ByteStream::from(data.clone()))
                            .send()
                            .await
                            .map_err(|e| classify(e, &self.target, &what, None))?;
                        Ok(out.e_tag().unwrap_or_default().to_string())
                    },
                    StoreError::Transient,
                )
                .await?;
                Ok::<_, StoreError>(
                    CompletedPart::builder()
                        .part_number(number)
                        .e_tag(etag)
                        .build(),
                )
            })
            .buffer_unordered(self.cfg.upload_concurrency)
            .try_collect()
            .await?;
        parts.sort_by_key(|p| p.part_number());
        let what = format!("complete multipart upload of {key}");
        let done = CompletedMultipartUpload::builder()
            .set_parts(Some(parts))
            .build();
        with_retries(
            &self.policy,
            &what,
            || async {
                self.client
                    .complete_multipart_upload()
                    .bucket(&self.target.bucket)
                    .key(full)
                    .upload_id(upload_id)
                    .multipart_upload(done.clone())
                    .send()
                    .await
                    .map(drop)
                    .map_err(|e| classify(e, &self.target, &what, None))
            },
            StoreError::Transient,
        )
        .await
    }

    async fn exists(&self, key: String) -> Result<bool, StoreError> {
        let what = format!("head {key}");
        let full = self.full(&key);
        let r = with_retries(
            &self.policy,
            &what,
            || async {
                self.client
                    .head_object()
                    .bucket(&self.target.bucket)
                    .key(&full)
                    .send()
                    .await
                    .map(drop)
                    .map_err(|e| classify(e, &self.target, &what, Some(&key)))
            },
            StoreError::Transient,
        )
        .await;
        match r {
            Ok(()) => Ok(true),
            Err(StoreError::NotFound { .. }) => Ok(false),
            Err(e) => Err(e),
        }
    }

    async fn list(&self, prefix: String) -> Result<Vec<String>, StoreError> {
        let what = format!("list {prefix}");
        let full = self.full(&prefix);
        let mut keys = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let page = with_retries(
                &self.policy,
                &what,
                || async {
                    self.client
                        .list_objects_v2()
                        .bucket(&self.target.bucket)
                        .prefix(&full)
                        .set_continuation_token(token.clone())
                        .send()
                        .await
                        .map_err(|e| classify(e, &self.target, &what, None))
                },
                StoreError::Transient,
            )
            .await?;
            for obj in page.contents() {
                if let Some(k) = obj.key().and_then(|k| k.strip_prefix(&self.prefix)) {
                    if !k.ends_with('/') {
                        keys.push(k.to_string());
                    }
                }
            }
            match page.next_continuation_token() {
                Some(t) if page.is_truncated() == Some(true) => token = Some(t.to_string()),
                _ => break,
            }
        }
        keys.sort();
        keys.dedup();
        Ok(keys)
    }

    async fn delete(&self, key: String) -> Result<(), StoreError> {
        let what = format!("delete {key}");
        let full = self.full(&key);
        let r = with_retries(
            &self.policy,
            &what,
            || async {
                self.client
                    .delete_object()
                    .bucket(&self.target.bucket)
                    .key(&full)
                    .send()
                    .await
                    .map(drop)
                    .map_err(|e| classify(e, &self.target, &what, Some(&key)))
            },
            StoreError::Transient,
        )
        .await;
        match r {
            Err(StoreError::NotFound { .. }) => Ok(()),
            other => other,
        }
    }
}

/// The file's sha256, read in 1 MiB blocks.
fn hash_file(path: &Path) -> std::io::Result<String> {
    let mut f = File::open(path)?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            return Ok(hex::encode(hasher.finalize()));
        }
        hasher.update(&buf[..n]);
    }
}

fn read_range(path: &Path, offset: u64, len: u64) -> std::io::Result<bytes::Bytes> {
    use std::io::{Seek, SeekFrom};
    let mut f = File::open(path)?;
    f.seek(SeekFrom::Start(offset))?;
    let mut buf = vec![0u8; usize::try_from(len).map_err(std::io::Error::other)?];
    f.read_exact(&mut buf)?;
    Ok(buf.into())
}

impl ObjectStore for S3Store {
    fn describe(&self) -> String {
        self.inner.location()
    }

    fn put(&self, key: &str, bytes: &[u8]) -> Result<(), StoreError> {
        validate_key(key)?;
        let (inner, key, body) = (
            self.inner.clone(),
            key.to_string(),
            bytes::Bytes::copy_from_slice(bytes),
        );
        self.run(async move { inner.put(key, body).await })
    }

    fn get(&self, key: &str) -> Result<Vec<u8>, StoreError> {
        validate_key(key)?;
        let (inner, key) = (self.inner.clone(), key.to_string());
        self.run(async move { inner.get(key).await })
    }

    fn put_file(&self, key: &str, path: &Path) -> Result<(), StoreError> {
        validate_key(key)?;
        let (inner, key, path) = (self.inner.clone(), key.to_string(), path.to_path_buf());
        self.run(async move { inner.put_file(key, path).await })
    }

    fn get_to_file(&self, key: &str, path: &Path) -> Result<(), StoreError> {
        validate_key(key)?;
        let (inner, key, path) = (self.inner.clone(), key.to_string(), path.to_path_buf());
        self.run(async move { inner.get_to_file(key, path).await })
    }

    fn exists(&self, key: &str) -> Result<bool, StoreError> {
        validate_key(key)?;
        let (inner, key) = (self.inner.clone(), key.to_string());
        self.run(async move { inner.exists(key).await })
    }

    fn list(&self, prefix: &str) -> Result<Vec<String>, StoreError> {
        validate_prefix(prefix)?;
        let (inner, prefix) = (self.inner.clone(), prefix.to_string());
        self.run(async move { inner.list(prefix).await })
    }

    fn delete(&self, key: &str) -> Result<(), StoreError> {
        validate_key(key)?;
        let (inner, key) = (self.inner.clone(), key.to_string());
        self.run(async move { inner.delete(key).await })
    }
}

//! An in-process S3 server for tests and benchmarks: `s3s` with the `s3s-fs` backend on
//! `127.0.0.1`, checking SigV4 signatures against one key pair. Shared by the runner's tests
//! (through its `test-support` feature) and the end-to-end tests; it needs no libtorch.
//!
//! It runs on its own Tokio runtime, so blocking clients (S3 stores) can use it from
//! plain test threads, and [`S3TestServer::stop`] can cut it off mid-run (every connection
//! closes at once) to test retries; [`S3TestServer::restart`] brings it back on the same port.
//!
//! Also [`jpeg`], an encoder that makes the test images, and [`shared_data`], the gate for the
//! few tests that need the development data sets in `../shared/data`.
pub mod jpeg;

use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto::Builder as ConnBuilder;
use s3s::auth::SimpleAuth;
use s3s::service::S3ServiceBuilder;
use std::io;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The access key the test server accepts.
pub const TEST_ACCESS_KEY: &str = "nas-test-access-key";
/// The secret key the test server accepts.
pub const TEST_SECRET_KEY: &str = "nas-test-secret-key-0123456789";
/// The region test clients sign for.
pub const TEST_REGION: &str = "us-east-1";

pub struct S3TestServer {
    root: PathBuf,
    addr: SocketAddr,
    rt: Option<tokio::runtime::Runtime>,
}

impl S3TestServer {
    /// Serves the folder `root` (created if missing; each sub-folder is a bucket) on a free port.
    pub fn start(root: &Path) -> io::Result<Self> {
        Self::start_on(root, 0)
    }

    fn start_on(root: &Path, port: u16) -> io::Result<Self> {
        std::fs::create_dir_all(root)?;
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("s3-test-server")
            .enable_all()
            .build()?;
        let fs = s3s_fs::FileSystem::new(root)
            .map_err(|e| io::Error::other(format!("s3s-fs: {e:?}")))?;
        let service = {
            let mut b = S3ServiceBuilder::new(fs);
            b.set_auth(SimpleAuth::from_single(TEST_ACCESS_KEY, TEST_SECRET_KEY));
            b.build()
        };
        let listener = rt.block_on(tokio::net::TcpListener::bind(("127.0.0.1", port)))?;
        let addr = listener.local_addr()?;
        rt.spawn(async move {
            let http = ConnBuilder::new(TokioExecutor::new());
            loop {
                let Ok((socket, _)) = listener.accept().await else {
                    continue;
                };
                let conn = http
                    .serve_connection(TokioIo::new(socket), service.clone())
                    .into_owned();
                tokio::spawn(async move {
                    let _ = conn.await;
                });
            }
        });
        Ok(S3TestServer {
            root: root.to_path_buf(),
            addr,
            rt: Some(rt),
        })
    }

    /// `http://127.0.0.1:port`.
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Creates a bucket (a folder under the root).
    pub fn create_bucket(&self, bucket: &str) -> io::Result<()> {
        std::fs::create_dir_all(self.root.join(bucket))
    }

    /// Stops serving: the listener and every open connection close now.
    pub fn stop(&mut self) {
        if let Some(rt) = self.rt.take() {
            rt.shutdown_timeout(Duration::from_secs(1));
        }
    }

    /// Serves again on the same port after [`stop`](Self::stop).
    pub fn restart(&mut self) -> io::Result<()> {
        self.stop();
        *self = Self::start_on(&self.root.clone(), self.addr.port())?;
        Ok(())
    }
}

impl Drop for S3TestServer {
    fn drop(&mut self) {
        if let Some(rt) = self.rt.take() {
            rt.shutdown_background();
        }
    }
}

/// Set to `1` (CI does) to make a missing `../shared/data` a test failure instead of a skip.
pub const REQUIRE_SHARED_DATA_ENV: &str = "NAS_REQUIRE_SHARED_DATA";

/// `../shared/data/<rel>` beside the checkout (`manifest_dir` is the calling crate's
/// `CARGO_MANIFEST_DIR`), or `None` with a line saying the test was skipped and why: these data
/// sets are not part of the repository. With [`REQUIRE_SHARED_DATA_ENV`] set to `1`, a missing
/// path panics instead, so CI cannot pass without running the test.
pub fn shared_data(manifest_dir: &str, rel: &str, test: &str) -> Option<PathBuf> {
    let path = Path::new(manifest_dir).join("../../shared/data").join(rel);
    if path.exists() {
        return Some(path);
    }
    let why = format!(
        "{test}: {} is missing (the development data sets beside the checkout)",
        path.display()
    );
    if std::env::var(REQUIRE_SHARED_DATA_ENV).as_deref() == Ok("1") {
        panic!("{why}, and {REQUIRE_SHARED_DATA_ENV}=1 requires it");
    }
    eprintln!("skipped: {why}");
    None
}

/// libtorch's RNG and thread count are process-wide and the test harness runs tests on several
/// threads: tests that seed and draw take turns through this lock (one per test binary), or one
/// test's draws land between another's two "same seed" computations. A panicked holder does not
/// poison it for the others.
pub fn rng_lock() -> std::sync::MutexGuard<'static, ()> {
    static LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());
    LOCK.lock().unwrap_or_else(|e| e.into_inner())
}

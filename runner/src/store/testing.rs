//! The in-process S3 server of `nas-testkit` (feature `test-support`), and client settings for
//! it.
use super::{RetryPolicy, S3Config, S3Credentials, Secret};
use std::time::Duration;

pub use nas_testkit::{S3TestServer, TEST_ACCESS_KEY, TEST_REGION, TEST_SECRET_KEY};

/// Client settings for an [`S3TestServer`].
pub trait S3TestConfig {
    /// Client settings for `bucket` on this server: static test keys, path-style, and a quick
    /// retry policy (4 attempts, 20 ms doubling to 200 ms) so failure tests end fast.
    fn config(&self, bucket: &str) -> S3Config;
}

impl S3TestConfig for S3TestServer {
    fn config(&self, bucket: &str) -> S3Config {
        let mut c = S3Config::new(bucket);
        c.endpoint = Some(self.endpoint());
        c.region = Some(TEST_REGION.into());
        c.path_style = true;
        c.credentials = S3Credentials::Static {
            access_key_id: TEST_ACCESS_KEY.into(),
            secret_access_key: Secret::new(TEST_SECRET_KEY),
            session_token: None,
        };
        c.retry = RetryPolicy {
            max_attempts: 4,
            base_delay: Duration::from_millis(20),
            max_delay: Duration::from_millis(200),
        };
        c.connect_timeout = Duration::from_secs(2);
        c.attempt_timeout = Duration::from_secs(30);
        c
    }
}

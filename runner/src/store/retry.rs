//! Retries with exponential backoff and full jitter for the S3 backend.
//!
//! The SDK's own retries are turned off so that one policy covers the whole operation,
//! including what the SDK cannot see: a body cut off mid-download or a checksum mismatch.
//! Full jitter (a uniform delay in `[0, min(max, base * 2^attempt)]`) spreads the retries of
//! the many pods of an Indexed Job that hit a throttling store at once.
use super::StoreError;
use rand::Rng;
use std::future::Future;
use std::time::Duration;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts in all, the first included (at least 1).
    pub max_attempts: u32,
    pub base_delay: Duration,
    pub max_delay: Duration,
}

impl Default for RetryPolicy {
    /// 6 attempts, 200 ms doubling to at most 10 s: about 15 s of waiting at worst.
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 6,
            base_delay: Duration::from_millis(200),
            max_delay: Duration::from_secs(10),
        }
    }
}

impl RetryPolicy {
    /// The delay before retry number `retry` (0 for the first retry).
    pub fn delay(&self, retry: u32, rng: &mut impl Rng) -> Duration {
        let cap = self
            .base_delay
            .saturating_mul(1u32.checked_shl(retry.min(31)).unwrap_or(u32::MAX))
            .min(self.max_delay);
        let nanos = u64::try_from(cap.as_nanos()).unwrap_or(u64::MAX);
        Duration::from_nanos(if nanos == 0 {
            0
        } else {
            rng.random_range(0..=nanos)
        })
    }

    /// The longest total delay this policy can wait, for bounding tests and timeouts.
    pub fn max_total_delay(&self) -> Duration {
        (0..self.max_attempts.saturating_sub(1))
            .map(|r| {
                self.base_delay
                    .saturating_mul(1u32.checked_shl(r.min(31)).unwrap_or(u32::MAX))
                    .min(self.max_delay)
            })
            .sum()
    }
}

/// The outcome of one failed attempt.
#[derive(Debug)]
pub(crate) enum Failure {
    /// Worth another attempt (network, timeout, throttling, 5xx, bad checksum).
    Retry(String),
    /// Final: retrying cannot help.
    Fatal(StoreError),
}

/// Runs `op` until it succeeds, fails fatally or the attempts run out; `what` names the
/// operation in logs and in the final error, and `exhausted` builds that error from the last
/// failure's message (e.g. into `Corrupt` for a persistent checksum mismatch).
pub(crate) async fn with_retries<T, F, Fut>(
    policy: &RetryPolicy,
    what: &str,
    mut op: F,
    exhausted: impl FnOnce(String) -> StoreError,
) -> Result<T, StoreError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, Failure>>,
{
    let attempts = policy.max_attempts.max(1);
    let mut last = String::new();
    for attempt in 0..attempts {
        match op().await {
            Ok(v) => return Ok(v),
            Err(Failure::Fatal(e)) => return Err(e),
            Err(Failure::Retry(msg)) => {
                last = msg;
                if attempt + 1 < attempts {
                    let delay = policy.delay(attempt, &mut rand::rng());
                    tracing::warn!(operation = what, attempt = attempt + 1, of = attempts, delay_ms = delay.as_millis() as u64, error = %last, "retrying");
                    tokio::time::sleep(delay).await;
                }
            }
        }
    }
    Err(exhausted(format!(
        "{what} failed after {attempts} attempts: {last}"
    )))
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    #[test]
    fn delays_grow_and_stay_under_the_cap() {
        let p = RetryPolicy {
            max_attempts: 10,
            base_delay: Duration::from_millis(100),
            max_delay: Duration::from_secs(1),
        };
        let mut rng = ChaCha8Rng::seed_from_u64(7);
        for retry in 0..20 {
            let cap =
                Duration::from_millis(100 * (1u64 << retry.min(20))).min(Duration::from_secs(1));
            for _ in 0..50 {
                assert!(p.delay(retry, &mut rng) <= cap);
            }
        }
        // Jitter: not all the same.
        let d: Vec<_> = (0..10).map(|_| p.delay(5, &mut rng)).collect();
        assert!(d.iter().any(|x| *x != d[0]));
        assert_eq!(
            p.max_total_delay(),
            Duration::from_millis(100 + 200 + 400 + 800 + 1000 * 5)
        );
    }

    #[test]
    fn retries_until_success_or_exhaustion() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .unwrap();
        let p = RetryPolicy {
            max_attempts: 3,
            base_delay: Duration::from_millis(1),
            max_delay: Duration::from_millis(2),
        };
        let mut calls = 0;
        let r: Result<u32, _> = rt.block_on(with_retries(
            &p,
            "get x",
            || {
                calls += 1;
                let n = calls;
                async move {
                    if n < 3 {
                        Err(Failure::Retry(format!("boom {n}")))
                    } else {
                        Ok(n)
                    }
                }
            },
            StoreError::Transient,
        ));
        assert_eq!(r.unwrap(), 3);

        let mut calls = 0;
        let r: Result<u32, _> = rt.block_on(with_retries(
            &p,
            "get y",
            || {
                calls += 1;
                async { Err(Failure::Retry("down".into())) }
            },
            StoreError::Transient,
        ));
        assert_eq!(calls, 3);
        let msg = r.unwrap_err().to_string();
        assert_eq!(msg, "get y failed after 3 attempts: down");

        let mut calls = 0;
        let r: Result<u32, _> = rt.block_on(with_retries(
            &p,
            "get z",
            || {
                calls += 1;
                async { Err(Failure::Fatal(StoreError::Config("bad".into()))) }
            },
            StoreError::Transient,
        ));
        assert_eq!(calls, 1);
        assert!(matches!(r, Err(StoreError::Config(_))));
    }
}

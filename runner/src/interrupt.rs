//! Stopping on request: Kubernetes sends SIGTERM to a pod it deletes, which is how a Job is
//! suspended (by the user or by Kueue), preempted or drained off a node.
//!
//! A stage command installs the handler ([`install`]). On the first SIGTERM (or SIGINT) the
//! stage stops at its next unit boundary ([`requested`]: between candidates, between training
//! steps), keeps what it finished (score records, a training checkpoint), writes its termination
//! summary with outcome `interrupted` and exits [`exit_code::INTERRUPTED`], which the Job's
//! podFailurePolicy ignores: the pod is not counted against the index's retries.
//!
//! A stage that reaches no boundary within [`STOP_WAIT_SECONDS`] (`NAS_STOP_WAIT_SECONDS`; staging one large split) is
//! ended by a watchdog with the same exit code, before the kubelet's SIGKILL at the end of the
//! grace period; its unit is redone on resume, and nothing half-written is left because every
//! artifact is written whole. A second signal ends the process at once.
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use nas_api::contract::{exit_code, STOP_WAIT_SECONDS};
use signal_hook::consts::{SIGINT, SIGTERM};
use signal_hook::iterator::Signals;

static REQUESTED: AtomicBool = AtomicBool::new(false);

/// Held by whoever ends the process: the stage (its summary) or the watchdog, never both.
static ENDING: Mutex<bool> = Mutex::new(false);

/// What the watchdog writes when the stage did not stop in time.
type OnTimeout = Box<dyn FnOnce() + Send>;
static ON_TIMEOUT: OnceLock<Mutex<Option<OnTimeout>>> = OnceLock::new();

/// True once a stop was requested: stop at the next unit boundary.
pub fn requested() -> bool {
    REQUESTED.load(Ordering::Relaxed)
}

/// Installs the SIGTERM/SIGINT handler. `on_timeout` runs on the watchdog thread when the stage
/// has not ended [`STOP_WAIT_SECONDS`] after the first signal (it writes the termination
/// summary); the process then exits with [`exit_code::INTERRUPTED`].
pub fn install(on_timeout: impl FnOnce() + Send + 'static) -> std::io::Result<()> {
    let slot = ON_TIMEOUT.get_or_init(|| Mutex::new(None));
    *slot.lock().unwrap_or_else(|p| p.into_inner()) = Some(Box::new(on_timeout));
    let mut signals = Signals::new([SIGTERM, SIGINT])?;
    std::thread::Builder::new()
        .name("nas-interrupt".into())
        .spawn(move || {
            for signal in signals.forever() {
                if REQUESTED.swap(true, Ordering::Relaxed) {
                    // A second signal: no more waiting.
                    exit_now(128 + signal);
                }
                tracing::info!(
                    signal,
                    wait_seconds = stop_wait().as_secs(),
                    "stop requested: stopping at the next unit boundary"
                );
                std::thread::spawn(watchdog);
            }
        })?;
    Ok(())
}

/// [`STOP_WAIT_SECONDS`], or `NAS_STOP_WAIT_SECONDS` where a pod has a longer grace period
/// (or a test a shorter one).
fn stop_wait() -> Duration {
    let seconds = std::env::var("NAS_STOP_WAIT_SECONDS")
        .ok()
        .and_then(|v| v.trim().parse::<u64>().ok())
        .unwrap_or(STOP_WAIT_SECONDS);
    Duration::from_secs(seconds)
}

fn watchdog() {
    let wait = stop_wait();
    std::thread::sleep(wait);
    let mut ending = ENDING.lock().unwrap_or_else(|p| p.into_inner());
    if *ending {
        return; // the stage is writing its own summary
    }
    *ending = true;
    tracing::warn!(
        wait_seconds = wait.as_secs(),
        "the stage did not stop in time: ending it; its unit is redone on resume"
    );
    let hook = ON_TIMEOUT
        .get()
        .and_then(|s| s.lock().unwrap_or_else(|p| p.into_inner()).take());
    if let Some(hook) = hook {
        hook();
    }
    exit_now(exit_code::INTERRUPTED);
}

/// Ends the process without running exit handlers: the stage's thread is still inside
/// libtorch, whose static destructors crash under it (`exit` ended such a pod by SIGSEGV).
fn exit_now(code: i32) -> ! {
    use std::io::Write;
    let _ = std::io::stdout().flush();
    let _ = std::io::stderr().flush();
    // SAFETY: `_exit` takes no pointers and never returns; skipping exit handlers is the point.
    #[allow(unsafe_code)]
    unsafe {
        libc::_exit(code)
    }
}

/// Claims the end of the process for the stage: false when the watchdog already did (it is
/// exiting; write nothing more). After a true, the watchdog never runs its hook.
pub fn claim_end() -> bool {
    let mut ending = ENDING.lock().unwrap_or_else(|p| p.into_inner());
    !std::mem::replace(&mut *ending, true)
}

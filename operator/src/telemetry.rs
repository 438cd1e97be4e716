//! Logging: structured `tracing` output to stderr, plain or JSON, filtered by `RUST_LOG`
//! (default `info`).
use tracing_subscriber::{fmt, EnvFilter};

/// Installs the global subscriber. Calling it twice is harmless (the second call does nothing).
pub fn init(json: bool) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = fmt().with_env_filter(filter).with_writer(std::io::stderr);
    let _ = if json {
        builder
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .try_init()
    } else {
        builder.try_init()
    };
}

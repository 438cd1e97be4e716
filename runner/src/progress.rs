//! Progress of a stage's units (candidates, epochs): a bar with rate and ETA on a terminal,
//! plain lines otherwise (pod logs, CI), nothing when disabled.
use std::io::IsTerminal;
use std::time::Instant;

use indicatif::{ProgressBar, ProgressStyle};

pub struct Progress {
    bar: Option<ProgressBar>,
    label: String,
    total: u64,
    done: u64,
    start: Instant,
    enabled: bool,
}

impl Progress {
    pub fn new(label: impl Into<String>, total: u64, enabled: bool) -> Self {
        let label = label.into();
        let bar = (enabled && std::io::stderr().is_terminal()).then(|| {
            let bar = ProgressBar::new(total);
            if let Ok(style) = ProgressStyle::with_template(
                "{prefix} [{bar:30}] {pos}/{len} {per_sec} ETA {eta} {msg}",
            ) {
                bar.set_style(style.progress_chars("=> "));
            }
            bar.set_prefix(label.clone());
            bar
        });
        Progress {
            bar,
            label,
            total,
            done: 0,
            start: Instant::now(),
            enabled,
        }
    }

    /// One unit done; `what` names it.
    pub fn inc(&mut self, what: &str) {
        self.done += 1;
        if let Some(bar) = &self.bar {
            bar.set_message(what.to_string());
            bar.inc(1);
        } else if self.enabled {
            let secs = self.start.elapsed().as_secs_f64().max(1e-9);
            let rate = self.done as f64 / secs;
            let eta = self.total.saturating_sub(self.done) as f64 / rate;
            eprintln!(
                "{}: {}/{} {what} ({rate:.2}/s, ETA {eta:.0} s)",
                self.label, self.done, self.total
            );
        }
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}

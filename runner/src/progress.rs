//! Progress of a stage's units (candidates, images, training steps): a bar with rate and ETA on
//! a terminal, plain lines otherwise (pod logs, CI), nothing when disabled.
use std::io::IsTerminal;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressStyle};

/// Plain-line mode prints counted progress at most this often, so a pod log gets a heartbeat
/// without one line per image (callers add their own closing line with [`Progress::note`]).
const PLAIN_EVERY: Duration = Duration::from_secs(5);

pub struct Progress {
    bar: Option<ProgressBar>,
    label: String,
    unit: &'static str,
    /// `None`: unknown (a stream of images whose count only the end tells).
    total: Option<u64>,
    done: u64,
    start: Instant,
    last_line: Instant,
    enabled: bool,
}

impl Progress {
    /// `total` units of work, each reported with [`Progress::inc`] (one plain line per unit).
    pub fn new(label: impl Into<String>, total: u64, enabled: bool) -> Self {
        Self::build(label.into(), Some(total), "", enabled)
    }

    /// Many small units (`unit` names them: "images", "steps"), reported with
    /// [`Progress::advance`]; `total` `None` when unknown up front.
    pub fn counter(
        label: impl Into<String>,
        total: Option<u64>,
        unit: &'static str,
        enabled: bool,
    ) -> Self {
        Self::build(label.into(), total, unit, enabled)
    }

    fn build(label: String, total: Option<u64>, unit: &'static str, enabled: bool) -> Self {
        let bar = (enabled && std::io::stderr().is_terminal()).then(|| {
            let (bar, template) = match total {
                Some(n) => (
                    ProgressBar::new(n),
                    "{prefix} [{bar:30}] {human_pos}/{human_len} {unit} {per_sec} ETA {eta} {msg}",
                ),
                None => (
                    ProgressBar::new_spinner(),
                    "{prefix} {spinner} {human_pos} {unit} {per_sec} {elapsed} {msg}",
                ),
            };
            let template = template.replace("{unit}", unit);
            if let Ok(style) = ProgressStyle::with_template(&template) {
                bar.set_style(style.progress_chars("=> "));
            }
            bar.set_prefix(label.clone());
            bar.enable_steady_tick(Duration::from_millis(200));
            bar
        });
        let now = Instant::now();
        Progress {
            bar,
            label,
            unit,
            total,
            done: 0,
            start: now,
            last_line: now,
            enabled,
        }
    }

    /// One unit done; `what` names it. Plain mode prints a line per unit.
    pub fn inc(&mut self, what: &str) {
        self.done += 1;
        if let Some(bar) = &self.bar {
            bar.set_message(what.to_string());
            bar.inc(1);
        } else if self.enabled {
            eprintln!("{}: {} {what}", self.label, self.counts());
        }
    }

    /// `n` more units done. Plain mode prints a line at most every few seconds.
    pub fn advance(&mut self, n: u64) {
        self.done += n;
        if let Some(bar) = &self.bar {
            bar.inc(n);
        } else if self.enabled && self.last_line.elapsed() >= PLAIN_EVERY {
            self.last_line = Instant::now();
            eprintln!("{}: {}", self.label, self.counts());
        }
    }

    /// A status message: shown beside the bar and kept above it on a terminal; a plain line
    /// otherwise.
    pub fn note(&self, message: &str) {
        if let Some(bar) = &self.bar {
            bar.println(format!("{}: {message}", self.label));
        } else if self.enabled {
            eprintln!("{}: {message}", self.label);
        }
    }

    /// Units done so far.
    pub fn done(&self) -> u64 {
        self.done
    }

    /// "done/total unit (rate/s, ETA s)", or "done unit (rate/s)" without a total.
    fn counts(&self) -> String {
        let secs = self.start.elapsed().as_secs_f64().max(1e-9);
        let rate = self.done as f64 / secs;
        let unit = if self.unit.is_empty() {
            String::new()
        } else {
            format!(" {}", self.unit)
        };
        match self.total {
            Some(total) => {
                let left = total.saturating_sub(self.done) as f64;
                let eta = if rate > 0.0 { left / rate } else { f64::NAN };
                format!("{}/{total}{unit} ({rate:.1}/s, ETA {eta:.0} s)", self.done)
            }
            None => format!("{}{unit} ({rate:.1}/s)", self.done),
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_state_rate_and_eta_with_a_total() {
        let mut p = Progress::counter("train", Some(10), "steps", false);
        p.advance(4);
        let line = p.counts();
        assert!(line.starts_with("4/10 steps ("), "{line}");
        assert!(line.contains("ETA"), "{line}");
        assert_eq!(p.done(), 4);
    }

    #[test]
    fn counts_without_a_total_have_no_eta() {
        let mut p = Progress::counter("stage-data train", None, "images", false);
        p.advance(250);
        let line = p.counts();
        assert!(line.starts_with("250 images ("), "{line}");
        assert!(!line.contains("ETA"), "{line}");
    }
}

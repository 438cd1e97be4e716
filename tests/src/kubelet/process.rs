//! Runs one container as a local process in its own process group: the argv and environment
//! the kubelet resolved, output captured to a per-pod log, the termination message read from a
//! per-pod file (or the log tail under `FallbackToLogsOnError`), and on stop SIGTERM, the grace
//! period, then SIGKILL, as a container runtime stops a container.
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::time::Duration;

use nas_api::contract::TERMINATION_MESSAGE_MAX_BYTES;

/// Everything needed to start one pod's process.
#[derive(Debug, Clone)]
pub struct Launch {
    pub argv: Vec<String>,
    pub env: Vec<(String, String)>,
    pub dir: PathBuf,
    pub termination_file: PathBuf,
    pub log_file: PathBuf,
    /// terminationMessagePolicy FallbackToLogsOnError.
    pub fallback_to_logs: bool,
}

/// How a process ended.
#[derive(Debug, Clone)]
pub struct Exit {
    pub exit_code: i32,
    pub message: String,
    /// Stopped by the kubelet (the pod was deleted), not ended by itself.
    pub stopped: bool,
    pub started_at: String,
    pub finished_at: String,
}

/// Errors starting a process.
#[derive(Debug, thiserror::Error)]
pub enum LaunchError {
    #[error("preparing {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("starting {argv0}: {source}")]
    Spawn {
        argv0: String,
        #[source]
        source: std::io::Error,
    },
}

/// Replaces `$(NAME)` with the variable's value; `$$(NAME)` stays literal, unknown names stay.
pub fn expand(s: &str, env: &HashMap<String, String>) -> String {
    let mut out = String::new();
    let mut rest = s;
    while let Some(pos) = rest.find("$(") {
        if pos > 0 && rest[..pos].ends_with('$') {
            out.push_str(&rest[..pos - 1]);
            out.push_str("$(");
            rest = &rest[pos + 2..];
            continue;
        }
        out.push_str(&rest[..pos]);
        let after = &rest[pos + 2..];
        match after.find(')') {
            Some(end) => {
                let name = &after[..end];
                match env.get(name) {
                    Some(v) => out.push_str(v),
                    None => {
                        out.push_str("$(");
                        out.push_str(name);
                        out.push(')');
                    }
                }
                rest = &after[end + 1..];
            }
            None => {
                out.push_str(&rest[pos..]);
                rest = "";
            }
        }
    }
    out.push_str(rest);
    out
}

fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// Exit code as the container runtime reports it: the code, or 128 + signal.
fn code_of(status: ExitStatus) -> i32 {
    use std::os::unix::process::ExitStatusExt;
    status
        .code()
        .or_else(|| status.signal().map(|s| 128 + s))
        .unwrap_or(255)
}

/// Signals the whole process group (the pod's process and its children).
fn signal_group(pid: u32, signal: &str) {
    let _ = std::process::Command::new("kill")
        .args([&format!("-{signal}"), "--", &format!("-{pid}")])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
}

fn read_tail(path: &Path, max: usize) -> String {
    let bytes = std::fs::read(path).unwrap_or_default();
    let start = bytes.len().saturating_sub(max);
    String::from_utf8_lossy(&bytes[start..]).into_owned()
}

/// A started process; `wait` ends when it exits or is stopped.
pub struct Running {
    child: tokio::process::Child,
    launch: Launch,
    started_at: String,
}

impl Running {
    /// Starts the process in its own process group.
    pub fn spawn(launch: Launch) -> Result<Running, LaunchError> {
        let io = |path: &Path| {
            let path = path.to_path_buf();
            move |source| LaunchError::Io { path, source }
        };
        std::fs::create_dir_all(&launch.dir).map_err(io(&launch.dir))?;
        std::fs::write(&launch.termination_file, b"").map_err(io(&launch.termination_file))?;
        let log = std::fs::File::create(&launch.log_file).map_err(io(&launch.log_file))?;
        let log2 = log.try_clone().map_err(io(&launch.log_file))?;
        let argv0 = launch.argv.first().cloned().unwrap_or_default();
        // Under `setpriv --pdeathsig KILL`, so no pod process outlives a killed test binary.
        let child = tokio::process::Command::new("setpriv")
            .args(["--pdeathsig", "KILL", "--"])
            .arg(&argv0)
            .args(&launch.argv[1..])
            .env_clear()
            .envs(launch.env.iter().map(|(k, v)| (k, v)))
            .current_dir(&launch.dir)
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(log2)
            .process_group(0)
            .kill_on_drop(true)
            .spawn()
            .map_err(|source| LaunchError::Spawn { argv0, source })?;
        Ok(Running {
            child,
            launch,
            started_at: now(),
        })
    }

    /// The process id.
    pub fn pid(&self) -> Option<u32> {
        self.child.id()
    }

    /// Waits for the end; when `stop` yields a grace period, sends SIGTERM and, after that
    /// period, SIGKILL.
    pub async fn wait(mut self, stop: tokio::sync::oneshot::Receiver<Duration>) -> Exit {
        let pid = self.child.id();
        let mut stopped = false;
        let status = tokio::select! {
            s = self.child.wait() => s,
            Ok(grace) = stop => {
                stopped = true;
                if let Some(pid) = pid {
                    signal_group(pid, "TERM");
                    match tokio::time::timeout(grace, self.child.wait()).await {
                        Ok(s) => s,
                        Err(_) => {
                            signal_group(pid, "KILL");
                            self.child.wait().await
                        }
                    }
                } else {
                    self.child.wait().await
                }
            }
        };
        // Children left in the group go too, as when a container ends.
        if let Some(pid) = pid {
            signal_group(pid, "KILL");
        }
        let exit_code = status.map(code_of).unwrap_or(255);
        let mut message = read_tail(&self.launch.termination_file, TERMINATION_MESSAGE_MAX_BYTES);
        if message.is_empty() && exit_code != 0 && self.launch.fallback_to_logs {
            let tail = read_tail(&self.launch.log_file, 2048);
            let lines: Vec<&str> = tail.lines().collect();
            message = lines[lines.len().saturating_sub(80)..].join("\n");
        }
        Exit {
            exit_code,
            message,
            stopped,
            started_at: self.started_at,
            finished_at: now(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expands_kubernetes_variable_references() {
        let env: HashMap<String, String> =
            [("A".to_string(), "1".to_string())].into_iter().collect();
        assert_eq!(expand("x$(A)y", &env), "x1y");
        assert_eq!(expand("$(B)", &env), "$(B)");
        assert_eq!(expand("$$(A)", &env), "$(A)");
        assert_eq!(expand("$(A", &env), "$(A");
    }
}

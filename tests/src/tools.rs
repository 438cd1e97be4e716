//! kubectl and helm as users run them, installed by `scripts/install-tools.sh` into
//! `.tools/bin` (found there, else on `PATH`).
use std::path::{Path, PathBuf};
use std::process::Command;

/// A tool from `.tools/bin` of the checkout, else the bare name (looked up on `PATH`).
pub fn tool(name: &str) -> PathBuf {
    let local = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../.tools/bin")
        .join(name);
    if local.is_file() {
        local
    } else {
        PathBuf::from(name)
    }
}

/// What a command printed and how it ended.
#[derive(Debug, Clone)]
pub struct Output {
    pub ok: bool,
    pub stdout: String,
    pub stderr: String,
}

impl Output {
    /// stdout, or a panic with both streams when the command failed.
    pub fn expect_ok(self, what: &str) -> String {
        assert!(self.ok, "{what} failed:\n{}\n{}", self.stdout, self.stderr);
        self.stdout
    }
}

/// Runs `program args` with `KUBECONFIG=kubeconfig` (blocking).
pub fn run(program: &str, kubeconfig: &Path, args: &[&str]) -> Output {
    let out = Command::new(tool(program))
        .args(args)
        .env("KUBECONFIG", kubeconfig)
        .env("HOME", kubeconfig.parent().unwrap_or(Path::new("/tmp")))
        .output()
        .unwrap_or_else(|e| {
            panic!("{program} cannot run ({e}): run scripts/install-tools.sh, which installs it")
        });
    Output {
        ok: out.status.success(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// Runs kubectl with stdin `input` (for `apply -f -`).
pub fn kubectl_stdin(kubeconfig: &Path, args: &[&str], input: &str) -> Output {
    use std::io::Write;
    use std::process::Stdio;
    let mut child = Command::new(tool("kubectl"))
        .args(args)
        .env("KUBECONFIG", kubeconfig)
        .env("HOME", kubeconfig.parent().unwrap_or(Path::new("/tmp")))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("kubectl cannot run ({e}): run scripts/install-tools.sh"));
    if let Some(mut stdin) = child.stdin.take() {
        let _ = stdin.write_all(input.as_bytes());
    }
    let out = child.wait_with_output().expect("kubectl output");
    Output {
        ok: out.status.success(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

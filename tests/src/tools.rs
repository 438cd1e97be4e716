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
    run_with_input(program, kubeconfig, args, None)
}

/// Runs kubectl with stdin `input` (for `apply -f -`).
pub fn kubectl_stdin(kubeconfig: &Path, args: &[&str], input: &str) -> Output {
    run_with_input("kubectl", kubeconfig, args, Some(input))
}

fn run_with_input(program: &str, kubeconfig: &Path, args: &[&str], input: Option<&str>) -> Output {
    use std::io::Write;
    use std::process::Stdio;
    let mut child = Command::new(tool(program))
        .args(args)
        .env("KUBECONFIG", kubeconfig)
        .env("HOME", kubeconfig.parent().unwrap_or(Path::new("/tmp")))
        .stdin(if input.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| {
            panic!("{program} cannot run ({e}): run scripts/install-tools.sh, which installs it")
        });
    if let (Some(mut stdin), Some(text)) = (child.stdin.take(), input) {
        let _ = stdin.write_all(text.as_bytes());
    }
    let out = child
        .wait_with_output()
        .unwrap_or_else(|e| panic!("{program}: {e}"));
    Output {
        ok: out.status.success(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

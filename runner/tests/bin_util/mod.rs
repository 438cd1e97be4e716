//! Running the `nas-runner` binary as a process, as users and pods do: one helper for every
//! test that does.
#![allow(dead_code)] // each test crate uses its own part

use std::process::{Command, Output};

/// `nas-runner ARGS`, without `LD_LIBRARY_PATH`: the binary must find libtorch by itself.
pub fn nas_runner<S: AsRef<std::ffi::OsStr>>(args: &[S]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_nas-runner"));
    cmd.args(args).env_remove("LD_LIBRARY_PATH");
    cmd
}

/// Runs `cmd` to its end; panics only when the binary cannot start.
pub fn run(cmd: &mut Command) -> Output {
    cmd.output().expect("nas-runner starts")
}

/// Its standard error, as text.
pub fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Asserts that the run succeeded (the message shows the exit code and standard error) and
/// returns its standard error.
pub fn assert_ok(out: &Output) -> String {
    let err = stderr(out);
    assert!(out.status.success(), "exit {:?}\n{err}", out.status.code());
    err
}

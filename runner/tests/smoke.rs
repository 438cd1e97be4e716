//! Proves libtorch links and runs inside test binaries (rpath from build.rs, no LD_LIBRARY_PATH).

#[test]
fn small_conv_net_trains_on_cpu() {
    let report = nas_runner::train::smoke::run(30).expect("training runs");
    assert!(report.first_loss.is_finite());
    assert!(
        report.last_loss < 0.5 * report.first_loss,
        "loss should fall: {} -> {}",
        report.first_loss,
        report.last_loss
    );
}

#[test]
fn binary_runs_without_library_path() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_nas-runner"))
        .arg("self-test")
        .env_remove("LD_LIBRARY_PATH")
        .output()
        .expect("binary starts");
    assert!(
        out.status.success(),
        "stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON on stdout");
    assert!(report["last_loss"].as_f64().unwrap() < report["first_loss"].as_f64().unwrap());
}

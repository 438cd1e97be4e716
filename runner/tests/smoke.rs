//! Proves libtorch links and runs inside test binaries (rpath from build.rs, no LD_LIBRARY_PATH).
mod bin_util;

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
    let out = bin_util::run(&mut bin_util::nas_runner(&["self-test"]));
    bin_util::assert_ok(&out);
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON on stdout");
    assert!(report["last_loss"].as_f64().unwrap() < report["first_loss"].as_f64().unwrap());
}

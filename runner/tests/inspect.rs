//! `nas-runner inspect`, run as a process: JSON on stdout, exit code 2 on bad input.
mod bin_util;
use serde_json::Value;
use std::process::Output;

fn inspect(args: &[&str]) -> Output {
    bin_util::run(bin_util::nas_runner(&["inspect"]).args(args))
}

fn json(out: &Output) -> Value {
    bin_util::assert_ok(out);
    serde_json::from_slice(&out.stdout).expect("stdout is JSON")
}

const ARCH: &str =
    "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_1x1~1|+|skip_connect~0|nor_conv_3x3~1|avg_pool_3x3~2|";

#[test]
fn nb201_reports_params_flops_and_breakdown() {
    let v = json(&inspect(&[
        "--space",
        "nb201",
        "--arch",
        ARCH,
        "--classes",
        "100",
    ]));
    let params = 72_656 + 65 * 100 + 243_040 * 3 + 28_000;
    assert_eq!(v["params"], params);
    assert_eq!(v["flops"], 7_782_400 + 6_500 + 3 * 35_389_440 + 3_932_160);
    assert_eq!(v["arch"], ARCH);
    let convention = v["flops_convention"].as_str().unwrap();
    assert!(convention.contains("NAS-Bench-201"), "{convention}");
    assert!((v["params_millions"].as_f64().unwrap() - params as f64 / 1e6).abs() < 1e-9);
    let parts = v["breakdown"].as_array().unwrap();
    assert_eq!(parts.len(), 1 + 15 + 2 + 1);
    let sum: i64 = parts.iter().map(|p| p["params"].as_i64().unwrap()).sum();
    assert_eq!(sum, params);
    // Fashion-MNIST-sized input: one channel, 28x28.
    let v = json(&inspect(&[
        "--space",
        "nb201",
        "--arch",
        ARCH,
        "--input",
        "28",
        "--channels",
        "1",
    ]));
    assert_eq!(v["input"], serde_json::json!([1, 28, 28]));
    assert_eq!(
        v["params"],
        72_656 - 9 * 16 * 2 + 650 + 243_040 * 3 + 28_000
    );
}

#[test]
fn darts_reports_published_sizes() {
    let v = json(&inspect(&[
        "--space",
        "darts",
        "--genotype",
        "DARTS_V2",
        "--dataset",
        "imagenet",
    ]));
    let p = v["params"].as_f64().unwrap();
    assert!((p - 4.7e6).abs() <= 0.02 * 4.7e6, "{p}");
    let convention = v["flops_convention"].as_str().unwrap();
    assert!(convention.contains("ptflops"), "{convention}");
    assert!(v["aux_params"].as_i64().unwrap() > 0);
    assert_eq!(v["network"], "imagenet");
    let v = json(&inspect(&[
        "--space",
        "darts",
        "--genotype",
        "PC_DARTS",
        "--dataset",
        "cifar10",
    ]));
    assert_eq!(v["network"], "cifar");
    assert_eq!(v["breakdown"].as_array().unwrap().len(), 1 + 20 + 1);
}

#[test]
fn bad_input_exits_2_with_a_clear_message() {
    let cases: [(&[&str], &str); 6] = [
        (
            &["--space", "nb201", "--arch", "|nor_conv_3x3~0|+|bogus~0|"],
            "position 18",
        ),
        (&["--space", "nb201"], "--arch"),
        (
            &["--space", "nb202", "--arch", ARCH],
            "unknown search space",
        ),
        (
            &["--space", "nb201", "--arch", ARCH, "--input", "30"],
            "multiple of 4",
        ),
        (
            &["--space", "darts", "--genotype", "Genotype(normal=["],
            "position",
        ),
        (
            &[
                "--space",
                "darts",
                "--genotype",
                "DARTS_V2",
                "--dataset",
                "mnist9",
            ],
            "unknown data set",
        ),
    ];
    for (args, needle) in cases {
        let out = inspect(args);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert!(err.contains(needle), "{args:?}: {err}");
        assert!(out.stdout.is_empty());
    }
}

//! `nas-runner score --dump-dir`: the exchange files of the benchmark's parity check
//! (bench/README.md, "The exchange format") name exactly the tensors the PyTorch reference
//! expects, carry each metric's own batch, draws and noise, and refuse what they cannot hold.
//! (The parity itself needs PyTorch: `bench/reference/check.py`, run by `bench/run.sh`.)
mod bin_util;
mod train_util;

use std::collections::BTreeSet;
use std::path::Path;

use safetensors::tensor::{Dtype, SafeTensors};

/// Every conv edge is dead: node 2 reaches the output only through `none`, node 1 only through
/// node 2. The files must still hold their weights (the reference builds every op), and NASWOT
/// and Zen execute them as eager PyTorch does.
const ARCH: &str =
    "|nor_conv_3x3~0|+|nor_conv_1x1~0|nor_conv_3x3~1|+|skip_connect~0|none~1|none~2|";

fn score(args: &[&str]) -> std::process::Output {
    bin_util::run(bin_util::nas_runner(&["score"]).args(args))
}

/// The reference's parameter and buffer names for an NB201 network whose conv edges are
/// `conv_edges` (bench/README.md).
fn reference_names(conv_edges: &[usize]) -> BTreeSet<String> {
    let bn = |p: &str| -> Vec<String> {
        ["weight", "bias", "running_mean", "running_var"]
            .iter()
            .map(|l| format!("{p}.bn.{l}"))
            .collect()
    };
    let mut names: Vec<String> = vec!["stem.conv.weight".into()];
    names.extend(bn("stem"));
    for c in 0..17 {
        if c == 5 || c == 11 {
            for conv in ["conv_a", "conv_b"] {
                names.push(format!("cells.{c}.{conv}.conv.weight"));
                names.extend(bn(&format!("cells.{c}.{conv}")));
            }
            names.push(format!("cells.{c}.shortcut.conv.weight"));
        } else {
            for e in conv_edges {
                names.push(format!("cells.{c}.edges.{e}.conv.weight"));
                names.extend(bn(&format!("cells.{c}.edges.{e}")));
            }
        }
    }
    names.extend(bn("head"));
    names.push("classifier.weight".into());
    names.push("classifier.bias".into());
    names.into_iter().collect()
}

fn read(path: &Path) -> Vec<u8> {
    std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

#[test]
fn one_file_per_arch_and_metric_with_the_reference_names() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    // 13 per class: naswot's 128-image batch is the largest.
    train_util::write_folder(&data, "train", &train_util::cifar_jpegs(13));
    let archs = dir.path().join("archs.txt");
    std::fs::write(&archs, format!("{ARCH}\n")).unwrap();
    let dumps = dir.path().join("dumps");
    let out = dir.path().join("scores.jsonl");
    let o = score(&[
        "--space",
        "nb201",
        "--archs",
        archs.to_str().unwrap(),
        "--metrics",
        "params,angle_loss,synflow,naswot,zen",
        "--data",
        data.to_str().unwrap(),
        "--option",
        "iterations=3",
        "--device",
        "cpu",
        "--dump-dir",
        dumps.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let record: serde_json::Value =
        serde_json::from_str(std::fs::read_to_string(&out).unwrap().trim()).unwrap();
    assert!(record.get("errors").is_none(), "{record}");

    let weights = reference_names(&[0, 1, 2]);
    for (metric, batch, extra) in [
        // Data-free metrics carry the smallest balanced batch that covers their size.
        ("params", 10usize, &[][..]),
        ("angle_loss", 100, &["aug.dx", "aug.dy", "aug.flip"][..]),
        ("synflow", 10, &[][..]),
        ("naswot", 128, &[][..]),
        ("zen", 70, &["zen.z1", "zen.z2"][..]),
    ] {
        let bytes = read(&dumps.join(format!("00000-{metric}.safetensors")));
        let (_, meta) = SafeTensors::read_metadata(&bytes).unwrap();
        let meta = meta.metadata().clone().unwrap_or_default();
        assert_eq!(meta.get("arch").map(String::as_str), Some(ARCH));
        assert_eq!(meta.get("metric").map(String::as_str), Some(metric));
        assert_eq!(meta.get("num_classes").map(String::as_str), Some("10"));
        let file = SafeTensors::deserialize(&bytes).unwrap();
        let names: BTreeSet<String> = file.names().into_iter().cloned().collect();
        let mut expected = weights.clone();
        for k in ["input.images", "input.labels", "input.mean", "input.std"]
            .iter()
            .chain(extra)
        {
            expected.insert(k.to_string());
        }
        assert_eq!(names, expected, "{metric}");

        let images = file.tensor("input.images").unwrap();
        assert_eq!(images.dtype(), Dtype::U8);
        assert_eq!(images.shape(), [batch, 3, 32, 32], "{metric}");
        assert!(images.data().iter().any(|&p| p > 0));
        let labels = file.tensor("input.labels").unwrap();
        assert_eq!((labels.dtype(), labels.shape()), (Dtype::I64, &[batch][..]));
        let w = file.tensor("cells.0.edges.1.conv.weight").unwrap();
        assert_eq!((w.dtype(), w.shape()), (Dtype::F32, &[16, 16, 1, 1][..]));

        if metric == "params" {
            // Every parameter (not the BN buffers) is in the file: the counts agree.
            let total: usize = file
                .tensors()
                .iter()
                .filter(|(n, _)| !n.contains("running_") && !n.starts_with("input."))
                .map(|(_, t)| t.shape().iter().product::<usize>())
                .sum();
            assert_eq!(record["metrics"]["params"].as_f64(), Some(total as f64));
        }
        if metric == "angle_loss" {
            let dx = file.tensor("aug.dx").unwrap();
            assert_eq!((dx.dtype(), dx.shape()), (Dtype::I64, &[3, 100][..]));
            let offsets: Vec<i64> = dx
                .data()
                .chunks(8)
                .map(|c| i64::from_le_bytes(c.try_into().unwrap()))
                .collect();
            assert!(offsets.iter().all(|o| (0..=8).contains(o)));
            assert!(offsets.iter().any(|&o| o != offsets[0]), "draws vary");
            let flip = file.tensor("aug.flip").unwrap();
            assert_eq!((flip.dtype(), flip.shape()), (Dtype::U8, &[3, 100][..]));
        }
        if metric == "zen" {
            let z = file.tensor("zen.z1").unwrap();
            assert_eq!((z.dtype(), z.shape()), (Dtype::F32, &[64, 3, 32, 32][..]));
        }
    }
}

#[test]
fn the_linear_regions_file_holds_the_thin_network_and_its_crops() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    train_util::write_folder(&data, "train", &train_util::cifar_jpegs(3));
    let archs = dir.path().join("archs.txt");
    std::fs::write(&archs, format!("{ARCH}\n")).unwrap();
    let dumps = dir.path().join("dumps");
    let o = score(&[
        "--space",
        "nb201",
        "--archs",
        archs.to_str().unwrap(),
        "--metrics",
        "linear_regions",
        "--data",
        data.to_str().unwrap(),
        "--batch-size",
        "30",
        "--dump-dir",
        dumps.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let bytes = read(&dumps.join("00000-linear_regions.safetensors"));
    let file = SafeTensors::deserialize(&bytes).unwrap();
    let names: BTreeSet<String> = file.names().into_iter().cloned().collect();
    // TE-NAS's thin network: the cell's conv edges at one channel, the head; no stem.
    let mut expected: BTreeSet<String> = [
        "input.images",
        "input.labels",
        "input.mean",
        "input.std",
        "crops.draws",
        "classifier.weight",
        "classifier.bias",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    for p in [
        "cells.0.edges.0",
        "cells.0.edges.1",
        "cells.0.edges.2",
        "head",
    ] {
        for l in ["bn.weight", "bn.bias", "bn.running_mean", "bn.running_var"] {
            expected.insert(format!("{p}.{l}"));
        }
        if p != "head" {
            expected.insert(format!("{p}.conv.weight"));
        }
    }
    assert_eq!(names, expected);
    let w = file.tensor("cells.0.edges.0.conv.weight").unwrap();
    assert_eq!(w.shape(), [1, 1, 3, 3]);
    assert_eq!(
        file.tensor("input.images").unwrap().shape(),
        [30, 3, 32, 32]
    );
    let crops = file.tensor("crops.draws").unwrap();
    assert_eq!((crops.dtype(), crops.shape()), (Dtype::I64, &[30, 3][..]));
    let draws: Vec<i64> = crops
        .data()
        .chunks(8)
        .map(|c| i64::from_le_bytes(c.try_into().unwrap()))
        .collect();
    // (channel, row, column) inside a 3x32x32 image for a 3x3 crop.
    assert!(draws
        .chunks(3)
        .all(|d| (0..3).contains(&d[0]) && (0..=29).contains(&d[1]) && (0..=29).contains(&d[2])));
}

#[test]
fn dumps_refuse_random_data_and_repeats() {
    let dir = tempfile::tempdir().unwrap();
    let archs = dir.path().join("archs.txt");
    std::fs::write(&archs, format!("{ARCH}\n")).unwrap();
    let dumps = dir.path().join("dumps");
    let base = [
        "--space",
        "nb201",
        "--archs",
        archs.to_str().unwrap(),
        "--metrics",
        "angle_loss",
        "--dump-dir",
        dumps.to_str().unwrap(),
    ];
    let o = score(&[&base[..], &["--data", "random"]].concat());
    assert_eq!(o.status.code(), Some(2));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("--dump-dir") && err.contains("uint8"), "{err}");

    let o = score(&[&base[..], &["--data", "x", "--option", "repeats=2"]].concat());
    assert_eq!(o.status.code(), Some(2));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("--dump-dir") && err.contains("repeats"),
        "{err}"
    );
    assert!(!dumps.exists(), "nothing written on a refused run");
}

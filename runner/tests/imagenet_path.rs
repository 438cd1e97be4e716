//! The final-ImageNet-evaluation path end to end, tiny: an ImageNet-style folder made at test
//! time (`train/<wnid>/*.JPEG`, `val/<wnid>/*.JPEG`; sizes and aspect ratios that vary, some
//! greyscale and some Adobe CMYK files as real ImageNet has) staged at 224 px, DARTS candidates
//! scored at 224 on the ImageNet network, and the `dartsImagenet` recipe (label smoothing,
//! auxiliary head, drop-path, warm-up, gradient clipping) for a few steps through `evaluate`,
//! with top-1 and top-5 in the report.
mod bin_util;
mod train_util;

use std::path::Path;

use nas_api::records::Summary;
use nas_runner::data::ShardIndex;
use nas_runner::testkit::jpeg::{encode, pattern, Layout};

const WNIDS: [&str; 3] = ["n01440764", "n01443537", "n01484850"];
/// (width, height) of the images of each class, in turn: landscape, portrait, square, thin.
const SIZES: [(u16, u16); 5] = [(300, 200), (180, 260), (250, 250), (400, 150), (240, 320)];

/// `n` images per class; the second of each class greyscale, the third CMYK.
fn write_split(root: &Path, split: &str, n: usize) {
    for (c, wnid) in WNIDS.iter().enumerate() {
        let dir = root.join(split).join(wnid);
        std::fs::create_dir_all(&dir).unwrap();
        for i in 0..n {
            let (w, h) = SIZES[(i + c) % SIZES.len()];
            let layout = match i % 5 {
                1 => Layout::Gray,
                2 => Layout::Cmyk,
                _ => Layout::Rgb,
            };
            let px = pattern(w, h, layout, c as u32, i as u32);
            let name = format!("{wnid}_{:05}.JPEG", i + 1);
            std::fs::write(dir.join(name), encode(&px, w, h, layout, 85)).unwrap();
        }
    }
}

fn spec(data: &Path) -> String {
    format!(
        r#"apiVersion: nas.example.dev/v1alpha1
kind: NASSearch
metadata: {{name: tiny-imagenet}}
spec:
  runner: {{image: nas-runner:test}}
  dataset:
    source: "{}"
    format: imageFolder
    resolution: 224
    splits: {{train: train, test: val, validationPercent: 20}}
  space: {{name: darts, channels: 4, cells: 3}}
  sampling: {{candidates: 2, seed: 1, shards: 1}}
  metrics: {{names: [angle_loss, params], batchSize: 3, angleLossSteps: 2}}
  constraints: {{maxFlops: 600000000}}
  selection: {{topK: 1}}
  train: {{preset: short, overrides: {{epochs: 1, batchSize: 4}}}}
  evaluate:
    preset: dartsImagenet
    overrides: {{epochs: 1, batchSize: 4, channels: 4, cells: 3}}
  artifacts: {{bucket: local, credentials: {{fromEnvironment: true}}}}
"#,
        data.display()
    )
}

#[test]
fn an_imagenet_folder_goes_through_staging_at_224_darts_scoring_and_the_imagenet_recipe() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let data = dir.join("imagenet");
    // The score stage samples 10 images of each class.
    write_split(&data, "train", 10);
    write_split(&data, "val", 2);
    let yaml = dir.join("search.yaml");
    std::fs::write(&yaml, spec(&data)).unwrap();
    let out = dir.join("run");
    let run = bin_util::run(
        bin_util::nas_runner(&["local"])
            .arg(&yaml)
            .arg("--out")
            .arg(&out)
            .args(["--device", "cpu", "--quiet"]),
    );
    bin_util::assert_ok(&run);

    // Staged at 224: training images resized (short side 256) for random crops, the test
    // split centre-cropped to 224; greyscale and CMYK decoded to RGB, none lost as corrupt.
    let index = |split: &str| -> ShardIndex {
        serde_json::from_slice(
            &std::fs::read(out.join(format!("data/{split}/index.json"))).unwrap(),
        )
        .unwrap()
    };
    let (train, test) = (index("train"), index("test"));
    assert_eq!(
        (train.total, train.bad, train.channels),
        (30, 0, 3),
        "{train:?}"
    );
    assert_eq!((test.total, test.bad), (6, 0), "{test:?}");
    assert_eq!(train.classes, WNIDS);
    assert_eq!(test.center_crop_side, Some(224), "{test:?}");

    // Scored at 224 on the ImageNet network: the stride-8 stem keeps its multiply-adds small.
    let summary: Summary =
        serde_json::from_slice(&std::fs::read(out.join("summary.json")).unwrap()).unwrap();
    assert_eq!((summary.scored, summary.failed), (2, 0), "{summary:?}");
    let winner = summary.winner.as_ref().expect("a winner");
    assert!(
        winner.flops > 0 && winner.flops < 60_000_000,
        "{} multiply-adds: not the ImageNet stem",
        winner.flops
    );
    let (top1, top5) = (winner.top1_err.unwrap(), winner.top5_err.unwrap());
    assert!((0.0..=1.0).contains(&top1) && top5 <= top1, "{top1} {top5}");
    // Three classes: every label is within the top five.
    assert_eq!(top5, 0.0);

    let report: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("eval/report.json")).unwrap()).unwrap();
    assert_eq!(report["epochs"], 1, "{report}");
    let curve = report["loss_curve"].as_array().expect("a loss curve");
    assert!(!curve.is_empty(), "{report}");
    let md = std::fs::read_to_string(out.join("report.md")).unwrap();
    assert!(md.contains("top-5"), "{md}");
}

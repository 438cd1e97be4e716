//! The runner's JPEG decoder against libjpeg-turbo, which torchvision and our PyTorch reference
//! decode with (through Pillow): a network trained on staged pixels must see what it would see
//! there. CIFAR-10's JPEGs are 4:2:0, and a decoder that upsamples chroma differently is off
//! by tens of levels at colour edges (zune-jpeg 0.4: up to 78 of 255 on CIFAR-10's test split,
//! which cost the PyTorch reference 0.9 points of accuracy; BENCHMARKS.md section 10). The
//! fixture `tests/fixtures/jpeg_pillow/` holds synthetic JPEGs and Pillow's `convert("RGB")`
//! of each (remake it with `bench/reference/jpeg_pillow.py --out` that folder).
use std::path::Path;

use nas_runner::data::image::decode_jpeg;
use serde::Deserialize;

/// Largest difference allowed per sample, of 255: the IDCTs and colour conversions round
/// differently (measured: 3 on every image); a different chroma upsampling is 9 to 59 here.
const MAX_DIFF: u8 = 3;
/// Mean difference allowed per image (measured: at most 0.17).
const MAX_MEAN: f64 = 0.25;

#[derive(Deserialize)]
struct Manifest {
    images: Vec<Entry>,
}

#[derive(Deserialize)]
struct Entry {
    name: String,
    height: u32,
    width: u32,
    encoded: String,
}

#[test]
fn decoded_pixels_match_libjpeg_turbo_on_every_subsampling() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/jpeg_pillow");
    let manifest: Manifest =
        serde_json::from_slice(&std::fs::read(dir.join("manifest.json")).unwrap()).unwrap();
    assert!(manifest.images.len() >= 9, "the fixture lost images");
    let mut report = Vec::new();
    for e in &manifest.images {
        let jpeg = std::fs::read(dir.join(format!("{}.jpg", e.name))).unwrap();
        let want = std::fs::read(dir.join(format!("{}.rgb", e.name))).unwrap();
        let img = decode_jpeg(&jpeg, 3, &e.name).unwrap_or_else(|err| panic!("{err}"));
        assert_eq!(
            (img.height, img.width, img.channels),
            (e.height, e.width, 3),
            "{}",
            e.name
        );
        let diffs: Vec<u8> = img
            .data
            .iter()
            .zip(&want)
            .map(|(a, b)| a.abs_diff(*b))
            .collect();
        let max = *diffs.iter().max().unwrap();
        let mean = diffs.iter().map(|&d| d as f64).sum::<f64>() / diffs.len() as f64;
        report.push(format!(
            "{} ({}): max {max}, mean {mean:.3}",
            e.name, e.encoded
        ));
        assert!(
            max <= MAX_DIFF && mean <= MAX_MEAN,
            "{} ({}) differs from libjpeg-turbo by up to {max} (mean {mean:.3}); all:\n{}",
            e.name,
            e.encoded,
            report.join("\n")
        );
    }
    println!("{}", report.join("\n"));
}

#[test]
fn greyscale_output_is_the_luma_pillow_computes() {
    // A colour JPEG asked for one channel: Pillow's convert("L") of its RGB, within rounding.
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/jpeg_pillow");
    let jpeg = std::fs::read(dir.join("blocks_420.jpg")).unwrap();
    let rgb = std::fs::read(dir.join("blocks_420.rgb")).unwrap();
    let grey = decode_jpeg(&jpeg, 1, "blocks_420").unwrap();
    assert_eq!(grey.channels, 1);
    for (g, p) in grey.data.iter().zip(rgb.chunks_exact(3)) {
        let l = (299 * p[0] as u32 + 587 * p[1] as u32 + 114 * p[2] as u32) as f64 / 1000.0;
        assert!(
            (*g as f64 - l).abs() <= MAX_DIFF as f64 + 0.5,
            "{g} against {l}"
        );
    }
}

//! Property tests (a brief fuzzing run in every CI) of the parsers that read user or network
//! bytes: JPEG through the decoder, our shard format, and the data-set readers (IDX, CIFAR-10
//! binary, tar and tar.gz folders, WebDataset shards) on damaged files. Each must answer with an
//! error, never a panic, and never allocate from a length field it has not checked. The corpus
//! is the valid inputs each property damages (generated here: JPEGs from `testkit::jpeg`, files
//! in each reader's layout); `PROPTEST_CASES` runs more cases, and proptest keeps any failure
//! it finds beside this file (`parser_props.proptest-regressions`).
mod fuzz_util;
mod train_util;

use std::io::Write;

use fuzz_util::{bounded, cases, read_all};
use nas_runner::data::image::decode_jpeg;
use nas_runner::data::shards::parse_shard;
use nas_runner::testkit::jpeg::{encode, pattern, Layout};
use proptest::prelude::*;

fn valid_jpeg(layout: Layout, w: u16, h: u16) -> Vec<u8> {
    encode(&pattern(w, h, layout, 3, 1), w, h, layout, 75)
}

/// `bytes` with `edits` applied: (position, new byte) pairs, then cut to `keep` bytes.
fn damaged(mut bytes: Vec<u8>, edits: &[(usize, u8)], keep: usize) -> Vec<u8> {
    let n = bytes.len();
    for &(at, b) in edits {
        bytes[at % n] = b;
    }
    bytes.truncate(keep.max(1).min(n));
    bytes
}

fn gz(bytes: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(bytes).unwrap();
    e.finish().unwrap()
}

fn tar_of(files: &[(String, Vec<u8>)]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for (name, bytes) in files {
        train_util::tar_file(&mut b, name, bytes);
    }
    b.into_inner().unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(64), ..ProptestConfig::default() })]

    #[test]
    fn jpeg_decoding_never_panics_on_damaged_files(
        layout in prop_oneof![Just(Layout::Gray), Just(Layout::Rgb), Just(Layout::Cmyk)],
        edits in prop::collection::vec((any::<usize>(), any::<u8>()), 0..8),
        keep in any::<usize>(),
        channels in prop_oneof![Just(1u8), Just(3u8)],
    ) {
        let bytes = damaged(valid_jpeg(layout, 19, 11), &edits, keep);
        if let Ok(img) = bounded("jpeg", bytes.len(), || decode_jpeg(&bytes, channels, "fuzz")) {
            prop_assert_eq!(img.channels, channels);
        }
    }

    #[test]
    fn jpeg_decoding_never_panics_on_noise(bytes in prop::collection::vec(any::<u8>(), 0..600)) {
        let _ = bounded("jpeg", bytes.len(), || decode_jpeg(&bytes, 3, "fuzz"));
        let mut with_marker = vec![0xFF, 0xD8];
        with_marker.extend(&bytes);
        let _ = bounded("jpeg", with_marker.len(), || decode_jpeg(&with_marker, 1, "fuzz"));
    }

    #[test]
    fn shard_parsing_never_panics_nor_trusts_its_sizes(
        bytes in prop::collection::vec(any::<u8>(), 0..400),
        channels in prop_oneof![Just(1u8), Just(3u8)],
    ) {
        if let Ok(records) = bounded("shard", bytes.len(), || parse_shard(&bytes, channels, "fuzz")) {
            let pixels: usize = records.iter().map(|(_, i)| i.data.len()).sum();
            prop_assert!(pixels <= bytes.len());
        }
    }

    #[test]
    fn idx_readers_never_panic_on_damaged_files(
        header in prop::collection::vec(any::<u8>(), 0..24),
        body in prop::collection::vec(any::<u8>(), 0..64),
        zipped in any::<bool>(),
    ) {
        let dir = tempfile::tempdir().unwrap();
        let mut images = header.clone();
        images.extend(&body);
        let labels: Vec<u8> = [0, 0, 8, 1, 0, 0, 0, 2, 1, 7].to_vec();
        for (name, bytes) in [("train-images-idx3-ubyte", &images), ("train-labels-idx1-ubyte", &labels)] {
            if zipped {
                std::fs::write(dir.path().join(format!("{name}.gz")), gz(bytes)).unwrap();
            } else {
                std::fs::write(dir.path().join(name), bytes).unwrap();
            }
        }
        read_all(dir.path());
    }

    #[test]
    fn cifar_binary_reader_never_panics_on_damaged_batches(
        body in prop::collection::vec(any::<u8>(), 0..7000),
    ) {
        let dir = tempfile::tempdir().unwrap();
        let batches = dir.path().join("cifar-10-batches-bin");
        std::fs::create_dir_all(&batches).unwrap();
        std::fs::write(batches.join("data_batch_1.bin"), &body).unwrap();
        std::fs::write(batches.join("test_batch.bin"), &body).unwrap();
        read_all(dir.path());
    }

    #[test]
    fn tar_readers_never_panic_on_damaged_archives(
        edits in prop::collection::vec((any::<usize>(), any::<u8>()), 0..6),
        keep in any::<usize>(),
        zipped in any::<bool>(),
        webdataset in any::<bool>(),
        first_cls in prop_oneof![any::<u32>().prop_map(|n| n.to_string()), "[0-9]{1,12}", ".{0,8}"],
    ) {
        let jpegs = train_util::cifar_jpegs(1);
        let files: Vec<(String, Vec<u8>)> = jpegs
            .iter()
            .enumerate()
            .flat_map(|(i, (class, name, bytes))| {
                if webdataset {
                    vec![
                        (format!("{i:06}.jpg"), bytes.clone()),
                        (
                            format!("{i:06}.cls"),
                            if i == 0 { first_cls.clone() } else { (i % 10).to_string() }.into_bytes(),
                        ),
                    ]
                } else {
                    vec![(format!("train/{class}/{name}"), bytes.clone())]
                }
            })
            .collect();
        let tar = tar_of(&files);
        let archive = if zipped { gz(&tar) } else { tar };
        let archive = damaged(archive, &edits, keep);
        let dir = tempfile::tempdir().unwrap();
        let name = match (webdataset, zipped) {
            (true, _) => "train-000000.tar",
            (false, true) => "data.tar.gz",
            (false, false) => "data.tar",
        };
        std::fs::write(dir.path().join(name), &archive).unwrap();
        read_all(&dir.path().join(name));
        read_all(dir.path());
    }
}

#[test]
fn a_jpeg_header_claiming_far_more_pixels_than_its_bytes_is_refused_before_decoding() {
    let mut bytes = valid_jpeg(Layout::Rgb, 16, 16);
    // SOF0: FF C0, length (2 bytes), precision, height (2), width (2).
    let sof = bytes.windows(2).position(|w| w == [0xFF, 0xC0]).unwrap();
    bytes[sof + 5..sof + 9].copy_from_slice(&[0x3F, 0xFF, 0x3F, 0xFF]);
    let err = decode_jpeg(&bytes, 3, "big.jpg").unwrap_err().to_string();
    assert!(
        err.contains("big.jpg") && err.contains("16383x16383"),
        "{err}"
    );
}

#[test]
fn the_test_encoder_makes_jpegs_the_decoder_reads_back_close_to_their_pixels() {
    for (layout, channels) in [(Layout::Gray, 1u8), (Layout::Rgb, 3), (Layout::Cmyk, 3)] {
        let (w, h) = (21u16, 13u16);
        let img = decode_jpeg(
            &encode(&pattern(w, h, layout, 2, 5), w, h, layout, 95),
            channels,
            "t",
        )
        .unwrap_or_else(|e| panic!("{layout:?}: {e}"));
        assert_eq!((img.height, img.width, img.channels), (13, 21, channels));
        if layout != Layout::Cmyk {
            let want = pattern(w, h, layout, 2, 5);
            let err: f64 = img
                .data
                .iter()
                .zip(&want)
                .map(|(&a, &b)| (a as f64 - b as f64).abs())
                .sum::<f64>()
                / want.len() as f64;
            assert!(err < 12.0, "{layout:?}: mean absolute error {err}");
        }
    }
}

//! Readers and the balanced sample: every format on generated JPEG fixtures, the
//! CIFAR-10 JPEG folder and Fashion-MNIST themselves, and each bad input's error.
mod train_util;

use nas_runner::data::{load_balanced_sample, DataError, DataSource, Format, Normalization, Split};
use std::path::Path;
use train_util::*;

fn loc(p: &Path) -> String {
    p.to_string_lossy().into_owned()
}

#[test]
fn cifar_jpeg_folder_sample_is_balanced_and_seeded() {
    let Some(dir) = cifar_dir("cifar_jpeg_folder_sample_is_balanced_and_seeded") else {
        return;
    };
    let dir = loc(&dir);
    let started = std::time::Instant::now();
    let a = load_balanced_sample(&dir, Split::Train, 10, 7).unwrap();
    eprintln!(
        "CIFAR-10 train sample of 100: {:.2} s",
        started.elapsed().as_secs_f64()
    );
    assert_eq!(a.images.size(), vec![100, 3, 32, 32]);
    assert_eq!(a.images.kind(), tch::Kind::Uint8);
    assert_eq!(a.classes[0], "airplane");
    assert_eq!(a.classes[9], "truck");
    assert_eq!(a.normalization, Normalization::cifar10());
    let counts = a.labels.bincount::<&tch::Tensor>(None, 10);
    assert_eq!(Vec::<i64>::try_from(&counts).unwrap(), vec![10; 10]);
    let b = load_balanced_sample(&dir, Split::Train, 10, 7).unwrap();
    assert!(a.images.equal(&b.images) && a.labels.equal(&b.labels));
    let c = load_balanced_sample(&dir, Split::Train, 10, 8).unwrap();
    assert!(
        !a.images.equal(&c.images),
        "another seed drew the same images"
    );
    let t = load_balanced_sample(&dir, Split::Test, 2, 7).unwrap();
    assert_eq!(t.images.size(), vec![20, 3, 32, 32]);
}

#[test]
fn fashion_idx_gz_sample() {
    let s = load_balanced_sample(&loc(&fashion_dir()), Split::Test, 3, 1).unwrap();
    assert_eq!(s.images.size(), vec![30, 1, 28, 28]);
    assert_eq!(s.classes[0], "T-shirt_top");
    assert_eq!(s.normalization, Normalization::fashion_mnist());
    assert!(s.images.max().int64_value(&[]) > 200, "images look blank");
}

#[test]
fn folder_tar_and_webdataset_agree() {
    let tmp = tempfile::tempdir().unwrap();
    let files = cifar_jpegs(4);
    // ImageNet-style folder.
    let folder = tmp.path().join("folder");
    write_folder(&folder, "train", &files);
    write_folder(&folder, "val", &files[..8]);
    let src = DataSource::open(&loc(&folder)).unwrap();
    assert_eq!(src.format, Format::ImageFolder);
    assert_eq!(src.classes(Split::Train).unwrap().len(), 10);
    let from_folder = load_balanced_sample(&loc(&folder), Split::Train, 3, 5).unwrap();
    // The same tree in one tar.gz under a top folder.
    let tgz = tmp.path().join("imagenet.tar.gz");
    write_tar_gz(&tgz, "root/train/", &files);
    assert_eq!(
        DataSource::open(&loc(&tgz)).unwrap().format,
        Format::TarTree
    );
    let from_tar = load_balanced_sample(&loc(&tgz), Split::Train, 3, 5).unwrap();
    assert!(from_folder.images.equal(&from_tar.images));
    assert!(from_folder.labels.equal(&from_tar.labels));
    assert_eq!(from_folder.classes, from_tar.classes);
    // WebDataset shards: key.jpg + key.cls with the sorted-name index.
    let wds = tmp.path().join("wds");
    std::fs::create_dir_all(&wds).unwrap();
    for shard in 0..2 {
        let f = std::fs::File::create(wds.join(format!("train-{shard:04}.tar"))).unwrap();
        let mut b = tar::Builder::new(f);
        for (i, (class, _, bytes)) in files.iter().enumerate().filter(|(i, _)| i % 2 == shard) {
            let label = from_folder.classes.iter().position(|c| c == class).unwrap();
            tar_file(&mut b, &format!("s{i:05}.jpg"), bytes);
            tar_file(
                &mut b,
                &format!("s{i:05}.cls"),
                label.to_string().as_bytes(),
            );
        }
        b.finish().unwrap();
    }
    assert_eq!(
        DataSource::open(&loc(&wds)).unwrap().format,
        Format::WebDataset
    );
    let from_wds = load_balanced_sample(&loc(&wds), Split::Train, 4, 5).unwrap();
    assert_eq!(from_wds.images.size(), vec![40, 3, 32, 32]);
    let counts = from_wds.labels.bincount::<&tch::Tensor>(None, 10);
    assert_eq!(Vec::<i64>::try_from(&counts).unwrap(), vec![4; 10]);
    let err = load_balanced_sample(&loc(&wds), Split::Test, 1, 0).unwrap_err();
    assert!(matches!(err, DataError::MissingSplit { .. }), "{err}");
}

#[test]
fn a_corrupt_class_index_is_an_error_not_a_four_billion_name_allocation() {
    let tmp = tempfile::tempdir().unwrap();
    let files = cifar_jpegs(1);
    let wds = tmp.path().join("wds");
    std::fs::create_dir_all(&wds).unwrap();
    let mut b = tar::Builder::new(std::fs::File::create(wds.join("train-0000.tar")).unwrap());
    for (i, (_, _, bytes)) in files.iter().enumerate() {
        tar_file(&mut b, &format!("s{i:05}.jpg"), bytes);
        let label = if i == 3 {
            "4000000000".to_string()
        } else {
            i.to_string()
        };
        tar_file(&mut b, &format!("s{i:05}.cls"), label.as_bytes());
    }
    b.finish().unwrap();
    let src = DataSource::open(&loc(&wds)).unwrap();
    let err = src.classes(Split::Train).unwrap_err();
    assert!(err.to_string().contains("class index 4000000000"), "{err}");
    let err = load_balanced_sample(&loc(&wds), Split::Train, 1, 0).unwrap_err();
    assert!(err.to_string().contains("class index 4000000000"), "{err}");
}

#[test]
fn cifar_binary_planes_become_pixels() {
    let tmp = tempfile::tempdir().unwrap();
    let mut bytes = Vec::new();
    for i in 0..20u8 {
        bytes.push(i % 10);
        for c in 0..3u8 {
            bytes.extend(std::iter::repeat_n(i * 10 + c, 1024));
        }
    }
    std::fs::write(tmp.path().join("data_batch_1.bin"), &bytes).unwrap();
    std::fs::write(tmp.path().join("test_batch.bin"), &bytes[..3073 * 10]).unwrap();
    assert_eq!(
        DataSource::open(&loc(tmp.path())).unwrap().format,
        Format::CifarBinary
    );
    let s = load_balanced_sample(&loc(tmp.path()), Split::Train, 2, 0).unwrap();
    assert_eq!(s.images.size(), vec![20, 3, 32, 32]);
    assert_eq!(s.classes[1], "automobile");
    // Image with label 3 are records 3 and 13: channel c holds i * 10 + c.
    let first3 = s.labels.eq(3).nonzero().int64_value(&[0, 0]);
    let img = s.images.get(first3);
    let v: Vec<i64> = (0..3).map(|c| img.int64_value(&[c, 5, 7])).collect();
    assert!(v == vec![30, 31, 32] || v == vec![130, 131, 132], "{v:?}");
    std::fs::write(tmp.path().join("test_batch.bin"), &bytes[..3073 * 3 + 100]).unwrap();
    let err = load_balanced_sample(&loc(tmp.path()), Split::Test, 1, 0).unwrap_err();
    assert!(matches!(err, DataError::Truncated { .. }), "{err}");
}

#[test]
fn bad_locations_get_clear_errors() {
    let tmp = tempfile::tempdir().unwrap();
    // Missing folder.
    let missing = tmp.path().join("nope");
    let err = load_balanced_sample(&loc(&missing), Split::Train, 1, 0).unwrap_err();
    assert!(matches!(err, DataError::Missing { .. }), "{err}");
    assert!(err.to_string().contains("nope"));
    // Unknown format: a folder of text files, and a file that is no archive.
    std::fs::write(tmp.path().join("readme.txt"), "hello").unwrap();
    let err = load_balanced_sample(&loc(tmp.path()), Split::Train, 1, 0).unwrap_err();
    assert!(matches!(err, DataError::UnknownFormat { .. }), "{err}");
    let err =
        load_balanced_sample(&loc(&tmp.path().join("readme.txt")), Split::Train, 1, 0).unwrap_err();
    assert!(matches!(err, DataError::UnknownFormat { .. }), "{err}");
    // Truncated tar.gz (cut in the middle of the stream).
    let files = cifar_jpegs(3);
    let cut = tmp.path().join("cut");
    std::fs::create_dir_all(&cut).unwrap();
    write_tar_gz(&cut.join("train.tar.gz"), "", &files);
    let full = std::fs::read(cut.join("train.tar.gz")).unwrap();
    std::fs::write(cut.join("train.tar.gz"), &full[..full.len() / 2]).unwrap();
    let err = load_balanced_sample(&loc(&cut), Split::Train, 1, 0).unwrap_err();
    assert!(matches!(err, DataError::Truncated { .. }), "{err}");
    // Truncated plain tar (cut inside an entry's bytes).
    let plain = tmp.path().join("plain.tar");
    let mut b = tar::Builder::new(std::fs::File::create(&plain).unwrap());
    for (class, name, bytes) in &files {
        tar_file(&mut b, &format!("train/{class}/{name}"), bytes);
    }
    b.finish().unwrap();
    drop(b);
    let full = std::fs::read(&plain).unwrap();
    std::fs::write(&plain, &full[..full.len() / 2 + 100]).unwrap();
    let err = load_balanced_sample(&loc(&plain), Split::Train, 1, 0).unwrap_err();
    assert!(matches!(err, DataError::Truncated { .. }), "{err}");
    // Empty class in a folder and in a tar.
    let folder = tmp.path().join("folder");
    write_folder(&folder, "train", &files);
    std::fs::create_dir_all(folder.join("train/zebra")).unwrap();
    let err = load_balanced_sample(&loc(&folder), Split::Train, 1, 0).unwrap_err();
    assert!(
        matches!(&err, DataError::EmptyClass { class, .. } if class == "zebra"),
        "{err}"
    );
    let empty_tar = tmp.path().join("e");
    std::fs::create_dir_all(&empty_tar).unwrap();
    {
        let gz = flate2::write::GzEncoder::new(
            std::fs::File::create(empty_tar.join("train.tar.gz")).unwrap(),
            flate2::Compression::fast(),
        );
        let mut b = tar::Builder::new(gz);
        for (class, name, bytes) in &files {
            tar_file(&mut b, &format!("./{class}/{name}"), bytes);
        }
        tar_dir(&mut b, "./zebra/");
        b.into_inner().unwrap().finish().unwrap();
    }
    let err = load_balanced_sample(&loc(&empty_tar), Split::Train, 1, 0).unwrap_err();
    assert!(
        matches!(&err, DataError::EmptyClass { class, .. } if class == "zebra"),
        "{err}"
    );
    // Missing split and too few images.
    let err = load_balanced_sample(&loc(&folder.join("..").join("folder")), Split::Test, 1, 0)
        .unwrap_err();
    assert!(matches!(err, DataError::MissingSplit { .. }), "{err}");
    std::fs::remove_dir(folder.join("train/zebra")).unwrap();
    let err = load_balanced_sample(&loc(&folder), Split::Train, 4, 0).unwrap_err();
    assert!(
        matches!(
            err,
            DataError::NotEnoughImages {
                have: 3,
                want: 4,
                ..
            }
        ),
        "{err}"
    );
}

#[test]
fn normalisation_follows_the_format_or_the_declared_data_set_never_the_folder_name() {
    use nas_runner::data::{stage_data, ShardIndex, StageConfig};
    use nas_runner::store::LocalStore;
    let tmp = tempfile::tempdir().unwrap();
    // Fashion-MNIST under a name that does not say so: still IDX, still Fashion-MNIST.
    let renamed = tmp.path().join("digits-v2");
    std::os::unix::fs::symlink(fashion_dir(), &renamed).unwrap();
    let s = load_balanced_sample(&loc(&renamed), Split::Test, 1, 1).unwrap();
    assert_eq!(s.normalization, Normalization::fashion_mnist());
    assert_eq!(s.classes[0], "T-shirt_top");
    // A class-folder tree named after CIFAR is an ImageNet-style folder unless declared.
    let folder = tmp.path().join("cifar10-jpegs");
    write_folder(&folder, "train", &cifar_jpegs(1));
    let detected = DataSource::open(&loc(&folder)).unwrap();
    assert_eq!(detected.normalization().unwrap(), Normalization::imagenet());
    let store = LocalStore::new(tmp.path().join("store"));
    let declared = StageConfig {
        progress: false,
        normalization: Some(Normalization::cifar10()),
        ..StageConfig::default()
    };
    stage_data(&loc(&folder), Split::Train, &store, "data/train", &declared).unwrap();
    let index = ShardIndex::load(&store, "data/train").unwrap();
    assert_eq!(index.normalization, Normalization::cifar10());
}

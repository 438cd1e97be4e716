//! `stage_data` and the loader: packing, index and checksums, idempotence, corrupt images, and
//! the loader's determinism and exact mid-epoch resumption.
mod train_util;

use nas_runner::data::augment::Augment;
use nas_runner::data::{
    stage_data, DataError, Loader, LoaderConfig, ShardIndex, Split, StageConfig,
};
use nas_runner::store::{LocalStore, ObjectStore};
use std::sync::Arc;
use train_util::*;

fn quiet(images_per_shard: usize) -> StageConfig {
    StageConfig {
        images_per_shard,
        chunk: 16,
        progress: false,
        // One open writer: shards in source order, as the counts below expect.
        scatter_bytes: 0,
        ..Default::default()
    }
}

#[test]
fn stage_jpeg_folder_writes_shards_index_and_success() {
    let tmp = tempfile::tempdir().unwrap();
    let raw = tmp.path().join("raw");
    write_folder(&raw, "train", &cifar_jpegs(5));
    let store = LocalStore::new(tmp.path().join("store"));
    let report = stage_data(
        raw.to_str().unwrap(),
        Split::Train,
        &store,
        "data/train",
        &quiet(16),
    )
    .unwrap();
    assert_eq!(
        (report.images, report.bad, report.shards, report.classes),
        (50, 0, 4, 10)
    );
    assert!(!report.skipped);
    let keys = store.list("data/train/").unwrap();
    assert_eq!(keys.len(), 6, "{keys:?}");
    let index = ShardIndex::load(&store, "data/train").unwrap();
    assert_eq!(index.counts, vec![5; 10]);
    assert_eq!(index.shape, Some([3, 32, 32]));
    assert_eq!(
        index.shards.iter().map(|s| s.count).collect::<Vec<_>>(),
        vec![16, 16, 16, 2]
    );
    for (i, s) in index.shards.iter().enumerate() {
        assert_eq!(s.bytes as usize, s.count * (8 + 3 * 32 * 32));
        assert_eq!(index.read_shard(&store, i).unwrap().len(), s.count);
    }
    // A second run finds _SUCCESS and does nothing.
    let again = stage_data(
        raw.to_str().unwrap(),
        Split::Train,
        &store,
        "data/train",
        &quiet(16),
    )
    .unwrap();
    assert!(again.skipped);
    // Resizing: short side 40 then, for the test split, centre crop 36.
    write_folder(&raw, "val", &cifar_jpegs(1));
    let cfg = StageConfig {
        short_side: Some(40),
        center_crop: Some(36),
        ..quiet(4)
    };
    stage_data(
        raw.to_str().unwrap(),
        Split::Test,
        &store,
        "data/test",
        &cfg,
    )
    .unwrap();
    let index = ShardIndex::load(&store, "data/test").unwrap();
    assert_eq!(index.shape, Some([3, 36, 36]));
    assert_eq!(index.split, "test");
}

#[test]
fn training_images_listed_class_by_class_are_scattered_over_shards() {
    let tmp = tempfile::tempdir().unwrap();
    let raw = tmp.path().join("raw");
    // 8 images per class, written and read class by class (airplane..., then automobile...).
    write_folder(&raw, "train", &cifar_jpegs(8));
    write_folder(&raw, "val", &cifar_jpegs(8));
    let store = LocalStore::new(tmp.path().join("store"));
    let scattered = StageConfig {
        // Room for 4 open writers of 16 images of 32x32x3.
        scatter_bytes: 4 * 16 * 3 * 32 * 32,
        ..quiet(16)
    };
    let labels = |prefix: &str| -> Vec<Vec<u32>> {
        let index = ShardIndex::load(&store, prefix).unwrap();
        (0..index.shards.len())
            .map(|i| {
                let records = index.read_shard(&store, i).unwrap();
                records.iter().map(|(label, _)| *label).collect()
            })
            .collect()
    };
    for prefix in ["a/train", "b/train"] {
        stage_data(
            raw.to_str().unwrap(),
            Split::Train,
            &store,
            prefix,
            &scattered,
        )
        .unwrap();
    }
    let shards = labels("a/train");
    assert_eq!(shards.iter().map(Vec::len).sum::<usize>(), 80);
    let full: Vec<&Vec<u32>> = shards.iter().filter(|s| s.len() == 16).collect();
    assert!(full.len() >= 3, "{shards:?}");
    for shard in full {
        let classes: std::collections::BTreeSet<_> = shard.iter().collect();
        // In source order a 16-image shard holds 2 classes; scattered, many more.
        assert!(classes.len() >= 5, "a shard holds classes {classes:?}");
    }
    assert_eq!(shards, labels("b/train"), "staging is not reproducible");

    // Evaluation splits keep the source's order.
    stage_data(
        raw.to_str().unwrap(),
        Split::Test,
        &store,
        "a/test",
        &scattered,
    )
    .unwrap();
    let test: Vec<u32> = labels("a/test").concat();
    assert!(test.windows(2).all(|w| w[0] <= w[1]), "{test:?}");
}

#[test]
fn corrupt_images_are_skipped_or_fail_the_stage() {
    let tmp = tempfile::tempdir().unwrap();
    let raw = tmp.path().join("raw");
    let mut files = cifar_jpegs(5);
    files[3].2.truncate(40);
    files[17].2 = b"not a jpeg at all".to_vec();
    write_folder(&raw, "train", &files);
    let store = LocalStore::new(tmp.path().join("store"));
    let strict = StageConfig {
        max_bad_fraction: 0.01,
        ..quiet(64)
    };
    let err = stage_data(
        raw.to_str().unwrap(),
        Split::Train,
        &store,
        "strict",
        &strict,
    )
    .unwrap_err();
    assert!(
        matches!(
            err,
            DataError::TooManyBad {
                bad: 2,
                total: 50,
                ..
            }
        ),
        "{err}"
    );
    assert!(!store.exists("strict/_SUCCESS").unwrap());
    let lenient = StageConfig {
        max_bad_fraction: 0.05,
        ..quiet(64)
    };
    let report = stage_data(
        raw.to_str().unwrap(),
        Split::Train,
        &store,
        "lenient",
        &lenient,
    )
    .unwrap();
    assert_eq!((report.images, report.bad), (48, 2));
    let err = stage_data(
        raw.to_str().unwrap(),
        Split::Train,
        &store,
        "x",
        &StageConfig {
            max_bad_fraction: 2.0,
            ..quiet(1)
        },
    )
    .unwrap_err();
    assert!(err.to_string().contains("max_bad_fraction"), "{err}");
}

#[test]
fn stage_errors_for_bad_sources() {
    let tmp = tempfile::tempdir().unwrap();
    let store = LocalStore::new(tmp.path().join("store"));
    let missing = tmp.path().join("missing");
    let err = stage_data(
        missing.to_str().unwrap(),
        Split::Train,
        &store,
        "m",
        &quiet(8),
    )
    .unwrap_err();
    assert!(matches!(err, DataError::Missing { .. }), "{err}");
    let raw = tmp.path().join("raw");
    write_folder(&raw, "train", &cifar_jpegs(1));
    std::fs::create_dir_all(raw.join("train/zzz-empty")).unwrap();
    let err = stage_data(raw.to_str().unwrap(), Split::Train, &store, "e", &quiet(8)).unwrap_err();
    assert!(
        matches!(&err, DataError::EmptyClass { class, .. } if class == "zzz-empty"),
        "{err}"
    );
    let cut = tmp.path().join("cut");
    std::fs::create_dir_all(&cut).unwrap();
    write_tar_gz(&cut.join("train.tar.gz"), "", &cifar_jpegs(3));
    let full = std::fs::read(cut.join("train.tar.gz")).unwrap();
    std::fs::write(cut.join("train.tar.gz"), &full[..full.len() * 2 / 3]).unwrap();
    let err = stage_data(cut.to_str().unwrap(), Split::Train, &store, "t", &quiet(8)).unwrap_err();
    assert!(matches!(err, DataError::Truncated { .. }), "{err}");
    assert!(!store.exists("t/_SUCCESS").unwrap());
}

fn staged_fashion(tmp: &std::path::Path, n: usize) -> Arc<dyn ObjectStore> {
    let raw = tmp.join("fashion-raw");
    fashion_subset(&raw, "train", n);
    let store: Arc<dyn ObjectStore> = Arc::new(LocalStore::new(tmp.join("store")));
    stage_data(
        raw.to_str().unwrap(),
        Split::Train,
        store.as_ref(),
        "data/train",
        &quiet(50),
    )
    .unwrap();
    store
}

fn collect(loader: &Loader, epoch: usize, skip: usize) -> Vec<(Vec<f32>, Vec<i64>, usize)> {
    loader
        .epoch(epoch, skip)
        .map(|b| {
            let b = b.unwrap();
            let x: Vec<f32> = Vec::try_from(&b.images.flatten(0, -1)).unwrap();
            (x, Vec::try_from(&b.labels).unwrap(), b.index)
        })
        .collect()
}

#[test]
fn a_validation_share_is_held_out_of_training_disjointly_and_reproducibly() {
    use nas_runner::data::loader::Holdout;
    let tmp = tempfile::tempdir().unwrap();
    let store = staged_fashion(tmp.path(), 400);
    let side = |held: bool| {
        let config = LoaderConfig {
            holdout: Some(Holdout {
                percent: 20,
                seed: 5,
                held,
            }),
            ..LoaderConfig::eval(64, 28)
        };
        let loader = Loader::new(store.clone(), "data/train", config).unwrap();
        let images: Vec<Vec<f32>> = collect(&loader, 0, 0)
            .into_iter()
            .flat_map(|(x, _, _)| x.chunks(28 * 28).map(<[f32]>::to_vec).collect::<Vec<_>>())
            .collect();
        assert_eq!(images.len(), loader.len());
        images
    };
    let (val, rest) = (side(true), side(false));
    assert_eq!(val.len() + rest.len(), 400);
    // About a fifth, and never the same image on both sides.
    assert!((50..=110).contains(&val.len()), "{} held out", val.len());
    let key = |x: &Vec<f32>| x.iter().map(|v| v.to_bits()).collect::<Vec<u32>>();
    let held: std::collections::HashSet<_> = val.iter().map(key).collect();
    assert!(rest.iter().all(|x| !held.contains(&key(x))));
    assert_eq!(val, side(true), "the held-out share changed between runs");
    // The training side shuffles and batches only what is not held out.
    let train = Loader::new(
        store.clone(),
        "data/train",
        LoaderConfig {
            holdout: Some(Holdout {
                percent: 20,
                seed: 5,
                held: false,
            }),
            ..LoaderConfig::train(10, Augment::eval(28), 1)
        },
    )
    .unwrap();
    assert_eq!(train.batches_per_epoch(), rest.len() / 10);
}

#[test]
fn loader_is_deterministic_and_resumes_mid_epoch() {
    let tmp = tempfile::tempdir().unwrap();
    let store = staged_fashion(tmp.path(), 230);
    let config = LoaderConfig {
        shuffle_buffer: 64,
        ..LoaderConfig::train(32, Augment::cifar(28, 8), 11)
    };
    let loader = Loader::new(store.clone(), "data/train", config.clone()).unwrap();
    assert_eq!(loader.batches_per_epoch(), 7);
    let a = collect(&loader, 0, 0);
    assert_eq!(a.len(), 7);
    assert_eq!(a[0].0.len(), 32 * 28 * 28);
    let b = collect(&loader, 0, 0);
    assert_eq!(a, b, "same seed and epoch gave other batches");
    let tail = collect(&loader, 0, 3);
    assert_eq!(tail.len(), 4);
    assert_eq!(
        &a[3..],
        &tail[..],
        "resuming at batch 3 differs from the uninterrupted epoch"
    );
    let next = collect(&loader, 1, 0);
    assert_ne!(a[0].1, next[0].1, "epoch 1 repeats epoch 0's order");
    // Every image once per epoch (shuffle buffer loses nothing): 7 * 32 of the 230 labels.
    let eval = Loader::new(store.clone(), "data/train", LoaderConfig::eval(100, 28)).unwrap();
    let all: Vec<i64> = collect(&eval, 0, 0)
        .into_iter()
        .flat_map(|(_, l, _)| l)
        .collect();
    assert_eq!(all.len(), 230);
    let mut shuffled: Vec<i64> = a.iter().flat_map(|(_, l, _)| l.clone()).collect();
    shuffled.sort();
    assert_eq!(shuffled.len(), 224);
    // A tampered shard fails its checksum.
    let key = "data/train/shard-00001.bin";
    let mut bytes = store.get(key).unwrap();
    bytes[100] ^= 0xff;
    store.put(key, &bytes).unwrap();
    let err = eval
        .epoch(0, 0)
        .find_map(|b| b.err())
        .expect("no error for a corrupted shard");
    assert!(matches!(err, DataError::Checksum { .. }), "{err}");
}

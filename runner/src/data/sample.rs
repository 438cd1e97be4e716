//! The balanced in-memory sample the metrics score on (`per_class` images of every class).
//!
//! One streaming pass over the split: each class keeps a reservoir (Algorithm R) of `per_class`
//! still-encoded records, drawn with its own ChaCha RNG seeded from `seed` and the class, so the
//! draw depends only on the seed and the archive order, never on class interleaving. Only the
//! chosen images are decoded, in parallel.
use super::image::{decode_jpeg, Image};
use super::records::{ClassRef, Payload, RawRecord};
use super::source::DataSource;
use super::{DataError, ImageBatch, Split};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;
use std::collections::BTreeMap;
use tch::Tensor;

/// Side used when the sampled images differ in size and no size was asked for.
pub const DEFAULT_SIDE: u32 = 224;

/// Options of [`load_balanced_sample_with`].
#[derive(Debug, Clone, Default)]
pub struct SampleOptions {
    /// Square side of the output: short side resized to `side * 8 / 7`, then centre crop.
    /// `None`: images are kept as decoded when they all have one size, else [`DEFAULT_SIDE`].
    pub side: Option<u32>,
}

struct Reservoir {
    seen: usize,
    rng: ChaCha8Rng,
    items: Vec<RawRecord>,
}

fn class_seed(seed: u64, class: &ClassRef) -> u64 {
    let tag = match class {
        ClassRef::Name(n) => crc32fast::hash(n.as_bytes()) as u64,
        ClassRef::Index(i) => 0x1_0000_0000 | *i as u64,
    };
    seed ^ tag.wrapping_mul(0x9E37_79B9_7F4A_7C15)
}

/// `per_class` images of every class from `split` of the data set at `location` (any format the
/// readers know), drawn with `seed`: the paper's metric trains on 10 per class.
pub fn load_balanced_sample(
    location: &str,
    split: Split,
    per_class: usize,
    seed: u64,
) -> Result<ImageBatch, DataError> {
    load_balanced_sample_with(location, split, per_class, seed, &SampleOptions::default())
}

/// [`load_balanced_sample`] with explicit options.
pub fn load_balanced_sample_with(
    location: &str,
    split: Split,
    per_class: usize,
    seed: u64,
    options: &SampleOptions,
) -> Result<ImageBatch, DataError> {
    sample_source(
        &DataSource::open(location)?,
        split,
        per_class,
        seed,
        options,
    )
}

/// [`load_balanced_sample_with`] from an opened source (e.g. [`DataSource::staged`] shards in
/// the artifact store).
pub fn sample_source(
    source: &DataSource,
    split: Split,
    per_class: usize,
    seed: u64,
    options: &SampleOptions,
) -> Result<ImageBatch, DataError> {
    if per_class == 0 {
        return Err(DataError::Invalid("per_class must be at least 1".into()));
    }
    let location = &source.shown();
    let channels = source.channels()?;
    let mut reservoirs: BTreeMap<ClassRef, Reservoir> = BTreeMap::new();
    let summary = source.visit(split, &mut |record| {
        let r = reservoirs
            .entry(record.class.clone())
            .or_insert_with(|| Reservoir {
                seen: 0,
                rng: ChaCha8Rng::seed_from_u64(class_seed(seed, &record.class)),
                items: Vec::with_capacity(per_class),
            });
        if r.items.len() < per_class {
            r.items.push(record);
        } else {
            let j = r.rng.random_range(0..=r.seen);
            if j < per_class {
                r.items[j] = record;
            }
        }
        r.seen += 1;
        Ok(())
    })?;

    // Resolve class names and labels.
    let (classes, labels_of): (Vec<String>, BTreeMap<ClassRef, i64>) =
        match reservoirs.keys().next() {
            Some(ClassRef::Name(_)) | None => {
                let mut names: Vec<String> = summary.class_folders.clone().unwrap_or_default();
                for k in reservoirs.keys() {
                    if let ClassRef::Name(n) = k {
                        names.push(n.clone());
                    }
                }
                names.sort();
                names.dedup();
                for n in &names {
                    if !reservoirs.contains_key(&ClassRef::Name(n.clone())) {
                        return Err(DataError::EmptyClass {
                            location: location.to_string(),
                            split: split.to_string(),
                            class: n.clone(),
                        });
                    }
                }
                let labels = names
                    .iter()
                    .enumerate()
                    .map(|(i, n)| (ClassRef::Name(n.clone()), i as i64))
                    .collect();
                (names, labels)
            }
            Some(ClassRef::Index(_)) => {
                let max = reservoirs
                    .keys()
                    .filter_map(|k| {
                        if let ClassRef::Index(i) = k {
                            Some(*i)
                        } else {
                            None
                        }
                    })
                    .max()
                    .unwrap_or(0);
                let names = match source.index_names(split)? {
                    Some(n) if n.len() > max as usize => n,
                    _ => super::readers::numbered_classes(max, location)?,
                };
                for i in 0..names.len() as u32 {
                    if !reservoirs.contains_key(&ClassRef::Index(i)) {
                        return Err(DataError::EmptyClass {
                            location: location.to_string(),
                            split: split.to_string(),
                            class: names[i as usize].clone(),
                        });
                    }
                }
                let labels = reservoirs
                    .keys()
                    .map(|k| {
                        (
                            k.clone(),
                            if let ClassRef::Index(i) = k {
                                *i as i64
                            } else {
                                0
                            },
                        )
                    })
                    .collect();
                (names, labels)
            }
        };
    if reservoirs.is_empty() {
        return Err(DataError::Invalid(format!(
            "{location}: split {split} holds no images"
        )));
    }

    let mut chosen: Vec<(i64, RawRecord)> = Vec::with_capacity(per_class * reservoirs.len());
    for (class, r) in reservoirs {
        let label = labels_of[&class];
        if r.items.len() < per_class {
            return Err(DataError::NotEnoughImages {
                location: location.to_string(),
                class: classes[label as usize].clone(),
                have: r.items.len(),
                want: per_class,
            });
        }
        chosen.extend(r.items.into_iter().map(|item| (label, item)));
    }
    chosen.sort_by_key(|(label, _)| *label);

    let decoded: Vec<Image> = chosen
        .par_iter()
        .map(|(_, record)| match &record.payload {
            Payload::Jpeg(bytes) => decode_jpeg(bytes, channels, &record.key),
            Payload::Pixels(image) => Ok(image.clone()),
        })
        .collect::<Result<_, _>>()?;
    let same_size = decoded
        .windows(2)
        .all(|w| (w[0].height, w[0].width) == (w[1].height, w[1].width));
    let side = match options.side {
        Some(s) => Some(s),
        None if same_size => None,
        None => Some(DEFAULT_SIDE),
    };
    let images: Vec<Image> = match side {
        None => decoded,
        Some(s) => decoded
            .into_par_iter()
            .map(|img| -> Result<Image, DataError> {
                Ok(img.resize_short_side(s * 8 / 7)?.center_crop(s))
            })
            .collect::<Result<_, DataError>>()?,
    };
    let (h, w) = (images[0].height as i64, images[0].width as i64);
    let mut flat = Vec::with_capacity(images.len() * images[0].data.len());
    for img in &images {
        flat.extend_from_slice(&img.to_chw());
    }
    let n = images.len() as i64;
    let labels: Vec<i64> = chosen.iter().map(|(l, _)| *l).collect();
    Ok(ImageBatch {
        images: Tensor::from_slice(&flat).view([n, channels as i64, h, w]),
        labels: Tensor::from_slice(&labels),
        classes,
        normalization: source.normalization()?,
    })
}

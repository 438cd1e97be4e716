//! The streaming loader over staged shards.
//!
//! Per epoch, a reader thread fetches shards one at a time (in an order shuffled with the seed
//! and epoch), passes records through a bounded shuffle buffer and groups them into batches; an
//! augmentation thread turns each batch into a normalised float tensor, augmenting samples in
//! parallel (rayon); both run ahead of the consumer by `prefetch` batches. Every random choice
//! comes from an RNG derived from (seed, epoch) or (seed, epoch, sample position), so an epoch
//! is the same batch for batch whatever the thread timing, and `epoch(e, skip)` resumes inside
//! one exactly.
use super::augment::Augment;
use super::image::Image;
use super::shards::ShardIndex;
use super::{DataError, Normalization};
use crate::store::ObjectStore;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;
use std::sync::mpsc::{sync_channel, Receiver};
use std::sync::Arc;
use tch::Tensor;

#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct LoaderConfig {
    pub batch_size: usize,
    /// Shuffle shard order and records (training); false keeps the staged order (evaluation).
    pub shuffle: bool,
    /// Records held by the shuffle buffer.
    pub shuffle_buffer: usize,
    pub augment: Augment,
    pub seed: u64,
    /// Batches prepared ahead of the consumer.
    pub prefetch: usize,
    /// Drop the last, smaller batch.
    pub drop_last: bool,
    /// Read only one side of a validation share held out of the split.
    #[serde(default)]
    pub holdout: Option<Holdout>,
}

/// A validation share of a split: each record is held out with probability `percent`/100, by a
/// seeded hash of its position (shard, record), so every class gives about that share and the
/// choice needs no pass over the data. `held` picks the side this loader reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Holdout {
    pub percent: u32,
    pub seed: u64,
    pub held: bool,
}

impl Holdout {
    /// Whether record `pos` of shard `shard` is on this loader's side.
    pub fn selects(&self, shard: usize, pos: usize) -> bool {
        let h = mix(self.seed ^ 0x7A11_D0E5, shard as u64, pos as u64);
        ((h % 100) < u64::from(self.percent)) == self.held
    }
}

impl LoaderConfig {
    pub fn train(batch_size: usize, augment: Augment, seed: u64) -> Self {
        LoaderConfig {
            batch_size,
            shuffle: true,
            shuffle_buffer: 8192,
            augment,
            seed,
            prefetch: 4,
            drop_last: true,
            holdout: None,
        }
    }
    pub fn eval(batch_size: usize, side: u32) -> Self {
        LoaderConfig {
            batch_size,
            shuffle: false,
            shuffle_buffer: 1,
            augment: Augment::eval(side),
            seed: 0,
            prefetch: 2,
            drop_last: false,
            holdout: None,
        }
    }
}

/// One batch: float `[B, C, side, side]` normalised images and int64 `[B]` labels.
#[derive(Debug)]
pub struct Batch {
    pub images: Tensor,
    pub labels: Tensor,
    /// Position of the batch in its epoch.
    pub index: usize,
}

/// Loader over one staged split.
pub struct Loader {
    store: Arc<dyn ObjectStore>,
    index: Arc<ShardIndex>,
    config: LoaderConfig,
    /// Records this loader reads (all of the split, or one side of its hold-out).
    len: usize,
}

fn mix(seed: u64, a: u64, b: u64) -> u64 {
    let mut x =
        seed ^ a.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ b.wrapping_mul(0xC2B2_AE3D_27D4_EB4F);
    x ^= x >> 31;
    x.wrapping_mul(0xBF58_476D_1CE4_E5B9)
}

type RawBatch = (usize, Vec<(u32, Image)>);

impl Loader {
    /// Opens the staged split under `prefix` (needs its `_SUCCESS`).
    pub fn new(
        store: Arc<dyn ObjectStore>,
        prefix: &str,
        config: LoaderConfig,
    ) -> Result<Loader, DataError> {
        if config.batch_size == 0 || config.shuffle_buffer == 0 || config.prefetch == 0 {
            return Err(DataError::Invalid(
                "loader: batch_size, shuffle_buffer and prefetch must be at least 1".into(),
            ));
        }
        let index = ShardIndex::load(store.as_ref(), prefix)?;
        let len = match &config.holdout {
            None => index.total,
            Some(h) => index
                .shards
                .iter()
                .enumerate()
                .map(|(i, s)| (0..s.count).filter(|&pos| h.selects(i, pos)).count())
                .sum(),
        };
        Ok(Loader {
            store,
            index: Arc::new(index),
            config,
            len,
        })
    }

    pub fn index(&self) -> &ShardIndex {
        &self.index
    }
    pub fn config(&self) -> &LoaderConfig {
        &self.config
    }
    pub fn normalization(&self) -> &Normalization {
        &self.index.normalization
    }
    /// Images this loader reads: the split, or one side of its hold-out.
    pub fn len(&self) -> usize {
        self.len
    }
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
    pub fn batches_per_epoch(&self) -> usize {
        let (n, b) = (self.len, self.config.batch_size);
        if self.config.drop_last {
            n / b
        } else {
            n.div_ceil(b)
        }
    }

    /// The batches of `epoch`, starting after the first `skip` (those are read and shuffled
    /// but not augmented, so the rest is exactly what an uninterrupted epoch yields).
    pub fn epoch(&self, epoch: usize, skip: usize) -> EpochIter {
        let (raw_tx, raw_rx) = sync_channel::<Result<RawBatch, DataError>>(self.config.prefetch);
        let (tx, rx) = sync_channel::<Result<Batch, DataError>>(self.config.prefetch);
        let (store, index, config) = (self.store.clone(), self.index.clone(), self.config.clone());
        let limit = self.batches_per_epoch();
        std::thread::spawn(move || {
            if let Err(e) = read_epoch(store.as_ref(), &index, &config, epoch, skip, limit, &raw_tx)
            {
                let _ = raw_tx.send(Err(e));
            }
        });
        let (index, config) = (self.index.clone(), self.config.clone());
        std::thread::spawn(move || {
            for raw in raw_rx.iter() {
                let batch =
                    raw.and_then(|(i, records)| augment_batch(&index, &config, epoch, i, records));
                let stop = batch.is_err();
                if tx.send(batch).is_err() || stop {
                    break;
                }
            }
        });
        EpochIter { rx }
    }
}

/// Batches of one epoch; ends early after yielding an error.
pub struct EpochIter {
    rx: Receiver<Result<Batch, DataError>>,
}

impl Iterator for EpochIter {
    type Item = Result<Batch, DataError>;
    fn next(&mut self) -> Option<Self::Item> {
        self.rx.recv().ok()
    }
}

fn read_epoch(
    store: &dyn ObjectStore,
    index: &ShardIndex,
    config: &LoaderConfig,
    epoch: usize,
    skip: usize,
    limit: usize,
    tx: &std::sync::mpsc::SyncSender<Result<RawBatch, DataError>>,
) -> Result<(), DataError> {
    let mut rng = ChaCha8Rng::seed_from_u64(mix(config.seed, epoch as u64, u64::MAX));
    let mut order: Vec<usize> = (0..index.shards.len()).collect();
    if config.shuffle {
        order.shuffle(&mut rng);
    }
    let mut buffer: Vec<(u32, Image)> = Vec::with_capacity(config.shuffle_buffer);
    let mut batch: Vec<(u32, Image)> = Vec::with_capacity(config.batch_size);
    let mut batch_index = 0usize;
    // Returns false when the consumer went away or the epoch is complete.
    let mut emit = |record: (u32, Image), batch: &mut Vec<(u32, Image)>| -> bool {
        if batch_index >= limit {
            return false;
        }
        batch.push(record);
        if batch.len() == config.batch_size {
            let full = std::mem::replace(batch, Vec::with_capacity(config.batch_size));
            let i = batch_index;
            batch_index += 1;
            if i >= skip && tx.send(Ok((i, full))).is_err() {
                return false;
            }
        }
        true
    };
    for shard in order {
        for (pos, record) in index.read_shard(store, shard)?.into_iter().enumerate() {
            if config.holdout.is_some_and(|h| !h.selects(shard, pos)) {
                continue;
            }
            let out = if !config.shuffle {
                Some(record)
            } else if buffer.len() < config.shuffle_buffer {
                buffer.push(record);
                None
            } else {
                let j = rng.random_range(0..buffer.len());
                Some(std::mem::replace(&mut buffer[j], record))
            };
            if let Some(r) = out {
                if !emit(r, &mut batch) {
                    return Ok(());
                }
            }
        }
    }
    buffer.shuffle(&mut rng);
    for r in buffer {
        if !emit(r, &mut batch) {
            return Ok(());
        }
    }
    if !batch.is_empty() && !config.drop_last && batch_index >= skip && batch_index < limit {
        let _ = tx.send(Ok((batch_index, batch)));
    }
    Ok(())
}

fn augment_batch(
    index: &ShardIndex,
    config: &LoaderConfig,
    epoch: usize,
    batch_index: usize,
    records: Vec<(u32, Image)>,
) -> Result<Batch, DataError> {
    let base = batch_index * config.batch_size;
    let norm = &index.normalization;
    let pixels: Vec<Vec<f32>> = records
        .par_iter()
        .enumerate()
        .map(|(k, (_, image))| {
            let mut rng =
                ChaCha8Rng::seed_from_u64(mix(config.seed, epoch as u64, (base + k) as u64));
            config.augment.apply(image, norm, &mut rng)
        })
        .collect::<Result<_, _>>()?;
    let n = records.len() as i64;
    let c = index.channels as i64;
    let s = config.augment.side as i64;
    let flat: Vec<f32> = pixels.concat();
    let labels: Vec<i64> = records.iter().map(|(l, _)| *l as i64).collect();
    Ok(Batch {
        images: Tensor::from_slice(&flat).view([n, c, s, s]),
        labels: Tensor::from_slice(&labels),
        index: batch_index,
    })
}

//! Checkpoints through the object store:
//!
//! ```text
//! {prefix}/step-00001200/model.ot   every VarStore tensor (parameters and BN statistics)
//! {prefix}/step-00001200/optim.ot   momentum buffers by parameter name
//! {prefix}/step-00001200/state.json position (step, epoch, batch), recipe, loss tallies
//! {prefix}/latest                   "step-00001200", written last
//! ```
//!
//! The RNG state needs no bytes of its own: the trainer reseeds libtorch from (seed, step) before
//! every step and the loader derives its RNGs from (seed, epoch, position), so the position is
//! the state. The two newest checkpoints are kept.
use super::optim::Sgd;
use super::recipe::Recipe;
use super::TrainError;
use crate::data::shards::join_key;
use crate::store::ObjectStore;
use serde::{Deserialize, Serialize};
use std::io::Cursor;
use tch::nn::VarStore;

const KEEP: usize = 2;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CheckpointState {
    /// Optimiser steps done.
    pub step: usize,
    /// Epoch and batch within it of the next step.
    pub epoch: usize,
    pub batch_in_epoch: usize,
    pub arch: String,
    pub recipe: Recipe,
    /// Loss tallies of the epoch in progress, and the means of finished epochs (stored by
    /// their bits: see [`f64_bits`]).
    #[serde(with = "f64_bits")]
    pub epoch_loss_sum: f64,
    pub epoch_loss_count: usize,
    #[serde(with = "f64_bits::vec")]
    pub epoch_losses: Vec<f64>,
    #[serde(with = "f64_bits")]
    pub last_loss: f64,
    /// The loss curve so far, `(step, mean loss since the previous point)`, and the tallies of
    /// its next point (absent from checkpoints of earlier releases: the curve restarts).
    #[serde(default)]
    pub curve: Vec<(usize, f64)>,
    #[serde(default)]
    pub curve_sum: f64,
    #[serde(default)]
    pub curve_count: usize,
}

/// `f64`s written as their IEEE bit patterns: serde_json's float parser may return a long
/// decimal one ULP off, and a resumed run must continue bit for bit.
mod f64_bits {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(v: &f64, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(v.to_bits())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
        u64::deserialize(d).map(f64::from_bits)
    }

    pub mod vec {
        use serde::{Deserialize, Deserializer, Serializer};

        pub fn serialize<S: Serializer>(v: &[f64], s: S) -> Result<S::Ok, S::Error> {
            s.collect_seq(v.iter().map(|x| x.to_bits()))
        }

        pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<f64>, D::Error> {
            Vec::<u64>::deserialize(d).map(|v| v.into_iter().map(f64::from_bits).collect())
        }
    }
}

pub fn checkpoint_name(step: usize) -> String {
    format!("step-{step:08}")
}

fn err(key: &str, detail: impl std::fmt::Display) -> TrainError {
    TrainError::Checkpoint {
        key: key.to_string(),
        detail: detail.to_string(),
    }
}

/// Writes a checkpoint and moves `latest` to it; returns its name.
pub fn save(
    store: &dyn ObjectStore,
    prefix: &str,
    vs: &VarStore,
    opt: &Sgd,
    state: &CheckpointState,
) -> Result<String, TrainError> {
    let name = checkpoint_name(state.step);
    let dir = join_key(prefix, &name);
    let mut model = Vec::new();
    vs.save_to_stream(&mut model).map_err(|e| err(&dir, e))?;
    store.put(&join_key(&dir, "model.ot"), &model)?;
    let mut optim = Vec::new();
    let buffers = opt.named_buffers();
    tch::Tensor::save_multi_to_stream(&buffers, &mut optim).map_err(|e| err(&dir, e))?;
    store.put(&join_key(&dir, "optim.ot"), &optim)?;
    let json = serde_json::to_vec_pretty(state).map_err(|e| err(&dir, e))?;
    store.put(&join_key(&dir, "state.json"), &json)?;
    store.put(&join_key(prefix, "latest"), name.as_bytes())?;
    prune(store, prefix, &name)?;
    Ok(name)
}

fn prune(store: &dyn ObjectStore, prefix: &str, newest: &str) -> Result<(), TrainError> {
    let base = join_key(prefix, "step-");
    let mut names: Vec<String> = store
        .list(&base)?
        .iter()
        .filter_map(|k| {
            k.strip_prefix(&join_key(prefix, ""))
                .and_then(|r| r.split('/').next())
                .map(String::from)
        })
        .collect();
    names.sort();
    names.dedup();
    names.retain(|n| n.as_str() <= newest);
    if names.len() > KEEP {
        for old in &names[..names.len() - KEEP] {
            for file in ["model.ot", "optim.ot", "state.json"] {
                store.delete(&join_key(&join_key(prefix, old), file))?;
            }
        }
    }
    Ok(())
}

/// Name of the newest complete checkpoint under `prefix`, if any.
pub fn latest(store: &dyn ObjectStore, prefix: &str) -> Result<Option<String>, TrainError> {
    let key = join_key(prefix, "latest");
    if !store.exists(&key)? {
        return Ok(None);
    }
    let name = String::from_utf8(store.get(&key)?).map_err(|e| err(&key, e))?;
    Ok(Some(name.trim().to_string()))
}

/// Restores model and optimiser from checkpoint `name`; returns its state.
pub fn load(
    store: &dyn ObjectStore,
    prefix: &str,
    name: &str,
    vs: &mut VarStore,
    opt: &mut Sgd,
) -> Result<CheckpointState, TrainError> {
    let dir = join_key(prefix, name);
    let state_key = join_key(&dir, "state.json");
    let state: CheckpointState =
        serde_json::from_slice(&store.get(&state_key)?).map_err(|e| err(&state_key, e))?;
    let model_key = join_key(&dir, "model.ot");
    vs.load_from_stream(Cursor::new(store.get(&model_key)?))
        .map_err(|e| err(&model_key, e))?;
    let optim_key = join_key(&dir, "optim.ot");
    let buffers = tch::Tensor::load_multi_from_stream_with_device(
        Cursor::new(store.get(&optim_key)?),
        vs.device(),
    )
    .map_err(|e| err(&optim_key, e))?;
    opt.load_buffers(&buffers).map_err(|e| err(&optim_key, e))?;
    Ok(state)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn state_round_trips_its_losses_bit_for_bit() {
        let mut sum = 0.0;
        for i in 1..=37 {
            sum += 1.0 / (i as f64 * 3.7);
        }
        let state = CheckpointState {
            step: 12,
            epoch: 1,
            batch_in_epoch: 4,
            arch: "tiny".into(),
            recipe: Recipe::with_overrides("nb201-cifar", &serde_json::json!({})).unwrap(),
            epoch_loss_sum: sum,
            epoch_loss_count: 37,
            epoch_losses: vec![sum / 37.0, 0.1 + 0.2, f64::NAN],
            last_loss: f64::NAN,
            curve: vec![(3, 2.5)],
            curve_sum: 0.25,
            curve_count: 1,
        };
        let json = serde_json::to_vec(&state).unwrap();
        let back: CheckpointState = serde_json::from_slice(&json).unwrap();
        assert_eq!(back.epoch_loss_sum.to_bits(), sum.to_bits());
        let bits = |v: &[f64]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
        assert_eq!(bits(&back.epoch_losses), bits(&state.epoch_losses));
        assert!(back.last_loss.is_nan());
        assert_eq!(back.recipe, state.recipe);
        assert_eq!(back.curve, state.curve);
        // A checkpoint of an earlier release (no curve) still loads; the curve restarts.
        let mut old: serde_json::Value = serde_json::from_slice(&json).unwrap();
        for key in ["curve", "curve_sum", "curve_count"] {
            old.as_object_mut().unwrap().remove(key);
        }
        let back: CheckpointState = serde_json::from_value(old).unwrap();
        assert!(back.curve.is_empty());
    }
}

//! Training recipes: every hyper-parameter of a run, three named presets and JSON/YAML
//! overrides of any field.
//!
//! * `nb201-cifar`: NAS-Bench-201 (Dong & Yang, 2020): 200 epochs, batch 256, SGD Nesterov
//!   momentum 0.9, lr 0.1 cosine to 0, weight decay 5e-4, pad-crop + flip.
//! * `darts-cifar`: DARTS evaluation (Liu et al., 2019): 600 epochs, batch 96, lr 0.025 cosine,
//!   momentum 0.9 (not Nesterov, as DARTS), wd 3e-4, cutout 16, drop-path 0.2, auxiliary 0.4,
//!   gradient clipping 5 (DARTS' `grad_clip`).
//! * `darts-imagenet`: 250 epochs, batch 1024 (DARTS spread it over 8 GPUs), lr 0.5 cosine with
//!   5 warm-up epochs, momentum 0.9, wd 3e-5, label smoothing 0.1, auxiliary 0.4, clip 5,
//!   RandomResizedCrop 224 + flip + jitter.
use super::schedule::Schedule;
use super::TrainError;
use serde::{Deserialize, Serialize};

/// Which augmentation the training split gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum AugmentKind {
    /// Centre only (no augmentation).
    None,
    /// Pad 4, random crop, flip (plus `cutout` when set).
    Cifar,
    /// RandomResizedCrop, flip, light colour jitter.
    Imagenet,
}

/// The named presets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Preset {
    Nb201Cifar,
    DartsCifar,
    DartsImagenet,
}

impl Preset {
    pub const ALL: [Preset; 3] = [
        Preset::Nb201Cifar,
        Preset::DartsCifar,
        Preset::DartsImagenet,
    ];

    /// The name a recipe file or `--recipe` gives.
    pub const fn name(self) -> &'static str {
        match self {
            Preset::Nb201Cifar => "nb201-cifar",
            Preset::DartsCifar => "darts-cifar",
            Preset::DartsImagenet => "darts-imagenet",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Recipe {
    pub name: String,
    pub epochs: usize,
    /// Images per optimiser step.
    pub batch_size: usize,
    pub lr: f64,
    pub momentum: f64,
    pub nesterov: bool,
    pub weight_decay: f64,
    pub schedule: Schedule,
    pub warmup_epochs: f64,
    pub label_smoothing: f64,
    /// Weight of the auxiliary head's loss (used when the network returns auxiliary logits).
    pub aux_weight: f64,
    /// Final drop-path probability; it grows linearly from 0 over the epochs (DARTS).
    pub drop_path: f64,
    /// Largest global gradient norm (`None`: no clipping).
    pub grad_clip: Option<f64>,
    pub augment: AugmentKind,
    /// Cutout side (0 = off).
    pub cutout: u32,
    /// Side of training and evaluation crops (`None`: the staged image size).
    pub image_side: Option<u32>,
    /// Mixed precision on CUDA through libtorch's autocast (fp16: tch 0.24 exposes no dtype
    /// choice, so bf16 is not available); ignored on CPU.
    pub autocast: bool,
    pub eval_batch_size: usize,
    /// Optimiser steps between checkpoints (0: only at the end or when stopped).
    pub checkpoint_every: usize,
    pub seed: u64,
    /// Shuffle-buffer size of the training loader.
    pub shuffle_buffer: usize,
}

impl Recipe {
    fn base(name: &str) -> Recipe {
        Recipe {
            name: name.to_string(),
            epochs: 1,
            batch_size: 64,
            lr: 0.1,
            momentum: 0.9,
            nesterov: true,
            weight_decay: 5e-4,
            schedule: Schedule::Cosine { min_lr: 0.0 },
            warmup_epochs: 0.0,
            label_smoothing: 0.0,
            aux_weight: 0.0,
            drop_path: 0.0,
            grad_clip: None,
            augment: AugmentKind::Cifar,
            cutout: 0,
            image_side: None,
            autocast: false,
            eval_batch_size: 256,
            checkpoint_every: 1000,
            seed: 0,
            shuffle_buffer: 8192,
        }
    }

    pub const NAMES: [&'static str; 3] = [
        Preset::ALL[0].name(),
        Preset::ALL[1].name(),
        Preset::ALL[2].name(),
    ];

    /// A named preset.
    pub fn named(name: &str) -> Result<Recipe, TrainError> {
        Preset::ALL
            .into_iter()
            .find(|p| p.name() == name)
            .map(Recipe::preset)
            .ok_or_else(|| {
                TrainError::Config(format!(
                    "unknown recipe '{name}': expected one of {}",
                    Recipe::NAMES.join(", ")
                ))
            })
    }

    /// The preset's recipe.
    pub fn preset(preset: Preset) -> Recipe {
        let b = Recipe::base(preset.name());
        match preset {
            Preset::Nb201Cifar => Recipe {
                epochs: 200,
                batch_size: 256,
                lr: 0.1,
                weight_decay: 5e-4,
                ..b
            },
            Preset::DartsCifar => Recipe {
                epochs: 600,
                batch_size: 96,
                lr: 0.025,
                nesterov: false,
                weight_decay: 3e-4,
                cutout: 16,
                drop_path: 0.2,
                aux_weight: 0.4,
                grad_clip: Some(5.0),
                ..b
            },
            Preset::DartsImagenet => Recipe {
                epochs: 250,
                batch_size: 1024,
                lr: 0.5,
                nesterov: false,
                weight_decay: 3e-5,
                warmup_epochs: 5.0,
                label_smoothing: 0.1,
                aux_weight: 0.4,
                grad_clip: Some(5.0),
                augment: AugmentKind::Imagenet,
                image_side: Some(224),
                shuffle_buffer: 16384,
                ..b
            },
        }
    }

    /// Drop-path probability of epoch `epoch` (from 0): it grows linearly from 0 to `drop_path`
    /// over the run, as DARTS' training scripts set `drop_path_prob * epoch / epochs`.
    pub fn drop_path_at(&self, epoch: usize) -> f64 {
        self.drop_path * epoch as f64 / self.epochs.max(1) as f64
    }

    /// A run no longer than `base`'s warm-up (darts-imagenet: 5 of 250 epochs) keeps the
    /// preset's warm-up share of the run instead of failing: 1 epoch warms up for 0.02. Not
    /// applied when the warm-up itself was chosen (`warmup_set`).
    pub fn keep_warmup_share(&mut self, base: &Recipe, warmup_set: bool) {
        if !warmup_set
            && base.epochs > 0
            && base.warmup_epochs >= self.epochs as f64
            && self.epochs != base.epochs
        {
            self.warmup_epochs = base.warmup_epochs * self.epochs as f64 / base.epochs as f64;
        }
    }

    /// The preset `name` with the fields of `overrides` (a JSON object, e.g. from the spec's
    /// YAML) replacing its own; unknown fields are an error naming them.
    pub fn with_overrides(name: &str, overrides: &serde_json::Value) -> Result<Recipe, TrainError> {
        let base = Recipe::named(name)?;
        let serde_json::Value::Object(fields) = overrides else {
            if overrides.is_null() {
                return Ok(base);
            }
            return Err(TrainError::Config(format!(
                "recipe overrides must be an object, got {overrides}"
            )));
        };
        let mut merged =
            serde_json::to_value(&base).map_err(|e| TrainError::Config(e.to_string()))?;
        let target = merged
            .as_object_mut()
            .expect("a struct serialises to an object");
        for (k, v) in fields {
            if k == "name" {
                return Err(TrainError::Config(
                    "recipe override may not change 'name'".into(),
                ));
            }
            target.insert(k.clone(), v.clone());
        }
        let mut recipe: Recipe = serde_json::from_value(merged)
            .map_err(|e| TrainError::Config(format!("recipe '{name}' overrides: {e}")))?;
        recipe.keep_warmup_share(&base, fields.contains_key("warmup_epochs"));
        recipe.validate()?;
        Ok(recipe)
    }

    pub fn validate(&self) -> Result<(), TrainError> {
        let bad = |m: String| Err(TrainError::Config(format!("recipe '{}': {m}", self.name)));
        if self.epochs == 0
            || self.batch_size == 0
            || self.eval_batch_size == 0
            || self.shuffle_buffer == 0
        {
            return bad(
                "epochs, batch_size, eval_batch_size and shuffle_buffer must be at least 1".into(),
            );
        }
        if !(self.lr > 0.0 && self.lr.is_finite()) {
            return bad(format!("lr must be positive, got {}", self.lr));
        }
        if !(0.0..1.0).contains(&self.momentum) || self.weight_decay < 0.0 {
            return bad("momentum must be in [0, 1) and weight_decay non-negative".into());
        }
        if !(0.0..1.0).contains(&self.label_smoothing) || !(0.0..1.0).contains(&self.drop_path) {
            return bad("label_smoothing and drop_path must be in [0, 1)".into());
        }
        if self.warmup_epochs < 0.0 || self.warmup_epochs > self.epochs as f64 {
            return bad(format!(
                "warmup_epochs {} outside [0, epochs]",
                self.warmup_epochs
            ));
        }
        if self.grad_clip.is_some_and(|c| c <= 0.0) {
            return bad("grad_clip must be positive".into());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_run_shorter_than_the_presets_warm_up_keeps_its_warm_up_share() {
        let short =
            Recipe::with_overrides("darts-imagenet", &serde_json::json!({"epochs": 1})).unwrap();
        assert!(
            (short.warmup_epochs - 0.02).abs() < 1e-12,
            "{}",
            short.warmup_epochs
        );
        let long =
            Recipe::with_overrides("darts-imagenet", &serde_json::json!({"epochs": 50})).unwrap();
        assert_eq!(long.warmup_epochs, 5.0);
        // Asked for explicitly, an impossible warm-up is still an error.
        let both = serde_json::json!({"epochs": 1, "warmup_epochs": 5.0});
        assert!(Recipe::with_overrides("darts-imagenet", &both).is_err());
    }

    #[test]
    fn presets_carry_the_issue_values() {
        let d = Recipe::named("darts-imagenet").unwrap();
        assert_eq!(
            (d.epochs, d.batch_size, d.lr, d.warmup_epochs),
            (250, 1024, 0.5, 5.0)
        );
        assert_eq!(
            (d.label_smoothing, d.aux_weight, d.grad_clip),
            (0.1, 0.4, Some(5.0))
        );
        let c = Recipe::named("darts-cifar").unwrap();
        assert_eq!(
            (c.epochs, c.batch_size, c.cutout, c.drop_path),
            (600, 96, 16, 0.2)
        );
        let n = Recipe::named("nb201-cifar").unwrap();
        assert!(n.nesterov && n.weight_decay == 5e-4 && n.batch_size == 256);
        assert!(Recipe::named("nope")
            .unwrap_err()
            .to_string()
            .contains("nb201-cifar"));
    }

    #[test]
    fn overrides_replace_fields_and_reject_unknown_ones() {
        let r = Recipe::with_overrides(
            "nb201-cifar",
            &serde_json::json!({"epochs": 3, "schedule": {"kind": "constant"}}),
        )
        .unwrap();
        assert_eq!(r.epochs, 3);
        assert_eq!(r.schedule, Schedule::Constant);
        let e =
            Recipe::with_overrides("nb201-cifar", &serde_json::json!({"epoch": 3})).unwrap_err();
        assert!(e.to_string().contains("epoch"), "{e}");
        assert!(Recipe::with_overrides("nb201-cifar", &serde_json::json!({"lr": -1.0})).is_err());
    }
}

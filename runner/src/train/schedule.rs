//! Learning-rate schedules, evaluated per optimiser step so that resuming at any step gives the
//! same rate: `lr(step)` is a pure function of the step.
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case", deny_unknown_fields)]
pub enum Schedule {
    Constant,
    /// Multiply by `gamma` every `every_epochs` epochs.
    Step {
        every_epochs: f64,
        gamma: f64,
    },
    /// Cosine from the base rate down to `min_lr` at the last step.
    Cosine {
        #[serde(default)]
        min_lr: f64,
    },
}

/// A schedule bound to a run's length.
#[derive(Debug, Clone)]
pub struct LrSchedule {
    pub base_lr: f64,
    pub schedule: Schedule,
    pub steps_per_epoch: usize,
    pub total_steps: usize,
    pub warmup_steps: usize,
}

impl LrSchedule {
    pub fn new(
        base_lr: f64,
        schedule: Schedule,
        steps_per_epoch: usize,
        epochs: usize,
        warmup_epochs: f64,
    ) -> Self {
        let total_steps = steps_per_epoch * epochs;
        let warmup_steps =
            ((warmup_epochs * steps_per_epoch as f64).round() as usize).min(total_steps);
        LrSchedule {
            base_lr,
            schedule,
            steps_per_epoch,
            total_steps,
            warmup_steps,
        }
    }

    /// Rate for optimiser step `step` (0-based).
    pub fn lr(&self, step: usize) -> f64 {
        if step < self.warmup_steps {
            return self.base_lr * (step + 1) as f64 / self.warmup_steps as f64;
        }
        match &self.schedule {
            Schedule::Constant => self.base_lr,
            Schedule::Step {
                every_epochs,
                gamma,
            } => {
                let epoch = step as f64 / self.steps_per_epoch.max(1) as f64;
                self.base_lr * gamma.powf((epoch / every_epochs).floor())
            }
            Schedule::Cosine { min_lr } => {
                let span = self.total_steps.saturating_sub(self.warmup_steps).max(1) as f64;
                let t = (step - self.warmup_steps) as f64 / span;
                min_lr
                    + 0.5
                        * (self.base_lr - min_lr)
                        * (1.0 + (std::f64::consts::PI * t.min(1.0)).cos())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn warmup_then_cosine_to_min() {
        let s = LrSchedule::new(0.5, Schedule::Cosine { min_lr: 0.0 }, 10, 10, 2.0);
        assert!((s.lr(0) - 0.025).abs() < 1e-12);
        assert!((s.lr(19) - 0.5).abs() < 1e-12);
        assert!((s.lr(20) - 0.5).abs() < 1e-12);
        assert!(s.lr(60) < s.lr(40));
        assert!(s.lr(99) < 1e-3);
    }

    #[test]
    fn step_and_constant() {
        let s = LrSchedule::new(
            0.1,
            Schedule::Step {
                every_epochs: 2.0,
                gamma: 0.1,
            },
            5,
            6,
            0.0,
        );
        assert!((s.lr(9) - 0.1).abs() < 1e-12);
        assert!((s.lr(10) - 0.01).abs() < 1e-12);
        assert!((s.lr(29) - 0.001).abs() < 1e-12);
        let c = LrSchedule::new(0.3, Schedule::Constant, 5, 6, 0.0);
        assert_eq!(c.lr(17), 0.3);
    }
}

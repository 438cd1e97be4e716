//! Training: the trainer, recipes, schedules, the optimiser and checkpoints.
//!
//! * [`recipe`]: named recipes (`nb201-cifar`, `darts-cifar`, `darts-imagenet`) with
//!   overridable fields.
//! * [`schedule`]: learning rate by step (constant, step, cosine; linear warm-up).
//! * [`optim`]: SGD with (Nesterov) momentum and weight decay, buffers exposed for checkpoints.
//! * [`checkpoint`]: model, optimiser and position saved through the object store.
//! * [`trainer`]: the training loop and top-1/top-5 evaluation.

pub mod checkpoint;
pub mod optim;
pub mod recipe;
pub mod schedule;
pub mod smoke;
pub mod trainer;

pub use recipe::Recipe;
pub use trainer::{evaluate, train, EvalResult, TrainData, TrainOptions, TrainReport, Trained};

use thiserror::Error;

#[derive(Debug, Error)]
pub enum TrainError {
    #[error("invalid training configuration: {0}")]
    Config(String),
    #[error(transparent)]
    Data(#[from] crate::data::DataError),
    #[error("object store: {0}")]
    Store(#[from] crate::store::StoreError),
    #[error("tensor: {0}")]
    Tensor(#[from] tch::TchError),
    #[error("checkpoint {key}: {detail}")]
    Checkpoint { key: String, detail: String },
    /// The loss became NaN or infinite: this candidate cannot be trained with this recipe.
    #[error("loss is {loss} at step {step} (epoch {epoch}): training diverged")]
    Diverged {
        step: usize,
        epoch: usize,
        loss: f64,
    },
}

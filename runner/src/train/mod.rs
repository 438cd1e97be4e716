//! Training: the trainer, recipes and checkpoints.

pub mod smoke;

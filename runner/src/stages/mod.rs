//! See the crate docs.

pub mod inspect;

//! The DARTS space: normal and reduction cells of 4 nodes, 8 operations, two inputs per node.
//!
//! * [`genotype`]: genotypes (named ones, JSON, the `Genotype(...)` text of [`text`]),
//!   sampling and mutation under the DARTS rules.
//! * [`net`] and [`ops`]: the CIFAR and ImageNet evaluation networks, with the auxiliary
//!   head, their parameter and FLOP counts.
mod genotype;
pub mod net;
pub(crate) mod ops;
mod text;

pub use genotype::*;
pub use net::DartsBuilder;

use super::{SearchSpace, SpaceError};
use crate::nn::{NetBuilder, NetOptions};
use nas_api::spec::SpaceName;

/// The space behind [`SearchSpace`].
pub struct DartsSpace;

impl SearchSpace for DartsSpace {
    fn name(&self) -> SpaceName {
        SpaceName::Darts
    }

    fn canonical(&self, arch: &str) -> Result<String, SpaceError> {
        Ok(Genotype::resolve(arch)?.to_json())
    }

    fn sample(&self, n: usize, seed: u64) -> Vec<String> {
        Genotype::sample_n(n, seed)
            .iter()
            .map(Genotype::to_json)
            .collect()
    }

    /// About 10^18 genotypes: sampled, never enumerated.
    fn enumerate(&self) -> Option<Box<dyn Iterator<Item = String>>> {
        None
    }

    fn mutate(&self, arch: &str, rng: &mut dyn rand::RngCore) -> Result<String, SpaceError> {
        Ok(Genotype::resolve(arch)?.mutate(rng).to_json())
    }

    fn builder(&self, arch: &str, opts: &NetOptions) -> Result<Box<dyn NetBuilder>, SpaceError> {
        Ok(Box::new(DartsBuilder::new(Genotype::resolve(arch)?, opts)?))
    }

    fn flops_convention(&self) -> &'static str {
        net::FLOPS_CONVENTION
    }
}

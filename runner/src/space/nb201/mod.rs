//! NAS-Bench-201: a 4-node cell of 6 edges, 5 operations per edge, 15,625 architectures.
//!
//! * [`arch`]: the `|op~0|+|op~0|op~1|+|op~0|op~1|op~2|` encoding, enumeration, sampling,
//!   mutation and the benchmark's table.
//! * [`net`]: the network the benchmark trains (stem, 3 stages of cells with residual
//!   reductions, global pooling, classifier), its parameter and FLOP counts.
mod arch;
mod net;

pub use arch::*;
pub use net::{exchange_name, Nb201Builder};

use super::{SearchSpace, SpaceError};
use crate::nn::{NetBuilder, NetOptions};
use nas_api::spec::SpaceName;

/// The space behind [`SearchSpace`].
pub struct Nb201Space;

impl SearchSpace for Nb201Space {
    fn name(&self) -> SpaceName {
        SpaceName::Nb201
    }

    fn canonical(&self, arch: &str) -> Result<String, SpaceError> {
        Ok(arch.parse::<Nb201Arch>()?.to_string())
    }

    fn sample(&self, n: usize, seed: u64) -> Vec<String> {
        Nb201Arch::sample_n(n, seed)
            .iter()
            .map(ToString::to_string)
            .collect()
    }

    fn enumerate(&self) -> Option<Box<dyn Iterator<Item = String>>> {
        Some(Box::new(Nb201Arch::all().map(|a| a.to_string())))
    }

    fn mutate(&self, arch: &str, rng: &mut dyn rand::RngCore) -> Result<String, SpaceError> {
        Ok(arch.parse::<Nb201Arch>()?.mutate(rng).to_string())
    }

    fn builder(&self, arch: &str, opts: &NetOptions) -> Result<Box<dyn NetBuilder>, SpaceError> {
        Ok(Box::new(Nb201Builder::new(arch.parse()?, opts)?))
    }

    fn flops_convention(&self) -> &'static str {
        net::FLOPS_CONVENTION
    }
}

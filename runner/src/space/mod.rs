//! Search spaces, one folder each behind one trait, [`SearchSpace`]: parse and format an
//! architecture, sample, enumerate and mutate, and build its network (which counts its
//! parameters and FLOPs).
//!
//! * [`nb201`]: NAS-Bench-201 cells (`|op~0|+|op~0|op~1|+|op~0|op~1|op~2|`).
//! * [`darts`]: DARTS genotypes (normal and reduction cells of four nodes).
//!
//! A new space is a folder here, an entry in [`SPACES`] and a variant of
//! `nas_api::spec::SpaceName`; `crate::nn` holds only what networks of every space share.

pub mod darts;
pub mod nb201;

use crate::nn::{NetBuilder, NetOptions, OptionError};
use nas_api::spec::SpaceName;
use thiserror::Error;

/// Everything that can go wrong turning user text into an architecture or a network.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum SpaceError {
    /// The text of an architecture is malformed; `pos` is a 0-based character offset.
    #[error("{space} architecture: at position {pos}: expected {expected}, found {found}")]
    Parse {
        space: &'static str,
        pos: usize,
        expected: String,
        found: String,
    },
    /// The architecture parsed but breaks a rule of its space.
    #[error("{space} architecture: {message}")]
    Invalid {
        space: &'static str,
        message: String,
    },
    /// A network option is out of range for this space.
    #[error("network option `{option}`: {message}")]
    Option {
        option: &'static str,
        message: String,
    },
    /// The space name is not one this runner knows.
    #[error("unknown search space `{0}`: expected `nb201` or `darts`")]
    UnknownSpace(String),
    /// A benchmark table could not be read.
    #[error("table {path}: {message}")]
    Table { path: String, message: String },
}

impl From<OptionError> for SpaceError {
    fn from(e: OptionError) -> Self {
        SpaceError::Option {
            option: e.option,
            message: e.message,
        }
    }
}

/// What the pipeline, the commands and the metrics need of a search space.
pub trait SearchSpace: Sync {
    /// The API's name of the space (its `as_str` is the command line's).
    fn name(&self) -> SpaceName;
    /// Parses an architecture in any form the space accepts and returns its canonical text,
    /// the form `candidates.jsonl` stores.
    fn canonical(&self, arch: &str) -> Result<String, SpaceError>;
    /// `n` architectures drawn with `seed`, as canonical text: a search's candidates.
    fn sample(&self, n: usize, seed: u64) -> Vec<String>;
    /// Every architecture, where the space is small enough to list; `None` otherwise.
    fn enumerate(&self) -> Option<Box<dyn Iterator<Item = String>>>;
    /// A random neighbour of `arch` (one choice changed), as canonical text.
    fn mutate(&self, arch: &str, rng: &mut dyn rand::RngCore) -> Result<String, SpaceError>;
    /// The network of `arch` sized by `opts`: it counts its parameters and FLOPs and builds.
    fn builder(&self, arch: &str, opts: &NetOptions) -> Result<Box<dyn NetBuilder>, SpaceError>;
    /// What `NetBuilder::flops` counts in this space, in words (`inspect` prints it): the
    /// convention of the space's published numbers.
    fn flops_convention(&self) -> &'static str;
}

/// Every space, in the API's order.
pub static SPACES: [&dyn SearchSpace; 2] = [&nb201::Nb201Space, &darts::DartsSpace];

/// The space the API names.
pub fn for_name(name: SpaceName) -> &'static dyn SearchSpace {
    SPACES
        .into_iter()
        .find(|s| s.name() == name)
        .expect("SPACES holds every SpaceName (a unit test checks)")
}

/// The space a command line names (`nb201`, `darts`, or NB201's long names).
pub fn by_name(name: &str) -> Result<&'static dyn SearchSpace, SpaceError> {
    let lower = name.to_ascii_lowercase();
    let lower = match lower.as_str() {
        "nas-bench-201" | "nasbench201" => "nb201",
        other => other,
    };
    SPACES
        .into_iter()
        .find(|s| s.name().as_str() == lower)
        .ok_or_else(|| SpaceError::UnknownSpace(name.to_string()))
}

/// `by_name(space)`'s network for `arch`: an NB201 string, or a DARTS genotype (a name such as
/// `DARTS_V2`, JSON, or the textual `Genotype(...)`).
pub fn builder(
    space: &str,
    arch: &str,
    opts: &NetOptions,
) -> Result<Box<dyn NetBuilder>, SpaceError> {
    by_name(space)?.builder(arch, opts)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_api_space_has_exactly_one_implementation() {
        for name in SpaceName::ALL {
            assert_eq!(for_name(name).name(), name);
            assert_eq!(by_name(name.as_str()).unwrap().name(), name);
            // The name a spec is written with is the name the command line takes.
            let json = serde_json::to_string(&name).unwrap();
            assert_eq!(json, format!("\"{}\"", name.as_str()));
        }
        assert_eq!(SPACES.len(), SpaceName::ALL.len());
        assert!(matches!(by_name("nope"), Err(SpaceError::UnknownSpace(_))));
    }
}

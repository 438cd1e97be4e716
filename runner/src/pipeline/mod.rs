//! The search pipeline as library functions: one module per stage, each reading and writing
//! the artifact layout of DESIGN.md through an [`ObjectStore`] rooted at the search's prefix.
//!
//! The cluster's stage commands (`nas-runner score --spec ...`) run one of these per pod; `nas-runner
//! local` runs them all in order in one process. Both share every line below, so a local run
//! leaves exactly the artifacts a cluster run would.
//!
//! Every unit of work (a data split, a score shard, a finalist, a stage) writes its outputs,
//! then its `_SUCCESS` marker; a unit whose marker exists is skipped, which is how a retried pod
//! or a re-run resumes. Outputs are written whole ([`ObjectStore::put`] is atomic), so a killed
//! pod never leaves a half-written artifact that looks complete.
pub mod analysis;
pub mod candidates;
pub mod data_stage;
mod error;
pub mod evaluate;
mod plots;
pub mod report;
mod report_html;
mod report_table;
pub mod results;
pub mod score;
pub mod select;
pub mod train;

pub use error::{ErrorKind, StageError};

/// The resolved spec at the search's root, written once by the first stage.
pub use nas_api::layout::key::SPEC as SPEC_KEY;

use std::sync::Arc;

use nas_api::contract::{Outcome, Stage, TerminationSummary};
use nas_api::records::check_schema;
use nas_api::resolved::ResolvedSpec;
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::nn::NetBuilder;
use crate::nn::{DartsNetKind, NetOptions};
use crate::space::{self, SearchSpace};
use crate::store::ObjectStore;

/// One search's pipeline state: its spec, its artifact store and where tensors run.
pub struct Search {
    pub resolved: ResolvedSpec,
    /// Rooted at the search's prefix (`.../{namespace}/{name}/{uid}/`): keys are relative.
    pub store: Arc<dyn ObjectStore>,
    pub device: tch::Device,
    /// Progress lines on stderr.
    pub progress: bool,
}

/// What a stage returns on success: the summary for the termination message.
pub type StageResult = Result<TerminationSummary, StageError>;

impl Search {
    pub fn spec(&self) -> &nas_api::crd::NASSearchSpec {
        &self.resolved.spec
    }

    pub fn seed(&self) -> u64 {
        self.resolved.spec.sampling.seed
    }

    /// The search's space.
    pub fn space(&self) -> &'static dyn SearchSpace {
        space::for_name(self.resolved.spec.space.name)
    }

    /// Writes `spec.json` once; a `spec.json` already there must be the same spec (hash), so
    /// that artifacts of an edited search are never mixed with the old ones.
    pub fn ensure_spec(&self) -> Result<(), StageError> {
        match self.store.get_opt(SPEC_KEY)? {
            None => {
                self.store
                    .put(SPEC_KEY, self.resolved.to_json().as_bytes())?;
                Ok(())
            }
            Some(bytes) => {
                let there: ResolvedSpec = serde_json::from_slice(&bytes).map_err(|e| {
                    StageError::config(format!(
                        "{}/{SPEC_KEY} is not a resolved spec: {e}",
                        self.store.describe()
                    ))
                })?;
                if !self.resolved.answers_to(&there.spec_hash) {
                    return Err(StageError::config(format!(
                        "{}/{SPEC_KEY} holds spec {}, this run has spec {}: the search's spec changed \
                         after its artifacts were started; create a new search instead",
                        self.store.describe(),
                        there.spec_hash,
                        self.resolved.spec_hash
                    )));
                }
                Ok(())
            }
        }
    }

    /// Network options for this search's staged data set.
    pub fn net_options(&self, data: &DataShape) -> NetOptions {
        let s = &self.resolved.spec.space;
        NetOptions {
            classes: data.classes as i64,
            input_channels: data.channels,
            input_size: data.side,
            width: s.channels.map(i64::from),
            cells: s.cells.map(i64::from),
            darts_kind: DartsNetKind::for_input(data.side),
            ..NetOptions::default()
        }
    }

    /// Builds candidate `arch` of this search's space for `data`.
    pub fn build(&self, arch: &str, data: &DataShape) -> Result<Box<dyn NetBuilder>, StageError> {
        self.space()
            .builder(arch, &self.net_options(data))
            .map_err(|e| StageError::config(format!("architecture '{arch}': {e}")))
    }

    /// Reads and parses a JSON artifact.
    pub fn get_json<T: DeserializeOwned>(&self, key: &str) -> Result<T, StageError> {
        let bytes = self.store.get(key)?;
        serde_json::from_slice(&bytes).map_err(|e| self.corrupt(key, e))
    }

    /// Writes a JSON artifact (pretty, with a final newline).
    pub fn put_json<T: Serialize>(&self, key: &str, value: &T) -> Result<(), StageError> {
        let mut text = serde_json::to_string_pretty(value)
            .map_err(|e| StageError::transient(format!("{key}: {e}")))?;
        text.push('\n');
        Ok(self.store.put(key, text.as_bytes())?)
    }

    /// Reads a JSON-lines artifact, one record a line.
    pub fn get_jsonl<T: DeserializeOwned>(&self, key: &str) -> Result<Vec<T>, StageError> {
        let bytes = self.store.get(key)?;
        let text = String::from_utf8_lossy(&bytes);
        text.lines()
            .filter(|l| !l.trim().is_empty())
            .enumerate()
            .map(|(i, l)| {
                serde_json::from_str(l).map_err(|e| self.corrupt(&format!("{key}:{}", i + 1), e))
            })
            .collect()
    }

    /// Writes a JSON-lines artifact.
    pub fn put_jsonl<T: Serialize>(&self, key: &str, records: &[T]) -> Result<(), StageError> {
        let mut text = String::new();
        for r in records {
            text.push_str(
                &serde_json::to_string(r)
                    .map_err(|e| StageError::transient(format!("{key}: {e}")))?,
            );
            text.push('\n');
        }
        Ok(self.store.put(key, text.as_bytes())?)
    }

    /// An artifact another stage wrote does not parse: the store was tampered with or written
    /// by an incompatible build; retrying cannot fix it.
    fn corrupt(&self, key: &str, e: impl std::fmt::Display) -> StageError {
        StageError::config(format!(
            "{}/{key}: unreadable artifact: {e}",
            self.store.describe()
        ))
    }

    /// Whether `key` exists (a `_SUCCESS` marker).
    pub fn done(&self, key: &str) -> Result<bool, StageError> {
        Ok(self.store.exists(key)?)
    }

    /// Writes an empty `_SUCCESS` marker.
    pub fn mark_done(&self, key: &str) -> Result<(), StageError> {
        Ok(self.store.put(key, b"")?)
    }
}

/// S3 settings for `bucket` of a search: the standard AWS environment, completed by the spec's
/// `artifacts` (endpoint, region, path style). The raw data set is read with the same settings.
pub fn s3_config(
    resolved: &ResolvedSpec,
    bucket: &str,
) -> Result<crate::store::S3Config, StageError> {
    let a = &resolved.spec.artifacts;
    let mut c = crate::store::S3Config::from_env(bucket)?;
    if c.endpoint.is_none() {
        c.endpoint = a.endpoint.clone();
    }
    if c.region.is_none() {
        c.region = a.region.clone();
    }
    c.path_style |= a.force_path_style;
    Ok(c)
}

/// Rejects a record written by a newer build.
pub(crate) fn schema_ok(record: &'static str, found: u32) -> Result<(), StageError> {
    check_schema(record, found).map_err(|e| StageError::config(e.to_string()))
}

/// Channels, side and classes of the staged training split: what networks are built for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DataShape {
    pub classes: usize,
    pub channels: i64,
    pub side: i64,
}

impl DataShape {
    /// Reads `data/train/index.json` (staging must have finished).
    pub fn of(search: &Search) -> Result<Self, StageError> {
        let index = crate::data::ShardIndex::load(
            search.store.as_ref(),
            &nas_api::layout::key::data_split("train"),
        )
        .map_err(|e| StageError::transient(format!("staged data: {e}")))?;
        let [channels, side, _] = index.shape.map(|s| s.map(i64::from)).unwrap_or([
            i64::from(index.channels),
            i64::from(search.resolved.spec.dataset.resolution),
            0,
        ]);
        Ok(DataShape {
            classes: index.classes.len(),
            channels,
            side,
        })
    }
}

/// A summary for a stage that found its `_SUCCESS` and did nothing.
pub(crate) fn skipped(stage: Stage, index: Option<u32>, what: &str) -> TerminationSummary {
    TerminationSummary::new(
        stage,
        index,
        Outcome::Skipped,
        format!("{what} already done"),
    )
}

/// A candidate as the status shows it: the architecture cut to the status's bound, the
/// accuracies and errors (set with [`percent`]) left empty.
pub(crate) fn status_candidate(
    index: u64,
    arch: &str,
    params: u64,
    flops: u64,
) -> nas_api::crd::CandidateSummary {
    nas_api::crd::CandidateSummary {
        index: Some(index),
        arch: arch.chars().take(nas_api::crd::ARCH_MAX_CHARS).collect(),
        params: Some(params),
        flops: Some(flops),
        ..Default::default()
    }
}

/// A fraction as the status shows it: in percent, absent when unknown or not finite.
pub(crate) fn percent(fraction: Option<f64>) -> Option<f64> {
    fraction.filter(|a| a.is_finite()).map(|a| 100.0 * a)
}

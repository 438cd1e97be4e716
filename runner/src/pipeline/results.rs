//! A finished search's results, fetched from its artifact root: the summary, the reports, the
//! candidates table and the plots. A search that has not finished is described by how far its
//! stages got, read from their `_SUCCESS` markers.
use std::path::{Path, PathBuf};

use nas_api::contract::Outcome;
use nas_api::records::Summary;
use nas_api::resolved::ResolvedSpec;
use thiserror::Error;

use super::{candidates, evaluate, report, select, SPEC_KEY as SPEC};
use crate::store::{ObjectStore, StoreError};

/// Files of a finished search that `fetch` downloads (besides every `plots/` file), in order;
/// the ones marked optional may be absent (searches finished by earlier releases).
const FILES: [(&str, bool); 4] = [
    (report::SUMMARY, false),
    (report::MARKDOWN, false),
    (report::HTML, true),
    (report::TABLE, false),
];
use nas_api::layout::key::{self, PLOTS};
use nas_api::layout::SUCCESS_MARKER;

#[derive(Debug, Error)]
pub enum ResultsError {
    /// No finished report under the root: how far the search got.
    #[error("the search at {root} has not finished: {progress}")]
    NotFinished { root: String, progress: String },
    /// The report exists but names no winner.
    #[error("the search at {root} finished without a winner: {reason}")]
    NoWinner { root: String, reason: String },
    #[error("{key} at {root} cannot be read: {reason}")]
    Corrupt {
        root: String,
        key: String,
        reason: String,
    },
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },
}

impl ResultsError {
    /// Invalid configuration for settings a retry cannot fix (a bad URI, credentials), else
    /// worth a retry.
    pub fn outcome(&self) -> Outcome {
        match self {
            ResultsError::Store(e) => e.outcome(),
            _ => Outcome::Failed,
        }
    }
}

/// What [`fetch`] brought.
#[derive(Debug)]
pub struct Fetched {
    pub summary: Summary,
    /// The files written, relative to the output folder.
    pub files: Vec<PathBuf>,
}

/// Downloads a finished search's results from `store` (rooted at the search's artifact root)
/// into `out`, keeping their relative names. Fails, writing nothing, when the search has not
/// finished or has no winner.
pub fn fetch(store: &dyn ObjectStore, out: &Path) -> Result<Fetched, ResultsError> {
    let root = store.describe();
    if !store.exists(report::SUCCESS)? {
        return Err(ResultsError::NotFinished {
            progress: progress(store)?,
            root,
        });
    }
    let bytes = store.get(report::SUMMARY)?;
    let summary: Summary = serde_json::from_slice(&bytes).map_err(|e| ResultsError::Corrupt {
        root: root.clone(),
        key: report::SUMMARY.into(),
        reason: e.to_string(),
    })?;
    if summary.winner.is_none() {
        return Err(ResultsError::NoWinner {
            root,
            reason: format!(
                "{} of {} candidates scored, {} finalists",
                summary.scored,
                summary.candidates,
                summary.finalists.len()
            ),
        });
    }
    let mut keys: Vec<String> = Vec::new();
    for (key, optional) in FILES {
        if !optional || store.exists(key)? {
            keys.push(key.to_string());
        }
    }
    keys.extend(store.list(PLOTS)?);
    let mut files = Vec::with_capacity(keys.len());
    for key in keys {
        let rel = PathBuf::from(&key);
        let path = out.join(&rel);
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(|source| ResultsError::Io {
                context: format!("creating {}", dir.display()),
                source,
            })?;
        }
        store.get_to_file(&key, &path)?;
        files.push(rel);
    }
    Ok(Fetched { summary, files })
}

/// The winner as the one JSON line `nas-runner results` prints.
pub fn winner_line(summary: &Summary) -> String {
    serde_json::to_string(&summary.winner).unwrap_or_default()
}

/// How far a search got, from its markers: the first stage not done and what it has done.
pub fn progress(store: &dyn ObjectStore) -> Result<String, ResultsError> {
    let Some(spec) = store.get_opt(SPEC)? else {
        return Ok(format!(
            "there is no {SPEC}: no search has started here (is the URI the status's \
             resultsUri, and are the S3 settings those of the search's artifacts?)"
        ));
    };
    let spec: ResolvedSpec = serde_json::from_slice(&spec).map_err(|e| ResultsError::Corrupt {
        root: store.describe(),
        key: SPEC.into(),
        reason: e.to_string(),
    })?;
    let keys = store.list("")?;
    let has = |k: &str| keys.iter().any(|x| x == k);
    let count = |prefix: &str, suffix: &str| {
        keys.iter()
            .filter(|k| k.starts_with(prefix) && k.ends_with(suffix))
            .count()
    };
    let shards = spec.spec.sampling.shards as usize;
    let finalists = spec.spec.selection.top_k as usize;
    let data = count(key::DATA_DIR, &format!("/{SUCCESS_MARKER}"));
    let scored = count(key::SCORE_SHARDS, &format!(".{SUCCESS_MARKER}"));
    let trained = count(key::TRAIN_DIR, &format!("/{SUCCESS_MARKER}"));
    let stages = [
        (
            "stage-data",
            data >= 2,
            format!("{data} of 2 splits staged"),
        ),
        (
            "score",
            scored >= shards,
            format!("{scored} of {shards} shards scored"),
        ),
        ("select", has(select::SUCCESS), "not finished".into()),
        (
            "train",
            has(select::SUCCESS) && trained >= finalists.min(count_candidates(store)?),
            format!("{trained} finalists trained"),
        ),
        ("evaluate", has(evaluate::SUCCESS), "not finished".into()),
        ("report", has(report::SUCCESS), "not finished".into()),
    ];
    let done: Vec<&str> = stages
        .iter()
        .take_while(|(_, ok, _)| *ok)
        .map(|(name, _, _)| *name)
        .collect();
    let Some((stage, _, detail)) = stages.iter().find(|(_, ok, _)| !ok) else {
        return Ok("every stage is done".into());
    };
    let done = if done.is_empty() {
        "none".to_string()
    } else {
        done.join(", ")
    };
    Ok(format!(
        "stage {stage} ({detail}); stages done: {done}. The search's status and events say why \
         it stopped (`kubectl describe nassearch {}`)",
        spec.name
    ))
}

/// Candidates sampled (fewer than `topK` finalists when there are fewer candidates).
fn count_candidates(store: &dyn ObjectStore) -> Result<usize, ResultsError> {
    Ok(store
        .get_opt(candidates::KEY)?
        .map(|b| b.split(|c| *c == b'\n').filter(|l| !l.is_empty()).count())
        .unwrap_or(usize::MAX))
}

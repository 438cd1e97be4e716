//! `nas-runner results URI [--out DIR]`: fetch a finished search's results (the status's
//! `resultsUri`) with the same S3 settings as the stages (`AWS_ENDPOINT_URL`,
//! `AWS_S3_FORCE_PATH_STYLE`, the SDK's credential chain), print the winner as one JSON line.
use std::path::PathBuf;

use clap::Args;
use nas_api::uri::StoreUri;

use crate::pipeline::report::SUMMARY;
use crate::pipeline::results::{self, ResultsError};
use crate::store::{open_store, StoreError};

#[derive(Debug, Args)]
pub struct ResultsArgs {
    /// The search's `status.resultsUri` (`s3://bucket/.../summary.json` or
    /// `file:///.../summary.json`), or its artifact root.
    pub uri: String,
    /// Folder to write the results into (created if missing).
    #[arg(long, default_value = ".")]
    pub out: PathBuf,
}

/// Runs the command: the winner's JSON line on stdout, what was written on stderr.
pub fn run(args: &ResultsArgs) -> Result<String, ResultsError> {
    let uri =
        StoreUri::parse(&args.uri).map_err(|e| StoreError::Config(format!("results URI: {e}")))?;
    // The summary's folder is the search's root.
    let root = match uri.split_last() {
        Some((dir, name)) if name == SUMMARY => dir,
        _ => uri,
    };
    let store = open_store(&root, None)?;
    let fetched = results::fetch(store.as_ref(), &args.out)?;
    let s = &fetched.summary;
    eprintln!(
        "results of {}/{} ({}) from {} in {}: {}",
        s.namespace,
        s.name,
        s.uid,
        store.describe(),
        args.out.display(),
        fetched
            .files
            .iter()
            .map(|f| f.display().to_string())
            .collect::<Vec<_>>()
            .join(", ")
    );
    Ok(results::winner_line(s))
}

//! `candidates.jsonl`: the sampled architectures, deterministic from the spec's seed.
//!
//! Every score pod calls [`ensure`]: the first one to get there writes the file; the others
//! (or a retry) write the very same bytes or read it back. Shards are contiguous slices.
use nas_api::records::{CandidateRecord, SCHEMA_VERSION};
use nas_api::spec::SamplingStrategy;

use super::{schema_ok, Search, StageError};

pub use nas_api::layout::key::CANDIDATES as KEY;

/// The sampled candidates of `search`, in order; written on first use.
pub fn ensure(search: &Search) -> Result<Vec<CandidateRecord>, StageError> {
    if search.done(KEY)? {
        return load(search);
    }
    let records = sample(search)?;
    search.put_jsonl(KEY, &records)?;
    Ok(records)
}

/// Reads `candidates.jsonl`, checking it holds what the spec asks for.
pub fn load(search: &Search) -> Result<Vec<CandidateRecord>, StageError> {
    let records: Vec<CandidateRecord> = search.get_jsonl(KEY)?;
    for (i, r) in records.iter().enumerate() {
        schema_ok(KEY, r.schema)?;
        if r.index != i as u64 {
            return Err(StageError::config(format!(
                "{KEY}: line {} has index {}, expected {i}",
                i + 1,
                r.index
            )));
        }
    }
    let want = search.spec().sampling.candidates as usize;
    if records.len() != want {
        return Err(StageError::config(format!(
            "{KEY} holds {} candidates, spec.sampling.candidates is {want}",
            records.len()
        )));
    }
    Ok(records)
}

fn sample(search: &Search) -> Result<Vec<CandidateRecord>, StageError> {
    let sampling = &search.spec().sampling;
    // The API accepts `exhaustive` and `evolutionary`, but this runner draws only at random:
    // refusing is better than silently scoring random candidates instead.
    if sampling.strategy != SamplingStrategy::Random {
        let name = serde_json::to_value(sampling.strategy)
            .ok()
            .and_then(|v| v.as_str().map(str::to_owned))
            .unwrap_or_default();
        return Err(StageError::config(format!(
            "spec.sampling.strategy: '{name}' is not implemented by this runner (only 'random' \
             is); remove the field or set it to random"
        )));
    }
    let archs = search
        .space()
        .sample(sampling.candidates as usize, search.seed());
    Ok(archs
        .into_iter()
        .enumerate()
        .map(|(i, arch)| CandidateRecord {
            schema: SCHEMA_VERSION,
            index: i as u64,
            arch,
        })
        .collect())
}

/// The candidates of shard `shard` of `shards`: contiguous, sizes differ by at most one.
pub fn shard_range(total: usize, shard: u32, shards: u32) -> std::ops::Range<usize> {
    let (i, n) = (shard as usize, shards.max(1) as usize);
    (i * total / n)..((i + 1) * total / n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shards_cover_every_candidate_once() {
        for total in [0, 1, 7, 100, 101] {
            for n in 1..=12u32 {
                let mut next = 0;
                for i in 0..n {
                    let r = shard_range(total, i, n);
                    assert_eq!(r.start, next, "total {total} n {n} shard {i}");
                    assert!(r.len() <= total.div_ceil(n as usize));
                    next = r.end;
                }
                assert_eq!(next, total);
            }
        }
    }
}

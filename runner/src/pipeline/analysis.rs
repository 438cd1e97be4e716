//! What the report measures over the scored candidates: each metric's rank agreement with
//! #Param (the paper's point: most training-free metrics track it) and, given a benchmark table
//! (ground truth such as `nb201/accuracy.csv`), with the candidates' real accuracy.
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use nas_api::records::{AngleLoss, Correlation, MetricValue, RankingEntry, ScoreRecord};

use super::StageError;
use crate::metrics::{self, fusion, rank::kendall_tau_b};
use crate::space::nb201::{Nb201Arch, Nb201Table};

/// A benchmark table and the accuracy column the report compares against.
pub struct GroundTruth {
    pub path: PathBuf,
    pub column: String,
    table: Nb201Table,
}

impl GroundTruth {
    /// Reads an NB201-style table (`index,arch,<columns>`); `column` defaults to
    /// `cifar10_test` when the table has it, else its first value column.
    pub fn load(path: &Path, column: Option<&str>) -> Result<Self, StageError> {
        let table = Nb201Table::from_csv(path)
            .map_err(|e| StageError::config(format!("--ground-truth {}: {e}", path.display())))?;
        let cols = table.columns();
        let column = match column {
            Some(c) if cols.iter().any(|x| x == c) => c.to_string(),
            Some(c) => {
                return Err(StageError::config(format!(
                    "--ground-truth-column {c}: {} has columns {}",
                    path.display(),
                    cols.join(", ")
                )))
            }
            None => cols
                .iter()
                .find(|c| c.as_str() == "cifar10_test")
                .or_else(|| cols.first())
                .cloned()
                .ok_or_else(|| {
                    StageError::config(format!(
                        "--ground-truth {}: no accuracy column after index,arch",
                        path.display()
                    ))
                })?,
        };
        Ok(GroundTruth {
            path: path.to_path_buf(),
            column,
            table,
        })
    }

    /// The benchmark accuracy of an NB201 architecture string (`None` for other spaces or
    /// architectures the table lacks).
    pub fn accuracy(&self, arch: &str) -> Option<f64> {
        let a: Nb201Arch = arch.parse().ok()?;
        self.table.value(self.table.index(&a)?, &self.column)
    }
}

/// Each metric as a score where higher predicts better, aligned with `indices` (NaN where a
/// candidate has no value). `angle_loss` becomes the paper's fused metric rank (without #Param).
pub fn oriented_scores(
    indices: &[u64],
    records: &BTreeMap<u64, ScoreRecord>,
    names: &[&str],
) -> BTreeMap<String, Vec<f64>> {
    let mut out = BTreeMap::new();
    for &name in names {
        let values: Vec<Option<MetricValue>> = indices
            .iter()
            .map(|i| records.get(i).and_then(|r| r.metrics.get(name)).copied())
            .collect();
        let spec = metrics::lookup(name);
        let scores = if spec
            .as_ref()
            .is_ok_and(|s| s.value == metrics::ValueKind::AngleLoss)
        {
            angle_scores(&values)
        } else {
            let sign = match spec {
                Ok(spec) if !spec.higher_is_better => -1.0,
                _ => 1.0,
            };
            values
                .iter()
                .map(|v| v.and_then(|v| v.as_scalar()).map_or(f64::NAN, |x| sign * x))
                .collect()
        };
        out.insert(name.to_string(), scores);
    }
    out
}

/// The fused `angle_loss` rank over the candidates that have one.
fn angle_scores(values: &[Option<MetricValue>]) -> Vec<f64> {
    let have: Vec<(usize, AngleLoss)> = values
        .iter()
        .enumerate()
        .filter_map(|(i, v)| match v {
            Some(MetricValue::AngleLoss(a)) => Some((i, *a)),
            _ => None,
        })
        .collect();
    let mut out = vec![f64::NAN; values.len()];
    let parts: Vec<AngleLoss> = have.iter().map(|(_, a)| *a).collect();
    if let Some(ranks) = fusion::metric_rank(&parts, &fusion::FusionOptions::default()) {
        for ((i, _), r) in have.iter().zip(ranks) {
            out[*i] = r;
        }
    }
    out
}

/// Kendall's tau of every metric (and of the search score) with #Param and, when known, with
/// accuracy.
pub fn correlations(
    ranking: &[RankingEntry],
    records: &BTreeMap<u64, ScoreRecord>,
    names: &[&str],
    accuracy: Option<&[f64]>,
) -> Vec<Correlation> {
    let indices: Vec<u64> = ranking.iter().map(|e| e.index).collect();
    let params: Vec<f64> = ranking.iter().map(|e| e.params as f64).collect();
    let mut scores = oriented_scores(&indices, records, names);
    scores.insert(
        "search_rank".into(),
        ranking.iter().map(|e| e.score).collect(),
    );
    scores
        .into_iter()
        .map(|(metric, v)| Correlation {
            n: v.iter().filter(|x| x.is_finite()).count() as u64,
            tau_params: kendall_tau_b(&v, &params),
            tau_accuracy: accuracy.and_then(|a| kendall_tau_b(&v, a)),
            metric,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use nas_api::records::SCHEMA_VERSION;

    fn record(i: u64, synflow: f64, ntk: f64, cos: f64, loss: f64) -> ScoreRecord {
        ScoreRecord {
            schema: SCHEMA_VERSION,
            index: i,
            arch: format!("a{i}"),
            metrics: [
                ("synflow".to_string(), MetricValue::Scalar(synflow)),
                ("ntk_cond".to_string(), MetricValue::Scalar(ntk)),
                (
                    "angle_loss".to_string(),
                    MetricValue::AngleLoss(AngleLoss {
                        cos,
                        loss,
                        degenerate: false,
                    }),
                ),
            ]
            .into(),
            seconds: BTreeMap::new(),
            error: None,
        }
    }

    #[test]
    fn metrics_are_oriented_and_correlated_with_params_and_accuracy() {
        // Candidate i has i+1 parameters; synflow grows with them, ntk_cond (lower is better)
        // shrinks with them, angle_loss agrees too (higher cos, lower loss).
        let records: BTreeMap<u64, ScoreRecord> = (0..5)
            .map(|i| {
                let x = i as f64;
                (i, record(i, x, 10.0 - x, 0.1 * x, 5.0 - x))
            })
            .collect();
        let ranking: Vec<RankingEntry> = (0..5)
            .map(|i| RankingEntry {
                schema: SCHEMA_VERSION,
                rank: Some(5 - i as u32),
                index: i,
                arch: format!("a{i}"),
                params: i + 1,
                flops: 0,
                metric_rank: 0.0,
                param_rank: 0.0,
                score: i as f64,
                excluded: None,
            })
            .collect();
        let accuracy: Vec<f64> = vec![50.0, 60.0, 55.0, 70.0, 80.0];
        let c = correlations(
            &ranking,
            &records,
            &["synflow", "ntk_cond", "angle_loss"],
            Some(&accuracy),
        );
        let by: BTreeMap<&str, &Correlation> = c.iter().map(|c| (c.metric.as_str(), c)).collect();
        for m in ["synflow", "ntk_cond", "angle_loss", "search_rank"] {
            assert_eq!(by[m].tau_params, Some(1.0), "{m}");
            assert_eq!(by[m].n, 5);
            // 9 concordant, 1 discordant pair of 10.
            assert!((by[m].tau_accuracy.unwrap() - 0.8).abs() < 1e-12, "{m}");
        }
    }
}

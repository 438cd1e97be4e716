//! Result records the stages write (score lines, ranking, top K, training metrics, evaluation
//! report, summary), each with a schema version.
//!
//! Readers accept records without a `schema` field as version 1 and reject newer versions they
//! do not know ([`check_schema`]). Non-finite floats (a metric that diverged) are written as
//! `null` and read back as NaN, because JSON has no NaN.
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::collections::BTreeMap;
use thiserror::Error;

/// Version of every record type in this module; bump when a field changes meaning.
pub const SCHEMA_VERSION: u32 = 1;

fn schema_v1() -> u32 {
    1
}

#[derive(Debug, Error, PartialEq, Eq)]
#[error("{record} has schema version {found}, this build reads up to {SCHEMA_VERSION}")]
pub struct SchemaError {
    pub record: &'static str,
    pub found: u32,
}

/// Rejects records written by a newer, incompatible build.
pub fn check_schema(record: &'static str, found: u32) -> Result<(), SchemaError> {
    if found > SCHEMA_VERSION {
        Err(SchemaError { record, found })
    } else {
        Ok(())
    }
}

/// (De)serialises an `f64` with non-finite values as `null`.
pub mod nan_as_null {
    use super::*;
    pub fn serialize<S: Serializer>(v: &f64, s: S) -> Result<S::Ok, S::Error> {
        if v.is_finite() {
            s.serialize_f64(*v)
        } else {
            s.serialize_none()
        }
    }
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
        Ok(Option::<f64>::deserialize(d)?.unwrap_or(f64::NAN))
    }
}

/// One line of `candidates.jsonl`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CandidateRecord {
    #[serde(default = "schema_v1")]
    pub schema: u32,
    /// Position in `candidates.jsonl`, from 0.
    pub index: u64,
    /// The space's canonical text encoding (NB201 arch string, DARTS genotype JSON text).
    pub arch: String,
}

/// The paper's training-based metric: cosine between the classifier weights before and after a
/// short training, and the final training loss; ranks are fused across candidates in `select`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct AngleLoss {
    #[serde(with = "nan_as_null")]
    pub cos: f64,
    #[serde(with = "nan_as_null")]
    pub loss: f64,
    /// The training diverged or the weights did not move; ranked last.
    #[serde(default)]
    pub degenerate: bool,
}

/// A metric's value: a number for every metric but `angle_loss`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum MetricValue {
    Scalar(f64),
    AngleLoss(AngleLoss),
}

impl MetricValue {
    /// The scalar, if this is one (NaN for a non-finite one).
    pub fn as_scalar(&self) -> Option<f64> {
        match self {
            MetricValue::Scalar(v) => Some(*v),
            MetricValue::AngleLoss(_) => None,
        }
    }
}

#[derive(Serialize, Deserialize)]
#[serde(untagged)]
enum MetricRepr {
    AngleLoss(AngleLoss),
    Scalar(Option<f64>),
}

impl Serialize for MetricValue {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            MetricValue::Scalar(v) => MetricRepr::Scalar(v.is_finite().then_some(*v)).serialize(s),
            MetricValue::AngleLoss(a) => MetricRepr::AngleLoss(*a).serialize(s),
        }
    }
}

impl<'de> Deserialize<'de> for MetricValue {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Ok(match MetricRepr::deserialize(d)? {
            MetricRepr::AngleLoss(a) => MetricValue::AngleLoss(a),
            MetricRepr::Scalar(v) => MetricValue::Scalar(v.unwrap_or(f64::NAN)),
        })
    }
}

/// One line of `score/shard-NNNNN.jsonl`: one candidate's metrics. A candidate that could not
/// be scored has `error` set and the metrics it did get.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScoreRecord {
    #[serde(default = "schema_v1")]
    pub schema: u32,
    pub index: u64,
    pub arch: String,
    #[serde(default)]
    pub metrics: BTreeMap<String, MetricValue>,
    /// Wall-clock seconds per metric.
    #[serde(default)]
    pub seconds: BTreeMap<String, f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// One line of `select/ranking.jsonl`, in rank order (rank 1 first).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RankingEntry {
    #[serde(default = "schema_v1")]
    pub schema: u32,
    /// 1-based final rank among the candidates that meet the constraints; `None` for the
    /// others, listed after them.
    pub rank: Option<u32>,
    pub index: u64,
    pub arch: String,
    pub params: u64,
    pub flops: u64,
    /// The metric's average rank among the eligible candidates, ascending (the highest is the
    /// best); `null` for excluded candidates.
    #[serde(with = "nan_as_null")]
    pub metric_rank: f64,
    /// The #Param average rank the paper's search rank adds (the highest is the most
    /// parameters).
    #[serde(with = "nan_as_null")]
    pub param_rank: f64,
    /// The combined score that orders the list (higher is better).
    #[serde(with = "nan_as_null")]
    pub score: f64,
    /// Why this candidate was left out (a constraint, a scoring error).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub excluded: Option<String>,
}

/// `select/topk.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TopK {
    #[serde(default = "schema_v1")]
    pub schema: u32,
    /// The metric the ranking used.
    pub metric: String,
    pub k: u32,
    pub entries: Vec<RankingEntry>,
    /// Seconds the select stage took (absent in files of earlier releases).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seconds: Option<f64>,
}

/// One epoch of a training run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EpochMetrics {
    pub epoch: u32,
    #[serde(with = "nan_as_null")]
    pub train_loss: f64,
    /// Training accuracy, when the trainer measured it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub train_acc: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub val_loss: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub val_acc: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lr: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seconds: Option<f64>,
}

/// One point of a training loss curve: the mean loss of the steps since the previous point.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct LossPoint {
    /// Optimiser steps done.
    pub step: u64,
    /// The same position in epochs (steps over steps per epoch): the curve's x axis.
    pub epoch: f64,
    #[serde(with = "nan_as_null")]
    pub loss: f64,
}

/// `train/{candidate}/metrics.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainMetrics {
    #[serde(default = "schema_v1")]
    pub schema: u32,
    pub index: u64,
    pub arch: String,
    pub epochs: u32,
    /// Best validation accuracy over the epochs, in [0, 1]; finalists are compared on it.
    #[serde(with = "nan_as_null")]
    pub best_val_acc: f64,
    pub history: Vec<EpochMetrics>,
    /// The loss every few steps (a few hundred points at most), so a short run draws a line.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub loss_curve: Vec<LossPoint>,
    pub seconds: f64,
}

/// `eval/report.json`: the winner's final training and held-out error.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EvalReport {
    #[serde(default = "schema_v1")]
    pub schema: u32,
    pub index: u64,
    pub arch: String,
    pub dataset: String,
    pub epochs: u32,
    pub params: u64,
    pub flops: u64,
    /// Top-1 and top-5 error on the held-out split, in [0, 1].
    #[serde(with = "nan_as_null")]
    pub top1_err: f64,
    #[serde(with = "nan_as_null")]
    pub top5_err: f64,
    pub history: Vec<EpochMetrics>,
    /// The loss every few steps (a few hundred points at most), so a short run draws a line.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub loss_curve: Vec<LossPoint>,
    pub seconds: f64,
}

/// The winner as the summary shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Winner {
    pub index: u64,
    pub arch: String,
    pub params: u64,
    pub flops: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub val_acc: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub top1_err: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub top5_err: Option<f64>,
}

/// `summary.json`: the whole search in one record.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    #[serde(default = "schema_v1")]
    pub schema: u32,
    pub namespace: String,
    pub name: String,
    pub uid: String,
    pub space: String,
    pub dataset: String,
    pub metric: String,
    pub candidates: u64,
    pub scored: u64,
    pub failed: u64,
    /// Candidate indices of the top K, best first.
    pub topk: Vec<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub winner: Option<Winner>,
    /// The finalists whose short training finished, best first.
    #[serde(default)]
    pub finalists: Vec<Winner>,
    /// Seconds per stage, keyed by the stage's command name.
    #[serde(default)]
    pub stage_seconds: BTreeMap<String, f64>,
    /// The search's seed (candidates, samples, initialisations).
    #[serde(default)]
    pub seed: u64,
    /// Versions of what produced the results (`nas-runner`, `libtorch`).
    #[serde(default)]
    pub versions: BTreeMap<String, String>,
    /// Kendall's tau of each metric with #Param and, with a ground truth, with accuracy.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub correlations: Vec<Correlation>,
    /// The benchmark comparison, when the report was given a ground-truth table.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ground_truth: Option<GroundTruthSummary>,
}

/// One metric's rank agreement over the scored candidates (Kendall's tau-b; metrics oriented
/// so that higher predicts better).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Correlation {
    /// A metric name, or `search_rank` for the ranking `select` used.
    pub metric: String,
    /// Candidates with a value.
    pub n: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tau_params: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tau_accuracy: Option<f64>,
}

/// The search measured against a benchmark table (such as NAS-Bench-201's accuracies).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GroundTruthSummary {
    /// The table file and the accuracy column used.
    pub table: String,
    pub column: String,
    /// Candidates found in the table.
    pub matched: u64,
    /// The benchmark accuracy of the evaluated winner.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub winner_accuracy: Option<f64>,
    /// The benchmark accuracy of the candidate `select` ranked first.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub top_ranked_accuracy: Option<f64>,
    /// The best benchmark accuracy among all candidates, and which one has it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub best_candidate_accuracy: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub best_candidate_index: Option<u64>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn score_record_matches_the_cli_shape() {
        let line = r#"{"index":3,"arch":"|nor_conv_3x3~0|","metrics":{"snip":1.5,"angle_loss":{"cos":0.25,"loss":2.0,"degenerate":false},"zen":null},"seconds":{"snip":0.1}}"#;
        let r: ScoreRecord = serde_json::from_str(line).unwrap();
        assert_eq!(r.schema, 1);
        assert_eq!(r.metrics["snip"], MetricValue::Scalar(1.5));
        assert_eq!(
            r.metrics["angle_loss"],
            MetricValue::AngleLoss(AngleLoss {
                cos: 0.25,
                loss: 2.0,
                degenerate: false
            })
        );
        assert!(r.metrics["zen"].as_scalar().unwrap().is_nan());
        let back = serde_json::to_string(&r).unwrap();
        assert!(back.contains(r#""zen":null"#), "{back}");
        assert!(!back.contains("error"), "{back}");
    }

    #[test]
    fn non_finite_values_round_trip_as_null() {
        let a = AngleLoss {
            cos: f64::NAN,
            loss: f64::INFINITY,
            degenerate: true,
        };
        let s = serde_json::to_string(&MetricValue::AngleLoss(a)).unwrap();
        assert_eq!(s, r#"{"cos":null,"loss":null,"degenerate":true}"#);
        let MetricValue::AngleLoss(b) = serde_json::from_str(&s).unwrap() else {
            panic!("not angle_loss: {s}")
        };
        assert!(b.cos.is_nan() && b.loss.is_nan() && b.degenerate);
    }

    #[test]
    fn newer_schema_is_rejected() {
        assert!(check_schema("summary", SCHEMA_VERSION).is_ok());
        let e = check_schema("summary", SCHEMA_VERSION + 1).unwrap_err();
        assert!(
            e.to_string().contains("summary has schema version 2"),
            "{e}"
        );
    }

    #[test]
    fn summary_round_trips() {
        let s = Summary {
            schema: SCHEMA_VERSION,
            namespace: "ns".into(),
            name: "n".into(),
            uid: "u".into(),
            space: "nb201".into(),
            dataset: "cifar10".into(),
            metric: "angle_loss".into(),
            candidates: 100,
            scored: 99,
            failed: 1,
            topk: vec![4, 2],
            winner: Some(Winner {
                index: 4,
                arch: "a".into(),
                params: 10,
                flops: 20,
                val_acc: Some(0.9),
                top1_err: None,
                top5_err: None,
            }),
            finalists: Vec::new(),
            stage_seconds: [("score".to_string(), 12.5)].into(),
            seed: 7,
            versions: BTreeMap::new(),
            correlations: vec![Correlation {
                metric: "synflow".into(),
                n: 100,
                tau_params: Some(0.8),
                tau_accuracy: None,
            }],
            ground_truth: None,
        };
        let back: Summary = serde_json::from_str(&serde_json::to_string(&s).unwrap()).unwrap();
        assert_eq!(back, s);
    }
}

//! The candidates table: every candidate in rank order (excluded ones last) with every metric,
//! written as `candidates.csv` and shown (sortable) in `report.html`.
use std::collections::BTreeMap;

use nas_api::records::{MetricValue, RankingEntry, ScoreRecord};

use crate::metrics::ValueKind;

/// Header and rows, as text (empty for a value not known).
pub struct Table {
    pub header: Vec<String>,
    pub rows: Vec<Vec<String>>,
}

impl Table {
    /// `angle_loss` gives its `cos`, `loss` and `degenerate` columns; `accuracy` (one value
    /// per ranked candidate) a `benchmark_accuracy` column.
    pub fn new(
        ranking: &[RankingEntry],
        scores: &BTreeMap<u64, ScoreRecord>,
        metrics: &[&str],
        accuracy: Option<&[f64]>,
    ) -> Self {
        let mut header: Vec<String> = ["rank", "index", "arch", "params", "flops", "score"]
            .map(String::from)
            .to_vec();
        let fused =
            |m: &str| crate::metrics::lookup(m).is_ok_and(|s| s.value == ValueKind::AngleLoss);
        for m in metrics {
            if fused(m) {
                header.extend(["cos", "loss", "degenerate"].map(|part| format!("{m}.{part}")));
            } else {
                header.push((*m).to_string());
            }
        }
        if accuracy.is_some() {
            header.push("benchmark_accuracy".into());
        }
        header.extend(["excluded", "error"].map(String::from));
        let rows = ranking
            .iter()
            .enumerate()
            .map(|(row_i, e)| {
                let rec = scores.get(&e.index);
                let mut row = vec![
                    e.rank.map(|r| r.to_string()).unwrap_or_default(),
                    e.index.to_string(),
                    e.arch.clone(),
                    e.params.to_string(),
                    e.flops.to_string(),
                    number(e.score),
                ];
                for m in metrics {
                    match (rec.and_then(|r| r.metrics.get(*m)), fused(m)) {
                        (Some(MetricValue::AngleLoss(a)), true) => {
                            row.extend([number(a.cos), number(a.loss), a.degenerate.to_string()])
                        }
                        (_, true) => row.extend([String::new(), String::new(), String::new()]),
                        (Some(v), false) => row.push(v.as_scalar().map(number).unwrap_or_default()),
                        (None, false) => row.push(String::new()),
                    }
                }
                if let Some(acc) = accuracy {
                    row.push(number(acc[row_i]));
                }
                row.push(e.excluded.clone().unwrap_or_default());
                row.push(rec.and_then(|r| r.error.clone()).unwrap_or_default());
                row
            })
            .collect();
        Table { header, rows }
    }

    /// RFC 4180 text with a header line.
    pub fn csv(&self) -> String {
        let line = |cells: &[String]| {
            cells
                .iter()
                .map(|c| csv_field(c))
                .collect::<Vec<_>>()
                .join(",")
                + "\n"
        };
        let mut out = line(&self.header);
        for r in &self.rows {
            out.push_str(&line(r));
        }
        out
    }
}

/// A finite number as Rust prints it (shortest round-trip form), else empty.
pub fn number(v: f64) -> String {
    if v.is_finite() {
        format!("{v}")
    } else {
        String::new()
    }
}

/// RFC 4180 field: quoted when it holds a comma, quote or line break.
fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_fields_are_quoted_when_needed() {
        assert_eq!(csv_field("a"), "a");
        assert_eq!(
            csv_field("{\"a\":1,\"b\":2}"),
            "\"{\"\"a\"\":1,\"\"b\"\":2}\""
        );
    }
}

//! `report`: `summary.json`, `candidates.csv` (every candidate with every metric), `report.md`,
//! `report.html` and `plots/*.svg`, then the search's root `_SUCCESS`.
use std::collections::BTreeMap;
use std::fmt::Write;

use nas_api::contract::{Outcome, Stage, TerminationSummary};
use nas_api::records::{
    EpochMetrics, EvalReport, GroundTruthSummary, LossPoint, RankingEntry, ScoreRecord, Summary,
    TrainMetrics, Winner, SCHEMA_VERSION,
};

use super::analysis::{self, GroundTruth};
use super::plots::{self, Series};
use super::report_html;
use super::report_table::Table;
use super::{candidates, evaluate, schema_ok, score, select, Search, StageResult};

use nas_api::layout::key;
pub use nas_api::layout::key::{
    CANDIDATES_TABLE as TABLE, REPORT_HTML as HTML, REPORT_MD as MARKDOWN,
    REPORT_SUCCESS as SUCCESS, SUMMARY,
};
const PLOT_RANK: &str = "search-score-vs-params.svg";
const PLOT_TRAIN: &str = "training-loss.svg";
const PLOT_STAGES: &str = "stage-seconds.svg";

/// What the report adds beyond the artifacts.
#[derive(Default)]
pub struct ReportOptions {
    /// A benchmark table to measure the candidates against.
    pub ground_truth: Option<GroundTruth>,
}

/// The report stage: skipped when the root `_SUCCESS` exists.
pub fn run(search: &Search) -> StageResult {
    search.ensure_spec()?;
    if search.done(SUCCESS)? {
        let summary: Summary = search.get_json(SUMMARY)?;
        let mut s = super::skipped(Stage::Report, None, "report");
        s.results_uri = Some(format!("{}{SUMMARY}", search.resolved.artifacts_root));
        s.best = summary.winner.as_ref().map(winner_status);
        return Ok(s);
    }
    render(search, &ReportOptions::default())
}

/// Writes the report from the artifacts, whether or not it exists already (`nas-runner report
/// DIR` and `local` re-render it, e.g. with a ground truth).
pub fn render(search: &Search, options: &ReportOptions) -> StageResult {
    let results_uri = format!("{}{SUMMARY}", search.resolved.artifacts_root);
    let cands = candidates::load(search)?;
    let (scores, _) = score::load_finished(search)?;
    let ranking: Vec<RankingEntry> = search.get_jsonl(select::RANKING)?;
    let topk = super::train::load_topk(search)?;
    let finalists = evaluate::finalists(search)?;
    let eval: Option<EvalReport> = if search.done(evaluate::SUCCESS)? {
        let r: EvalReport = search.get_json(evaluate::REPORT)?;
        schema_ok("eval report", r.schema)?;
        Some(r)
    } else {
        None
    };

    let winner = eval.as_ref().map(|e| Winner {
        index: e.index,
        arch: e.arch.clone(),
        params: e.params,
        flops: e.flops,
        val_acc: finalists
            .iter()
            .find(|(r, _)| r.index == e.index)
            .map(|(_, m)| m.best_val_acc),
        top1_err: Some(e.top1_err),
        top5_err: Some(e.top5_err),
    });
    let mut stage_seconds = BTreeMap::new();
    if let Some(secs) = super::data_stage::seconds(search)? {
        stage_seconds.insert(Stage::StageData.as_str().to_string(), secs);
    }
    if let Some(secs) = topk.seconds {
        stage_seconds.insert(Stage::Select.as_str().to_string(), secs);
    }
    stage_seconds.insert(
        Stage::Score.as_str().to_string(),
        scores
            .values()
            .flat_map(|r| r.seconds.values())
            .sum::<f64>(),
    );
    stage_seconds.insert(
        Stage::Train.as_str().to_string(),
        finalists.iter().map(|(_, m)| m.seconds).sum::<f64>(),
    );
    if let Some(e) = &eval {
        stage_seconds.insert(Stage::Evaluate.as_str().to_string(), e.seconds);
    }
    let summary = Summary {
        schema: SCHEMA_VERSION,
        namespace: search.resolved.namespace.clone(),
        name: search.resolved.name.clone(),
        uid: search.resolved.uid.clone(),
        space: search.spec().space.name.as_str().to_string(),
        dataset: search.spec().dataset.source.clone(),
        metric: topk.metric.clone(),
        candidates: cands.len() as u64,
        scored: scores.values().filter(|r| r.error.is_none()).count() as u64,
        failed: (cands.len() - scores.values().filter(|r| r.error.is_none()).count()) as u64,
        topk: topk.entries.iter().map(|e| e.index).collect(),
        winner,
        finalists: finalists
            .iter()
            .map(|(r, m)| Winner {
                index: r.index,
                arch: r.arch.clone(),
                params: r.params,
                flops: r.flops,
                val_acc: Some(m.best_val_acc),
                top1_err: None,
                top5_err: None,
            })
            .collect(),
        stage_seconds,
        seed: search.seed(),
        versions: [
            (
                "nas-runner".to_string(),
                env!("CARGO_PKG_VERSION").to_string(),
            ),
            ("libtorch".to_string(), crate::LIBTORCH_VERSION.to_string()),
        ]
        .into(),
        correlations: Vec::new(),
        ground_truth: None,
    };
    let metric_names: Vec<&str> = search
        .spec()
        .metrics
        .names
        .iter()
        .map(|m| m.as_str())
        .collect();
    // Benchmark accuracy of every ranked candidate, when a ground truth is given.
    let accuracy: Option<Vec<f64>> = options.ground_truth.as_ref().map(|gt| {
        ranking
            .iter()
            .map(|e| gt.accuracy(&e.arch).unwrap_or(f64::NAN))
            .collect()
    });
    let mut summary = summary;
    summary.correlations =
        analysis::correlations(&ranking, &scores, &metric_names, accuracy.as_deref());
    if let (Some(gt), Some(acc)) = (&options.ground_truth, &accuracy) {
        summary.ground_truth = Some(ground_truth_summary(
            gt,
            &ranking,
            acc,
            summary.winner.as_ref(),
        ));
    }
    let table = Table::new(&ranking, &scores, &metric_names, accuracy.as_deref());
    search.store.put(TABLE, table.csv().as_bytes())?;
    search.store.put(
        MARKDOWN,
        markdown(search, &summary, &finalists, eval.as_ref()).as_bytes(),
    )?;
    let mut figures = vec![
        (key::plot(PLOT_RANK), rank_plot(&ranking, &topk.entries)),
        (
            key::plot(PLOT_TRAIN),
            training_plot(&finalists, eval.as_ref()),
        ),
        (key::plot(PLOT_STAGES), stages_plot(&summary)),
    ];
    figures.extend(metric_plots(
        &ranking,
        &scores,
        &metric_names,
        accuracy.as_deref(),
        &finalists,
        &summary.correlations,
    ));
    for (key, svg) in &figures {
        search.store.put(key, svg.as_bytes())?;
    }
    let page = report_html::render(&report_html::Page {
        search,
        summary: &summary,
        finalists: &finalists,
        eval: eval.as_ref(),
        table: &table,
        plots: &figures,
    });
    search.store.put(HTML, page.as_bytes())?;
    let plots: Vec<String> = figures.into_iter().map(|(key, _)| key).collect();
    search.put_json(SUMMARY, &summary)?;
    search.mark_done(SUCCESS)?;

    let mut s = TerminationSummary::new(
        Stage::Report,
        None,
        Outcome::Succeeded,
        match &summary.winner {
            Some(w) => format!(
                "winner candidate {}: top-1 error {:.2}%; results in {results_uri}",
                w.index,
                100.0 * w.top1_err.unwrap_or(f64::NAN)
            ),
            None => format!("no evaluated winner; results in {results_uri}"),
        },
    );
    s.results_uri = Some(results_uri);
    s.best = summary.winner.as_ref().map(winner_status);
    s.artifacts = [
        SUMMARY.to_string(),
        TABLE.into(),
        MARKDOWN.into(),
        HTML.into(),
    ]
    .into_iter()
    .chain(plots)
    .collect();
    Ok(s)
}

fn winner_status(w: &Winner) -> nas_api::crd::CandidateSummary {
    nas_api::crd::CandidateSummary {
        val_accuracy: super::percent(w.val_acc),
        top1_error: super::percent(w.top1_err),
        top5_error: super::percent(w.top5_err),
        ..super::status_candidate(w.index, &w.arch, w.params, w.flops)
    }
}

/// Text for a Markdown table cell: a `|` (every architecture string has some) would end the
/// cell, so it is escaped, which GitHub-flavoured Markdown honours inside code spans too.
fn md_cell(s: &str) -> String {
    s.replace('|', "\\|").replace('\n', " ")
}

fn markdown(
    search: &Search,
    s: &Summary,
    finalists: &[(RankingEntry, TrainMetrics)],
    eval: Option<&EvalReport>,
) -> String {
    let mut md = format!(
        "# NAS search {}/{}\n\nSpace `{}`, data set `{}`, {} candidates ({} scored, {} failed), ranked by `{}`.\n\n",
        s.namespace, s.name, s.space, s.dataset, s.candidates, s.scored, s.failed, s.metric
    );
    match eval {
        Some(e) => {
            let _ = write!(
                md,
                "## Winner\n\n`{}`\n\n| | |\n|---|---|\n| candidate | {} |\n| parameters | {} |\n| multiply-adds | {} |\n| epochs | {} |\n| top-1 error | {:.2}% |\n| top-5 error | {:.2}% |\n| seconds | {:.0} |\n\n",
                e.arch, e.index, e.params, e.flops, e.epochs, 100.0 * e.top1_err, 100.0 * e.top5_err, e.seconds
            );
        }
        None => md.push_str("## Winner\n\nThe evaluation did not finish.\n\n"),
    }
    md.push_str("## Finalists\n\n| rank | candidate | parameters | held-out top-1 after short training | architecture |\n|---|---|---|---|---|\n");
    for (r, m) in finalists {
        let _ = writeln!(
            md,
            "| {} | {} | {} | {:.2}% | `{}` |",
            r.rank.map(|x| x.to_string()).unwrap_or_default(),
            r.index,
            r.params,
            100.0 * m.best_val_acc,
            md_cell(&r.arch)
        );
    }
    md.push_str(&correlation_table(s));
    if let Some(g) = &s.ground_truth {
        let pct = |v: Option<f64>| v.map_or("n/a".to_string(), |x| format!("{x:.2}"));
        let _ = write!(
            md,
            "\n## Against the benchmark\n\n`{}`, column `{}`, {} candidates found.\n\n| | accuracy |\n|---|---|\n| evaluated winner | {} |\n| ranked first by the search | {} |\n| best candidate (index {}) | {} |\n",
            g.table,
            g.column,
            g.matched,
            pct(g.winner_accuracy),
            pct(g.top_ranked_accuracy),
            g.best_candidate_index.map_or("n/a".into(), |i| i.to_string()),
            pct(g.best_candidate_accuracy)
        );
    }
    let _ = write!(
        md,
        "\n## Files\n\n- `{TABLE}`: every candidate with every metric, in rank order\n- `select/ranking.jsonl`, `select/topk.json`: the ranking\n- `plots/`: each metric against #Param, the search score against #Param, the Pareto front of accuracy against #Param, training curves, the cost of each stage\n- `spec.json`: the resolved spec (hash `{}`)\n",
        search.resolved.spec_hash
    );
    md
}

fn rank_plot(ranking: &[RankingEntry], top: &[RankingEntry]) -> String {
    let point = |e: &RankingEntry| (e.params as f64, e.score);
    plots::scatter(
        "Search score against #Param",
        "parameters",
        "search score (higher is better)",
        &[
            Series {
                name: "candidates".into(),
                points: ranking
                    .iter()
                    .filter(|e| e.rank.is_some())
                    .map(point)
                    .collect(),
            },
            Series {
                name: "top K".into(),
                points: top.iter().map(point).collect(),
            },
        ],
    )
}

/// Seconds per stage, in pipeline order.
fn stages_plot(s: &Summary) -> String {
    let bars: Vec<(String, f64)> = Stage::ALL
        .iter()
        .filter_map(|st| {
            let name = st.as_str();
            s.stage_seconds.get(name).map(|v| (name.to_string(), *v))
        })
        .collect();
    plots::bars("Cost of each stage", "seconds", &bars)
}

fn training_plot(finalists: &[(RankingEntry, TrainMetrics)], eval: Option<&EvalReport>) -> String {
    let curve = |name: String, steps: &[LossPoint], epochs: &[EpochMetrics]| plots::Curve {
        name,
        line: steps.iter().map(|p| (p.epoch, p.loss)).collect(),
        marks: epochs
            .iter()
            .map(|h| (f64::from(h.epoch), h.train_loss))
            .collect(),
    };
    let mut curves: Vec<plots::Curve> = finalists
        .iter()
        .map(|(r, m)| curve(format!("finalist {}", r.index), &m.loss_curve, &m.history))
        .collect();
    if let Some(e) = eval {
        curves.push(curve(
            format!("evaluation {}", e.index),
            &e.loss_curve,
            &e.history,
        ));
    }
    plots::curves(
        "Training loss (line: every few steps; dots: epoch means)",
        "epoch",
        "training loss",
        &curves,
    )
}

fn correlation_table(s: &Summary) -> String {
    if s.correlations.is_empty() {
        return String::new();
    }
    let tau = |v: Option<f64>| v.map_or("n/a".to_string(), |x| format!("{x:.3}"));
    let mut md = String::from(
        "\n## Rank correlation (Kendall's tau)\n\n| metric | candidates | with #Param | with accuracy |\n|---|---|---|---|\n",
    );
    for c in &s.correlations {
        let _ = writeln!(
            md,
            "| `{}` | {} | {} | {} |",
            c.metric,
            c.n,
            tau(c.tau_params),
            tau(c.tau_accuracy)
        );
    }
    md
}

fn ground_truth_summary(
    gt: &GroundTruth,
    ranking: &[RankingEntry],
    accuracy: &[f64],
    winner: Option<&Winner>,
) -> GroundTruthSummary {
    let best = ranking
        .iter()
        .zip(accuracy)
        .filter(|(_, a)| a.is_finite())
        .max_by(|a, b| a.1.total_cmp(b.1));
    GroundTruthSummary {
        table: gt.path.display().to_string(),
        column: gt.column.clone(),
        matched: accuracy.iter().filter(|a| a.is_finite()).count() as u64,
        winner_accuracy: winner.and_then(|w| gt.accuracy(&w.arch)),
        top_ranked_accuracy: ranking
            .iter()
            .zip(accuracy)
            .find(|(e, a)| e.rank == Some(1) && a.is_finite())
            .map(|(_, a)| *a),
        best_candidate_accuracy: best.map(|(_, a)| *a),
        best_candidate_index: best.map(|(e, _)| e.index),
    }
}

/// One plot per metric against #Param (coloured by benchmark accuracy when known, else by the
/// search score), and the Pareto front of accuracy against #Param.
fn metric_plots(
    ranking: &[RankingEntry],
    scores: &BTreeMap<u64, ScoreRecord>,
    metrics: &[&str],
    accuracy: Option<&[f64]>,
    finalists: &[(RankingEntry, TrainMetrics)],
    correlations: &[nas_api::records::Correlation],
) -> Vec<(String, String)> {
    let indices: Vec<u64> = ranking.iter().map(|e| e.index).collect();
    let params: Vec<f64> = ranking.iter().map(|e| e.params as f64).collect();
    let colour: Vec<f64> = match accuracy {
        Some(a) => a.to_vec(),
        None => ranking.iter().map(|e| e.score).collect(),
    };
    let colour_label = if accuracy.is_some() {
        "benchmark accuracy"
    } else {
        "search score"
    };
    let oriented = analysis::oriented_scores(&indices, scores, metrics);
    let mut out = Vec::new();
    for (name, values) in oriented.iter().filter(|(n, _)| n.as_str() != "params") {
        let points: Vec<(f64, f64, f64)> = params
            .iter()
            .zip(values)
            .zip(&colour)
            .map(|((p, v), c)| (*p, *v, *c))
            .collect();
        out.push((
            key::plot(&format!("{name}-vs-params.svg")),
            plots::scatter_coloured(
                &match correlations
                    .iter()
                    .find(|c| &c.metric == name)
                    .and_then(|c| c.tau_params)
                {
                    Some(tau) => format!("{name} against #Param (Kendall's tau {tau:.3})"),
                    None => format!("{name} against #Param"),
                },
                "parameters",
                &format!("{name} (oriented: higher predicts better)"),
                &points,
                colour_label,
            ),
        ));
    }
    // Accuracy against #Param: the benchmark's for every candidate, else the finalists'.
    let (label, pts): (&str, Vec<(f64, f64)>) = match accuracy {
        Some(a) => (
            "benchmark accuracy",
            params.iter().copied().zip(a.iter().copied()).collect(),
        ),
        None => (
            "held-out accuracy after short training",
            finalists
                .iter()
                .map(|(e, m)| (e.params as f64, 100.0 * m.best_val_acc))
                .collect(),
        ),
    };
    let front = pareto_front(&pts);
    out.push((
        key::plot("pareto-accuracy-vs-params.svg"),
        plots::scatter(
            "Accuracy against #Param (Pareto front)",
            "parameters",
            label,
            &[
                Series {
                    name: "candidates".into(),
                    points: pts,
                },
                Series {
                    name: "Pareto front".into(),
                    points: front,
                },
            ],
        ),
    ));
    out
}

/// The points no other point beats on both fewer parameters and higher accuracy.
fn pareto_front(points: &[(f64, f64)]) -> Vec<(f64, f64)> {
    let mut sorted: Vec<(f64, f64)> = points
        .iter()
        .copied()
        .filter(|p| p.0.is_finite() && p.1.is_finite())
        .collect();
    sorted.sort_by(|a, b| a.0.total_cmp(&b.0).then(b.1.total_cmp(&a.1)));
    let mut best = f64::NEG_INFINITY;
    sorted
        .into_iter()
        .filter(|p| {
            let keep = p.1 > best;
            best = best.max(p.1);
            keep
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pareto_front_keeps_the_undominated_points() {
        let pts = [
            (3.0, 70.0),
            (1.0, 50.0),
            (2.0, 40.0),
            (4.0, 90.0),
            (5.0, 85.0),
            (f64::NAN, 99.0),
        ];
        assert_eq!(
            pareto_front(&pts),
            vec![(1.0, 50.0), (3.0, 70.0), (4.0, 90.0)]
        );
    }

    #[test]
    fn markdown_cells_keep_architecture_strings_whole() {
        let arch = "|nor_conv_3x3~0|+|skip_connect~0|none~1|";
        let row = format!("| 1 | `{}` |", md_cell(arch));
        // A cell ends at a pipe that is not escaped: this row has two cells.
        let bytes = row.as_bytes();
        let ends = (0..bytes.len())
            .filter(|&i| bytes[i] == b'|' && (i == 0 || bytes[i - 1] != b'\\'))
            .count();
        assert_eq!(ends, 3, "{row}");
        assert_eq!(md_cell(arch).replace("\\|", "|"), arch);
    }
}

//! `report.html`: the whole report in one self-contained file (inline CSS, SVG and script,
//! nothing fetched), so that it opens from object storage in an air-gapped cluster: the winner,
//! the finalists, the candidates table sortable by any column, the plots, the cost of each
//! stage in seconds and GPU-hours, the ground truth when given, and the spec.
use std::fmt::Write;

use nas_api::contract::Stage;
use nas_api::records::{EvalReport, RankingEntry, Summary, TrainMetrics};

use super::report_table::Table;
use super::Search;

/// Candidates shown in the page's table; the rest are in `candidates.csv`.
pub const ROWS_MAX: usize = 2000;

const STYLE: &str = r#"
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:0;color:#1d2330;background:#f6f7f9}
header{background:#1d2330;color:#fff;padding:18px 32px}header h1{margin:0;font-size:22px}
header p{margin:4px 0 0;color:#c8cdd8}main{padding:8px 32px 40px;max-width:1500px}
section{background:#fff;border:1px solid #e2e5ea;border-radius:8px;padding:16px 20px;margin:16px 0}
h2{font-size:17px;margin:0 0 12px}code{font-family:ui-monospace,Menlo,Consolas,monospace;font-size:12.5px}
.cards{display:flex;flex-wrap:wrap;gap:12px}.card{border:1px solid #e2e5ea;border-radius:6px;padding:8px 14px;min-width:120px}
.card b{display:block;font-size:20px}.card span{color:#5b6475;font-size:12px}
table{border-collapse:collapse;font-size:13px}th,td{padding:4px 10px;border-bottom:1px solid #eceef2;text-align:right;white-space:nowrap}
th{background:#f0f2f5;position:sticky;top:0;cursor:pointer;user-select:none}td.text,th.text{text-align:left}
th[aria-sort=ascending]::after{content:" \25B2"}th[aria-sort=descending]::after{content:" \25BC"}
tr.winner td{background:#fff5d6}.scroll{max-height:560px;overflow:auto;border:1px solid #e2e5ea}
.plots{display:flex;flex-wrap:wrap;gap:12px}.plots figure{margin:0}.plots svg{max-width:100%;height:auto;border:1px solid #eceef2}
pre{background:#f6f7f9;padding:10px;overflow:auto;font-size:12px}.note{color:#5b6475;font-size:13px}
"#;

/// Sorts a `table.sortable` by the clicked column: numerically when every value is a number,
/// else as text; a second click reverses; empty values last.
const SCRIPT: &str = r#"
document.querySelectorAll("table.sortable").forEach(function (table) {
  var heads = table.tHead.rows[0].cells;
  Array.prototype.forEach.call(heads, function (th, col) {
    th.addEventListener("click", function () {
      var asc = th.getAttribute("aria-sort") !== "ascending";
      Array.prototype.forEach.call(heads, function (h) { h.removeAttribute("aria-sort"); });
      th.setAttribute("aria-sort", asc ? "ascending" : "descending");
      var body = table.tBodies[0];
      var rows = Array.prototype.slice.call(body.rows);
      var value = function (r) { return r.cells[col].textContent.trim(); };
      var numeric = rows.every(function (r) { var v = value(r); return v === "" || !isNaN(Number(v)); });
      rows.sort(function (a, b) {
        var x = value(a), y = value(b);
        if (x === "" || y === "") { return (x === "") - (y === ""); }
        var c = numeric ? Number(x) - Number(y) : x.localeCompare(y);
        return asc ? c : -c;
      });
      rows.forEach(function (r) { body.appendChild(r); });
    });
  });
});
"#;

/// What the page shows.
pub struct Page<'a> {
    pub search: &'a Search,
    pub summary: &'a Summary,
    pub finalists: &'a [(RankingEntry, TrainMetrics)],
    pub eval: Option<&'a EvalReport>,
    pub table: &'a Table,
    /// `(key, svg)` of each plot, in the order shown.
    pub plots: &'a [(String, String)],
}

/// The page.
pub fn render(p: &Page<'_>) -> String {
    let s = p.summary;
    let mut h = format!(
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width,initial-scale=1\"><title>NAS search {ns}/{name}</title><style>{STYLE}</style></head><body>\n<header><h1>NAS search {ns}/{name}</h1><p>space <code>{space}</code> · data set <code>{data}</code> · {cands} candidates ({scored} scored, {failed} failed) · ranked by <code>{metric}</code> · seed {seed}</p></header>\n<main>\n",
        ns = esc(&s.namespace),
        name = esc(&s.name),
        space = esc(&s.space),
        data = esc(&s.dataset),
        cands = s.candidates,
        scored = s.scored,
        failed = s.failed,
        metric = esc(&s.metric),
        seed = s.seed,
    );
    winner(&mut h, p);
    finalists(&mut h, p);
    stage_costs(&mut h, p);
    ground_truth(&mut h, s);
    plots(&mut h, p.plots);
    candidates(&mut h, p);
    let _ = write!(
        h,
        "<section id=\"spec\"><h2>Spec</h2><details><summary>the resolved spec (hash <code>{}</code>)</summary><pre>{}</pre></details></section>\n</main>\n<script>{SCRIPT}</script>\n</body></html>\n",
        esc(&p.search.resolved.spec_hash),
        esc(&p.search.resolved.to_json())
    );
    h
}

fn winner(h: &mut String, p: &Page<'_>) {
    h.push_str("<section id=\"winner\"><h2>Winner</h2>");
    let Some(w) = &p.summary.winner else {
        h.push_str("<p>The evaluation did not finish.</p></section>\n");
        return;
    };
    let pct = |v: Option<f64>| v.map_or("n/a".into(), |x| format!("{:.2}%", 100.0 * x));
    let epochs = p.eval.map_or("n/a".into(), |e| e.epochs.to_string());
    let _ = write!(
        h,
        "<p><code class=\"arch\">{}</code></p><div class=\"cards\">",
        esc(&w.arch)
    );
    for (value, label) in [
        (pct(w.top1_err), "top-1 error (held out)"),
        (pct(w.top5_err), "top-5 error (held out)"),
        (pct(w.val_acc), "validation accuracy after short training"),
        (grouped(w.params), "parameters"),
        (millions(w.flops), "multiply-adds per image"),
        (epochs, "epochs of final training"),
        (w.index.to_string(), "candidate"),
    ] {
        let _ = write!(
            h,
            "<div class=\"card\"><b>{}</b><span>{label}</span></div>",
            esc(&value)
        );
    }
    h.push_str("</div></section>\n");
}

/// `70338` as `70,338`: the cards are read, not sorted.
fn grouped(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// Millions with two decimals (`7.18M`) from a million up, else grouped digits.
fn millions(n: u64) -> String {
    if n >= 1_000_000 {
        format!("{:.2}M", n as f64 / 1e6)
    } else {
        grouped(n)
    }
}

fn finalists(h: &mut String, p: &Page<'_>) {
    h.push_str("<section id=\"finalists\"><h2>Finalists</h2><table class=\"sortable\"><thead><tr><th>rank</th><th>candidate</th><th>parameters</th><th>validation accuracy</th><th class=\"text\">architecture</th></tr></thead><tbody>");
    let winner = p.summary.winner.as_ref().map(|w| w.index);
    for (r, m) in p.finalists {
        let _ = write!(
            h,
            "<tr{}><td>{}</td><td>{}</td><td>{}</td><td>{:.2}</td><td class=\"text\"><code>{}</code></td></tr>",
            if Some(r.index) == winner { " class=\"winner\"" } else { "" },
            r.rank.map(|x| x.to_string()).unwrap_or_default(),
            r.index,
            r.params,
            100.0 * m.best_val_acc,
            esc(&r.arch)
        );
    }
    h.push_str("</tbody></table></section>\n");
}

/// Seconds per stage and GPU-hours (seconds × the stage's GPUs per pod).
fn stage_costs(h: &mut String, p: &Page<'_>) {
    h.push_str("<section id=\"costs\"><h2>Cost of each stage</h2><table><thead><tr><th class=\"text\">stage</th><th>seconds</th><th>GPUs per pod</th><th>GPU-hours</th></tr></thead><tbody>");
    let resources = &p.search.spec().resources;
    let mut total = (0.0, 0.0);
    for stage in Stage::ALL {
        let Some(secs) = p.summary.stage_seconds.get(stage.as_str()) else {
            continue;
        };
        let gpus = resources.for_stage(stage).and_then(|r| r.gpus).unwrap_or(0);
        let gpu_hours = secs * f64::from(gpus) / 3600.0;
        total = (total.0 + secs, total.1 + gpu_hours);
        let _ = write!(
            h,
            "<tr><td class=\"text\">{}</td><td>{secs:.1}</td><td>{gpus}</td><td>{gpu_hours:.3}</td></tr>",
            stage.as_str()
        );
    }
    let _ = writeln!(
        h,
        "<tr><td class=\"text\"><b>total</b></td><td><b>{:.1}</b></td><td></td><td><b>{:.3}</b></td></tr></tbody></table><p class=\"note\">Seconds are the work the stage's pods recorded (score: the metrics' own time, summed over candidates).</p></section>",
        total.0, total.1
    );
}

fn ground_truth(h: &mut String, s: &Summary) {
    let Some(g) = &s.ground_truth else {
        return;
    };
    let pct = |v: Option<f64>| v.map_or("n/a".to_string(), |x| format!("{x:.2}"));
    let _ = writeln!(
        h,
        "<section id=\"ground-truth\"><h2>Against the benchmark</h2><p><code>{}</code>, column <code>{}</code>, {} candidates found.</p><table><tbody><tr><td class=\"text\">evaluated winner</td><td>{}</td></tr><tr><td class=\"text\">ranked first by the search</td><td>{}</td></tr><tr><td class=\"text\">best candidate (index {})</td><td>{}</td></tr></tbody></table></section>",
        esc(&g.table),
        esc(&g.column),
        g.matched,
        pct(g.winner_accuracy),
        pct(g.top_ranked_accuracy),
        g.best_candidate_index.map_or("n/a".into(), |i| i.to_string()),
        pct(g.best_candidate_accuracy)
    );
}

fn plots(h: &mut String, plots: &[(String, String)]) {
    h.push_str("<section id=\"plots\"><h2>Plots</h2><div class=\"plots\">");
    for (key, svg) in plots {
        // The SVG's own XML is HTML-compatible inline SVG; only an XML declaration would not be.
        let body = svg.trim_start_matches(|c| c != '<');
        let body = if body.starts_with("<?xml") {
            body.split_once("?>").map_or(body, |(_, rest)| rest)
        } else {
            body
        };
        let _ = write!(
            h,
            "<figure id=\"{}\">{}</figure>",
            esc(key
                .trim_start_matches(nas_api::layout::key::PLOTS)
                .trim_end_matches(".svg")),
            body
        );
    }
    h.push_str("</div></section>\n");
}

fn candidates(h: &mut String, p: &Page<'_>) {
    let t = p.table;
    let shown = t.rows.len().min(ROWS_MAX);
    let _ = write!(
        h,
        "<section id=\"candidates\"><h2>Candidates</h2><p class=\"note\">{}Click a column to sort by it. Every candidate with every metric: <a href=\"{}\">{}</a>.</p><div class=\"scroll\"><table class=\"sortable\" id=\"candidates-table\"><thead><tr>",
        if shown < t.rows.len() {
            format!("The first {shown} of {} candidates in rank order. ", t.rows.len())
        } else {
            String::new()
        },
        super::report::TABLE,
        super::report::TABLE,
    );
    let text_col = |name: &str| matches!(name, "arch" | "excluded" | "error");
    for name in &t.header {
        let class = if text_col(name) {
            " class=\"text\""
        } else {
            ""
        };
        let _ = write!(
            h,
            "<th{class} data-key=\"{}\">{}</th>",
            esc(name),
            esc(name)
        );
    }
    h.push_str("</tr></thead><tbody>");
    let winner = p.summary.winner.as_ref().map(|w| w.index.to_string());
    for row in t.rows.iter().take(shown) {
        let is_winner = winner.as_deref() == row.get(1).map(String::as_str);
        h.push_str(if is_winner {
            "<tr class=\"winner\">"
        } else {
            "<tr>"
        });
        for (name, cell) in t.header.iter().zip(row) {
            if name == "arch" {
                let _ = write!(h, "<td class=\"text\"><code>{}</code></td>", esc(cell));
            } else if text_col(name) {
                let _ = write!(h, "<td class=\"text\">{}</td>", esc(cell));
            } else {
                let _ = write!(h, "<td>{}</td>", esc(cell));
            }
        }
        h.push_str("</tr>");
    }
    h.push_str("</tbody></table></div></section>\n");
}

/// HTML text escaping (also for attribute values).
fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn card_numbers_are_grouped_and_large_ones_in_millions() {
        assert_eq!(grouped(0), "0");
        assert_eq!(grouped(999), "999");
        assert_eq!(grouped(70_338), "70,338");
        assert_eq!(grouped(1_234_567), "1,234,567");
        assert_eq!(millions(7_181_770), "7.18M");
        assert_eq!(millions(574_000_000), "574.00M");
        assert_eq!(millions(56_674), "56,674");
    }
}

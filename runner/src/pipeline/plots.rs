//! The report's charts, drawn with `plotters` into self-contained SVG (no font files, no
//! network: viewable in any browser and in object-store consoles): readable ticks, a grid, axis
//! labels, a legend. A chart that cannot be drawn becomes a small SVG saying why, so one bad
//! series never costs the whole report.
use std::ops::Range;

use plotters::chart::SeriesAnno;
use plotters::coord::types::RangedCoordf64;
use plotters::coord::Shift;
use plotters::prelude::*;

const SIZE: (u32, u32) = (720, 440);
const PALETTE: [RGBColor; 6] = [
    RGBColor(31, 119, 180),
    RGBColor(214, 39, 40),
    RGBColor(44, 160, 44),
    RGBColor(255, 127, 14),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
];
const UNKNOWN: RGBColor = RGBColor(153, 153, 153);

/// One named series of points.
pub struct Series {
    pub name: String,
    pub points: Vec<(f64, f64)>,
}

type Drawn = Result<(), Box<dyn std::error::Error>>;

/// Points of each series as dots.
pub fn scatter(title: &str, xlabel: &str, ylabel: &str, series: &[Series]) -> String {
    render(title, |root| {
        let mut chart = chart(root, title, xlabel, ylabel, &finite_points(series))?;
        for (i, s) in series.iter().enumerate() {
            let colour = PALETTE[i % PALETTE.len()];
            let dots = finite(&s.points)
                .map(move |p| Circle::new(p, 4, colour.mix(0.75).filled()))
                .collect::<Vec<_>>();
            legend(chart.draw_series(dots)?, &s.name, colour);
        }
        finish(&mut chart, series)
    })
}

/// A dense line (per step) with sparser marked points on it (per epoch), in one colour.
pub struct Curve {
    pub name: String,
    pub line: Vec<(f64, f64)>,
    pub marks: Vec<(f64, f64)>,
}

/// Each curve's line, thin, and its marks as dots; a curve with no line joins its marks, so a
/// run that recorded only epoch means still shows as a line.
pub fn curves(title: &str, xlabel: &str, ylabel: &str, curves: &[Curve]) -> String {
    let all: Vec<Series> = curves
        .iter()
        .map(|c| Series {
            name: c.name.clone(),
            points: c.line.iter().chain(&c.marks).copied().collect(),
        })
        .collect();
    render(title, |root| {
        let mut chart = chart(root, title, xlabel, ylabel, &finite_points(&all))?;
        for (i, c) in curves.iter().enumerate() {
            let colour = PALETTE[i % PALETTE.len()];
            let (line, width) = if c.line.is_empty() {
                (&c.marks, 2)
            } else {
                (&c.line, 1)
            };
            chart.draw_series(LineSeries::new(finite(line), colour.stroke_width(width)))?;
            let marks = finite(&c.marks).map(move |p| Circle::new(p, 4, colour.filled()));
            legend(chart.draw_series(marks)?, &c.name, colour);
        }
        finish(&mut chart, &all)
    })
}

/// Points `(x, y, value)` coloured from blue (lowest value) to red (highest); grey where the
/// value is unknown. The colour scale's ends are written under the title.
pub fn scatter_coloured(
    title: &str,
    xlabel: &str,
    ylabel: &str,
    points: &[(f64, f64, f64)],
    value: &str,
) -> String {
    let (lo, hi) = range(points.iter().map(|p| p.2));
    let xy: Vec<(f64, f64)> = points.iter().map(|p| (p.0, p.1)).collect();
    render(title, |root| {
        let (scale, plot) = root.split_vertically(24);
        if lo.is_finite() {
            let note = format!(
                "colour: {value} from {} (blue) to {} (red); grey: unknown",
                tick(lo, hi - lo),
                tick(hi, hi - lo)
            );
            scale.draw(&Text::new(
                note,
                (12, 6),
                ("sans-serif", 13).into_font().color(&BLACK),
            ))?;
        }
        let mut chart = chart(&plot, title, xlabel, ylabel, &xy)?;
        let dots = points
            .iter()
            .filter(|p| p.0.is_finite() && p.1.is_finite())
            .map(|&(x, y, v)| Circle::new((x, y), 4, heat(v, lo, hi).mix(0.85).filled()))
            .collect::<Vec<_>>();
        chart.draw_series(dots)?;
        Ok(())
    })
}

/// Horizontal bars, one per `(label, value)`, with the value written beside each.
pub fn bars(title: &str, xlabel: &str, bars: &[(String, f64)]) -> String {
    render(title, |root| {
        let max = bars
            .iter()
            .map(|b| b.1)
            .filter(|v| v.is_finite())
            .fold(0.0, f64::max);
        let n = bars.len().max(1) as u32;
        let mut chart = ChartBuilder::on(root)
            .caption(title, ("sans-serif", 22))
            .margin(16)
            .x_label_area_size(44)
            .y_label_area_size(110)
            // A segmented 0..n has n + 1 segments: one per bar is 0..n - 1.
            .build_cartesian_2d(0.0..(max * 1.15).max(1e-9), (0..n - 1).into_segmented())?;
        chart
            .configure_mesh()
            .disable_y_mesh()
            .x_desc(xlabel)
            .x_label_formatter(&|v| tick(*v, max))
            .y_label_formatter(&|v| match v {
                SegmentValue::CenterOf(i) => {
                    bars.get(*i as usize).map_or(String::new(), |b| b.0.clone())
                }
                _ => String::new(),
            })
            .y_labels(bars.len().max(1))
            .label_style(("sans-serif", 15))
            .draw()?;
        chart.draw_series(bars.iter().enumerate().map(|(i, b)| {
            let i = i as u32;
            let v = if b.1.is_finite() { b.1 } else { 0.0 };
            let mut bar = Rectangle::new(
                [
                    (0.0, SegmentValue::Exact(i)),
                    (v, SegmentValue::Exact(i + 1)),
                ],
                PALETTE[0].mix(0.8).filled(),
            );
            bar.set_margin(6, 6, 0, 0);
            bar
        }))?;
        chart.draw_series(bars.iter().enumerate().map(|(i, b)| {
            Text::new(
                format!(" {}", significant(b.1)),
                (b.1.max(0.0), SegmentValue::CenterOf(i as u32)),
                ("sans-serif", 12).into_font(),
            )
        }))?;
        Ok(())
    })
}

/// Draws into an SVG string; a failure becomes an SVG that says so.
fn render(title: &str, draw: impl FnOnce(&DrawingArea<SVGBackend, Shift>) -> Drawn) -> String {
    let mut svg = String::new();
    let result = {
        let root = SVGBackend::with_string(&mut svg, SIZE).into_drawing_area();
        root.fill(&WHITE)
            .map_err(|e| e.to_string())
            .and_then(|_| draw(&root).map_err(|e| e.to_string()))
            .and_then(|_| root.present().map_err(|e| e.to_string()))
    };
    match result {
        Ok(()) => svg,
        Err(e) => {
            tracing::warn!(plot = title, error = %e, "cannot draw the plot");
            format!(
                "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{}\" height=\"60\"><text x=\"10\" y=\"30\" font-family=\"sans-serif\">{}: cannot draw: {}</text></svg>\n",
                SIZE.0,
                escape(title),
                escape(&e)
            )
        }
    }
}

type Chart<'a, 'b> = ChartContext<'a, SVGBackend<'b>, Cartesian2d<RangedCoordf64, RangedCoordf64>>;

/// Axes fitted to `points` with a margin (no point sits on an axis), a light grid, labels.
fn chart<'a, 'b>(
    root: &'a DrawingArea<SVGBackend<'b>, Shift>,
    title: &str,
    xlabel: &str,
    ylabel: &str,
    points: &[(f64, f64)],
) -> Result<Chart<'a, 'b>, Box<dyn std::error::Error>> {
    let x = padded(range(points.iter().map(|p| p.0)));
    let y = padded(range(points.iter().map(|p| p.1)));
    let mut chart = ChartBuilder::on(root)
        .caption(title, ("sans-serif", 22))
        .margin(16)
        .x_label_area_size(44)
        .y_label_area_size(72)
        .build_cartesian_2d(x.0..x.1, y.0..y.1)?;
    let (xs, ys) = (x.1 - x.0, y.1 - y.0);
    chart
        .configure_mesh()
        .x_desc(xlabel)
        .y_desc(ylabel)
        .x_labels(7)
        .y_labels(7)
        .x_label_formatter(&|v| tick(*v, xs))
        .y_label_formatter(&|v| tick(*v, ys))
        .label_style(("sans-serif", 15))
        .axis_desc_style(("sans-serif", 16))
        .light_line_style(RGBColor(235, 235, 235))
        .bold_line_style(RGBColor(215, 215, 215))
        .draw()?;
    Ok(chart)
}

fn legend<DB: DrawingBackend>(annotation: &mut SeriesAnno<'_, DB>, name: &str, colour: RGBColor) {
    if !name.is_empty() {
        annotation
            .label(name.to_string())
            .legend(move |(x, y)| Circle::new((x + 8, y), 4, colour.filled()));
    }
}

fn finish<'a, 'b: 'a>(chart: &mut Chart<'a, 'b>, series: &[Series]) -> Drawn {
    let named = series.iter().filter(|s| !s.name.is_empty()).count();
    if named > 0 {
        let corner = legend_corner(
            &finite_points(series),
            (chart.x_range(), chart.y_range()),
            named,
        );
        chart
            .configure_series_labels()
            .position(corner)
            .label_font(("sans-serif", 15))
            .background_style(WHITE.mix(0.85))
            .border_style(RGBColor(190, 190, 190))
            .draw()?;
    }
    Ok(())
}

/// The corner whose legend box would cover the fewest points (the best candidates often sit
/// top right, where a fixed legend would hide them); ties go to the upper right, then upper
/// left, lower right, lower left. The box is measured in the chart's axis ranges.
fn legend_corner(
    points: &[(f64, f64)],
    (x, y): (Range<f64>, Range<f64>),
    entries: usize,
) -> SeriesLabelPosition {
    // The legend's share of the plot: about 130 px of 610 wide, 20 px per entry of 330 high.
    let (w, h) = (0.3, (0.06 + 0.07 * entries as f64).min(0.9));
    let covered = |right: bool, upper: bool| {
        points
            .iter()
            .filter(|p| {
                let fx = (p.0 - x.start) / (x.end - x.start);
                let fy = (p.1 - y.start) / (y.end - y.start);
                (if right { fx >= 1.0 - w } else { fx <= w })
                    && (if upper { fy >= 1.0 - h } else { fy <= h })
            })
            .count()
    };
    [
        (SeriesLabelPosition::UpperRight, covered(true, true)),
        (SeriesLabelPosition::UpperLeft, covered(false, true)),
        (SeriesLabelPosition::LowerRight, covered(true, false)),
        (SeriesLabelPosition::LowerLeft, covered(false, false)),
    ]
    .into_iter()
    .min_by_key(|c| c.1)
    .map_or(SeriesLabelPosition::UpperRight, |c| c.0)
}

fn finite(points: &[(f64, f64)]) -> impl Iterator<Item = (f64, f64)> + '_ {
    points
        .iter()
        .copied()
        .filter(|p| p.0.is_finite() && p.1.is_finite())
}

fn finite_points(series: &[Series]) -> Vec<(f64, f64)> {
    series.iter().flat_map(|s| finite(&s.points)).collect()
}

/// The finite values' (min, max); (inf, -inf) when there are none.
fn range(values: impl Iterator<Item = f64>) -> (f64, f64) {
    values
        .filter(|v| v.is_finite())
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(l, h), v| {
            (l.min(v), h.max(v))
        })
}

/// A range with 6% room on each side; a single value gets a unit-wide (or 10%) window.
fn padded((lo, hi): (f64, f64)) -> (f64, f64) {
    if !lo.is_finite() {
        return (0.0, 1.0);
    }
    let span = hi - lo;
    if span <= f64::EPSILON * lo.abs().max(1.0) {
        let half = (lo.abs() * 0.1).max(0.5);
        return (lo - half, hi + half);
    }
    (lo - 0.06 * span, hi + 0.06 * span)
}

/// A tick label with as many decimals as the axis span needs, thousands as k and M.
fn tick(v: f64, span: f64) -> String {
    if !v.is_finite() {
        return "n/a".into();
    }
    let (scaled, unit, span) = if v.abs() >= 1e6 && span >= 1e5 {
        (v / 1e6, "M", span / 1e6)
    } else if v.abs() >= 1e4 && span >= 1e3 {
        (v / 1e3, "k", span / 1e3)
    } else {
        (v, "", span)
    };
    // One significant digit of the step between seven ticks.
    let step = (span / 7.0).abs();
    let decimals = if step > 0.0 && step.is_finite() {
        (-step.log10().floor()).clamp(0.0, 6.0) as usize
    } else {
        2
    };
    format!("{scaled:.decimals$}{unit}")
}

/// A value with three significant digits (bar labels: 0.05 s beside 300 s).
fn significant(v: f64) -> String {
    if !v.is_finite() {
        return "n/a".into();
    }
    let digits = if v == 0.0 {
        0
    } else {
        (2.0 - v.abs().log10().floor()).clamp(0.0, 6.0) as usize
    };
    let text = format!("{v:.digits$}");
    if text.contains('.') {
        text.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        text
    }
}

/// Blue (lowest) to red (highest); grey for an unknown value.
fn heat(v: f64, lo: f64, hi: f64) -> RGBColor {
    if !v.is_finite() {
        return UNKNOWN;
    }
    let t = if hi > lo { (v - lo) / (hi - lo) } else { 0.5 };
    RGBColor((40.0 + 200.0 * t) as u8, 60, (240.0 - 200.0 * t) as u8)
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn series() -> Vec<Series> {
        vec![
            Series {
                name: "a<b".into(),
                points: vec![(1.0, 2.0), (f64::NAN, 1.0), (3.0, 4.0)],
            },
            Series {
                name: "one point".into(),
                points: vec![(2.0, 2.0)],
            },
        ]
    }

    #[test]
    fn charts_are_well_formed_skip_non_finite_points_and_name_their_series() {
        let s = series();
        let as_curves: Vec<Curve> = s
            .iter()
            .map(|s| Curve {
                name: s.name.clone(),
                line: Vec::new(),
                marks: s.points.clone(),
            })
            .collect();
        for svg in [
            scatter("t", "x", "y", &s),
            curves("t", "x", "y", &as_curves),
        ] {
            assert!(
                svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"),
                "{svg}"
            );
            assert!(svg.contains("a&lt;b") && svg.contains("one point"));
            assert!(
                !svg.contains("NaN") && !svg.contains("cannot draw"),
                "{svg}"
            );
            // The axis labels are drawn.
            assert!(
                svg.contains(">\nx\n</text>") && svg.contains(">\ny\n</text>"),
                "{svg}"
            );
        }
        // Three finite points, each a circle, plus one legend mark per named series.
        assert_eq!(scatter("t", "x", "y", &s).matches("<circle").count(), 3 + 2);
        // A one-point series still shows its point on a line chart.
        let one = [Curve {
            name: String::new(),
            line: Vec::new(),
            marks: vec![(1.0, 0.7)],
        }];
        assert_eq!(curves("t", "x", "y", &one).matches("<circle").count(), 1);
    }

    /// The axes [`chart`] draws for `points`.
    fn axes(points: &[(f64, f64)]) -> (Range<f64>, Range<f64>) {
        let x = padded(range(points.iter().map(|p| p.0)));
        let y = padded(range(points.iter().map(|p| p.1)));
        (x.0..x.1, y.0..y.1)
    }

    #[test]
    fn the_legend_goes_to_the_corner_that_hides_no_point() {
        // The best candidate at the top right: the legend moves away from it.
        let rising = [(1.0, 1.0), (2.0, 2.0), (3.0, 3.0), (10.0, 10.0)];
        assert!(matches!(
            legend_corner(&rising, axes(&rising), 2),
            SeriesLabelPosition::UpperLeft
        ));
        // Nothing at the top right: it stays there.
        let falling = [(1.0, 10.0), (5.0, 5.0), (10.0, 1.0)];
        assert!(matches!(
            legend_corner(&falling, axes(&falling), 2),
            SeriesLabelPosition::UpperRight
        ));
        assert!(matches!(
            legend_corner(&[], axes(&[]), 1),
            SeriesLabelPosition::UpperRight
        ));
    }

    #[test]
    fn tick_labels_tell_close_values_apart() {
        // A span of 1.2 over values near 81 needs decimals ("82, 81, 81, 81" before).
        let labels: Vec<String> = (0..5)
            .map(|i| tick(80.8 + 0.3 * f64::from(i), 1.2))
            .collect();
        let mut unique = labels.clone();
        unique.dedup();
        assert_eq!(unique.len(), labels.len(), "{labels:?}");
        assert_eq!(tick(1_234_567.0, 2e6), "1.2M");
        assert_eq!(tick(80.8, 1.2), "80.8");
        assert_eq!(tick(25_000.0, 40_000.0), "25k");
        assert_eq!(tick(f64::NAN, 1.0), "n/a");
        assert_eq!(significant(0.0512), "0.0512");
        assert_eq!(significant(300.4), "300");
        assert_eq!(significant(3.2), "3.2");
        assert_eq!(significant(41.26), "41.3");
    }

    #[test]
    fn colours_run_from_blue_to_red_and_unknown_is_grey() {
        let c = scatter_coloured(
            "t",
            "x",
            "y",
            &[(1.0, 1.0, 0.0), (2.0, 2.0, 1.0), (3.0, 3.0, f64::NAN)],
            "acc",
        );
        assert!(c.contains("colour: acc from"), "{c}");
        assert!(
            c.contains("#2850F0") || c.contains("rgb(40,60,240)") || c.contains("#283CF0"),
            "{c}"
        );
        assert_eq!(heat(0.0, 0.0, 1.0), RGBColor(40, 60, 240));
        assert_eq!(heat(1.0, 0.0, 1.0), RGBColor(240, 60, 40));
        assert_eq!(heat(f64::NAN, 0.0, 1.0), UNKNOWN);
    }

    #[test]
    fn bars_label_every_bar() {
        let svg = bars(
            "Stage costs",
            "seconds",
            &[("score".into(), 12.5), ("train".into(), 40.0)],
        );
        assert!(
            svg.contains("score") && svg.contains("train") && svg.contains("40"),
            "{svg}"
        );
        assert!(!svg.contains("cannot draw"), "{svg}");
    }

    #[test]
    fn curves_draw_the_per_step_line_of_a_one_epoch_run_and_mark_its_epoch_mean() {
        let run = Curve {
            name: "finalist 3".into(),
            line: (1..=10)
                .map(|i| (f64::from(i) / 10.0, 3.0 - f64::from(i) / 10.0))
                .collect(),
            marks: vec![(1.0, 2.4)],
        };
        let svg = curves("t", "epoch", "loss", &[run]);
        let polyline_sizes: Vec<usize> = svg
            .split("<polyline")
            .skip(1)
            .map(|p| {
                let points = p.split("points=\"").nth(1).unwrap_or("");
                points
                    .split('"')
                    .next()
                    .unwrap_or("")
                    .split_whitespace()
                    .count()
            })
            .collect();
        assert!(polyline_sizes.contains(&10), "{polyline_sizes:?}");
        // One dot on the curve and one in the legend.
        assert_eq!(svg.matches("<circle").count(), 2);
        assert!(svg.contains("finalist 3"));
    }
}

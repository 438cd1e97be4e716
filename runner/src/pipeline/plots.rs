//! Small self-contained SVG charts for the report (no plotting dependency, viewable in any
//! browser and in object-store consoles).
use std::fmt::Write;

const W: f64 = 640.0;
const H: f64 = 400.0;
const PAD: f64 = 56.0;
const COLOURS: [&str; 6] = [
    "#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b",
];

/// One named series of points.
pub struct Series {
    pub name: String,
    pub points: Vec<(f64, f64)>,
}

struct Axes {
    x: (f64, f64),
    y: (f64, f64),
}

impl Axes {
    fn fit(series: &[Series]) -> Self {
        let pts = || {
            series
                .iter()
                .flat_map(|s| s.points.iter())
                .filter(|p| p.0.is_finite() && p.1.is_finite())
        };
        let span = |f: fn(&(f64, f64)) -> f64| {
            let (lo, hi) = pts()
                .map(f)
                .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), v| {
                    (a.min(v), b.max(v))
                });
            if !lo.is_finite() {
                (0.0, 1.0)
            } else if hi - lo < 1e-12 {
                (lo - 0.5, hi + 0.5)
            } else {
                (lo, hi)
            }
        };
        Axes {
            x: span(|p| p.0),
            y: span(|p| p.1),
        }
    }
    fn px(&self, x: f64) -> f64 {
        PAD + (x - self.x.0) / (self.x.1 - self.x.0) * (W - 2.0 * PAD)
    }
    fn py(&self, y: f64) -> f64 {
        H - PAD - (y - self.y.0) / (self.y.1 - self.y.0) * (H - 2.0 * PAD)
    }
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

fn frame(out: &mut String, title: &str, xlabel: &str, ylabel: &str, a: &Axes) {
    let _ = write!(
        out,
        r##"<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" font-family="sans-serif" font-size="12"><rect width="100%" height="100%" fill="white"/><text x="{}" y="20" text-anchor="middle" font-size="14">{}</text><line x1="{PAD}" y1="{}" x2="{}" y2="{}" stroke="black"/><line x1="{PAD}" y1="{PAD}" x2="{PAD}" y2="{}" stroke="black"/><text x="{}" y="{}" text-anchor="middle">{}</text><text transform="translate(14,{}) rotate(-90)" text-anchor="middle">{}</text>"##,
        W / 2.0,
        escape(title),
        H - PAD,
        W - PAD,
        H - PAD,
        H - PAD,
        W / 2.0,
        H - 12.0,
        escape(xlabel),
        H / 2.0,
        escape(ylabel)
    );
    for i in 0..=4 {
        let t = f64::from(i) / 4.0;
        let (x, y) = (a.x.0 + t * (a.x.1 - a.x.0), a.y.0 + t * (a.y.1 - a.y.0));
        let _ = write!(
            out,
            r##"<text x="{:.1}" y="{}" text-anchor="middle">{}</text><text x="{}" y="{:.1}" text-anchor="end">{}</text>"##,
            a.px(x),
            H - PAD + 16.0,
            tick(x),
            PAD - 4.0,
            a.py(y) + 4.0,
            tick(y)
        );
    }
}

fn tick(v: f64) -> String {
    let a = v.abs();
    if a >= 1e6 {
        format!("{:.2}M", v / 1e6)
    } else if a >= 1e3 {
        format!("{:.1}k", v / 1e3)
    } else if a >= 10.0 || a == 0.0 {
        format!("{v:.0}")
    } else {
        format!("{v:.3}")
    }
}

fn legend(out: &mut String, series: &[Series]) {
    for (i, s) in series.iter().enumerate() {
        let y = PAD + 16.0 * i as f64;
        let _ = write!(
            out,
            r##"<rect x="{}" y="{}" width="10" height="10" fill="{}"/><text x="{}" y="{}">{}</text>"##,
            W - PAD - 150.0,
            y - 9.0,
            COLOURS[i % COLOURS.len()],
            W - PAD - 135.0,
            y,
            escape(&s.name)
        );
    }
}

/// Points of each series as dots.
pub fn scatter(title: &str, xlabel: &str, ylabel: &str, series: &[Series]) -> String {
    let a = Axes::fit(series);
    let mut out = String::new();
    frame(&mut out, title, xlabel, ylabel, &a);
    for (i, s) in series.iter().enumerate() {
        for &(x, y) in s
            .points
            .iter()
            .filter(|p| p.0.is_finite() && p.1.is_finite())
        {
            let _ = write!(
                out,
                r##"<circle cx="{:.1}" cy="{:.1}" r="3" fill="{}" fill-opacity="0.7"/>"##,
                a.px(x),
                a.py(y),
                COLOURS[i % COLOURS.len()]
            );
        }
    }
    legend(&mut out, series);
    out.push_str("</svg>\n");
    out
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
    let series = [Series {
        name: String::new(),
        points: points.iter().map(|p| (p.0, p.1)).collect(),
    }];
    let a = Axes::fit(&series);
    let (lo, hi) = points
        .iter()
        .map(|p| p.2)
        .filter(|v| v.is_finite())
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(l, h), v| {
            (l.min(v), h.max(v))
        });
    let mut out = String::new();
    frame(&mut out, title, xlabel, ylabel, &a);
    for &(x, y, v) in points.iter().filter(|p| p.0.is_finite() && p.1.is_finite()) {
        let fill = if v.is_finite() && hi > lo {
            let t = (v - lo) / (hi - lo);
            format!(
                "rgb({},{},{})",
                (40.0 + 200.0 * t) as u8,
                60,
                (240.0 - 200.0 * t) as u8
            )
        } else if v.is_finite() {
            "rgb(140,60,140)".to_string()
        } else {
            "#999999".to_string()
        };
        let _ = write!(
            out,
            r##"<circle cx="{:.1}" cy="{:.1}" r="3" fill="{fill}" fill-opacity="0.8"/>"##,
            a.px(x),
            a.py(y)
        );
    }
    if lo.is_finite() {
        let _ = write!(
            out,
            r##"<text x="{}" y="36" text-anchor="middle" font-size="11">colour: {} from {} (blue) to {} (red)</text>"##,
            W / 2.0,
            escape(value),
            tick(lo),
            tick(hi)
        );
    }
    out.push_str("</svg>\n");
    out
}

/// Each series as a polyline.
pub fn lines(title: &str, xlabel: &str, ylabel: &str, series: &[Series]) -> String {
    let a = Axes::fit(series);
    let mut out = String::new();
    frame(&mut out, title, xlabel, ylabel, &a);
    for (i, s) in series.iter().enumerate() {
        let pts: Vec<String> = s
            .points
            .iter()
            .filter(|p| p.0.is_finite() && p.1.is_finite())
            .map(|&(x, y)| format!("{:.1},{:.1}", a.px(x), a.py(y)))
            .collect();
        let _ = write!(
            out,
            r##"<polyline points="{}" fill="none" stroke="{}" stroke-width="2"/>"##,
            pts.join(" "),
            COLOURS[i % COLOURS.len()]
        );
    }
    legend(&mut out, series);
    out.push_str("</svg>\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn charts_are_well_formed_and_skip_non_finite_points() {
        let s = vec![
            Series {
                name: "a<b".into(),
                points: vec![(1.0, 2.0), (f64::NAN, 1.0), (3.0, 4.0)],
            },
            Series {
                name: "flat".into(),
                points: vec![(2.0, 2.0)],
            },
        ];
        for svg in [scatter("t", "x", "y", &s), lines("t", "x", "y", &s)] {
            assert!(svg.starts_with("<svg") && svg.ends_with("</svg>\n"));
            assert!(svg.contains("a&lt;b") && !svg.contains("NaN"));
        }
        assert_eq!(scatter("t", "x", "y", &s).matches("<circle").count(), 3);
        let c = scatter_coloured(
            "t",
            "x",
            "y",
            &[(1.0, 1.0, 0.0), (2.0, 2.0, 1.0), (3.0, 3.0, f64::NAN)],
            "acc",
        );
        assert!(
            c.contains("rgb(40,60,240)") && c.contains("rgb(240,60,40)") && c.contains("#999999")
        );
    }
}

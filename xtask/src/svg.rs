//! Hand-written SVG charts for BENCHMARKS.md: a line chart and a horizontal bar chart.
//! No plotting dependency: the charts are a few hundred bytes of markup each.

use std::fmt::Write;

/// One line of a line chart.
pub struct Series {
    pub name: String,
    pub color: &'static str,
    pub points: Vec<(f64, f64)>,
    /// Dashed (for baselines and reference lines).
    pub dashed: bool,
}

/// Colours that stay distinguishable in print.
pub const PALETTE: [&str; 6] = [
    "#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#7f7f7f",
];

const W: f64 = 760.0;
const H: f64 = 420.0;
const LEFT: f64 = 80.0;
const RIGHT: f64 = 200.0;
const TOP: f64 = 40.0;
const BOTTOM: f64 = 60.0;

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// Tick positions covering `lo..=hi`: 4–8 "nice" steps (1, 2 or 5 × 10^k).
pub fn ticks(lo: f64, hi: f64) -> Vec<f64> {
    let span = (hi - lo).abs().max(f64::MIN_POSITIVE);
    let raw = span / 6.0;
    let mag = 10f64.powf(raw.log10().floor());
    let step = [1.0, 2.0, 5.0, 10.0]
        .iter()
        .map(|m| m * mag)
        .find(|s| span / s <= 8.0)
        .unwrap_or(10.0 * mag);
    let mut t = (lo / step).floor() * step;
    let mut out = Vec::new();
    while t <= hi + step * 1e-9 {
        if t >= lo - step * 1e-9 {
            out.push(t);
        }
        t += step;
    }
    out
}

/// A number as a tick label: thousands separated by a thin space, no trailing zeros.
pub fn label(v: f64) -> String {
    let a = v.abs();
    if a >= 1e6 {
        format!("{:.1}M", v / 1e6).replace(".0M", "M")
    } else if a >= 1e4 {
        format!("{:.0}k", v / 1e3)
    } else if a >= 100.0 || v == v.trunc() {
        format!("{v:.0}")
    } else if a >= 1.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.2}")
    }
}

/// A line chart with axes from zero (y) and the data's x range.
pub fn line_chart(title: &str, x_label: &str, y_label: &str, series: &[Series]) -> String {
    let pts = series.iter().flat_map(|s| s.points.iter());
    let (mut x0, mut x1, mut y1) = (f64::MAX, f64::MIN, 0.0f64);
    for &(x, y) in pts {
        x0 = x0.min(x);
        x1 = x1.max(x);
        y1 = y1.max(y);
    }
    if x0 > x1 {
        (x0, x1) = (0.0, 1.0);
    }
    if x0 == x1 {
        x1 = x0 + 1.0;
    }
    if y1 <= 0.0 {
        y1 = 1.0;
    }
    let yt = ticks(0.0, y1 * 1.05);
    let y1 = yt.last().copied().unwrap_or(y1).max(y1);
    let xt = ticks(x0, x1);
    let pw = W - LEFT - RIGHT;
    let ph = H - TOP - BOTTOM;
    let sx = |x: f64| LEFT + (x - x0) / (x1 - x0) * pw;
    let sy = |y: f64| TOP + ph - y / y1 * ph;

    let mut s = String::new();
    let _ = write!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" viewBox="0 0 {W} {H}" font-family="sans-serif" font-size="12">
<rect width="100%" height="100%" fill="white"/>
<text x="{}" y="22" text-anchor="middle" font-size="15" font-weight="bold">{}</text>
"#,
        LEFT + pw / 2.0,
        esc(title)
    );
    for &t in &yt {
        let y = sy(t);
        let _ = writeln!(
            s,
            r##"<line x1="{LEFT}" y1="{y:.1}" x2="{:.1}" y2="{y:.1}" stroke="#ddd"/><text x="{:.1}" y="{:.1}" text-anchor="end">{}</text>"##,
            LEFT + pw,
            LEFT - 6.0,
            y + 4.0,
            label(t)
        );
    }
    for &t in &xt {
        let x = sx(t);
        let _ = writeln!(
            s,
            r##"<line x1="{x:.1}" y1="{:.1}" x2="{x:.1}" y2="{:.1}" stroke="#aaa"/><text x="{x:.1}" y="{:.1}" text-anchor="middle">{}</text>"##,
            TOP + ph,
            TOP + ph + 5.0,
            TOP + ph + 18.0,
            label(t)
        );
    }
    let _ = writeln!(
        s,
        r##"<rect x="{LEFT}" y="{TOP}" width="{pw}" height="{ph}" fill="none" stroke="#444"/>
<text x="{:.1}" y="{:.1}" text-anchor="middle">{}</text>
<text transform="translate(18,{:.1}) rotate(-90)" text-anchor="middle">{}</text>"##,
        LEFT + pw / 2.0,
        H - 18.0,
        esc(x_label),
        TOP + ph / 2.0,
        esc(y_label)
    );
    for (i, se) in series.iter().enumerate() {
        let path: Vec<String> = se
            .points
            .iter()
            .map(|&(x, y)| format!("{:.1},{:.1}", sx(x), sy(y)))
            .collect();
        let dash = if se.dashed {
            r#" stroke-dasharray="6 4""#
        } else {
            ""
        };
        let _ = writeln!(
            s,
            r#"<polyline fill="none" stroke="{}" stroke-width="2"{dash} points="{}"/>"#,
            se.color,
            path.join(" ")
        );
        if se.points.len() <= 12 {
            for &(x, y) in &se.points {
                let _ = writeln!(
                    s,
                    r#"<circle cx="{:.1}" cy="{:.1}" r="3" fill="{}"/>"#,
                    sx(x),
                    sy(y),
                    se.color
                );
            }
        }
        let ly = TOP + 10.0 + i as f64 * 20.0;
        let lx = LEFT + pw + 12.0;
        let _ = writeln!(
            s,
            r#"<line x1="{lx}" y1="{ly}" x2="{}" y2="{ly}" stroke="{}" stroke-width="2"{dash}/><text x="{}" y="{}">{}</text>"#,
            lx + 22.0,
            se.color,
            lx + 28.0,
            ly + 4.0,
            esc(&se.name)
        );
    }
    s.push_str("</svg>\n");
    s
}

/// One bar of a bar chart: a ratio and the target it is measured against.
pub struct Bar {
    pub name: String,
    pub value: f64,
    /// The target line for this bar, and whether the bar must reach it (`true`) or stay
    /// below it (`false`).
    pub target: Option<(f64, bool)>,
}

/// Horizontal bars (ratios), each with its target as a tick; green when it meets it.
pub fn bar_chart(title: &str, x_label: &str, bars: &[Bar]) -> String {
    let row = 26.0;
    let left = 300.0;
    let width = 420.0;
    let h = TOP + bars.len() as f64 * row + 50.0;
    let max = bars
        .iter()
        .flat_map(|b| [b.value, b.target.map_or(0.0, |t| t.0)])
        .fold(1.0f64, f64::max)
        * 1.1;
    let xt = ticks(0.0, max);
    let max = xt.last().copied().unwrap_or(max).max(max);
    let sx = |v: f64| left + v / max * width;
    let mut s = String::new();
    let _ = writeln!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{}" height="{h}" viewBox="0 0 {} {h}" font-family="sans-serif" font-size="12">
<rect width="100%" height="100%" fill="white"/>
<text x="{}" y="22" text-anchor="middle" font-size="15" font-weight="bold">{}</text>"#,
        left + width + 40.0,
        left + width + 40.0,
        (left + width + 40.0) / 2.0,
        esc(title)
    );
    let bottom = TOP + bars.len() as f64 * row;
    for &t in &xt {
        let x = sx(t);
        let _ = writeln!(
            s,
            r##"<line x1="{x:.1}" y1="{TOP}" x2="{x:.1}" y2="{bottom}" stroke="#ddd"/><text x="{x:.1}" y="{:.1}" text-anchor="middle">{}</text>"##,
            bottom + 16.0,
            label(t)
        );
    }
    for (i, b) in bars.iter().enumerate() {
        let y = TOP + i as f64 * row;
        let meets = b.target.is_none_or(
            |(t, at_least)| {
                if at_least { b.value >= t } else { b.value <= t }
            },
        );
        let color = if meets { "#2ca02c" } else { "#d62728" };
        let _ = writeln!(
            s,
            r#"<text x="{:.1}" y="{:.1}" text-anchor="end">{}</text><rect x="{left}" y="{:.1}" width="{:.1}" height="{:.1}" fill="{color}" opacity="0.8"/><text x="{:.1}" y="{:.1}">{:.2}</text>"#,
            left - 8.0,
            y + row / 2.0 + 4.0,
            esc(&b.name),
            y + 4.0,
            (sx(b.value) - left).max(0.0),
            row - 8.0,
            sx(b.value) + 4.0,
            y + row / 2.0 + 4.0,
            b.value
        );
        if let Some((t, _)) = b.target {
            let x = sx(t);
            let _ = writeln!(
                s,
                r#"<line x1="{x:.1}" y1="{:.1}" x2="{x:.1}" y2="{:.1}" stroke="black" stroke-width="2"/>"#,
                y + 1.0,
                y + row - 1.0
            );
        }
    }
    let _ = writeln!(
        s,
        r#"<text x="{:.1}" y="{:.1}" text-anchor="middle">{}</text>
</svg>"#,
        left + width / 2.0,
        bottom + 36.0,
        esc(x_label)
    );
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ticks_are_nice_and_cover_the_range() {
        assert_eq!(ticks(0.0, 10.0), vec![0.0, 2.0, 4.0, 6.0, 8.0, 10.0]);
        let t = ticks(0.0, 1234.0);
        assert_eq!(t.first(), Some(&0.0));
        assert!(t.iter().all(|v| v % 200.0 == 0.0), "{t:?}");
        assert!(*t.last().unwrap() >= 1200.0);
    }

    #[test]
    fn charts_are_well_formed_svg() {
        let c = line_chart(
            "t <1>",
            "x",
            "y",
            &[Series {
                name: "a & b".into(),
                color: PALETTE[0],
                points: vec![(0.0, 1.0), (10.0, 3.0)],
                dashed: false,
            }],
        );
        assert!(c.starts_with("<svg") && c.trim_end().ends_with("</svg>"));
        assert!(c.contains("t &lt;1&gt;") && c.contains("a &amp; b"));
        let b = bar_chart(
            "r",
            "ratio",
            &[Bar {
                name: "x".into(),
                value: 0.5,
                target: Some((0.8, true)),
            }],
        );
        assert!(b.contains("#d62728"), "a bar below its target is red");
    }
}

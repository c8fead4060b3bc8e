//! Charts drawn on the server as inline SVG: no script, no third-party
//! library, nothing for the content security policy to allow. People read
//! the dashboard's figures as pictures; the numbers stay in the tables
//! beside them (and in each bar's `<title>`, which screen readers and
//! hovering show).
//!
//! Every text that reaches the markup is escaped here; class and route
//! names are tenant-defined.

use std::fmt::Write as _;

/// Colours for series in order: distinguishable, and readable on white.
pub const PALETTE: [&str; 8] = [
    "#1f6feb", "#1a7f37", "#9a6700", "#8250df", "#cf222e", "#0a7c86", "#bc4c00", "#57606a",
];

/// The colour of the `i`th series.
pub fn colour(i: usize) -> &'static str {
    PALETTE.get(i % PALETTE.len()).copied().unwrap_or("#57606a")
}

/// One named series of counts, one per bucket.
#[derive(Debug, Clone)]
pub struct Series {
    pub name: String,
    pub values: Vec<u64>,
}

/// Escapes text for SVG/HTML content and attributes.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

const WIDTH: u32 = 960;
const HEIGHT: u32 = 220;
/// Share bars sit in half-width cards: a narrower canvas keeps their text
/// readable.
const BARS_WIDTH: u32 = 520;
const LEFT: u32 = 44;
const BOTTOM: u32 = 24;

/// Stacked bars, one bar per bucket (`labels`), one colour per series:
/// how a total splits over time (share by route, say). `title` names the
/// chart for assistive technology.
pub fn stacked_bars(title: &str, labels: &[String], series: &[Series]) -> String {
    let totals: Vec<u64> = (0..labels.len())
        .map(|i| {
            series
                .iter()
                .map(|s| s.values.get(i).copied().unwrap_or(0))
                .sum()
        })
        .collect();
    let max = totals.iter().copied().max().unwrap_or(0).max(1);
    let plot_w = WIDTH - LEFT - 8;
    let plot_h = HEIGHT - BOTTOM - 8;
    let n = u32::try_from(labels.len()).unwrap_or(u32::MAX).max(1);
    let slot = f64::from(plot_w) / f64::from(n);
    let bar = (slot * 0.72).max(1.0);
    let mut svg = String::new();
    let _ = write!(
        svg,
        r#"<svg viewBox="0 0 {WIDTH} {HEIGHT}" role="img" aria-label="{}" xmlns="http://www.w3.org/2000/svg">"#,
        escape(title)
    );
    // Axis: zero and the maximum.
    let _ = write!(
        svg,
        "<line x1=\"{LEFT}\" y1=\"{y}\" x2=\"{x2}\" y2=\"{y}\" stroke=\"#d9dee5\"/>\
         <text x=\"{tx}\" y=\"{ty}\" font-size=\"11\" text-anchor=\"end\" fill=\"#5b6676\">{max}</text>\
         <text x=\"{tx}\" y=\"{y}\" font-size=\"11\" text-anchor=\"end\" fill=\"#5b6676\">0</text>",
        y = 8 + plot_h,
        x2 = WIDTH - 8,
        tx = LEFT - 6,
        ty = 18,
    );
    for (i, label) in labels.iter().enumerate() {
        let x = f64::from(LEFT) + slot * (i as f64) + (slot - bar) / 2.0;
        let mut y = f64::from(8 + plot_h);
        for (k, s) in series.iter().enumerate() {
            let v = s.values.get(i).copied().unwrap_or(0);
            if v == 0 {
                continue;
            }
            let h = f64::from(plot_h) * (v as f64) / (max as f64);
            y -= h;
            let _ = write!(
                svg,
                "<rect x=\"{x:.1}\" y=\"{y:.1}\" width=\"{bar:.1}\" height=\"{h:.1}\" fill=\"{}\">\
                 <title>{}: {} {v}</title></rect>",
                colour(k),
                escape(label),
                escape(&s.name),
            );
        }
    }
    // A few bucket labels along the bottom, never crowded.
    let every = (labels.len() / 6).max(1);
    for (i, label) in labels.iter().enumerate().step_by(every) {
        let x = f64::from(LEFT) + slot * (i as f64) + slot / 2.0;
        let _ = write!(
            svg,
            "<text x=\"{x:.1}\" y=\"{}\" font-size=\"11\" text-anchor=\"middle\" fill=\"#5b6676\">{}</text>",
            HEIGHT - 6,
            escape(label)
        );
    }
    svg.push_str("</svg>");
    svg
}

/// Horizontal bars for named shares (0–100 %), labelled with the figure:
/// rates read side by side.
pub fn share_bars(title: &str, rows: &[(String, f64)]) -> String {
    let row_h = 26u32;
    let height = row_h * u32::try_from(rows.len()).unwrap_or(0).max(1) + 4;
    let label_w = 150u32;
    let plot_w = BARS_WIDTH - label_w - 60;
    let mut svg = String::new();
    let _ = write!(
        svg,
        r#"<svg viewBox="0 0 {BARS_WIDTH} {height}" role="img" aria-label="{}" xmlns="http://www.w3.org/2000/svg">"#,
        escape(title)
    );
    let mut y = 4u32;
    for (i, (name, share)) in rows.iter().enumerate() {
        let share = share.clamp(0.0, 100.0);
        let w = f64::from(plot_w) * share / 100.0;
        let _ = write!(
            svg,
            "<text x=\"{tx}\" y=\"{ty}\" font-size=\"12\" text-anchor=\"end\" fill=\"#1b2430\">{name}</text>\
             <rect x=\"{label_w}\" y=\"{y}\" width=\"{plot_w}\" height=\"18\" fill=\"#eef2f7\"/>\
             <rect x=\"{label_w}\" y=\"{y}\" width=\"{w:.1}\" height=\"18\" fill=\"{c}\"><title>{name}: {share:.1} %</title></rect>\
             <text x=\"{vx}\" y=\"{ty}\" font-size=\"12\" fill=\"#1b2430\">{share:.1} %</text>",
            tx = label_w - 8,
            ty = y + 13,
            name = escape(name),
            c = colour(i),
            vx = label_w + plot_w + 6,
        );
        y += row_h;
    }
    svg.push_str("</svg>");
    svg
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]
    use super::*;

    fn heights(svg: &str) -> Vec<f64> {
        svg.split("height=\"")
            .skip(1)
            .map(|rest| rest.split('"').next().unwrap().parse().unwrap())
            .collect()
    }

    #[test]
    fn stacked_bars_scale_to_the_tallest_total() {
        let labels = vec!["a".to_string(), "b".to_string()];
        let series = vec![
            Series {
                name: "rcs".into(),
                values: vec![2, 1],
            },
            Series {
                name: "portal".into(),
                values: vec![2, 0],
            },
        ];
        let svg = stacked_bars("share", &labels, &series);
        let plot_h = f64::from(HEIGHT - BOTTOM - 8);
        // Bars: a/rcs = 2/4, a/portal = 2/4, b/rcs = 1/4 of the plot.
        assert_eq!(
            heights(&svg),
            vec![plot_h / 2.0, plot_h / 2.0, plot_h / 4.0]
                .into_iter()
                .map(|h| (h * 10.0).round() / 10.0)
                .collect::<Vec<_>>()
        );
        assert!(svg.contains("<title>b: rcs 1</title>"));
    }

    #[test]
    fn an_empty_chart_still_draws_its_axis() {
        let svg = stacked_bars("none", &[], &[]);
        assert!(svg.starts_with("<svg") && svg.ends_with("</svg>"));
        assert!(heights(&svg).is_empty());
    }

    #[test]
    fn the_stylesheet_legend_classes_match_the_palette() {
        let css = include_str!("../../assets/console.css");
        for (i, c) in PALETTE.iter().enumerate() {
            assert!(css.contains(&format!(".c{i} {{ color: {c}; }}")), "{c}");
        }
    }

    #[test]
    fn tenant_names_are_escaped() {
        let svg = share_bars("rates", &[("<script>\"x\"".into(), 150.0)]);
        assert!(!svg.contains("<script>"));
        assert!(svg.contains("&lt;script&gt;&quot;x&quot;"));
        // A share is clamped to 100 %.
        assert!(svg.contains("100.0 %"));
    }
}

//! The HTML report's charts: false positives per rule and per corpus format,
//! and, with `--since-last`, what is new since the last run and the trend
//! over the last runs (inline SVG, no script needed to draw them).

use crate::util::escape::html as h;
use crate::verdict::report::{Finding, Report};
use std::collections::BTreeMap;
use std::fmt::Write;

/// Charts: false positives per rule, per corpus format.
pub(super) fn charts(out: &mut String, _r: &Report, all: &[&Finding]) {
    // Charts: false positives per rule, per corpus format.
    let mut per_rule: BTreeMap<String, usize> = BTreeMap::new();
    let mut per_format: BTreeMap<crate::corpus::format::Format, usize> = BTreeMap::new();
    for f in all
        .iter()
        .filter(|f| f.class != crate::verdict::report::Class::Fixed)
    {
        *per_rule.entry(f.rule.name()).or_default() += f.paths.len();
        *per_format.entry(f.format).or_default() += f.paths.len();
    }
    let _ = writeln!(
        out,
        "<h2>False positives per rule and per format</h2><div class=\"charts\">"
    );
    out.push_str(&bar_chart("chart-rules", "per rule (files)", &per_rule));
    let per_format: BTreeMap<String, usize> = per_format
        .into_iter()
        .map(|(f, n)| (f.to_string(), n))
        .collect();
    out.push_str(&bar_chart(
        "chart-formats",
        "per corpus format (files)",
        &per_format,
    ));
    let _ = writeln!(out, "</div>");
}

/// `--since-last`: what is new since the last run of these rules.
pub(super) fn since_last(out: &mut String, r: &Report, _all: &[&Finding]) {
    let Some(hs) = &r.history else {
        return;
    };
    let _ = writeln!(
        out,
        "<section id=\"since-last\"><h2>Since the last run</h2><ul>"
    );
    for l in crate::render::since_last_lines(hs) {
        let _ = writeln!(out, "<li>{}</li>", h(&l));
    }
    let _ = writeln!(out, "</ul>");
    if !hs.new_since_last.is_empty() {
        let _ = writeln!(
            out,
            "<table class=\"sortable\" id=\"new-since-last\"><thead><tr><th>rule</th><th>file</th><th>tier</th><th>class</th></tr></thead><tbody>"
        );
        for f in &hs.new_since_last {
            let _ = writeln!(
                out,
                "<tr><td>{}</td><td><code>{}</code></td><td>{}</td><td>{}{}</td></tr>",
                h(&f.rule()),
                h(&f.paths.join(", ")),
                f.tier.as_str(),
                f.class.as_str(),
                if f.excepted { " (excepted)" } else { "" }
            );
        }
        let _ = writeln!(out, "</tbody></table>");
    }
    let _ = writeln!(out, "</section>");
}

/// `--since-last`: false positives per run over the last runs of these
/// rules (all, per tier, and the rules with the most), as an SVG line
/// chart, and the per-rule counts as a table.
pub(super) fn trend(out: &mut String, r: &Report, _all: &[&Finding]) {
    let Some(hs) = &r.history else {
        return;
    };
    let runs = &hs.trend;
    if runs.is_empty() {
        return;
    }
    let mut totals: BTreeMap<String, usize> = BTreeMap::new();
    for run in runs {
        for (rule, n) in &run.by_rule {
            *totals.entry(rule.clone()).or_default() += n;
        }
    }
    let mut top: Vec<(&String, &usize)> = totals.iter().collect();
    top.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
    let top: Vec<&String> = top.into_iter().take(5).map(|(k, _)| k).collect();
    let series: Vec<(String, &str, bool, Vec<usize>)> = [
        (
            "all findings".to_string(),
            "#1b1f24",
            false,
            runs.iter().map(|x| x.findings).collect(),
        ),
        (
            "critical tier".to_string(),
            "#c62828",
            false,
            runs.iter()
                .map(|x| x.by_tier.get("critical").copied().unwrap_or(0))
                .collect(),
        ),
        (
            "standard tier".to_string(),
            "#b26a00",
            false,
            runs.iter()
                .map(|x| x.by_tier.get("standard").copied().unwrap_or(0))
                .collect(),
        ),
    ]
    .into_iter()
    .chain(
        top.iter()
            .zip(["#1565c0", "#6a1b9a", "#00838f", "#558b2f", "#8d6e63"])
            .map(|(rule, colour)| {
                (
                    format!("rule {rule}"),
                    colour,
                    true,
                    runs.iter()
                        .map(|x| x.by_rule.get(*rule).copied().unwrap_or(0))
                        .collect(),
                )
            }),
    )
    .collect();
    let max = series
        .iter()
        .flat_map(|s| s.3.iter().copied())
        .max()
        .unwrap_or(0)
        .max(1);
    let (w, ht, left, top_m, bottom) = (640.0, 260.0, 40.0, 20.0, 40.0);
    let plot_w = w - left - 20.0;
    let plot_h = ht - top_m - bottom;
    let x = |i: usize| {
        left + if runs.len() > 1 {
            plot_w * i as f64 / (runs.len() - 1) as f64
        } else {
            plot_w / 2.0
        }
    };
    let y = |n: usize| top_m + plot_h - plot_h * n as f64 / max as f64;
    let _ = writeln!(
        out,
        "<h2>Trend: false positives per run (last {} runs of these rules)</h2><div class=\"chart\"><svg id=\"chart-trend\" role=\"img\" aria-label=\"false positives per run\" width=\"{w}\" height=\"{}\" xmlns=\"http://www.w3.org/2000/svg\">",
        runs.len(),
        ht + 22.0 * series.len() as f64
    );
    // Axes, the scale, the run ids.
    let _ = write!(
        out,
        "<line x1=\"{left}\" y1=\"{top_m}\" x2=\"{left}\" y2=\"{}\" stroke=\"#8c959f\"/><line x1=\"{left}\" y1=\"{}\" x2=\"{}\" y2=\"{}\" stroke=\"#8c959f\"/><text x=\"{}\" y=\"{}\" font-size=\"11\" text-anchor=\"end\">{max}</text><text x=\"{}\" y=\"{}\" font-size=\"11\" text-anchor=\"end\">0</text>",
        top_m + plot_h,
        top_m + plot_h,
        left + plot_w,
        top_m + plot_h,
        left - 4.0,
        top_m + 4.0,
        left - 4.0,
        top_m + plot_h + 4.0
    );
    let step = runs.len().div_ceil(10).max(1);
    for (i, run) in runs.iter().enumerate() {
        if i % step == 0 || i + 1 == runs.len() {
            let _ = write!(
                out,
                "<text x=\"{:.1}\" y=\"{}\" font-size=\"10\" text-anchor=\"middle\">#{}</text>",
                x(i),
                top_m + plot_h + 14.0,
                run.id
            );
        }
    }
    for (k, (label, colour, dashed, values)) in series.iter().enumerate() {
        let points: Vec<String> = values
            .iter()
            .enumerate()
            .map(|(i, n)| format!("{:.1},{:.1}", x(i), y(*n)))
            .collect();
        let dash = if *dashed {
            " stroke-dasharray=\"5 3\""
        } else {
            ""
        };
        let _ = write!(
            out,
            "<polyline class=\"series\" data-series=\"{}\" fill=\"none\" stroke=\"{colour}\" stroke-width=\"2\"{dash} points=\"{}\"/>",
            h(label),
            points.join(" ")
        );
        for (i, n) in values.iter().enumerate() {
            let _ = write!(
                out,
                "<circle cx=\"{:.1}\" cy=\"{:.1}\" r=\"3\" fill=\"{colour}\"><title>run #{} ({}): {} {n}</title></circle>",
                x(i),
                y(*n),
                runs[i].id,
                h(&runs[i].at),
                h(label)
            );
        }
        let ly = ht + 22.0 * k as f64;
        let shown: String = label.chars().take(60).collect();
        let _ = write!(
            out,
            "<line x1=\"{left}\" y1=\"{}\" x2=\"{}\" y2=\"{}\" stroke=\"{colour}\" stroke-width=\"2\"{dash}/><text x=\"{}\" y=\"{}\" font-size=\"12\">{} (now {})</text>",
            ly - 4.0,
            left + 30.0,
            ly - 4.0,
            left + 38.0,
            ly,
            h(&shown),
            values.last().copied().unwrap_or(0)
        );
    }
    let _ = writeln!(out, "</svg></div>");
    // Per rule and run, newest runs last.
    let _ = write!(out, "<table id=\"trend-rules\"><thead><tr><th>rule</th>");
    for run in runs {
        let _ = write!(out, "<th title=\"{}\">#{}</th>", h(&run.at), run.id);
    }
    let _ = writeln!(out, "</tr></thead><tbody>");
    for rule in totals.keys() {
        let _ = write!(out, "<tr><td>{}</td>", h(rule));
        for run in runs {
            let _ = write!(
                out,
                "<td>{}</td>",
                run.by_rule.get(rule).copied().unwrap_or(0)
            );
        }
        let _ = writeln!(out, "</tr>");
    }
    let _ = writeln!(out, "</tbody></table>");
}

/// A horizontal bar chart as inline SVG.
fn bar_chart(id: &str, title: &str, data: &BTreeMap<String, usize>) -> String {
    let mut out = String::new();
    let max = data.values().copied().max().unwrap_or(0).max(1);
    let row = 22;
    let height = 30 + row * data.len().max(1);
    let _ = write!(
        out,
        "<div class=\"chart\"><svg id=\"{id}\" role=\"img\" aria-label=\"{}\" width=\"460\" height=\"{height}\" xmlns=\"http://www.w3.org/2000/svg\"><text x=\"0\" y=\"16\" font-size=\"14\" font-weight=\"700\">{}</text>",
        h(title),
        h(title)
    );
    if data.is_empty() {
        let _ = write!(
            out,
            "<text x=\"0\" y=\"40\" font-size=\"12\" fill=\"#57606a\">none</text>"
        );
    }
    for (i, (label, n)) in data.iter().enumerate() {
        let y = 30 + i * row;
        let w = (*n as f64 / max as f64 * 220.0).round().max(2.0);
        let shown: String = label.chars().take(28).collect();
        let _ = write!(
            out,
            "<text x=\"0\" y=\"{}\" font-size=\"12\">{}</text><rect x=\"190\" y=\"{}\" width=\"{w}\" height=\"16\" fill=\"#c62828\"/><text x=\"{}\" y=\"{}\" font-size=\"12\">{n}</text>",
            y + 12,
            h(&shown),
            y,
            195.0 + w,
            y + 12
        );
    }
    let _ = writeln!(out, "</svg></div>");
    out
}

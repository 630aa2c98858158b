//! Simple charts drawn on the server as SVG (the reports in the browser):
//! horizontal bars, each with an optional total behind it and an optional
//! mark (a required level). No script, no font download: the page's font
//! stack; every label escaped.

use std::fmt::Write as _;

/// One bar.
#[derive(Debug, Clone, PartialEq)]
pub struct Bar {
    /// What it is.
    pub label: String,
    /// Its value.
    pub value: f64,
    /// A total drawn lighter behind it (e.g. tasks due behind tasks done).
    pub total: Option<f64>,
    /// A mark across it (e.g. the required coverage).
    pub mark: Option<f64>,
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

fn num(v: f64, unit: &str) -> String {
    if unit == "%" {
        format!("{v:.1}%")
    } else if v.fract() == 0.0 {
        format!("{v:.0}")
    } else {
        format!("{v:.1}")
    }
}

/// A horizontal bar chart: `title`, one row per bar, values in `unit`
/// (`%`: the axis runs to 100).
pub fn bars(title: &str, bars: &[Bar], unit: &str) -> String {
    const LEFT: f64 = 220.0;
    const WIDTH: f64 = 640.0;
    const ROW: f64 = 26.0;
    let top = 40.0;
    let height = top + ROW * bars.len().max(1) as f64 + 30.0;
    let max = if unit == "%" {
        100.0
    } else {
        bars.iter()
            .map(|b| b.value.max(b.total.unwrap_or(0.0)).max(b.mark.unwrap_or(0.0)))
            .fold(0.0, f64::max)
            .max(1.0)
    };
    let x = |v: f64| LEFT + (v / max).clamp(0.0, 1.0) * (WIDTH - LEFT - 60.0);
    let mut s = String::new();
    let _ = write!(
        s,
        r##"<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {height}" width="{WIDTH}" height="{height}" role="img" aria-label="{t}" font-family="PingFang SC, Microsoft YaHei, Noto Sans CJK SC, WenQuanYi Micro Hei, sans-serif" font-size="13">
<title>{t}</title>
<rect width="100%" height="100%" fill="#ffffff"/>
<text x="12" y="24" font-size="15" font-weight="600" fill="#1d2430">{t}</text>
"##,
        t = esc(title)
    );
    if bars.is_empty() {
        let _ = write!(s, r##"<text x="{LEFT}" y="{}" fill="#5d6878">—</text>"##, top + 18.0);
    }
    for (i, b) in bars.iter().enumerate() {
        let y = top + ROW * i as f64;
        let _ = write!(
            s,
            r##"<text x="{lx}" y="{ty}" text-anchor="end" fill="#1d2430">{label}</text>"##,
            lx = LEFT - 8.0,
            ty = y + 16.0,
            label = esc(&b.label)
        );
        if let Some(t) = b.total {
            let _ = write!(
                s,
                r##"<rect x="{LEFT}" y="{y1}" width="{w:.1}" height="18" fill="#dbe3ee"/>"##,
                y1 = y + 3.0,
                w = x(t) - LEFT
            );
        }
        let _ = write!(
            s,
            r##"<rect x="{LEFT}" y="{y1}" width="{w:.1}" height="18" fill="#b3261e"><title>{label}: {v}</title></rect>"##,
            y1 = y + 3.0,
            w = (x(b.value) - LEFT).max(1.0),
            label = esc(&b.label),
            v = num(b.value, unit)
        );
        let shown = match b.total {
            Some(t) => format!("{} / {}", num(b.value, unit), num(t, unit)),
            None => num(b.value, unit),
        };
        let _ = write!(
            s,
            r##"<text x="{vx:.1}" y="{ty}" fill="#1d2430">{shown}</text>"##,
            vx = x(b.value.max(b.total.unwrap_or(0.0))) + 6.0,
            ty = y + 16.0
        );
        if let Some(m) = b.mark {
            let _ = write!(
                s,
                r##"<line x1="{mx:.1}" x2="{mx:.1}" y1="{y1}" y2="{y2}" stroke="#1d2430" stroke-width="2" stroke-dasharray="3 2"/>"##,
                mx = x(m),
                y1 = y + 1.0,
                y2 = y + 23.0
            );
        }
    }
    let _ = write!(
        s,
        r##"<line x1="{LEFT}" x2="{LEFT}" y1="{top}" y2="{y2}" stroke="#aeb6c2"/></svg>"##,
        y2 = height - 30.0
    );
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bars_are_drawn_escaped_and_to_scale() {
        let svg = bars(
            "覆盖率 <coverage>",
            &[
                Bar { label: "new_account SH01".into(), value: 50.0, total: None, mark: Some(100.0) },
                Bar { label: "a<b".into(), value: 100.0, total: None, mark: None },
            ],
            "%",
        );
        assert!(svg.starts_with("<svg") && svg.ends_with("</svg>"));
        assert!(svg.contains("覆盖率 &lt;coverage&gt;") && svg.contains("a&lt;b") && !svg.contains("a<b"));
        assert!(svg.contains("50.0%") && svg.contains("stroke-dasharray"));
        // 50 % is half the width of 100 %
        let widths: Vec<f64> = svg
            .match_indices("fill=\"#b3261e\"")
            .map(|(i, _)| {
                let head = &svg[..i];
                let w = head.rfind("width=\"").unwrap();
                head[w + 7..].split('"').next().unwrap().parse().unwrap()
            })
            .collect();
        assert_eq!(widths.len(), 2);
        assert!((widths[1] / widths[0] - 2.0).abs() < 0.01, "{widths:?}");
    }

    #[test]
    fn no_bars_still_make_a_chart() {
        let svg = bars("nothing", &[], "");
        assert!(svg.contains("<title>nothing</title>"));
    }
}

//! Charts drawn with plotters into SVG, by the same code on the server (first paint) and in
//! the browser (every live update). Each series' path carries `data-series`, `data-points`
//! and `data-last`; markers carry their explanation as a `<title>` (shown on hover) and every
//! chart has a text summary for screen readers.

use plotters::prelude::*;

/// One line of a chart (unix ms, value).
#[derive(Clone, Debug, PartialEq)]
pub struct Line {
    pub name: String,
    pub color: (u8, u8, u8),
    pub points: Vec<(i64, f64)>,
    /// Drawn as steps (replicas change at a decision and hold until the next).
    pub steps: bool,
}

/// A point in time worth a mark: a decision that changed replicas, an anomaly.
#[derive(Clone, Debug, PartialEq)]
pub struct Marker {
    pub at_ms: i64,
    pub value: f64,
    /// `decision` or `anomaly`.
    pub kind: String,
    pub text: String,
}

#[derive(Clone, Debug, Default, PartialEq)]
pub struct Chart {
    /// `metric` or `replicas`: names the chart for tests and styles.
    pub id: String,
    pub title: String,
    pub from_ms: i64,
    pub to_ms: i64,
    pub lines: Vec<Line>,
    /// Horizontal lines: target, activation threshold.
    pub levels: Vec<(String, f64, (u8, u8, u8))>,
    /// A band between two series (the forecast's mean and upper quantile).
    pub band: Option<(Vec<(i64, f64)>, Vec<(i64, f64)>)>,
    pub markers: Vec<Marker>,
}

pub const BLUE: (u8, u8, u8) = (31, 119, 180);
pub const ORANGE: (u8, u8, u8) = (214, 97, 10);
pub const GREEN: (u8, u8, u8) = (36, 138, 36);
pub const PURPLE: (u8, u8, u8) = (128, 82, 176);
pub const GREY: (u8, u8, u8) = (112, 112, 112);
pub const RED: (u8, u8, u8) = (200, 30, 30);
pub const TEAL: (u8, u8, u8) = (0, 128, 128);
/// Colours given to metric series in turn.
pub const PALETTE: [(u8, u8, u8); 4] = [BLUE, TEAL, PURPLE, GREEN];

#[cfg(all(feature = "ssr", not(target_arch = "wasm32")))]
fn font() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let _ = plotters::style::register_font("sans-serif", FontStyle::Normal, dejavu::sans::regular());
    });
}

#[cfg(not(all(feature = "ssr", not(target_arch = "wasm32"))))]
fn font() {}

fn hex((r, g, b): (u8, u8, u8)) -> String {
    format!("#{r:02X}{g:02X}{b:02X}")
}

/// `HH:MM` (UTC) of a unix-ms time, for the x axis (no date library in the browser build).
pub fn clock(ms: i64) -> String {
    let secs = ms.div_euclid(1000).rem_euclid(86_400);
    format!("{:02}:{:02}", secs / 3600, secs % 3600 / 60)
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

/// Replicas as steps: each value holds until the next point (and up to `end`).
fn as_steps(points: &[(i64, f64)], end: i64) -> Vec<(i64, f64)> {
    let mut out = Vec::with_capacity(points.len() * 2);
    for (i, &(t, v)) in points.iter().enumerate() {
        if i > 0 {
            out.push((t, points[i - 1].1));
        }
        out.push((t, v));
    }
    if let Some(&(t, v)) = points.last() {
        if end > t {
            out.push((end, v));
        }
    }
    out
}

/// The chart as an SVG document of `size` pixels.
pub fn svg(chart: &Chart, size: (u32, u32)) -> String {
    font();
    let mut out = String::new();
    let mut marks = Vec::new();
    let drawn = draw(chart, size, &mut out, &mut marks);
    if let Err(e) = drawn {
        return format!(
            r#"<svg xmlns="http://www.w3.org/2000/svg" width="{}" height="{}" role="img" aria-label="{}"><text x="10" y="20">chart unavailable: {}</text></svg>"#,
            size.0,
            size.1,
            escape(&chart.title),
            escape(&e)
        );
    }
    annotate(chart, out, &marks)
}

fn draw(chart: &Chart, size: (u32, u32), out: &mut String, marks: &mut Vec<(i32, i32)>) -> Result<(), String> {
    let err = |e: &dyn std::fmt::Display| e.to_string();
    let root = SVGBackend::with_string(out, size).into_drawing_area();
    let (from, to) = (chart.from_ms, chart.to_ms.max(chart.from_ms + 1));
    let top = chart
        .lines
        .iter()
        .flat_map(|l| l.points.iter().map(|p| p.1))
        .chain(chart.levels.iter().map(|l| l.1))
        .chain(chart.band.iter().flat_map(|(_, upper)| upper.iter().map(|p| p.1)))
        .chain(chart.markers.iter().map(|m| m.value))
        .filter(|v| v.is_finite())
        .fold(1.0f64, f64::max)
        * 1.1;
    let mut c = ChartBuilder::on(&root)
        .margin(8)
        .x_label_area_size(24)
        .y_label_area_size(44)
        .build_cartesian_2d(from..to, 0.0..top)
        .map_err(|e| err(&e))?;
    c.configure_mesh()
        .light_line_style(RGBColor(230, 230, 230))
        .x_labels(6)
        .y_labels(5)
        .x_label_formatter(&|ms| clock(*ms))
        .label_style(("sans-serif", 12).into_font().color(&RGBColor(60, 60, 60)))
        .draw()
        .map_err(|e| err(&e))?;
    if let Some((mean, upper)) = &chart.band {
        let (r, g, b) = ORANGE;
        let mut area: Vec<(i64, f64)> = upper.clone();
        area.extend(mean.iter().rev().copied());
        if area.len() >= 3 {
            c.draw_series(std::iter::once(Polygon::new(area, RGBColor(r, g, b).mix(0.18)))).map_err(|e| err(&e))?;
        }
    }
    for (_, value, (r, g, b)) in &chart.levels {
        c.draw_series(LineSeries::new([(from, *value), (to, *value)], ShapeStyle::from(&RGBColor(*r, *g, *b)).stroke_width(1)))
            .map_err(|e| err(&e))?;
    }
    for line in &chart.lines {
        let (r, g, b) = line.color;
        let points = if line.steps { as_steps(&line.points, to) } else { line.points.clone() };
        c.draw_series(LineSeries::new(points, ShapeStyle::from(&RGBColor(r, g, b)).stroke_width(2))).map_err(|e| err(&e))?;
    }
    for m in &chart.markers {
        marks.push(c.backend_coord(&(m.at_ms.clamp(from, to), m.value.clamp(0.0, top))));
    }
    root.present().map_err(|e| err(&e))?;
    Ok(())
}

/// Names each series' path (plotters draws a line series as one `<polyline>` in its colour,
/// and every series has its own), labels the SVG, and adds the markers with their `<title>`.
fn annotate(chart: &Chart, mut svg: String, marks: &[(i32, i32)]) -> String {
    let tag = |color: (u8, u8, u8)| format!(r#"<polyline fill="none" opacity="1" stroke="{}""#, hex(color));
    for (name, value, color) in &chart.levels {
        let with = format!(r#"<polyline data-level="{}" data-value="{value}" fill="none" opacity="1" stroke="{}""#, escape(name), hex(*color));
        svg = svg.replacen(&tag(*color), &with, 1);
    }
    for line in &chart.lines {
        let last = line.points.last().map(|p| p.1.to_string()).unwrap_or_default();
        let with = format!(
            r#"<polyline data-series="{}" data-points="{}" data-last="{last}" fill="none" opacity="1" stroke="{}""#,
            escape(&line.name),
            line.points.len(),
            hex(line.color)
        );
        svg = if svg.contains(&tag(line.color)) {
            svg.replacen(&tag(line.color), &with, 1)
        } else {
            // Nothing to draw yet: an empty path still says the series is there.
            insert_before_end(svg, &format!(r#"{with} points=""/>"#))
        };
    }
    let mut g = String::from(r#"<g class="markers">"#);
    for (m, (x, y)) in chart.markers.iter().zip(marks) {
        let color = if m.kind == "anomaly" || m.kind == "rejected" { RED } else { GREY };
        g.push_str(&format!(
            r#"<circle class="marker {}" data-at="{}" cx="{x}" cy="{y}" r="5" fill="{}" stroke="white" tabindex="0"><title>{} {}</title></circle>"#,
            escape(&m.kind),
            m.at_ms,
            hex(color),
            clock(m.at_ms),
            escape(&m.text)
        ));
    }
    g.push_str("</g>");
    svg = insert_before_end(svg, &g);
    svg.replacen("<svg ", &format!(r#"<svg role="img" aria-label="{}" data-chart="{}" "#, escape(&chart.title), escape(&chart.id)), 1)
}

fn insert_before_end(mut svg: String, what: &str) -> String {
    match svg.rfind("</svg>") {
        Some(at) => svg.insert_str(at, what),
        None => svg.push_str(what),
    }
    svg
}

/// The chart in words: each series' last value and peak, the levels, how many markers.
pub fn summary(chart: &Chart) -> String {
    let mut parts: Vec<String> = chart
        .lines
        .iter()
        .map(|l| match l.points.last() {
            Some(&(_, last)) => {
                let peak = l.points.iter().map(|p| p.1).fold(f64::MIN, f64::max);
                format!("{} now {}, peak {}", l.name, num(last), num(peak))
            }
            None => format!("{}: no readings yet", l.name),
        })
        .collect();
    parts.extend(chart.levels.iter().map(|(name, v, _)| format!("{name} {}", num(*v))));
    let mut kinds: Vec<(&str, usize)> = Vec::new();
    for m in &chart.markers {
        match kinds.iter_mut().find(|(k, _)| *k == m.kind) {
            Some((_, n)) => *n += 1,
            None => kinds.push((&m.kind, 1)),
        }
    }
    if kinds.is_empty() {
        parts.push("no markers".into());
    } else {
        parts.push(format!("marked: {}", kinds.iter().map(|(k, n)| format!("{n} {k}")).collect::<Vec<_>>().join(", ")));
    }
    format!("{} from {} to {} UTC: {}.", chart.title, clock(chart.from_ms), clock(chart.to_ms), parts.join("; "))
}

/// A number as the dashboard shows it: whole numbers bare, others to one decimal.
pub fn num(v: f64) -> String {
    if v.fract() == 0.0 && v.abs() < 1e15 { format!("{v:.0}") } else { format!("{v:.1}") }
}

/// A small line without axes for an overview row (hand-made SVG: a sparkline is one path).
pub fn sparkline(points: &[(i64, f64)], size: (u32, u32)) -> String {
    let (w, h) = (size.0 as f64, size.1 as f64);
    let (Some(first), Some(last)) = (points.first(), points.last()) else {
        return format!(r#"<svg xmlns="http://www.w3.org/2000/svg" width="{}" height="{}" aria-hidden="true"></svg>"#, size.0, size.1);
    };
    let span = (last.0 - first.0).max(1) as f64;
    let top = points.iter().map(|p| p.1).fold(1.0f64, f64::max);
    // Whole pixels (a sparkline is 120 px wide): integers format far faster than `{:.1}`,
    // which matters with a hundred rows of sixty points on one page.
    use std::fmt::Write;
    let mut out = String::with_capacity(200 + points.len() * 8);
    let _ = write!(
        out,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{}" height="{}" aria-hidden="true"><polyline data-series="spark" data-points="{}" fill="none" stroke="{}" stroke-width="1.5" points=""#,
        size.0,
        size.1,
        points.len(),
        hex(BLUE)
    );
    for (i, (t, v)) in points.iter().enumerate() {
        let x = ((*t - first.0) as f64 / span * (w - 2.0) + 1.0).round() as i64;
        let y = (h - 1.0 - v / top * (h - 2.0)).round() as i64;
        let _ = write!(out, "{}{x},{y}", if i == 0 { "" } else { " " });
    }
    out.push_str(r#""/></svg>"#);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn steps_hold_each_value_until_the_next_point() {
        assert_eq!(as_steps(&[(0, 1.0), (10, 3.0)], 20), vec![(0, 1.0), (10, 1.0), (10, 3.0), (20, 3.0)]);
        assert!(as_steps(&[], 5).is_empty());
    }

    #[test]
    fn clock_is_utc_hours_and_minutes() {
        assert_eq!(clock(0), "00:00");
        assert_eq!(clock((13 * 3600 + 7 * 60 + 59) * 1000), "13:07");
    }

    #[cfg(feature = "ssr")]
    #[test]
    fn the_svg_names_each_series_level_and_marker() {
        let chart = Chart {
            id: "metric".into(),
            title: "queue <depth>".into(),
            from_ms: 0,
            to_ms: 60_000,
            lines: vec![
                Line { name: "depth".into(), color: BLUE, points: vec![(0, 2.0), (30_000, 9.0), (60_000, 4.0)], steps: false },
                Line { name: "empty".into(), color: TEAL, points: vec![], steps: false },
            ],
            levels: vec![("target".into(), 5.0, GREY)],
            band: Some((vec![(0, 1.0), (60_000, 2.0)], vec![(0, 3.0), (60_000, 4.0)])),
            markers: vec![Marker { at_ms: 30_000, value: 9.0, kind: "decision".into(), text: "scaled 1 → 3 & more".into() }],
        };
        let svg = svg(&chart, (400, 200));
        assert!(svg.starts_with("<svg role=\"img\" aria-label=\"queue &lt;depth&gt;\" data-chart=\"metric\" "), "{}", &svg[..200]);
        assert!(svg.contains(r#"data-series="depth" data-points="3" data-last="4""#), "{svg}");
        assert!(svg.contains(r#"data-series="empty" data-points="0""#), "{svg}");
        assert!(svg.contains(r#"data-level="target" data-value="5""#), "{svg}");
        assert!(svg.contains("<title>00:00 scaled 1 → 3 &amp; more</title>"), "{svg}");
        assert_eq!(svg.matches("data-series=").count(), 2);
        assert!(!svg.contains("chart unavailable"), "{svg}");
    }

    #[test]
    fn summary_names_each_series() {
        let chart = Chart {
            id: "metric".into(),
            title: "queue".into(),
            from_ms: 0,
            to_ms: 60_000,
            lines: vec![Line { name: "depth".into(), color: BLUE, points: vec![(0, 2.0), (1, 7.5)], steps: false }],
            levels: vec![("target".into(), 5.0, GREY)],
            ..Default::default()
        };
        assert_eq!(summary(&chart), "queue from 00:00 to 00:01 UTC: depth now 7.5, peak 7.5; target 5; no markers.");
    }
}

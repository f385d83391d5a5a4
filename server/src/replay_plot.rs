//! `swell replay --out DIR`: the replay drawn with plotters, as SVG and PNG — the load and
//! each policy's ready capacity on top, each policy's replicas below, broken readings (the
//! anomaly guard's findings) marked in red.

use std::path::Path;

use engine::predict::compare::Report;
use engine::predict::replay::Point;
use plotters::coord::Shift;
use plotters::prelude::*;

/// Points drawn per line: a month of 5-second polls is reduced to the peak of each bucket.
const WIDTH_POINTS: usize = 1_600;
const SIZE: (u32, u32) = (1_600, 900);
const COLORS: [RGBColor; 5] = [RGBColor(31, 119, 180), RGBColor(44, 160, 44), RGBColor(255, 127, 14), RGBColor(148, 103, 189), RGBColor(140, 86, 75)];

fn font() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let _ = plotters::style::register_font("sans-serif", FontStyle::Normal, dejavu::sans::regular());
    });
}

/// The peak of every bucket of `points`, by `value`.
fn peaks(points: &[Point], value: impl Fn(&Point) -> f64) -> Vec<(i64, f64)> {
    let per = points.len().div_ceil(WIDTH_POINTS).max(1);
    points.chunks(per).map(|c| (c[0].t, c.iter().map(&value).fold(f64::MIN, f64::max))).collect()
}

/// Writes `replay.svg` and `replay.png` into `dir`; returns their paths.
pub fn write(dir: &Path, title: &str, report: &Report, capacity: f64) -> Result<Vec<std::path::PathBuf>, String> {
    font();
    std::fs::create_dir_all(dir).map_err(|e| format!("--out {}: {e}", dir.display()))?;
    let (svg, png) = (dir.join("replay.svg"), dir.join("replay.png"));
    draw(SVGBackend::new(&svg, SIZE).into_drawing_area(), title, report, capacity).map_err(|e| format!("--out {}: {e}", svg.display()))?;
    draw(BitMapBackend::new(&png, SIZE).into_drawing_area(), title, report, capacity).map_err(|e| format!("--out {}: {e}", png.display()))?;
    Ok(vec![svg, png])
}

fn draw<DB: DrawingBackend>(root: DrawingArea<DB, Shift>, title: &str, report: &Report, capacity: f64) -> Result<(), String>
where
    DB::ErrorType: 'static,
{
    let e = |e: DrawingAreaErrorKind<DB::ErrorType>| e.to_string();
    root.fill(&WHITE).map_err(e)?;
    let shown: Vec<_> = report.policies.iter().filter(|p| !p.timeline.is_empty()).take(COLORS.len()).collect();
    let Some(first) = shown.first() else { return Err("nothing was replayed".into()) };
    let (t0, t1) = (first.timeline[0].t, first.timeline.last().map_or(first.timeline[0].t + 1, |p| p.t + 1));
    let load = peaks(&first.timeline, |p| p.load);
    let top = shown.iter().flat_map(|p| p.timeline.iter().map(|x| (x.ready as f64 * capacity).max(x.load))).fold(1.0, f64::max) * 1.05;
    let most = shown.iter().flat_map(|p| p.timeline.iter().map(|x| x.replicas)).max().unwrap_or(1).max(1) as f64 * 1.1;
    let (upper, lower) = root.split_vertically(SIZE.1 * 11 / 20);
    let hour = |t: &i64| chrono::DateTime::from_timestamp(*t, 0).map(|d| d.format("%m-%d %H:%M").to_string()).unwrap_or_default();

    let mut chart = ChartBuilder::on(&upper)
        .caption(format!("{title}: load and ready capacity"), ("sans-serif", 22))
        .margin(10)
        .x_label_area_size(28)
        .y_label_area_size(70)
        .build_cartesian_2d(t0..t1, 0.0..top)
        .map_err(e)?;
    chart.configure_mesh().x_labels(8).x_label_formatter(&hour).y_desc("load").draw().map_err(e)?;
    chart.draw_series(LineSeries::new(load, BLACK.stroke_width(2))).map_err(e)?.label("load").legend(|(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], BLACK));
    for (p, color) in shown.iter().zip(COLORS) {
        let ready = peaks(&p.timeline, |x| x.ready as f64 * capacity);
        chart.draw_series(LineSeries::new(ready, color)).map_err(e)?.label(format!("{} (ready capacity)", p.name)).legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], color));
    }
    let broken: Vec<(i64, f64)> = first.timeline.iter().filter(|p| p.anomaly).map(|p| (p.t, p.load.min(top))).collect();
    if !broken.is_empty() {
        chart.draw_series(broken.into_iter().map(|c| Circle::new(c, 3, RED.filled()))).map_err(e)?.label("broken reading").legend(|(x, y)| Circle::new((x + 10, y), 3, RED.filled()));
    }
    chart.configure_series_labels().position(SeriesLabelPosition::UpperLeft).background_style(WHITE.mix(0.85)).border_style(BLACK).draw().map_err(e)?;

    let mut chart = ChartBuilder::on(&lower)
        .caption("replicas", ("sans-serif", 20))
        .margin(10)
        .x_label_area_size(28)
        .y_label_area_size(70)
        .build_cartesian_2d(t0..t1, 0.0..most)
        .map_err(e)?;
    chart.configure_mesh().x_labels(8).x_label_formatter(&hour).y_desc("replicas").draw().map_err(e)?;
    for (p, color) in shown.iter().zip(COLORS) {
        let replicas = peaks(&p.timeline, |x| x.replicas as f64);
        chart.draw_series(LineSeries::new(replicas, color)).map_err(e)?.label(p.name.clone()).legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], color));
    }
    chart.configure_series_labels().position(SeriesLabelPosition::UpperLeft).background_style(WHITE.mix(0.85)).border_style(BLACK).draw().map_err(e)?;
    root.present().map_err(e)
}

//! `swell replay`: a ScaledObject manifest over a recorded trace, against KEDA's defaults and
//! the best reactive setting of a sweep; a table (or `--format json`) of under-provisioned
//! minutes, replica-minutes, actions and forecast error, and with `--out` the plots.

use std::path::PathBuf;

use engine::predict::compare::{Report, compare};
use engine::predict::features::Series;
use engine::predict::replay::Setup;
use engine::predict::trace_csv::{Columns, read};
use engine::spec::ScaledObjectSpec;

#[derive(clap::Args, Clone, Debug)]
pub struct ReplayArgs {
    /// CSV with a header: a time column (RFC 3339 or unix seconds) and a value column.
    #[arg(long)]
    trace: PathBuf,
    #[arg(long)]
    time_column: Option<String>,
    #[arg(long)]
    value_column: Option<String>,
    /// Seconds per row (when there is no time column) and per slot.
    #[arg(long)]
    step: Option<i64>,
    /// The ScaledObject manifest (Swell's or KEDA's; its spec is used as it is).
    #[arg(long)]
    object: PathBuf,
    /// Load one ready replica serves, in the trace's units (default: the trigger's target).
    #[arg(long)]
    capacity_per_replica: Option<f64>,
    /// Seconds a new pod takes to be ready.
    #[arg(long, default_value_t = 60.0)]
    startup: f64,
    /// Replay from this time (RFC 3339 or unix seconds; default: --train-until).
    #[arg(long)]
    from: Option<String>,
    #[arg(long)]
    to: Option<String>,
    /// Forecasters learn from what is before this time (default: the first 70 %).
    #[arg(long)]
    train_until: Option<String>,
    /// `table` (default) or `json`.
    #[arg(long, default_value = "table")]
    format: String,
    /// Choose the predictive policy's quantile and target on the training part alone (its
    /// last quarter replayed against the reactive baselines) before the test part.
    #[arg(long)]
    tune: bool,
    /// Writes replay.svg and replay.png (load, ready capacity and replicas per policy) here.
    #[arg(long)]
    out: Option<PathBuf>,
}

fn slot_of(series: &Series, flag: &str, value: &str) -> Result<usize, String> {
    let t = chrono::DateTime::parse_from_rfc3339(value.trim())
        .map(|t| t.timestamp())
        .or_else(|_| value.trim().parse::<i64>())
        .map_err(|_| format!("--{flag} {value:?}: give RFC 3339 (1995-08-01T00:00:00-04:00) or unix seconds"))?;
    let slot = (t - series.start).div_euclid(series.step);
    if slot < 0 || slot as usize > series.len() {
        return Err(format!("--{flag} {value}: outside the trace ({} to {})", fmt_time(series.start), fmt_time(series.time(series.len()))));
    }
    Ok(slot as usize)
}

fn fmt_time(t: i64) -> String {
    chrono::DateTime::from_timestamp(t, 0).map(|t| t.to_rfc3339()).unwrap_or_default()
}

/// The spec of a ScaledObject manifest (or of a bare spec).
fn spec_of(path: &std::path::Path) -> Result<ScaledObjectSpec, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("--object {}: {e}", path.display()))?;
    let doc: serde_json::Value = serde_saphyr::from_str(&text).map_err(|e| format!("--object {}: not YAML: {e}", path.display()))?;
    let spec = doc.get("spec").cloned().unwrap_or(doc);
    serde_json::from_value(spec).map_err(|e| format!("--object {}: spec: {e}", path.display()))
}

pub fn run(args: &ReplayArgs) -> Result<(), String> {
    let text = std::fs::read_to_string(&args.trace).map_err(|e| format!("--trace {}: {e}", args.trace.display()))?;
    let name = args.trace.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let series = read(&name, &text, &Columns { time: args.time_column.clone(), value: args.value_column.clone(), step: args.step }).map_err(|e| e.to_string())?;
    let spec = spec_of(&args.object)?;
    spec.validate().map_err(|e| format!("--object: {e}"))?;
    let train_until = match &args.train_until {
        Some(v) => slot_of(&series, "train-until", v)?,
        None => series.len() * 7 / 10,
    };
    let from = args.from.as_deref().map(|v| slot_of(&series, "from", v)).transpose()?.unwrap_or(train_until);
    let to = args.to.as_deref().map(|v| slot_of(&series, "to", v)).transpose()?.unwrap_or(series.len());
    if from >= to {
        return Err(format!("--from {} is not before --to {}", fmt_time(series.time(from)), fmt_time(series.time(to))));
    }
    if from < train_until {
        return Err("--from is before --train-until: the replayed part must not be learned from".into());
    }
    let capacity = match args.capacity_per_replica {
        Some(c) if c > 0.0 => c,
        Some(c) => return Err(format!("--capacity-per-replica {c} must be above 0")),
        None => engine::predict::replay::metric_spec(&spec).map_err(|e| e.to_string())?.target,
    };
    let setup = Setup { capacity, startup: args.startup, range: from..to, initial: spec.min_replica_count.max(1) };
    // A spinner on a terminal; plain lines when stderr is a file or a pipe.
    use std::io::IsTerminal;
    let bar = std::io::stderr().is_terminal().then(|| {
        let b = indicatif::ProgressBar::new_spinner().with_style(indicatif::ProgressStyle::with_template("{spinner} swell replay: {msg} ({elapsed})").expect("template"));
        b.enable_steady_tick(std::time::Duration::from_millis(120));
        b
    });
    let progress = |what: &str| match &bar {
        Some(b) => b.set_message(what.to_string()),
        None => eprintln!("swell replay: {what}…"),
    };
    let report = compare(&series, &spec, &setup, 0..train_until, args.tune, &progress);
    if let Some(b) = &bar {
        b.finish_and_clear();
    }
    let report = report.map_err(|e| e.to_string())?;
    if let Some(dir) = &args.out {
        progress("drawing");
        for path in crate::replay_plot::write(dir, &name, &report, capacity)? {
            eprintln!("swell replay: wrote {}", path.display());
        }
    }
    match args.format.as_str() {
        "json" => {
            let trace = serde_json::json!({"file": name, "step": series.step, "slots": series.len(), "from": fmt_time(series.time(from)), "to": fmt_time(series.time(to)),
                "train_until": fmt_time(series.time(train_until)), "capacity_per_replica": capacity, "startup": args.startup});
            println!("{}", serde_json::json!({"policies": report.policies, "best_reactive": report.best_reactive, "forecasters": report.forecasters, "tuned": report.tuned, "trace": trace}));
        }
        "table" => print!("{}", table(&report, &name, &series, from, to)),
        other => return Err(format!("--format {other:?}: table or json")),
    }
    Ok(())
}

fn table(r: &Report, name: &str, s: &Series, from: usize, to: usize) -> String {
    let mut out = format!("{name}: {} → {} ({} slots of {} s)\n", fmt_time(s.time(from)), fmt_time(s.time(to)), to - from, s.step);
    out += &format!("{:<52} {:>14} {:>16} {:>8} {:>10} {:>8}\n", "policy", "under-prov min", "replica-minutes", "actions", "MAE", "MAPE %");
    for p in &r.policies {
        let best = if p.name == r.best_reactive { " (best reactive)" } else { "" };
        let opt = |v: Option<f64>, d: usize| v.map_or("-".to_string(), |v| format!("{v:.d$}"));
        out += &format!("{:<52} {:>14.1} {:>16.0} {:>8} {:>10} {:>8}\n", format!("{}{best}", p.name), p.under_provisioned_minutes, p.replica_minutes, p.actions, opt(p.mae, 1), opt(p.mape, 1));
    }
    if let Some(t) = &r.tuned {
        out += &format!("tuned: {}\n", t.note);
    }
    out += "forecast error at the horizon on the replayed part:\n";
    for (f, sc) in &r.forecasters {
        out += &format!("  {f:<22} MAE {:>10.1}   MAPE {:>6.1} %   ({} points)\n", sc.mae, sc.mape, sc.points);
    }
    out
}

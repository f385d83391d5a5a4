//! Figures read from the engine's OpenMetrics text (`engine.metrics().encode()`), for the benchmarks.

/// Reads a counter or histogram sample from the OpenMetrics text.
pub fn sample(text: &str, name: &str) -> f64 {
    text.lines().find(|l| l.starts_with(name) && l[name.len()..].starts_with(' ')).and_then(|l| l.split_whitespace().nth(1)).and_then(|v| v.parse().ok()).unwrap_or(0.0)
}

/// The smallest bucket bound below which `q` of the histogram's samples fall.
pub fn quantile(text: &str, name: &str, q: f64) -> f64 {
    let total = sample(text, &format!("{name}_count"));
    for line in text.lines().filter(|l| l.starts_with(&format!("{name}_bucket{{"))) {
        let le: f64 = line.split("le=\"").nth(1).and_then(|r| r.split('"').next()).and_then(|v| v.parse().ok()).unwrap_or(f64::INFINITY);
        let count: f64 = line.split_whitespace().nth(1).and_then(|v| v.parse().ok()).unwrap_or(0.0);
        if count >= q * total {
            return le;
        }
    }
    f64::INFINITY
}

/// The sum of a counter over all its label sets.
pub fn sum(text: &str, name: &str) -> f64 {
    text.lines()
        .filter(|l| l.strip_prefix(name).is_some_and(|rest| rest.starts_with(' ') || rest.starts_with('{')))
        .filter_map(|l| l.rsplit_once(' ')?.1.parse::<f64>().ok())
        .sum()
}

//! deploy/monitoring against the real thing: `promtool check rules` passes on the alert rules,
//! and every query of the Grafana dashboard and of the alert rules (an alert's without its
//! threshold) returns series from a real Prometheus (end2end/services.sh) scraping a running
//! `swell demo` — each query narrowed to this test's Swell by its target label.

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

fn monitoring(file: &str) -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/monitoring").join(file)
}

/// `expr` with `{test="label"}` on every swell_ metric, so only this test's Swell answers.
fn narrowed(expr: &str, label: &str) -> String {
    let mut out = String::new();
    let mut rest = expr;
    while let Some(at) = rest.find("swell_") {
        let boundary = at == 0 || !rest.as_bytes()[at - 1].is_ascii_alphanumeric() && rest.as_bytes()[at - 1] != b'_';
        let len = rest[at..].find(|c: char| !(c.is_ascii_alphanumeric() || c == '_')).unwrap_or(rest.len() - at);
        out.push_str(&rest[..at + len]);
        rest = &rest[at + len..];
        if !boundary {
            continue;
        }
        match rest.strip_prefix('{') {
            Some(after) => {
                out.push_str(&format!("{{test=\"{label}\","));
                rest = after;
            }
            None => out.push_str(&format!("{{test=\"{label}\"}}")),
        }
    }
    out.push_str(rest);
    out
}

/// An alert's query: its expression without the trailing `<comparison> <number>`.
fn query_of_alert(expr: &str) -> String {
    let expr = expr.trim();
    for op in [" >= ", " <= ", " == ", " != ", " > ", " < "] {
        if let Some((query, threshold)) = expr.rsplit_once(op) {
            if threshold.trim().parse::<f64>().is_ok() {
                return query.trim().to_string();
            }
        }
    }
    panic!("alert expression {expr:?} is not `<query> <comparison> <number>`");
}

/// How many series `query` returns.
fn series(url: &str, query: &str) -> Result<usize, String> {
    let out = std::process::Command::new("curl")
        .args(["-sS", "--max-time", "10", "--get", "--data-urlencode"])
        .arg(format!("query={query}"))
        .arg(format!("{url}/api/v1/query"))
        .output()
        .map_err(|e| e.to_string())?;
    let body: serde_json::Value = serde_json::from_slice(&out.stdout).map_err(|e| format!("{e}: {}", String::from_utf8_lossy(&out.stdout)))?;
    if body["status"] != "success" {
        return Err(format!("{query}: {body}"));
    }
    Ok(body["data"]["result"].as_array().map_or(0, Vec::len))
}

#[test]
fn every_dashboard_and_alert_query_returns_series_from_a_running_swell() {
    // promtool (Debian's prometheus package) checks the rule file.
    let check = std::process::Command::new("promtool").arg("check").arg("rules").arg(monitoring("alerts.yaml")).output();
    match check {
        Ok(out) => assert!(out.status.success(), "promtool check rules: {}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr)),
        Err(e) => assert!(std::env::var("CI").map_or(true, |v| v != "true"), "CI=true needs promtool: {e}"),
    }
    let Some((url, targets)) = common::prometheus() else { return };

    let rules: serde_json::Value = serde_saphyr::from_str(&std::fs::read_to_string(monitoring("alerts.yaml")).unwrap()).unwrap();
    let mut queries: Vec<(String, String)> = Vec::new();
    for rule in rules["groups"].as_array().unwrap().iter().flat_map(|g| g["rules"].as_array().unwrap()) {
        let name = rule["alert"].as_str().expect("every rule is an alert").to_string();
        queries.push((format!("alert {name}"), query_of_alert(rule["expr"].as_str().unwrap())));
    }
    let dashboard: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(monitoring("grafana-dashboard.json")).unwrap()).unwrap();
    for panel in dashboard["panels"].as_array().unwrap() {
        let targets = panel["targets"].as_array().unwrap_or_else(|| panic!("panel {} has no query", panel["title"]));
        for t in targets {
            // Grafana's rate window; Prometheus here scrapes every second.
            queries.push((format!("panel {}", panel["title"]), t["expr"].as_str().unwrap().replace("$__rate_interval", "1m")));
        }
    }
    assert!(queries.len() >= 20, "{} queries", queries.len());

    let demo = common::Demo::start();
    let label = format!("m{}", demo.port);
    let target_file = Path::new(&targets).join(format!("{label}.json"));
    std::fs::write(&target_file, serde_json::json!([{"targets": [format!("127.0.0.1:{}", demo.port)], "labels": {"test": label}}]).to_string()).unwrap();

    // Every query answers once Prometheus has a few scrapes and the demo's model is in use.
    let deadline = Instant::now() + Duration::from_secs(90);
    let mut empty: Vec<String>;
    loop {
        empty = Vec::new();
        for (what, query) in &queries {
            match series(&url, &narrowed(query, &label)) {
                Ok(n) if n > 0 => {}
                Ok(_) => empty.push(format!("{what}: {query}")),
                Err(e) => panic!("{what}: Prometheus refused the query: {e}"),
            }
        }
        if empty.is_empty() || Instant::now() > deadline {
            break;
        }
        std::thread::sleep(Duration::from_secs(1));
    }
    let _ = std::fs::remove_file(&target_file);
    assert!(empty.is_empty(), "queries without series from a running Swell:\n{}", empty.join("\n"));
}

#[test]
fn queries_are_narrowed_to_one_target_and_alerts_lose_only_their_threshold() {
    assert_eq!(narrowed("max(swell_leader) < 1", "t"), "max(swell_leader{test=\"t\"}) < 1");
    assert_eq!(narrowed("rate(swell_webhook_requests_total{outcome!=\"accepted\"}[5m])", "t"), "rate(swell_webhook_requests_total{test=\"t\",outcome!=\"accepted\"}[5m])");
    assert_eq!(query_of_alert("sum by (le) (rate(x[5m])) > 0.1"), "sum by (le) (rate(x[5m]))");
}

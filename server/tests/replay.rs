//! `swell replay` end to end on a small trace with a known shape: a daily cycle at 5-minute
//! slots for three weeks, replayed over the last week with the first two learned from.

mod common;

use common::{run, swell};

fn trace(dir: &std::path::Path) -> std::path::PathBuf {
    let mut csv = String::from("timestamp,requests\n");
    let start = 1_700_000_000 - 1_700_000_000 % 86_400;
    for i in 0..(21 * 288) {
        let v = 500.0 + 400.0 * ((i as f64) * std::f64::consts::TAU / 288.0).sin() + ((i * 7919) % 37) as f64;
        csv += &format!("{},{v:.0}\n", start + i * 300);
    }
    let path = dir.join("daily.csv");
    std::fs::write(&path, csv).unwrap();
    path
}

fn object(dir: &std::path::Path, extra: &str) -> std::path::PathBuf {
    let path = dir.join("so.yaml");
    std::fs::write(
        &path,
        format!(
            "apiVersion: keda.sh/v1alpha1\nkind: ScaledObject\nmetadata: {{name: web}}\nspec:\n  scaleTargetRef: {{name: web}}\n  pollingInterval: 30\n  minReplicaCount: 1\n  maxReplicaCount: 40\n{extra}  triggers:\n  - type: metrics-api\n    metadata: {{url: \"http://127.0.0.1:9/m\", valueLocation: v, targetValue: \"50\"}}\n"
        ),
    )
    .unwrap();
    path
}

#[test]
fn replay_compares_the_object_with_reactive_baselines_as_json() {
    let dir = tempfile::tempdir().unwrap();
    let (t, o) = (trace(dir.path()), object(dir.path(), "  predictive: {mode: \"on\", podStartup: 120}\n"));
    let out = swell(dir.path())
        .args(["replay", "--trace"])
        .arg(&t)
        .arg("--object")
        .arg(&o)
        .args(["--capacity-per-replica", "60", "--startup", "120", "--format", "json"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).expect("one JSON object on stdout");
    let policies = report["policies"].as_array().unwrap();
    let names: Vec<&str> = policies.iter().map(|p| p["name"].as_str().unwrap()).collect();
    assert!(names[0].starts_with("predictive") && names.contains(&"KEDA + HPA defaults"), "{names:?}");
    for p in policies {
        for k in ["under_provisioned_minutes", "replica_minutes", "actions"] {
            assert!(p[k].as_f64().is_some_and(|v| v >= 0.0), "{k} of {p}");
        }
    }
    assert!(policies[0]["replica_minutes"].as_f64().unwrap() > 0.0);
    assert!(policies[0]["mape"].as_f64().is_some(), "the predictive policy scores its forecast");
    let forecasters: Vec<&str> = report["forecasters"].as_array().unwrap().iter().map(|f| f[0].as_str().unwrap()).collect();
    assert!(forecasters.contains(&"random-forest") && forecasters.contains(&"seasonal-naive-day") && forecasters.contains(&"linear"), "{forecasters:?}");
    assert_eq!(report["trace"]["step"], 300);
}

#[test]
fn bad_replay_input_names_the_flag() {
    let dir = tempfile::tempdir().unwrap();
    let (t, o) = (trace(dir.path()), object(dir.path(), ""));
    let (code, err) = run(swell(dir.path()).args(["replay", "--trace"]).arg(&t).arg("--object").arg(&o).args(["--value-column", "rps"]));
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("--value-column") && err.contains("requests"), "{err}");
    let (code, err) = run(swell(dir.path()).args(["replay", "--trace"]).arg(&t).arg("--object").arg(&o).args(["--from", "1990-01-01T00:00:00Z"]));
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("--from") && err.contains("outside the trace"), "{err}");
    let bad = object(dir.path(), "  predictive: {quantile: 0.2}\n");
    let (code, err) = run(swell(dir.path()).args(["replay", "--trace"]).arg(&t).arg("--object").arg(&bad));
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("spec.predictive.quantile"), "{err}");
}

#[test]
fn replay_draws_its_plots_and_marks_what_the_anomaly_guard_caught() {
    let dir = tempfile::tempdir().unwrap();
    // The daily trace with a ×100 spike for three slots on the last day.
    let t = trace(dir.path());
    let text = std::fs::read_to_string(&t).unwrap();
    let lines: Vec<String> = text
        .lines()
        .enumerate()
        .map(|(i, l)| if (20 * 288 + 100..20 * 288 + 103).contains(&i) { l.split_once(',').map(|(a, b)| format!("{a},{}", b.parse::<f64>().unwrap() * 100.0)).unwrap() } else { l.to_string() })
        .collect();
    std::fs::write(&t, lines.join("\n") + "\n").unwrap();
    let o = object(dir.path(), "  anomaly: {policy: hold, minHistory: 3600}\n");
    let plots = dir.path().join("plots");
    let out = swell(dir.path()).args(["replay", "--trace"]).arg(&t).arg("--object").arg(&o).args(["--capacity-per-replica", "60", "--format", "json", "--out"]).arg(&plots).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let svg = std::fs::read_to_string(plots.join("replay.svg")).unwrap();
    assert!(svg.starts_with("<svg") && svg.contains("load and ready capacity") && svg.contains("KEDA + HPA defaults"), "{}", &svg[..svg.len().min(400)]);
    // The spike is marked at each poll (one circle each, plus the legend's) until maxHold.
    let marked = svg.matches("<circle").count() - 1;
    // The spike until maxHold (20 polls), then the fall back from it for as long; few others.
    assert!((15..=120).contains(&marked), "{marked} readings marked");
    let png = std::fs::read(plots.join("replay.png")).unwrap();
    assert!(png.starts_with(b"\x89PNG") && png.len() > 10_000, "{} bytes", png.len());
    assert!(String::from_utf8_lossy(&out.stderr).contains("wrote"), "the paths are said");
}

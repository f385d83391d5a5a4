//! PostgreSQL crashes (`pg_ctl stop -m immediate`) under a running `swell demo` and comes
//! back: the scaling loop goes on meanwhile; its decisions and samples are kept in memory and
//! written once SQL answers, so the history has no gap and nothing is dropped (counted by
//! `swell_store_*`); /readyz reports the database gone and back; the stored configuration is
//! the same before and after.

mod common;

use std::process::Stdio;
use std::time::{Duration, Instant};

use common::{Serve, free_port, get, swell};
use testenv::postgres::Postgres;

fn metric(port: u16, name: &str) -> Option<f64> {
    let (_, text) = get(port, "/metrics")?;
    text.lines().find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok())
}

fn wait_for(what: &str, limit: Duration, mut ok: impl FnMut() -> bool) {
    let started = Instant::now();
    while !ok() {
        assert!(started.elapsed() < limit, "timed out after {limit:?} waiting for: {what}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn unix_now() -> f64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs_f64()
}

#[test]
fn a_database_crash_loses_no_decision_and_no_sample() {
    let pg = Postgres::start().expect("a PostgreSQL of this test's own");
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let log = std::fs::File::create(dir.path().join("demo.log")).unwrap();
    let _demo = Serve(
        swell(dir.path())
            .args(["demo", "--bind", &format!("127.0.0.1:{port}"), "--database-url", &pg.url(), "--log", "warn"])
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap(),
    );
    let demo_log = || std::fs::read_to_string(dir.path().join("demo.log")).unwrap_or_default();
    wait_for("the demo ready", Duration::from_secs(60), || get(port, "/readyz").is_some_and(|(c, _)| c == 200));
    let started = unix_now();
    wait_for("rows written", Duration::from_secs(30), || metric(port, "swell_store_rows_written_total").is_some_and(|n| n > 0.0));
    let config = || pg.query("select id, namespace, name, origin, spec::text from scaled_objects order by id");
    let before = config();
    assert!(!before.is_empty());

    // The crash: the loop runs on, the rows wait in memory.
    std::thread::sleep(Duration::from_secs(2));
    pg.kill().unwrap();
    let killed = unix_now();
    wait_for("/readyz says the database is gone", Duration::from_secs(20), || {
        get(port, "/readyz").is_some_and(|(c, body)| c == 503 && body.contains("database unreachable"))
    });
    wait_for("rows kept in memory", Duration::from_secs(20), || metric(port, "swell_store_rows_pending").is_some_and(|n| n > 0.0));
    // Longer than the 15 s between samples, so the outage holds some.
    std::thread::sleep(Duration::from_secs(16));
    assert!(get(port, "/healthz").is_some_and(|(c, _)| c == 200), "alive through the outage");
    let pending = metric(port, "swell_store_rows_pending").unwrap();

    // Back: everything kept is written, nothing dropped.
    pg.restart().unwrap();
    let restarted = unix_now();
    wait_for("the kept rows written", Duration::from_secs(30), || metric(port, "swell_store_rows_pending") == Some(0.0));
    wait_for("/readyz again", Duration::from_secs(20), || get(port, "/readyz").is_some_and(|(c, _)| c == 200));
    assert_eq!(metric(port, "swell_store_records_dropped_total"), Some(0.0), "{}", demo_log());
    assert_eq!(config(), before, "the configuration changed across the outage");

    // What the loop did while SQL was down is in SQL now.
    let during = |table: &str| -> i64 {
        pg.query(&format!("select count(*) from {table} where extract(epoch from at) between {killed} and {restarted}")).parse().unwrap()
    };
    let (decisions, samples) = (during("decisions"), during("metric_samples"));
    assert!(samples > 0 && decisions > 0, "rows from the outage: {decisions} decisions, {samples} samples ({pending} were pending)");
    // Every object's samples (one per 15 s) run on without a gap across the outage.
    std::thread::sleep(Duration::from_secs(2));
    let gaps = pg.query(&format!(
        "select scaled_object_id, metric, max(gap) from (select scaled_object_id, metric, \
         extract(epoch from at - lag(at) over (partition by scaled_object_id, metric order by at)) as gap \
         from metric_samples where extract(epoch from at) >= {started}) t group by scaled_object_id, metric"
    ));
    assert!(!gaps.is_empty());
    for row in gaps.lines() {
        let gap: f64 = row.rsplit('|').next().unwrap().parse().unwrap_or(0.0);
        assert!(gap <= 18.0, "a gap of {gap} s in the samples ({row}); the outage was {:.0} s", restarted - killed);
    }
    let errors: Vec<_> = demo_log().lines().filter(|l| l.contains("ERROR")).map(str::to_string).collect();
    assert!(errors.iter().all(|l| !l.contains("rows") || l.contains("keeping them")), "{errors:#?}");
}

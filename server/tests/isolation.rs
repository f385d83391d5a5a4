//! Isolation over every route. `swell routes` lists them all — the route table, webhooks,
//! every registered server function and every page — and this test fails on one it has no
//! case for, so a new route cannot be forgotten. Each is called on tenant demo's objects as
//! nobody, as tenant b's admin, as a demo viewer (for operator routes), with a revoked token
//! and with an expired one: each is refused (401/403, pages: to the login or 403), nothing
//! changes, and every refusal is in the audit log. An operator's call of the same case
//! succeeds, so the refusals are for who called, not for a malformed call.

mod common;

use std::time::{Duration, Instant};

use common::{free_port, get, request, swell, token};
use engine::store;

struct Running {
    child: std::process::Child,
}
impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The form body of a server function called on `id`, by name.
fn server_fn_body(path: &str, id: i32) -> Option<String> {
    let name = path.trim_start_matches("/api/").trim_end_matches(|c: char| c.is_ascii_digit());
    Some(match name {
        "load_overview" => "tenant=demo".to_string(),
        "load_audit" => "tenant=demo".to_string(),
        "load_object" => format!("tenant=demo&id={id}"),
        "load_history" => format!("tenant=demo&id={id}&range=1h"),
        "load_sources" => "tenant=demo".to_string(),
        "load_models" => "tenant=demo".to_string(),
        "load_jobs" => "tenant=demo".to_string(),
        "what_if" => format!("tenant=demo&id={id}&range=1h&min_replicas=&max_replicas=9&target=&cooldown_period=&polling_interval=&trace=&trace_name="),
        // catalog-api is not predictive: authorized, then refused naming the field.
        "retrain_model" => format!("tenant=demo&id={id}"),
        "rollback_model" => format!("tenant=demo&id={id}&version=1"),
        "object_yaml" => format!("tenant=demo&id={id}"),
        "apply_yaml" => {
            let yaml = "kind: ScaledObject\nmetadata:\n  name: iso-yaml\n  namespace: demo\nspec:\n  scaleTargetRef: {name: iso-missing}\n  actuation: direct\n  triggers:\n    - type: simulated\n      metadata: {workload: web-requests, target: \"5\"}\n";
            format!("tenant=demo&yaml={}", url::form_urlencoded::byte_serialize(yaml.as_bytes()).collect::<String>())
        }
        "apply_form" => "tenant=demo&cluster=&namespace=demo&name=iso-form&target_kind=Deployment&target_name=playground&min_replicas=0&max_replicas=3&polling_interval=5&cooldown_period=30&actuation=direct&trigger_type=simulated&metadata=workload%3A+web-requests%0Atarget%3A+5".to_string(),
        // Not the name: authorized, then refused for the confirmation (nothing deleted).
        "delete_object" => format!("tenant=demo&id={id}&confirm=not-its-name"),
        "load_clusters" => "tenant=demo".to_string(),
        "override_replicas" => format!("tenant=demo&id={id}&replicas=7&reason=isolation&expires_minutes="),
        "pause_object" => format!("tenant=demo&id={id}&reason=isolation&expires_minutes="),
        "resume_object" => format!("tenant=demo&id={id}"),
        _ => return None,
    })
}

/// The role a server function needs (viewer reads, operator changes).
fn server_fn_role(path: &str) -> &'static str {
    if path.contains("load_") || path.contains("object_yaml") || path.contains("what_if") { "viewer" } else { "operator" }
}

/// Routes anyone may call: reviewed here one by one.
const PUBLIC: &[(&str, &str)] = &[
    ("GET", "/healthz"),
    ("GET", "/readyz"),
    ("GET", "/metrics"),
    ("GET", "/login"),
    ("GET", "/t/{tenant}/login"),
    ("POST", "/t/{tenant}/login/local"),
    ("GET", "/t/{tenant}/signed-out"),
    ("GET", "/auth/callback"),
    ("POST", "/logout"),
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_route_refuses_other_tenants_low_roles_and_dead_tokens() {
    let dir = tempfile::tempdir().unwrap();
    let db_url = format!("sqlite://{}/data/swell.db", dir.path().display());
    let (code, err) = common::run(swell(dir.path()).args(["tenant", "add", "demo", "--database-url", &db_url]));
    assert_eq!(code, 0, "{err}");
    let (code, err) = common::run(swell(dir.path()).args(["tenant", "add", "b", "--database-url", &db_url]));
    assert_eq!(code, 0, "{err}");
    let viewer = token(dir.path(), &db_url, "demo", "viewer", "viewer");
    let operator = token(dir.path(), &db_url, "demo", "operator", "operator");
    let other_admin = token(dir.path(), &db_url, "b", "b-admin", "admin");
    let revoked = token(dir.path(), &db_url, "demo", "revoked", "admin");
    let (code, err) = common::run(swell(dir.path()).args(["token", "revoke", "revoked", "--tenant", "demo", "--database-url", &db_url]));
    assert_eq!(code, 0, "{err}");
    let expired = {
        let out = swell(dir.path()).args(["token", "create", "expired", "--tenant", "demo", "--role", "admin", "--expires-in", "1s", "--database-url", &db_url]).output().unwrap();
        String::from_utf8(out.stdout).unwrap().trim().to_string()
    };

    let port = free_port();
    let child = swell(dir.path()).args(["demo", "--bind", &format!("127.0.0.1:{port}"), "--log", "warn"]).stdin(std::process::Stdio::null()).spawn().unwrap();
    let _running = Running { child };
    let started = Instant::now();
    while get(port, "/healthz").is_none() {
        assert!(started.elapsed() < Duration::from_secs(60), "swell demo did not start");
        std::thread::sleep(Duration::from_millis(100));
    }
    let db = store::connect(&db_url).await.unwrap();
    let demo_id = store::find_tenant(&db, "demo").await.unwrap().unwrap().id;
    let id = store::load_objects(&db).await.unwrap().into_iter().find(|o| o.name == "catalog-api").unwrap().id;

    let out = swell(dir.path()).arg("routes").output().unwrap();
    let routes: Vec<serde_json::Value> = String::from_utf8(out.stdout).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert!(routes.len() > 10, "{routes:?}");
    let origin = format!("http://127.0.0.1:{port}");
    let bearer = |t: &str| format!("Bearer {t}");
    std::thread::sleep(Duration::from_millis(1200)); // the expired token's second is over
    let mut refusals_expected = 0usize;
    let mut checked = Vec::new();
    for r in &routes {
        let (method, path, access) = (r["method"].as_str().unwrap(), r["path"].as_str().unwrap(), &r["access"]);
        match access.as_str() {
            Some("public") => {
                assert!(PUBLIC.contains(&(method, path)), "{method} {path} is public but not reviewed in PUBLIC");
                continue;
            }
            Some("signed") => {
                // Webhooks carry their own HMAC; an unsigned push is refused without a caller.
                let (code, res) = request(port, method, "/hooks/demo/orders", &[("Authorization", &bearer(&operator))], "{\"value\": 5}").unwrap();
                assert!(code == 401 || code == 404, "unsigned webhook: {code} {res}");
                continue;
            }
            _ => {}
        }
        // (what to send, the role it needs)
        let (concrete, body, needs, content_type): (String, String, &str, &str) = match access.as_str() {
            Some("serverFn") => {
                let body = server_fn_body(path, id).unwrap_or_else(|| panic!("no isolation case for server function {path}: add one to server_fn_body"));
                (path.to_string(), body, server_fn_role(path), "application/x-www-form-urlencoded")
            }
            Some("page") => (path.replace("{tenant}", "demo").replace("{id}", &id.to_string()), String::new(), "viewer", "text/plain"),
            _ => match (method, path) {
                // Refused before the upgrade; let through, a plain GET is told to upgrade (426).
                ("GET", "/live/{tenant}") => ("/live/demo".into(), String::new(), "viewer", "text/plain"),
                (_, "/demo/faults/{workload}") => ("/demo/faults/catalog-queries".into(), r#"{"fault": "spike", "factor": 50}"#.into(), "operator", "application/json"),
                _ => panic!("no isolation case for {method} {path}: add one"),
            },
        };
        let page = access.as_str() == Some("page");
        let mut callers: Vec<(&str, Vec<(&str, String)>)> = vec![
            ("nobody", vec![]),
            ("tenant b's admin", vec![("Authorization", bearer(&other_admin))]),
            ("a revoked token", vec![("Authorization", bearer(&revoked))]),
            ("an expired token", vec![("Authorization", bearer(&expired))]),
        ];
        if needs == "operator" {
            callers.push(("a demo viewer", vec![("Authorization", bearer(&viewer))]));
        }
        for (who, headers) in callers {
            let mut h: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
            h.push(("Origin", &origin));
            h.push(("Content-Type", content_type));
            let (code, res) = request(port, method, &concrete, &h, &body).unwrap();
            let refused = match (page, who) {
                (true, "nobody") => code == 303 && res.contains("location: /t/demo/login"),
                _ => code == 401 || code == 403 || code == 404,
            };
            assert!(refused, "{method} {concrete} as {who}: {code}\n{res}");
            assert!(!res.contains("web-frontend") || who == "nobody" && page, "{method} {concrete} as {who} leaked an object: {res}");
            if !(page && who == "nobody") {
                refusals_expected += 1;
            }
        }
        // The same call as an operator of demo goes through.
        let auth = bearer(&operator);
        let (code, res) = request(port, method, &concrete, &[("Authorization", &auth), ("Content-Type", content_type)], &body).unwrap();
        let through = if path == "/live/{tenant}" { 426 } else { 200 };
        if path.contains("delete_object") {
            assert!(res.contains("confirm: type the object's name"), "{method} {concrete} as demo's operator: {code}\n{res}");
        } else if path.contains("what_if") {
            // A demo a second old has few samples of catalog-api: replayed, or told to wait.
            assert!(code == 200 || res.contains("choose a longer range"), "{method} {concrete} as demo's operator: {code}\n{res}");
        } else if path.contains("retrain_model") {
            assert!(res.contains("is not predictive"), "{method} {concrete} as demo's operator: {code}\n{res}");
        } else if path.contains("rollback_model") {
            assert!(res.contains("model version 1 of scaled object"), "{method} {concrete} as demo's operator: {code}\n{res}");
        } else {
            assert!(code == through, "{method} {concrete} as demo's operator: {code}\n{res}");
        }
        checked.push(format!("{method} {path}"));
    }
    assert!(checked.iter().any(|c| c.contains("override_replicas")) && checked.iter().any(|c| c.contains("/t/{tenant}/o/{id}")), "{checked:?}");

    // Nothing the refused calls asked for happened: the only override is the operator's own.
    let audit = store::audit_entries(&db, demo_id, 1000).await.unwrap();
    let refusals = audit.iter().filter(|e| e.action == "access.refused").count();
    let all_refusals = {
        use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
        engine::store::entities::audit_log::Entity::find().filter(engine::store::entities::audit_log::Column::Action.eq("access.refused")).all(&db).await.unwrap()
    };
    assert!(all_refusals.len() >= refusals_expected, "every refusal audited: {} of {refusals_expected}", all_refusals.len());
    assert!(refusals > 0);
    let changes: Vec<&str> = audit.iter().filter(|e| e.action.starts_with("override.")).map(|e| e.actor.as_str()).collect();
    assert!(!changes.is_empty() && changes.iter().all(|a| *a == "token:operator"), "overrides only by the operator: {changes:?}");
    for e in &all_refusals {
        let d = e.detail.to_string();
        for secret in [&viewer, &operator, &other_admin, &revoked, &expired] {
            assert!(!d.contains(secret.as_str()) && !e.target.contains(secret.as_str()), "a token in the audit log: {d}");
        }
    }
    // Tenant b's admin sees b's own (empty) overview when naming no tenant, never demo's.
    let path = routes.iter().find_map(|r| r["path"].as_str().filter(|p| p.contains("load_overview"))).unwrap();
    let (code, res) = request(port, "POST", path, &[("Authorization", &bearer(&other_admin)), ("Content-Type", "application/x-www-form-urlencoded")], "").unwrap();
    assert_eq!(code, 200, "{res}");
    assert!(res.contains("\"tenant\":\"b\"") && !res.contains("catalog-api"), "{res}");
}

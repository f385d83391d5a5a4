//! What authorization costs, and how long a sign-in takes. Not a test: run on purpose.
//!
//! 1. The same handler (a tenant's overview as JSON, what `load_overview` returns) over
//!    HTTP/1.1 keep-alive on 127.0.0.1, 10,000 calls each: with no authentication layers, as
//!    an API token holder, and with a session cookie. The difference is the check's cost.
//! 2. Sign-in round trips against a local Keycloak: `/t/{tenant}/login` → Keycloak's login
//!    page → credentials → `/auth/callback` → session, in-process Swell routes.
//!
//!   cargo bench -p server --bench auth
//!   BENCH_CALLS=20000 BENCH_LOGINS=50 cargo bench -p server --bench auth

#[path = "../src/auth/mod.rs"]
#[allow(dead_code, unused_imports)]
mod auth;
// The live streams' hub lives in `Auth`.
#[path = "../src/live.rs"]
#[allow(dead_code)]
mod live;

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::{Extension, State};
use axum::routing::get;
use engine::access::Role;
use engine::{Engine, EngineOptions, store};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

fn env<T: std::str::FromStr>(key: &str, default: T) -> T {
    std::env::var(key).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn percentile(sorted: &[f64], q: f64) -> f64 {
    sorted[((sorted.len() as f64 - 1.0) * q).round() as usize]
}

async fn overview(State(engine): State<Engine>) -> String {
    serde_json::to_string(&engine.overview("bench").iter().map(|v| (&v.name, v.current_replicas)).collect::<Vec<_>>()).unwrap()
}

async fn checked(State(engine): State<Engine>, Extension(caller): Extension<auth::Caller>) -> axum::response::Response {
    use axum::response::IntoResponse;
    match auth::require(&engine, &caller, "bench", Role::Viewer, "load_overview").await {
        Ok(_) => overview(State(engine)).await.into_response(),
        Err(refused) => refused,
    }
}

/// One GET on a keep-alive connection; returns the status code.
async fn call(conn: &mut TcpStream, buf: &mut Vec<u8>, path: &str, header: &str) -> u16 {
    let req = format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n{header}\r\n");
    conn.write_all(req.as_bytes()).await.unwrap();
    buf.clear();
    loop {
        let mut chunk = [0u8; 8192];
        let n = conn.read(&mut chunk).await.unwrap();
        assert!(n > 0, "connection closed");
        buf.extend_from_slice(&chunk[..n]);
        let text = String::from_utf8_lossy(buf);
        if let Some(head_end) = text.find("\r\n\r\n") {
            let len: usize = text[..head_end].lines().find_map(|l| l.to_ascii_lowercase().strip_prefix("content-length: ").map(|v| v.trim().parse().unwrap())).unwrap_or(0);
            if buf.len() >= head_end + 4 + len {
                return text[9..12].parse().unwrap();
            }
        }
    }
}

async fn measure(port: u16, path: &str, header: &str, calls: usize) -> Vec<f64> {
    let mut conn = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    conn.set_nodelay(true).unwrap();
    let mut buf = Vec::new();
    for _ in 0..200 {
        assert_eq!(call(&mut conn, &mut buf, path, header).await, 200, "{path} {header}");
    }
    let mut lat = Vec::with_capacity(calls);
    for _ in 0..calls {
        let t = Instant::now();
        assert_eq!(call(&mut conn, &mut buf, path, header).await, 200);
        lat.push(t.elapsed().as_secs_f64() * 1000.0);
    }
    lat.sort_by(f64::total_cmp);
    lat
}

fn main() {
    engine::init_tls();
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    rt.block_on(async {
        let calls: usize = env("BENCH_CALLS", 10_000);
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}/swell.db", dir.path().display());
        let db = store::connect(&url).await.unwrap();
        store::migrate(&db).await.unwrap();
        let tenant = store::tenancy::add_tenant(&db, "bench", "Bench", "bench").await.unwrap();
        let (token, hash) = engine::access::new_token().unwrap();
        store::tenancy::create_token(&db, tenant.id, "bench", &hash, Role::Viewer, None, "bench").await.unwrap();
        let engine = Engine::new(db.clone(), EngineOptions::default()).await.unwrap();
        let settings = auth::Settings { public_url: "http://127.0.0.1".into(), local_sign_in: false, cookie_secure: false, session_ttl: time::Duration::hours(1) };
        let state = auth::Auth::new(engine.clone(), None, &settings);

        // A session row as a sign-in makes it, for the cookie case.
        let principal = engine::access::Principal { tenant: "bench".into(), tenant_id: tenant.id, actor: "user:bench".into(), role: Role::Viewer, user_id: None, token_id: None };
        let open = Router::new().route("/fn", get(overview)).with_state(engine.clone());
        let guarded = Router::new()
            .route("/fn", get(checked))
            .route(
                "/sign-in",
                get(|session: tower_sessions::Session, State(_): State<Engine>| async move {
                    session.insert(auth::store::PRINCIPAL, principal).await.unwrap();
                    "ok"
                }),
            )
            .with_state(engine.clone())
            .layer(axum::middleware::from_fn_with_state(state.clone(), auth::identify))
            .layer(auth::session_layer(db.clone(), time::Duration::hours(1)));
        let serve = |router: Router| async move {
            let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let port = l.local_addr().unwrap().port();
            tokio::spawn(async move { axum::serve(l, router).await.unwrap() });
            port
        };
        let (open_port, guarded_port) = (serve(open).await, serve(guarded).await);
        let res = reqwest::get(format!("http://127.0.0.1:{guarded_port}/sign-in")).await.unwrap();
        let cookie = res.headers()["set-cookie"].to_str().unwrap().split(';').next().unwrap().to_string();

        let base = measure(open_port, "/fn", "", calls).await;
        let with_token = measure(guarded_port, "/fn", &format!("Authorization: Bearer {token}\r\n"), calls).await;
        let with_session = measure(guarded_port, "/fn", &format!("Cookie: {cookie}\r\n"), calls).await;
        let report = |name: &str, lat: &[f64]| {
            println!(
                "{name:<34} {calls} calls: p50 {:.3} ms  p99 {:.3} ms  (check: +{:.3} ms p50, +{:.3} ms p99)",
                percentile(lat, 0.5),
                percentile(lat, 0.99),
                percentile(lat, 0.5) - percentile(&base, 0.5),
                percentile(lat, 0.99) - percentile(&base, 0.99)
            )
        };
        println!("{:<34} {calls} calls: p50 {:.3} ms  p99 {:.3} ms", "no authentication", percentile(&base, 0.5), percentile(&base, 0.99));
        report("API token (rechecked in SQL every 5 s)", &with_token);
        report("session cookie (reread every 5 s)", &with_session);

        // Sign-in round trips through Keycloak, if one is given or can be started.
        let logins: usize = env("BENCH_LOGINS", 20);
        if logins == 0 {
            return;
        }
        let kc = testenv::keycloak::Keycloak::shared();
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = l.local_addr().unwrap().port();
        let base_url = format!("http://127.0.0.1:{port}");
        let callback = format!("{base_url}/auth/callback");
        let users = [testenv::keycloak::User { username: "bench", password: "bench-pw", email: "bench@bench.example", groups: &[] }];
        kc.import_realm(&testenv::keycloak::realm("bench", "swell", "bench-secret", &callback, "+", &users)).await.unwrap();
        let sealer = Arc::new(engine::crypto::Sealer::from_hex(&"ab".repeat(32)).unwrap());
        let settings = auth::Settings { public_url: base_url.clone(), local_sign_in: false, cookie_secure: false, session_ttl: time::Duration::hours(1) };
        let state = auth::Auth::new(engine.clone(), Some(sealer.clone()), &settings);
        let oidc = store::tenancy::OidcSettings {
            issuer: kc.issuer("bench"),
            client_id: "swell".into(),
            client_secret_enc: Some(sealer.seal(&store::tenancy::oidc_secret_purpose("bench"), b"bench-secret").unwrap()),
            scopes: vec!["openid".into(), "email".into()],
            groups_claim: "groups".into(),
            role_map: Default::default(),
        };
        store::tenancy::set_oidc(&db, tenant.id, &oidc, "bench").await.unwrap();
        store::tenancy::grant(&db, tenant.id, "bench@bench.example", Role::Viewer, "bench").await.unwrap();
        let app = Router::new()
            .route("/t/{tenant}/login", get(auth::routes::login))
            .route("/auth/callback", get(auth::routes::callback))
            .route("/t/{tenant}", get(|| async { "signed in" }))
            .with_state(state.clone())
            .layer(axum::middleware::from_fn_with_state(state.clone(), auth::identify))
            .layer(auth::session_layer(db.clone(), time::Duration::hours(1)));
        tokio::spawn(async move { axum::serve(l, app).await.unwrap() });
        let mut lat = Vec::new();
        for i in 0..logins + 2 {
            let b = testenv::browser::Browser::new();
            let t = Instant::now();
            let (page, _, html) = b.follow(&format!("{base_url}/t/bench/login"), None).await.unwrap().page();
            let (end, status, _) = b.submit(&page, &html, &[("username", "bench"), ("password", "bench-pw")], None).await.unwrap().page();
            assert_eq!((status, end.as_str()), (200, format!("{base_url}/t/bench").as_str()));
            if i >= 2 {
                lat.push(t.elapsed().as_secs_f64() * 1000.0);
            }
        }
        lat.sort_by(f64::total_cmp);
        println!(
            "sign-in through Keycloak ({logins} round trips, login page + credentials + code exchange + ID token check): p50 {:.1} ms, p99 {:.1} ms",
            percentile(&lat, 0.5),
            percentile(&lat, 0.99)
        );
        let _ = Duration::ZERO;
    });
}

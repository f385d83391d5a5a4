//! Sign-in through Swell against two real, independent providers: tenant demo ("A") with
//! Keycloak, tenant b with npm oidc-provider. Each user sees only their tenant; sessions
//! survive a restart of Swell on SQLite and on PostgreSQL; an expired session goes back to
//! the login and the cleanup task deletes it; logout ends Swell's session and the
//! provider's. Then no secret — client secrets, API token, session id, ID token, code,
//! sealed blob — is in the log (at debug), the pages or the error pages.

mod common;

use std::process::Stdio;
use std::time::{Duration, Instant};

use common::{KEY, free_port, get, request, swell};
use testenv::browser::Browser;
use testenv::keycloak::{Keycloak, User, realm};
use testenv::oidc::{Account, OidcProvider};

const KC_SECRET: &str = "kc-client-secret-canary-5e21";
const OP_SECRET: &str = "op-client-secret-canary-9b07";

struct Running(std::process::Child);
impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn cli(dir: &std::path::Path, db: &str, args: &[&str]) -> String {
    let out = swell(dir).args(args).args(["--database-url", db]).env("SWELL_SECRET_KEY", KEY).stdin(Stdio::null()).output().unwrap();
    assert!(out.status.success(), "swell {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

fn start(dir: &std::path::Path, db: &str, port: u16, env: &[(&str, &str)]) -> Running {
    let log = std::fs::OpenOptions::new().create(true).append(true).open(dir.join("swell.log")).unwrap();
    let mut cmd = swell(dir);
    cmd.args(["demo", "--bind", &format!("127.0.0.1:{port}"), "--database-url", db, "--log", "debug,sqlx=warn,hyper=info,h2=info"])
        .env("SWELL_SECRET_KEY", KEY)
        .stdin(Stdio::null())
        .stdout(log.try_clone().unwrap())
        .stderr(log);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let child = Running(cmd.spawn().unwrap());
    let started = Instant::now();
    while get(port, "/healthz").is_none() {
        assert!(started.elapsed() < Duration::from_secs(60), "swell did not start");
        std::thread::sleep(Duration::from_millis(100));
    }
    child
}

/// Signs in from `/t/{tenant}` through the provider's login page; returns the page Swell shows after.
async fn sign_in(b: &Browser, base: &str, tenant: &str, user: &str, password: &str) -> String {
    let (url, status, html) = b.follow(&format!("{base}/t/{tenant}"), None).await.unwrap().page();
    assert_eq!(status, 200, "{url}");
    assert!(!url.starts_with(base), "sent to the provider's login page, not {url}");
    let before = b.cookies(base).unwrap_or_default();
    assert!(before.contains("swell_session="), "a session holds the sign-in under way");
    let (url, status, page) = b.submit(&url, &html, &[("username", user), ("login", user), ("password", password)], None).await.unwrap().page();
    assert_eq!((status, url.as_str()), (200, format!("{base}/t/{tenant}").as_str()), "{page}");
    let after = b.cookies(base).unwrap_or_default();
    assert!(after.contains("swell_session=") && after != before, "the session id is rotated at sign-in: {before} → {after}");
    page
}

async fn status_of(b: &Browser, url: &str) -> (u16, String) {
    let res = b.http().get(url).send().await.unwrap();
    let code = res.status().as_u16();
    let loc = res.headers().get("location").and_then(|l| l.to_str().ok()).unwrap_or_default().to_string();
    (code, loc)
}

async fn sessions(db: &str) -> u64 {
    let db = engine::store::connect(db).await.unwrap();
    engine::store::sessions::count(&db).await.unwrap()
}

/// A fresh PostgreSQL database on the server of TEST_DATABASE_URL, if there is one.
async fn postgres() -> Option<String> {
    use sea_orm::ConnectionTrait;
    let Ok(admin) = std::env::var("TEST_DATABASE_URL") else {
        assert!(std::env::var("CI").map_or(true, |v| v != "true"), "CI=true needs TEST_DATABASE_URL (dev.sh test starts PostgreSQL)");
        return None;
    };
    let conn = engine::store::connect(&admin).await.unwrap();
    let name = format!("swell_login_{}", std::process::id());
    conn.execute_unprepared(&format!("DROP DATABASE IF EXISTS {name}")).await.unwrap();
    conn.execute_unprepared(&format!("CREATE DATABASE {name}")).await.unwrap();
    let mut url = url::Url::parse(&admin).unwrap();
    url.set_path(&name);
    Some(url.to_string())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_tenants_two_providers_sessions_across_restarts_expiry_logout_and_no_secret_shown() {
    let kc = Keycloak::shared();
    let sqlite_dir = tempfile::tempdir().unwrap();
    let mut databases = vec![format!("sqlite://{}/swell.db", sqlite_dir.path().display())];
    databases.extend(postgres().await);
    for db in databases {
        run_on(kc, &db).await;
    }
}

async fn run_on(kc: &Keycloak, db: &str) {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let callback = format!("{base}/auth/callback");
    let realm_name = format!("tenant-a-{port}");
    let users = [User { username: "alice", password: "alice-pw-canary-77", email: "alice@a.example", groups: &["a-viewers"] }];
    kc.import_realm(&realm(&realm_name, "swell", KC_SECRET, &callback, &format!("{base}/*"), &users)).await.unwrap();
    let accounts = [Account { login: "bob", email: "bob@b.example", groups: &["b-ops"] }];
    let op = OidcProvider::start("swell-b", OP_SECRET, &[callback.clone()], &[format!("{base}/t/b/signed-out")], &accounts).unwrap();

    std::fs::write(dir.path().join("kc-secret"), KC_SECRET).unwrap();
    std::fs::write(dir.path().join("op-secret"), OP_SECRET).unwrap();
    let kc_secret_file = dir.path().join("kc-secret").display().to_string();
    let op_secret_file = dir.path().join("op-secret").display().to_string();
    cli(dir.path(), db, &["tenant", "add", "demo", "--name", "Tenant A"]);
    cli(dir.path(), db, &["tenant", "add", "b", "--name", "Tenant B"]);
    cli(dir.path(), db, &["tenant", "set-oidc", "demo", "--issuer", &kc.issuer(&realm_name), "--client-id", "swell", "--client-secret-file", &kc_secret_file]);
    cli(dir.path(), db, &["tenant", "set-oidc", "b", "--issuer", &op.issuer(), "--client-id", "swell-b", "--client-secret-file", &op_secret_file, "--scopes", "openid email profile groups", "--group-role", "b-ops=operator"]);
    cli(dir.path(), db, &["user", "grant", "alice@a.example", "--tenant", "demo", "--role", "viewer"]);
    let api_token = cli(dir.path(), db, &["token", "create", "scan", "--tenant", "demo", "--role", "viewer"]);
    let listed = cli(dir.path(), db, &["tenant", "list"]);
    assert!(listed.contains(&kc.issuer(&realm_name)) && !listed.contains(KC_SECRET), "{listed}");
    std::fs::remove_file(dir.path().join("kc-secret")).unwrap();
    std::fs::remove_file(dir.path().join("op-secret")).unwrap();

    let swell_proc = start(dir.path(), db, port, &[]);
    // The demo's local sign-in gives way to the tenant's own provider.
    let (code, _) = request(port, "POST", "/t/demo/login/local", &[("Origin", &base)], "").unwrap();
    assert!(code != 303, "local sign-in must not work for a tenant with a provider, got {code}");
    // The session cookie: HttpOnly and SameSite=Lax always, Secure when the request came over TLS.
    let cookie = |via: &[(&str, &str)]| {
        let (_, res) = request(port, "GET", "/t/b/login", via, "").unwrap();
        res.lines().find(|l| l.starts_with("set-cookie: swell_session=")).unwrap_or_else(|| panic!("no session cookie: {res}")).to_string()
    };
    let plain = cookie(&[]);
    assert!(plain.contains("HttpOnly") && plain.contains("SameSite=Lax") && !plain.contains("Secure"), "{plain}");
    assert!(cookie(&[("X-Forwarded-Proto", "https")]).contains("; Secure"), "Secure behind a TLS proxy");

    // Alice (tenant demo, Keycloak) sees demo's objects and nothing of b.
    let alice = Browser::new();
    let page = sign_in(&alice, &base, "demo", "alice", "alice-pw-canary-77").await;
    assert!(page.contains("web-frontend") && page.contains("catalog-api"), "alice sees demo's objects");
    assert_eq!(status_of(&alice, &format!("{base}/t/b")).await.0, 403, "alice may not open tenant b");
    // Bob (tenant b, oidc-provider, operator through his group) sees b — empty — not demo.
    let bob = Browser::new();
    let page = sign_in(&bob, &base, "b", "bob", "any-password").await;
    assert!(!page.contains("web-frontend") && page.contains("No ScaledObjects"), "bob sees only b: {page}");
    assert_eq!(status_of(&bob, &format!("{base}/t/demo")).await.0, 403);
    assert_eq!(status_of(&bob, &format!("{base}/t/demo/o/1")).await.0, 403);
    // Bob's session on demo's server functions, from Swell's own origin: refused too.
    let routes = swell(dir.path()).arg("routes").output().unwrap();
    let routes = String::from_utf8(routes.stdout).unwrap();
    for (name, body) in [("load_object", "tenant=demo&id=1"), ("override_replicas", "tenant=demo&id=1&replicas=5&reason=x&expires_minutes=")] {
        let path = routes.lines().find_map(|l| l.split('"').find(|p| p.starts_with(&format!("/api/{name}")))).unwrap().to_string();
        let res = bob.http().post(format!("{base}{path}")).header("origin", &base).header("content-type", "application/x-www-form-urlencoded").body(body).send().await.unwrap();
        assert_eq!(res.status().as_u16(), 403, "{name} as bob on demo");
        assert!(res.text().await.unwrap().contains("signed in to tenant \"b\""));
    }
    let pages: Vec<String> = vec![page];
    let session_ids: Vec<String> = [&alice, &bob]
        .iter()
        .map(|b| {
            let cookies = b.cookies(&base).expect("a session cookie");
            cookies.split("; ").find_map(|c| c.strip_prefix("swell_session=")).expect("swell_session").to_string()
        })
        .collect();

    // Restart: both sessions are still good (they live in SQL).
    drop(swell_proc);
    let swell_proc = start(dir.path(), db, port, &[("SWELL_SESSION_TTL_SECS", "3"), ("SWELL_SESSION_CLEANUP_SECS", "1")]);
    assert_eq!(status_of(&alice, &format!("{base}/t/demo")).await.0, 200, "alice's session survived the restart on {db}");
    assert_eq!(status_of(&bob, &format!("{base}/t/b")).await.0, 200, "bob's session survived the restart");

    // Logout: Swell's session ends and so does the provider's (Keycloak's logout endpoint).
    let res = alice.http().post(format!("{base}/logout")).header("origin", &base).send().await.unwrap();
    assert_eq!(res.status().as_u16(), 303);
    let to = res.headers()["location"].to_str().unwrap().to_string();
    assert!(to.starts_with(&kc.issuer(&realm_name)) && to.contains("id_token_hint"), "{to}");
    let (url, _, signed_out) = alice.follow(&to, None).await.unwrap().page();
    assert!(url.ends_with("/t/demo/signed-out") && signed_out.contains("signed out"), "{url}: {signed_out}");
    let (code, loc) = status_of(&alice, &format!("{base}/t/demo")).await;
    assert_eq!((code, loc.as_str()), (303, "/t/demo/login?next=%2Ft%2Fdemo"));
    let (url, _, login) = alice.follow(&format!("{base}/t/demo"), None).await.unwrap().page();
    assert!(url.starts_with(&kc.issuer(&realm_name)) && login.contains("type=\"password\""), "Keycloak asks again: {url}");

    // A session that expires goes back to the login, and the cleanup task deletes it.
    let before = sessions(db).await;
    let carol = Browser::new();
    sign_in(&carol, &base, "b", "bob", "again").await;
    assert_eq!(sessions(db).await, before + 1, "carol's session is stored");
    tokio::time::sleep(Duration::from_secs(4)).await;
    let (code, loc) = status_of(&carol, &format!("{base}/t/b")).await;
    assert_eq!((code, loc.as_str()), (303, "/t/b/login?next=%2Ft%2Fb"), "expired");
    let deadline = Instant::now() + Duration::from_secs(10);
    while sessions(db).await > before {
        assert!(Instant::now() < deadline, "expired sessions not deleted: {} left of {before}", sessions(db).await);
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // A callback with no sign-in behind it is refused with a page that says so.
    let (url, code, failed) = carol.follow(&format!("{base}/auth/callback?code=stolen&state=guess"), None).await.unwrap().page();
    assert_eq!(code, 400, "{url}");
    assert!(failed.contains("not started here"), "{failed}");
    drop(swell_proc);

    // No secret anywhere Swell writes for people to read.
    let log = std::fs::read_to_string(dir.path().join("swell.log")).unwrap();
    assert!(log.contains("sign-in") || log.contains("login"), "the log is at debug and saw the sign-ins");
    let mut secrets = vec![KC_SECRET.to_string(), OP_SECRET.to_string(), api_token.clone(), "alice-pw-canary-77".to_string()];
    secrets.extend(session_ids.iter().cloned());
    let db_conn = engine::store::connect(db).await.unwrap();
    let sealed = engine::store::tenancy::oidc(&db_conn, engine::store::find_tenant(&db_conn, "demo").await.unwrap().unwrap().id).await.unwrap().unwrap().client_secret_enc.unwrap();
    secrets.push(sealed.iter().map(|b| format!("{b:02x}")).collect());
    secrets.push(String::from_utf8_lossy(&sealed[1..]).to_string());
    let mut surfaces = vec![("log".to_string(), log)];
    surfaces.extend(pages.into_iter().map(|p| ("page".to_string(), p)));
    surfaces.push(("failed sign-in page".into(), failed));
    surfaces.push(("signed-out page".into(), signed_out));
    // The sessions table keeps a hash of each id, never the id.
    {
        use sea_orm::EntityTrait;
        let rows = engine::store::entities::sessions::Entity::find().all(&db_conn).await.unwrap();
        for id in &session_ids {
            assert!(rows.iter().all(|r| !r.id.contains(id.as_str())), "a session id stored in clear");
        }
        // Nor is the ID token kept for the logout hint in clear: it is sealed.
        for r in &rows {
            assert!(!String::from_utf8_lossy(&r.data).contains("eyJ"), "an ID token in clear in the sessions table");
        }
    }
    for (name, text) in &surfaces {
        for s in &secrets {
            assert!(s.len() < 8 || !text.contains(s.as_str()), "a secret ({}…) in the {name}", &s[..6]);
        }
        // Session ids and ID tokens: nothing cookie- or JWT-shaped from this run.
        assert!(!text.contains("swell_session="), "a session cookie in the {name}");
        assert!(!text.contains("eyJhbGciOi"), "a JWT in the {name}");
    }
}

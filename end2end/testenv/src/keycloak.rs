//! Keycloak (the Quarkus distribution from Maven Central, fetched by
//! `end2end/keycloak/fetch.sh` into the cache) in dev mode on 127.0.0.1 with an in-memory
//! database, on a JDK 21+ (`end2end/keycloak/start.sh`). One instance per test process ([`Keycloak::shared`]),
//! or the one `dev.sh test` started for the whole run (`TEST_KEYCLOAK_URL`). Tests
//! import their own realms from JSON through the admin API.

use std::io;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use crate::free_port;

pub const ADMIN: &str = "admin";

pub struct Keycloak {
    pub url: String,
    admin_password: String,
}

fn start_script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../keycloak/start.sh")
}

impl Keycloak {
    /// The run's Keycloak: the one dev.sh started, else one started now for this process.
    pub fn shared() -> &'static Keycloak {
        static ONE: OnceLock<Keycloak> = OnceLock::new();
        ONE.get_or_init(|| match std::env::var("TEST_KEYCLOAK_URL") {
            Ok(url) => Keycloak { url, admin_password: std::env::var("TEST_KEYCLOAK_ADMIN_PASSWORD").unwrap_or_else(|_| ADMIN.into()) },
            Err(_) => Keycloak::start().unwrap_or_else(|e| panic!("Keycloak: {e}")),
        })
    }

    /// Starts Keycloak and waits until it answers (about half a minute). The process is
    /// spawned from a thread that lives as long as this process, so it outlives the test
    /// that started it and dies with the process.
    pub fn start() -> io::Result<Keycloak> {
        let (port, management) = (free_port()?, free_port()?);
        let password = format!("admin-{}", std::process::id());
        let log = std::env::temp_dir().join(format!("swell-keycloak-{port}.log"));
        let (tx, rx) = std::sync::mpsc::channel();
        let (pw, log_path) = (password.clone(), log.clone());
        std::thread::spawn(move || {
            let spawned = (|| {
                let file = std::fs::File::create(&log_path)?;
                let mut cmd = Command::new("bash");
                cmd.arg(start_script())
                .args([port.to_string(), management.to_string(), pw.clone()])
                .stdin(Stdio::null())
                .stdout(file.try_clone()?)
                .stderr(file);
                // TERM, not KILL: start.sh traps it and stops the JVM it started.
                unsafe {
                    cmd.pre_exec(|| {
                        libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM);
                        Ok(())
                    });
                }
                cmd.spawn()
            })();
            let child = spawned.map(|c| c.id());
            let _ = tx.send(child);
            loop {
                std::thread::park();
            }
        });
        rx.recv().map_err(|_| io::Error::other("Keycloak launcher thread died"))??;
        let kc = Keycloak { url: format!("http://127.0.0.1:{port}"), admin_password: password };
        let started = Instant::now();
        let probe = format!("{}/realms/master/.well-known/openid-configuration", kc.url);
        loop {
            if let Ok(out) = Command::new("curl").args(["-s", "-o", "/dev/null", "-w", "%{http_code}", &probe]).output() {
                if out.stdout == b"200" {
                    return Ok(kc);
                }
            }
            if started.elapsed() > Duration::from_secs(180) {
                let tail = std::fs::read_to_string(&log).unwrap_or_default();
                let tail: String = tail.lines().rev().take(30).collect::<Vec<_>>().into_iter().rev().collect::<Vec<_>>().join("\n");
                return Err(io::Error::other(format!("Keycloak did not answer within 180 s; log {}:\n{tail}", log.display())));
            }
            std::thread::sleep(Duration::from_millis(500));
        }
    }

    pub fn issuer(&self, realm: &str) -> String {
        format!("{}/realms/{realm}", self.url)
    }

    async fn admin_token(&self, http: &reqwest::Client) -> Result<String, String> {
        let res = http
            .post(format!("{}/realms/master/protocol/openid-connect/token", self.url))
            .form(&[("grant_type", "password"), ("client_id", "admin-cli"), ("username", ADMIN), ("password", &self.admin_password)])
            .send()
            .await
            .map_err(|e| e.to_string())?;
        let body: serde_json::Value = res.json().await.map_err(|e| e.to_string())?;
        body["access_token"].as_str().map(String::from).ok_or_else(|| format!("no admin token: {body}"))
    }

    /// Imports a realm (a RealmRepresentation as JSON), replacing one of the same name.
    pub async fn import_realm(&self, realm: &serde_json::Value) -> Result<(), String> {
        let http = reqwest::Client::new();
        let token = self.admin_token(&http).await?;
        let name = realm["realm"].as_str().ok_or("the realm JSON has no \"realm\" name")?;
        let _ = http.delete(format!("{}/admin/realms/{name}", self.url)).bearer_auth(&token).send().await;
        let res = http.post(format!("{}/admin/realms", self.url)).bearer_auth(&token).json(realm).send().await.map_err(|e| e.to_string())?;
        if !res.status().is_success() {
            return Err(format!("importing realm {name}: {} {}", res.status(), res.text().await.unwrap_or_default()));
        }
        Ok(())
    }
}

/// A user of a realm: signs in with `username`/`password`, member of `groups`.
pub struct User<'a> {
    pub username: &'a str,
    pub password: &'a str,
    pub email: &'a str,
    pub groups: &'a [&'a str],
}

/// A realm with one confidential client (`client_id`/`secret`, PKCE S256 required, a
/// `groups` claim in the ID token) redirecting to `redirect`, and its users.
pub fn realm(name: &str, client_id: &str, secret: &str, redirect: &str, post_logout: &str, users: &[User]) -> serde_json::Value {
    let mut groups: Vec<&str> = users.iter().flat_map(|u| u.groups.iter().copied()).collect();
    groups.sort();
    groups.dedup();
    serde_json::json!({
        "realm": name,
        "enabled": true,
        "sslRequired": "none",
        "groups": groups.iter().map(|g| serde_json::json!({"name": g})).collect::<Vec<_>>(),
        "users": users.iter().map(|u| serde_json::json!({
            "username": u.username,
            "email": u.email,
            "emailVerified": true,
            "firstName": u.username,
            "lastName": "Tester",
            "enabled": true,
            "credentials": [{"type": "password", "value": u.password, "temporary": false}],
            "groups": u.groups.iter().map(|g| format!("/{g}")).collect::<Vec<_>>(),
        })).collect::<Vec<_>>(),
        "clients": [{
            "clientId": client_id,
            "enabled": true,
            "publicClient": false,
            "secret": secret,
            "standardFlowEnabled": true,
            "directAccessGrantsEnabled": false,
            "redirectUris": [redirect],
            "webOrigins": ["+"],
            "attributes": {"pkce.code.challenge.method": "S256", "post.logout.redirect.uris": post_logout},
            "protocolMappers": [{
                "name": "groups",
                "protocol": "openid-connect",
                "protocolMapper": "oidc-group-membership-mapper",
                "config": {"claim.name": "groups", "full.path": "false", "id.token.claim": "true", "access.token.claim": "true", "userinfo.token.claim": "true"},
            }],
        }],
    })
}

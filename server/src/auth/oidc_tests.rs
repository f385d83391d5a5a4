//! Sign-in against two real, independent providers — Keycloak and npm oidc-provider — and
//! every way an ID token can be wrong, each checked against the provider's real keys.

use testenv::browser::{Browser, Landing};
use testenv::keycloak::{Keycloak, User, realm};
use testenv::oidc::{Account, OidcProvider};

use super::oidc::{LoginError, Pending, Providers, TenantClient};
use engine::access::Role;

const SECRET: &str = "client-secret-for-unit-tests";

/// Keycloak puts groups in the ID token through the client's mapper; oidc-provider through
/// a `groups` scope.
fn client(tenant: &str, issuer: &str, scopes: &str) -> TenantClient {
    TenantClient {
        tenant: tenant.into(),
        tenant_id: 1,
        issuer: issuer.into(),
        client_id: "swell".into(),
        client_secret: Some(SECRET.into()),
        scopes: scopes.split(' ').map(String::from).collect(),
        groups_claim: "groups".into(),
        role_map: [("ops".to_string(), Role::Operator)].into(),
    }
}

/// Signs in through the provider's own login page; returns the pending sign-in and the code.
async fn code_flow(p: &Providers, t: &TenantClient, redirect: &str, user: &str, password: &str) -> (Pending, String) {
    let (url, pending) = p.begin(t, redirect, "/t/x").await.expect("begin");
    let q: std::collections::HashMap<_, _> = url.query_pairs().into_owned().collect();
    assert_eq!(q.get("code_challenge_method").map(String::as_str), Some("S256"), "PKCE S256 in {url}");
    assert!(q.contains_key("nonce") && q.contains_key("state"), "{url}");
    let b = Browser::new();
    let (page, status, html) = b.follow(url.as_str(), Some(redirect)).await.expect("login page").page();
    assert_eq!(status, 200, "{page}: {html}");
    let landing = b.submit(&page, &html, &[("username", user), ("login", user), ("password", password)], Some(redirect)).await.expect("sign in");
    let Landing::Stopped(back) = landing else { panic!("not sent back to Swell: {landing:?}") };
    let back = url::Url::parse(&back).unwrap();
    let q: std::collections::HashMap<_, _> = back.query_pairs().into_owned().collect();
    assert_eq!(q.get("state"), Some(&pending.state), "state comes back unchanged");
    (pending, q.get("code").cloned().expect("a code"))
}

fn b64(s: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s)
}

fn unb64(s: &str) -> Vec<u8> {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(s).unwrap()
}

fn token_err(r: Result<super::oidc::Identity, LoginError>) -> String {
    match r {
        Err(LoginError::Token(m)) => m,
        other => panic!("expected the token to be refused, got {other:?}"),
    }
}

/// Every refusal, on a real token `token` from `t`'s provider whose nonce is `nonce`.
async fn refuse_tampered(p: &Providers, t: &TenantClient, token: &str, nonce: &str) {
    let now = chrono::Utc::now();
    // The genuine token passes (so each refusal below is for its own reason).
    p.verify(t, token, nonce, now).await.expect("the genuine token verifies");
    let parts: Vec<&str> = token.split('.').collect();
    // Wrong signature: one bit of the signature flipped.
    let mut sig = unb64(parts[2]);
    sig[10] ^= 1;
    let bad_sig = format!("{}.{}.{}", parts[0], parts[1], b64(&sig));
    assert!(token_err(p.verify(t, &bad_sig, nonce, now).await).contains("signature"));
    // A changed claim under the original signature.
    let mut claims: serde_json::Value = serde_json::from_slice(&unb64(parts[1])).unwrap();
    claims["email"] = "mallory@evil.example".into();
    let forged = format!("{}.{}.{}", parts[0], b64(claims.to_string().as_bytes()), parts[2]);
    assert!(token_err(p.verify(t, &forged, nonce, now).await).contains("signature"));
    // Wrong audience: a token for this client checked as another client's.
    let other = TenantClient { client_id: "another-client".into(), ..t.clone() };
    assert!(token_err(p.verify(&other, token, nonce, now).await).contains("audience"));
    // Expired: checked two hours later.
    assert!(token_err(p.verify(t, token, nonce, now + chrono::Duration::hours(2)).await).contains("expired"));
    // Nonce replayed: the token of one sign-in presented to another.
    let (_, other_login) = p.begin(t, "http://127.0.0.1:9/auth/callback", "/t/x").await.unwrap();
    assert!(token_err(p.verify(t, token, &other_login.nonce, now).await).contains("nonce"));
    // alg none: the same claims, unsigned.
    let none = format!("{}.{}.", b64(br#"{"alg":"none","typ":"JWT"}"#), parts[1]);
    assert!(token_err(p.verify(t, &none, nonce, now).await).contains("unsigned"));
    // Algorithm confusion: HS256 "signed" with the client secret the attacker may know.
    let header = b64(br#"{"alg":"HS256","typ":"JWT"}"#);
    let signing_input = format!("{header}.{}", parts[1]);
    let mac = ring::hmac::sign(&ring::hmac::Key::new(ring::hmac::HMAC_SHA256, SECRET.as_bytes()), signing_input.as_bytes());
    let hs = format!("{signing_input}.{}", b64(mac.as_ref()));
    assert!(token_err(p.verify(t, &hs, nonce, now).await).contains("not allowed"));
    // Not a JWT at all.
    assert!(token_err(p.verify(t, "garbage", nonce, now).await).contains("not a JWT"));
}

#[tokio::test(flavor = "multi_thread")]
async fn keycloak_sign_in_and_every_tampered_token_refused() {
    let kc = Keycloak::shared();
    let redirect = "http://127.0.0.1:9/auth/callback";
    let users = [User { username: "alice", password: "alice-pw", email: "alice@a.example", groups: &["ops"] }];
    kc.import_realm(&realm("unit-kc", "swell", SECRET, redirect, "+", &users)).await.expect("realm imported");
    let t = client("a", &kc.issuer("unit-kc"), "openid email profile");
    let p = Providers::new();
    let (pending, code) = code_flow(&p, &t, redirect, "alice", "alice-pw").await;
    let (who, token) = p.finish(&t, redirect, &pending, &code).await.expect("code exchanged, ID token verified");
    assert_eq!(who.email.as_deref(), Some("alice@a.example"));
    assert_eq!(who.groups, vec!["ops".to_string()]);
    assert_eq!(who.issuer, kc.issuer("unit-kc"));
    // The code is single-use: the provider refuses it the second time.
    assert!(matches!(p.finish(&t, redirect, &pending, &code).await, Err(LoginError::Provider(_))));
    refuse_tampered(&p, &t, &token, &pending.nonce).await;
    // Wrong issuer, valid signature: the same realm reached as `localhost` names itself so.
    let other_issuer = TenantClient { issuer: kc.issuer("unit-kc").replace("127.0.0.1", "localhost"), ..t.clone() };
    assert!(token_err(p.verify(&other_issuer, &token, &pending.nonce, chrono::Utc::now()).await).contains("issuer"));
}

#[tokio::test(flavor = "multi_thread")]
async fn node_provider_sign_in_tampered_tokens_and_a_rotated_key() {
    let redirect = "http://127.0.0.1:9/auth/callback";
    let accounts = [Account { login: "bob", email: "bob@b.example", groups: &["ops", "dev"] }];
    let mut op = OidcProvider::start("swell", SECRET, &[redirect.to_string()], &[], &accounts).expect("oidc-provider starts");
    let t = client("b", &op.issuer(), "openid email profile groups");
    let p = Providers::new();
    let (pending, code) = code_flow(&p, &t, redirect, "bob", "any").await;
    let (who, token) = p.finish(&t, redirect, &pending, &code).await.expect("code exchanged, ID token verified");
    assert_eq!((who.subject.as_str(), who.email.as_deref()), ("bob", Some("bob@b.example")));
    assert_eq!(who.groups, vec!["ops".to_string(), "dev".to_string()]);
    refuse_tampered(&p, &t, &token, &pending.nonce).await;
    // The provider restarts with a new signing key: the cached keys do not know its kid, so
    // Swell fetches them again and the new token verifies; the old one no longer does.
    op.restart().expect("restart");
    let (pending2, code2) = code_flow(&p, &t, redirect, "bob", "any").await;
    p.finish(&t, redirect, &pending2, &code2).await.expect("a token under the new key verifies after the keys are fetched again");
    assert!(token_err(p.verify(&t, &token, &pending.nonce, chrono::Utc::now()).await).contains("no key"));
}

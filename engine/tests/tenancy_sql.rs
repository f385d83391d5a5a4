//! Tenancy in SQL on SQLite and PostgreSQL: API tokens (hash only, revoked, expired, last
//! use), role bindings that end a user's sessions, sessions' expiry and cleanup, and secret
//! rotation under a new key with the old one retired after.

mod common;

use chrono::{Duration, Utc};
use engine::access::{Role, new_token, token_hash};
use engine::crypto::Sealer;
use engine::store::{self, sessions, tenancy};

const OLD: &str = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";
const NEW: &str = "f0e1d2c3b4a5968778695a4b3c2d1e0ff0e1d2c3b4a5968778695a4b3c2d1e0f";

#[tokio::test]
async fn tokens_are_stored_as_hashes_and_refused_when_revoked_or_expired() {
    for t in common::databases().await {
        let db = &t.db;
        let a = tenancy::add_tenant(db, "a", "A", "test").await.unwrap();
        assert!(tenancy::add_tenant(db, "a", "A", "test").await.unwrap_err().to_string().contains("exists already"), "{}", t.kind);
        let (token, hash) = new_token().unwrap();
        tenancy::create_token(db, a.id, "ci", &hash, Role::Operator, None, "test").await.unwrap();
        let row = tenancy::tokens(db, a.id).await.unwrap().pop().unwrap();
        assert_eq!(row.hash, token_hash(&token));
        assert!(!row.hash.contains(&token[6..]), "{}: the token itself is not stored", t.kind);
        let now = Utc::now();
        let (p, expires) = tenancy::token_principal(db, &token, now).await.unwrap().unwrap();
        assert_eq!(expires, None);
        assert_eq!((p.tenant.as_str(), p.role, p.actor.as_str()), ("a", Role::Operator, "token:ci"));
        assert!(tenancy::tokens(db, a.id).await.unwrap()[0].last_used_at.is_some(), "{}: last use recorded", t.kind);
        assert_eq!(tenancy::token_principal(db, "swell_unknown", now).await.unwrap().unwrap_err(), "unknown API token");
        // A second live token of the same name is refused; after revocation it is allowed.
        assert!(tenancy::create_token(db, a.id, "ci", &new_token().unwrap().1, Role::Viewer, None, "test").await.is_err());
        assert!(tenancy::revoke_token(db, a.id, "ci", "test").await.unwrap());
        assert_eq!(tenancy::token_principal(db, &token, now).await.unwrap().unwrap_err(), "the API token was revoked");
        let (short, short_hash) = new_token().unwrap();
        tenancy::create_token(db, a.id, "short", &short_hash, Role::Viewer, Some(now + Duration::seconds(30)), "test").await.unwrap();
        assert!(tenancy::token_principal(db, &short, now).await.unwrap().is_ok());
        assert_eq!(tenancy::token_principal(db, &short, now + Duration::seconds(31)).await.unwrap().unwrap_err(), "the API token has expired");
        let audit: Vec<String> = store::audit_entries(db, a.id, 20).await.unwrap().into_iter().map(|e| e.action).collect();
        assert!(audit.contains(&"token.create".to_string()) && audit.contains(&"token.revoke".to_string()), "{}: {audit:?}", t.kind);
    }
}

#[tokio::test]
async fn roles_come_from_bindings_and_a_change_ends_the_users_sessions() {
    for t in common::databases().await {
        let db = &t.db;
        let a = tenancy::add_tenant(db, "a", "A", "test").await.unwrap();
        let b = tenancy::add_tenant(db, "b", "B", "test").await.unwrap();
        tenancy::grant(db, a.id, "alice@a.example", Role::Viewer, "test").await.unwrap();
        tenancy::grant(db, a.id, "sub-123", Role::Operator, "test").await.unwrap();
        assert_eq!(tenancy::bound_role(db, a.id, Some("alice@a.example"), "sub-123").await.unwrap(), Some(Role::Operator), "{}: highest wins", t.kind);
        assert_eq!(tenancy::bound_role(db, b.id, Some("alice@a.example"), "sub-123").await.unwrap(), None, "{}: bindings are per tenant", t.kind);
        let user = tenancy::upsert_user(db, a.id, "https://id", "sub-123", Some("alice@a.example"), None).await.unwrap();
        let again = tenancy::upsert_user(db, a.id, "https://id", "sub-123", Some("alice@a.example"), Some("Alice")).await.unwrap();
        assert_eq!(user.id, again.id);
        let key = engine::access::user_key(a.id, user.id);
        let later = Utc::now() + Duration::hours(1);
        sessions::save(db, "s1", b"{}".to_vec(), later, Some(key.clone())).await.unwrap();
        sessions::save(db, "s2", b"{}".to_vec(), later, None).await.unwrap();
        tenancy::grant(db, a.id, "alice@a.example", Role::Admin, "test").await.unwrap();
        assert!(sessions::load(db, "s1", Utc::now()).await.unwrap().is_none(), "{}: a new role ends the user's session", t.kind);
        assert!(sessions::load(db, "s2", Utc::now()).await.unwrap().is_some(), "{}: others' sessions stay", t.kind);
        sessions::save(db, "s3", b"{}".to_vec(), later, Some(key)).await.unwrap();
        assert!(tenancy::revoke(db, a.id, "alice@a.example", "test").await.unwrap());
        assert!(sessions::load(db, "s3", Utc::now()).await.unwrap().is_none(), "{}: revoking ends it too", t.kind);
        assert_eq!(tenancy::bound_role(db, a.id, Some("alice@a.example"), "nobody").await.unwrap(), None);
        assert!(tenancy::grant(db, a.id, " ", Role::Viewer, "test").await.is_err());
    }
}

#[tokio::test]
async fn sessions_expire_and_the_cleanup_deletes_them() {
    for t in common::databases().await {
        let db = &t.db;
        let now = Utc::now();
        assert!(sessions::create(db, "x", b"1".to_vec(), now + Duration::hours(1), None).await.unwrap());
        assert!(!sessions::create(db, "x", b"2".to_vec(), now + Duration::hours(1), None).await.unwrap(), "{}: a taken id is reported", t.kind);
        sessions::save(db, "x", b"3".to_vec(), now + Duration::hours(1), None).await.unwrap();
        assert_eq!(sessions::load(db, "x", now).await.unwrap().unwrap().0, b"3");
        sessions::save(db, "old", b"1".to_vec(), now - Duration::seconds(1), None).await.unwrap();
        assert!(sessions::load(db, "old", now).await.unwrap().is_none(), "{}: an expired session reads as none", t.kind);
        assert_eq!(sessions::count(db).await.unwrap(), 2);
        assert_eq!(sessions::delete_expired(db, now).await.unwrap(), 1);
        assert_eq!(sessions::count(db).await.unwrap(), 1);
        sessions::delete(db, "x").await.unwrap();
        assert_eq!(sessions::count(db).await.unwrap(), 0);
    }
}

#[tokio::test]
async fn rotation_reseals_every_secret_and_the_retired_key_is_a_clear_error() {
    for t in common::databases().await {
        let db = &t.db;
        let old = Sealer::from_hex(OLD).unwrap();
        let a = tenancy::add_tenant(db, "a", "A", "test").await.unwrap();
        store::put_webhook_source(db, a.id, "orders", old.seal(&engine::crypto::purpose::webhook("a", "orders"), b"hook-secret").unwrap(), "test").await.unwrap();
        store::put_trigger_auth(db, a.id, "shop", "rabbit", &["password".into()], old.seal(&store::trigger_auth_purpose("a", "shop", "rabbit"), b"{\"password\":\"pw\"}").unwrap(), "test").await.unwrap();
        store::register_cluster(db, "east", "kubeconfig", Some(old.seal(&engine::crypto::purpose::cluster("east"), b"kubeconfig").unwrap()), a.id).await.unwrap();
        let oidc = tenancy::OidcSettings {
            issuer: "https://id.example".into(),
            client_id: "swell".into(),
            client_secret_enc: Some(old.seal(&tenancy::oidc_secret_purpose("a"), b"client-secret").unwrap()),
            scopes: vec!["openid".into()],
            groups_claim: "groups".into(),
            role_map: Default::default(),
        };
        tenancy::set_oidc(db, a.id, &oidc, "test").await.unwrap();
        // A rotation with a key that cannot open them changes nothing.
        let stranger = Sealer::from_hex(NEW).unwrap();
        assert!(tenancy::rotate_secrets(db, &stranger, "test").await.is_err(), "{}", t.kind);
        let rotating = Sealer::from_hex(NEW).unwrap().with_previous(&[OLD.to_string()]).unwrap();
        let r = tenancy::rotate_secrets(db, &rotating, "test").await.unwrap();
        assert_eq!((r.resealed, r.current), (4, 0), "{}", t.kind);
        assert_eq!(tenancy::rotate_secrets(db, &rotating, "test").await.unwrap(), tenancy::Rotation { resealed: 0, current: 4 });
        // With the old key retired, everything still opens under the new one alone.
        let new_only = Sealer::from_hex(NEW).unwrap();
        let hook = store::webhook_secret(db, "a", "orders").await.unwrap().unwrap();
        assert_eq!(new_only.open(&engine::crypto::purpose::webhook("a", "orders"), &hook).unwrap(), b"hook-secret");
        let auth = store::trigger_auth_sealed(db, "a", "shop", "rabbit").await.unwrap().unwrap();
        assert_eq!(new_only.open(&store::trigger_auth_purpose("a", "shop", "rabbit"), &auth).unwrap(), b"{\"password\":\"pw\"}");
        let secret = tenancy::oidc(db, a.id).await.unwrap().unwrap().client_secret_enc.unwrap();
        assert_eq!(new_only.open(&tenancy::oidc_secret_purpose("a"), &secret).unwrap(), b"client-secret");
        // What the old key alone sealed now is refused with the reason, not a panic.
        let err = Sealer::from_hex(OLD).unwrap().open(&tenancy::oidc_secret_purpose("a"), &secret).unwrap_err().to_string();
        assert!(err.contains("retired"), "{}: {err}", t.kind);
    }
}

#[tokio::test]
async fn a_namespace_belongs_to_one_tenant() {
    for t in common::databases().await {
        let db = &t.db;
        let a = tenancy::add_tenant(db, "a", "A", "test").await.unwrap();
        let b = tenancy::add_tenant(db, "b", "B", "test").await.unwrap();
        assert!(tenancy::namespace_tenant(db, "east", "shop").await.unwrap().is_none());
        tenancy::map_namespace(db, a.id, "east", "shop", "test").await.unwrap();
        tenancy::map_namespace(db, a.id, "east", "shop", "test").await.unwrap();
        assert_eq!(tenancy::namespace_tenant(db, "east", "shop").await.unwrap().unwrap().slug, "a", "{}", t.kind);
        let err = tenancy::map_namespace(db, b.id, "east", "shop", "test").await.unwrap_err().to_string();
        assert!(err.contains("belongs to tenant \"a\""), "{}: {err}", t.kind);
        assert!(tenancy::namespace_tenant(db, "west", "shop").await.unwrap().is_none(), "{}: per cluster", t.kind);
        assert_eq!(tenancy::namespaces(db, a.id).await.unwrap(), vec!["east/shop".to_string()]);
    }
}

//! Who is calling and what they may do: the three roles, the principal a session or an API
//! token stands for, the one check every surface makes, and API tokens (256 random bits,
//! shown once; only their SHA-256 is kept).

use serde::{Deserialize, Serialize};

use crate::{Error, Result};

/// What a caller may do in its tenant; each role can do everything the one before can.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Reads everything in the tenant.
    Viewer,
    /// Overrides, pauses, resumes, replays, retrains.
    Operator,
    /// Objects, sources, authentication, clusters, tokens, users.
    Admin,
}

impl Role {
    pub const ALL: [Role; 3] = [Role::Viewer, Role::Operator, Role::Admin];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Viewer => "viewer",
            Role::Operator => "operator",
            Role::Admin => "admin",
        }
    }

    /// Parses `field`'s value, naming the field and the choices when it is none of them.
    pub fn parse(field: &str, s: &str) -> Result<Role> {
        Role::ALL
            .into_iter()
            .find(|r| r.as_str() == s.trim())
            .ok_or_else(|| Error::invalid(field, format!("{s:?} is not a role; use viewer, operator or admin")))
    }
}

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A signed-in user or an API token, bound to one tenant. Stored in the session; put in
/// each request by the server's authentication layer.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Principal {
    pub tenant: String,
    pub tenant_id: i32,
    /// What the audit log names: `user:alice@example.com`, `token:ci`, `local:demo`.
    pub actor: String,
    pub role: Role,
    pub user_id: Option<i32>,
    pub token_id: Option<i32>,
}

impl Principal {
    /// The key that ties a session to its user (revoking the user ends the session).
    pub fn user_key(&self) -> Option<String> {
        self.user_id.map(|u| user_key(self.tenant_id, u))
    }
}

pub fn user_key(tenant_id: i32, user_id: i32) -> String {
    format!("{tenant_id}/{user_id}")
}

/// The one authorization check: the caller must be signed in to `tenant` with at least
/// `needed`. `action` names what was asked, for the refusal's message.
pub fn authorize<'a>(caller: Option<&'a Principal>, tenant: &str, needed: Role, action: &str) -> Result<&'a Principal> {
    let Some(p) = caller else {
        return Err(Error::Refused(format!("{action}: not signed in; sign in at /t/{tenant}/login or send an API token (Authorization: Bearer …)")));
    };
    if p.tenant != tenant {
        // The same answer whether or not the tenant exists: nothing is learnt about others.
        return Err(Error::Refused(format!("{action}: {} is signed in to tenant {:?}, not {tenant:?}", p.actor, p.tenant)));
    }
    if p.role < needed {
        return Err(Error::Refused(format!("{action}: {} is {} in {tenant:?}; this needs {needed}", p.actor, p.role)));
    }
    Ok(p)
}

/// What API tokens start with, so scanners and people recognise one.
pub const TOKEN_PREFIX: &str = "swell_";

/// A new API token and the hash to store.
pub fn new_token() -> Result<(String, String)> {
    let token = format!("{TOKEN_PREFIX}{}", crate::crypto::random_hex(32)?);
    let hash = token_hash(&token);
    Ok((token, hash))
}

/// SHA-256 of a token, hex. 256 random bits need no slow hash: there is nothing to guess.
pub fn token_hash(token: &str) -> String {
    ring::digest::digest(&ring::digest::SHA256, token.trim().as_bytes()).as_ref().iter().map(|b| format!("{b:02x}")).collect()
}

/// A tenant's short name: lowercase letters, digits and dashes, 1–63, as in a DNS label
/// (it appears in URLs: `/t/{tenant}`).
pub fn check_slug(field: &str, slug: &str) -> Result<()> {
    let ok = (1..=63).contains(&slug.len())
        && slug.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !slug.starts_with('-')
        && !slug.ends_with('-');
    if ok { Ok(()) } else { Err(Error::invalid(field, format!("{slug:?} must be 1-63 lowercase letters, digits or dashes, not starting or ending with a dash"))) }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(tenant: &str, role: Role) -> Principal {
        Principal { tenant: tenant.into(), tenant_id: 1, actor: "user:a@x".into(), role, user_id: Some(1), token_id: None }
    }

    #[test]
    fn authorize_needs_the_tenant_and_the_role() {
        assert!(authorize(None, "a", Role::Viewer, "load").unwrap_err().to_string().contains("not signed in"));
        let op = p("a", Role::Operator);
        assert!(authorize(Some(&op), "a", Role::Viewer, "x").is_ok());
        assert!(authorize(Some(&op), "a", Role::Operator, "x").is_ok());
        let e = authorize(Some(&op), "a", Role::Admin, "token create").unwrap_err().to_string();
        assert_eq!(e, "refused: token create: user:a@x is operator in \"a\"; this needs admin");
        assert!(authorize(Some(&p("b", Role::Admin)), "a", Role::Viewer, "x").unwrap_err().to_string().contains("not \"a\""));
    }

    #[test]
    fn tokens_are_random_and_hashed() {
        let (t1, h1) = new_token().unwrap();
        let (t2, _) = new_token().unwrap();
        assert!(t1.starts_with(TOKEN_PREFIX) && t1.len() == TOKEN_PREFIX.len() + 64 && t1 != t2);
        assert_eq!(token_hash(&t1), h1);
        assert!(!h1.contains(&t1[6..]));
    }

    #[test]
    fn roles_parse_and_order() {
        assert_eq!(Role::parse("role", "operator").unwrap(), Role::Operator);
        assert_eq!(Role::parse("role", "root").unwrap_err().to_string(), "role: \"root\" is not a role; use viewer, operator or admin");
        assert!(Role::Viewer < Role::Operator && Role::Operator < Role::Admin);
    }

    #[test]
    fn slugs() {
        for ok in ["a", "team-a", "t1"] {
            check_slug("tenant", ok).unwrap();
        }
        for bad in ["", "A", "-a", "a-", "a/b", &"a".repeat(64)] {
            assert!(check_slug("tenant", bad).is_err(), "{bad}");
        }
    }
}

//! Admin commands on the local database: `swell tenant`, `swell user`, `swell token`,
//! `swell secrets rotate`. Each change is audited as `cli`; tokens are printed once.

use clap::Subcommand;
use engine::DatabaseConnection;
use engine::access::Role;
use engine::store::tenancy;

use crate::config::Config;

const ACTOR: &str = "cli";

#[derive(Subcommand)]
pub enum TenantCommand {
    /// Create a tenant (its pages are /t/SLUG).
    ///
    /// Example: swell tenant add team-a --name "Team A"
    Add {
        slug: String,
        /// A display name (default: the slug).
        #[arg(long)]
        name: Option<String>,
    },
    /// List tenants with their identity provider and namespaces.
    ///
    /// Example: swell tenant list
    List,
    /// Give a cluster's namespace to the tenant (its objects then belong to it, not to the
    /// cluster's tenant).
    ///
    /// Example: swell tenant add-namespace team-a east/shop
    AddNamespace {
        slug: String,
        /// CLUSTER/NAMESPACE
        namespace: String,
    },
    /// Set the tenant's OIDC provider (authorization code with PKCE).
    ///
    /// Example: swell tenant set-oidc team-a --issuer https://id.example.com/realms/a
    /// --client-id swell --client-secret-file /run/secrets/oidc --group-role sre=operator
    SetOidc {
        slug: String,
        /// The issuer URL (its /.well-known/openid-configuration is read).
        #[arg(long)]
        issuer: String,
        #[arg(long)]
        client_id: String,
        /// A file holding the client secret (none for a public client); never on the command line.
        #[arg(long)]
        client_secret_file: Option<std::path::PathBuf>,
        #[arg(long, default_value = "openid email profile")]
        scopes: String,
        /// The ID token claim listing the user's groups.
        #[arg(long, default_value = "groups")]
        groups_claim: String,
        /// `group=role`: members of the group get the role (repeatable).
        #[arg(long = "group-role", value_name = "GROUP=ROLE")]
        group_roles: Vec<String>,
    },
}

#[derive(Subcommand)]
pub enum UserCommand {
    /// Give a user (email address or ID token subject) a role in a tenant; ends their sessions.
    ///
    /// Example: swell user grant ana@example.com --tenant team-a --role operator
    Grant {
        user: String,
        #[arg(long)]
        tenant: String,
        /// viewer, operator or admin.
        #[arg(long)]
        role: String,
    },
    /// Take a user's role away and end their sessions.
    ///
    /// Example: swell user revoke ana@example.com --tenant team-a
    Revoke {
        user: String,
        #[arg(long)]
        tenant: String,
    },
    /// Role bindings and users seen signing in.
    ///
    /// Example: swell user list --tenant team-a
    List {
        #[arg(long)]
        tenant: String,
    },
}

#[derive(Subcommand)]
pub enum TokenCommand {
    /// Create an API token (printed once on stdout; only its hash is kept).
    ///
    /// Example: swell token create ci --tenant team-a --role operator --expires-in 30d
    Create {
        name: String,
        #[arg(long)]
        tenant: String,
        #[arg(long, default_value = "viewer")]
        role: String,
        /// e.g. 90m, 12h, 30d; none for a token that does not expire.
        #[arg(long)]
        expires_in: Option<String>,
    },
    /// List a tenant's API tokens (names, roles, expiry; never the tokens).
    ///
    /// Example: swell token list --tenant team-a
    List {
        #[arg(long)]
        tenant: String,
    },
    /// Revoke an API token: it is refused from then on.
    ///
    /// Example: swell token revoke ci --tenant team-a
    Revoke {
        name: String,
        #[arg(long)]
        tenant: String,
    },
}

type Outcome = anyhow::Result<Result<(), String>>;

fn refuse<T>(e: engine::Error) -> Result<T, String> {
    Err(e.to_string())
}

pub async fn tenant(db: &DatabaseConnection, config: &Config, cmd: &TenantCommand) -> Outcome {
    match cmd {
        TenantCommand::Add { slug, name } => match tenancy::add_tenant(db, slug, name.as_deref().unwrap_or(slug), ACTOR).await {
            Ok(t) => {
                eprintln!("tenant {} created; set its sign-in with `swell tenant set-oidc {}`", t.slug, t.slug);
                Ok(Ok(()))
            }
            Err(e) => Ok(refuse(e)),
        },
        TenantCommand::List => {
            println!("{:<20} {:<24} {:<48} {:<16} NAMESPACES", "TENANT", "NAME", "ISSUER", "CLIENT");
            for (t, o) in tenancy::list_tenants(db).await? {
                let (issuer, client) = o.map(|o| (o.issuer, o.client_id)).unwrap_or_else(|| ("-".into(), "-".into()));
                let ns = tenancy::namespaces(db, t.id).await?.join(",");
                println!("{:<20} {:<24} {:<48} {client:<16} {}", t.slug, t.name, issuer, if ns.is_empty() { "-" } else { &ns });
            }
            Ok(Ok(()))
        }
        TenantCommand::AddNamespace { slug, namespace } => {
            let t = match tenancy::tenant(db, slug).await {
                Ok(t) => t,
                Err(e) => return Ok(refuse(e)),
            };
            let Some((cluster, ns)) = namespace.split_once('/') else { return Ok(Err(format!("{namespace:?}: give CLUSTER/NAMESPACE, e.g. east/shop"))) };
            match tenancy::map_namespace(db, t.id, cluster, ns, ACTOR).await {
                Ok(()) => {
                    eprintln!("{cluster}/{ns} belongs to tenant {slug}; its objects move there at their next sync");
                    Ok(Ok(()))
                }
                Err(e) => Ok(refuse(e)),
            }
        }
        TenantCommand::SetOidc { slug, issuer, client_id, client_secret_file, scopes, groups_claim, group_roles } => {
            let t = match tenancy::tenant(db, slug).await {
                Ok(t) => t,
                Err(e) => return Ok(Err(format!("{e}; create it with `swell tenant add {slug}`"))),
            };
            let mut role_map = std::collections::BTreeMap::new();
            for gr in group_roles {
                let Some((g, r)) = gr.split_once('=') else { return Ok(Err(format!("--group-role {gr:?} must be group=role"))) };
                match Role::parse("--group-role", r) {
                    Ok(role) => role_map.insert(g.trim().to_string(), role),
                    Err(e) => return Ok(refuse(e)),
                };
            }
            let client_secret_enc = match client_secret_file {
                None => None,
                Some(path) => {
                    let secret = match std::fs::read_to_string(path) {
                        Ok(s) => s.trim().to_string(),
                        Err(e) => return Ok(Err(format!("--client-secret-file {}: {e}", path.display()))),
                    };
                    let sealer = match config.require_sealer("OIDC client secrets") {
                        Ok(s) => s,
                        Err(e) => return Ok(Err(e)),
                    };
                    Some(sealer.seal(&tenancy::oidc_secret_purpose(slug), secret.as_bytes())?)
                }
            };
            let settings = tenancy::OidcSettings {
                issuer: issuer.clone(),
                client_id: client_id.clone(),
                client_secret_enc,
                scopes: scopes.split_whitespace().map(String::from).collect(),
                groups_claim: groups_claim.clone(),
                role_map,
            };
            match tenancy::set_oidc(db, t.id, &settings, ACTOR).await {
                Ok(()) => {
                    eprintln!("tenant {slug} signs in with {issuer}; register {}/auth/callback as the client's redirect URI", public_url(config));
                    Ok(Ok(()))
                }
                Err(e) => Ok(refuse(e)),
            }
        }
    }
}

pub fn public_url(config: &Config) -> String {
    config.public_url.clone().unwrap_or_else(|| format!("http://{}", config.bind)).trim_end_matches('/').to_string()
}

pub async fn user(db: &DatabaseConnection, cmd: &UserCommand) -> Outcome {
    match cmd {
        UserCommand::Grant { user, tenant, role } => {
            let (t, role) = match (tenancy::tenant(db, tenant).await, Role::parse("--role", role)) {
                (Ok(t), Ok(r)) => (t, r),
                (Err(e), _) | (_, Err(e)) => return Ok(refuse(e)),
            };
            match tenancy::grant(db, t.id, user, role, ACTOR).await {
                Ok(()) => {
                    eprintln!("{user} is {role} in {tenant}");
                    Ok(Ok(()))
                }
                Err(e) => Ok(refuse(e)),
            }
        }
        UserCommand::Revoke { user, tenant } => {
            let t = match tenancy::tenant(db, tenant).await {
                Ok(t) => t,
                Err(e) => return Ok(refuse(e)),
            };
            if tenancy::revoke(db, t.id, user, ACTOR).await? {
                eprintln!("{user} has no role in {tenant} now; their sessions are ended");
                Ok(Ok(()))
            } else {
                Ok(Err(format!("{user} has no role binding in {tenant}")))
            }
        }
        UserCommand::List { tenant } => {
            let t = match tenancy::tenant(db, tenant).await {
                Ok(t) => t,
                Err(e) => return Ok(refuse(e)),
            };
            println!("{:<40} ROLE", "USER");
            for b in tenancy::bindings(db, t.id).await? {
                println!("{:<40} {}", b.principal, b.role);
            }
            for u in tenancy::users(db, t.id).await? {
                eprintln!("seen: {} ({}) last signed in {}", u.email.as_deref().unwrap_or(&u.subject), u.issuer, u.last_login_at.format("%Y-%m-%d %H:%M"));
            }
            Ok(Ok(()))
        }
    }
}

pub async fn token(db: &DatabaseConnection, cmd: &TokenCommand) -> Outcome {
    match cmd {
        TokenCommand::Create { name, tenant, role, expires_in } => {
            let (t, role) = match (tenancy::tenant(db, tenant).await, Role::parse("--role", role)) {
                (Ok(t), Ok(r)) => (t, r),
                (Err(e), _) | (_, Err(e)) => return Ok(refuse(e)),
            };
            let expires_at = match expires_in.as_deref().map(humantime::parse_duration) {
                None => None,
                Some(Ok(d)) => Some(chrono::Utc::now() + chrono::Duration::from_std(d).unwrap_or(chrono::Duration::MAX)),
                Some(Err(e)) => return Ok(Err(format!("--expires-in {:?}: {e}; write e.g. 90m, 12h or 30d", expires_in.as_deref().unwrap_or_default()))),
            };
            let (secret, hash) = engine::access::new_token()?;
            match tenancy::create_token(db, t.id, name, &hash, role, expires_at, ACTOR).await {
                Ok(_) => {
                    println!("{secret}");
                    eprintln!("token {name} ({role} in {tenant}) created; it is shown only now. Send it as `Authorization: Bearer <token>`.");
                    Ok(Ok(()))
                }
                Err(e) => Ok(refuse(e)),
            }
        }
        TokenCommand::List { tenant } => {
            let t = match tenancy::tenant(db, tenant).await {
                Ok(t) => t,
                Err(e) => return Ok(refuse(e)),
            };
            println!("{:<24} {:<9} {:<8} {:<17} {:<17} CREATED BY", "NAME", "ROLE", "STATE", "EXPIRES", "LAST USED");
            let fmt = |d: Option<chrono::DateTime<chrono::Utc>>| d.map(|d| d.format("%Y-%m-%d %H:%M").to_string()).unwrap_or_else(|| "-".into());
            let now = chrono::Utc::now();
            for k in tenancy::tokens(db, t.id).await? {
                let state = if k.revoked_at.is_some() { "revoked" } else if k.expires_at.is_some_and(|e| e <= now) { "expired" } else { "live" };
                println!("{:<24} {:<9} {:<8} {:<17} {:<17} {}", k.name, k.role, state, fmt(k.expires_at), fmt(k.last_used_at), k.created_by);
            }
            Ok(Ok(()))
        }
        TokenCommand::Revoke { name, tenant } => {
            let t = match tenancy::tenant(db, tenant).await {
                Ok(t) => t,
                Err(e) => return Ok(refuse(e)),
            };
            if tenancy::revoke_token(db, t.id, name, ACTOR).await? {
                eprintln!("token {name} revoked");
                Ok(Ok(()))
            } else {
                Ok(Err(format!("no live token named {name} in {tenant}")))
            }
        }
    }
}

/// `swell secrets rotate`: re-seals everything under `secret_key`.
pub async fn rotate(db: &DatabaseConnection, config: &Config) -> Outcome {
    let sealer = match config.require_sealer("every secret") {
        Ok(s) => s,
        Err(e) => return Ok(Err(e)),
    };
    match tenancy::rotate_secrets(db, &sealer, ACTOR).await {
        Ok(r) => {
            eprintln!(
                "{} secrets re-sealed under key {} ({} were already); the keys in previous_secret_keys can be retired now",
                r.resealed,
                sealer.key_id(),
                r.current
            );
            Ok(Ok(()))
        }
        Err(e) => Ok(Err(format!("{e}; nothing was changed"))),
    }
}


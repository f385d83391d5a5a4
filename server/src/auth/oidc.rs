//! OIDC sign-in per tenant (openidconnect on oauth2): discovery and JWKS per issuer, cached
//! and fetched again when a token names a key not seen yet; authorization code with PKCE,
//! state and nonce; the ID token's signature, issuer, audience, expiry and nonce verified.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use openidconnect::core::{
    CoreAuthDisplay, CoreClaimName, CoreClaimType, CoreClient, CoreClientAuthMethod, CoreGenderClaim, CoreGrantType, CoreJsonWebKey,
    CoreJweContentEncryptionAlgorithm, CoreJweKeyManagementAlgorithm, CoreJwsSigningAlgorithm, CoreResponseMode, CoreResponseType,
    CoreSubjectIdentifierType,
};
use openidconnect::{
    AdditionalClaims, AdditionalProviderMetadata, AuthenticationFlow, AuthorizationCode, ClaimsVerificationError, ClientId, ClientSecret, CsrfToken,
    IssuerUrl, Nonce, PkceCodeChallenge, PkceCodeVerifier, ProviderMetadata, RedirectUrl, Scope, SignatureVerificationError, TokenResponse,
};
use serde::{Deserialize, Serialize};

/// Discovery documents are fetched again after this long (and at once on an unknown key).
const METADATA_TTL: Duration = Duration::from_secs(3600);

#[derive(Clone, Debug, Deserialize, Serialize)]
pub struct LogoutMetadata {
    pub end_session_endpoint: Option<String>,
}
impl AdditionalProviderMetadata for LogoutMetadata {}

type Metadata = ProviderMetadata<
    LogoutMetadata,
    CoreAuthDisplay,
    CoreClientAuthMethod,
    CoreClaimName,
    CoreClaimType,
    CoreGrantType,
    CoreJweContentEncryptionAlgorithm,
    CoreJweKeyManagementAlgorithm,
    CoreJsonWebKey,
    CoreResponseMode,
    CoreResponseType,
    CoreSubjectIdentifierType,
>;

/// Every claim of the ID token, to read the tenant's groups claim (after verification).
#[derive(Clone, Debug, Deserialize, Serialize)]
pub struct AllClaims {
    #[serde(flatten)]
    pub rest: serde_json::Map<String, serde_json::Value>,
}
impl AdditionalClaims for AllClaims {}

type IdToken = openidconnect::IdToken<AllClaims, CoreGenderClaim, CoreJweContentEncryptionAlgorithm, CoreJwsSigningAlgorithm>;

/// A tenant's provider settings with the client secret opened.
#[derive(Clone)]
pub struct TenantClient {
    pub tenant: String,
    pub tenant_id: i32,
    pub issuer: String,
    pub client_id: String,
    pub client_secret: Option<String>,
    pub scopes: Vec<String>,
    pub groups_claim: String,
    pub role_map: std::collections::BTreeMap<String, engine::access::Role>,
}

impl std::fmt::Debug for TenantClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TenantClient").field("tenant", &self.tenant).field("issuer", &self.issuer).field("client_id", &self.client_id).finish_non_exhaustive()
    }
}

/// A sign-in under way, kept in the (pre-login) session until the provider sends the user back.
#[derive(Clone, Debug, Deserialize, Serialize)]
pub struct Pending {
    pub tenant: String,
    pub state: String,
    pub nonce: String,
    pub pkce_verifier: String,
    /// Where to go after signing in (a path under `/t/{tenant}`).
    pub next: String,
}

/// Who the provider says signed in, from a verified ID token.
#[derive(Clone, Debug, PartialEq)]
pub struct Identity {
    pub issuer: String,
    pub subject: String,
    pub email: Option<String>,
    pub name: Option<String>,
    pub groups: Vec<String>,
}

/// Why a sign-in failed. The message is safe to show: it never holds a token or secret.
#[derive(Debug)]
pub enum LoginError {
    /// The provider could not be reached or answered nonsense.
    Provider(String),
    /// The ID token failed a check (signature, issuer, audience, expiry, nonce, alg).
    Token(String),
    /// The callback does not belong to a sign-in started here (state, session).
    Flow(String),
}

impl std::error::Error for LoginError {}

impl std::fmt::Display for LoginError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            LoginError::Provider(m) => write!(f, "identity provider: {m}"),
            LoginError::Token(m) => write!(f, "ID token refused: {m}"),
            LoginError::Flow(m) => write!(f, "sign-in: {m}"),
        }
    }
}

struct Cached {
    metadata: Arc<Metadata>,
    fetched: Instant,
}

/// Discovery documents (with their JWKS) by issuer, shared by every tenant using it.
pub struct Providers {
    http: reqwest::Client,
    cache: Mutex<HashMap<String, Cached>>,
}

impl Default for Providers {
    fn default() -> Self {
        Self::new()
    }
}

impl Providers {
    pub fn new() -> Providers {
        let http = reqwest::Client::builder()
            // The token endpoint must answer, not send us elsewhere (SSRF guard, per the spec).
            .redirect(reqwest::redirect::Policy::none())
            .timeout(Duration::from_secs(10))
            .build()
            .expect("HTTP client");
        Providers { http, cache: Mutex::new(HashMap::new()) }
    }

    /// The issuer's discovery document with its keys; `fresh` skips the cache.
    pub async fn metadata(&self, issuer: &str, fresh: bool) -> Result<Arc<Metadata>, LoginError> {
        if !fresh {
            if let Some(c) = self.cache.lock().expect("cache lock").get(issuer) {
                if c.fetched.elapsed() < METADATA_TTL {
                    return Ok(c.metadata.clone());
                }
            }
        }
        let url = IssuerUrl::new(issuer.to_string()).map_err(|e| LoginError::Provider(format!("issuer {issuer:?}: {e}")))?;
        let metadata = Metadata::discover_async(url, &self.http).await.map_err(|e| LoginError::Provider(format!("discovery at {issuer}: {}", error_chain(&e))))?;
        let metadata = Arc::new(metadata);
        self.cache.lock().expect("cache lock").insert(issuer.to_string(), Cached { metadata: metadata.clone(), fetched: Instant::now() });
        Ok(metadata)
    }

    fn client(metadata: &Metadata, t: &TenantClient, redirect: &str) -> Result<CoreClient<
        openidconnect::EndpointSet,
        openidconnect::EndpointNotSet,
        openidconnect::EndpointNotSet,
        openidconnect::EndpointNotSet,
        openidconnect::EndpointMaybeSet,
        openidconnect::EndpointMaybeSet,
    >, LoginError> {
        let redirect = RedirectUrl::new(redirect.to_string()).map_err(|e| LoginError::Flow(format!("redirect URL {redirect:?}: {e} (config key public_url)")))?;
        Ok(CoreClient::from_provider_metadata(metadata.clone(), ClientId::new(t.client_id.clone()), t.client_secret.clone().map(ClientSecret::new)).set_redirect_uri(redirect))
    }

    /// Where to send the user to sign in, and what to remember until they come back.
    pub async fn begin(&self, t: &TenantClient, redirect: &str, next: &str) -> Result<(url::Url, Pending), LoginError> {
        let metadata = self.metadata(&t.issuer, false).await?;
        let client = Self::client(&metadata, t, redirect)?;
        let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
        let mut req = client.authorize_url(AuthenticationFlow::<CoreResponseType>::AuthorizationCode, CsrfToken::new_random, Nonce::new_random).set_pkce_challenge(challenge);
        for s in t.scopes.iter().filter(|s| *s != "openid") {
            req = req.add_scope(Scope::new(s.clone()));
        }
        let (url, state, nonce) = req.url();
        Ok((url, Pending { tenant: t.tenant.clone(), state: state.secret().clone(), nonce: nonce.secret().clone(), pkce_verifier: verifier.secret().clone(), next: next.into() }))
    }

    /// Trades the code for tokens (with the PKCE verifier) and verifies the ID token.
    /// Returns the identity and the raw ID token (kept for the provider's logout hint).
    pub async fn finish(&self, t: &TenantClient, redirect: &str, pending: &Pending, code: &str) -> Result<(Identity, String), LoginError> {
        let metadata = self.metadata(&t.issuer, false).await?;
        let client = Self::client(&metadata, t, redirect)?;
        let request = client.exchange_code(AuthorizationCode::new(code.to_string())).map_err(|e| LoginError::Provider(format!("no token endpoint: {e}")))?;
        let response = request
            .set_pkce_verifier(PkceCodeVerifier::new(pending.pkce_verifier.clone()))
            .request_async(&self.http)
            .await
            .map_err(|e| LoginError::Provider(format!("token exchange: {}", error_chain(&e))))?;
        let id_token = response.id_token().ok_or_else(|| LoginError::Provider("the token response has no ID token (is `openid` among the scopes?)".into()))?.to_string();
        let identity = self.verify(t, &id_token, &pending.nonce, chrono::Utc::now()).await?;
        Ok((identity, id_token))
    }

    /// Verifies an ID token as of `now`: signature by the issuer's keys (fetched again once
    /// if the token names an unknown key), issuer, audience = the tenant's client, expiry,
    /// nonce; `alg: none` and symmetric algorithms are refused.
    pub async fn verify(&self, t: &TenantClient, id_token: &str, nonce: &str, now: chrono::DateTime<chrono::Utc>) -> Result<Identity, LoginError> {
        let token: IdToken = id_token.parse().map_err(|e| LoginError::Token(format!("not a JWT: {e}")))?;
        let mut fresh = false;
        loop {
            let metadata = self.metadata(&t.issuer, fresh).await?;
            let client = Self::client(&metadata, t, "http://127.0.0.1/unused")?;
            let verifier = client
                .id_token_verifier()
                .set_allowed_algs(allowed_algs(&metadata))
                .set_time_fn(move || now);
            match token.claims(&verifier, &Nonce::new(nonce.to_string())) {
                Ok(claims) => return Ok(identity(claims, &t.groups_claim)),
                Err(ClaimsVerificationError::SignatureVerification(SignatureVerificationError::NoMatchingKey)) if !fresh => {
                    tracing::info!(issuer = %t.issuer, "ID token signed by a key not in the cached JWKS; fetching the provider's keys again");
                    fresh = true;
                }
                Err(e) => return Err(LoginError::Token(describe(&e))),
            }
        }
    }

    /// The provider's logout URL (RP-initiated logout), if it has one.
    pub async fn end_session(&self, t: &TenantClient, id_token: Option<&str>, after: &str) -> Option<url::Url> {
        let metadata = self.metadata(&t.issuer, false).await.ok()?;
        let mut url = url::Url::parse(metadata.additional_metadata().end_session_endpoint.as_deref()?).ok()?;
        {
            let mut q = url.query_pairs_mut();
            q.append_pair("client_id", &t.client_id).append_pair("post_logout_redirect_uri", after);
            if let Some(h) = id_token {
                q.append_pair("id_token_hint", h);
            }
        }
        Some(url)
    }
}

/// The asymmetric algorithms the provider lists (RS256 when it lists none).
fn allowed_algs(m: &Metadata) -> Vec<CoreJwsSigningAlgorithm> {
    use CoreJwsSigningAlgorithm::*;
    let listed: Vec<_> = m
        .id_token_signing_alg_values_supported()
        .iter()
        .filter(|a| !matches!(a, HmacSha256 | HmacSha384 | HmacSha512 | None))
        .cloned()
        .collect();
    if listed.is_empty() { vec![RsaSsaPkcs1V15Sha256] } else { listed }
}

fn identity(claims: &openidconnect::IdTokenClaims<AllClaims, CoreGenderClaim>, groups_claim: &str) -> Identity {
    let groups = match claims.additional_claims().rest.get(groups_claim) {
        Some(serde_json::Value::Array(a)) => a.iter().filter_map(|g| g.as_str()).map(|g| g.trim_start_matches('/').to_string()).collect(),
        Some(serde_json::Value::String(s)) => s.split([' ', ',']).filter(|g| !g.is_empty()).map(String::from).collect(),
        _ => Vec::new(),
    };
    Identity {
        issuer: claims.issuer().to_string(),
        subject: claims.subject().to_string(),
        email: claims.email().map(|e| e.to_string()),
        name: claims.name().and_then(|n| n.get(None)).map(|n| n.to_string()),
        groups,
    }
}

fn describe(e: &ClaimsVerificationError) -> String {
    match e {
        ClaimsVerificationError::SignatureVerification(s) => match s {
            SignatureVerificationError::NoSignature => "it is unsigned (alg none)".into(),
            SignatureVerificationError::DisallowedAlg(a) => format!("algorithm {a} is not allowed"),
            SignatureVerificationError::NoMatchingKey => "no key of the provider matches its signature".into(),
            SignatureVerificationError::CryptoError(_) => "its signature does not verify".into(),
            other => format!("signature: {other}"),
        },
        ClaimsVerificationError::Expired(_) => "it has expired".into(),
        ClaimsVerificationError::InvalidAudience(_) => "it was issued to another client (audience)".into(),
        ClaimsVerificationError::InvalidIssuer(_) => "it comes from another issuer".into(),
        ClaimsVerificationError::InvalidNonce(_) => "its nonce does not match this sign-in (replayed?)".into(),
        other => other.to_string(),
    }
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut src = e.source();
    while let Some(inner) = src {
        s.push_str(": ");
        s.push_str(&inner.to_string());
        src = inner.source();
    }
    s
}

//! Who may read the external metrics API, checked as a Kubernetes extension API server does:
//! the aggregator, by its client certificate (signed by the requestheader client CA the API
//! server publishes in kube-system/extension-apiserver-authentication, its CN among
//! `requestheader-allowed-names`), or a caller with a bearer token the API server vouches for
//! (TokenReview) who may `get` `externalmetrics` in the namespace (SubjectAccessReview).
//! Anything else is 401; an authenticated caller without the right is 403.

use std::collections::HashSet;
use std::sync::Arc;

use axum::http::StatusCode;
use k8s_openapi::api::authentication::v1::{TokenReview, TokenReviewSpec};
use k8s_openapi::api::authorization::v1::{ResourceAttributes, SubjectAccessReview, SubjectAccessReviewSpec};
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, PostParams};
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;

/// What the clusters' API servers say about their aggregators, and how to ask them about tokens.
pub struct Trust {
    pub roots: Vec<CertificateDer<'static>>,
    /// CNs the aggregator's certificate may have; empty means any the CA signed.
    pub allowed_names: HashSet<String>,
    clients: Vec<kube::Client>,
}

impl Trust {
    /// Reads kube-system/extension-apiserver-authentication of every cluster. A cluster whose
    /// ConfigMap cannot be read is logged with the fix; its aggregator is then refused.
    pub async fn load(clients: Vec<kube::Client>) -> Trust {
        let mut trust = Trust { roots: Vec::new(), allowed_names: HashSet::new(), clients };
        for client in &trust.clients {
            let api: Api<ConfigMap> = Api::namespaced(client.clone(), "kube-system");
            // A starting API server publishes it a moment after it serves: wait a little.
            let mut result = api.get("extension-apiserver-authentication").await;
            for attempt in 1..=20u32 {
                match &result {
                    Err(kube::Error::Api(e)) if e.code == 404 => {
                        tokio::time::sleep(engine::backoff(attempt, std::time::Duration::from_millis(100), std::time::Duration::from_secs(1))).await;
                        result = api.get("extension-apiserver-authentication").await;
                    }
                    _ => break,
                }
            }
            match result {
                Ok(cm) => {
                    let data = cm.data.unwrap_or_default();
                    if let Some(pem) = data.get("requestheader-client-ca-file") {
                        trust.roots.extend(CertificateDer::pem_slice_iter(pem.as_bytes()).filter_map(|c| c.ok()));
                    }
                    if let Some(names) = data.get("requestheader-allowed-names") {
                        let names: Vec<String> = serde_json::from_str(names).unwrap_or_default();
                        trust.allowed_names.extend(names);
                    }
                }
                Err(e) => tracing::error!(
                    error = %e,
                    "cannot read kube-system/extension-apiserver-authentication: the aggregator's client certificate cannot be checked and is refused \
                     (bind the Role extension-apiserver-authentication-reader to Swell's ServiceAccount, as the Helm chart does)"
                ),
            }
        }
        trust
    }

    /// The TLS server side: client certificates are asked for and verified against the
    /// requestheader CAs when there are any; a caller may also come without one (bearer token).
    pub fn client_verifier(&self, provider: Arc<rustls::crypto::CryptoProvider>) -> anyhow::Result<Option<Arc<dyn rustls::server::danger::ClientCertVerifier>>> {
        if self.roots.is_empty() {
            return Ok(None);
        }
        let mut store = rustls::RootCertStore::empty();
        for root in &self.roots {
            store.add(root.clone())?;
        }
        Ok(Some(rustls::server::WebPkiClientVerifier::builder_with_provider(Arc::new(store), provider).allow_unauthenticated().build()?))
    }

    /// Allows or refuses one request. `peer` is the client certificate chain TLS verified.
    pub async fn check(&self, peer: Option<&[u8]>, bearer: Option<&str>, namespace: &str) -> Result<(), (StatusCode, String)> {
        if let Some(der) = peer {
            // rustls accepted the chain against the requestheader CAs; now the name.
            let cn = common_name(der).ok_or((StatusCode::UNAUTHORIZED, "the client certificate has no common name".to_string()))?;
            if self.allowed_names.is_empty() || self.allowed_names.contains(&cn) {
                return Ok(());
            }
            return Err((StatusCode::UNAUTHORIZED, format!("client certificate {cn:?} is not among requestheader-allowed-names")));
        }
        let Some(token) = bearer else {
            return Err((StatusCode::UNAUTHORIZED, "no client certificate and no bearer token: only the API server's aggregator or an authenticated caller may read metrics".into()));
        };
        for client in &self.clients {
            let review = TokenReview { spec: TokenReviewSpec { token: token.to_string(), ..Default::default() }, ..Default::default() };
            let Ok(done) = Api::<TokenReview>::all(client.clone()).create(&PostParams::default(), &review).await else { continue };
            let Some(status) = done.status.filter(|s| s.authenticated == Some(true)) else { continue };
            let user = status.user.unwrap_or_default();
            let sar = SubjectAccessReview {
                spec: SubjectAccessReviewSpec {
                    user: user.username.clone(),
                    groups: user.groups.clone(),
                    uid: user.uid.clone(),
                    resource_attributes: Some(ResourceAttributes {
                        group: Some("external.metrics.k8s.io".into()),
                        resource: Some("externalmetrics".into()),
                        verb: Some("get".into()),
                        namespace: Some(namespace.into()),
                        ..Default::default()
                    }),
                    ..Default::default()
                },
                ..Default::default()
            };
            let allowed = Api::<SubjectAccessReview>::all(client.clone())
                .create(&PostParams::default(), &sar)
                .await
                .ok()
                .and_then(|r| r.status)
                .is_some_and(|s| s.allowed);
            let who = user.username.unwrap_or_default();
            return if allowed { Ok(()) } else { Err((StatusCode::FORBIDDEN, format!("{who} may not get externalmetrics in namespace {namespace}"))) };
        }
        Err((StatusCode::UNAUTHORIZED, "the bearer token is not valid on any connected cluster".into()))
    }
}

/// The subject's common name of a DER certificate.
fn common_name(der: &[u8]) -> Option<String> {
    let (_, cert) = x509_parser::parse_x509_certificate(der).ok()?;
    cert.subject().iter_common_name().next()?.as_str().ok().map(str::to_string)
}

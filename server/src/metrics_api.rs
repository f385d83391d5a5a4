//! The external metrics API the HPA controller reads in `hpa` mode:
//! `external.metrics.k8s.io/v1beta1`, over HTTPS, registered in each cluster through an
//! APIService (see deploy/). Values come from the engine's last poll of each trigger.
//!
//! Every request is authenticated first (crate::metrics_auth): the aggregator by its client
//! certificate, or a bearer token through TokenReview and SubjectAccessReview.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Path, Query, Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Json, Response};
use axum::routing::get;
use axum::{Extension, Router};
use axum_server::tls::TlsInfo;
use engine::actuate::{LABEL_CLUSTER, LABEL_OBJECT};
use engine::Engine;
use serde::Deserialize;

use crate::metrics_auth::Trust;

const GROUP_VERSION: &str = "external.metrics.k8s.io/v1beta1";

#[derive(Clone)]
struct Api {
    engine: Engine,
    trust: Arc<Trust>,
}

pub fn router(engine: Engine, trust: Arc<Trust>) -> Router {
    let state = Api { engine, trust };
    Router::new()
        .route("/apis/external.metrics.k8s.io/v1beta1", get(resources))
        .route("/apis/external.metrics.k8s.io/v1beta1/namespaces/{namespace}/{metric}", get(metric))
        .fallback(|| async { status(StatusCode::NOT_FOUND, "NotFound", "no such path in the external metrics API") })
        .route_layer(axum::middleware::from_fn_with_state(state.clone(), authenticate))
        .route("/healthz", get(|| async { "ok" }))
        .with_state(state)
}

/// One authorization point for every metrics route: who is asking, and may they.
async fn authenticate(State(api): State<Api>, tls: Option<Extension<Arc<TlsInfo>>>, req: Request, next: Next) -> Response {
    let peer = tls.as_ref().and_then(|t| t.peer_certificates.first().map(Vec::as_slice));
    let bearer = req.headers().get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()).and_then(|v| v.strip_prefix("Bearer ")).map(str::to_string);
    let namespace = req.uri().path().split('/').skip_while(|p| *p != "namespaces").nth(1).unwrap_or("").to_string();
    match api.trust.check(peer, bearer.as_deref(), &namespace).await {
        Ok(()) => next.run(req).await,
        Err((code, why)) => {
            tracing::debug!(status = %code, "external metrics request refused: {why}");
            let reason = if code == StatusCode::FORBIDDEN { "Forbidden" } else { "Unauthorized" };
            status(code, reason, &why)
        }
    }
}

fn status(code: StatusCode, reason: &str, message: &str) -> Response {
    (
        code,
        Json(serde_json::json!({
            "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
            "message": message, "reason": reason, "code": code.as_u16()
        })),
    )
        .into_response()
}

async fn resources() -> Json<serde_json::Value> {
    Json(serde_json::json!({
        "kind": "APIResourceList", "apiVersion": "v1", "groupVersion": GROUP_VERSION,
        "resources": [{"name": "externalmetrics", "singularName": "", "namespaced": true, "kind": "ExternalMetricValueList", "verbs": ["get"]}]
    }))
}

#[derive(Deserialize)]
struct MetricQuery {
    #[serde(rename = "labelSelector", default)]
    label_selector: String,
}

/// `a=b,c==d` → {a: b, c: d}; the HPA sends its metric selector's matchLabels this way.
fn parse_selector(s: &str) -> BTreeMap<String, String> {
    s.split(',')
        .filter_map(|part| {
            let (k, v) = part.split_once("==").or_else(|| part.split_once('='))?;
            Some((k.trim().to_string(), v.trim().to_string()))
        })
        .collect()
}

async fn metric(State(api): State<Api>, Path((namespace, metric)): Path<(String, String)>, Query(q): Query<MetricQuery>) -> Response {
    let engine = api.engine;
    let selector = parse_selector(&q.label_selector);
    let Some(object) = selector.get(LABEL_OBJECT) else {
        return status(StatusCode::BAD_REQUEST, "BadRequest", &format!("labelSelector must name the ScaledObject with {LABEL_OBJECT}=<name>"));
    };
    match engine.external_metric_now(selector.get(LABEL_CLUSTER).map(String::as_str), &namespace, object, &metric).await {
        Some(value) => Json(serde_json::json!({
            "kind": "ExternalMetricValueList", "apiVersion": GROUP_VERSION, "metadata": {},
            "items": [{
                "metricName": metric, "metricLabels": {},
                "timestamp": chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
                "value": engine::actuate::quantity(value).0,
            }]
        }))
        .into_response(),
        None => status(StatusCode::NOT_FOUND, "NotFound", &format!("no value yet for metric {metric} of {namespace}/{object}")),
    }
}

/// The certificate the API serves.
pub struct ServingCert {
    chain: Vec<rustls::pki_types::CertificateDer<'static>>,
    key: rustls::pki_types::PrivateKeyDer<'static>,
}

impl ServingCert {
    /// `metrics_api_tls_cert` and `metrics_api_tls_key` when both are set (the Helm chart's
    /// Secret, checked by the APIService's caBundle); otherwise a self-signed certificate made
    /// now (the APIService then needs insecureSkipTLSVerify, as KEDA's default install has).
    /// A file that cannot be read is an error naming its config key.
    pub fn load(cert: Option<&std::path::Path>, key: Option<&std::path::Path>, addr: SocketAddr) -> Result<Self, String> {
        use rustls::pki_types::pem::PemObject;
        match (cert, key) {
            (Some(cert), Some(key)) => {
                let chain = rustls::pki_types::CertificateDer::pem_file_iter(cert)
                    .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
                    .map_err(|e| format!("config key metrics_api_tls_cert: cannot read a PEM certificate from {}: {e}", cert.display()))?;
                if chain.is_empty() {
                    return Err(format!("config key metrics_api_tls_cert: {} holds no certificate", cert.display()));
                }
                let key = rustls::pki_types::PrivateKeyDer::from_pem_file(key)
                    .map_err(|e| format!("config key metrics_api_tls_key: cannot read a PEM private key from {}: {e}", key.display()))?;
                Ok(ServingCert { chain, key })
            }
            (None, None) => {
                let names = vec!["localhost".to_string(), addr.ip().to_string(), "swell-metrics.swell.svc".to_string()];
                let made = rcgen::generate_simple_self_signed(names).map_err(|e| format!("self-signed certificate for the metrics API: {e}"))?;
                let key = rustls::pki_types::PrivateKeyDer::Pkcs8(made.signing_key.serialize_der().into());
                Ok(ServingCert { chain: vec![made.cert.der().clone()], key })
            }
            (Some(_), None) => Err("config key metrics_api_tls_key is missing: metrics_api_tls_cert is set, give its private key too".into()),
            (None, Some(_)) => Err("config key metrics_api_tls_cert is missing: metrics_api_tls_key is set, give its certificate too".into()),
        }
    }
}

/// Serves the API over HTTPS with `cert` until `shutdown` completes.
pub async fn serve(addr: SocketAddr, engine: Engine, trust: Trust, cert: ServingCert, shutdown: impl std::future::Future<Output = ()> + Send + 'static) -> anyhow::Result<()> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ServerConfig::builder_with_provider(provider.clone()).with_safe_default_protocol_versions()?;
    let builder = match trust.client_verifier(provider)? {
        Some(verifier) => builder.with_client_cert_verifier(verifier),
        None => builder.with_no_client_auth(),
    };
    let tls = builder.with_single_cert(cert.chain, cert.key)?;
    let handle = axum_server::Handle::new();
    let h = handle.clone();
    tokio::spawn(async move {
        shutdown.await;
        h.graceful_shutdown(Some(Duration::from_secs(5)));
    });
    axum_server::bind_rustls(addr, axum_server::tls_rustls::RustlsConfig::from_config(Arc::new(tls)))
        .handle(handle)
        .serve(router(engine, Arc::new(trust)).into_make_service())
        .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn selectors_as_the_hpa_sends_them() {
        let s = parse_selector("scaledobject.swell.dev/name=web,scaledobject.swell.dev/cluster==east");
        assert_eq!(s.get(LABEL_OBJECT).map(String::as_str), Some("web"));
        assert_eq!(s.get(LABEL_CLUSTER).map(String::as_str), Some("east"));
        assert!(parse_selector("").is_empty());
    }
}

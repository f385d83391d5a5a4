//! `aws-sqs-queue`: SQS queue depth (keda `pkg/scalers/aws_sqs_queue_scaler.go`).
//! Keys: `queueURL`, `awsRegion`, `queueLength` (5, messages per replica),
//! `activationQueueLength` (0), `scaleOnInFlight` (true: add ApproximateNumberOfMessagesNotVisible),
//! `scaleOnDelayed` (false: add ApproximateNumberOfMessagesDelayed), `awsEndpoint` (an
//! SQS-compatible endpoint, also used for STS).
//! Credentials, first that applies: `awsAccessKeyID` + `awsSecretAccessKey` (+
//! `awsSessionToken`) from a TriggerAuthentication; `awsRoleArn` with a web identity token
//! (`webIdentityTokenFile`, else `AWS_WEB_IDENTITY_TOKEN_FILE`: IRSA) through STS
//! AssumeRoleWithWebIdentity; else the SDK's default chain (env, profile, IRSA, IMDS).

use std::collections::BTreeMap;

use async_trait::async_trait;
use aws_credential_types::Credentials;
use aws_credential_types::provider::{self, ProvideCredentials, SharedCredentialsProvider, future};
use aws_sdk_sqs::types::QueueAttributeName;

use super::{MetricSpec, MetricValue, Scaler, boolean, number, required};
use crate::{Error, Result};

#[derive(Clone, PartialEq)]
pub struct SqsMetadata {
    pub queue_url: url::Url,
    pub region: String,
    pub queue_length: f64,
    pub activation_queue_length: f64,
    pub scale_on_in_flight: bool,
    pub scale_on_delayed: bool,
    pub endpoint: Option<url::Url>,
    pub auth: SqsAuth,
}

#[derive(Clone, PartialEq)]
pub enum SqsAuth {
    Keys { access_key_id: String, secret_access_key: String, session_token: Option<String> },
    WebIdentity { role_arn: String, token_file: String },
    DefaultChain,
}

/// Never print secrets.
impl std::fmt::Debug for SqsMetadata {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let auth = match &self.auth {
            SqsAuth::Keys { .. } => "keys(***)".to_string(),
            SqsAuth::WebIdentity { role_arn, .. } => format!("web-identity({role_arn})"),
            SqsAuth::DefaultChain => "default-chain".into(),
        };
        f.debug_struct("SqsMetadata").field("queue_url", &self.queue_url.as_str()).field("region", &self.region).field("auth", &auth).finish()
    }
}

impl SqsMetadata {
    pub fn parse(field: &str, metadata: &BTreeMap<String, String>) -> Result<Self> {
        let key = |k: &str| format!("{field}.metadata.{k}");
        let raw = required(field, metadata, "queueURL")?;
        let queue_url = url::Url::parse(raw.trim())
            .ok()
            .filter(|u| matches!(u.scheme(), "http" | "https") && u.path().trim_matches('/').contains('/'))
            .ok_or_else(|| Error::invalid(key("queueURL"), "must be a queue URL like https://sqs.<region>.amazonaws.com/<account>/<queue>"))?;
        let region = required(field, metadata, "awsRegion")?.trim().to_string();
        let queue_length = number(field, metadata, "queueLength", 5.0)?;
        if !(queue_length > 0.0) {
            return Err(Error::invalid(key("queueLength"), "must be a number above 0"));
        }
        let activation_queue_length = number(field, metadata, "activationQueueLength", 0.0)?;
        if activation_queue_length < 0.0 {
            return Err(Error::invalid(key("activationQueueLength"), "must be 0 or more"));
        }
        let endpoint = match metadata.get("awsEndpoint").map(|e| e.trim()).filter(|e| !e.is_empty()) {
            None => None,
            Some(e) => Some(
                url::Url::parse(e).ok().filter(|u| matches!(u.scheme(), "http" | "https")).ok_or_else(|| Error::invalid(key("awsEndpoint"), "must be an http(s) URL"))?,
            ),
        };
        let get = |k: &str| metadata.get(k).map(|v| v.trim().to_string()).filter(|v| !v.is_empty());
        let auth = match (get("awsAccessKeyID"), get("awsSecretAccessKey"), get("awsRoleArn")) {
            (Some(id), Some(secret), _) => SqsAuth::Keys { access_key_id: id, secret_access_key: secret, session_token: get("awsSessionToken") },
            (Some(_), None, _) => return Err(Error::invalid(key("awsSecretAccessKey"), "is required with awsAccessKeyID")),
            (None, Some(_), _) => return Err(Error::invalid(key("awsAccessKeyID"), "is required with awsSecretAccessKey")),
            (None, None, Some(role_arn)) => {
                if !role_arn.starts_with("arn:") {
                    return Err(Error::invalid(key("awsRoleArn"), "must be an IAM role ARN (arn:aws:iam::<account>:role/<name>)"));
                }
                let token_file = get("webIdentityTokenFile").or_else(|| std::env::var("AWS_WEB_IDENTITY_TOKEN_FILE").ok()).ok_or_else(|| {
                    Error::invalid(key("webIdentityTokenFile"), "is required with awsRoleArn (or set AWS_WEB_IDENTITY_TOKEN_FILE, as IRSA does)")
                })?;
                SqsAuth::WebIdentity { role_arn, token_file }
            }
            (None, None, None) => SqsAuth::DefaultChain,
        };
        Ok(SqsMetadata {
            queue_url,
            region,
            queue_length,
            activation_queue_length,
            scale_on_in_flight: boolean(field, metadata, "scaleOnInFlight", true)?,
            scale_on_delayed: boolean(field, metadata, "scaleOnDelayed", false)?,
            endpoint,
            auth,
        })
    }
}

/// STS AssumeRoleWithWebIdentity with the token read fresh from its file on every refresh
/// (the SDK caches the credentials until shortly before they expire).
#[derive(Debug)]
struct WebIdentity {
    sts: aws_sdk_sts::Client,
    role_arn: String,
    token_file: String,
}

impl WebIdentity {
    async fn credentials(&self) -> provider::Result {
        let token = tokio::fs::read_to_string(&self.token_file)
            .await
            .map_err(|e| provider::error::CredentialsError::provider_error(format!("reading the web identity token {}: {e}", self.token_file)))?;
        let resp = self
            .sts
            .assume_role_with_web_identity()
            .role_arn(&self.role_arn)
            .role_session_name("swell")
            .web_identity_token(token.trim())
            .send()
            .await
            .map_err(|e| provider::error::CredentialsError::provider_error(format!("AssumeRoleWithWebIdentity: {}", aws_sdk_sts::error::DisplayErrorContext(e))))?;
        let c = resp.credentials.ok_or_else(|| provider::error::CredentialsError::provider_error("STS returned no credentials"))?;
        let expiry = std::time::SystemTime::try_from(c.expiration).ok();
        Ok(Credentials::new(c.access_key_id, c.secret_access_key, Some(c.session_token), expiry, "WebIdentity"))
    }
}

impl ProvideCredentials for WebIdentity {
    fn provide_credentials<'a>(&'a self) -> future::ProvideCredentials<'a>
    where
        Self: 'a,
    {
        future::ProvideCredentials::new(self.credentials())
    }
}

pub struct SqsScaler {
    metadata: SqsMetadata,
    metric_name: String,
    /// Built on the first poll (the SDK's default chain is built asynchronously).
    client: tokio::sync::OnceCell<aws_sdk_sqs::Client>,
}

impl SqsScaler {
    pub fn new(field: &str, metric_name: String, metadata: &BTreeMap<String, String>) -> Result<Self> {
        Ok(SqsScaler { metadata: SqsMetadata::parse(field, metadata)?, metric_name, client: tokio::sync::OnceCell::new() })
    }

    async fn client(&self) -> &aws_sdk_sqs::Client {
        self.client.get_or_init(|| build_client(&self.metadata)).await
    }
}

async fn build_client(metadata: &SqsMetadata) -> aws_sdk_sqs::Client {
    {
        let region = aws_sdk_sqs::config::Region::new(metadata.region.clone());
        let credentials = match &metadata.auth {
            SqsAuth::Keys { access_key_id, secret_access_key, session_token } => {
                SharedCredentialsProvider::new(Credentials::new(access_key_id, secret_access_key, session_token.clone(), None, "TriggerAuthentication"))
            }
            SqsAuth::WebIdentity { role_arn, token_file } => {
                let mut sts = aws_sdk_sts::Config::builder().behavior_version(aws_sdk_sts::config::BehaviorVersion::latest()).region(region.clone());
                if let Some(e) = &metadata.endpoint {
                    sts = sts.endpoint_url(e.as_str());
                }
                SharedCredentialsProvider::new(WebIdentity { sts: aws_sdk_sts::Client::from_conf(sts.build()), role_arn: role_arn.clone(), token_file: token_file.clone() })
            }
            SqsAuth::DefaultChain => {
                SharedCredentialsProvider::new(aws_config::default_provider::credentials::DefaultCredentialsChain::builder().region(region.clone()).build().await)
            }
        };
        let mut conf = aws_sdk_sqs::Config::builder()
            .behavior_version(aws_sdk_sqs::config::BehaviorVersion::latest())
            .region(region)
            .credentials_provider(credentials);
        if let Some(e) = &metadata.endpoint {
            conf = conf.endpoint_url(e.as_str());
        }
        aws_sdk_sqs::Client::from_conf(conf.build())
    }
}

#[async_trait]
impl Scaler for SqsScaler {
    async fn metrics_and_activity(&self) -> Result<(Vec<MetricValue>, bool)> {
        let m = &self.metadata;
        let mut names = vec![QueueAttributeName::ApproximateNumberOfMessages];
        if m.scale_on_in_flight {
            names.push(QueueAttributeName::ApproximateNumberOfMessagesNotVisible);
        }
        if m.scale_on_delayed {
            names.push(QueueAttributeName::ApproximateNumberOfMessagesDelayed);
        }
        let resp = self
            .client()
            .await
            .get_queue_attributes()
            .queue_url(m.queue_url.as_str())
            .set_attribute_names(Some(names.clone()))
            .send()
            .await
            .map_err(|e| Error::Scaler { scaler: self.metric_name.clone(), message: format!("GetQueueAttributes {}: {}", m.queue_url, aws_sdk_sqs::error::DisplayErrorContext(e)) })?;
        let attrs = resp.attributes.unwrap_or_default();
        let mut value = 0.0;
        for name in &names {
            let raw = attrs.get(name).map(String::as_str).unwrap_or("0");
            value += raw.parse::<f64>().map_err(|_| Error::Scaler { scaler: self.metric_name.clone(), message: format!("{} is not a number: {raw:?}", name.as_str()) })?;
        }
        Ok((vec![MetricValue { name: self.metric_name.clone(), value }], value > m.activation_queue_length))
    }

    fn metric_spec(&self) -> MetricSpec {
        MetricSpec { name: self.metric_name.clone(), target: self.metadata.queue_length, activation_target: self.metadata.activation_queue_length }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    const URL: (&str, &str) = ("queueURL", "https://sqs.eu-west-1.amazonaws.com/123456789012/orders");
    const REGION: (&str, &str) = ("awsRegion", "eu-west-1");

    #[test]
    fn defaults_and_credentials() {
        let m = SqsMetadata::parse("t", &map(&[URL, REGION])).unwrap();
        assert_eq!((m.queue_length, m.activation_queue_length, m.scale_on_in_flight, m.scale_on_delayed), (5.0, 0.0, true, false));
        assert!(m.auth == SqsAuth::DefaultChain);
        let m = SqsMetadata::parse("t", &map(&[URL, REGION, ("awsAccessKeyID", "AKIA1"), ("awsSecretAccessKey", "s3cr3t")])).unwrap();
        assert!(matches!(m.auth, SqsAuth::Keys { .. }));
        assert!(!format!("{m:?}").contains("s3cr3t"));
        let m = SqsMetadata::parse("t", &map(&[URL, REGION, ("awsRoleArn", "arn:aws:iam::1:role/r"), ("webIdentityTokenFile", "/var/run/token")])).unwrap();
        assert!(matches!(m.auth, SqsAuth::WebIdentity { .. }));
    }

    #[test]
    fn every_key_has_a_bad_case_naming_it() {
        let cases = [
            (map(&[REGION]), "t.metadata.queueURL"),
            (map(&[("queueURL", "orders"), REGION]), "t.metadata.queueURL"),
            (map(&[URL]), "t.metadata.awsRegion"),
            (map(&[URL, REGION, ("queueLength", "0")]), "t.metadata.queueLength"),
            (map(&[URL, REGION, ("queueLength", "many")]), "t.metadata.queueLength"),
            (map(&[URL, REGION, ("activationQueueLength", "-1")]), "t.metadata.activationQueueLength"),
            (map(&[URL, REGION, ("scaleOnInFlight", "maybe")]), "t.metadata.scaleOnInFlight"),
            (map(&[URL, REGION, ("scaleOnDelayed", "2")]), "t.metadata.scaleOnDelayed"),
            (map(&[URL, REGION, ("awsEndpoint", "sqs.local")]), "t.metadata.awsEndpoint"),
            (map(&[URL, REGION, ("awsAccessKeyID", "AKIA1")]), "t.metadata.awsSecretAccessKey"),
            (map(&[URL, REGION, ("awsSecretAccessKey", "s3cr3t")]), "t.metadata.awsAccessKeyID"),
            (map(&[URL, REGION, ("awsRoleArn", "swell-role"), ("webIdentityTokenFile", "/t")]), "t.metadata.awsRoleArn"),
        ];
        for (m, field) in cases {
            let err = SqsMetadata::parse("t", &m).unwrap_err().to_string();
            assert!(err.starts_with(field), "{m:?}: {err}");
            assert!(!err.contains("s3cr3t"), "{err}");
        }
    }
}

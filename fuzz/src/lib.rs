//! What each fuzz target checks, over Swell's parsers of untrusted input. Every one must
//! return an error or a value for any input, never panic, and an error must name the field
//! or line it is about.

use std::collections::BTreeMap;
use std::sync::OnceLock;

use arbitrary::Arbitrary;

/// The real config module of the `swell` binary (a binary crate cannot be a dependency).
#[path = "../../server/src/config.rs"]
#[allow(dead_code)]
pub mod config;

/// A trigger as a manifest could give it: one of the known types (or any other), and
/// string metadata.
#[derive(Arbitrary, Debug)]
pub struct TriggerInput {
    kind: u8,
    other_kind: String,
    metadata: Vec<(String, String)>,
}

fn runtime() -> &'static tokio::runtime::Runtime {
    static RT: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RT.get_or_init(|| tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap())
}

/// Building a scaler from any metadata: Ok, or an error naming `spec.triggers[0]…`.
pub fn trigger_metadata(input: TriggerInput) {
    static CTX: OnceLock<engine::scalers::ScalerContext> = OnceLock::new();
    let _guard = runtime().enter();
    let ctx = CTX.get_or_init(|| engine::scalers::ScalerContext::new(None));
    let types = engine::scalers::KNOWN_TYPES;
    let kind = types.get(input.kind as usize % (types.len() + 1)).map(|s| s.to_string()).unwrap_or(input.other_kind);
    let metadata: BTreeMap<String, String> = input.metadata.into_iter().collect();
    let trigger: engine::spec::Trigger =
        serde_json::from_value(serde_json::json!({"type": kind, "metadata": metadata})).expect("a trigger from strings");
    if let Err(e) = engine::scalers::build(&trigger, 0, ctx, "fuzz") {
        let text = e.to_string();
        assert!(text.contains("spec.triggers[0]"), "the error does not name the field: {text}");
    }
}

/// A scalingModifiers formula over two named triggers: validation and evaluation agree, and
/// evaluation gives a finite number or an error.
#[derive(Arbitrary, Debug)]
pub struct FormulaInput {
    formula: String,
    a: f64,
    b: f64,
}

pub fn formula(input: FormulaInput) {
    let spec = serde_json::json!({
        "scaleTargetRef": {"name": "web"},
        "triggers": [
            {"type": "cron", "name": "a", "metadata": {"timezone": "UTC", "start": "0 8 * * *", "end": "0 9 * * *", "desiredReplicas": "2"}},
            {"type": "cron", "name": "b", "metadata": {"timezone": "UTC", "start": "0 8 * * *", "end": "0 9 * * *", "desiredReplicas": "2"}}
        ],
        "advanced": {"scalingModifiers": {"formula": input.formula, "target": "5"}}
    });
    let spec: engine::spec::ScaledObjectSpec = serde_json::from_value(spec).expect("the spec reads");
    match spec.validate() {
        Err(e) => assert!(e.to_string().contains("spec.advanced.scalingModifiers"), "{e}"),
        Ok(()) => {
            let values = [("a".to_string(), input.a), ("b".to_string(), input.b)];
            if let Ok(v) = engine::decide::formula_value(&input.formula, &values) {
                assert!(v.is_finite(), "formula {:?} gave {v}", input.formula);
            }
        }
    }
}

/// A webhook request: its signature checks only with the right secret, and its body reads
/// as a finite value or an error naming `body…`.
#[derive(Arbitrary, Debug)]
pub struct WebhookInput {
    timestamp: String,
    signature: String,
    body: Vec<u8>,
}

pub fn webhook(input: WebhookInput) {
    const SECRET: &[u8] = b"fuzz-secret";
    let right = engine::crypto::hmac_sha256_hex(SECRET, &engine::push::signed_message(&input.timestamp, &input.body));
    assert!(engine::push::verify_signature(SECRET, &input.timestamp, &right, &input.body));
    assert_eq!(engine::push::verify_signature(SECRET, &input.timestamp, &input.signature, &input.body), input.signature.eq_ignore_ascii_case(&right));
    assert!(!engine::push::verify_signature(b"another", &input.timestamp, &right, &input.body));
    match engine::push::PushUpdate::from_body(&input.body) {
        Ok(engine::push::PushUpdate::Set(v)) => assert!(v.is_finite() && v >= 0.0),
        Ok(engine::push::PushUpdate::Add(d)) => assert!(d.is_finite()),
        Err(e) => assert!(e.starts_with("body"), "{e}"),
    }
}

/// A manifest as `swell apply` and the CRD watch read it: Swell's ScaledObject or ScaledJob,
/// or KEDA's through the import; each field error names the field.
pub fn manifest(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let Ok(doc) = serde_saphyr::from_str::<serde_json::Value>(text) else { return };
    if doc["apiVersion"].as_str().is_some_and(|v| v.starts_with("keda.sh/")) {
        let _ = engine::keda::import(&doc);
        return;
    }
    match doc["kind"].as_str() {
        Some("ScaledJob") => {
            if let Ok(sj) = serde_json::from_value::<engine::crd::ScaledJob>(doc) {
                if let Err(e) = sj.spec.validate() {
                    assert!(e.to_string().contains("spec."), "{e}");
                }
            }
        }
        _ => {
            if let Ok(so) = serde_json::from_value::<engine::spec::ScaledObject>(doc) {
                if let Err(e) = so.spec.validate() {
                    assert!(e.to_string().contains("spec."), "{e}");
                }
            }
        }
    }
}

/// A trace for `swell replay`: a series, or an error naming the trace or the column option.
pub fn replay_csv(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else { return };
    for step in [None, Some(60)] {
        let cols = engine::predict::trace_csv::Columns { time: None, value: None, step };
        match engine::predict::trace_csv::read("fuzz.csv", text, &cols) {
            Ok(series) => assert!(series.step > 0, "a series has a positive step"),
            Err(e) => {
                let text = e.to_string();
                assert!(text.contains("fuzz.csv") || text.contains("--"), "{text}");
            }
        }
    }
}

/// A `swell.toml`: a configuration, or errors naming each bad key.
pub fn config_file(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else { return };
    if let Err(e) = config::from_toml(text) {
        assert!(e.contains("config key") || e.contains("TOML") || e.contains("toml"), "{e}");
    }
}

//! Every example manifest of KEDA's documentation (engine/tests/data/keda, each file naming
//! its source) goes through `import` and back: nothing lost without a report line, Swell's
//! manifest reads as Swell's typed resource, and `export` gives KEDA's manifest again.

use std::collections::BTreeMap;

use engine::keda::{self, Kind, Outcome};
use serde_json::Value;

/// Each leaf of a document by its path in the report's notation (`spec.triggers[0].type`).
fn leaves(v: &Value, path: &str, out: &mut BTreeMap<String, Value>) {
    let join = |k: &str| if path.is_empty() { k.to_string() } else { format!("{path}.{k}") };
    match v {
        Value::Object(o) if !o.is_empty() => o.iter().for_each(|(k, x)| leaves(x, &join(k), out)),
        Value::Array(a) if !a.is_empty() => a.iter().enumerate().for_each(|(i, x)| leaves(x, &format!("{path}[{i}]"), out)),
        _ => {
            out.insert(path.to_string(), v.clone());
        }
    }
}

/// The report line that covers `leaf`: its own, else the nearest enclosing field's.
fn covering<'a>(report: &'a [keda::Entry], leaf: &str) -> Option<&'a keda::Entry> {
    report
        .iter()
        .filter(|e| leaf == e.path || (leaf.starts_with(&e.path) && matches!(leaf.as_bytes().get(e.path.len()), Some(b'.' | b'['))))
        .max_by_key(|e| e.path.len())
}

fn examples() -> Vec<(String, usize, Value)> {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/keda");
    let mut files: Vec<_> = std::fs::read_dir(dir).expect("the examples folder").map(|e| e.unwrap().path()).collect();
    files.sort();
    let mut out = Vec::new();
    for file in files {
        let text = std::fs::read_to_string(&file).unwrap();
        let name = file.file_name().unwrap().to_string_lossy().to_string();
        assert!(text.starts_with("# Examples from KEDA's documentation"), "{name}: the first line names the source");
        let docs: Vec<Value> = serde_saphyr::from_multiple(&text).unwrap_or_else(|e| panic!("{name}: {e}"));
        for (i, doc) in docs.into_iter().filter(|d| !d.is_null()).enumerate() {
            out.push((name.clone(), i + 1, doc));
        }
    }
    out
}

#[test]
fn every_example_of_kedas_docs_round_trips() {
    let examples = examples();
    assert!(examples.len() >= 300, "{} examples", examples.len());
    let mut counts: BTreeMap<&'static str, usize> = BTreeMap::new();
    let mut lossy = 0;
    for (file, n, doc) in &examples {
        let at = format!("{file} #{n}");
        let imported = keda::import(doc).unwrap_or_else(|e| panic!("{at}: {e}"));
        *counts.entry(imported.kind.as_str()).or_default() += 1;
        // Swell's manifest is Swell's resource.
        let m = imported.manifest.clone();
        let typed = match imported.kind {
            Kind::ScaledObject => serde_json::from_value::<engine::spec::ScaledObject>(m).map(|_| ()),
            Kind::ScaledJob => serde_json::from_value::<engine::crd::ScaledJob>(m).map(|_| ()),
            Kind::TriggerAuthentication => serde_json::from_value::<engine::crd::TriggerAuthentication>(m).map(|_| ()),
            Kind::ClusterTriggerAuthentication => serde_json::from_value::<engine::crd::ClusterTriggerAuthentication>(m).map(|_| ()),
        };
        // ... or the report says which field it cannot take.
        if let Err(e) = typed {
            let refused = imported.report.iter().find(|r| r.outcome == Outcome::Unsupported && r.reason.starts_with("Swell refuses it"));
            assert!(refused.is_some(), "{at}: Swell's manifest does not read as a {} and the report does not say so: {e}", imported.kind.as_str());
            *counts.entry("refused by Swell's types").or_default() += 1;
        }
        // Every field is reported; dropped ones are gone, the rest come back as they were.
        let (mut before, mut after) = (BTreeMap::new(), BTreeMap::new());
        leaves(doc, "", &mut before);
        leaves(&keda::export(&imported.manifest), "", &mut after);
        for (leaf, value) in &before {
            let entry = covering(&imported.report, leaf).unwrap_or_else(|| panic!("{at}: {leaf} is in no report line"));
            if entry.outcome == Outcome::Dropped {
                assert!(!after.contains_key(leaf), "{at}: {leaf} is reported dropped but is still there");
                assert!(!entry.reason.is_empty(), "{at}: {leaf} dropped without a reason");
            } else {
                assert_eq!(after.get(leaf), Some(value), "{at}: {leaf} is reported {:?} but did not come back", entry.outcome);
            }
        }
        // A mapping whose every field was dropped stays, empty.
        let emptied = |k: &str, v: &Value| (v == &Value::Object(Default::default()) || v == &Value::Array(vec![])) && before.keys().any(|b| b.starts_with(&format!("{k}.")) || b.starts_with(&format!("{k}[")));
        let extra: Vec<&String> = after.iter().filter(|(k, v)| !before.contains_key(*k) && !emptied(k, v)).map(|(k, _)| k).collect();
        assert!(extra.is_empty(), "{at}: export added {extra:?}");
        if imported.blocking().next().is_some() {
            lossy += 1;
        }
    }
    // Figures for the closing note: `cargo test -p engine --test keda_import -- --nocapture`.
    println!("{} examples {counts:?}; {lossy} with a field Swell drops or refuses", examples.len());
}


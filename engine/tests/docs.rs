//! docs/scaledobject.md keeps step with the CRD: a row for every field of the schema, none
//! for a field that is not there, and every default the schema has written as it has it.

use std::collections::BTreeMap;

use kube::CustomResourceExt;
use serde_json::Value;

/// Every field path of a schema (`spec.triggers[].type`) with its default, if it has one.
fn fields(schema: &Value, path: &str, out: &mut BTreeMap<String, Option<Value>>) {
    if let Some(props) = schema.get("properties").and_then(Value::as_object) {
        for (k, v) in props {
            let p = format!("{path}.{k}");
            out.insert(p.clone(), v.get("default").cloned());
            fields(v, &p, out);
        }
    }
    if let Some(items) = schema.get("items") {
        fields(items, &format!("{path}[]"), out);
    }
}

/// The page's rows: field → default column.
fn rows(page: &str) -> BTreeMap<String, String> {
    page.lines()
        .filter_map(|l| {
            let cells: Vec<&str> = l.split('|').map(str::trim).collect();
            let field = cells.get(1)?.strip_prefix('`')?.strip_suffix('`')?;
            field.starts_with("spec").then(|| (field.to_string(), cells.get(2).copied().unwrap_or("").to_string()))
        })
        .collect()
}

#[test]
fn the_scaledobject_page_has_every_field_and_default_of_the_crd() {
    let crd = serde_json::to_value(engine::spec::ScaledObject::crd()).unwrap();
    let spec = crd.pointer("/spec/versions/0/schema/openAPIV3Schema/properties/spec").unwrap();
    let mut schema = BTreeMap::new();
    fields(spec, "spec", &mut schema);
    let page = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/scaledobject.md")).unwrap();
    let documented = rows(&page);
    let missing: Vec<&String> = schema.keys().filter(|f| !documented.contains_key(*f)).collect();
    assert!(missing.is_empty(), "docs/scaledobject.md has no row for {missing:?}");
    let stale: Vec<&String> = documented.keys().filter(|f| !schema.contains_key(*f)).collect();
    assert!(stale.is_empty(), "docs/scaledobject.md documents fields the CRD does not have: {stale:?}");
    for (field, default) in &schema {
        let Some(default) = default else { continue };
        let written = match default {
            Value::String(s) if s.is_empty() => "\"\"".to_string(),
            Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        let cell = &documented[field];
        assert_eq!(cell.trim_matches('`'), written, "{field}: the page says {cell}, the CRD's default is {written}");
    }
}

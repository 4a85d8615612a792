//! `docs/summary.schema.json` against real output: the committed fixture's
//! `summary.json` and one written now by `write_run` match it; every field of the
//! results schema (`pushbench_protocol::record::Summary`) is in it, required, typed
//! and described; and the validator catches what it must.

#[path = "fixtures/builder.rs"]
#[allow(dead_code, missing_docs)]
mod builder;
#[path = "fixtures/checks.rs"]
#[allow(dead_code, missing_docs)]
mod checks;
#[path = "fixtures/schema_check.rs"]
#[allow(dead_code, missing_docs)]
mod schema_check;

use std::path::{Path, PathBuf};

use pushbench_protocol::record::{GroupSummary, Summary};
use serde_json::Value;

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn schema() -> Value {
    let path = workspace().join("docs/summary.schema.json");
    serde_json::from_str(&std::fs::read_to_string(&path).unwrap())
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn json(path: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap())
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

#[test]
fn fixture_summary_matches_the_schema() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/run/summary.json");
    schema_check::assert_valid(&schema(), &json(&path), &path.display().to_string());
}

#[test]
fn a_summary_written_now_matches_the_schema() {
    let dir = checks::scratch("schema-written");
    builder::write_fixture(&dir);
    let v = json(&dir.join("summary.json"));
    let _ = std::fs::remove_dir_all(&dir);
    schema_check::assert_valid(&schema(), &v, "summary.json from write_run");
}

/// The schema against the results schema (`Summary`): every field `Summary` writes
/// is in the schema (so a field added to the results schema fails here until it is
/// documented), every field the schema requires is written, the required fields are
/// enough for `Summary` to read a file back (fields with a serde default are the
/// optional ones), and every property has a type and a description.
#[test]
fn schema_covers_every_field_of_the_results_schema() {
    let schema = schema();
    let summary = Summary {
        groups: vec![GroupSummary::default()],
        ..Default::default()
    };
    let written = serde_json::to_value(&summary).unwrap();
    walk(&schema, &schema, &written, "$");
    let minimal = required_only(&schema, &schema, &written);
    if let Err(e) = serde_json::from_value::<Summary>(minimal.clone()) {
        panic!(
            "Summary cannot read a file with only the schema's required fields ({e}): make that field required:\n{minimal:#}"
        );
    }
    assert_eq!(
        schema["properties"]["schema_version"]["const"],
        Value::from(pushbench_protocol::record::SCHEMA_VERSION),
        "the schema documents this SCHEMA_VERSION"
    );
}

fn resolve<'a>(root: &'a Value, node: &'a Value) -> &'a Value {
    match node.get("$ref").and_then(Value::as_str) {
        Some(r) => r
            .trim_start_matches("#/")
            .split('/')
            .fold(root, |n, k| &n[k]),
        None => node,
    }
}

/// Checks `value` (as `Summary` writes it) against the object schema `node`.
fn walk(root: &Value, node: &Value, value: &Value, path: &str) {
    let node = resolve(root, node);
    if let Some(items) = node.get("items") {
        for (i, v) in value.as_array().into_iter().flatten().enumerate() {
            walk(root, items, v, &format!("{path}[{i}]"));
        }
        return;
    }
    let Some(props) = node.get("properties").and_then(Value::as_object) else {
        return;
    };
    let fields = value
        .as_object()
        .unwrap_or_else(|| panic!("{path} is not an object"));
    for f in fields.keys() {
        assert!(
            props.contains_key(f),
            "{path}.{f} is written but not in the schema"
        );
    }
    for r in node["required"].as_array().into_iter().flatten() {
        let r = r.as_str().unwrap();
        assert!(
            fields.contains_key(r),
            "{path}.{r} is required by the schema but not written"
        );
    }
    for (name, p) in props {
        let described = p.get("description").and_then(Value::as_str).is_some()
            || resolve(root, p)
                .get("description")
                .and_then(Value::as_str)
                .is_some();
        assert!(described, "{path}.{name} has no description");
        assert!(
            p.get("type").is_some() || p.get("$ref").is_some(),
            "{path}.{name} has no type"
        );
        if let Some(v) = fields.get(name) {
            walk(root, p, v, &format!("{path}.{name}"));
        }
    }
}

/// `value` with every field the schema does not require removed, recursively.
fn required_only(root: &Value, node: &Value, value: &Value) -> Value {
    let node = resolve(root, node);
    if let (Some(items), Some(arr)) = (node.get("items"), value.as_array()) {
        return Value::Array(arr.iter().map(|v| required_only(root, items, v)).collect());
    }
    let (Some(props), Some(obj)) = (
        node.get("properties").and_then(Value::as_object),
        value.as_object(),
    ) else {
        return value.clone();
    };
    let required: Vec<&str> = node["required"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect();
    Value::Object(
        obj.iter()
            .filter(|(k, _)| required.contains(&k.as_str()))
            .map(|(k, v)| (k.clone(), required_only(root, &props[k], v)))
            .collect(),
    )
}

#[test]
fn the_validator_catches_what_it_must() {
    let schema = schema();
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/run/summary.json");
    let good = json(&path);
    let broken = |f: &dyn Fn(&mut Value)| {
        let mut v = good.clone();
        f(&mut v);
        schema_check::validate(&schema, &v).join("\n")
    };
    let e = broken(&|v| {
        v.as_object_mut().unwrap().remove("groups");
    });
    assert!(e.contains("`groups` is missing"), "{e}");
    let e = broken(&|v| v["groups"][0]["lost"] = Value::from(-1));
    assert!(e.contains("$.groups[0].lost"), "{e}");
    let e = broken(&|v| v["groups"][1]["coherence"] = Value::from("high"));
    assert!(e.contains("$.groups[1].coherence: expected number"), "{e}");
    let e = broken(&|v| v["groups"][0]["strategy"] = Value::from("carrier-pigeon"));
    assert!(e.contains("is not one of"), "{e}");
    let e = broken(&|v| v["publisher"]["lag_us"]["p99"] = Value::from(1.5));
    assert!(
        e.contains("$.publisher.lag_us.p99: expected integer"),
        "{e}"
    );
    let e = broken(&|v| v["surprise"] = Value::from(1));
    assert!(e.contains("$.surprise: field not described"), "{e}");
    let e = broken(&|v| v["started_at"] = Value::from("yesterday"));
    assert!(e.contains("not an RFC 3339 date-time"), "{e}");
    let e = broken(&|v| v["partial_reason"] = Value::from("Ctrl-C"));
    assert!(e.is_empty(), "a string partial_reason is valid: {e}");
}

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

/// The schema's fields are exactly the fields `Summary` serializes (so a field added
/// to the results schema fails here until it is documented), all of them required,
/// each with a type (or a `$ref`) and a description.
#[test]
fn schema_covers_every_field_of_the_results_schema() {
    let schema = schema();
    let summary = Summary {
        groups: vec![GroupSummary::default()],
        ..Default::default()
    };
    let v = serde_json::to_value(&summary).unwrap();
    let resolve = |node: &Value| -> Value {
        match node.get("$ref").and_then(Value::as_str) {
            Some(r) => r
                .trim_start_matches("#/")
                .split('/')
                .fold(&schema, |n, k| &n[k])
                .clone(),
            None => node.clone(),
        }
    };
    // (path, the object's schema, a serialized value of it)
    let mut pairs = vec![
        ("$".to_owned(), schema.clone(), v.clone()),
        (
            "$.groups[]".to_owned(),
            resolve(&schema["properties"]["groups"]["items"]),
            v["groups"][0].clone(),
        ),
    ];
    for key in ["publisher", "loadgen"] {
        pairs.push((
            format!("$.{key}"),
            resolve(&schema["properties"][key]),
            v[key].clone(),
        ));
    }
    for key in ["latency_us", "latency_uncorrected_us"] {
        pairs.push((
            format!("$.groups[].{key}"),
            resolve(&schema["$defs"]["group"]["properties"][key]),
            v["groups"][0][key].clone(),
        ));
    }
    for (path, s, value) in &pairs {
        let fields: Vec<&String> = value.as_object().unwrap().keys().collect();
        let props = s["properties"]
            .as_object()
            .unwrap_or_else(|| panic!("{path}: no properties"));
        let required: Vec<&str> = s["required"]
            .as_array()
            .unwrap_or_else(|| panic!("{path}: no required"))
            .iter()
            .filter_map(Value::as_str)
            .collect();
        for f in &fields {
            assert!(props.contains_key(*f), "{path}.{f} is not in the schema");
            assert!(required.contains(&f.as_str()), "{path}.{f} is not required");
        }
        for r in &required {
            assert!(
                fields.iter().any(|f| f == r),
                "{path}.{r} is required by the schema but Summary does not write it"
            );
        }
        for (name, p) in props {
            let has_description = p.get("description").and_then(Value::as_str).is_some()
                || resolve(p)
                    .get("description")
                    .and_then(Value::as_str)
                    .is_some();
            assert!(has_description, "{path}.{name} has no description");
            assert!(
                p.get("type").is_some() || p.get("$ref").is_some(),
                "{path}.{name} has no type"
            );
        }
    }
    assert_eq!(
        schema["properties"]["schema_version"]["const"],
        Value::from(pushbench_protocol::record::SCHEMA_VERSION),
        "the schema documents this SCHEMA_VERSION"
    );
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

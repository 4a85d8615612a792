//! A fresh smoke run's `summary.json` matches `docs/summary.schema.json`: the
//! schema is checked against what `pushbench run` writes today, not only against the
//! committed fixture (see crates/report/tests/schema.rs for that and for the
//! validator's own tests).

mod common;

#[path = "../../report/tests/fixtures/schema_check.rs"]
#[allow(dead_code, missing_docs)]
mod schema_check;

use common::{TempDir, pushbench, scenario, workspace};

fn json(path: &std::path::Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap())
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

#[test]
fn smoke_run_summary_matches_the_schema() {
    let tmp = TempDir::new("schema");
    let out = tmp.path().join("run");
    pushbench()
        .arg("run")
        .arg(scenario("smoke.toml"))
        .arg("--out")
        .arg(&out)
        .assert()
        .success();
    let schema = json(&workspace().join("docs/summary.schema.json"));
    let summary = json(&out.join("summary.json"));
    assert!(
        !summary["groups"].as_array().unwrap().is_empty(),
        "the smoke run has groups"
    );
    schema_check::assert_valid(&schema, &summary, "the smoke run's summary.json");
}

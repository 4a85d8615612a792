//! `pushbench scenarios` lists the shipped scenarios with their descriptions.

mod common;

use common::{TempDir, pushbench, workspace};
use predicates::prelude::*;

#[test]
fn lists_smoke_from_the_workspace() {
    pushbench()
        .arg("scenarios")
        .current_dir(workspace())
        .assert()
        .success()
        .stdout(predicate::str::contains("smoke"))
        .stdout(predicate::str::contains("scenarios/smoke.toml"));
}

#[test]
fn falls_back_to_the_shipped_folder_from_elsewhere() {
    let tmp = TempDir::new("elsewhere");
    pushbench()
        .arg("scenarios")
        .current_dir(tmp.path())
        .assert()
        .success()
        .stdout(predicate::str::contains("smoke"));
}

#[test]
fn lists_a_given_folder_and_flags_invalid_files() {
    let tmp = TempDir::new("listing");
    std::fs::write(tmp.path().join("broken.toml"), "this is = = not toml").unwrap();
    std::fs::write(tmp.path().join("notes.txt"), "not a scenario").unwrap();
    pushbench()
        .arg("scenarios")
        .arg(tmp.path())
        .assert()
        .success()
        .stdout(predicate::str::contains("broken"))
        .stdout(predicate::str::contains("invalid"))
        .stdout(predicate::str::contains("notes.txt").not());
}

#[test]
fn empty_folder_is_an_error() {
    let tmp = TempDir::new("empty");
    pushbench()
        .arg("scenarios")
        .arg(tmp.path())
        .assert()
        .failure()
        .stderr(predicate::str::contains("no scenario files"));
}

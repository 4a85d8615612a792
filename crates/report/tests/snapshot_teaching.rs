//! `docs/teaching.md` agrees with the committed runs behind it: every generated
//! block is what `docs/teaching/regenerate.sh --text-only` would write from the
//! committed `docs/teaching/<run>/summary.json` files (so no number in the guide was
//! edited by hand or left behind by a re-run), every chart it links exists, and the
//! committed charts stay small.

#[path = "../examples/teaching.rs"]
#[allow(dead_code, missing_docs)]
mod teaching;

use std::path::{Path, PathBuf};

fn docs() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs")
}

#[test]
fn generated_blocks_match_the_committed_runs() {
    let guide = docs().join("teaching.md");
    let text = std::fs::read_to_string(&guide).unwrap();
    let runs = teaching::load_runs(&docs().join("teaching"));
    assert!(
        runs.contains_key("quickstart"),
        "the quickstart run is committed"
    );
    let regenerated = teaching::fill_blocks(&text, &runs, &docs().join("teaching"));
    if regenerated != text {
        let line = text
            .lines()
            .zip(regenerated.lines())
            .position(|(a, b)| a != b)
            .unwrap_or(0);
        panic!(
            "docs/teaching.md line {} differs from what its committed runs give:\n  file:      {:?}\n  generated: {:?}\nrun docs/teaching/regenerate.sh --text-only",
            line + 1,
            text.lines().nth(line),
            regenerated.lines().nth(line)
        );
    }
}

#[test]
fn every_linked_chart_exists_and_the_folder_stays_small() {
    let text = std::fs::read_to_string(docs().join("teaching.md")).unwrap();
    let mut links = 0;
    for part in text.split("](teaching/").skip(1) {
        let target = &part[..part.find(')').expect("a closed link")];
        let path = docs().join("teaching").join(target);
        assert!(
            path.is_file() || ((target.ends_with('/') || target.is_empty()) && path.is_dir()),
            "docs/teaching.md links {target}, which is missing"
        );
        links += 1;
    }
    assert!(links >= 10, "only {links} links into docs/teaching/");
    let mut total = 0;
    let mut stack = vec![docs().join("teaching")];
    while let Some(dir) = stack.pop() {
        for e in std::fs::read_dir(dir).unwrap() {
            let e = e.unwrap();
            if e.file_type().unwrap().is_dir() {
                stack.push(e.path());
            } else {
                total += e.metadata().unwrap().len();
            }
        }
    }
    assert!(
        total < 6 * 1024 * 1024,
        "docs/teaching/ holds {total} bytes: keep only the charts a lesson needs"
    );
}

#[test]
fn the_readme_headline_charts_exist() {
    for f in [
        "bytes-per-event.png",
        "latency-spectrum.png",
        "bytes-per-event.svg",
    ] {
        let p = docs().join("teaching/quickstart").join(f);
        assert!(
            std::fs::metadata(&p).map(|m| m.len() > 0).unwrap_or(false),
            "{} missing or empty",
            p.display()
        );
    }
}

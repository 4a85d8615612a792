//! `pushbench scenarios [DIR]`: lists the scenario files of a folder with their name
//! and the first line of their description, so a user can pick one to run.

use std::path::{Path, PathBuf};

use anyhow::Context as _;
use pushbench_loadgen::Scenario;

/// Arguments of `pushbench scenarios`.
#[derive(clap::Args)]
pub struct ScenariosArgs {
    /// Folder of scenario files [default: ./scenarios, else the one shipped with the
    /// source tree].
    dir: Option<PathBuf>,
}

/// Prints one line per `*.toml` file of the folder, sorted by file name. A file that
/// does not parse is listed with its error instead of hiding the others.
pub fn main(args: ScenariosArgs) -> anyhow::Result<()> {
    let dir = args.dir.unwrap_or_else(default_dir);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .with_context(|| format!("cannot list scenarios in {}", dir.display()))?
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "toml") && p.is_file())
        .collect();
    files.sort();
    if files.is_empty() {
        anyhow::bail!("no scenario files (*.toml) in {}", dir.display());
    }
    let rows: Vec<(String, String, String)> = files
        .iter()
        .map(|path| {
            let file = path.display().to_string();
            match Scenario::from_file(path, &[]) {
                Ok(s) => (s.name().to_owned(), file, first_line(s.description())),
                Err(err) => (stem(path), file, format!("(invalid: {err})")),
            }
        })
        .collect();
    let name_w = rows
        .iter()
        .map(|r| r.0.chars().count())
        .max()
        .unwrap_or(0)
        .max(4);
    let file_w = rows
        .iter()
        .map(|r| r.1.chars().count())
        .max()
        .unwrap_or(0)
        .max(4);
    println!("{:name_w$}  {:file_w$}  DESCRIPTION", "NAME", "FILE");
    for (name, file, description) in &rows {
        println!("{name:name_w$}  {file:file_w$}  {description}");
    }
    println!();
    println!("Run one with: pushbench run <FILE>");
    Ok(())
}

/// `./scenarios` when it exists, else the folder next to the workspace this binary
/// was built from (so `cargo run -- scenarios` works from any directory).
fn default_dir() -> PathBuf {
    let local = PathBuf::from("scenarios");
    if local.is_dir() {
        local
    } else {
        let shipped = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scenarios");
        shipped.canonicalize().unwrap_or(shipped)
    }
}

/// Longest description shown, in characters (a terminal line with name and file).
const DESCRIPTION_WIDTH: usize = 100;

/// The first sentence of the first non-empty line, cut to [`DESCRIPTION_WIDTH`]:
/// scenario descriptions are paragraphs (TOML `\` continuations make one long line).
fn first_line(text: &str) -> String {
    let line = text
        .lines()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .unwrap_or("");
    let sentence = match line.find(". ") {
        Some(end) => &line[..=end],
        None => line,
    };
    if sentence.chars().count() <= DESCRIPTION_WIDTH {
        sentence.to_owned()
    } else {
        let cut: String = sentence.chars().take(DESCRIPTION_WIDTH - 1).collect();
        format!("{}…", cut.trim_end())
    }
}

fn stem(path: &Path) -> String {
    path.file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_non_empty_line() {
        assert_eq!(
            first_line("\n  Every strategy.  \nMore."),
            "Every strategy."
        );
        assert_eq!(first_line(""), "");
        assert_eq!(
            first_line("Group chat: everyone sends. Each message reaches N clients."),
            "Group chat: everyone sends."
        );
        let long = "x".repeat(150);
        let shown = first_line(&long);
        assert_eq!(shown.chars().count(), DESCRIPTION_WIDTH);
        assert!(shown.ends_with('…'));
    }
}

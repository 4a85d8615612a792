//! `pushbench compare DIR_A DIR_B [...]`: runs side by side. The first run is the
//! baseline; the terminal gets every metric per group with ratios to it, and
//! `compare.md` with overlaid charts is written to `--out`.

use std::path::PathBuf;
use std::time::SystemTime;

use anyhow::Context as _;

use crate::report::check_run_dir;

/// Arguments of `pushbench compare`.
#[derive(clap::Args)]
pub struct CompareArgs {
    /// Run folders; the first is the baseline (A) the ratios are taken against.
    #[arg(required = true, num_args = 2.., value_name = "DIR")]
    dirs: Vec<PathBuf>,
    /// Folder for compare.md and its charts [default: results/compare/<UTC time>/].
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,
}

/// Checks every folder first (so a typo in the third fails before anything is
/// written), compares, prints the table and where compare.md went.
pub fn main(args: CompareArgs) -> anyhow::Result<()> {
    for dir in &args.dirs {
        check_run_dir(dir)?;
    }
    let out = args.out.unwrap_or_else(|| {
        PathBuf::from("results")
            .join("compare")
            .join(pushbench_report::layout::run_dir_name(SystemTime::now()))
    });
    let result = pushbench_report::compare(&args.dirs, &out)
        .with_context(|| format!("cannot compare into {}", out.display()))?;
    print!("{}", result.text);
    println!();
    println!("compare: {}", result.markdown.display());
    Ok(())
}

//! Where a run was made and with what: the command line, the source revision and
//! the host, filled into `meta.json` by `pushbench run`.

use std::process::{Command, Stdio};

use pushbench_protocol::record::Meta;

/// Fills what only the binary knows (command line, git revision) and, when the
/// load generator left them empty, the version, host, cores and OS.
pub fn fill(meta: &mut Meta) {
    meta.command = command_line(std::env::args());
    meta.git_revision = git_revision();
    if meta.version.is_empty() {
        meta.version = env!("CARGO_PKG_VERSION").to_owned();
    }
    if meta.host.is_empty() {
        meta.host = host_name();
    }
    if meta.cores == 0 {
        meta.cores = std::thread::available_parallelism().map_or(0, |n| n.get() as u32);
    }
    if meta.os.is_empty() {
        meta.os = format!("{} {}", std::env::consts::OS, std::env::consts::ARCH);
    }
}

/// The arguments as one shell-pasteable line: an argument with spaces or shell
/// metacharacters is single-quoted.
pub fn command_line(args: impl IntoIterator<Item = String>) -> String {
    args.into_iter()
        .map(|a| {
            let plain = !a.is_empty()
                && a.chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-_./=:,@%+".contains(c));
            if plain {
                a
            } else {
                format!("'{}'", a.replace('\'', "'\\''"))
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// `git describe --always --dirty` of the source tree this binary was built from,
/// when git and that tree are there (not for an installed binary); else `None`.
fn git_revision() -> Option<String> {
    let output = Command::new("git")
        .args([
            "-C",
            env!("CARGO_MANIFEST_DIR"),
            "describe",
            "--always",
            "--dirty",
        ])
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output()
        .ok()?;
    let text = String::from_utf8(output.stdout).ok()?;
    let text = text.trim();
    (output.status.success() && !text.is_empty()).then(|| text.to_owned())
}

fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .or_else(|| std::env::var("COMPUTERNAME").ok())
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "unknown".to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quotes_only_what_the_shell_would_split() {
        let args = [
            "pushbench",
            "run",
            "my file.toml",
            "--set",
            "publisher.rate=200",
            "it's",
        ];
        assert_eq!(
            command_line(args.map(String::from)),
            "pushbench run 'my file.toml' --set publisher.rate=200 'it'\\''s'"
        );
    }

    #[test]
    fn fills_empty_fields_only() {
        let mut meta = Meta {
            host: "given".into(),
            ..Default::default()
        };
        fill(&mut meta);
        assert_eq!(meta.host, "given");
        assert!(meta.cores > 0);
        assert!(!meta.version.is_empty() && !meta.command.is_empty());
    }
}

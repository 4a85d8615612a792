//! Atomic file writes: the bytes go to a hidden temporary file in the same folder,
//! are flushed to disk, and the file is renamed over its final name. A reader (or a
//! crash) sees either no file or the whole file, never half of one.

use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};

use crate::ReportError;

/// Writes `bytes` to `path` atomically (same folder temp file, fsync, rename).
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), ReportError> {
    let tmp = temp_path(path);
    let result = write_and_rename(&tmp, path, bytes);
    if result.is_err() {
        // Best effort: do not leave the temporary file behind; the error that matters
        // is the one already in `result`.
        let _ = fs::remove_file(&tmp);
    }
    result
}

fn write_and_rename(tmp: &Path, path: &Path, bytes: &[u8]) -> Result<(), ReportError> {
    let mut file = File::create(tmp).map_err(|e| ReportError::io(tmp, e))?;
    file.write_all(bytes).map_err(|e| ReportError::io(tmp, e))?;
    file.sync_all().map_err(|e| ReportError::io(tmp, e))?;
    drop(file);
    fs::rename(tmp, path).map_err(|e| ReportError::io(path, e))?;
    sync_parent(path);
    Ok(())
}

/// `.name.tmp.PID` next to the target: the same file system, so rename is atomic, and
/// a leading dot so listings and globs skip it.
fn temp_path(path: &Path) -> PathBuf {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "file".to_owned());
    path.with_file_name(format!(".{name}.tmp.{}", std::process::id()))
}

/// Makes the rename itself durable on Unix (fsync of the folder). Failure only weakens
/// durability after a power cut, not atomicity, so it is not reported.
fn sync_parent(path: &Path) {
    #[cfg(unix)]
    if let Some(parent) = path.parent() {
        let parent = if parent.as_os_str().is_empty() {
            Path::new(".")
        } else {
            parent
        };
        if let Ok(dir) = File::open(parent) {
            let _ = dir.sync_all();
        }
    }
    #[cfg(not(unix))]
    let _ = path;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_whole_file_and_leaves_no_temp() {
        let dir = std::env::temp_dir().join(format!("pushbench-atomic-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        let path = dir.join("a.txt");
        write_atomic(&path, b"first").unwrap();
        write_atomic(&path, b"second, longer").unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"second, longer");
        let names: Vec<_> = fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        assert_eq!(names, vec!["a.txt".to_owned()]);
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn error_names_the_file() {
        let path = Path::new("/nonexistent-pushbench-dir/x.json");
        let err = write_atomic(path, b"x").unwrap_err().to_string();
        assert!(err.contains("nonexistent-pushbench-dir"), "{err}");
    }
}

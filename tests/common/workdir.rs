//! The temporary directory one test works in; kept on disk when the test fails (or when
//! `KEEP_TEST_FILES=1` is set) so that logs, configs and images can be inspected afterwards.

use std::path::{Path, PathBuf};

use tempfile::TempDir;

/// A per-test directory, removed on success and kept (with its path printed) on failure.
pub struct WorkDir {
    dir: TempDir,
}

impl WorkDir {
    /// Creates a fresh directory whose name starts with `prefix`.
    pub fn new(prefix: &str) -> WorkDir {
        let dir = tempfile::Builder::new()
            .prefix(prefix)
            .tempdir()
            .expect("create a temporary directory");
        WorkDir { dir }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Creates (if needed) and returns the subdirectory `name`.
    pub fn subdir(&self, name: &str) -> PathBuf {
        let path = self.dir.path().join(name);
        std::fs::create_dir_all(&path)
            .unwrap_or_else(|err| panic!("cannot create {}: {err}", path.display()));
        path
    }
}

impl Drop for WorkDir {
    fn drop(&mut self) {
        let asked = std::env::var_os("KEEP_TEST_FILES").is_some_and(|value| value == "1");
        if std::thread::panicking() || asked {
            self.dir.disable_cleanup(true);
            eprintln!("test files kept in {}", self.dir.path().display());
        }
    }
}

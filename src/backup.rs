//! `portcullis backup DIR`: a consistent copy of all state in a new
//! directory, laid out like a data directory so that restoring is copying the
//! files back:
//!
//! - `portcullis.redb`: every table, as of one read transaction;
//! - every `*.crt` and `*.key` of the data directory and its subdirectories
//!   (CA, signing key, staged and retired ones), at the same relative paths;
//! - `MANIFEST.json`: when, by which version, rows per table, files; written
//!   last, so a directory without it is not a complete backup.
//!
//! Files are written at mode 0600 and synced, then the directory is synced.

use std::collections::BTreeMap;
use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::store::{DB_FILE, SCHEMA_VERSION, Store};

/// Name of the manifest inside a backup directory.
pub const MANIFEST: &str = "MANIFEST.json";
/// Version of the backup layout this build writes.
pub const BACKUP_FORMAT: u32 = 1;
/// The lock `registry::keys` takes while it writes key files.
const KEYS_LOCK: &str = "keys.lock";

/// What a backup holds; stored as `MANIFEST.json`.
#[derive(Debug, Serialize, Deserialize)]
pub struct Manifest {
    pub format: u32,
    pub portcullis_version: String,
    /// RFC 3339, UTC.
    pub created: String,
    pub schema_version: u32,
    /// Rows copied, per table.
    pub tables: BTreeMap<String, u64>,
    /// Every file of the backup but the manifest.
    pub files: Vec<String>,
}

/// Writes a backup of `store` and the key files of `data_dir` into `dest`,
/// which must not exist yet (its parent must). A failed backup removes what
/// it wrote.
pub fn write(
    store: &Store,
    data_dir: &Path,
    dest: &Path,
    now: OffsetDateTime,
) -> anyhow::Result<Manifest> {
    let inside = match (
        data_dir.canonicalize(),
        dest.parent().map(Path::canonicalize),
    ) {
        (Ok(data), Some(Ok(parent))) => parent.starts_with(data),
        _ => false,
    };
    if inside {
        bail!("a backup cannot go inside the data directory it copies");
    }
    match fs::DirBuilder::new().mode(0o700).create(dest) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            bail!(
                "{} already exists; a backup goes into a new directory",
                dest.display()
            )
        }
        Err(e) => return Err(e).with_context(|| format!("creating {}", dest.display())),
    }
    write_into(store, data_dir, dest, now).inspect_err(|_| {
        let _ = fs::remove_dir_all(dest);
    })
}

fn write_into(
    store: &Store,
    data_dir: &Path,
    dest: &Path,
    now: OffsetDateTime,
) -> anyhow::Result<Manifest> {
    // Hold the key lock so that a key rotation cannot happen between the
    // database snapshot and the key files.
    let lock_path = data_dir.join(KEYS_LOCK);
    let lock = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_path)
        .with_context(|| format!("opening {}", lock_path.display()))?;
    lock.lock()
        .with_context(|| format!("locking {}", lock_path.display()))?;

    let tables = store
        .backup_to(&dest.join(DB_FILE))
        .context("copying the database")?;
    let mut files = vec![DB_FILE.to_owned()];
    let mut dirs = Vec::new();
    for relative in key_files(data_dir, Path::new(""))? {
        let source = data_dir.join(&relative);
        let contents =
            fs::read(&source).with_context(|| format!("reading {}", source.display()))?;
        let target = dest.join(&relative);
        let parent = target.parent().expect("files have a parent");
        if !parent.exists() {
            fs::DirBuilder::new()
                .mode(0o700)
                .recursive(true)
                .create(parent)
                .with_context(|| format!("creating {}", parent.display()))?;
            dirs.push(parent.to_owned());
        }
        write_synced(&target, &contents)?;
        files.push(relative.to_string_lossy().into_owned());
    }
    for dir in dirs {
        sync_dir(&dir)?;
    }
    drop(lock);

    let manifest = Manifest {
        format: BACKUP_FORMAT,
        portcullis_version: env!("CARGO_PKG_VERSION").to_owned(),
        created: now.format(&Rfc3339)?,
        schema_version: SCHEMA_VERSION,
        tables,
        files,
    };
    let mut json = serde_json::to_vec_pretty(&manifest)?;
    json.push(b'\n');
    write_synced(&dest.join(MANIFEST), &json)?;
    sync_dir(dest)?;
    if let Some(parent) = dest.parent().filter(|p| !p.as_os_str().is_empty()) {
        sync_dir(parent)?;
    }
    Ok(manifest)
}

/// The certificates and keys under `root/relative`, as paths relative to
/// `root`, sorted. Symbolic links are not followed.
fn key_files(root: &Path, relative: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let dir = root.join(relative);
    let mut out = Vec::new();
    let entries = fs::read_dir(&dir).with_context(|| format!("listing {}", dir.display()))?;
    for entry in entries {
        let entry = entry?;
        let path = relative.join(entry.file_name());
        let kind = entry.file_type()?;
        if kind.is_dir() {
            out.extend(key_files(root, &path)?);
            continue;
        }
        let is_key = matches!(
            path.extension().and_then(|e| e.to_str()),
            Some("crt" | "key")
        );
        if is_key && kind.is_file() {
            out.push(path);
        }
    }
    out.sort();
    Ok(out)
}

/// Creates `path` (which must not exist) at mode 0600 and syncs it.
fn write_synced(path: &Path, contents: &[u8]) -> anyhow::Result<()> {
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("creating {}", path.display()))?;
    file.write_all(contents)
        .and_then(|()| file.sync_all())
        .with_context(|| format!("writing {}", path.display()))
}

fn sync_dir(dir: &Path) -> anyhow::Result<()> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .with_context(|| format!("syncing {}", dir.display()))
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    #[test]
    fn writes_database_keys_and_manifest_and_refuses_an_existing_directory() {
        let data = tempfile::tempdir().unwrap();
        let store = Store::open(&data.path().join(DB_FILE)).unwrap();
        fs::create_dir(data.path().join("retired")).unwrap();
        for name in [
            "ca.crt",
            "ca.key",
            "signing.key",
            "notes.txt",
            "retired/old.crt",
        ] {
            fs::write(data.path().join(name), name).unwrap();
        }
        let out = tempfile::tempdir().unwrap();
        let dest = out.path().join("backup");

        let manifest = write(&store, data.path(), &dest, OffsetDateTime::UNIX_EPOCH).unwrap();
        let files = [
            DB_FILE,
            "ca.crt",
            "ca.key",
            "retired/old.crt",
            "signing.key",
        ];
        assert_eq!(manifest.files, files);
        assert_eq!(
            fs::read(dest.join("retired/old.crt")).unwrap(),
            b"retired/old.crt"
        );
        assert_eq!(fs::read(dest.join("ca.key")).unwrap(), b"ca.key");
        assert!(!dest.join("notes.txt").exists());
        for name in ["ca.key", DB_FILE, MANIFEST] {
            let mode = fs::metadata(dest.join(name)).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600, "{name}");
        }
        let read: Manifest =
            serde_json::from_slice(&fs::read(dest.join(MANIFEST)).unwrap()).unwrap();
        assert_eq!(read.tables["meta"], 2);

        let again = write(&store, data.path(), &dest, OffsetDateTime::UNIX_EPOCH);
        assert!(again.unwrap_err().to_string().contains("already exists"));
        assert!(
            dest.join(MANIFEST).exists(),
            "a refused backup leaves the old one alone"
        );
    }
}

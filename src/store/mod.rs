//! All persistent state, in one redb file: users, application tokens, refresh
//! tokens. Every transaction lives here; callers see records, never tables.
//!
//! Records are JSON inside redb values, so fields can be added without a
//! migration; the schema version in `meta` guards changes that need one.

mod audit;
mod backup;
mod export;
mod groups;
mod refresh;
mod sessions;
mod tokens;
mod users;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use redb::{Database, ReadableTable, TableDefinition};
use serde::{Serialize, de::DeserializeOwned};

pub use audit::{AuditEvent, AuditFilter};
pub use export::{EXPORT_FORMAT, Export, ExportedRefresh, ExportedToken};
pub use groups::Group;
pub use refresh::RefreshToken;
pub use sessions::{Flash, FlashKind, Session};
pub use tokens::{AppToken, NewToken, TokenUse};
pub use users::User;

/// The layout version this build reads and writes.
pub const SCHEMA_VERSION: u32 = 1;

/// Name of the database file inside the data directory.
pub const DB_FILE: &str = "portcullis.redb";

const META: TableDefinition<&str, &[u8]> = TableDefinition::new("meta");
const USERS: TableDefinition<&str, &[u8]> = TableDefinition::new("users");
/// Application tokens keyed by the SHA-256 digest of their secret.
const TOKENS: TableDefinition<&[u8], &[u8]> = TableDefinition::new("tokens");
/// `user \0 token-name` → digest: unique names, listing and counting per user.
const TOKEN_NAMES: TableDefinition<&str, &[u8]> = TableDefinition::new("token_names");
/// Refresh tokens keyed by the SHA-256 digest of their secret.
const REFRESH: TableDefinition<&[u8], &[u8]> = TableDefinition::new("refresh_tokens");
/// `user \0 refresh-id` → digest: listing and revoking per user.
const REFRESH_BY_USER: TableDefinition<&str, &[u8]> = TableDefinition::new("refresh_by_user");
/// Audit events by sequence number.
const AUDIT: TableDefinition<u64, &[u8]> = TableDefinition::new("audit");
/// `user \0 zero-padded sequence` → sequence: events concerning a user.
const AUDIT_BY_USER: TableDefinition<&str, u64> = TableDefinition::new("audit_by_user");
/// Groups by name; members are also listed in each user record.
const GROUPS: TableDefinition<&str, &[u8]> = TableDefinition::new("groups");
/// Web sessions keyed by the SHA-256 of the cookie's id.
const SESSIONS: TableDefinition<&[u8], &[u8]> = TableDefinition::new("sessions");
/// `user \0 hex(session hash)` → session hash: ending a user's sessions.
const SESSIONS_BY_USER: TableDefinition<&str, &[u8]> = TableDefinition::new("sessions_by_user");

/// A table definition of any key and value type the store uses, so that
/// whole-store operations (backup) can treat every table alike.
#[derive(Clone, Copy)]
pub(crate) enum AnyTable {
    StrBytes(TableDefinition<'static, &'static str, &'static [u8]>),
    BytesBytes(TableDefinition<'static, &'static [u8], &'static [u8]>),
    U64Bytes(TableDefinition<'static, u64, &'static [u8]>),
    StrU64(TableDefinition<'static, &'static str, u64>),
}

/// Every table in the database. A backup copies exactly these; a test checks
/// that the list matches the tables a fresh store has, so a new table cannot
/// be left out.
pub(crate) const ALL_TABLES: [AnyTable; 11] = [
    AnyTable::StrBytes(META),
    AnyTable::StrBytes(USERS),
    AnyTable::BytesBytes(TOKENS),
    AnyTable::StrBytes(TOKEN_NAMES),
    AnyTable::BytesBytes(REFRESH),
    AnyTable::StrBytes(REFRESH_BY_USER),
    AnyTable::U64Bytes(AUDIT),
    AnyTable::StrU64(AUDIT_BY_USER),
    AnyTable::StrBytes(GROUPS),
    AnyTable::BytesBytes(SESSIONS),
    AnyTable::StrBytes(SESSIONS_BY_USER),
];

const SCHEMA_KEY: &str = "schema_version";
const SECRET_KEY: &str = "server_secret";

/// What went wrong in the store. `NotFound`, `Conflict` and `LimitReached`
/// are the caller's to explain; `Db` and `Corrupt` are for the operator.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{0} not found")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    #[error("limit of {0} application tokens reached")]
    LimitReached(u32),
    #[error("the database is already open in another process")]
    AlreadyOpen,
    #[error(
        "database schema version {found} is newer than this build understands ({SCHEMA_VERSION})"
    )]
    TooNew { found: u32 },
    #[error("corrupt record in {table}: {problem}")]
    Corrupt {
        table: &'static str,
        problem: String,
    },
    #[error("database error: {0}")]
    Db(Box<redb::Error>),
}

macro_rules! from_redb {
    ($($t:ty),*) => {$(
        impl From<$t> for StoreError {
            fn from(e: $t) -> Self {
                match redb::Error::from(e) {
                    redb::Error::DatabaseAlreadyOpen => StoreError::AlreadyOpen,
                    other => StoreError::Db(Box::new(other)),
                }
            }
        }
    )*};
}
from_redb!(
    redb::Error,
    redb::DatabaseError,
    redb::TransactionError,
    redb::TableError,
    redb::StorageError,
    redb::CommitError
);

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// The open database. Cheap to share behind an `Arc`; redb serialises writers
/// and gives readers a consistent snapshot.
pub struct Store {
    db: Database,
}

impl Store {
    /// Opens (or creates) the database file at `path` and brings its layout
    /// up to date. Fails with `AlreadyOpen` if another process holds it.
    pub fn open(path: &Path) -> Result<Store> {
        let db = Database::builder()
            .create_with_file_format_v3(true)
            .create(path)?;
        // Password hashes and token digests live here: owner only.
        let restricted = std::fs::Permissions::from_mode(0o600);
        std::fs::set_permissions(path, restricted)
            .map_err(|e| StoreError::Db(Box::new(e.into())))?;
        let store = Store { db };
        store.init()?;
        Ok(store)
    }

    fn init(&self) -> Result<()> {
        let txn = self.db.begin_write()?;
        {
            let mut meta = txn.open_table(META)?;
            let found = meta
                .get(SCHEMA_KEY)?
                .map(|v| decode_u32(v.value()))
                .transpose()?;
            match found {
                Some(v) if v > SCHEMA_VERSION => return Err(StoreError::TooNew { found: v }),
                // Version 1 is the first layout: nothing to migrate yet.
                Some(_) => {}
                None => {
                    meta.insert(SCHEMA_KEY, SCHEMA_VERSION.to_be_bytes().as_slice())?;
                    let secret: [u8; 32] = rand::random();
                    meta.insert(SECRET_KEY, secret.as_slice())?;
                }
            }
            txn.open_table(USERS)?;
            txn.open_table(TOKENS)?;
            txn.open_table(TOKEN_NAMES)?;
            txn.open_table(REFRESH)?;
            txn.open_table(REFRESH_BY_USER)?;
            txn.open_table(SESSIONS)?;
            txn.open_table(GROUPS)?;
            txn.open_table(AUDIT)?;
            txn.open_table(AUDIT_BY_USER)?;
            txn.open_table(SESSIONS_BY_USER)?;
        }
        txn.commit()?;
        Ok(())
    }

    /// How many users, application tokens and sessions there are; cheap
    /// (redb keeps table lengths).
    pub fn counts(&self) -> Result<(u64, u64, u64)> {
        use redb::ReadableTableMetadata;
        let txn = self.db.begin_read()?;
        let users = txn.open_table(USERS)?.len()?;
        let tokens = txn.open_table(TOKENS)?.len()?;
        let sessions = txn.open_table(SESSIONS)?.len()?;
        Ok((users, tokens, sessions))
    }

    /// A random per-installation key, for MACs that must not be guessable.
    pub fn server_secret(&self) -> Result<[u8; 32]> {
        let txn = self.db.begin_read()?;
        let meta = txn.open_table(META)?;
        let value = meta
            .get(SECRET_KEY)?
            .ok_or_else(|| corrupt("meta", "no server secret"))?;
        value
            .value()
            .try_into()
            .map_err(|_| corrupt("meta", "server secret has the wrong size"))
    }
}

fn decode_u32(bytes: &[u8]) -> Result<u32> {
    let array: [u8; 4] = bytes
        .try_into()
        .map_err(|_| corrupt("meta", "bad schema version"))?;
    Ok(u32::from_be_bytes(array))
}

fn corrupt(table: &'static str, problem: impl Into<String>) -> StoreError {
    StoreError::Corrupt {
        table,
        problem: problem.into(),
    }
}

fn encode<T: Serialize>(value: &T) -> Vec<u8> {
    serde_json::to_vec(value).expect("records serialise to JSON")
}

fn decode<T: DeserializeOwned>(table: &'static str, bytes: &[u8]) -> Result<T> {
    serde_json::from_slice(bytes).map_err(|e| corrupt(table, e.to_string()))
}

/// The key of a per-user index entry: `user \0 item`. Names never hold `\0`.
fn index_key(user: &str, item: &str) -> String {
    format!("{user}\0{item}")
}

/// Every index value stored under `user`, in key order.
fn index_values(
    table: &impl ReadableTable<&'static str, &'static [u8]>,
    user: &str,
) -> Result<Vec<Vec<u8>>> {
    let start = format!("{user}\0");
    let end = format!("{user}\u{1}");
    let mut out = Vec::new();
    for entry in table.range(start.as_str()..end.as_str())? {
        let (_, value) = entry?;
        out.push(value.value().to_vec());
    }
    Ok(out)
}

#[cfg(test)]
pub(crate) fn temp_store() -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join(DB_FILE)).unwrap();
    (dir, store)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reopening_keeps_the_secret_and_second_open_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(DB_FILE);
        let secret = Store::open(&path).unwrap().server_secret().unwrap();
        let store = Store::open(&path).unwrap();
        assert_eq!(store.server_secret().unwrap(), secret);
        assert!(matches!(Store::open(&path), Err(StoreError::AlreadyOpen)));
    }
}

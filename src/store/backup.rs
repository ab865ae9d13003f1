//! A consistent copy of the whole database into a new redb file, taken from
//! one read transaction: redb's MVCC lets the server keep writing meanwhile.

use std::collections::BTreeMap;
use std::fs::OpenOptions;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use redb::{Database, Key, ReadTransaction, TableDefinition, TableHandle, Value, WriteTransaction};

use super::{ALL_TABLES, AnyTable, Result, Store, StoreError};

impl Store {
    /// Copies every table, as of one instant, into a new database file at
    /// `path` (mode 0600, which must not exist yet), synced to disk. Returns
    /// the number of rows copied per table.
    pub fn backup_to(&self, path: &Path) -> Result<BTreeMap<String, u64>> {
        let snapshot = self.db.begin_read()?;
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(path)
            .map_err(io_error)?;
        let copy = Database::builder()
            .create_with_file_format_v3(true)
            .create_file(file)?;

        let txn = copy.begin_write()?;
        let mut rows = BTreeMap::new();
        for table in ALL_TABLES {
            let count = match table {
                AnyTable::StrBytes(def) => copy_table(&snapshot, &txn, def)?,
                AnyTable::BytesBytes(def) => copy_table(&snapshot, &txn, def)?,
                AnyTable::U64Bytes(def) => copy_table(&snapshot, &txn, def)?,
                AnyTable::StrU64(def) => copy_table(&snapshot, &txn, def)?,
            };
            rows.insert(table.name(), count);
        }
        // The default durability syncs the file before commit returns.
        txn.commit()?;
        drop(copy);
        Ok(rows)
    }
}

impl AnyTable {
    fn name(&self) -> String {
        match self {
            AnyTable::StrBytes(def) => def.name().to_owned(),
            AnyTable::BytesBytes(def) => def.name().to_owned(),
            AnyTable::U64Bytes(def) => def.name().to_owned(),
            AnyTable::StrU64(def) => def.name().to_owned(),
        }
    }
}

fn copy_table<K: Key + 'static, V: Value + 'static>(
    from: &ReadTransaction,
    to: &WriteTransaction,
    def: TableDefinition<K, V>,
) -> Result<u64> {
    use redb::ReadableTable;

    let source = from.open_table(def)?;
    let mut target = to.open_table(def)?;
    let mut rows = 0;
    for entry in source.iter()? {
        let (key, value) = entry?;
        target.insert(key.value(), value.value())?;
        rows += 1;
    }
    Ok(rows)
}

fn io_error(e: std::io::Error) -> StoreError {
    StoreError::Db(Box::new(e.into()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::users::tests::user;
    use crate::store::{DB_FILE, NewToken, temp_store};

    #[test]
    fn the_table_list_names_every_table() {
        let (_dir, store) = temp_store();
        let txn = store.db.begin_read().unwrap();
        let mut found: Vec<String> = txn
            .list_tables()
            .unwrap()
            .map(|t| t.name().to_owned())
            .collect();
        found.sort();
        let mut listed: Vec<String> = ALL_TABLES.iter().map(AnyTable::name).collect();
        listed.sort();
        assert_eq!(found, listed, "ALL_TABLES must list every table");
        assert_eq!(txn.list_multimap_tables().unwrap().count(), 0);
    }

    #[test]
    fn a_backup_opens_as_a_store_with_the_same_records() {
        let (_dir, store) = temp_store();
        store.create_user(&user("alice")).unwrap();
        let new = NewToken {
            user: "alice".into(),
            name: "ci".into(),
            access: crate::registry::policy::AccessLevel::Pull,
            expires: None,
            repositories: None,
        };
        store.create_token(&[7; 32], &new, 5, 1).unwrap();

        let out = tempfile::tempdir().unwrap();
        let path = out.path().join(DB_FILE);
        let rows = store.backup_to(&path).unwrap();
        assert_eq!(rows["users"], 1);
        assert_eq!(rows["tokens"], 1);
        let mode = std::fs::metadata(&path).unwrap().permissions();
        assert_eq!(
            std::os::unix::fs::PermissionsExt::mode(&mode) & 0o777,
            0o600
        );
        assert!(store.backup_to(&path).is_err(), "an existing file is kept");

        let copy = Store::open(&path).unwrap();
        assert_eq!(
            copy.server_secret().unwrap(),
            store.server_secret().unwrap()
        );
        let (token, owner) = copy.token_by_digest(&[7; 32]).unwrap().unwrap();
        assert_eq!((token.name.as_str(), owner.name.as_str()), ("ci", "alice"));
    }
}

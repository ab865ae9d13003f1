//! User accounts. The name is also the user's namespace in the registry.

use redb::{ReadableTable, ReadableTableMetadata};
use serde::{Deserialize, Serialize};

const BOOTSTRAP_KEY: &str = "initial_admin_created";

use super::{
    GROUPS, META, REFRESH, REFRESH_BY_USER, Result, SESSIONS, SESSIONS_BY_USER, Store, StoreError,
    TOKEN_NAMES, TOKENS, USERS, decode, encode, index_values,
};

/// A stored account. The password hash is argon2id in PHC form.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct User {
    pub name: String,
    pub password_hash: Option<String>,
    pub admin: bool,
    pub disabled: bool,
    /// Unix seconds.
    pub created: i64,
    /// Bumped whenever the password changes, so cached verifications and
    /// anything tied to the old password can tell they are stale.
    #[serde(default)]
    pub credential_epoch: u64,
    /// Groups the user belongs to, kept here so a token request reads them
    /// with the user in one lookup.
    #[serde(default)]
    pub groups: Vec<String>,
    /// A service account: no password, application tokens only.
    #[serde(default)]
    pub service: bool,
}

impl User {
    /// An enabled administrator: someone who can still administer.
    pub fn is_acting_admin(&self) -> bool {
        self.admin && !self.disabled
    }
}

/// Refuses a change (inside its transaction, so two admins demoting each
/// other at once cannot both succeed) that would leave no enabled admin.
fn refuse_if_no_admin_left(users: &redb::Table<&'static str, &'static [u8]>) -> Result<()> {
    for entry in users.iter()? {
        let user: User = decode("users", entry?.1.value())?;
        if user.is_acting_admin() {
            return Ok(());
        }
    }
    Err(StoreError::Conflict(
        "this would leave no enabled administrator; make someone else an administrator first"
            .into(),
    ))
}

impl Store {
    /// Creates a user; fails with `Conflict` if the name is taken.
    pub fn create_user(&self, user: &User) -> Result<()> {
        let txn = self.db.begin_write()?;
        {
            let mut users = txn.open_table(USERS)?;
            if users.get(user.name.as_str())?.is_some() {
                return Err(StoreError::Conflict(format!(
                    "user {} already exists",
                    user.name
                )));
            }
            if txn.open_table(GROUPS)?.get(user.name.as_str())?.is_some() {
                let taken = format!("{} is already a group name", user.name);
                return Err(StoreError::Conflict(taken));
            }
            users.insert(user.name.as_str(), encode(user).as_slice())?;
        }
        txn.commit()?;
        Ok(())
    }

    /// Creates the first admin on the very first start; later starts (even
    /// with every user deleted) do nothing. Returns whether it was created.
    pub fn create_initial_admin(&self, user: &User) -> Result<bool> {
        let txn = self.db.begin_write()?;
        let created = {
            let mut meta = txn.open_table(META)?;
            if meta.get(BOOTSTRAP_KEY)?.is_some() {
                return Ok(false);
            }
            meta.insert(BOOTSTRAP_KEY, [1u8].as_slice())?;
            let mut users = txn.open_table(USERS)?;
            // Users added with the CLI before the server first ran make the
            // initial admin unnecessary.
            let empty = users.len()? == 0;
            if empty {
                users.insert(user.name.as_str(), encode(user).as_slice())?;
            }
            empty
        };
        txn.commit()?;
        Ok(created)
    }

    /// Looks a user up by name.
    pub fn user(&self, name: &str) -> Result<Option<User>> {
        let txn = self.db.begin_read()?;
        let users = txn.open_table(USERS)?;
        users
            .get(name)?
            .map(|v| decode("users", v.value()))
            .transpose()
    }

    /// Every user, ordered by name.
    pub fn users(&self) -> Result<Vec<User>> {
        let txn = self.db.begin_read()?;
        let users = txn.open_table(USERS)?;
        let mut out = Vec::new();
        for entry in users.iter()? {
            out.push(decode("users", entry?.1.value())?);
        }
        Ok(out)
    }

    /// Applies `change` to the stored user and saves it, in one transaction.
    pub fn update_user(&self, name: &str, change: impl FnOnce(&mut User)) -> Result<User> {
        let txn = self.db.begin_write()?;
        let user = {
            let mut users = txn.open_table(USERS)?;
            let mut user: User = match users.get(name)? {
                Some(v) => decode("users", v.value())?,
                None => return Err(StoreError::NotFound(format!("user {name}"))),
            };
            let was_admin = user.is_acting_admin();
            change(&mut user);
            users.insert(name, encode(&user).as_slice())?;
            if was_admin && !user.is_acting_admin() {
                refuse_if_no_admin_left(&users)?;
            }
            user
        };
        txn.commit()?;
        Ok(user)
    }

    /// Sets a new password hash and revokes every refresh token of the user:
    /// someone changing their password wants every `docker login` to end.
    pub fn set_password(&self, name: &str, hash: String) -> Result<User> {
        let txn = self.db.begin_write()?;
        let user = {
            let mut users = txn.open_table(USERS)?;
            let mut user: User = match users.get(name)? {
                Some(v) => decode("users", v.value())?,
                None => return Err(StoreError::NotFound(format!("user {name}"))),
            };
            user.password_hash = Some(hash);
            user.credential_epoch += 1;
            users.insert(name, encode(&user).as_slice())?;
            user
        };
        {
            let mut refresh = txn.open_table(REFRESH)?;
            let mut by_user = txn.open_table(REFRESH_BY_USER)?;
            super::refresh::remove_where(&mut refresh, &mut by_user, name, |_| true)?;
        }
        txn.commit()?;
        Ok(user)
    }

    /// Deletes a user with every token and refresh token they own.
    pub fn delete_user(&self, name: &str) -> Result<()> {
        let txn = self.db.begin_write()?;
        {
            let mut users = txn.open_table(USERS)?;
            let removed = users.remove(name)?.map(|v| v.value().to_vec());
            let Some(removed) = removed else {
                return Err(StoreError::NotFound(format!("user {name}")));
            };
            let removed: User = decode("users", &removed)?;
            if removed.is_acting_admin() {
                refuse_if_no_admin_left(&users)?;
            }
            let mut groups = txn.open_table(GROUPS)?;
            for group_name in &removed.groups {
                let stored = groups.get(group_name.as_str())?.map(|v| v.value().to_vec());
                if let Some(bytes) = stored {
                    let mut group: super::Group = decode("groups", &bytes)?;
                    group.members.retain(|m| m != name);
                    groups.insert(group_name.as_str(), encode(&group).as_slice())?;
                }
            }
            let mut tokens = txn.open_table(TOKENS)?;
            let mut names = txn.open_table(TOKEN_NAMES)?;
            for digest in index_values(&names, name)? {
                tokens.remove(digest.as_slice())?;
            }
            let start = format!("{name}\0");
            let end = format!("{name}\u{1}");
            names.retain_in(start.as_str()..end.as_str(), |_, _| false)?;

            let mut refresh = txn.open_table(REFRESH)?;
            let mut by_user = txn.open_table(REFRESH_BY_USER)?;
            super::refresh::remove_where(&mut refresh, &mut by_user, name, |_| true)?;
            let mut sessions = txn.open_table(SESSIONS)?;
            let mut sessions_by_user = txn.open_table(SESSIONS_BY_USER)?;
            super::sessions::remove_of(&mut sessions, &mut sessions_by_user, name, None)?;
        }
        txn.commit()?;
        Ok(())
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::store::temp_store;

    pub(crate) fn user(name: &str) -> User {
        User {
            name: name.to_owned(),
            password_hash: Some("hash".into()),
            admin: false,
            disabled: false,
            created: 0,
            credential_epoch: 0,
            groups: Vec::new(),
            service: false,
        }
    }

    #[test]
    fn create_get_update_delete() {
        let (_dir, store) = temp_store();
        store.create_user(&user("alice")).unwrap();
        assert!(matches!(
            store.create_user(&user("alice")),
            Err(StoreError::Conflict(_))
        ));
        assert_eq!(store.user("alice").unwrap().unwrap().name, "alice");
        assert_eq!(store.user("bob").unwrap(), None);

        let updated = store.update_user("alice", |u| u.disabled = true).unwrap();
        assert!(updated.disabled);
        assert!(store.user("alice").unwrap().unwrap().disabled);

        let changed = store.set_password("alice", "new".into()).unwrap();
        assert_eq!(changed.credential_epoch, 1);

        store.delete_user("alice").unwrap();
        assert_eq!(store.user("alice").unwrap(), None);

        let mut root = user("root");
        root.admin = true;
        store.create_user(&root).unwrap();
        let demote = store.update_user("root", |u| u.admin = false);
        assert!(
            matches!(demote, Err(StoreError::Conflict(_))),
            "the last admin stays"
        );
        assert!(store.update_user("root", |u| u.disabled = true).is_err());
        assert!(store.delete_user("root").is_err());
        let mut second = user("second");
        second.admin = true;
        store.create_user(&second).unwrap();
        store.update_user("root", |u| u.admin = false).unwrap();
        assert!(!store.user("root").unwrap().unwrap().admin);
        assert!(matches!(
            store.delete_user("alice"),
            Err(StoreError::NotFound(_))
        ));
    }
}

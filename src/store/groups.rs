//! Groups of users. Membership is written on both sides in one transaction:
//! the group lists its members, and each user record lists its groups, so a
//! token request learns a user's groups from the one record it reads anyway.

use redb::ReadableTable;
use serde::{Deserialize, Serialize};

use super::{GROUPS, Result, Store, StoreError, USERS, User, decode, encode};

/// A stored group.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct Group {
    pub name: String,
    /// Unix seconds.
    pub created: i64,
    pub members: Vec<String>,
}

impl Store {
    /// Creates an empty group; a user or group of that name must not exist.
    pub fn create_group(&self, name: &str, now: i64) -> Result<Group> {
        let group = Group {
            name: name.to_owned(),
            created: now,
            members: Vec::new(),
        };
        let txn = self.db.begin_write()?;
        {
            if txn.open_table(USERS)?.get(name)?.is_some() {
                return Err(StoreError::Conflict(format!(
                    "{name} is already a user name"
                )));
            }
            let mut groups = txn.open_table(GROUPS)?;
            if groups.get(name)?.is_some() {
                return Err(StoreError::Conflict(format!("group {name} already exists")));
            }
            groups.insert(name, encode(&group).as_slice())?;
        }
        txn.commit()?;
        Ok(group)
    }

    pub fn group(&self, name: &str) -> Result<Option<Group>> {
        let txn = self.db.begin_read()?;
        let groups = txn.open_table(GROUPS)?;
        groups
            .get(name)?
            .map(|v| decode("groups", v.value()))
            .transpose()
    }

    /// Every group, by name.
    pub fn groups(&self) -> Result<Vec<Group>> {
        let txn = self.db.begin_read()?;
        let groups = txn.open_table(GROUPS)?;
        let mut out = Vec::new();
        for entry in groups.iter()? {
            out.push(decode("groups", entry?.1.value())?);
        }
        Ok(out)
    }

    /// Deletes a group and removes it from its members.
    pub fn delete_group(&self, name: &str) -> Result<()> {
        let txn = self.db.begin_write()?;
        {
            let removed = txn
                .open_table(GROUPS)?
                .remove(name)?
                .map(|v| v.value().to_vec());
            let Some(bytes) = removed else {
                return Err(StoreError::NotFound(format!("group {name}")));
            };
            let group: Group = decode("groups", &bytes)?;
            let mut users = txn.open_table(USERS)?;
            for member in &group.members {
                let stored = users.get(member.as_str())?.map(|v| v.value().to_vec());
                if let Some(bytes) = stored {
                    let mut user: User = decode("users", &bytes)?;
                    user.groups.retain(|g| g != name);
                    users.insert(member.as_str(), encode(&user).as_slice())?;
                }
            }
        }
        txn.commit()?;
        Ok(())
    }

    /// Adds or removes `user` in `group`.
    pub fn set_membership(&self, group: &str, user: &str, member: bool) -> Result<()> {
        let txn = self.db.begin_write()?;
        {
            let mut groups = txn.open_table(GROUPS)?;
            let mut record: Group = match groups.get(group)? {
                Some(v) => decode("groups", v.value())?,
                None => return Err(StoreError::NotFound(format!("group {group}"))),
            };
            let mut users = txn.open_table(USERS)?;
            let mut account: User = match users.get(user)? {
                Some(v) => decode("users", v.value())?,
                None => return Err(StoreError::NotFound(format!("user {user}"))),
            };
            record.members.retain(|m| m != user);
            account.groups.retain(|g| g != group);
            if member {
                record.members.push(user.to_owned());
                record.members.sort();
                account.groups.push(group.to_owned());
                account.groups.sort();
            }
            groups.insert(group, encode(&record).as_slice())?;
            users.insert(user, encode(&account).as_slice())?;
        }
        txn.commit()?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::temp_store;
    use crate::store::users::tests::user;

    #[test]
    fn membership_is_kept_on_both_sides() {
        let (_dir, store) = temp_store();
        store.create_user(&user("alice")).unwrap();
        store.create_group("web", 0).unwrap();
        assert!(matches!(
            store.create_group("alice", 0),
            Err(StoreError::Conflict(_))
        ));
        assert!(matches!(
            store.create_user(&user("web")),
            Err(StoreError::Conflict(_))
        ));

        store.set_membership("web", "alice", true).unwrap();
        store.set_membership("web", "alice", true).unwrap();
        assert_eq!(store.group("web").unwrap().unwrap().members, ["alice"]);
        assert_eq!(store.user("alice").unwrap().unwrap().groups, ["web"]);

        store.set_membership("web", "alice", false).unwrap();
        assert!(store.user("alice").unwrap().unwrap().groups.is_empty());

        store.set_membership("web", "alice", true).unwrap();
        store.delete_group("web").unwrap();
        assert!(store.user("alice").unwrap().unwrap().groups.is_empty());
        assert!(matches!(
            store.set_membership("web", "alice", true),
            Err(StoreError::NotFound(_))
        ));
    }

    #[test]
    fn deleting_a_user_leaves_their_groups() {
        let (_dir, store) = temp_store();
        store.create_user(&user("alice")).unwrap();
        store.create_group("web", 0).unwrap();
        store.set_membership("web", "alice", true).unwrap();
        store.delete_user("alice").unwrap();
        assert!(store.group("web").unwrap().unwrap().members.is_empty());
    }
}

//! The store as one JSON document, for moving between versions: users with
//! their password hashes, groups, application and refresh tokens by digest,
//! and the audit log. Web sessions are left out: they are short-lived, and
//! people simply sign in again.

use redb::{ReadableTable, ReadableTableMetadata};
use serde::{Deserialize, Serialize};

use super::{
    AUDIT, AUDIT_BY_USER, AuditEvent, GROUPS, Group, META, REFRESH, REFRESH_BY_USER, RefreshToken,
    Result, Store, StoreError, TOKEN_NAMES, TOKENS, USERS, User, decode, encode, index_key,
};
use crate::store::AppToken;

/// The version of the export document this build writes and reads.
pub const EXPORT_FORMAT: u32 = 1;

/// Everything worth keeping, as one serialisable document.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Export {
    /// [`EXPORT_FORMAT`] of the build that wrote it.
    pub format: u32,
    /// The Portcullis version that wrote it, for people.
    pub portcullis_version: String,
    /// Unix seconds.
    pub exported_at: i64,
    pub users: Vec<User>,
    pub groups: Vec<Group>,
    pub tokens: Vec<ExportedToken>,
    pub refresh_tokens: Vec<ExportedRefresh>,
    /// Oldest first.
    pub audit: Vec<AuditEvent>,
}

/// An application token with the digest it is found by (hex SHA-256).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ExportedToken {
    pub digest: String,
    #[serde(flatten)]
    pub token: AppToken,
}

/// A refresh token with the digest it is found by (hex SHA-256).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ExportedRefresh {
    pub digest: String,
    #[serde(flatten)]
    pub refresh: RefreshToken,
}

/// Set by `create_initial_admin`; see users.rs.
const BOOTSTRAP_KEY: &str = "initial_admin_created";

impl Store {
    /// Reads everything but sessions, in one snapshot.
    pub fn export(&self, now: i64) -> Result<Export> {
        let txn = self.db.begin_read()?;
        let mut export = Export {
            format: EXPORT_FORMAT,
            portcullis_version: env!("CARGO_PKG_VERSION").to_owned(),
            exported_at: now,
            users: Vec::new(),
            groups: Vec::new(),
            tokens: Vec::new(),
            refresh_tokens: Vec::new(),
            audit: Vec::new(),
        };
        for entry in txn.open_table(USERS)?.iter()? {
            export.users.push(decode("users", entry?.1.value())?);
        }
        for entry in txn.open_table(GROUPS)?.iter()? {
            export.groups.push(decode("groups", entry?.1.value())?);
        }
        for entry in txn.open_table(TOKENS)?.iter()? {
            let (digest, value) = entry?;
            export.tokens.push(ExportedToken {
                digest: hex(digest.value()),
                token: decode("tokens", value.value())?,
            });
        }
        for entry in txn.open_table(REFRESH)?.iter()? {
            let (digest, value) = entry?;
            export.refresh_tokens.push(ExportedRefresh {
                digest: hex(digest.value()),
                refresh: decode("refresh_tokens", value.value())?,
            });
        }
        for entry in txn.open_table(AUDIT)?.iter()? {
            export.audit.push(decode("audit", entry?.1.value())?);
        }
        Ok(export)
    }

    /// Writes an export into this store, which must hold no users, groups,
    /// tokens or audit events. All or nothing: one write transaction.
    pub fn import(&self, data: &Export) -> Result<()> {
        if data.format != EXPORT_FORMAT {
            return Err(refused(format!(
                "export format {} is not the one this build reads ({EXPORT_FORMAT})",
                data.format
            )));
        }
        check_names_and_membership(data)?;
        let txn = self.db.begin_write()?;
        {
            let mut users = txn.open_table(USERS)?;
            let mut groups = txn.open_table(GROUPS)?;
            let mut tokens = txn.open_table(TOKENS)?;
            let mut refresh = txn.open_table(REFRESH)?;
            let mut audit = txn.open_table(AUDIT)?;
            let rows = users.len()? + groups.len()? + tokens.len()? + refresh.len()?;
            if rows + audit.len()? > 0 {
                return Err(refused(
                    "the database is not empty: import only into a new data directory, \
                     before `serve` first runs there"
                        .into(),
                ));
            }

            for user in &data.users {
                if users
                    .insert(user.name.as_str(), encode(user).as_slice())?
                    .is_some()
                {
                    return Err(refused(format!("user {} appears twice", user.name)));
                }
            }
            for group in &data.groups {
                if users.get(group.name.as_str())?.is_some() {
                    return Err(refused(format!(
                        "{} is both a user and a group",
                        group.name
                    )));
                }
                groups.insert(group.name.as_str(), encode(group).as_slice())?;
            }

            let mut names = txn.open_table(TOKEN_NAMES)?;
            for t in &data.tokens {
                let owner = &t.token.user;
                let what = || format!("token {:?} of {owner}", t.token.name);
                let digest =
                    unhex(&t.digest).ok_or_else(|| refused(format!("{}: bad digest", what())))?;
                if users.get(owner.as_str())?.is_none() {
                    return Err(refused(format!("{}: no such user", what())));
                }
                let key = index_key(owner, &t.token.name);
                if names.insert(key.as_str(), digest.as_slice())?.is_some() {
                    return Err(refused(format!("{} appears twice", what())));
                }
                tokens.insert(digest.as_slice(), encode(&t.token).as_slice())?;
            }

            let mut refresh_by_user = txn.open_table(REFRESH_BY_USER)?;
            for r in &data.refresh_tokens {
                let owner = &r.refresh.user;
                let what = || format!("refresh token {} of {owner}", r.refresh.id);
                let digest =
                    unhex(&r.digest).ok_or_else(|| refused(format!("{}: bad digest", what())))?;
                if users.get(owner.as_str())?.is_none() {
                    return Err(refused(format!("{}: no such user", what())));
                }
                let key = index_key(owner, &r.refresh.id);
                refresh_by_user.insert(key.as_str(), digest.as_slice())?;
                refresh.insert(digest.as_slice(), encode(&r.refresh).as_slice())?;
            }

            // Numbered from 1 as `append_audit` does, which continues after them.
            let mut by_user = txn.open_table(AUDIT_BY_USER)?;
            let mut sequence: u64 = 0;
            for event in &data.audit {
                sequence += 1;
                audit.insert(sequence, encode(event).as_slice())?;
                for user in event.users() {
                    let key = index_key(user, &format!("{sequence:020}"));
                    by_user.insert(key.as_str(), sequence)?;
                }
            }
            let mut meta = txn.open_table(META)?;
            meta.insert(
                super::audit::SEQUENCE_KEY,
                sequence.to_be_bytes().as_slice(),
            )?;
            // Imported accounts replace the generated first admin.
            meta.insert(BOOTSTRAP_KEY, [1u8].as_slice())?;
        }
        txn.commit()?;
        Ok(())
    }
}

/// An export is data from outside: names must follow the registry grammar
/// (a user named `*` would turn `${user}/*` into every repository), appear
/// once, and group membership must agree on both sides.
fn check_names_and_membership(data: &Export) -> Result<()> {
    use std::collections::{BTreeMap, BTreeSet};

    let valid = |name: &str| name.len() <= 64 && crate::registry::scope::is_path_component(name);
    let mut users: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
    for user in &data.users {
        if !valid(&user.name) {
            return Err(refused(format!("{:?} is not a valid user name", user.name)));
        }
        let groups = user.groups.iter().map(String::as_str).collect();
        if users.insert(user.name.as_str(), groups).is_some() {
            return Err(refused(format!("user {} appears twice", user.name)));
        }
    }
    let mut groups: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
    for group in &data.groups {
        if !valid(&group.name) {
            return Err(refused(format!(
                "{:?} is not a valid group name",
                group.name
            )));
        }
        let members = group.members.iter().map(String::as_str).collect();
        if groups.insert(group.name.as_str(), members).is_some() {
            return Err(refused(format!("group {} appears twice", group.name)));
        }
    }
    for (user, their_groups) in &users {
        for group in their_groups {
            if !groups
                .get(group)
                .is_some_and(|members| members.contains(user))
            {
                return Err(refused(format!(
                    "user {user} lists group {group}, which does not list them"
                )));
            }
        }
    }
    for (group, members) in &groups {
        for member in members {
            if !users.get(member).is_some_and(|g| g.contains(group)) {
                return Err(refused(format!(
                    "group {group} lists {member}, who does not list it"
                )));
            }
        }
    }
    Ok(())
}

fn refused(message: String) -> StoreError {
    StoreError::Conflict(format!("import refused: {message}"))
}

fn hex(bytes: &[u8]) -> String {
    data_encoding::HEXLOWER.encode(bytes)
}

fn unhex(text: &str) -> Option<[u8; 32]> {
    let bytes = data_encoding::HEXLOWER.decode(text.as_bytes()).ok()?;
    bytes.try_into().ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::policy::AccessLevel;
    use crate::store::users::tests::user;
    use crate::store::{AuditFilter, NewToken, temp_store};

    fn filled_store() -> (tempfile::TempDir, Store) {
        let (dir, store) = temp_store();
        store.create_user(&user("alice")).unwrap();
        store.create_group("web", 3).unwrap();
        store.set_membership("web", "alice", true).unwrap();
        let new = NewToken {
            user: "alice".into(),
            name: "ci".into(),
            access: AccessLevel::Push,
            expires: None,
            repositories: Some(vec!["web/*".into()]),
        };
        store.create_token(&[7; 32], &new, 5, 4).unwrap();
        let event = |action: &str| AuditEvent {
            at: 5,
            actor: "cli".into(),
            action: action.into(),
            target: "alice/ci".into(),
            addr: None,
            detail: None,
        };
        store
            .append_audit(&[event("token.created"), event("token.used")])
            .unwrap();
        (dir, store)
    }

    #[test]
    fn export_then_import_keeps_every_record() {
        let (_dir, store) = filled_store();
        let export = store.export(9).unwrap();
        let text = serde_json::to_string(&export).unwrap();

        let (_other, fresh) = temp_store();
        fresh.import(&serde_json::from_str(&text).unwrap()).unwrap();
        assert_eq!(fresh.users().unwrap(), store.users().unwrap());
        assert_eq!(fresh.groups().unwrap(), store.groups().unwrap());
        assert_eq!(
            fresh.tokens_of("alice").unwrap(),
            store.tokens_of("alice").unwrap()
        );
        assert!(fresh.token_by_digest(&[7; 32]).unwrap().is_some());
        let all = AuditFilter::default();
        let mine = AuditFilter {
            user: Some("alice".into()),
            ..AuditFilter::default()
        };
        assert_eq!(fresh.audit_events(&all, 10).unwrap().len(), 2);
        assert_eq!(fresh.audit_events(&mine, 10).unwrap().len(), 2);

        // New events continue the sequence instead of overwriting imported ones.
        fresh.append_audit(&export.audit[..1]).unwrap();
        assert_eq!(fresh.audit_events(&all, 10).unwrap().len(), 3);
    }

    #[test]
    fn import_refuses_bad_names_duplicates_and_lopsided_membership() {
        let (_dir, store) = filled_store();
        let good = store.export(9).unwrap();
        let mut cases: Vec<(&str, Export)> = Vec::new();
        let mut star = good.clone();
        star.users[0].name = "*".into();
        cases.push(("valid user name", star));
        let mut twice = good.clone();
        twice.groups.push(twice.groups[0].clone());
        cases.push(("appears twice", twice));
        let mut lopsided = good.clone();
        lopsided.groups[0].members.clear();
        cases.push(("does not list them", lopsided));
        let mut ghost = good.clone();
        ghost.groups[0].members.push("ghost".into());
        cases.push(("does not list it", ghost));
        for (why, export) in cases {
            let (_other, fresh) = temp_store();
            let err = fresh.import(&export).unwrap_err().to_string();
            assert!(err.contains(why), "{why}: {err}");
            assert!(fresh.users().unwrap().is_empty(), "nothing written");
        }
    }

    #[test]
    fn import_refuses_a_store_that_is_not_empty() {
        let (_dir, store) = filled_store();
        let export = store.export(9).unwrap();
        let refused = store.import(&export).unwrap_err().to_string();
        assert!(refused.contains("not empty"), "{refused}");
    }
}

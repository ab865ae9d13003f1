//! Web UI sessions, keyed by the SHA-256 of the random id in the cookie, so a
//! copy of the database does not hold usable session ids.

use redb::{ReadableTable, Table};
use serde::{Deserialize, Serialize};

use super::{Result, SESSIONS, SESSIONS_BY_USER, Store, decode, encode, index_key, index_values};

/// A one-shot message shown on the next page.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct Flash {
    pub kind: FlashKind,
    pub message: String,
}

/// How a flash message is styled.
#[derive(Clone, Copy, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum FlashKind {
    Success,
    Info,
    Error,
}

impl FlashKind {
    /// The CSS class of the message.
    pub fn class(self) -> &'static str {
        match self {
            FlashKind::Success => "success",
            FlashKind::Info => "info",
            FlashKind::Error => "error",
        }
    }
}

/// A signed-in browser.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct Session {
    pub user: String,
    /// Token every form of this session must echo.
    pub csrf: String,
    /// Unix seconds.
    pub created: i64,
    pub last_seen: i64,
    pub flash: Option<Flash>,
}

impl Store {
    pub fn create_session(&self, hash: &[u8; 32], session: &Session) -> Result<()> {
        let txn = self.db.begin_write()?;
        {
            txn.open_table(SESSIONS)?
                .insert(hash.as_slice(), encode(session).as_slice())?;
            let key = index_key(&session.user, &hex(hash));
            txn.open_table(SESSIONS_BY_USER)?
                .insert(key.as_str(), hash.as_slice())?;
        }
        txn.commit()?;
        Ok(())
    }

    pub fn session(&self, hash: &[u8; 32]) -> Result<Option<Session>> {
        let txn = self.db.begin_read()?;
        let sessions = txn.open_table(SESSIONS)?;
        sessions
            .get(hash.as_slice())?
            .map(|v| decode("sessions", v.value()))
            .transpose()
    }

    /// Saves a changed session (last seen, flash); a session deleted
    /// meanwhile stays deleted.
    pub fn save_session(&self, hash: &[u8; 32], session: &Session) -> Result<()> {
        let txn = self.db.begin_write()?;
        {
            let mut sessions = txn.open_table(SESSIONS)?;
            if sessions.get(hash.as_slice())?.is_some() {
                sessions.insert(hash.as_slice(), encode(session).as_slice())?;
            }
        }
        txn.commit()?;
        Ok(())
    }

    pub fn delete_session(&self, hash: &[u8; 32]) -> Result<()> {
        let txn = self.db.begin_write()?;
        {
            let mut sessions = txn.open_table(SESSIONS)?;
            let removed = sessions
                .remove(hash.as_slice())?
                .map(|v| v.value().to_vec());
            if let Some(removed) = removed {
                let session: Session = decode("sessions", &removed)?;
                let key = index_key(&session.user, &hex(hash));
                txn.open_table(SESSIONS_BY_USER)?.remove(key.as_str())?;
            }
        }
        txn.commit()?;
        Ok(())
    }

    /// Ends every session of `user` but `keep`; returns how many ended.
    pub fn delete_sessions_of(&self, user: &str, keep: Option<&[u8; 32]>) -> Result<usize> {
        let txn = self.db.begin_write()?;
        let ended = {
            let mut sessions = txn.open_table(SESSIONS)?;
            let mut by_user = txn.open_table(SESSIONS_BY_USER)?;
            remove_of(&mut sessions, &mut by_user, user, keep)?
        };
        txn.commit()?;
        Ok(ended)
    }

    /// Removes sessions idle since before `idle_before` or created before
    /// `created_before`; returns how many.
    pub fn purge_sessions(&self, idle_before: i64, created_before: i64) -> Result<usize> {
        let txn = self.db.begin_write()?;
        let mut purged = 0;
        {
            let mut sessions = txn.open_table(SESSIONS)?;
            let mut doomed = Vec::new();
            for entry in sessions.iter()? {
                let (hash, value) = entry?;
                let session: Session = decode("sessions", value.value())?;
                if session.last_seen < idle_before || session.created < created_before {
                    doomed.push((hash.value().to_vec(), session.user));
                }
            }
            let mut by_user = txn.open_table(SESSIONS_BY_USER)?;
            for (hash, user) in doomed {
                sessions.remove(hash.as_slice())?;
                by_user.remove(index_key(&user, &hex(&hash)).as_str())?;
                purged += 1;
            }
        }
        txn.commit()?;
        Ok(purged)
    }
}

/// Removes `user`'s sessions but `keep`, inside the caller's transaction.
pub(super) fn remove_of(
    sessions: &mut Table<&'static [u8], &'static [u8]>,
    by_user: &mut Table<&'static str, &'static [u8]>,
    user: &str,
    keep: Option<&[u8; 32]>,
) -> Result<usize> {
    let mut ended = 0;
    for hash in index_values(by_user, user)? {
        if keep.is_some_and(|k| k.as_slice() == hash.as_slice()) {
            continue;
        }
        sessions.remove(hash.as_slice())?;
        by_user.remove(index_key(user, &hex(&hash)).as_str())?;
        ended += 1;
    }
    Ok(ended)
}

fn hex(bytes: &[u8]) -> String {
    data_encoding::HEXLOWER.encode(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::temp_store;
    use crate::store::users::tests::user;

    fn session(user: &str, t: i64) -> Session {
        Session {
            user: user.into(),
            csrf: "c".into(),
            created: t,
            last_seen: t,
            flash: None,
        }
    }

    #[test]
    fn lifecycle() {
        let (_dir, store) = temp_store();
        store.create_user(&user("alice")).unwrap();
        store
            .create_session(&[1; 32], &session("alice", 10))
            .unwrap();
        store
            .create_session(&[2; 32], &session("alice", 20))
            .unwrap();
        store.create_session(&[3; 32], &session("bob", 30)).unwrap();

        let mut s = store.session(&[1; 32]).unwrap().unwrap();
        s.last_seen = 50;
        store.save_session(&[1; 32], &s).unwrap();
        assert_eq!(store.session(&[1; 32]).unwrap().unwrap().last_seen, 50);

        assert_eq!(
            store.delete_sessions_of("alice", Some(&[1; 32])).unwrap(),
            1
        );
        assert!(store.session(&[2; 32]).unwrap().is_none());
        assert!(store.session(&[1; 32]).unwrap().is_some());

        assert_eq!(
            store.purge_sessions(40, 0).unwrap(),
            1,
            "bob's idle session"
        );
        store.delete_session(&[1; 32]).unwrap();
        assert!(store.session(&[1; 32]).unwrap().is_none());
        store.save_session(&[1; 32], &s).unwrap();
        assert!(
            store.session(&[1; 32]).unwrap().is_none(),
            "deleted stays deleted"
        );
    }

    #[test]
    fn deleting_a_user_ends_their_sessions() {
        let (_dir, store) = temp_store();
        store.create_user(&user("alice")).unwrap();
        store
            .create_session(&[1; 32], &session("alice", 10))
            .unwrap();
        store.delete_user("alice").unwrap();
        assert!(store.session(&[1; 32]).unwrap().is_none());
    }
}

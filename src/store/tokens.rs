//! Application tokens: stored by the digest of their secret, never the secret.

use redb::ReadableTable;
use serde::{Deserialize, Serialize};

use super::{
    META, REFRESH, REFRESH_BY_USER, Result, Store, StoreError, TOKEN_NAMES, TOKENS, USERS, User,
    decode, encode, index_key, index_values,
};
use crate::registry::policy::AccessLevel;

/// A stored application token. Holds no secret: the key is its digest.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct AppToken {
    /// Public identifier for logs and links; unrelated to the secret.
    pub id: String,
    pub user: String,
    pub name: String,
    pub access: AccessLevel,
    /// Unix seconds.
    pub created: i64,
    pub expires: Option<i64>,
    pub last_used: Option<i64>,
    pub last_used_addr: Option<String>,
    /// Repository patterns the token is limited to; `None` for all its
    /// owner may use.
    #[serde(default)]
    pub repositories: Option<Vec<String>>,
}

impl AppToken {
    /// Whether the token has passed its expiry at `now` (unix seconds).
    pub fn is_expired(&self, now: i64) -> bool {
        self.expires.is_some_and(|e| now >= e)
    }
}

/// What a caller asks for when creating a token.
#[derive(Clone, Debug)]
pub struct NewToken {
    pub user: String,
    pub name: String,
    pub access: AccessLevel,
    pub expires: Option<i64>,
    pub repositories: Option<Vec<String>>,
}

/// One use of a credential, remembered in memory and written in batches.
#[derive(Clone, Debug)]
pub struct TokenUse {
    pub digest: [u8; 32],
    pub at: i64,
    pub addr: String,
}

impl Store {
    /// Stores a new token for `new.user` unless the name is taken or the user
    /// already holds `limit` tokens. The check and the insert share one write
    /// transaction, and redb runs one writer at a time, so racing creations
    /// cannot exceed the limit.
    pub fn create_token(
        &self,
        digest: &[u8; 32],
        new: &NewToken,
        limit: u32,
        now: i64,
    ) -> Result<AppToken> {
        let id: [u8; 8] = rand::random();
        let token = AppToken {
            id: data_encoding::HEXLOWER.encode(&id),
            user: new.user.clone(),
            name: new.name.clone(),
            access: new.access,
            created: now,
            expires: new.expires,
            last_used: None,
            last_used_addr: None,
            repositories: new.repositories.clone(),
        };
        let txn = self.db.begin_write()?;
        {
            if txn.open_table(USERS)?.get(new.user.as_str())?.is_none() {
                return Err(StoreError::NotFound(format!("user {}", new.user)));
            }
            let mut names = txn.open_table(TOKEN_NAMES)?;
            let key = index_key(&new.user, &new.name);
            if names.get(key.as_str())?.is_some() {
                return Err(StoreError::Conflict(format!(
                    "a token named {:?} already exists",
                    new.name
                )));
            }
            if index_values(&names, &new.user)?.len() >= limit as usize {
                return Err(StoreError::LimitReached(limit));
            }
            names.insert(key.as_str(), digest.as_slice())?;
            txn.open_table(TOKENS)?
                .insert(digest.as_slice(), encode(&token).as_slice())?;
        }
        txn.commit()?;
        Ok(token)
    }

    /// The token with this digest and its owner, read in one snapshot. This is
    /// the hot path of every token request: a read, never a write.
    pub fn token_by_digest(&self, digest: &[u8; 32]) -> Result<Option<(AppToken, User)>> {
        let txn = self.db.begin_read()?;
        let Some(token) = txn.open_table(TOKENS)?.get(digest.as_slice())? else {
            return Ok(None);
        };
        let token: AppToken = decode("tokens", token.value())?;
        let user = txn.open_table(USERS)?.get(token.user.as_str())?;
        match user {
            Some(user) => Ok(Some((token, decode("users", user.value())?))),
            None => Ok(None),
        }
    }

    /// A user's tokens, ordered by name.
    pub fn tokens_of(&self, user: &str) -> Result<Vec<AppToken>> {
        let txn = self.db.begin_read()?;
        let names = txn.open_table(TOKEN_NAMES)?;
        let tokens = txn.open_table(TOKENS)?;
        let mut out = Vec::new();
        for digest in index_values(&names, user)? {
            if let Some(v) = tokens.get(digest.as_slice())? {
                out.push(decode("tokens", v.value())?);
            }
        }
        Ok(out)
    }

    /// Deletes a token by owner and name, with the refresh tokens obtained
    /// with it.
    pub fn revoke_token(&self, user: &str, name: &str) -> Result<AppToken> {
        let txn = self.db.begin_write()?;
        let token = {
            let mut names = txn.open_table(TOKEN_NAMES)?;
            let Some(digest) = names.remove(index_key(user, name).as_str())? else {
                return Err(StoreError::NotFound(format!(
                    "token {name:?} of user {user}"
                )));
            };
            let digest = digest.value().to_vec();
            let mut tokens = txn.open_table(TOKENS)?;
            let token: AppToken = match tokens.remove(digest.as_slice())? {
                Some(v) => decode("tokens", v.value())?,
                None => return Err(StoreError::NotFound(format!("token {name:?}"))),
            };
            let hex = data_encoding::HEXLOWER.encode(&digest);
            let mut refresh = txn.open_table(REFRESH)?;
            let mut by_user = txn.open_table(REFRESH_BY_USER)?;
            super::refresh::remove_where(&mut refresh, &mut by_user, user, |r| {
                r.app_token.as_deref() == Some(hex.as_str())
            })?;
            token
        };
        txn.commit()?;
        Ok(token)
    }

    /// Tokens whose expiry passed since the previous call (or, the first
    /// time, none), so each expiry is reported once, even across restarts.
    pub fn newly_expired(&self, now: i64) -> Result<Vec<AppToken>> {
        const WATERMARK: &str = "expiry_watermark";
        let txn = self.db.begin_write()?;
        let expired = {
            let mut meta = txn.open_table(META)?;
            let since = match meta.get(WATERMARK)? {
                Some(v) => i64::from_be_bytes(v.value().try_into().unwrap_or_default()),
                None => now,
            };
            meta.insert(WATERMARK, now.to_be_bytes().as_slice())?;
            let mut expired = Vec::new();
            for entry in txn.open_table(TOKENS)?.iter()? {
                let token: AppToken = decode("tokens", entry?.1.value())?;
                if token.expires.is_some_and(|e| e > since && e <= now) {
                    expired.push(token);
                }
            }
            expired
        };
        txn.commit()?;
        Ok(expired)
    }

    /// Writes a batch of remembered last-used times and addresses, for
    /// application and refresh tokens alike, in one transaction. Uses of
    /// tokens deleted meanwhile are skipped.
    pub fn record_uses(&self, uses: &[TokenUse]) -> Result<()> {
        if uses.is_empty() {
            return Ok(());
        }
        let txn = self.db.begin_write()?;
        {
            let mut tokens = txn.open_table(TOKENS)?;
            let mut refresh = txn.open_table(REFRESH)?;
            for u in uses {
                let stored = tokens.get(u.digest.as_slice())?.map(|v| v.value().to_vec());
                if let Some(bytes) = stored {
                    let mut token: AppToken = decode("tokens", &bytes)?;
                    if token.last_used.is_none_or(|t| t < u.at) {
                        token.last_used = Some(u.at);
                        token.last_used_addr = Some(u.addr.clone());
                        tokens.insert(u.digest.as_slice(), encode(&token).as_slice())?;
                    }
                    continue;
                }
                let stored = refresh
                    .get(u.digest.as_slice())?
                    .map(|v| v.value().to_vec());
                if let Some(bytes) = stored {
                    let mut token: super::RefreshToken = decode("refresh_tokens", &bytes)?;
                    if token.last_used < u.at {
                        token.last_used = u.at;
                        token.last_used_addr = Some(u.addr.clone());
                        refresh.insert(u.digest.as_slice(), encode(&token).as_slice())?;
                    }
                }
            }
        }
        txn.commit()?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::store::temp_store;
    use crate::store::users::tests::user;

    fn new(user: &str, name: &str) -> NewToken {
        NewToken {
            user: user.into(),
            name: name.into(),
            access: AccessLevel::Push,
            expires: None,
            repositories: None,
        }
    }

    #[test]
    fn create_list_revoke() {
        let (_dir, store) = temp_store();
        store.create_user(&user("alice")).unwrap();
        let t = store
            .create_token(&[1; 32], &new("alice", "ci"), 5, 10)
            .unwrap();
        assert_eq!(t.created, 10);
        let dup = store.create_token(&[2; 32], &new("alice", "ci"), 5, 10);
        assert!(matches!(dup, Err(StoreError::Conflict(_))));
        let missing = store.create_token(&[3; 32], &new("bob", "ci"), 5, 10);
        assert!(matches!(missing, Err(StoreError::NotFound(_))));

        let (found, owner) = store.token_by_digest(&[1; 32]).unwrap().unwrap();
        assert_eq!((found.name.as_str(), owner.name.as_str()), ("ci", "alice"));
        assert_eq!(store.tokens_of("alice").unwrap().len(), 1);

        store.revoke_token("alice", "ci").unwrap();
        assert!(store.token_by_digest(&[1; 32]).unwrap().is_none());
        assert!(matches!(
            store.revoke_token("alice", "ci"),
            Err(StoreError::NotFound(_))
        ));
    }

    #[test]
    fn limit_holds_under_concurrent_creation() {
        let (_dir, store) = temp_store();
        let store = Arc::new(store);
        store.create_user(&user("alice")).unwrap();
        let handles: Vec<_> = (0..20u8)
            .map(|i| {
                let store = Arc::clone(&store);
                std::thread::spawn(move || {
                    store
                        .create_token(&[i; 32], &new("alice", &format!("t{i}")), 5, 0)
                        .is_ok()
                })
            })
            .collect();
        let created = handles
            .into_iter()
            .filter(|_| true)
            .map(|h| h.join().unwrap());
        assert_eq!(created.filter(|ok| *ok).count(), 5);
        assert_eq!(store.tokens_of("alice").unwrap().len(), 5);
    }

    #[test]
    fn uses_are_recorded_in_batches_and_never_go_back() {
        let (_dir, store) = temp_store();
        store.create_user(&user("alice")).unwrap();
        store
            .create_token(&[1; 32], &new("alice", "ci"), 5, 0)
            .unwrap();
        let at = |t, addr: &str| TokenUse {
            digest: [1; 32],
            at: t,
            addr: addr.into(),
        };
        store
            .record_uses(&[at(20, "127.0.0.2"), at(10, "127.0.0.1"), at(5, "x")])
            .unwrap();
        store
            .record_uses(&[
                at(15, "y"),
                TokenUse {
                    digest: [9; 32],
                    at: 1,
                    addr: "z".into(),
                },
            ])
            .unwrap();
        let token = &store.tokens_of("alice").unwrap()[0];
        assert_eq!(token.last_used, Some(20));
        assert_eq!(token.last_used_addr.as_deref(), Some("127.0.0.2"));
    }
}

//! Refresh tokens: what `docker login` keeps instead of a password. Each is
//! bound to one user, one service, and to the application token it was
//! obtained with, if any.

use redb::{ReadableTable, Table};
use serde::{Deserialize, Serialize};

use super::{
    REFRESH, REFRESH_BY_USER, Result, Store, StoreError, TOKENS, USERS, User, decode, encode,
    index_key, index_values,
};
use crate::store::AppToken;

/// A stored refresh token. Holds no secret: the key is its digest.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct RefreshToken {
    /// Public identifier for logs and the UI.
    pub id: String,
    pub user: String,
    pub service: String,
    /// Hex digest of the application token it was obtained with; `None` when
    /// it was obtained with the password.
    pub app_token: Option<String>,
    /// The `client_id` the client gave, for people to recognise it by.
    pub client_id: String,
    /// Unix seconds.
    pub created: i64,
    pub last_used: i64,
    pub last_used_addr: Option<String>,
    /// Absolute end of life, whatever the use.
    pub expires: i64,
}

/// A refresh token with everything needed to decide whether it still works,
/// read in one snapshot.
pub struct RefreshLookup {
    pub refresh: RefreshToken,
    pub user: User,
    /// The application token it was obtained with, when there was one and it
    /// still exists. `None` with `refresh.app_token` set means it was revoked.
    pub app_token: Option<AppToken>,
}

impl Store {
    /// Stores a new refresh token under its digest.
    pub fn create_refresh(&self, digest: &[u8; 32], token: &RefreshToken) -> Result<()> {
        let txn = self.db.begin_write()?;
        {
            if txn.open_table(USERS)?.get(token.user.as_str())?.is_none() {
                return Err(StoreError::NotFound(format!("user {}", token.user)));
            }
            txn.open_table(REFRESH)?
                .insert(digest.as_slice(), encode(token).as_slice())?;
            let key = index_key(&token.user, &token.id);
            txn.open_table(REFRESH_BY_USER)?
                .insert(key.as_str(), digest.as_slice())?;
        }
        txn.commit()?;
        Ok(())
    }

    /// The refresh token with this digest, its owner and its application token.
    pub fn refresh_by_digest(&self, digest: &[u8; 32]) -> Result<Option<RefreshLookup>> {
        let txn = self.db.begin_read()?;
        let Some(refresh) = txn.open_table(REFRESH)?.get(digest.as_slice())? else {
            return Ok(None);
        };
        let refresh: RefreshToken = decode("refresh_tokens", refresh.value())?;
        let Some(user) = txn.open_table(USERS)?.get(refresh.user.as_str())? else {
            return Ok(None);
        };
        let user = decode("users", user.value())?;
        let app_token = match &refresh.app_token {
            None => None,
            Some(hex) => {
                let digest = data_encoding::HEXLOWER
                    .decode(hex.as_bytes())
                    .map_err(|e| super::corrupt("refresh_tokens", e.to_string()))?;
                let tokens = txn.open_table(TOKENS)?;
                let found = tokens.get(digest.as_slice())?;
                found.map(|v| decode("tokens", v.value())).transpose()?
            }
        };
        Ok(Some(RefreshLookup {
            refresh,
            user,
            app_token,
        }))
    }

    /// A user's refresh tokens, in id order.
    pub fn refresh_tokens_of(&self, user: &str) -> Result<Vec<RefreshToken>> {
        let txn = self.db.begin_read()?;
        let by_user = txn.open_table(REFRESH_BY_USER)?;
        let refresh = txn.open_table(REFRESH)?;
        let mut out = Vec::new();
        for digest in index_values(&by_user, user)? {
            if let Some(v) = refresh.get(digest.as_slice())? {
                out.push(decode("refresh_tokens", v.value())?);
            }
        }
        Ok(out)
    }

    /// Revokes one of a user's refresh tokens by id.
    pub fn revoke_refresh(&self, user: &str, id: &str) -> Result<()> {
        let txn = self.db.begin_write()?;
        {
            let mut by_user = txn.open_table(REFRESH_BY_USER)?;
            let Some(digest) = by_user.remove(index_key(user, id).as_str())? else {
                return Err(StoreError::NotFound(format!("refresh token {id}")));
            };
            let digest = digest.value().to_vec();
            txn.open_table(REFRESH)?.remove(digest.as_slice())?;
        }
        txn.commit()?;
        Ok(())
    }
}

/// Removes `user`'s refresh tokens for which `doomed` holds, inside the
/// caller's transaction.
pub(super) fn remove_where(
    refresh: &mut Table<&'static [u8], &'static [u8]>,
    by_user: &mut Table<&'static str, &'static [u8]>,
    user: &str,
    doomed: impl Fn(&RefreshToken) -> bool,
) -> Result<()> {
    for digest in index_values(by_user, user)? {
        let stored = refresh.get(digest.as_slice())?.map(|v| v.value().to_vec());
        let Some(bytes) = stored else { continue };
        let token: RefreshToken = decode("refresh_tokens", &bytes)?;
        if doomed(&token) {
            refresh.remove(digest.as_slice())?;
            by_user.remove(index_key(user, &token.id).as_str())?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::policy::AccessLevel;
    use crate::store::temp_store;
    use crate::store::tokens::NewToken;
    use crate::store::users::tests::user;

    fn refresh(id: &str, app_token: Option<&[u8; 32]>) -> RefreshToken {
        RefreshToken {
            id: id.into(),
            user: "alice".into(),
            service: "registry".into(),
            app_token: app_token.map(|d| data_encoding::HEXLOWER.encode(d)),
            client_id: "docker".into(),
            created: 0,
            last_used: 0,
            last_used_addr: None,
            expires: 100,
        }
    }

    #[test]
    fn bound_to_its_app_token_and_password() {
        let (_dir, store) = temp_store();
        store.create_user(&user("alice")).unwrap();
        let new = NewToken {
            user: "alice".into(),
            name: "ci".into(),
            access: AccessLevel::Pull,
            expires: None,
            repositories: None,
        };
        store.create_token(&[1; 32], &new, 5, 0).unwrap();
        store
            .create_refresh(&[10; 32], &refresh("a", Some(&[1; 32])))
            .unwrap();
        store
            .create_refresh(&[11; 32], &refresh("b", None))
            .unwrap();

        let found = store.refresh_by_digest(&[10; 32]).unwrap().unwrap();
        assert_eq!(found.app_token.unwrap().access, AccessLevel::Pull);
        assert_eq!(store.refresh_tokens_of("alice").unwrap().len(), 2);

        store.revoke_token("alice", "ci").unwrap();
        assert!(
            store.refresh_by_digest(&[10; 32]).unwrap().is_none(),
            "dies with its token"
        );
        assert!(store.refresh_by_digest(&[11; 32]).unwrap().is_some());

        store.set_password("alice", "new".into()).unwrap();
        assert!(
            store.refresh_by_digest(&[11; 32]).unwrap().is_none(),
            "password change ends all"
        );
        assert!(store.refresh_tokens_of("alice").unwrap().is_empty());
    }

    #[test]
    fn revoke_by_id() {
        let (_dir, store) = temp_store();
        store.create_user(&user("alice")).unwrap();
        store
            .create_refresh(&[10; 32], &refresh("a", None))
            .unwrap();
        store.revoke_refresh("alice", "a").unwrap();
        assert!(store.refresh_by_digest(&[10; 32]).unwrap().is_none());
        assert!(matches!(
            store.revoke_refresh("alice", "a"),
            Err(StoreError::NotFound(_))
        ));
    }
}

//! Who is asking: turns credentials (password, application token, refresh
//! token) into an [`Identity`], with throttling of failures.
//!
//! Every refusal reaches the client as the same "invalid credentials"; the
//! precise reason is returned here for the log.

pub mod password;
pub mod secret;
pub mod throttle;
pub mod usage;

use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::registry::policy::{AccessLevel, Principal};
use crate::store::{AppToken, RefreshToken, Store, StoreError, User};

use password::{MAX_PASSWORD_LEN, Password, PasswordVerifier};
use secret::{SecretKind, TokenDigest, TokenSecret};
use throttle::Throttle;
use usage::UsageLog;

/// The present moment, in both clocks the checks need.
#[derive(Clone, Copy, Debug)]
pub struct Now {
    /// Unix seconds, for stored expiries.
    pub unix: i64,
    /// Monotonic, for throttling and caches.
    pub instant: Instant,
}

impl Now {
    pub fn real() -> Now {
        Now {
            unix: time::OffsetDateTime::now_utc().unix_timestamp(),
            instant: Instant::now(),
        }
    }
}

/// How an identity proved itself.
#[derive(Clone, Debug)]
pub enum Via {
    Password,
    AppToken {
        token: AppToken,
        digest: TokenDigest,
    },
    Refresh {
        refresh: RefreshToken,
    },
}

/// An authenticated user and the most their credential allows.
#[derive(Clone, Debug)]
pub struct Identity {
    pub user: User,
    pub level: AccessLevel,
    /// Repository patterns the credential is limited to, if any.
    pub repositories: Option<Vec<String>>,
    pub via: Via,
}

impl Identity {
    /// The identity as the access policy sees it.
    pub fn principal(&self) -> Principal {
        Principal {
            name: self.user.name.clone(),
            admin: self.user.admin,
            groups: self.user.groups.clone(),
            level: self.level,
            repositories: self.repositories.clone(),
        }
    }
}

/// Why credentials were not accepted.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    /// Wrong, unknown, expired, revoked or disabled: one answer for all. The
    /// string is the precise reason, for the log only.
    #[error("invalid credentials ({0})")]
    Rejected(&'static str),
    /// A password where only application tokens are accepted.
    #[error("passwords are not accepted here; use an application token")]
    PasswordsRefused,
    /// Too many recent failures for this account from this address.
    #[error("too many failed attempts")]
    Throttled(Duration),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Lifetimes and switches the authenticator needs from the configuration.
#[derive(Clone, Copy, Debug)]
pub struct AuthSettings {
    pub tokens_only: bool,
    pub refresh_idle_ttl: i64,
    pub refresh_max_ttl: i64,
}

/// Checks credentials against the store.
pub struct Authenticator {
    store: Arc<Store>,
    pub passwords: PasswordVerifier,
    pub throttle: Throttle,
    pub usage: Arc<UsageLog>,
    settings: AuthSettings,
}

impl Authenticator {
    pub fn new(
        store: Arc<Store>,
        settings: AuthSettings,
        usage: Arc<UsageLog>,
    ) -> Result<Self, StoreError> {
        let permits = std::thread::available_parallelism().map_or(2, |n| n.get());
        Ok(Authenticator {
            passwords: PasswordVerifier::new(store.server_secret()?, permits),
            store,
            throttle: Throttle::default(),
            usage,
            settings,
        })
    }

    /// HTTP Basic credentials: a password, or an application token whose
    /// owner is `username`.
    pub async fn basic(
        &self,
        username: &str,
        secret: &str,
        addr: IpAddr,
        now: Now,
    ) -> Result<Identity, AuthError> {
        let account = username;
        let result = if TokenSecret::looks_like(SecretKind::AppToken, secret) {
            self.app_token(username, secret, addr, now)
        } else {
            if self.settings.tokens_only {
                return Err(AuthError::PasswordsRefused);
            }
            if let Some(wait) = self.throttle.blocked_for(account, addr, now.instant) {
                return Err(AuthError::Throttled(wait));
            }
            self.password(username, secret, now).await
        };
        match &result {
            Ok(identity) if matches!(identity.via, Via::Password) => {
                self.throttle.succeed(account, addr)
            }
            Ok(_) => {}
            Err(AuthError::Rejected(_)) => {
                self.throttle.fail(account, addr, now.instant);
                if let Some(wait) = self.throttle.blocked_for(account, addr, now.instant) {
                    return Err(AuthError::Throttled(wait));
                }
            }
            Err(_) => {}
        }
        result
    }

    /// Checks a password for the web UI or the token endpoint. Unknown users
    /// cost the same as known ones.
    pub async fn password(
        &self,
        username: &str,
        secret: &str,
        now: Now,
    ) -> Result<Identity, AuthError> {
        if secret.len() > MAX_PASSWORD_LEN {
            return Err(AuthError::Rejected("password too long"));
        }
        let user = self.store.user(username)?;
        let password = Password::new(secret);
        let (epoch, phc) = match &user {
            Some(u) => (u.credential_epoch, u.password_hash.as_deref()),
            None => (0, None),
        };
        let ok = self
            .passwords
            .verify(username, epoch, phc, &password, now.instant)
            .await;
        match user {
            Some(user) if ok && !user.disabled => Ok(Identity {
                user,
                level: AccessLevel::Delete,
                repositories: None,
                via: Via::Password,
            }),
            Some(user) if ok && user.disabled => Err(AuthError::Rejected("account disabled")),
            Some(_) => Err(AuthError::Rejected("wrong password")),
            None => Err(AuthError::Rejected("unknown user")),
        }
    }

    /// An application token presented with `username`. Reads the store once,
    /// writes nothing: the use is remembered in memory.
    fn app_token(
        &self,
        username: &str,
        secret: &str,
        addr: IpAddr,
        now: Now,
    ) -> Result<Identity, AuthError> {
        let secret = TokenSecret::parse(SecretKind::AppToken, secret)
            .ok_or(AuthError::Rejected("malformed application token"))?;
        let digest = secret.digest();
        let (token, user) = self
            .store
            .token_by_digest(&digest)?
            .ok_or(AuthError::Rejected("unknown application token"))?;
        if token.user != username {
            return Err(AuthError::Rejected(
                "application token used with another username",
            ));
        }
        if user.disabled {
            return Err(AuthError::Rejected("account disabled"));
        }
        if token.is_expired(now.unix) {
            return Err(AuthError::Rejected("application token expired"));
        }
        self.usage.record(digest, now.unix, addr.to_string());
        Ok(Identity {
            user,
            level: token.access,
            repositories: token.repositories.clone(),
            via: Via::AppToken { token, digest },
        })
    }

    /// A refresh token for `service`. It carries the access level, expiry and
    /// revocation of the application token it was obtained with.
    pub fn refresh(
        &self,
        secret: &str,
        service: &str,
        addr: IpAddr,
        now: Now,
    ) -> Result<Identity, AuthError> {
        let secret = TokenSecret::parse(SecretKind::Refresh, secret)
            .ok_or(AuthError::Rejected("malformed refresh token"))?;
        let digest = secret.digest();
        let found = self
            .store
            .refresh_by_digest(&digest)?
            .ok_or(AuthError::Rejected("unknown refresh token"))?;
        let refresh = found.refresh;

        if refresh.service != service {
            return Err(AuthError::Rejected("refresh token of another service"));
        }
        if found.user.disabled {
            return Err(AuthError::Rejected("account disabled"));
        }
        if now.unix >= refresh.expires {
            return Err(AuthError::Rejected(
                "refresh token past its absolute lifetime",
            ));
        }
        let last_used = self
            .usage
            .last_use(&digest)
            .unwrap_or(0)
            .max(refresh.last_used);
        if now.unix - last_used > self.settings.refresh_idle_ttl {
            return Err(AuthError::Rejected("refresh token idle too long"));
        }

        let (level, repositories) = match (&refresh.app_token, found.app_token) {
            (None, _) if self.settings.tokens_only => return Err(AuthError::PasswordsRefused),
            (None, _) => (AccessLevel::Delete, None),
            (Some(_), None) => return Err(AuthError::Rejected("application token revoked")),
            (Some(_), Some(t)) if t.is_expired(now.unix) => {
                return Err(AuthError::Rejected("application token expired"));
            }
            (Some(hex), Some(t)) => {
                if let Ok(app_digest) = data_encoding::HEXLOWER.decode(hex.as_bytes())
                    && let Ok(app_digest) = TokenDigest::try_from(app_digest.as_slice())
                {
                    self.usage.record(app_digest, now.unix, addr.to_string());
                }
                (t.access, t.repositories)
            }
        };
        self.usage.record(digest, now.unix, addr.to_string());
        Ok(Identity {
            user: found.user,
            level,
            repositories,
            via: Via::Refresh { refresh },
        })
    }

    /// Issues a refresh token for an identity that proved itself with a
    /// password or an application token. This is a store write, done only on
    /// `docker login`, never on a pull.
    pub fn issue_refresh(
        &self,
        identity: &Identity,
        service: &str,
        client_id: &str,
        now: Now,
    ) -> Result<TokenSecret, StoreError> {
        let app_token = match &identity.via {
            Via::AppToken { digest, .. } => Some(data_encoding::HEXLOWER.encode(digest)),
            _ => None,
        };
        let id: [u8; 8] = rand::random();
        let secret = TokenSecret::generate(SecretKind::Refresh);
        let record = RefreshToken {
            id: data_encoding::HEXLOWER.encode(&id),
            user: identity.user.name.clone(),
            service: service.to_owned(),
            app_token,
            client_id: sanitize_client_id(client_id),
            created: now.unix,
            last_used: now.unix,
            last_used_addr: None,
            expires: now.unix + self.settings.refresh_max_ttl,
        };
        self.store.create_refresh(&secret.digest(), &record)?;
        Ok(secret)
    }
}

/// Keeps a client id short and printable: it is shown in the UI and logs.
fn sanitize_client_id(raw: &str) -> String {
    let cleaned: String = raw
        .chars()
        .filter(|c| c.is_ascii_graphic() || *c == ' ')
        .take(64)
        .collect();
    if cleaned.is_empty() {
        "unknown".to_owned()
    } else {
        cleaned
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_ids_are_cleaned() {
        assert_eq!(sanitize_client_id("docker"), "docker");
        assert_eq!(sanitize_client_id("a\nb\u{7}c"), "abc");
        assert_eq!(sanitize_client_id(""), "unknown");
        assert_eq!(sanitize_client_id(&"x".repeat(100)).len(), 64);
    }
}

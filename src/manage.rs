//! Account and token management shared by the CLI, the control socket and
//! the web UI: validation, hashing, then one store call.

use std::sync::Arc;

use crate::auth::password::{self, Password};
use crate::auth::secret::{SecretKind, TokenSecret};
use crate::registry::policy::AccessLevel;
use crate::registry::policy::{Policy, Principal};
use crate::registry::rules::{check_pattern, glob};
use crate::registry::scope::is_path_component;
use crate::registry::scope::parse_scopes;
use crate::store::{AppToken, Group, NewToken, Store, StoreError, User};

/// Longest user name; names are registry namespaces.
pub const MAX_USER_NAME: usize = 64;
/// Longest token name.
pub const MAX_TOKEN_NAME: usize = 64;
/// Longest token lifetime a person can choose.
pub const MAX_EXPIRY_DAYS: u32 = 3650;

/// Why a management operation failed.
#[derive(Debug, thiserror::Error)]
pub enum ManageError {
    /// The input breaks a rule; the message says which, for a person.
    #[error("{0}")]
    Invalid(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

pub type Result<T, E = ManageError> = std::result::Result<T, E>;

/// Management operations over the store.
#[derive(Clone)]
pub struct Manager {
    store: Arc<Store>,
    token_limit: u32,
    policy: Arc<Policy>,
}

impl Manager {
    pub fn new(store: Arc<Store>, token_limit: u32, policy: Arc<Policy>) -> Manager {
        Manager {
            store,
            token_limit,
            policy,
        }
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    pub fn token_limit(&self) -> u32 {
        self.token_limit
    }

    /// Creates a user with a password. Hashes with argon2: call from a
    /// blocking context.
    pub fn add_user(&self, name: &str, admin: bool, password: &Password, now: i64) -> Result<User> {
        self.check_new_name(name)?;
        password
            .validate_new()
            .map_err(|e| ManageError::Invalid(e.to_owned()))?;
        let user = User {
            name: name.to_owned(),
            password_hash: Some(password::hash(password)),
            admin,
            disabled: false,
            created: now,
            credential_epoch: 0,
            groups: Vec::new(),
            service: false,
        };
        self.store.create_user(&user)?;
        Ok(user)
    }

    /// Creates a service account: no password, application tokens only, so
    /// it can never sign in to the web UI.
    pub fn add_service_account(&self, name: &str, now: i64) -> Result<User> {
        self.check_new_name(name)?;
        let user = User {
            name: name.to_owned(),
            password_hash: None,
            admin: false,
            disabled: false,
            created: now,
            credential_epoch: 0,
            groups: Vec::new(),
            service: true,
        };
        self.store.create_user(&user)?;
        Ok(user)
    }

    /// Sets a new password; refresh tokens obtained with the old one die.
    pub fn set_password(&self, name: &str, password: &Password) -> Result<PasswordChange> {
        self.change_password(name, password, None)
    }

    /// Sets a new password, ending every web session of the user but `keep`
    /// (the one changing it) and every docker login.
    pub fn change_password(
        &self,
        name: &str,
        password: &Password,
        keep: Option<&[u8; 32]>,
    ) -> Result<PasswordChange> {
        password
            .validate_new()
            .map_err(|e| ManageError::Invalid(e.to_owned()))?;
        let user = self
            .store
            .user(name)?
            .ok_or_else(|| StoreError::NotFound(format!("user {name}")))?;
        if user.service {
            return Err(ManageError::Invalid(
                "a service account has no password: it uses application tokens only".into(),
            ));
        }
        let logins_revoked = self.store.refresh_tokens_of(name)?.len();
        self.store.set_password(name, password::hash(password))?;
        let sessions_ended = self.store.delete_sessions_of(name, keep)?;
        Ok(PasswordChange {
            sessions_ended,
            logins_revoked,
        })
    }

    /// Disables or re-enables an account. Disabling ends its web sessions at
    /// once; its tokens are refused on their next use, and work again if the
    /// account is re-enabled.
    pub fn set_disabled(&self, name: &str, disabled: bool) -> Result<User> {
        let user = self.store.update_user(name, |u| u.disabled = disabled)?;
        if disabled {
            self.store.delete_sessions_of(name, None)?;
        }
        Ok(user)
    }

    /// Grants or removes administrator rights.
    pub fn set_admin(&self, name: &str, admin: bool) -> Result<User> {
        let user = self
            .store
            .user(name)?
            .ok_or_else(|| StoreError::NotFound(format!("user {name}")))?;
        if user.service && admin {
            return Err(ManageError::Invalid(
                "a service account cannot be an administrator".into(),
            ));
        }
        Ok(self.store.update_user(name, |u| u.admin = admin)?)
    }

    /// Every application token of every user, by owner then name.
    pub fn all_tokens(&self) -> Result<Vec<AppToken>> {
        let mut all = Vec::new();
        for user in self.store.users()? {
            all.extend(self.store.tokens_of(&user.name)?);
        }
        Ok(all)
    }

    pub fn delete_user(&self, name: &str) -> Result<()> {
        Ok(self.store.delete_user(name)?)
    }

    pub fn users(&self) -> Result<Vec<User>> {
        Ok(self.store.users()?)
    }

    /// Creates an application token and returns it with its secret, which
    /// exists nowhere else: show it once.
    pub fn create_token(
        &self,
        user: &str,
        name: &str,
        access: AccessLevel,
        expiry: Expiry,
        repositories: Option<Vec<String>>,
        now: i64,
    ) -> Result<(AppToken, TokenSecret)> {
        let name = validate_token_name(name)?;
        let expires = expiry.resolve(now)?;
        let repositories = match repositories {
            Some(list) if list.is_empty() => None,
            Some(list) => {
                for pattern in &list {
                    if pattern.contains("${") {
                        return Err(ManageError::Invalid(format!(
                            "{pattern:?}: a token's repository patterns cannot use placeholders"
                        )));
                    }
                    check_pattern(pattern).map_err(ManageError::Invalid)?;
                }
                Some(list)
            }
            None => None,
        };
        let secret = TokenSecret::generate(SecretKind::AppToken);
        let new = NewToken {
            user: user.to_owned(),
            name: name.to_owned(),
            access,
            expires,
            repositories,
        };
        let token = self
            .store
            .create_token(&secret.digest(), &new, self.token_limit, now)?;
        Ok((token, secret))
    }

    /// Creates a group (the usual use: a shared namespace of that name, which
    /// is why a group may share its name with a namespace the rules use).
    pub fn add_group(&self, name: &str, now: i64) -> Result<Group> {
        validate_user_name(name)?;
        // A rule on `${group}-rel/*` would hand this group a user's namespace.
        let users = self.store.users()?;
        for pattern in self.policy.rules().group_namespaces() {
            let namespace = pattern.replace("${group}", name);
            if let Some(user) = users.iter().find(|u| glob(&namespace, &u.name)) {
                return Err(ManageError::Invalid(format!(
                    "a rule would give group {name:?} the namespace of user {:?}",
                    user.name
                )));
            }
        }
        Ok(self.store.create_group(name, now)?)
    }

    pub fn delete_group(&self, name: &str) -> Result<()> {
        Ok(self.store.delete_group(name)?)
    }

    pub fn groups(&self) -> Result<Vec<Group>> {
        Ok(self.store.groups()?)
    }

    /// Puts `user` in `group`, or takes them out.
    pub fn set_membership(&self, group: &str, user: &str, member: bool) -> Result<()> {
        Ok(self.store.set_membership(group, user, member)?)
    }

    /// What `user` would be granted for each scope, and why, one line each.
    pub fn explain(&self, user: &str, scopes: &[String]) -> Result<Vec<String>> {
        let user = self
            .store
            .user(user)?
            .ok_or_else(|| StoreError::NotFound(format!("user {user}")))?;
        let principal = Principal {
            name: user.name.clone(),
            admin: user.admin,
            groups: user.groups.clone(),
            level: AccessLevel::Delete,
            repositories: None,
        };
        let parsed = parse_scopes(scopes.iter().map(String::as_str))
            .map_err(|e| ManageError::Invalid(e.to_string()))?;
        let mut lines = Vec::new();
        if user.disabled {
            lines.push(format!(
                "{} is disabled: every request is refused",
                user.name
            ));
        }
        for scope in &parsed {
            let grant = self.policy.grant(Some(&principal), scope);
            let actions: Vec<&str> = grant.granted.actions.iter().map(|a| a.as_str()).collect();
            let granted = if actions.is_empty() {
                "nothing".to_owned()
            } else {
                actions.join(",")
            };
            lines.push(format!(
                "{scope} -> {granted} ({})",
                grant.reasons.join("; ")
            ));
        }
        Ok(lines)
    }

    /// A new user's name must be valid and not a namespace the rules name:
    /// the user would own it. (The store refuses a name used by a group.)
    fn check_new_name(&self, name: &str) -> Result<()> {
        validate_user_name(name)?;
        let taken = ManageError::Invalid(format!(
            "{name:?} is a namespace the authorization rules use; choose another name"
        ));
        if self.policy.rules().reserved_namespaces().contains(name) {
            return Err(taken);
        }
        let groups = self.store.groups()?;
        for pattern in self.policy.rules().group_namespaces() {
            if groups
                .iter()
                .any(|g| glob(&pattern.replace("${group}", &g.name), name))
            {
                return Err(taken);
            }
        }
        Ok(())
    }

    pub fn tokens(&self, user: &str) -> Result<Vec<AppToken>> {
        if self.store.user(user)?.is_none() {
            return Err(StoreError::NotFound(format!("user {user}")).into());
        }
        Ok(self.store.tokens_of(user)?)
    }

    pub fn revoke_token(&self, user: &str, name: &str) -> Result<AppToken> {
        Ok(self.store.revoke_token(user, name)?)
    }
}

/// What a password change ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PasswordChange {
    pub sessions_ended: usize,
    pub logins_revoked: usize,
}

/// When a new token stops working.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Expiry {
    Never,
    InDays(u32),
    /// At the end of this day, UTC.
    EndOf(time::Date),
}

impl Expiry {
    /// The expiry as unix seconds, checked to lie between now and ten years
    /// from now.
    pub fn resolve(self, now: i64) -> Result<Option<i64>> {
        let at = match self {
            Expiry::Never => return Ok(None),
            Expiry::InDays(days) => now.saturating_add(i64::from(days) * 86_400),
            Expiry::EndOf(date) => date
                .next_day()
                .map_or(i64::MAX, |d| d.midnight().assume_utc().unix_timestamp()),
        };
        let latest = now + i64::from(MAX_EXPIRY_DAYS) * 86_400;
        if at <= now || at > latest {
            return Err(ManageError::Invalid(format!(
                "the expiry must be in the future and at most {MAX_EXPIRY_DAYS} days away"
            )));
        }
        Ok(Some(at))
    }
}

/// A user name is a registry path component of at most 64 characters.
pub fn validate_user_name(name: &str) -> Result<()> {
    if name.len() > MAX_USER_NAME || !is_path_component(name) {
        return Err(ManageError::Invalid(format!(
            "invalid user name {name:?}: use 1 to {MAX_USER_NAME} lowercase letters and digits, \
             separated by single '.', '_' or '-'"
        )));
    }
    Ok(())
}

/// A token name is 1 to 64 printable characters (letters, digits, space,
/// `.`, `_`, `-`), trimmed.
pub fn validate_token_name(name: &str) -> Result<&str> {
    let name = name.trim();
    let ok = !name.is_empty()
        && name.chars().count() <= MAX_TOKEN_NAME
        && name
            .chars()
            .all(|c| c.is_alphanumeric() || matches!(c, ' ' | '.' | '_' | '-'));
    if ok {
        Ok(name)
    } else {
        Err(ManageError::Invalid(format!(
            "invalid token name {name:?}: use 1 to {MAX_TOKEN_NAME} letters, digits, spaces, \
             '.', '_' or '-'"
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_names_follow_the_path_component_grammar() {
        for ok in ["alice", "a", "alice.smith", "ci-bot", "team_1", "a__b"] {
            assert!(validate_user_name(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "Alice",
            "alice/x",
            "-a",
            "a-",
            "a..b",
            "ä",
            &"a".repeat(65),
        ] {
            assert!(validate_user_name(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn expiry_dates_end_at_midnight_utc() {
        let now = 1_800_000_000; // 2027-01-15
        let date = time::macros::date!(2027 - 02 - 01);
        let end = Expiry::EndOf(date).resolve(now).unwrap().unwrap();
        assert_eq!(
            end,
            time::macros::datetime!(2027-02-02 0:00 UTC).unix_timestamp()
        );
        let past = Expiry::EndOf(time::macros::date!(2020 - 01 - 01));
        assert!(past.resolve(now).is_err());
        assert!(Expiry::InDays(MAX_EXPIRY_DAYS + 1).resolve(now).is_err());
        assert_eq!(Expiry::Never.resolve(now).unwrap(), None);
    }

    #[test]
    fn names_cannot_take_a_namespace_a_rule_gives_a_group() {
        use crate::registry::rules::{RuleConfig, Rules};
        let rule = RuleConfig {
            who: vec!["authenticated".into()],
            repository: Some("${group}-rel/*".into()),
            allow: vec!["push".into()],
            ..RuleConfig::default()
        };
        let policy = Arc::new(Policy::new(Rules::new(&[rule], true).unwrap()));
        let (_dir, store) = crate::store::temp_store();
        let manager = Manager::new(Arc::new(store), 5, policy);
        manager.add_group("web", 0).unwrap();
        let pw = Password::new("long enough");
        assert!(
            manager.add_user("web-rel", false, &pw, 0).is_err(),
            "user after group"
        );
        manager.add_user("api-rel", false, &pw, 0).unwrap();
        assert!(manager.add_group("api", 0).is_err(), "group after user");
        let limited = Some(vec!["${user}/lib/*".to_owned()]);
        let token =
            manager.create_token("api-rel", "t", AccessLevel::Pull, Expiry::Never, limited, 0);
        assert!(token.is_err(), "no placeholders in token limits");
    }

    #[test]
    fn token_names() {
        assert_eq!(
            validate_token_name("  laptop docker ").unwrap(),
            "laptop docker"
        );
        for bad in ["", "   ", "a\0b", "a\nb", "<script>", &"x".repeat(65)] {
            assert!(validate_token_name(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn expiry_and_limit() {
        let (_dir, store) = crate::store::temp_store();
        let manager = Manager::new(Arc::new(store), 2, Arc::new(Policy::default()));
        manager
            .add_user("alice", false, &Password::new("long enough"), 0)
            .unwrap();
        let (token, secret) = manager
            .create_token(
                "alice",
                "a",
                AccessLevel::Pull,
                Expiry::InDays(30),
                None,
                100,
            )
            .unwrap();
        assert_eq!(token.expires, Some(100 + 30 * 86_400));
        assert!(secret.expose().starts_with("pcl_"));
        assert!(
            manager
                .create_token("alice", "b", AccessLevel::Pull, Expiry::InDays(0), None, 0)
                .is_err()
        );
        manager
            .create_token("alice", "b", AccessLevel::Pull, Expiry::Never, None, 0)
            .unwrap();
        let third = manager.create_token("alice", "c", AccessLevel::Pull, Expiry::Never, None, 0);
        assert!(matches!(
            third,
            Err(ManageError::Store(StoreError::LimitReached(2)))
        ));
    }
}

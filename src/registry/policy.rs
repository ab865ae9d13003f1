//! Access policy: which of the requested actions a principal is granted.
//!
//! The default policy: a user owns the namespace named after them, admins may
//! do everything, anonymous clients get nothing. An application token narrows
//! what its owner may do to the token's access level, never widens it.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use super::scope::{Action, ResourceType, Scope};

/// How much an application token (or a refresh token obtained with one) may
/// do. Each level includes the ones before it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AccessLevel {
    Pull,
    Push,
    Delete,
}

impl AccessLevel {
    /// Whether an action on a repository fits within this level.
    pub fn permits(self, action: Action) -> bool {
        match action {
            Action::Pull => true,
            Action::Push => self >= AccessLevel::Push,
            Action::Delete | Action::All => self >= AccessLevel::Delete,
        }
    }

    /// The level's name, as the CLI and the UI spell it.
    pub fn as_str(self) -> &'static str {
        match self {
            AccessLevel::Pull => "pull",
            AccessLevel::Push => "push",
            AccessLevel::Delete => "delete",
        }
    }

    /// Parses `pull`, `push` or `delete`.
    pub fn parse(s: &str) -> Option<AccessLevel> {
        match s {
            "pull" => Some(AccessLevel::Pull),
            "push" => Some(AccessLevel::Push),
            "delete" => Some(AccessLevel::Delete),
            _ => None,
        }
    }
}

/// An authenticated identity as the policy sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Principal {
    pub name: String,
    pub admin: bool,
    /// The cap from the credential used: full for a password.
    pub level: AccessLevel,
}

/// Returns the part of `requested` that `principal` may have; the result may
/// hold no actions. `None` is an anonymous client.
pub fn grant(principal: Option<&Principal>, requested: &Scope) -> Scope {
    let allowed = match principal {
        None => BTreeSet::new(),
        Some(p) => allowed_actions(p, requested),
    };
    Scope {
        resource_type: requested.resource_type.clone(),
        name: requested.name.clone(),
        actions: requested.actions.intersection(&allowed).copied().collect(),
    }
}

fn allowed_actions(principal: &Principal, scope: &Scope) -> BTreeSet<Action> {
    match scope.resource_type {
        ResourceType::Registry if principal.admin => BTreeSet::from([Action::All]),
        ResourceType::Registry => BTreeSet::new(),
        ResourceType::Repository { .. } => {
            let may_all = principal.admin || owns(&principal.name, &scope.name);
            let candidates = [Action::Pull, Action::Push, Action::Delete, Action::All];
            candidates
                .into_iter()
                .filter(|&action| may_all && principal.level.permits(action))
                .collect()
        }
    }
}

/// Whether `repository` lies in the namespace named `user`: the name itself or
/// anything below `user/`.
pub fn owns(user: &str, repository: &str) -> bool {
    match repository.strip_prefix(user) {
        Some(rest) => !user.is_empty() && (rest.is_empty() || rest.starts_with('/')),
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn principal(name: &str, admin: bool, level: AccessLevel) -> Principal {
        Principal {
            name: name.to_owned(),
            admin,
            level,
        }
    }

    fn granted(p: Option<&Principal>, scope: &str) -> String {
        grant(p, &Scope::parse(scope).unwrap().unwrap()).to_string()
    }

    #[test]
    fn policy_table() {
        use AccessLevel::*;
        let alice = principal("alice", false, Delete);
        let alice_pull = principal("alice", false, Pull);
        let alice_push = principal("alice", false, Push);
        let root = principal("root", true, Delete);
        let root_pull = principal("root", true, Pull);
        let all = "pull,push,delete";
        let cases: &[(Option<&Principal>, String, &str)] = &[
            (
                Some(&alice),
                format!("repository:alice/app:{all}"),
                "pull,push,delete",
            ),
            (
                Some(&alice),
                format!("repository:alice:{all}"),
                "pull,push,delete",
            ),
            (
                Some(&alice),
                format!("repository:alice/a/b/c:{all}"),
                "pull,push,delete",
            ),
            (Some(&alice), format!("repository:alicex/app:{all}"), ""),
            (Some(&alice), format!("repository:bob/app:{all}"), ""),
            (Some(&alice), format!("repository:library/alice:{all}"), ""),
            (
                Some(&alice),
                format!("repository:localhost:5000/alice/app:{all}"),
                "",
            ),
            (
                Some(&alice),
                format!("repository(plugin):alice/p:{all}"),
                "pull,push,delete",
            ),
            (Some(&alice), "registry:catalog:*".into(), ""),
            (
                Some(&alice_pull),
                format!("repository:alice/app:{all}"),
                "pull",
            ),
            (
                Some(&alice_push),
                format!("repository:alice/app:{all}"),
                "pull,push",
            ),
            (Some(&alice_push), "repository:alice/app:delete".into(), ""),
            (
                Some(&root),
                format!("repository:bob/app:{all}"),
                "pull,push,delete",
            ),
            (Some(&root), "registry:catalog:*".into(), "*"),
            (
                Some(&root_pull),
                format!("repository:bob/app:{all}"),
                "pull",
            ),
            (Some(&root_pull), "registry:catalog:*".into(), "*"),
            (None, format!("repository:alice/app:{all}"), ""),
            (None, "registry:catalog:*".into(), ""),
        ];
        for (p, scope, want) in cases {
            let got = granted(*p, scope);
            let want_actions = got.rsplit_once(':').unwrap().1;
            assert_eq!(want_actions, *want, "{p:?} asking {scope} got {got}");
        }
    }

    #[test]
    fn namespace_ownership() {
        assert!(owns("alice", "alice"));
        assert!(owns("alice", "alice/x"));
        assert!(!owns("alice", "alice2/x"));
        assert!(!owns("alice", "alic"));
        assert!(!owns("", "x"));
    }

    #[test]
    fn levels_nest() {
        assert!(AccessLevel::Pull < AccessLevel::Push && AccessLevel::Push < AccessLevel::Delete);
        for level in [AccessLevel::Pull, AccessLevel::Push, AccessLevel::Delete] {
            assert_eq!(AccessLevel::parse(level.as_str()), Some(level));
        }
    }
}

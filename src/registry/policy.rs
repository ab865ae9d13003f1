//! Access policy: which of the requested actions a principal is granted.
//!
//! Admins may do everything; everyone else gets what the authorization rules
//! grant (by default: a user owns the namespace named after them), capped by
//! the credential: an application token never grants more than its access
//! level or its repository list, nor more than its owner may do.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use super::rules::{Asker, Rules};
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
    pub groups: Vec<String>,
    /// The cap from the credential used: full for a password.
    pub level: AccessLevel,
    /// Repository patterns an application token is limited to, if any.
    pub repositories: Option<Vec<String>>,
}

/// The outcome for one requested scope, with the reasons, for logs and
/// `policy explain`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Grant {
    pub granted: Scope,
    /// Why, in sentences: which rules allowed or denied, what capped it.
    pub reasons: Vec<String>,
    /// Actions a rule denied explicitly (for the audit log).
    pub denied_by_rule: BTreeSet<Action>,
}

/// The access policy: admins may do everything; everyone else gets what the
/// rules grant, capped by their credential.
#[derive(Clone, Debug, Default)]
pub struct Policy {
    rules: Rules,
}

impl Policy {
    pub fn new(rules: Rules) -> Policy {
        Policy { rules }
    }

    pub fn rules(&self) -> &Rules {
        &self.rules
    }

    /// The part of `requested` that `principal` may have (`None`: anonymous).
    pub fn grant(&self, principal: Option<&Principal>, requested: &Scope) -> Grant {
        let mut reasons = Vec::new();
        let mut denied_by_rule = BTreeSet::new();
        let allowed = match principal {
            Some(p) if p.admin => {
                reasons.push("admins may do everything".to_owned());
                all_actions()
            }
            _ => {
                let groups = principal.map_or(&[][..], |p| p.groups.as_slice());
                let asker = Asker {
                    user: principal.map(|p| p.name.as_str()),
                    groups,
                };
                let decision = self.rules.decide(asker, requested);
                for (name, allow, deny) in &decision.matched {
                    reasons.push(describe_rule(name, allow, deny));
                }
                if decision.matched.is_empty() {
                    reasons.push("no rule matches".to_owned());
                }
                denied_by_rule = decision.denied.clone();
                decision.granted()
            }
        };
        let mut actions: BTreeSet<Action> =
            requested.actions.intersection(&allowed).copied().collect();
        // On a repository the registry reads `*` as every action, so it may
        // only stand when every action it covers is granted too.
        let every = BTreeSet::from([Action::Pull, Action::Push, Action::Delete]);
        let is_repository = matches!(requested.resource_type, ResourceType::Repository { .. });
        if is_repository && !allowed.is_superset(&every) {
            actions.remove(&Action::All);
        }
        if let (Some(p), ResourceType::Repository { .. }) = (principal, &requested.resource_type) {
            let before = actions.len();
            actions.retain(|a| p.level.permits(*a));
            if p.repositories.is_some() {
                // A token limited to some repositories never gets `*`.
                actions.remove(&Action::All);
            }
            if actions.len() < before {
                reasons.push(format!("the credential is limited to {}", p.level.as_str()));
            }
            if let Some(patterns) = &p.repositories
                && !patterns
                    .iter()
                    .any(|pattern| super::rules::glob(pattern, &requested.name))
            {
                if !actions.is_empty() {
                    reasons.push("the token is limited to other repositories".to_owned());
                }
                actions.clear();
            }
        }
        let granted = Scope {
            resource_type: requested.resource_type.clone(),
            name: requested.name.clone(),
            actions,
        };
        Grant {
            granted,
            reasons,
            denied_by_rule,
        }
    }
}

fn all_actions() -> BTreeSet<Action> {
    BTreeSet::from([Action::Pull, Action::Push, Action::Delete, Action::All])
}

fn describe_rule(name: &str, allow: &BTreeSet<Action>, deny: &BTreeSet<Action>) -> String {
    let list =
        |set: &BTreeSet<Action>| set.iter().map(|a| a.as_str()).collect::<Vec<_>>().join(",");
    match (allow.is_empty(), deny.is_empty()) {
        (false, true) => format!("rule {name:?} allows {}", list(allow)),
        (true, false) => format!("rule {name:?} denies {}", list(deny)),
        _ => format!(
            "rule {name:?} allows {} and denies {}",
            list(allow),
            list(deny)
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::rules::RuleConfig;

    fn principal(name: &str, admin: bool, level: AccessLevel) -> Principal {
        Principal {
            name: name.to_owned(),
            admin,
            groups: vec![],
            level,
            repositories: None,
        }
    }

    fn granted(policy: &Policy, p: Option<&Principal>, scope: &str) -> String {
        let grant = policy.grant(p, &Scope::parse(scope).unwrap().unwrap());
        grant
            .granted
            .to_string()
            .rsplit_once(':')
            .unwrap()
            .1
            .to_owned()
    }

    fn default_policy() -> Policy {
        Policy::new(Rules::new(&[], true).unwrap())
    }

    #[test]
    fn default_policy_table() {
        use AccessLevel::*;
        let policy = default_policy();
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
            (Some(&alice), format!("repository:alice-x/app:{all}"), ""),
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
            (Some(&alice), "repository:alice/app:*".into(), ""),
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
            assert_eq!(granted(&policy, *p, scope), *want, "{p:?} asking {scope}");
        }
    }

    fn rule(who: &[&str], repository: &str, allow: &[&str], deny: &[&str]) -> RuleConfig {
        let strings = |v: &[&str]| v.iter().map(|s| s.to_string()).collect();
        RuleConfig {
            name: None,
            who: strings(who),
            repository: Some(repository.to_owned()),
            registry: None,
            allow: strings(allow),
            deny: strings(deny),
        }
    }

    /// The examples the configuration must be able to express.
    #[test]
    fn configured_rules_table() {
        use AccessLevel::*;
        let configs = [
            rule(&["authenticated"], "library/*", &["pull"], &[]),
            rule(&["group:web"], "web/*", &["pull", "push"], &[]),
            rule(&["authenticated", "anonymous"], "public/*", &["pull"], &[]),
            rule(
                &["authenticated", "anonymous"],
                "release/*",
                &[],
                &["delete"],
            ),
            rule(&["group:web"], "release/*", &["*"], &[]),
            rule(&["group:*"], "x", &["pull"], &[]),
        ];
        assert!(
            Rules::new(&configs, true).is_err(),
            "group:* is not a group name"
        );
        let policy = Policy::new(Rules::new(&configs[..5], true).unwrap());
        let mut web = principal("wendy", false, Delete);
        web.groups = vec!["web".into()];
        let alice = principal("alice", false, Delete);
        let cases: &[(Option<&Principal>, &str, &str)] = &[
            (Some(&alice), "repository:library/nginx:pull,push", "pull"),
            (None, "repository:library/nginx:pull", ""),
            (
                Some(&web),
                "repository:web/site:pull,push,delete",
                "pull,push",
            ),
            (Some(&web), "repository:web/team/site:push", "push"),
            (Some(&alice), "repository:web/site:pull,push", ""),
            (None, "repository:public/tools:pull,push", "pull"),
            (Some(&alice), "repository:public/tools:pull,push", "pull"),
            (
                Some(&web),
                "repository:release/app:pull,push,delete",
                "pull,push",
            ),
            (Some(&alice), "repository:alice/app:delete", "delete"),
        ];
        for (p, scope, want) in cases {
            assert_eq!(granted(&policy, *p, scope), *want, "{p:?} asking {scope}");
        }
        let mut web_pull = web.clone();
        web_pull.level = Pull;
        assert_eq!(
            granted(&policy, Some(&web_pull), "repository:web/site:push"),
            ""
        );
    }

    /// A deny must also take away `*`, which the registry reads as every action.
    #[test]
    fn a_partial_deny_removes_the_wildcard() {
        let configs = [
            rule(&["group:ops"], "prod/*", &["*"], &[]),
            rule(&["bob"], "prod/*", &[], &["push", "delete"]),
        ];
        let policy = Policy::new(Rules::new(&configs, false).unwrap());
        let mut bob = principal("bob", false, AccessLevel::Delete);
        bob.groups = vec!["ops".into()];
        assert_eq!(granted(&policy, Some(&bob), "repository:prod/app:*"), "");
        assert_eq!(
            granted(&policy, Some(&bob), "repository:prod/app:pull,*"),
            "pull"
        );
        let mut carol = principal("carol", false, AccessLevel::Delete);
        carol.groups = vec!["ops".into()];
        assert_eq!(granted(&policy, Some(&carol), "repository:prod/app:*"), "*");
        carol.level = AccessLevel::Push;
        assert_eq!(granted(&policy, Some(&carol), "repository:prod/app:*"), "");
    }

    #[test]
    fn order_never_changes_the_outcome() {
        let configs = vec![
            rule(
                &["authenticated"],
                "shared/*",
                &["pull", "push", "delete"],
                &[],
            ),
            rule(&["alice"], "shared/*", &[], &["push"]),
            rule(&["group:ops"], "shared/*", &["delete"], &["pull"]),
        ];
        let mut alice = principal("alice", false, AccessLevel::Delete);
        alice.groups = vec!["ops".into()];
        let scope = "repository:shared/x:pull,push,delete";
        let forward = granted(
            &Policy::new(Rules::new(&configs, false).unwrap()),
            Some(&alice),
            scope,
        );
        let mut reversed = configs.clone();
        reversed.reverse();
        let backward = granted(
            &Policy::new(Rules::new(&reversed, false).unwrap()),
            Some(&alice),
            scope,
        );
        assert_eq!(forward, "delete");
        assert_eq!(forward, backward);
    }

    #[test]
    fn placeholders_and_switching_off_the_default() {
        let configs = [rule(
            &["authenticated"],
            "teams/${group}/*",
            &["pull", "push"],
            &[],
        )];
        let mut bob = principal("bob", false, AccessLevel::Delete);
        bob.groups = vec!["blue".into(), "green".into()];
        let policy = Policy::new(Rules::new(&configs, false).unwrap());
        assert_eq!(
            granted(&policy, Some(&bob), "repository:teams/green/app:push"),
            "push"
        );
        assert_eq!(
            granted(&policy, Some(&bob), "repository:teams/red/app:push"),
            ""
        );
        assert_eq!(
            granted(&policy, Some(&bob), "repository:bob/app:push"),
            "",
            "default off"
        );
    }

    #[test]
    fn token_repository_restriction_narrows() {
        let policy = default_policy();
        let mut alice = principal("alice", false, AccessLevel::Push);
        alice.repositories = Some(vec!["alice/app".into(), "alice/lib/*".into()]);
        assert_eq!(
            granted(&policy, Some(&alice), "repository:alice/app:pull,push"),
            "pull,push"
        );
        assert_eq!(
            granted(&policy, Some(&alice), "repository:alice/lib/x:pull"),
            "pull"
        );
        assert_eq!(
            granted(&policy, Some(&alice), "repository:alice/other:pull"),
            ""
        );
    }

    #[test]
    fn catalog_stays_admin_only_unless_a_rule_allows_it() {
        let default = default_policy();
        let alice = principal("alice", false, AccessLevel::Pull);
        assert_eq!(granted(&default, Some(&alice), "registry:catalog:*"), "");
        let config = RuleConfig {
            who: vec!["alice".into()],
            registry: Some("catalog".into()),
            allow: vec!["*".into()],
            ..RuleConfig::default()
        };
        let policy = Policy::new(Rules::new(&[config], true).unwrap());
        assert_eq!(granted(&policy, Some(&alice), "registry:catalog:*"), "*");
    }

    #[test]
    fn levels_nest() {
        assert!(AccessLevel::Pull < AccessLevel::Push && AccessLevel::Push < AccessLevel::Delete);
        for level in [AccessLevel::Pull, AccessLevel::Push, AccessLevel::Delete] {
            assert_eq!(AccessLevel::parse(level.as_str()), Some(level));
        }
    }
}

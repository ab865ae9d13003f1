//! Authorization rules from the configuration file.
//!
//! A rule matches on who asks (a user, a group, `authenticated`, `anonymous`)
//! and on the resource (a repository name glob with `${user}` and `${group}`
//! placeholders, or the registry catalog), and allows or denies actions. The
//! grant for a scope is the union of every matching allow minus every
//! matching deny: rule order never changes the outcome, and a deny always
//! wins. Admins are not subject to rules.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use super::scope::{Action, ResourceType, Scope, is_path_component};

/// One rule as written in the configuration file.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RuleConfig {
    /// A name for messages and `policy explain`; defaults to `rule N`.
    pub name: Option<String>,
    /// `alice`, `group:web`, `authenticated` or `anonymous`.
    pub who: Vec<String>,
    /// A repository name glob: `*` matches any characters, `/` included.
    pub repository: Option<String>,
    /// `catalog`: the registry's `/v2/_catalog`.
    pub registry: Option<String>,
    #[serde(default)]
    pub allow: Vec<String>,
    #[serde(default)]
    pub deny: Vec<String>,
}

/// Who a rule is about.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Subject {
    User(String),
    Group(String),
    Authenticated,
    Anonymous,
}

/// What a rule is about.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Target {
    Repository(String),
    Catalog,
}

/// A validated rule.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rule {
    pub name: String,
    pub who: Vec<Subject>,
    pub target: Target,
    pub allow: BTreeSet<Action>,
    pub deny: BTreeSet<Action>,
}

/// A rule that cannot be used; the message names it.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
#[error("authorization rule {rule:?}: {problem}")]
pub struct RuleError {
    pub rule: String,
    pub problem: String,
}

/// Who is asking, as the rules see it.
#[derive(Clone, Copy, Debug)]
pub struct Asker<'a> {
    /// `None` for an anonymous client.
    pub user: Option<&'a str>,
    pub groups: &'a [String],
}

/// Why an action was or was not granted.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Decision {
    pub allowed: BTreeSet<Action>,
    pub denied: BTreeSet<Action>,
    /// Names of the rules that matched, with what each said.
    pub matched: Vec<(String, BTreeSet<Action>, BTreeSet<Action>)>,
}

impl Decision {
    /// The actions the rules grant: allowed and not denied.
    pub fn granted(&self) -> BTreeSet<Action> {
        self.allowed.difference(&self.denied).copied().collect()
    }
}

/// The name of the built-in rule giving users their own namespace.
pub const OWN_NAMESPACE: &str = "own namespace";

/// The validated rule set.
#[derive(Clone, Debug, Default)]
pub struct Rules {
    rules: Vec<Rule>,
}

impl Rules {
    /// Validates the configured rules; with `own_namespace`, the default rule
    /// (every user may pull, push and delete under their own name) comes first.
    pub fn new(configs: &[RuleConfig], own_namespace: bool) -> Result<Rules, RuleError> {
        let mut rules = Vec::new();
        if own_namespace {
            for pattern in ["${user}", "${user}/*"] {
                rules.push(Rule {
                    name: OWN_NAMESPACE.to_owned(),
                    who: vec![Subject::Authenticated],
                    target: Target::Repository(pattern.to_owned()),
                    allow: BTreeSet::from([Action::Pull, Action::Push, Action::Delete]),
                    deny: BTreeSet::new(),
                });
            }
        }
        for (i, config) in configs.iter().enumerate() {
            rules.push(validate(config, i + 1)?);
        }
        Ok(Rules { rules })
    }

    /// What the rules say about `scope` for `asker`.
    pub fn decide(&self, asker: Asker<'_>, scope: &Scope) -> Decision {
        let mut decision = Decision::default();
        for rule in self.rules.iter().filter(|r| applies(r, asker, scope)) {
            decision.allowed.extend(&rule.allow);
            decision.denied.extend(&rule.deny);
            decision
                .matched
                .push((rule.name.clone(), rule.allow.clone(), rule.deny.clone()));
        }
        decision
    }

    /// First path components that name a group's namespace through
    /// `${group}` (`${group}-rel` in `${group}-rel/*`), for name checks.
    pub fn group_namespaces(&self) -> impl Iterator<Item = &str> {
        self.rules
            .iter()
            .filter_map(|r| match &r.target {
                Target::Repository(pattern) => pattern.split('/').next(),
                Target::Catalog => None,
            })
            .filter(|first| first.contains("${group}") && !first.contains("${user}"))
    }

    /// The first path components the rules name literally (`library` in
    /// `library/*`): a user or group of that name would collide with them.
    pub fn reserved_namespaces(&self) -> BTreeSet<String> {
        self.rules
            .iter()
            .filter_map(|r| match &r.target {
                Target::Repository(pattern) => pattern.split('/').next(),
                Target::Catalog => None,
            })
            .filter(|first| !first.contains('*') && !first.contains("${"))
            .map(str::to_owned)
            .collect()
    }
}

fn applies(rule: &Rule, asker: Asker<'_>, scope: &Scope) -> bool {
    let who_matches = rule.who.iter().any(|s| match (s, asker.user) {
        (Subject::Anonymous, None) => true,
        (Subject::Authenticated, Some(_)) => true,
        (Subject::User(name), Some(user)) => name == user,
        (Subject::Group(group), Some(_)) => asker.groups.iter().any(|g| g == group),
        _ => false,
    });
    if !who_matches {
        return false;
    }
    match (&rule.target, &scope.resource_type) {
        (Target::Catalog, ResourceType::Registry) => scope.name == "catalog",
        (Target::Repository(pattern), ResourceType::Repository { .. }) => {
            pattern_matches(pattern, asker, &scope.name)
        }
        _ => false,
    }
}

/// Whether `name` matches `pattern` once placeholders are filled in. A
/// `${group}` pattern matches if it matches for any of the asker's groups;
/// placeholders never match for an anonymous client.
fn pattern_matches(pattern: &str, asker: Asker<'_>, name: &str) -> bool {
    let needs_user = pattern.contains("${user}");
    let needs_group = pattern.contains("${group}");
    let user = match (needs_user, asker.user) {
        (true, None) => return false,
        (_, user) => user.unwrap_or_default(),
    };
    let with_user = pattern.replace("${user}", user);
    if !needs_group {
        return glob(&with_user, name);
    }
    asker
        .groups
        .iter()
        .any(|g| glob(&with_user.replace("${group}", g), name))
}

/// `*` matches any run of characters, `/` included; everything else is
/// literal.
pub fn glob(pattern: &str, text: &str) -> bool {
    let (p, t) = (pattern.as_bytes(), text.as_bytes());
    let (mut pi, mut ti) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        if pi < p.len() && p[pi] == b'*' {
            star = Some((pi, ti));
            pi += 1;
        } else if pi < p.len() && p[pi] == t[ti] {
            pi += 1;
            ti += 1;
        } else if let Some((sp, st)) = star {
            pi = sp + 1;
            ti = st + 1;
            star = Some((sp, st + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|&b| b == b'*')
}

fn validate(config: &RuleConfig, index: usize) -> Result<Rule, RuleError> {
    let name = config
        .name
        .clone()
        .unwrap_or_else(|| format!("rule {index}"));
    let fail = |problem: String| RuleError {
        rule: name.clone(),
        problem,
    };

    if config.who.is_empty() {
        return Err(fail(
            "`who` must name at least one user, group, `authenticated` or `anonymous`".into(),
        ));
    }
    let who = config
        .who
        .iter()
        .map(|w| parse_subject(w).map_err(&fail))
        .collect::<Result<_, _>>()?;

    let target = match (&config.repository, &config.registry) {
        (Some(pattern), None) => {
            check_pattern(pattern).map_err(&fail)?;
            Target::Repository(pattern.clone())
        }
        (None, Some(r)) if r == "catalog" => Target::Catalog,
        (None, Some(r)) => return Err(fail(format!("registry {r:?} is not \"catalog\""))),
        _ => {
            return Err(fail(
                "give exactly one of `repository` or `registry`".into(),
            ));
        }
    };

    let mut allow = parse_actions(&config.allow).map_err(&fail)?;
    let mut deny = parse_actions(&config.deny).map_err(&fail)?;
    if allow.is_empty() && deny.is_empty() {
        return Err(fail("the rule neither allows nor denies anything".into()));
    }
    if target == Target::Catalog {
        if allow.iter().chain(&deny).any(|a| *a != Action::All) {
            return Err(fail("the catalog only knows the action \"*\"".into()));
        }
    } else {
        // On a repository, `*` is every action.
        for set in [&mut allow, &mut deny] {
            if set.contains(&Action::All) {
                set.extend([Action::Pull, Action::Push, Action::Delete]);
            }
        }
    }
    Ok(Rule {
        name,
        who,
        target,
        allow,
        deny,
    })
}

fn parse_subject(raw: &str) -> Result<Subject, String> {
    let subject = match raw {
        "authenticated" => Subject::Authenticated,
        "anonymous" => Subject::Anonymous,
        _ => match raw.strip_prefix("group:") {
            Some(group) => Subject::Group(group.to_owned()),
            None => Subject::User(raw.to_owned()),
        },
    };
    match &subject {
        Subject::User(n) | Subject::Group(n) if !is_path_component(n) => Err(format!(
            "{raw:?} is not a valid user or group: use lowercase letters and digits"
        )),
        _ => Ok(subject),
    }
}

fn parse_actions(raw: &[String]) -> Result<BTreeSet<Action>, String> {
    let mut out = BTreeSet::new();
    for action in raw {
        match action.as_str() {
            "pull" => out.insert(Action::Pull),
            "push" => out.insert(Action::Push),
            "delete" => out.insert(Action::Delete),
            "*" => out.insert(Action::All),
            other => {
                return Err(format!(
                    "unknown action {other:?}: use pull, push, delete or *"
                ));
            }
        };
    }
    Ok(out)
}

/// A pattern is a repository name in which components may hold `*`,
/// `${user}` and `${group}`.
pub fn check_pattern(pattern: &str) -> Result<(), String> {
    let filled = pattern
        .replace("${user}", "u")
        .replace("${group}", "g")
        .replace('*', "x");
    if filled.contains('$') {
        return Err(format!(
            "{pattern:?}: the only placeholders are ${{user}} and ${{group}}"
        ));
    }
    if filled.split('/').all(is_path_component) {
        Ok(())
    } else {
        Err(format!("{pattern:?} is not a repository name pattern"))
    }
}

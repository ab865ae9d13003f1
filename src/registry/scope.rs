//! The scope grammar of the distribution token protocol:
//! `type[(class)]:name:action[,action…]`.
//!
//! Names may contain `host:port/` and `/`-separated paths, so the type is split
//! off at the first `:` and the actions at the last one. Unknown resource types
//! and unknown actions are dropped; a scope whose shape is wrong is an error.

use std::collections::BTreeSet;
use std::fmt;

/// Longest repository name the registry accepts.
pub const MAX_NAME_LEN: usize = 255;

/// Most scopes one token request may name.
pub const MAX_SCOPES: usize = 64;

/// One action on a resource. `All` is the registry's `*`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Action {
    Pull,
    Push,
    Delete,
    All,
}

impl Action {
    fn parse(s: &str) -> Option<Action> {
        match s {
            "pull" => Some(Action::Pull),
            "push" => Some(Action::Push),
            "delete" => Some(Action::Delete),
            "*" => Some(Action::All),
            _ => None,
        }
    }

    /// The action's name on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Pull => "pull",
            Action::Push => "push",
            Action::Delete => "delete",
            Action::All => "*",
        }
    }
}

/// What kind of resource a scope is about.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ResourceType {
    /// `repository`, or `repository(class)` such as `repository(plugin)`.
    Repository { class: Option<String> },
    /// `registry`, whose only resource is `catalog`.
    Registry,
}

impl fmt::Display for ResourceType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ResourceType::Repository { class: None } => f.write_str("repository"),
            ResourceType::Repository { class: Some(class) } => write!(f, "repository({class})"),
            ResourceType::Registry => f.write_str("registry"),
        }
    }
}

/// A parsed scope: a resource and the actions asked for (or granted) on it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Scope {
    pub resource_type: ResourceType,
    pub name: String,
    pub actions: BTreeSet<Action>,
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:", self.resource_type, self.name)?;
        for (i, action) in self.actions.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            f.write_str(action.as_str())?;
        }
        Ok(())
    }
}

/// Why a scope could not be parsed. The message quotes the offending scope so
/// a client author can see what was sent.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum ScopeError {
    #[error("malformed scope {0:?}: expected type:name:actions")]
    Shape(String),
    #[error("malformed scope {0:?}: invalid resource name")]
    Name(String),
    #[error("too many scopes in one request (at most {MAX_SCOPES})")]
    TooMany,
}

impl Scope {
    /// Parses one scope. `Ok(None)` means a well-formed scope of a type we do
    /// not know, which the protocol says to ignore.
    pub fn parse(raw: &str) -> Result<Option<Scope>, ScopeError> {
        let shape = || ScopeError::Shape(raw.to_owned());
        let (type_part, rest) = raw.split_once(':').ok_or_else(shape)?;
        let (name, actions_part) = rest.rsplit_once(':').ok_or_else(shape)?;
        if type_part.is_empty() || name.is_empty() {
            return Err(shape());
        }

        let Some(resource_type) = parse_type(type_part).map_err(|()| shape())? else {
            return Ok(None);
        };
        let name_ok = match resource_type {
            ResourceType::Repository { .. } => is_repository_name(name),
            ResourceType::Registry => name == "catalog",
        };
        if !name_ok {
            return Err(ScopeError::Name(raw.to_owned()));
        }

        let actions = actions_part.split(',').filter_map(Action::parse).collect();
        Ok(Some(Scope {
            resource_type,
            name: name.to_owned(),
            actions,
        }))
    }

    /// Whether this scope and `other` name the same resource.
    pub fn same_resource(&self, other: &Scope) -> bool {
        self.resource_type == other.resource_type && self.name == other.name
    }
}

/// Parses every `scope` value of a request. Each value may hold several scopes
/// separated by spaces; scopes on the same resource are merged.
pub fn parse_scopes<'a>(
    values: impl IntoIterator<Item = &'a str>,
) -> Result<Vec<Scope>, ScopeError> {
    let mut scopes: Vec<Scope> = Vec::new();
    let mut seen = 0usize;
    for raw in values
        .into_iter()
        .flat_map(|v| v.split(' '))
        .filter(|s| !s.is_empty())
    {
        seen += 1;
        if seen > MAX_SCOPES {
            return Err(ScopeError::TooMany);
        }
        let Some(scope) = Scope::parse(raw)? else {
            continue;
        };
        match scopes.iter_mut().find(|s| s.same_resource(&scope)) {
            Some(existing) => existing.actions.extend(scope.actions),
            None => scopes.push(scope),
        }
    }
    Ok(scopes)
}

/// `repository`, `repository(class)` or `registry`; `Ok(None)` for other
/// well-formed types, `Err` for a malformed type.
fn parse_type(raw: &str) -> Result<Option<ResourceType>, ()> {
    let (base, class) = match raw.split_once('(') {
        Some((base, rest)) => {
            let class = rest.strip_suffix(')').ok_or(())?;
            if class.is_empty() || !class.bytes().all(|b| b.is_ascii_alphanumeric()) {
                return Err(());
            }
            (base, Some(class))
        }
        None => (raw, None),
    };
    if base.is_empty() || !base.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
        return Err(());
    }
    Ok(match (base, class) {
        ("repository", class) => Some(ResourceType::Repository {
            class: class.map(str::to_owned),
        }),
        ("registry", None) => Some(ResourceType::Registry),
        _ => None,
    })
}

/// Whether `name` is a repository name the registry accepts: an optional
/// `host[:port]/` prefix, then path components joined by `/`.
pub fn is_repository_name(name: &str) -> bool {
    if name.is_empty() || name.len() > MAX_NAME_LEN {
        return false;
    }
    let mut parts = name.split('/').peekable();
    let first = parts.next().unwrap_or_default();
    let has_more = parts.peek().is_some();
    let first_ok = is_path_component(first) || (has_more && is_domain(first));
    first_ok && parts.all(is_path_component)
}

/// A path component: lowercase alphanumeric runs joined by one separator
/// (`.`, `_`, `__`, or any number of `-`).
pub fn is_path_component(s: &str) -> bool {
    let bytes = s.as_bytes();
    let alnum = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    if bytes.is_empty() || !alnum(bytes[0]) || !alnum(bytes[bytes.len() - 1]) {
        return false;
    }
    let mut i = 0;
    while i < bytes.len() {
        if alnum(bytes[i]) {
            i += 1;
            continue;
        }
        let start = i;
        while i < bytes.len() && !alnum(bytes[i]) {
            i += 1;
        }
        let sep = &s[start..i];
        let ok = sep == "." || sep == "_" || sep == "__" || sep.bytes().all(|b| b == b'-');
        if !ok {
            return false;
        }
    }
    true
}

/// A registry host: DNS labels joined by `.`, optionally `:port`. As in
/// docker's reference rules, a first component counts as a host only if it
/// has a `.` or a port, or is `localhost`; otherwise it is a path component.
fn is_domain(s: &str) -> bool {
    if !(s.contains('.') || s.contains(':') || s == "localhost") {
        return false;
    }
    let (host, port) = match s.rsplit_once(':') {
        Some((host, port)) => (host, Some(port)),
        None => (s, None),
    };
    if let Some(port) = port
        && (port.is_empty() || port.len() > 5 || !port.bytes().all(|b| b.is_ascii_digit()))
    {
        return false;
    }
    !host.is_empty()
        && host.split('.').all(|label| {
            let b = label.as_bytes();
            !b.is_empty()
                && b[0].is_ascii_alphanumeric()
                && b[b.len() - 1].is_ascii_alphanumeric()
                && b.iter().all(|c| c.is_ascii_alphanumeric() || *c == b'-')
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn actions(list: &[Action]) -> BTreeSet<Action> {
        list.iter().copied().collect()
    }

    fn repo(name: &str, list: &[Action]) -> Scope {
        Scope {
            resource_type: ResourceType::Repository { class: None },
            name: name.to_owned(),
            actions: actions(list),
        }
    }

    #[test]
    fn parses_valid_scopes() {
        use Action::*;
        let cases: &[(&str, Scope)] = &[
            ("repository:alice/app:pull", repo("alice/app", &[Pull])),
            (
                "repository:alice/app:push,pull",
                repo("alice/app", &[Pull, Push]),
            ),
            (
                "repository:app:pull,push,delete",
                repo("app", &[Pull, Push, Delete]),
            ),
            ("repository:a/b/c/d:pull", repo("a/b/c/d", &[Pull])),
            (
                "repository:localhost:5000/alice/app:pull",
                repo("localhost:5000/alice/app", &[Pull]),
            ),
            (
                "repository:reg.example.com/x:pull",
                repo("reg.example.com/x", &[Pull]),
            ),
            (
                "repository:a.b_c__d--e/f:pull",
                repo("a.b_c__d--e/f", &[Pull]),
            ),
            (
                "repository:alice/app:pull,bogus",
                repo("alice/app", &[Pull]),
            ),
            ("repository:alice/app:", repo("alice/app", &[])),
            ("repository:alice/app:*", repo("alice/app", &[All])),
            (
                "registry:catalog:*",
                Scope {
                    resource_type: ResourceType::Registry,
                    name: "catalog".into(),
                    actions: actions(&[All]),
                },
            ),
            (
                "repository(plugin):alice/p:pull",
                Scope {
                    resource_type: ResourceType::Repository {
                        class: Some("plugin".into()),
                    },
                    name: "alice/p".into(),
                    actions: actions(&[Pull]),
                },
            ),
        ];
        for (raw, want) in cases {
            assert_eq!(Scope::parse(raw), Ok(Some(want.clone())), "{raw}");
        }
    }

    #[test]
    fn drops_unknown_types() {
        for raw in [
            "thing:alice/app:pull",
            "repo:x:pull",
            "registry(x):catalog:*",
        ] {
            assert_eq!(Scope::parse(raw), Ok(None), "{raw}");
        }
    }

    #[test]
    fn rejects_malformed_scopes() {
        let shape = [
            "",
            "repository",
            "repository:alice",
            ":alice/app:pull",
            "repository::pull",
            "repository(:x:pull",
            "repository():x:pull",
            "repo sitory:x:pull",
        ];
        for raw in shape {
            assert_eq!(
                Scope::parse(raw),
                Err(ScopeError::Shape(raw.into())),
                "{raw:?}"
            );
        }
        let name = [
            "repository:Alice/app:pull",
            "repository:alice//app:pull",
            "repository:/alice:pull",
            "repository:alice/:pull",
            "repository:alice/-app:pull",
            "repository:alice/app.:pull",
            "repository:alice/a..b:pull",
            "repository:alice/a___b:pull",
            "repository:host:port/x:pull",
            "repository:../etc:pull",
            "repository:alice/ä:pull",
            "registry:other:*",
        ];
        for raw in name {
            assert_eq!(
                Scope::parse(raw),
                Err(ScopeError::Name(raw.into())),
                "{raw:?}"
            );
        }
        let long = format!("repository:{}:pull", "a".repeat(MAX_NAME_LEN + 1));
        assert!(matches!(Scope::parse(&long), Err(ScopeError::Name(_))));
    }

    #[test]
    fn splits_spaces_and_merges_repeats() {
        use Action::*;
        let values = [
            "repository:a/x:pull repository:b/y:push",
            "repository:a/x:push",
            " ",
        ];
        let scopes = parse_scopes(values).unwrap();
        assert_eq!(
            scopes,
            vec![repo("a/x", &[Pull, Push]), repo("b/y", &[Push])]
        );
    }

    #[test]
    fn bounds_the_number_of_scopes() {
        let many = vec!["repository:a/x:pull"; MAX_SCOPES + 1];
        assert_eq!(parse_scopes(many), Err(ScopeError::TooMany));
    }

    #[test]
    fn displays_in_wire_form() {
        let scope = Scope::parse("repository:a/x:push,pull,delete")
            .unwrap()
            .unwrap();
        assert_eq!(scope.to_string(), "repository:a/x:pull,push,delete");
    }

    mod properties {
        use proptest::prelude::*;

        use super::super::*;

        fn component() -> impl Strategy<Value = String> {
            "[a-z0-9]{1,6}([._-][a-z0-9]{1,6}){0,2}"
        }

        fn repository() -> impl Strategy<Value = String> {
            prop::collection::vec(component(), 1..4).prop_map(|parts| parts.join("/"))
        }

        proptest! {
            #[test]
            fn never_panics(raw in ".{0,300}") {
                let _ = Scope::parse(&raw);
                let _ = parse_scopes([raw.as_str()]);
            }

            #[test]
            fn display_round_trips(
                name in repository(),
                host in prop::option::of("[a-z]{1,8}\\.[a-z]{2,3}(:[0-9]{1,5})?"),
                actions in prop::collection::btree_set(
                    prop::sample::select(vec![Action::Pull, Action::Push, Action::Delete]), 0..3),
            ) {
                let name = match host { Some(h) => format!("{h}/{name}"), None => name };
                let scope = Scope {
                    resource_type: ResourceType::Repository { class: None },
                    name,
                    actions,
                };
                prop_assert_eq!(Scope::parse(&scope.to_string()), Ok(Some(scope)));
            }
        }
    }
}

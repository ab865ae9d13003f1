//! Runtime configuration: embedded defaults, then an optional TOML file, then
//! `PORTCULLIS_*` environment variables (nested keys joined with `__`).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use figment::Figment;
use figment::providers::{Env, Format, Serialized, Toml};
use serde::{Deserialize, Serialize};

use crate::registry::policy::Policy;
use crate::registry::rules::{RuleConfig, RuleError, Rules};

/// File read when `PORTCULLIS_CONFIG` is not set; absent is fine.
pub const DEFAULT_CONFIG_FILE: &str = "portcullis.toml";

/// Suffix of the environment variables that name a file holding a value.
const FILE_SUFFIX: &str = "_file";

/// Shortest token lifetime a registry tolerates without clock-skew trouble.
pub const MIN_TOKEN_TTL: u64 = 60;

/// Everything Portcullis can be told, with its defaults.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Address and port the HTTP server binds.
    pub listen: SocketAddr,
    /// Directory holding the database, the keys and the admin socket.
    pub data_dir: PathBuf,
    /// URL clients reach Portcullis at; the realm is this plus `/v2/token`.
    /// Defaults to `http://` and the `listen` address.
    pub public_url: Option<String>,
    /// Name of the registry service; must match the registry's `auth.token.service`.
    pub service: String,
    /// `iss` of every token; must match the registry's `auth.token.issuer`.
    pub issuer: String,
    /// Lifetime of a registry token in seconds.
    pub token_ttl: u64,
    /// Most application tokens one user may hold.
    pub token_limit: u32,
    /// Refuse passwords on `/v2/token`; only application tokens (and refresh
    /// tokens obtained with them) work there.
    pub tokens_only: bool,
    /// A refresh token unused for this many seconds expires.
    pub refresh_idle_ttl: u64,
    /// A refresh token expires this many seconds after it was issued, used or not.
    pub refresh_max_ttl: u64,
    /// A web session unused for this many seconds ends.
    pub session_idle_ttl: u64,
    /// A web session ends this many seconds after sign-in, used or not.
    pub session_max_ttl: u64,
    /// Registry address shown in the ready-made `docker login` line
    /// (`registry.example.com`); defaults to the host of `public_url`.
    pub registry_host: Option<String>,
    /// Audit events older than this many days are removed.
    pub audit_retention_days: u32,
    /// At most this many audit events are kept; the oldest go first.
    pub audit_max_events: u64,
    /// PEM certificate chain to serve HTTPS with (with `tls_key`).
    pub tls_cert: Option<PathBuf>,
    /// PEM private key for `tls_cert`.
    pub tls_key: Option<PathBuf>,
    /// Reverse proxies (addresses or CIDR ranges) whose `X-Forwarded-For`
    /// and `X-Forwarded-Proto` headers are believed.
    pub trusted_proxies: Vec<String>,
    /// Give every user pull, push and delete under their own name (the
    /// built-in rule "own namespace").
    pub own_namespace: bool,
    /// Authorization rules: `[[rules]]` tables in the configuration file.
    pub rules: Vec<RuleConfig>,
    /// Password for the initial `admin` account, used only on first start.
    #[serde(skip_serializing)]
    pub admin_password: Option<String>,
    /// Log filter (`info`, `portcullis=debug`, ...); `RUST_LOG` is used when unset.
    pub log: Option<String>,
    /// `text` for people, `json` for log collectors (one object per line).
    pub log_format: LogFormat,
}

/// How log lines are written.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    #[default]
    Text,
    Json,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            listen: SocketAddr::from(([127, 0, 0, 1], 5001)),
            data_dir: PathBuf::from("data"),
            public_url: None,
            service: "registry".to_owned(),
            issuer: "portcullis".to_owned(),
            token_ttl: 900,
            token_limit: 5,
            tokens_only: false,
            refresh_idle_ttl: 30 * 24 * 3600,
            refresh_max_ttl: 365 * 24 * 3600,
            session_idle_ttl: 8 * 3600,
            session_max_ttl: 7 * 24 * 3600,
            registry_host: None,
            audit_retention_days: 90,
            audit_max_events: 100_000,
            tls_cert: None,
            tls_key: None,
            trusted_proxies: Vec::new(),
            own_namespace: true,
            rules: Vec::new(),
            admin_password: None,
            log: None,
            log_format: LogFormat::Text,
        }
    }
}

/// Why the configuration could not be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("invalid configuration: {0}")]
    Load(Box<figment::Error>),
    #[error("invalid configuration: {variable}: {problem}")]
    File { variable: String, problem: String },
    #[error("the configuration file {0} named by PORTCULLIS_CONFIG does not exist")]
    MissingFile(PathBuf),
    #[error("invalid configuration: `{key}` {problem}")]
    Invalid { key: &'static str, problem: String },
    #[error("invalid configuration: {0}")]
    Rule(#[from] RuleError),
}

impl Config {
    /// Loads defaults ← TOML file ← environment and validates the result.
    pub fn load() -> Result<Config, ConfigError> {
        let file = match std::env::var_os("PORTCULLIS_CONFIG").map(PathBuf::from) {
            // A file named on purpose must exist; a typo must not go unnoticed.
            Some(named) if !named.exists() => return Err(ConfigError::MissingFile(named)),
            Some(named) => named,
            None => PathBuf::from(DEFAULT_CONFIG_FILE),
        };
        Self::from_figment(Self::figment(&file).merge(Self::file_values()?))
    }

    /// The provider chain, exposed so tests can layer their own values.
    pub fn figment(file: &Path) -> Figment {
        Figment::from(Serialized::defaults(Config::default()))
            .merge(Toml::file(file))
            .merge(
                Env::prefixed("PORTCULLIS_")
                    .ignore(&["config"])
                    .filter(|key| !key.as_str().to_ascii_lowercase().ends_with(FILE_SUFFIX)),
            )
    }

    /// Values from `PORTCULLIS_<KEY>_FILE` variables: the named file's
    /// contents, without a final newline, as the string value of `<key>`.
    /// This is how Docker and Kubernetes hand secrets over.
    fn file_values() -> Result<Figment, ConfigError> {
        let mut figment = Figment::new();
        for (name, path) in std::env::vars_os() {
            let Some(name) = name.to_str() else { continue };
            let Some(key) = name
                .strip_prefix("PORTCULLIS_")
                .and_then(|k| k.strip_suffix("_FILE"))
            else {
                continue;
            };
            let key = key.to_ascii_lowercase();
            let contents = std::fs::read_to_string(&path).map_err(|e| ConfigError::File {
                variable: name.to_owned(),
                problem: e.to_string(),
            })?;
            let value = contents.strip_suffix('\n').unwrap_or(&contents);
            let value = value.strip_suffix('\r').unwrap_or(value).to_owned();
            figment = figment.merge(Serialized::default(&key, value));
        }
        Ok(figment)
    }

    /// Extracts and validates a configuration from any figment.
    pub fn from_figment(figment: Figment) -> Result<Config, ConfigError> {
        let config: Config = figment
            .extract()
            .map_err(|e| ConfigError::Load(Box::new(e)))?;
        config.validate()?;
        Ok(config)
    }

    fn validate(&self) -> Result<(), ConfigError> {
        let invalid = |key, problem: &str| {
            Err(ConfigError::Invalid {
                key,
                problem: problem.to_owned(),
            })
        };
        if self.token_ttl < MIN_TOKEN_TTL {
            return invalid("token_ttl", "must be at least 60 seconds");
        }
        if self.token_limit == 0 {
            return invalid("token_limit", "must be at least 1");
        }
        let url = self.public_url();
        if !(url.starts_with("http://") || url.starts_with("https://")) {
            return invalid("public_url", "must start with http:// or https://");
        }
        if self.service.trim().is_empty() {
            return invalid("service", "must not be empty");
        }
        if self.issuer.trim().is_empty() {
            return invalid("issuer", "must not be empty");
        }
        if self.refresh_idle_ttl == 0 || self.refresh_max_ttl < self.refresh_idle_ttl {
            return invalid(
                "refresh_max_ttl",
                "must be at least refresh_idle_ttl, and both above zero",
            );
        }
        self.policy()?;
        if self.tls_cert.is_some() != self.tls_key.is_some() {
            return invalid("tls_cert", "and `tls_key` must be given together");
        }
        if let Err(bad) = self.proxy_networks() {
            return invalid(
                "trusted_proxies",
                &format!("holds {bad:?}, not an address or CIDR range"),
            );
        }
        if self.session_idle_ttl == 0 || self.session_max_ttl < self.session_idle_ttl {
            return invalid(
                "session_max_ttl",
                "must be at least session_idle_ttl, and both above zero",
            );
        }
        Ok(())
    }

    /// The trusted proxies as networks; a plain address is a one-address
    /// network. `Err` names the first entry that is neither.
    pub fn proxy_networks(&self) -> Result<Vec<ipnet::IpNet>, String> {
        self.trusted_proxies
            .iter()
            .map(|entry| {
                entry
                    .parse::<ipnet::IpNet>()
                    .or_else(|_| entry.parse::<std::net::IpAddr>().map(ipnet::IpNet::from))
                    .map_err(|_| entry.clone())
            })
            .collect()
    }

    /// The access policy the rules describe.
    pub fn policy(&self) -> Result<Policy, RuleError> {
        Ok(Policy::new(Rules::new(&self.rules, self.own_namespace)?))
    }

    /// The registry host people type after `docker login`.
    pub fn registry_host(&self) -> String {
        if let Some(host) = &self.registry_host {
            return host.clone();
        }
        let url = self.public_url();
        let rest = url.split_once("://").map_or(url.as_str(), |p| p.1);
        rest.split('/').next().unwrap_or(rest).to_owned()
    }

    /// The URL clients reach Portcullis at.
    pub fn public_url(&self) -> String {
        match &self.public_url {
            Some(url) => url.clone(),
            None => format!("http://{}", self.listen),
        }
    }

    /// The token endpoint URL registries send clients to.
    pub fn realm(&self) -> String {
        format!("{}/v2/token", self.public_url().trim_end_matches('/'))
    }

    /// Whether cookies must carry `Secure`.
    pub fn is_https(&self) -> bool {
        self.public_url().starts_with("https://")
    }
}

#[cfg(test)]
#[expect(
    clippy::result_large_err,
    reason = "figment's Jail closures must return figment::Error"
)]
mod tests {
    use super::*;
    use figment::Jail;

    #[test]
    fn defaults_file_and_env_layer_in_order() {
        Jail::expect_with(|jail| {
            jail.create_file("p.toml", "service = \"from-file\"\ntoken_ttl = 120\n")?;
            jail.set_env("PORTCULLIS_TOKEN_TTL", "300");
            let config = Config::from_figment(Config::figment(Path::new("p.toml"))).unwrap();
            assert_eq!(config.service, "from-file");
            assert_eq!(config.token_ttl, 300);
            assert_eq!(config.token_limit, 5);
            Ok(())
        });
    }

    #[test]
    fn file_variants_read_secrets_from_files() {
        Jail::expect_with(|jail| {
            jail.create_file("secret", "s3cret value\n")?;
            let path = jail.directory().join("secret");
            jail.set_env("PORTCULLIS_ADMIN_PASSWORD_FILE", path.display());
            let figment =
                Config::figment(Path::new("none.toml")).merge(Config::file_values().unwrap());
            let config = Config::from_figment(figment).unwrap();
            assert_eq!(config.admin_password.as_deref(), Some("s3cret value"));
            jail.set_env("PORTCULLIS_ADMIN_PASSWORD_FILE", "/no/such/file");
            let err = Config::file_values().unwrap_err();
            assert!(
                err.to_string().contains("PORTCULLIS_ADMIN_PASSWORD_FILE"),
                "{err}"
            );
            Ok(())
        });
    }

    #[test]
    fn tls_and_proxies_are_checked() {
        Jail::expect_with(|jail| {
            jail.set_env("PORTCULLIS_TLS_CERT", "/etc/cert.pem");
            let err = Config::from_figment(Config::figment(Path::new("none.toml"))).unwrap_err();
            assert!(err.to_string().contains("tls_key"), "{err}");
            jail.create_file(
                "p.toml",
                "trusted_proxies = [\"127.0.0.1\", \"10.1.0.0/16\"]\n",
            )?;
            jail.set_env("PORTCULLIS_TLS_CERT", "");
            let config = Config::from_figment(Config::figment(Path::new("p.toml")));
            assert!(config.is_err(), "an empty tls_cert is still a tls_cert");
            Ok(())
        });
        let config = Config {
            trusted_proxies: vec!["127.0.0.1".into(), "fd00::/8".into()],
            ..Config::default()
        };
        assert_eq!(config.proxy_networks().unwrap().len(), 2);
        let bad = Config {
            trusted_proxies: vec!["proxy.local".into()],
            ..Config::default()
        };
        assert_eq!(bad.proxy_networks().unwrap_err(), "proxy.local");
    }

    #[test]
    fn unknown_key_is_an_error_naming_it() {
        Jail::expect_with(|jail| {
            jail.set_env("PORTCULLIS_TOKEN_TTLL", "300");
            let err = Config::from_figment(Config::figment(Path::new("none.toml"))).unwrap_err();
            assert!(err.to_string().contains("token_ttl"), "{err}");
            Ok(())
        });
    }

    #[test]
    fn too_short_ttl_names_the_key() {
        Jail::expect_with(|jail| {
            jail.set_env("PORTCULLIS_TOKEN_TTL", "59");
            let err = Config::from_figment(Config::figment(Path::new("none.toml"))).unwrap_err();
            assert!(err.to_string().contains("token_ttl"), "{err}");
            Ok(())
        });
    }

    #[test]
    fn rules_load_from_the_file_and_errors_name_the_rule() {
        Jail::expect_with(|jail| {
            let good = "[[rules]]\nname = \"library\"\nwho = [\"authenticated\"]\n\
                        repository = \"library/*\"\nallow = [\"pull\"]\n";
            jail.create_file("good.toml", good)?;
            let config = Config::from_figment(Config::figment(Path::new("good.toml"))).unwrap();
            assert_eq!(config.rules.len(), 1);
            let bad = good.replace("pull", "pul");
            jail.create_file("bad.toml", &bad)?;
            let err = Config::from_figment(Config::figment(Path::new("bad.toml"))).unwrap_err();
            assert!(err.to_string().contains("\"library\""), "{err}");
            let unknown = good.replace("allow", "alow");
            jail.create_file("unknown.toml", &unknown)?;
            let err = Config::from_figment(Config::figment(Path::new("unknown.toml"))).unwrap_err();
            assert!(err.to_string().contains("alow"), "{err}");
            Ok(())
        });
    }

    #[test]
    fn malformed_value_names_the_key() {
        Jail::expect_with(|jail| {
            jail.set_env("PORTCULLIS_TOKENS_ONLY", "maybe");
            let err = Config::from_figment(Config::figment(Path::new("none.toml"))).unwrap_err();
            assert!(
                err.to_string().to_lowercase().contains("tokens_only"),
                "{err}"
            );
            Ok(())
        });
    }
}

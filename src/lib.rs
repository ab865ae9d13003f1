//! Portcullis: a token authentication server for private container
//! registries. This crate builds the application so that `main` and the
//! tests start it the same way.

pub mod audit;
pub mod auth;
pub mod backup;
pub mod config;
pub mod control;
pub mod manage;
pub mod metrics;
pub mod registry;
pub mod server;
pub mod store;
pub mod web;

use std::fs;
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::sync::Arc;

use anyhow::Context;

use auth::password::{self, Password};
use auth::{AuthSettings, Authenticator, Now};
use config::Config;
use manage::Manager;
use registry::keys::{self, Keys};
use store::{Store, User};

/// Name of the account created on first start.
pub const INITIAL_ADMIN: &str = "admin";

/// Everything the handlers share.
pub struct AppState {
    pub config: Config,
    pub store: Arc<Store>,
    /// The signing key in use; swapped when its certificate is renewed.
    keys: std::sync::RwLock<Arc<Keys>>,
    pub auth: Authenticator,
    pub manager: Manager,
    /// Who may do what, from the configured rules.
    pub policy: Arc<registry::policy::Policy>,
    /// Reverse proxies whose forwarding headers are believed.
    pub proxies: Vec<ipnet::IpNet>,
    /// Counters and histograms for `/metrics`.
    pub metrics: metrics::Metrics,
    /// Audit events waiting to be written.
    pub audit: audit::Audit,
    /// Secrets of just-created tokens, waiting to be shown once.
    pub secrets: web::stash::SecretStash,
}

impl AppState {
    /// Opens the data directory, creating on first start the database, the
    /// CA, the signing key and the initial admin account.
    pub fn open(config: Config) -> anyhow::Result<AppState> {
        let policy = Arc::new(config.policy()?);
        let proxies = config
            .proxy_networks()
            .map_err(|bad| anyhow::anyhow!("trusted proxy {bad:?}"))?;
        let store = Arc::new(open_store(&config)?);
        let now = Now::real();
        let keys = keys::load_or_create(&config.data_dir, time::OffsetDateTime::now_utc())?;
        create_initial_admin(&store, &config, now.unix)?;

        let settings = AuthSettings {
            tokens_only: config.tokens_only,
            refresh_idle_ttl: config.refresh_idle_ttl as i64,
            refresh_max_ttl: config.refresh_max_ttl as i64,
        };
        let usage = Arc::new(auth::usage::UsageLog::default());
        let audit = audit::Audit::new(Arc::clone(&store));
        let auth = Authenticator::new(Arc::clone(&store), settings, usage)?;
        let manager = Manager::new(Arc::clone(&store), config.token_limit, Arc::clone(&policy));
        Ok(AppState {
            config,
            store,
            keys: std::sync::RwLock::new(Arc::new(keys)),
            auth,
            manager,
            policy,
            audit,
            metrics: metrics::Metrics::default(),
            proxies,
            secrets: web::stash::SecretStash::default(),
        })
    }

    /// The current signing key and certificates.
    pub fn keys(&self) -> Arc<Keys> {
        Arc::clone(&self.keys.read().expect("keys lock"))
    }

    /// Loads the key files again (after `portcullis key …` changed them) and
    /// signs with the result from now on.
    pub fn reload_keys(&self) -> anyhow::Result<()> {
        let keys = keys::load_or_create(&self.config.data_dir, time::OffsetDateTime::now_utc())?;
        let current = self.keys();
        if keys.signer.x5c != current.signer.x5c || keys.ca_pem != current.ca_pem {
            tracing::info!(kid = %keys.signer.kid, "signing keys reloaded");
            *self.keys.write().expect("keys lock") = Arc::new(keys);
        }
        Ok(())
    }

    /// Issues a new certificate for the signing key when the current one is
    /// close to its end, so a long-running server never signs with an
    /// expired certificate.
    pub fn renew_keys_if_due(&self, now: time::OffsetDateTime) -> anyhow::Result<bool> {
        if self.keys().signing_not_after - now >= keys::SIGNING_RENEW_BEFORE {
            return Ok(false);
        }
        let renewed = keys::load_or_create(&self.config.data_dir, now)?;
        *self.keys.write().expect("keys lock") = Arc::new(renewed);
        Ok(true)
    }

    /// Writes remembered last-used times to the store.
    pub fn flush_usage(&self) -> Result<(), store::StoreError> {
        let uses = self.auth.usage.take();
        self.store
            .record_uses(&uses)
            .inspect_err(|_| self.auth.usage.restore(uses.clone()))
    }
}

/// Creates the data directory if needed, readable by its owner only.
pub fn ensure_data_dir(config: &Config) -> anyhow::Result<()> {
    let dir = &config.data_dir;
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .with_context(|| format!("creating the data directory {}", dir.display()))?;
    fs::set_permissions(dir, fs::Permissions::from_mode(0o700))
        .with_context(|| format!("restricting {}", dir.display()))
}

/// Opens the database file in the configured data directory, creating both
/// as needed.
pub fn open_store(config: &Config) -> anyhow::Result<Store> {
    ensure_data_dir(config)?;
    let path = config.data_dir.join(store::DB_FILE);
    Store::open(&path).with_context(|| format!("opening {}", path.display()))
}

fn create_initial_admin(store: &Store, config: &Config, now: i64) -> anyhow::Result<()> {
    let (password, generated) = match &config.admin_password {
        Some(p) => (Password::new(p.clone()), false),
        None => (Password::new(generate_password()), true),
    };
    let user = User {
        name: INITIAL_ADMIN.to_owned(),
        password_hash: Some(password::hash(&password)),
        admin: true,
        disabled: false,
        created: now,
        credential_epoch: 0,
        groups: Vec::new(),
        service: false,
    };
    if store.create_initial_admin(&user)? {
        tracing::info!(user = INITIAL_ADMIN, "initial admin account created");
        if generated {
            // Printed to the terminal once, never to the log.
            eprintln!(
                "\n  Initial admin account created.\n    user:     {INITIAL_ADMIN}\n    \
                 password: {}\n  It is shown only this once: change it after signing in.\n",
                password.expose()
            );
        }
    }
    Ok(())
}

fn generate_password() -> String {
    use rand::Rng;
    rand::rng()
        .sample_iter(&rand::distr::Alphanumeric)
        .take(24)
        .map(char::from)
        .collect()
}

//! `portcullis serve`: the HTTP server, the control socket, the background
//! writer of last-used times and audit events, and an orderly shutdown.

mod http;
pub mod tls;

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use tokio::net::TcpListener;
use tracing::{error, info, warn};

use crate::config::Config;
use crate::store::StoreError;
use crate::{AppState, control, web};

/// How often queued audit events are written.
const TICK: Duration = Duration::from_secs(2);
/// Last-used times are written every this many ticks (30 s).
const USAGE_EVERY_TICKS: u64 = 15;
/// Key files are re-read and the audit log pruned every this many ticks (a
/// minute).
const KEYS_EVERY_TICKS: u64 = 30;
/// Hourly upkeep runs every this many ticks.
const HOURLY_TICKS: u64 = 1800;

/// Runs the server until SIGINT or SIGTERM.
pub async fn serve(config: Config) -> anyhow::Result<()> {
    let state = Arc::new(tokio::task::block_in_place(|| open_state(config))?);
    let config = &state.config;
    let listener = TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("binding {}", config.listen))?;
    info!(
        listen = %listener.local_addr()?,
        realm = %config.realm(),
        service = %config.service,
        issuer = %config.issuer,
        kid = %state.keys().signer.kid,
        "portcullis is serving"
    );

    let (stop, stopping) = tokio::sync::watch::channel(false);
    let control = tokio::spawn({
        let dir = config.data_dir.clone();
        let manager = state.manager.clone();
        let stopping = stopping.clone();
        let reload_state = Arc::clone(&state);
        let reload: control::KeyReload = Arc::new(move || reload_state.reload_keys());
        async move {
            if let Err(e) = control::serve(&dir, manager, reload, stopping).await {
                error!(error = %e, "the control socket stopped; CLI commands will fail while serve runs");
            }
        }
    });
    let upkeep = tokio::spawn(housekeeping(Arc::clone(&state)));
    tokio::spawn(async move {
        shutdown_signal().await;
        let _ = stop.send(true);
    });

    let tls = match (&config.tls_cert, &config.tls_key) {
        (Some(cert), Some(key)) => Some(tokio_rustls::TlsAcceptor::from(tls::server_config(
            cert, key,
        )?)),
        _ => None,
    };
    http::serve(listener, web::router(Arc::clone(&state)), tls, stopping).await;

    info!("shutting down: finishing CLI requests, writing last-used times and audit events");
    let _ = control.await;
    upkeep.abort();
    let _ = std::fs::remove_file(config.data_dir.join(control::SOCKET));
    let flush_state = Arc::clone(&state);
    tokio::task::spawn_blocking(move || {
        flush_state.flush_usage()?;
        flush_state.audit.flush()
    })
    .await??;
    info!("stopped");
    Ok(())
}

/// Background upkeep: audit events every tick, last-used times every
/// fifteenth, and once an hour expired sessions, old audit events and the
/// audit entries for tokens that expired.
async fn housekeeping(state: Arc<AppState>) {
    let mut tick = tokio::time::interval(TICK);
    let mut ticks: u64 = 0;
    loop {
        tick.tick().await;
        ticks += 1;
        blocking(&state, "writing audit events", |s| s.audit.flush()).await;
        if ticks.is_multiple_of(KEYS_EVERY_TICKS) {
            // Picks up key files a CLI command changed but could not announce.
            blocking(&state, "reloading keys", |s| s.reload_keys()).await;
            blocking(&state, "pruning the audit log", prune_audit).await;
        }
        if ticks.is_multiple_of(USAGE_EVERY_TICKS) {
            blocking(&state, "writing last-used times", |s| s.flush_usage()).await;
        }
        if ticks % HOURLY_TICKS == 1 {
            blocking(&state, "hourly upkeep", hourly).await;
        }
    }
}

fn hourly(state: &AppState) -> Result<(), StoreError> {
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let config = &state.config;
    let idle_before = now - config.session_idle_ttl as i64;
    let created_before = now - config.session_max_ttl as i64;
    let sessions = state.store.purge_sessions(idle_before, created_before)?;
    let retention = now - i64::from(config.audit_retention_days) * 86_400;
    let events = state
        .store
        .prune_audit(retention, config.audit_max_events)?;
    if sessions + events > 0 {
        info!(
            sessions.purged = sessions,
            audit.pruned = events,
            "old records removed"
        );
    }
    match state.renew_keys_if_due(time::OffsetDateTime::now_utc()) {
        Ok(true) => info!(kid = %state.keys().signer.kid, "signing certificate renewed"),
        Ok(false) => {}
        Err(e) => error!(error = %e, "renewing the signing certificate failed"),
    }
    for token in state.store.newly_expired(now)? {
        let target = format!("{}/{}", token.user, token.name);
        state.audit.record("", "token.expired", &target, None, None);
    }
    Ok(())
}

/// Keeps the audit log within its age and size limits; run every minute so a
/// burst of events cannot grow the database for long.
fn prune_audit(state: &AppState) -> Result<(), StoreError> {
    let config = &state.config;
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let retention = now - i64::from(config.audit_retention_days) * 86_400;
    let pruned = state
        .store
        .prune_audit(retention, config.audit_max_events)?;
    if pruned > 0 {
        info!(audit.pruned = pruned, "old audit events removed");
    }
    Ok(())
}

/// Runs store work on the blocking pool; failures are logged and retried on
/// the next round.
async fn blocking<E: std::fmt::Display + Send + 'static>(
    state: &Arc<AppState>,
    what: &'static str,
    work: impl FnOnce(&AppState) -> Result<(), E> + Send + 'static,
) {
    let state = Arc::clone(state);
    match tokio::task::spawn_blocking(move || work(&state)).await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => warn!(error = %e, "{what} failed; will retry"),
        Err(e) => warn!(error = %e, "{what} panicked"),
    }
}

/// Opens the application state, waiting a few seconds if a CLI command
/// holds the database (it opens it directly while no server runs).
fn open_state(config: Config) -> anyhow::Result<AppState> {
    let mut attempts = 0;
    loop {
        match AppState::open(config.clone()) {
            Err(e) if attempts < 50 && is_already_open(&e) => {
                attempts += 1;
                std::thread::sleep(Duration::from_millis(100));
            }
            result => return result,
        }
    }
}

fn is_already_open(error: &anyhow::Error) -> bool {
    matches!(
        error.downcast_ref::<StoreError>(),
        Some(StoreError::AlreadyOpen)
    )
}

async fn shutdown_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate()).expect("installing a SIGTERM handler");
    tokio::select! {
        _ = tokio::signal::ctrl_c() => info!("SIGINT received"),
        _ = term.recv() => info!("SIGTERM received"),
    }
}

//! `portcullis serve`: the HTTP server, the control socket, the background
//! writer of last-used times, and an orderly shutdown.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use tokio::net::TcpListener;
use tracing::{error, info, warn};

use crate::config::Config;
use crate::{AppState, control, web};

/// How often remembered last-used times are written.
const USAGE_FLUSH_EVERY: Duration = Duration::from_secs(30);
/// Expired sessions are removed every this many flushes (an hour).
const SESSION_PURGE_EVERY_TICKS: u64 = 120;

/// Runs the server until SIGINT or SIGTERM.
pub async fn serve(config: Config) -> anyhow::Result<()> {
    let state = Arc::new(tokio::task::block_in_place(|| AppState::open(config))?);
    let config = &state.config;
    let listener = TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("binding {}", config.listen))?;
    info!(
        listen = %listener.local_addr()?,
        realm = %config.realm(),
        service = %config.service,
        issuer = %config.issuer,
        kid = %state.keys.signer.kid,
        "portcullis is serving"
    );

    let control = tokio::spawn({
        let dir = config.data_dir.clone();
        let manager = state.manager.clone();
        async move {
            if let Err(e) = control::serve(&dir, manager).await {
                error!(error = %e, "the control socket stopped; CLI commands will fail while serve runs");
            }
        }
    });
    let flusher = tokio::spawn(flush_periodically(Arc::clone(&state)));

    let app = web::router(Arc::clone(&state)).into_make_service_with_connect_info::<SocketAddr>();
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown_signal())
        .await?;

    info!("shutting down: writing last-used times");
    control.abort();
    flusher.abort();
    let _ = std::fs::remove_file(config.data_dir.join(control::SOCKET));
    let flush_state = Arc::clone(&state);
    tokio::task::spawn_blocking(move || flush_state.flush_usage()).await??;
    info!("stopped");
    Ok(())
}

async fn flush_periodically(state: Arc<AppState>) {
    let mut tick = tokio::time::interval(USAGE_FLUSH_EVERY);
    let mut ticks: u64 = 0;
    loop {
        tick.tick().await;
        ticks += 1;
        if ticks % SESSION_PURGE_EVERY_TICKS == 1 {
            purge_sessions(Arc::clone(&state)).await;
        }
        let state = Arc::clone(&state);
        match tokio::task::spawn_blocking(move || state.flush_usage()).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => warn!(error = %e, "writing last-used times failed; will retry"),
            Err(e) => warn!(error = %e, "the last-used writer panicked"),
        }
    }
}

async fn purge_sessions(state: Arc<AppState>) {
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let idle_before = now - state.config.session_idle_ttl as i64;
    let created_before = now - state.config.session_max_ttl as i64;
    let purge = move || state.store.purge_sessions(idle_before, created_before);
    match tokio::task::spawn_blocking(purge).await {
        Ok(Ok(n)) if n > 0 => info!(sessions.purged = n, "expired sessions removed"),
        Ok(Ok(_)) => {}
        Ok(Err(e)) => warn!(error = %e, "removing expired sessions failed"),
        Err(e) => warn!(error = %e, "the session purge panicked"),
    }
}

async fn shutdown_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate()).expect("installing a SIGTERM handler");
    tokio::select! {
        _ = tokio::signal::ctrl_c() => info!("SIGINT received"),
        _ = term.recv() => info!("SIGTERM received"),
    }
}

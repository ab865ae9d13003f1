//! The HTTP accept loop. axum's own `serve` has no limit on how long a client
//! may take to send its headers, so a few slow clients could hold every
//! connection; this loop sets a header-read timeout, caps open connections,
//! and on shutdown lets in-flight requests finish.
//!
//! Shutting down cuts off no request a client managed to send: connections
//! the kernel completed but we had not accepted yet are accepted and served,
//! then the port is closed (later clients are refused at once rather than
//! reset after the drain), and idle connections get a moment to deliver a
//! request already on its way before they are closed.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::ConnectInfo;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto::Builder;
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, watch};
use tokio_rustls::TlsAcceptor;
use tower::ServiceExt;
use tracing::{debug, warn};

/// A client must send a request's headers within this time.
const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);
/// Most connections served at once; more are closed on arrival.
const MAX_CONNECTIONS: usize = 512;
/// How long in-flight requests get to finish at shutdown.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(30);
/// How long, at shutdown, idle connections may still deliver a request that
/// is already on its way (hyper closes an idle HTTP/1 connection at once,
/// unread request bytes included).
const LINGER: Duration = Duration::from_millis(500);

/// Serves `router` on `listener` until `shutdown` turns true, then waits for
/// in-flight requests to finish.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    tls: Option<TlsAcceptor>,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut builder = Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_READ_TIMEOUT);
    let graceful = GracefulShutdown::new();
    let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));

    let spawn = |stream, peer| {
        spawn_connection(
            stream,
            peer,
            &builder,
            &router,
            tls.as_ref(),
            &graceful,
            &slots,
        );
    };
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    // Out of file descriptors, usually: wait rather than spin.
                    warn!(error = %e, "accepting a connection failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            _ = shutdown.changed() => break,
        };
        spawn(stream, peer);
    }

    for (stream, peer) in accept_backlog(listener) {
        spawn(stream, peer);
    }
    tokio::time::sleep(LINGER).await;
    if tokio::time::timeout(DRAIN_TIMEOUT, graceful.shutdown())
        .await
        .is_err()
    {
        warn!("requests still running after {DRAIN_TIMEOUT:?}; stopping anyway");
    }
}

/// Serves one connection (after a TLS handshake, with `tls`), watched by
/// `graceful`, unless every slot is taken.
fn spawn_connection(
    stream: TcpStream,
    peer: SocketAddr,
    builder: &Builder<TokioExecutor>,
    router: &Router,
    tls: Option<&TlsAcceptor>,
    graceful: &GracefulShutdown,
    slots: &Arc<Semaphore>,
) {
    let Ok(slot) = Arc::clone(slots).try_acquire_owned() else {
        debug!(client.addr = %peer.ip(), "too many connections; closing a new one");
        return;
    };
    let router = router.clone();
    let service = hyper::service::service_fn(move |mut request: hyper::Request<Incoming>| {
        // Handlers read the client's address from here (see `ClientAddr`).
        request.extensions_mut().insert(ConnectInfo(peer));
        router.clone().oneshot(request.map(axum::body::Body::new))
    });
    let (builder, watcher, tls) = (builder.clone(), graceful.watcher(), tls.cloned());
    tokio::spawn(async move {
        let result = match tls {
            None => {
                let connection =
                    builder.serve_connection_with_upgrades(TokioIo::new(stream), service);
                watcher.watch(connection.into_owned()).await
            }
            Some(acceptor) => {
                let handshake = tokio::time::timeout(HEADER_READ_TIMEOUT, acceptor.accept(stream));
                let Ok(Ok(stream)) = handshake.await else {
                    debug!(client.addr = %peer.ip(), "TLS handshake failed or timed out");
                    return;
                };
                let connection =
                    builder.serve_connection_with_upgrades(TokioIo::new(stream), service);
                watcher.watch(connection.into_owned()).await
            }
        };
        if let Err(e) = result {
            debug!(error = %e, "connection ended with an error");
        }
        drop(slot);
    });
}

/// Accepts every connection the kernel has already completed, then closes
/// the listening socket. Such clients have sent, or are sending, a request:
/// dropping the listener with them queued would reset them.
fn accept_backlog(listener: TcpListener) -> Vec<(TcpStream, SocketAddr)> {
    let mut accepted = Vec::new();
    // Non-blocking, so `accept` reports an empty queue instead of waiting.
    let Ok(listener) = listener.into_std() else {
        return accepted;
    };
    while let Ok((stream, peer)) = listener.accept() {
        let stream = stream
            .set_nonblocking(true)
            .and_then(|()| TcpStream::from_std(stream));
        match stream {
            Ok(stream) => accepted.push((stream, peer)),
            Err(e) => debug!(error = %e, "a queued connection could not be served"),
        }
    }
    accepted
}

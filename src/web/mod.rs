//! HTTP routes: the token endpoint, health, the web UI and its assets, and
//! the security headers every response carries.

mod assets;
mod error;
mod form;
mod health;
mod pages;
pub mod session;
pub mod stash;
mod token;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::{ConnectInfo, DefaultBodyLimit, FromRequestParts};
use axum::http::request::Parts;
use axum::http::{HeaderValue, header};
use axum::response::Response;
use axum::routing::get;
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::{DefaultOnResponse, TraceLayer};

pub use error::ApiError;

use crate::AppState;

/// State shared by every handler.
pub type SharedState = Arc<AppState>;

/// Longest time a request may take before it is answered 408.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// The full router.
pub fn router(state: SharedState) -> Router {
    Router::new()
        .route(
            "/v2/token",
            get(token::get)
                .post(token::post)
                .layer(axum::middleware::from_fn_with_state(
                    Arc::clone(&state),
                    token::measure,
                )),
        )
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz))
        .route("/metrics", get(health::metrics))
        .route("/assets/{name}", get(assets::serve))
        .merge(pages::routes())
        .fallback(pages::not_found)
        .layer(axum::middleware::map_response(security_headers))
        .layer(DefaultBodyLimit::max(form::MAX_FORM_LEN))
        .layer(TimeoutLayer::with_status_code(
            axum::http::StatusCode::REQUEST_TIMEOUT,
            REQUEST_TIMEOUT,
        ))
        .layer(
            TraceLayer::new_for_http()
                .make_span_with(|req: &axum::http::Request<_>| {
                    // The path only: query strings are the client's business.
                    tracing::info_span!("request", method = %req.method(), path = %req.uri().path())
                })
                .on_response(DefaultOnResponse::new().level(tracing::Level::INFO)),
        )
        .with_state(state)
}

/// Content-Security-Policy of every response: no inline script or style, no
/// framing, forms post only here.
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; \
                   connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

async fn security_headers(mut response: Response) -> Response {
    let headers = response.headers_mut();
    let set = [
        (header::CONTENT_SECURITY_POLICY, CSP),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::REFERRER_POLICY, "no-referrer"),
        (header::X_FRAME_OPTIONS, "DENY"),
    ];
    for (name, value) in set {
        headers
            .entry(name)
            .or_insert(HeaderValue::from_static(value));
    }
    response
}

/// The client's address: the socket peer, or, when the peer is a trusted
/// proxy, the last address in `X-Forwarded-For` that is not a trusted proxy.
/// Requests built in tests have no peer and count as `0.0.0.0`.
pub struct ClientAddr(pub IpAddr);

impl FromRequestParts<SharedState> for ClientAddr {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &SharedState,
    ) -> Result<Self, Self::Rejection> {
        let peer = peer(parts).unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED));
        Ok(ClientAddr(client_addr(
            peer,
            &parts.headers,
            &state.proxies,
        )))
    }
}

/// The socket peer's address, if the request came over a socket.
fn peer(parts: &Parts) -> Option<IpAddr> {
    parts
        .extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip())
}

/// Whether cookies must carry `Secure`: the public URL is https, or a
/// trusted proxy says the client came over https.
pub struct Https(pub bool);

impl FromRequestParts<SharedState> for Https {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &SharedState,
    ) -> Result<Self, Self::Rejection> {
        let trusted =
            peer(parts).is_some_and(|ip| state.proxies.iter().any(|net| net.contains(&ip)));
        Ok(Https(
            state.config.is_https() || forwarded_https(trusted, &parts.headers),
        ))
    }
}

/// Walks `X-Forwarded-For` from the right while the hop is a trusted proxy.
pub fn client_addr(
    peer: IpAddr,
    headers: &axum::http::HeaderMap,
    proxies: &[ipnet::IpNet],
) -> IpAddr {
    let trusted = |ip: &IpAddr| proxies.iter().any(|net| net.contains(ip));
    if !trusted(&peer) {
        return peer;
    }
    let hops = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .collect::<Vec<_>>();
    let mut client = peer;
    for hop in hops.iter().rev() {
        // A hop may carry a port (`203.0.113.8:4444`, `[2001:db8::1]:443`).
        let parsed = hop
            .parse::<IpAddr>()
            .or_else(|_| hop.parse::<SocketAddr>().map(|s| s.ip()));
        match parsed {
            Ok(ip) if trusted(&ip) => client = ip,
            Ok(ip) => return ip,
            // A hop that is not an address ends what can be believed.
            Err(_) => return client,
        }
    }
    client
}

/// Whether the request reached the first trusted proxy over HTTPS.
pub fn forwarded_https(peer_trusted: bool, headers: &axum::http::HeaderMap) -> bool {
    peer_trusted
        && headers
            .get("x-forwarded-proto")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| {
                v.split(',')
                    .next()
                    .is_some_and(|p| p.trim().eq_ignore_ascii_case("https"))
            })
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderMap;

    #[test]
    fn forwarded_for_is_believed_only_from_trusted_proxies() {
        let proxies: Vec<ipnet::IpNet> = vec!["127.0.0.0/8".parse().unwrap()];
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        let mut headers = HeaderMap::new();
        headers.insert("x-forwarded-for", "203.0.113.9, 127.0.0.5".parse().unwrap());
        assert_eq!(
            client_addr(ip("127.0.0.1"), &headers, &proxies),
            ip("203.0.113.9")
        );
        assert_eq!(
            client_addr(ip("198.51.100.7"), &headers, &proxies),
            ip("198.51.100.7")
        );
        assert_eq!(client_addr(ip("127.0.0.1"), &headers, &[]), ip("127.0.0.1"));
        headers.insert("x-forwarded-for", "[2001:db8::1]:443".parse().unwrap());
        assert_eq!(
            client_addr(ip("127.0.0.1"), &headers, &proxies),
            ip("2001:db8::1")
        );
        headers.insert("x-forwarded-for", "203.0.113.9, garbage".parse().unwrap());
        assert_eq!(
            client_addr(ip("127.0.0.1"), &headers, &proxies),
            ip("127.0.0.1")
        );
        headers.insert("x-forwarded-proto", "https".parse().unwrap());
        assert!(forwarded_https(true, &headers));
        assert!(!forwarded_https(false, &headers));
    }
}

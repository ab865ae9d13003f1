//! Browser sessions: the cookie, the signed-in extractor, CSRF checks.
//!
//! The cookie holds a random id; the store keeps only its SHA-256. Every
//! page load re-reads the session and its user, so a disabled or deleted
//! account is signed out at once.

use axum::extract::{FromRequestParts, OptionalFromRequestParts};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Redirect, Response};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::SharedState;
use super::pages::PageError;
use crate::store::{Flash, FlashKind, Session, User};

/// Cookie holding the session id.
pub const SESSION_COOKIE: &str = "portcullis_session";
/// Cookie holding the sign-in form's CSRF token (before any session exists).
pub const LOGIN_COOKIE: &str = "portcullis_login";
/// `last_seen` is written at most this often, in seconds.
const TOUCH_EVERY: i64 = 60;

/// A request from a signed-in, enabled user.
pub struct SignedIn {
    pub user: User,
    pub session: Session,
    pub hash: [u8; 32],
}

impl SignedIn {
    /// Refuses the request unless `sent` is this session's CSRF token.
    pub fn check_csrf(&self, sent: Option<&str>) -> Result<(), PageError> {
        check_csrf(&self.session.csrf, sent)
    }

    /// Takes the flash message, clearing it in the store.
    pub fn take_flash(&mut self, state: &SharedState) -> Option<Flash> {
        let flash = self.session.flash.take()?;
        if let Err(e) = state.store.save_session(&self.hash, &self.session) {
            tracing::warn!(error = %e, "clearing a flash message failed");
        }
        Some(flash)
    }

    /// Leaves a message for the next page.
    pub fn set_flash(&mut self, state: &SharedState, kind: FlashKind, message: String) {
        self.session.flash = Some(Flash { kind, message });
        if let Err(e) = state.store.save_session(&self.hash, &self.session) {
            tracing::warn!(error = %e, "saving a flash message failed");
        }
    }
}

/// Compares a sent CSRF token with the expected one in constant time.
pub fn check_csrf(expected: &str, sent: Option<&str>) -> Result<(), PageError> {
    let sent = sent.unwrap_or_default();
    let same = !expected.is_empty() && bool::from(expected.as_bytes().ct_eq(sent.as_bytes()));
    if same { Ok(()) } else { Err(PageError::csrf()) }
}

/// Not signed in (or no longer): go to the sign-in page.
pub struct ToLogin;

impl IntoResponse for ToLogin {
    fn into_response(self) -> Response {
        Redirect::to("/login").into_response()
    }
}

impl FromRequestParts<SharedState> for SignedIn {
    type Rejection = ToLogin;

    async fn from_request_parts(parts: &mut Parts, state: &SharedState) -> Result<Self, ToLogin> {
        let id = cookie(&parts.headers, SESSION_COOKIE).ok_or(ToLogin)?;
        let hash = session_hash(id);
        let now = time::OffsetDateTime::now_utc().unix_timestamp();
        let store = &state.store;
        let mut session = store.session(&hash).ok().flatten().ok_or(ToLogin)?;

        let config = &state.config;
        let idle = now - session.last_seen > config.session_idle_ttl as i64;
        let too_old = now - session.created > config.session_max_ttl as i64;
        let user = store.user(&session.user).ok().flatten();
        let Some(user) = user.filter(|u| !u.disabled && !idle && !too_old) else {
            let _ = store.delete_session(&hash);
            return Err(ToLogin);
        };

        if now - session.last_seen >= TOUCH_EVERY {
            session.last_seen = now;
            let _ = store.save_session(&hash, &session);
        }
        Ok(SignedIn {
            user,
            session,
            hash,
        })
    }
}

impl OptionalFromRequestParts<SharedState> for SignedIn {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &SharedState,
    ) -> Result<Option<Self>, Self::Rejection> {
        let signed_in =
            <SignedIn as FromRequestParts<SharedState>>::from_request_parts(parts, state);
        Ok(signed_in.await.ok())
    }
}

/// The store key of a session id.
pub fn session_hash(id: &str) -> [u8; 32] {
    Sha256::digest(id.as_bytes()).into()
}

/// A new random id for a session or a CSRF token: 256 bits, URL-safe.
pub fn random_id() -> String {
    let bytes: [u8; 32] = rand::random();
    data_encoding::BASE64URL_NOPAD.encode(&bytes)
}

/// The value of cookie `name`, if the request carries it.
pub fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

/// A `Set-Cookie` value: HttpOnly, SameSite, Secure on https. `max_age` of
/// zero deletes the cookie.
pub fn set_cookie(
    https: bool,
    name: &str,
    value: &str,
    max_age: u64,
    same_site: &str,
) -> HeaderValue {
    let secure = if https { "; Secure" } else { "" };
    let cookie = format!(
        "{name}={value}; Path=/; Max-Age={max_age}; HttpOnly; SameSite={same_site}{secure}"
    );
    HeaderValue::from_str(&cookie).expect("cookie values are URL-safe")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_cookies_among_several() {
        let mut headers = HeaderMap::new();
        headers.append(
            header::COOKIE,
            HeaderValue::from_static("a=1; portcullis_session=xyz"),
        );
        headers.append(header::COOKIE, HeaderValue::from_static("b=2"));
        assert_eq!(cookie(&headers, SESSION_COOKIE), Some("xyz"));
        assert_eq!(cookie(&headers, "b"), Some("2"));
        assert_eq!(cookie(&headers, "c"), None);
    }

    #[test]
    fn csrf_must_match_exactly() {
        assert!(check_csrf("abc", Some("abc")).is_ok());
        assert!(check_csrf("abc", Some("abd")).is_err());
        assert!(check_csrf("abc", None).is_err());
        assert!(check_csrf("", Some("")).is_err());
    }
}

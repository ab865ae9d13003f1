//! Sign-in and sign-out. Passwords only: an application token typed as a
//! password fails exactly like a wrong password, and so does an unknown user.

use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use maud::{Markup, html};
use serde::Deserialize;

use super::layout::{Chrome, page};
use super::{PageError, PageForm};
use crate::auth::{AuthError, Now};
use crate::store::{Flash, FlashKind, Session};
use crate::web::session::{
    LOGIN_COOKIE, SESSION_COOKIE, SignedIn, check_csrf, cookie, random_id, session_hash, set_cookie,
};
use crate::web::{ClientAddr, Https, SharedState};

/// Lifetime of the sign-in form's CSRF cookie, in seconds.
const LOGIN_FORM_TTL: u64 = 3600;
const INVALID: &str = "Invalid user name or password.";

#[derive(Deserialize)]
pub struct LoginQuery {
    signed_out: Option<String>,
}

/// `GET /login`.
pub async fn show(
    Https(https): Https,
    signed_in: Option<SignedIn>,
    Query(query): Query<LoginQuery>,
) -> Response {
    if signed_in.is_some() {
        return Redirect::to("/").into_response();
    }
    let flash = query.signed_out.map(|_| Flash {
        kind: FlashKind::Success,
        message: "You are signed out.".to_owned(),
    });
    render(https, StatusCode::OK, "", flash)
}

/// `POST /login`.
pub async fn submit(
    State(state): State<SharedState>,
    Https(https): Https,
    ClientAddr(addr): ClientAddr,
    headers: HeaderMap,
    PageForm(form): PageForm,
) -> Result<Response, PageError> {
    check_csrf(
        cookie(&headers, LOGIN_COOKIE).unwrap_or_default(),
        form.get("csrf"),
    )?;
    let username = form.get("username").unwrap_or_default().trim();
    let password = form.get("password").unwrap_or_default();

    let now = Now::real();
    if let Some(wait) = state.auth.throttle.blocked_for(username, addr, now.instant) {
        let flash = Some(error(too_many(wait)));
        return Ok(render(
            https,
            StatusCode::TOO_MANY_REQUESTS,
            username,
            flash,
        ));
    }

    let user = match state.auth.password(username, password, now).await {
        Ok(identity) => identity.user,
        Err(AuthError::Rejected(reason)) => {
            tracing::warn!(client.addr = %addr, reason, "sign-in refused");
            let who = loggable_name(username);
            // Rate-limited per address: failures are the client's to cause.
            if state
                .audit
                .admit_noisy(&format!("failed:{addr}"), now.instant)
            {
                state
                    .audit
                    .record(who, "signin.failure", who, Some(addr), None);
            }
            state.metrics.sign_in(false);
            if let Some(wait) = state.auth.throttle.fail(username, addr, now.instant) {
                let flash = Some(error(too_many(wait)));
                return Ok(render(
                    https,
                    StatusCode::TOO_MANY_REQUESTS,
                    username,
                    flash,
                ));
            }
            let flash = Some(error(INVALID.to_owned()));
            return Ok(render(https, StatusCode::UNAUTHORIZED, username, flash));
        }
        Err(e) => return Err(PageError::internal(e)),
    };
    state.auth.throttle.succeed(username, addr);

    // A fresh id at every sign-in; any session the browser had ends.
    if let Some(old) = cookie(&headers, SESSION_COOKIE) {
        let _ = state.store.delete_session(&session_hash(old));
    }
    let id = random_id();
    let session = Session {
        user: user.name.clone(),
        csrf: random_id(),
        created: now.unix,
        last_seen: now.unix,
        flash: None,
    };
    state
        .store
        .create_session(&session_hash(&id), &session)
        .map_err(PageError::internal)?;
    tracing::info!(user = %user.name, client.addr = %addr, "signed in");
    state
        .audit
        .record(&user.name, "signin.success", &user.name, Some(addr), None);
    state.metrics.sign_in(true);

    let mut response = Redirect::to("/").into_response();
    let cookies = response.headers_mut();
    cookies.append(
        header::SET_COOKIE,
        set_cookie(
            https,
            SESSION_COOKIE,
            &id,
            state.config.session_max_ttl,
            "Lax",
        ),
    );
    cookies.append(
        header::SET_COOKIE,
        set_cookie(https, LOGIN_COOKIE, "", 0, "Strict"),
    );
    Ok(response)
}

/// `POST /logout`.
pub async fn logout(
    State(state): State<SharedState>,
    Https(https): Https,
    signed_in: SignedIn,
    PageForm(form): PageForm,
) -> Result<Response, PageError> {
    signed_in.check_csrf(form.get("csrf"))?;
    state
        .store
        .delete_session(&signed_in.hash)
        .map_err(PageError::internal)?;
    tracing::info!(user = %signed_in.user.name, "signed out");
    let mut response = Redirect::to("/login?signed_out=1").into_response();
    let cleared = set_cookie(https, SESSION_COOKIE, "", 0, "Lax");
    response.headers_mut().append(header::SET_COOKIE, cleared);
    Ok(response)
}

/// A typed user name is recorded only when it is a valid one: people
/// sometimes type their password into the user field.
fn loggable_name(username: &str) -> &str {
    if crate::manage::validate_user_name(username).is_ok() {
        username
    } else {
        ""
    }
}

fn too_many(wait: std::time::Duration) -> String {
    format!(
        "Too many failed sign-ins. Try again in {} seconds.",
        wait.as_secs().max(1)
    )
}

fn error(message: String) -> Flash {
    Flash {
        kind: FlashKind::Error,
        message,
    }
}

/// The sign-in page with a fresh form token in a cookie.
fn render(https: bool, status: StatusCode, username: &str, flash: Option<Flash>) -> Response {
    let csrf = random_id();
    let chrome = Chrome {
        flash: flash.as_ref(),
        ..Chrome::default()
    };
    let body = page("Sign in", chrome, form(username, &csrf));
    let mut response = (status, body).into_response();
    let cookie = set_cookie(https, LOGIN_COOKIE, &csrf, LOGIN_FORM_TTL, "Strict");
    response.headers_mut().append(header::SET_COOKIE, cookie);
    response
}

fn form(username: &str, csrf: &str) -> Markup {
    html! {
        div.card.narrow {
            h1 { "Sign in" }
            p.muted { "Use your account password. Application tokens work only with " code { "docker login" } "." }
            form #login-form method="post" action="/login" {
                input type="hidden" name="csrf" value=(csrf);
                div.field {
                    label for="username" { "User name" }
                    input #username type="text" name="username" value=(username)
                        autocomplete="username" autocapitalize="none" spellcheck="false"
                        required autofocus[username.is_empty()];
                }
                div.field {
                    label for="password" { "Password" }
                    input #password type="password" name="password"
                        autocomplete="current-password" required autofocus[!username.is_empty()];
                }
                button #login-submit type="submit" { "Sign in" }
            }
        }
    }
}

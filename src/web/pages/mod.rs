//! The web UI: sign-in, the profile page with application tokens and docker
//! logins, password change, and the admin pages. Server-rendered with maud;
//! works without JavaScript. Application tokens are never accepted here.

mod admin;
mod layout;
mod login;
mod profile;
mod tokens;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use maud::html;

use super::SharedState;
use super::form::Form;

/// Routes of the pages.
pub fn routes() -> Router<SharedState> {
    Router::new()
        .route("/", get(profile::show))
        .route("/login", get(login::show).post(login::submit))
        .route("/logout", post(login::logout))
        .route("/password", post(profile::change_password))
        .route("/tokens", post(tokens::create))
        .route("/tokens/created", get(tokens::created))
        .route(
            "/tokens/{id}/remove",
            get(tokens::confirm_remove).post(tokens::remove),
        )
        .route("/logins/{id}/revoke", post(tokens::revoke_login))
        .merge(admin::routes())
}

/// An error shown as a page.
#[derive(Debug)]
pub struct PageError {
    status: StatusCode,
    title: &'static str,
    message: String,
}

impl PageError {
    pub fn new(status: StatusCode, title: &'static str, message: impl Into<String>) -> Self {
        PageError {
            status,
            title,
            message: message.into(),
        }
    }

    /// 403 for a form without the right CSRF token. Nothing was changed.
    pub fn csrf() -> Self {
        PageError::new(
            StatusCode::FORBIDDEN,
            "Form expired",
            "This form was not accepted: it is out of date or did not come from this site. \
             Nothing was changed. Go back, reload the page and try again.",
        )
    }

    /// 500; the detail goes to the log, not the page.
    pub fn internal(error: impl std::fmt::Display) -> Self {
        tracing::error!(error = %error, "page failed");
        PageError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "Something went wrong",
            "The server could not complete this request. The details are in its log.",
        )
    }

    pub fn not_found() -> Self {
        PageError::new(
            StatusCode::NOT_FOUND,
            "Not found",
            "There is no page at this address.",
        )
    }
}

impl IntoResponse for PageError {
    fn into_response(self) -> Response {
        let content = html! {
            div.card.narrow {
                h1 { (self.title) }
                p { (self.message) }
                p { a href="/" { "Back to your tokens" } }
            }
        };
        (
            self.status,
            layout::page(self.title, layout::Chrome::default(), content),
        )
            .into_response()
    }
}

/// The fallback for unknown paths.
pub async fn not_found() -> PageError {
    PageError::not_found()
}

/// A form body, parsed strictly (UTF-8, bounded).
pub struct PageForm(pub Form);

impl<S: Send + Sync> FromRequest<S> for PageForm {
    type Rejection = PageError;

    async fn from_request(req: Request, state: &S) -> Result<Self, PageError> {
        let bad = |m: String| PageError::new(StatusCode::BAD_REQUEST, "Bad request", m);
        let body = Bytes::from_request(req, state)
            .await
            .map_err(|e| bad(e.body_text()))?;
        Form::parse(&body)
            .map(PageForm)
            .map_err(|e| bad(e.to_string()))
    }
}

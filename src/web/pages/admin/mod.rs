//! The admin pages: users and service accounts, every application token,
//! groups, the audit log. Only administrators see them; to anyone else who is
//! signed in every `/admin` address is "not found".

mod account;
mod audit;
mod groups;
mod tokens;
mod users;

use axum::Router;
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use maud::{Markup, html};

use super::PageError;
use super::layout::{Chrome, page};
use crate::store::{Flash, FlashKind};
use crate::web::SharedState;
use crate::web::session::SignedIn;

/// Routes of the admin pages.
pub fn routes() -> Router<SharedState> {
    Router::new()
        .route(
            "/admin",
            get(|_: Admin| async { Redirect::to("/admin/users") }),
        )
        .route("/admin/users", get(users::list).post(users::create))
        .route("/admin/users/{name}", get(account::show))
        .route("/admin/users/{name}/change", post(account::change))
        .route(
            "/admin/users/{name}/password",
            post(account::reset_password),
        )
        .route(
            "/admin/users/{name}/delete",
            get(account::confirm_delete).post(account::delete),
        )
        .route("/admin/users/{name}/tokens", post(tokens::issue))
        .route("/admin/tokens", get(tokens::list))
        .route("/admin/tokens/{id}/revoke", post(tokens::revoke))
        .route("/admin/groups", get(groups::list).post(groups::create))
        .route("/admin/groups/{name}/delete", post(groups::delete))
        .route("/admin/groups/{name}/members", post(groups::add_member))
        .route(
            "/admin/groups/{name}/members/{user}/remove",
            post(groups::remove_member),
        )
        .route("/admin/audit", get(audit::show))
}

/// A request from a signed-in administrator. A visitor who is not signed in
/// is sent to sign in, like on every page; a signed-in non-admin gets 404.
pub struct Admin(pub SignedIn);

impl FromRequestParts<SharedState> for Admin {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &SharedState) -> Result<Self, Response> {
        let signed_in =
            <SignedIn as FromRequestParts<SharedState>>::from_request_parts(parts, state)
                .await
                .map_err(IntoResponse::into_response)?;
        if !signed_in.user.admin {
            return Err(PageError::not_found().into_response());
        }
        Ok(Admin(signed_in))
    }
}

/// The sections of the admin pages, as tabs.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Section {
    Users,
    Tokens,
    Groups,
    Audit,
}

/// An admin page: the site frame, the section tabs, then `content`.
fn admin_page(
    title: &str,
    section: Section,
    signed_in: &SignedIn,
    flash: Option<&Flash>,
    content: Markup,
) -> Markup {
    let chrome = Chrome {
        user: Some(&signed_in.user),
        csrf: Some(&signed_in.session.csrf),
        flash,
    };
    let tabs = [
        (Section::Users, "/admin/users", "Users"),
        (Section::Tokens, "/admin/tokens", "Tokens"),
        (Section::Groups, "/admin/groups", "Groups"),
        (Section::Audit, "/admin/audit", "Audit log"),
    ];
    let content = html! {
        nav.tabs aria-label="Administration" {
            @for (tab, href, label) in tabs {
                a href=(href) aria-current=[(tab == section).then_some("page")] { (label) }
            }
        }
        (content)
    };
    page(title, chrome, content)
}

/// Leaves a message for the next page and goes there.
fn done(
    state: &SharedState,
    signed_in: &mut SignedIn,
    kind: FlashKind,
    message: String,
    to: &str,
) -> Response {
    signed_in.set_flash(state, kind, message);
    Redirect::to(to).into_response()
}

/// A management error's message as a sentence for the page.
fn sentence(message: &str) -> String {
    let mut chars = message.chars();
    let first = chars
        .next()
        .map(|c| c.to_uppercase().to_string())
        .unwrap_or_default();
    let rest = chars.as_str().trim_end_matches('.');
    format!("{first}{rest}.")
}

fn now() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

//! The frame every page shares: head, header with the account menu, flash.

use maud::{DOCTYPE, Markup, html};
use time::OffsetDateTime;

use crate::store::{Flash, User};
use crate::web::assets;

/// What the frame needs to know about the visitor.
#[derive(Default, Clone, Copy)]
pub struct Chrome<'a> {
    pub user: Option<&'a User>,
    /// The session's CSRF token, for the sign-out form.
    pub csrf: Option<&'a str>,
    pub flash: Option<&'a Flash>,
}

/// A whole HTML page around `content`.
pub fn page(title: &str, chrome: Chrome<'_>, content: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                meta name="color-scheme" content="light dark";
                title { (title) " · Portcullis" }
                link rel="stylesheet" href=(assets::url("style.css"));
                link rel="icon" type="image/svg+xml" href=(assets::url("favicon.svg"));
                script src=(assets::url("app.js")) defer {}
            }
            body {
                header.site {
                    div.wrap {
                        a.brand href="/" {
                            img src=(assets::url("favicon.svg")) alt="";
                            "Portcullis"
                        }
                        @if let (Some(user), Some(csrf)) = (chrome.user, chrome.csrf) {
                            nav.account aria-label="Account" {
                                @if user.admin { a #admin-link href="/admin/users" { "Admin" } }
                                span { span.who-label { "Signed in as " } strong { (user.name) } }
                                form #logout-form method="post" action="/logout" {
                                    input type="hidden" name="csrf" value=(csrf);
                                    button #logout .link type="submit" { "Sign out" }
                                }
                            }
                        }
                    }
                }
                main.wrap {
                    @if let Some(flash) = chrome.flash {
                        div class=(format!("flash {}", flash.kind.class())) role="status" {
                            (flash.message)
                        }
                    }
                    (content)
                }
            }
        }
    }
}

/// A time for people: `2026-12-03 16:20 UTC`, in a `<time>` element.
pub fn when(unix: i64) -> Markup {
    let at = OffsetDateTime::from_unix_timestamp(unix).unwrap_or(OffsetDateTime::UNIX_EPOCH);
    let machine = at
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default();
    let format = time::macros::format_description!("[year]-[month]-[day] [hour]:[minute] UTC");
    html! { time datetime=(machine) { (at.format(&format).unwrap_or_default()) } }
}

/// A time or "never".
pub fn maybe_when(unix: Option<i64>, none: &str) -> Markup {
    match unix {
        Some(t) => when(t),
        None => html! { span.muted { (none) } },
    }
}

/// An error message under a form field, if there is one for `field`.
pub fn field_error(errors: &[(&'static str, String)], field: &str) -> Markup {
    html! {
        @for (_, message) in errors.iter().filter(|(f, _)| *f == field) {
            p.error id=(format!("{field}-error")) { (message) }
        }
    }
}

/// Whether `field` has an error (for `aria-invalid`).
pub fn invalid(errors: &[(&'static str, String)], field: &str) -> &'static str {
    if errors.iter().any(|(f, _)| *f == field) {
        "true"
    } else {
        "false"
    }
}

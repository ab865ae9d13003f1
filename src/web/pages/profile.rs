//! The profile page: application tokens, docker logins, password change.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use maud::{Markup, html};

use super::layout::{Chrome, field_error, invalid, maybe_when, page, when};
use super::{PageError, PageForm};
use crate::auth::password::Password;
use crate::auth::{AuthError, Now};
use crate::manage::ManageError;
use crate::store::FlashKind;
use crate::store::{AppToken, AuditEvent, AuditFilter, RefreshToken};
use crate::web::session::SignedIn;
use crate::web::{ClientAddr, SharedState};

/// How many of their own audit events a user sees.
const RECENT_EVENTS: usize = 10;

/// Field errors: (field name, message for a person).
pub type Errors = Vec<(&'static str, String)>;

/// What the create form shows again after a failed submission.
#[derive(Default)]
pub struct CreateForm {
    pub name: String,
    pub access: String,
    pub expiry: String,
    pub expiry_date: String,
    pub repositories: String,
    pub errors: Errors,
}

/// `GET /`.
pub async fn show(
    State(state): State<SharedState>,
    mut signed_in: SignedIn,
) -> Result<Response, PageError> {
    let flash = signed_in.take_flash(&state);
    let chrome = Chrome {
        flash: flash.as_ref(),
        ..Chrome::default()
    };
    render(
        &state,
        &signed_in,
        chrome,
        StatusCode::OK,
        &CreateForm::default(),
        &Errors::new(),
    )
}

/// Renders the profile page, with whatever a failed form left to show.
pub fn render(
    state: &SharedState,
    signed_in: &SignedIn,
    chrome: Chrome<'_>,
    status: StatusCode,
    create: &CreateForm,
    password_errors: &Errors,
) -> Result<Response, PageError> {
    let name = &signed_in.user.name;
    let tokens = state.store.tokens_of(name).map_err(PageError::internal)?;
    let logins = state
        .store
        .refresh_tokens_of(name)
        .map_err(PageError::internal)?;
    // Show the visitor's latest actions too, not only those already written.
    if let Err(e) = state.audit.flush() {
        tracing::warn!(error = %e, "writing audit events failed");
    }
    let mine = AuditFilter {
        user: Some(name.clone()),
        ..AuditFilter::default()
    };
    let events = state
        .store
        .audit_events(&mine, RECENT_EVENTS)
        .map_err(PageError::internal)?;
    let csrf = signed_in.session.csrf.as_str();
    let limit = state.config.token_limit as usize;
    let chrome = Chrome {
        user: Some(&signed_in.user),
        csrf: Some(csrf),
        ..chrome
    };

    let content = html! {
        h1 { (name) }
        p.muted {
            "Application tokens let " code { "docker login" } " and other registry clients work "
            "without your password. Create one per machine or job, and remove it when it is no longer used."
        }
        (tokens_card(&tokens, limit, now()))
        (create_card(create, tokens.len() >= limit, limit, csrf))
        (logins_card(&logins, csrf))
        (password_card(password_errors, csrf))
        (activity_card(&events))
    };
    Ok((status, page("Your tokens", chrome, content)).into_response())
}

fn now() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

fn tokens_card(tokens: &[AppToken], limit: usize, now: i64) -> Markup {
    html! {
        section.card aria-labelledby="tokens-heading" {
            h2 #tokens-heading {
                "Application tokens"
                span.count #token-count { (tokens.len()) " of " (limit) }
            }
            @if tokens.is_empty() {
                p.muted #no-tokens { "You have no application tokens yet." }
            } @else {
                div.table-wrap {
                    table #tokens .stack {
                        thead { tr { th { "Name" } th { "Access" } th { "Created" } th { "Last used" } th { "Expires" } th { span.visually-hidden { "Actions" } } } }
                        tbody {
                            @for token in tokens {
                                tr data-token-name=(token.name) {
                                    td data-label="Name" { strong { (token.name) } }
                                    td data-label="Access" { span.badge { (access_label(token.access.as_str())) } }
                                    td data-label="Created" { (when(token.created)) }
                                    td data-label="Last used" {
                                        (maybe_when(token.last_used, "never"))
                                        @if let Some(addr) = &token.last_used_addr { span.sub { "from " (addr) } }
                                    }
                                    td data-label="Expires" {
                                        @if token.is_expired(now) { strong { "expired " } }
                                        (maybe_when(token.expires, "never"))
                                    }
                                    td {
                                        a.remove-token href=(format!("/tokens/{}/remove", token.id)) aria-label=(format!("Remove token {}", token.name)) { "Remove" }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// The access level as the form offers it.
pub fn access_label(level: &str) -> &'static str {
    match level {
        "pull" => "pull",
        "push" => "pull + push",
        _ => "pull + push + delete",
    }
}

fn create_card(form: &CreateForm, at_limit: bool, limit: usize, csrf: &str) -> Markup {
    let noun = if limit == 1 { "token" } else { "tokens" };
    html! {
        section.card aria-labelledby="create-heading" {
            h2 #create-heading { "Create new token" }
            @if at_limit {
                p.flash.error #limit-reached {
                    "You have " (limit) " " (noun) ", the most allowed. Remove one you no longer use to create another."
                }
            }
            (field_error(&form.errors, "form"))
            form #create-token-form method="post" action="/tokens" {
                input type="hidden" name="csrf" value=(csrf);
                fieldset disabled[at_limit] {
                    (token_fields(form, "e.g. laptop", "e.g. alice/app, alice/tools/*", "you"))
                    button #create-token-submit type="submit" { "Create token" }
                }
            }
        }
    }
}

/// The fields of a token form (name, access, expiry, repository limit),
/// shared by the profile page and the admin pages. `who` is whose access an
/// empty limit means: "you", "the account".
pub(crate) fn token_fields(
    form: &CreateForm,
    name_example: &str,
    limit_example: &str,
    who: &str,
) -> Markup {
    let errors = &form.errors;
    let access = if form.access.is_empty() {
        "pull"
    } else {
        form.access.as_str()
    };
    let expiry = if form.expiry.is_empty() {
        "90"
    } else {
        form.expiry.as_str()
    };
    html! {
        div.row {
            div.field {
                label for="token-name" { "Name" }
                input #token-name type="text" name="name" value=(form.name) maxlength="64" required
                    placeholder=(name_example) aria-invalid=(invalid(errors, "name"))
                    aria-describedby="name-error";
                (field_error(errors, "name"))
            }
            div.field {
                label for="token-access" { "Access" }
                select #token-access name="access" aria-invalid=(invalid(errors, "access")) {
                    @for (value, label) in [("pull", "pull"), ("push", "pull + push"), ("delete", "pull + push + delete")] {
                        option value=(value) selected[access == value] { (label) }
                    }
                }
                (field_error(errors, "access"))
            }
            div.field {
                label for="token-expiry" { "Expires" }
                select #token-expiry name="expiry" aria-invalid=(invalid(errors, "expiry")) {
                    @for (value, label) in [("never", "never"), ("30", "in 30 days"), ("90", "in 90 days"), ("date", "on a date…")] {
                        option value=(value) selected[expiry == value] { (label) }
                    }
                }
                (field_error(errors, "expiry"))
            }
            div.field #expiry-date-field {
                label for="token-expiry-date" { "Expiry date (UTC)" }
                input #token-expiry-date type="date" name="expiry_date" value=(form.expiry_date)
                    aria-invalid=(invalid(errors, "expiry_date"));
                p.hint { "Used when Expires is “on a date”. The token stops at the end of that day." }
                (field_error(errors, "expiry_date"))
            }
        }
        div.field {
            label for="token-repositories" { "Limit to repositories (optional)" }
            input #token-repositories type="text" name="repositories" value=(form.repositories)
                placeholder=(limit_example) aria-invalid=(invalid(errors, "repositories"))
                aria-describedby="repositories-hint";
            p.hint #repositories-hint {
                "Separate patterns with commas; " code { "*" } " matches anything. Empty: every repository "
                (who) " may use."
            }
            (field_error(errors, "repositories"))
        }
    }
}

fn logins_card(logins: &[RefreshToken], csrf: &str) -> Markup {
    html! {
        section.card aria-labelledby="logins-heading" {
            h2 #logins-heading { "Docker logins" }
            p.muted { "Clients that signed in with " code { "docker login" } " and keep a refresh token instead of a password." }
            @if logins.is_empty() {
                p.muted #no-logins { "No docker logins." }
            } @else {
                div.table-wrap {
                    table #docker-logins .stack {
                        thead { tr { th { "Client" } th { "Obtained with" } th { "Created" } th { "Last used" } th { span.visually-hidden { "Actions" } } } }
                        tbody {
                            @for login in logins {
                                tr data-login-id=(login.id) {
                                    td data-label="Client" { (login.client_id) }
                                    td data-label="Obtained with" { @if login.app_token.is_some() { "application token" } @else { "password" } }
                                    td data-label="Created" { (when(login.created)) }
                                    td data-label="Last used" {
                                        (when(login.last_used))
                                        @if let Some(addr) = &login.last_used_addr { span.sub { "from " (addr) } }
                                    }
                                    td {
                                        form method="post" action=(format!("/logins/{}/revoke", login.id)) {
                                            input type="hidden" name="csrf" value=(csrf);
                                            button.secondary type="submit" { "Revoke" }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

fn activity_card(events: &[AuditEvent]) -> Markup {
    html! {
        section.card aria-labelledby="activity-heading" {
            h2 #activity-heading { "Recent activity" }
            @if events.is_empty() {
                p.muted { "Nothing recorded yet." }
            } @else {
                div.table-wrap {
                    table #activity .stack {
                        thead { tr { th { "When" } th { "What" } th { "Concerning" } th { "By" } th { "From" } } }
                        tbody {
                            @for e in events {
                                tr {
                                    td data-label="When" { (when(e.at)) }
                                    td data-label="What" { code { (e.action) } }
                                    td data-label="Concerning" { (e.target) }
                                    td data-label="By" { @if e.actor.is_empty() { span.muted { "system" } } @else { (e.actor) } }
                                    td data-label="From" { (e.addr.as_deref().unwrap_or("")) }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

fn password_card(errors: &Errors, csrf: &str) -> Markup {
    html! {
        section.card aria-labelledby="password-heading" {
            h2 #password-heading { "Change password" }
            p.muted { "Changing your password signs out your other browser sessions and revokes every docker login. Application tokens keep working." }
            form #password-form method="post" action="/password" {
                input type="hidden" name="csrf" value=(csrf);
                input type="text" name="username" autocomplete="username" hidden;
                div.row {
                    div.field {
                        label for="current-password" { "Current password" }
                        input #current-password type="password" name="current_password" autocomplete="current-password" required aria-invalid=(invalid(errors, "current_password"));
                        (field_error(errors, "current_password"))
                    }
                    div.field {
                        label for="new-password" { "New password (8 characters or more)" }
                        input #new-password type="password" name="new_password" autocomplete="new-password" minlength="8" required aria-invalid=(invalid(errors, "new_password"));
                        (field_error(errors, "new_password"))
                    }
                    div.field {
                        label for="confirm-password" { "Repeat new password" }
                        input #confirm-password type="password" name="confirm_password" autocomplete="new-password" required aria-invalid=(invalid(errors, "confirm_password"));
                        (field_error(errors, "confirm_password"))
                    }
                }
                button #password-submit type="submit" { "Change password" }
            }
        }
    }
}

/// `POST /password`.
pub async fn change_password(
    State(state): State<SharedState>,
    ClientAddr(addr): ClientAddr,
    mut signed_in: SignedIn,
    PageForm(form): PageForm,
) -> Result<Response, PageError> {
    signed_in.check_csrf(form.get("csrf"))?;
    let current = form.get("current_password").unwrap_or_default();
    let new = Password::new(form.get("new_password").unwrap_or_default());
    let confirm = form.get("confirm_password").unwrap_or_default();
    let name = signed_in.user.name.clone();

    let now = Now::real();
    let mut errors = Errors::new();
    if let Some(wait) = state.auth.throttle.blocked_for(&name, addr, now.instant) {
        errors.push((
            "current_password",
            format!(
                "Too many failed attempts. Try again in {} seconds.",
                wait.as_secs().max(1)
            ),
        ));
    } else {
        match state.auth.password(&name, current, now).await {
            Ok(_) => {}
            Err(AuthError::Rejected(_)) => {
                state.auth.throttle.fail(&name, addr, now.instant);
                errors.push((
                    "current_password",
                    "This is not your current password.".to_owned(),
                ));
            }
            Err(e) => return Err(PageError::internal(e)),
        }
    }
    if let Err(rule) = new.validate_new() {
        errors.push(("new_password", capitalize(rule)));
    } else if new.expose() != confirm {
        errors.push((
            "confirm_password",
            "The two new passwords differ.".to_owned(),
        ));
    }
    if !errors.is_empty() {
        let status = StatusCode::UNPROCESSABLE_ENTITY;
        return render(
            &state,
            &signed_in,
            Chrome::default(),
            status,
            &CreateForm::default(),
            &errors,
        );
    }

    let manager = state.manager.clone();
    let (target, keep) = (name.clone(), signed_in.hash);
    let change =
        tokio::task::spawn_blocking(move || manager.change_password(&target, &new, Some(&keep)))
            .await
            .map_err(PageError::internal)?
            .map_err(|e: ManageError| PageError::internal(e))?;
    let (sessions, logins) = (change.sessions_ended, change.logins_revoked);
    tracing::info!(user = %name, sessions.ended = sessions, logins.revoked = logins, "password changed");
    let detail = format!("{sessions} other sessions ended, {logins} docker logins revoked");
    state.audit.record(
        &name,
        "user.password_changed",
        &name,
        Some(addr),
        Some(detail),
    );

    let message = format!(
        "Password changed. {} other session{} signed out and {} docker login{} revoked.",
        sessions,
        if sessions == 1 { " was" } else { "s were" },
        logins,
        if logins == 1 { " was" } else { "s were" },
    );
    signed_in.set_flash(&state, FlashKind::Success, message);
    Ok(Redirect::to("/").into_response())
}

fn capitalize(rule: &str) -> String {
    let mut chars = rule.chars();
    let first = chars
        .next()
        .map(|c| c.to_uppercase().to_string())
        .unwrap_or_default();
    format!("{first}{}.", chars.as_str())
}

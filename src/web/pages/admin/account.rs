//! `/admin/users/{name}`: one account, what can be done to it (disable or
//! enable, grant or remove admin, reset the password, delete), and its
//! application tokens. No admin can do these to their own account, so no
//! admin can lock themselves out by mistake.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use maud::{Markup, html};

use super::{Admin, Section, admin_page, done, sentence};
use crate::auth::password::Password;
use crate::manage::ManageError;
use crate::store::{Flash, FlashKind, StoreError, User};
use crate::web::pages::layout::{field_error, invalid, when};
use crate::web::pages::profile::{CreateForm, Errors};
use crate::web::pages::{PageError, PageForm};
use crate::web::session::SignedIn;
use crate::web::{ClientAddr, SharedState};

/// What the page's forms show again after a failed submission.
#[derive(Default)]
pub(super) struct Forms {
    pub password_errors: Errors,
    pub token: CreateForm,
}

/// `GET /admin/users/{name}`.
pub async fn show(
    State(state): State<SharedState>,
    Admin(mut signed_in): Admin,
    Path(name): Path<String>,
) -> Result<Response, PageError> {
    let user = find_user(&state, &name)?;
    let flash = signed_in.take_flash(&state);
    let forms = Forms::default();
    render(
        &state,
        &signed_in,
        flash.as_ref(),
        &user,
        &forms,
        StatusCode::OK,
    )
}

/// A change of an account's standing, chosen by the button pressed.
#[derive(Clone, Copy)]
enum Change {
    Disable,
    Enable,
    GrantAdmin,
    RemoveAdmin,
}

impl Change {
    fn parse(value: &str) -> Option<Change> {
        Some(match value {
            "disable" => Change::Disable,
            "enable" => Change::Enable,
            "grant-admin" => Change::GrantAdmin,
            "remove-admin" => Change::RemoveAdmin,
            _ => return None,
        })
    }

    /// The audit action.
    fn action(self) -> &'static str {
        match self {
            Change::Disable => "user.disabled",
            Change::Enable => "user.enabled",
            Change::GrantAdmin => "user.admin_granted",
            Change::RemoveAdmin => "user.admin_removed",
        }
    }

    fn message(self, name: &str) -> String {
        match self {
            Change::Disable => format!(
                "“{name}” is disabled: their sessions have ended and their tokens are refused \
                 from their next request."
            ),
            Change::Enable => format!("“{name}” is enabled again."),
            Change::GrantAdmin => format!("“{name}” is now an administrator."),
            Change::RemoveAdmin => format!("“{name}” is no longer an administrator."),
        }
    }
}

/// `POST /admin/users/{name}/change`: disable, enable, grant or remove admin.
pub async fn change(
    State(state): State<SharedState>,
    ClientAddr(addr): ClientAddr,
    Admin(mut signed_in): Admin,
    Path(name): Path<String>,
    PageForm(form): PageForm,
) -> Result<Response, PageError> {
    signed_in.check_csrf(form.get("csrf"))?;
    let change = form.get("change").and_then(Change::parse);
    let change = change.ok_or_else(|| bad_request("Unknown change."))?;
    let back = match form.get("back") {
        Some("list") => "/admin/users".to_owned(),
        _ => format!("/admin/users/{name}"),
    };

    let user = find_user(&state, &name)?;
    if user.name == signed_in.user.name {
        let message = "You cannot change your own account here: ask another administrator.";
        return Ok(done(
            &state,
            &mut signed_in,
            FlashKind::Error,
            message.into(),
            &back,
        ));
    }

    let manager = &state.manager;
    let changed = match change {
        Change::Disable => manager.set_disabled(&name, true),
        Change::Enable => manager.set_disabled(&name, false),
        Change::GrantAdmin => manager.set_admin(&name, true),
        Change::RemoveAdmin => manager.set_admin(&name, false),
    };
    match changed {
        Ok(_) => {}
        Err(ManageError::Invalid(m) | ManageError::Store(StoreError::Conflict(m))) => {
            return Ok(done(
                &state,
                &mut signed_in,
                FlashKind::Error,
                sentence(&m),
                &back,
            ));
        }
        Err(e) => return Err(PageError::internal(e)),
    }
    let actor = signed_in.user.name.clone();
    tracing::info!(user = %name, admin = %actor, action = change.action(), "account changed");
    state
        .audit
        .record(&actor, change.action(), &name, Some(addr), None);

    let message = change.message(&name);
    Ok(done(
        &state,
        &mut signed_in,
        FlashKind::Success,
        message,
        &back,
    ))
}

/// `POST /admin/users/{name}/password`: sets a new password for a person,
/// ending their sessions and docker logins.
pub async fn reset_password(
    State(state): State<SharedState>,
    ClientAddr(addr): ClientAddr,
    Admin(mut signed_in): Admin,
    Path(name): Path<String>,
    PageForm(form): PageForm,
) -> Result<Response, PageError> {
    signed_in.check_csrf(form.get("csrf"))?;
    let password = Password::new(form.get("password").unwrap_or_default());

    let user = find_user(&state, &name)?;
    let back = format!("/admin/users/{name}");
    let refused = if user.service {
        Some("A service account has no password: it uses application tokens only.")
    } else if user.name == signed_in.user.name {
        Some("Change your own password on your page, where your current one is asked for.")
    } else {
        None
    };
    if let Some(message) = refused {
        return Ok(done(
            &state,
            &mut signed_in,
            FlashKind::Error,
            message.into(),
            &back,
        ));
    }
    if let Err(rule) = password.validate_new() {
        let forms = Forms {
            password_errors: vec![("password", sentence(rule))],
            ..Forms::default()
        };
        let status = StatusCode::UNPROCESSABLE_ENTITY;
        return render(&state, &signed_in, None, &user, &forms, status);
    }

    let manager = state.manager.clone();
    let target = name.clone();
    let ended = tokio::task::spawn_blocking(move || manager.set_password(&target, &password))
        .await
        .map_err(PageError::internal)?
        .map_err(PageError::internal)?;
    let (sessions, logins) = (ended.sessions_ended, ended.logins_revoked);
    let actor = signed_in.user.name.clone();
    tracing::info!(user = %name, admin = %actor, sessions.ended = sessions, logins.revoked = logins, "password reset");
    let detail =
        format!("reset by an admin; {sessions} sessions ended, {logins} docker logins revoked");
    state.audit.record(
        &actor,
        "user.password_changed",
        &name,
        Some(addr),
        Some(detail),
    );

    let message = format!(
        "Password of “{name}” changed. Their sessions and docker logins have ended; \
         their application tokens keep working."
    );
    Ok(done(
        &state,
        &mut signed_in,
        FlashKind::Success,
        message,
        &back,
    ))
}

/// Nobody deletes their own account here: it would sign them out for good.
fn refuse_own_deletion(
    state: &SharedState,
    signed_in: &mut SignedIn,
    user: &User,
) -> Option<Response> {
    if user.name != signed_in.user.name {
        return None;
    }
    let message = "You cannot delete your own account: ask another administrator.";
    let back = format!("/admin/users/{}", user.name);
    Some(done(
        state,
        signed_in,
        FlashKind::Error,
        message.into(),
        &back,
    ))
}

/// `GET /admin/users/{name}/delete`: asks before deleting.
pub async fn confirm_delete(
    State(state): State<SharedState>,
    Admin(mut signed_in): Admin,
    Path(name): Path<String>,
) -> Result<Response, PageError> {
    let user = find_user(&state, &name)?;
    if let Some(refusal) = refuse_own_deletion(&state, &mut signed_in, &user) {
        return Ok(refusal);
    }
    let tokens = state.store.tokens_of(&name).map_err(PageError::internal)?;
    let logins = state
        .store
        .refresh_tokens_of(&name)
        .map_err(PageError::internal)?;

    let csrf = signed_in.session.csrf.as_str();
    let content = html! {
        section.card.narrow {
            h1 { "Delete “" (user.name) "”?" }
            p {
                "This deletes the account with its " (tokens.len()) " application token(s) and "
                (logins.len()) " docker login(s), and ends its sessions. Clients using them are "
                "refused from their next request. This cannot be undone."
            }
            @if !user.groups.is_empty() { p { "It is also taken out of: " (user.groups.join(", ")) "." } }
            p.muted { "Images in the registry are not deleted." }
            form #delete-user-form method="post" action=(format!("/admin/users/{}/delete", user.name)) {
                input type="hidden" name="csrf" value=(csrf);
                div.actions {
                    button #confirm-delete .danger type="submit" { "Delete user" }
                    a.button.secondary href=(format!("/admin/users/{}", user.name)) { "Cancel" }
                }
            }
        }
    };
    let body = admin_page("Delete user", Section::Users, &signed_in, None, content);
    Ok(body.into_response())
}

/// `POST /admin/users/{name}/delete`.
pub async fn delete(
    State(state): State<SharedState>,
    ClientAddr(addr): ClientAddr,
    Admin(mut signed_in): Admin,
    Path(name): Path<String>,
    PageForm(form): PageForm,
) -> Result<Response, PageError> {
    signed_in.check_csrf(form.get("csrf"))?;

    let user = find_user(&state, &name)?;
    if let Some(refusal) = refuse_own_deletion(&state, &mut signed_in, &user) {
        return Ok(refusal);
    }

    let tokens = state.store.tokens_of(&name).map_err(PageError::internal)?;
    match state.manager.delete_user(&name) {
        Ok(()) => {}
        Err(ManageError::Store(StoreError::Conflict(m))) => {
            let back = format!("/admin/users/{name}");
            return Ok(done(
                &state,
                &mut signed_in,
                FlashKind::Error,
                sentence(&m),
                &back,
            ));
        }
        Err(e) => return Err(PageError::internal(e)),
    }
    let actor = signed_in.user.name.clone();
    tracing::info!(user = %name, admin = %actor, tokens.removed = tokens.len(), "user deleted");
    let detail = format!("{} application tokens removed", tokens.len());
    state
        .audit
        .record(&actor, "user.deleted", &name, Some(addr), Some(detail));

    let message = format!("User “{name}” deleted.");
    Ok(done(
        &state,
        &mut signed_in,
        FlashKind::Success,
        message,
        "/admin/users",
    ))
}

/// The account page, with whatever a failed form left to show.
pub(super) fn render(
    state: &SharedState,
    signed_in: &SignedIn,
    flash: Option<&Flash>,
    user: &User,
    forms: &Forms,
    status: StatusCode,
) -> Result<Response, PageError> {
    let tokens = state
        .store
        .tokens_of(&user.name)
        .map_err(PageError::internal)?;
    let me = user.name == signed_in.user.name;
    let csrf = signed_in.session.csrf.as_str();
    let limit = state.config.token_limit as usize;

    let content = html! {
        h1 { (user.name) }
        (account_card(user, me, csrf))
        @if !user.service && !me { (password_card(user, &forms.password_errors, csrf)) }
        (super::tokens::user_tokens_card(user, &tokens, limit, &forms.token, csrf))
    };
    let body = admin_page(&user.name, Section::Users, signed_in, flash, content);
    Ok((status, body).into_response())
}

fn account_card(user: &User, me: bool, csrf: &str) -> Markup {
    let base = format!("/admin/users/{}", user.name);
    html! {
        section.card #account aria-labelledby="account-heading" {
            h2 #account-heading { "Account" }
            dl.facts {
                dt { "Kind" } dd #account-kind { @if user.service { "service account (application tokens only)" } @else { "person" } }
                dt { "Status" } dd #account-status { @if user.disabled { span.badge.warn { "disabled" } } @else { "active" } }
                dt { "Administrator" } dd #account-admin { @if user.admin { span.badge.admin { "yes" } } @else { "no" } }
                dt { "Groups" } dd {
                    @if user.groups.is_empty() { span.muted { "none" } }
                    @for (i, group) in user.groups.iter().enumerate() {
                        @if i > 0 { ", " }
                        a href=(format!("/admin/groups#group-{group}")) { (group) }
                    }
                }
                dt { "Created" } dd { (when(user.created)) }
            }
            @if me {
                p.muted #own-account { "This is your own account: another administrator must disable, demote or delete it." }
            } @else {
                div.actions {
                    form.inline #change-form method="post" action=(format!("{base}/change")) {
                        input type="hidden" name="csrf" value=(csrf);
                        @if user.disabled {
                            button #enable-user .secondary type="submit" name="change" value="enable" { "Enable" }
                        } @else {
                            button #disable-user .secondary type="submit" name="change" value="disable" { "Disable" }
                        }
                        @if !user.service {
                            @if user.admin {
                                button #remove-admin .secondary type="submit" name="change" value="remove-admin" { "Remove admin" }
                            } @else {
                                button #grant-admin .secondary type="submit" name="change" value="grant-admin" { "Make admin" }
                            }
                        }
                    }
                    a #delete-user .button.danger href=(format!("{base}/delete")) { "Delete…" }
                }
            }
        }
    }
}

fn password_card(user: &User, errors: &Errors, csrf: &str) -> Markup {
    html! {
        section.card aria-labelledby="reset-heading" {
            h2 #reset-heading { "Reset password" }
            p.muted { "Sets a new password and ends the user's browser sessions and docker logins. Their application tokens keep working." }
            form #reset-password-form method="post" action=(format!("/admin/users/{}/password", user.name)) {
                input type="hidden" name="csrf" value=(csrf);
                input type="text" name="username" value=(user.name) autocomplete="username" hidden;
                div.field {
                    label for="reset-password" { "New password (8 characters or more)" }
                    input #reset-password type="password" name="password" minlength="8" required
                        autocomplete="new-password" aria-invalid=(invalid(errors, "password"))
                        aria-describedby="password-error";
                    (field_error(errors, "password"))
                }
                button #reset-password-submit type="submit" { "Set password" }
            }
        }
    }
}

/// The account `name`, or "not found".
pub(super) fn find_user(state: &SharedState, name: &str) -> Result<User, PageError> {
    state
        .store
        .user(name)
        .map_err(PageError::internal)?
        .ok_or_else(PageError::not_found)
}

fn bad_request(message: &str) -> PageError {
    PageError::new(StatusCode::BAD_REQUEST, "Bad request", message)
}

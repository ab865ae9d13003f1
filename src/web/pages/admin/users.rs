//! `/admin/users`: every account, searchable and paginated, and the forms that
//! create a person or a service account.

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use maud::{Markup, html};
use percent_encoding::{NON_ALPHANUMERIC, utf8_percent_encode};
use serde::Deserialize;

use super::{Admin, Section, admin_page, done, now, sentence};
use crate::auth::password::Password;
use crate::manage::{ManageError, validate_user_name};
use crate::store::{Flash, FlashKind, StoreError, User};
use crate::web::ClientAddr;
use crate::web::SharedState;
use crate::web::pages::layout::{field_error, invalid, when};
use crate::web::pages::profile::Errors;
use crate::web::pages::{PageError, PageForm};
use crate::web::session::SignedIn;

/// Users listed per page.
const PAGE_SIZE: usize = 25;

/// `?q=` (part of a name) and `?page=` (from 1).
#[derive(Debug, Default, Deserialize)]
pub struct ListQuery {
    q: Option<String>,
    page: Option<String>,
}

/// What the create forms show again after a failed submission.
#[derive(Default)]
struct NewAccount {
    /// `person` or `service`: which of the two forms was sent.
    kind: String,
    name: String,
    errors: Errors,
}

/// `GET /admin/users`.
pub async fn list(
    State(state): State<SharedState>,
    Admin(mut signed_in): Admin,
    Query(query): Query<ListQuery>,
) -> Result<Response, PageError> {
    let flash = signed_in.take_flash(&state);
    let new = NewAccount::default();
    render(
        &state,
        &signed_in,
        flash.as_ref(),
        &query,
        &new,
        StatusCode::OK,
    )
}

/// `POST /admin/users`: creates a person (name and first password) or a
/// service account (name only: it never has a password).
pub async fn create(
    State(state): State<SharedState>,
    ClientAddr(addr): ClientAddr,
    Admin(mut signed_in): Admin,
    PageForm(form): PageForm,
) -> Result<Response, PageError> {
    signed_in.check_csrf(form.get("csrf"))?;
    let service = form.get("kind") == Some("service");
    let mut new = NewAccount {
        kind: if service { "service" } else { "person" }.to_owned(),
        name: form.get("name").unwrap_or_default().trim().to_owned(),
        errors: Errors::new(),
    };
    let name_field = if service { "service_name" } else { "user_name" };
    let password = Password::new(form.get("password").unwrap_or_default());
    if let Err(e) = validate_user_name(&new.name) {
        new.errors.push((name_field, sentence(&e.to_string())));
    }
    if let (false, Err(rule)) = (service, password.validate_new()) {
        new.errors.push(("password", sentence(rule)));
    }
    if !new.errors.is_empty() {
        return reshow(&state, &signed_in, &new, StatusCode::UNPROCESSABLE_ENTITY);
    }

    let manager = state.manager.clone();
    let (name, at) = (new.name.clone(), now());
    let created = if service {
        manager.add_service_account(&name, at)
    } else {
        tokio::task::spawn_blocking(move || manager.add_user(&name, false, &password, at))
            .await
            .map_err(PageError::internal)?
    };
    let problem = match created {
        Ok(_) => None,
        Err(ManageError::Invalid(m)) => Some((StatusCode::UNPROCESSABLE_ENTITY, m)),
        Err(ManageError::Store(StoreError::Conflict(m))) => Some((StatusCode::CONFLICT, m)),
        Err(e) => return Err(PageError::internal(e)),
    };
    if let Some((status, problem)) = problem {
        new.errors.push((name_field, sentence(&problem)));
        return reshow(&state, &signed_in, &new, status);
    }

    let (actor, name) = (signed_in.user.name.clone(), new.name);
    let kind = if service { "service account" } else { "person" };
    tracing::info!(user = %name, admin = %actor, kind, "user created");
    state.audit.record(
        &actor,
        "user.created",
        &name,
        Some(addr),
        Some(kind.to_owned()),
    );
    let message = if service {
        format!("Service account “{name}” created. Issue it a token below.")
    } else {
        format!("User “{name}” created.")
    };
    let to = format!("/admin/users/{name}");
    Ok(done(
        &state,
        &mut signed_in,
        FlashKind::Success,
        message,
        &to,
    ))
}

/// The list page again, with the create form's errors.
fn reshow(
    state: &SharedState,
    signed_in: &SignedIn,
    new: &NewAccount,
    status: StatusCode,
) -> Result<Response, PageError> {
    let query = ListQuery::default();
    render(state, signed_in, None, &query, new, status)
}

fn render(
    state: &SharedState,
    signed_in: &SignedIn,
    flash: Option<&Flash>,
    query: &ListQuery,
    new: &NewAccount,
    status: StatusCode,
) -> Result<Response, PageError> {
    let search = query.q.as_deref().unwrap_or_default().trim();
    let needle = search.to_lowercase();
    let users = state.manager.users().map_err(PageError::internal)?;
    let found: Vec<User> = users
        .into_iter()
        .filter(|u| u.name.contains(&needle))
        .collect();
    let pages = found.len().div_ceil(PAGE_SIZE).max(1);
    let page_number = query
        .page
        .as_deref()
        .and_then(|p| p.parse::<usize>().ok())
        .unwrap_or(1)
        .clamp(1, pages);
    let shown = found
        .iter()
        .skip((page_number - 1) * PAGE_SIZE)
        .take(PAGE_SIZE);
    let csrf = signed_in.session.csrf.as_str();

    let content = html! {
        h1 { "Users" }
        section.card aria-labelledby="users-heading" {
            h2 #users-heading { "Accounts" span.count #user-count { (found.len()) } }
            form.search #user-search method="get" action="/admin/users" role="search" {
                div.field {
                    label for="user-q" { "Name contains" }
                    input #user-q type="search" name="q" value=(search) autocapitalize="none" spellcheck="false";
                }
                button.secondary type="submit" { "Search" }
                @if !search.is_empty() { a href="/admin/users" { "Show all" } }
            }
            @if found.is_empty() {
                p.muted #no-users { "No user name contains “" (search) "”." }
            } @else {
                (users_table(shown, &signed_in.user.name, csrf))
                (pager(search, page_number, pages))
            }
        }
        (create_card(new, csrf))
    };
    let body = admin_page("Users", Section::Users, signed_in, flash, content);
    Ok((status, body).into_response())
}

fn users_table<'a>(users: impl Iterator<Item = &'a User>, me: &str, csrf: &str) -> Markup {
    html! {
        div.table-wrap {
            table #users .stack {
                thead { tr { th { "Name" } th { "Kind" } th { "Admin" } th { "Status" } th { "Groups" } th { "Created" } th { span.visually-hidden { "Actions" } } } }
                tbody {
                    @for user in users {
                        tr data-user=(user.name) {
                            td data-label="Name" { a.user-link href=(format!("/admin/users/{}", user.name)) { strong { (user.name) } } }
                            td data-label="Kind" { span.badge { @if user.service { "service" } @else { "person" } } }
                            td data-label="Admin" { @if user.admin { span.badge.admin { "admin" } } @else { span.muted { "no" } } }
                            td data-label="Status" { @if user.disabled { span.badge.warn { "disabled" } } @else { "active" } }
                            td data-label="Groups" {
                                @if user.groups.is_empty() { span.muted { "none" } } @else { (user.groups.join(", ")) }
                            }
                            td data-label="Created" { (when(user.created)) }
                            td {
                                div.actions.compact {
                                    a.button.secondary.small href=(format!("/admin/users/{}", user.name)) { "Manage" }
                                    @if user.name != me {
                                        form.inline method="post" action=(format!("/admin/users/{}/change", user.name)) {
                                            input type="hidden" name="csrf" value=(csrf);
                                            input type="hidden" name="back" value="list";
                                            @if user.disabled {
                                                button.secondary.small type="submit" name="change" value="enable" { "Enable" }
                                            } @else {
                                                button.secondary.small type="submit" name="change" value="disable" { "Disable" }
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
}

/// "Page 2 of 3" with links to the neighbours, keeping the search.
fn pager(search: &str, page: usize, pages: usize) -> Markup {
    let href = |n: usize| {
        let q = utf8_percent_encode(search, NON_ALPHANUMERIC);
        format!("/admin/users?q={q}&page={n}")
    };
    html! {
        @if pages > 1 {
            nav.pager aria-label="Pages" {
                @if page > 1 { a #prev-page rel="prev" href=(href(page - 1)) { "← Previous" } } @else { span {} }
                span #page-of { "Page " (page) " of " (pages) }
                @if page < pages { a #next-page rel="next" href=(href(page + 1)) { "Next →" } } @else { span {} }
            }
        }
    }
}

fn create_card(new: &NewAccount, csrf: &str) -> Markup {
    let errors = &new.errors;
    let (person_name, service_name) = match new.kind.as_str() {
        "service" => ("", new.name.as_str()),
        _ => (new.name.as_str(), ""),
    };
    html! {
        section.card aria-labelledby="create-user-heading" {
            h2 #create-user-heading { "Create a user" }
            p.muted { "A person signs in with a password and manages their own tokens. Give them this first password; they can change it on their page." }
            form #create-user-form method="post" action="/admin/users" {
                input type="hidden" name="csrf" value=(csrf);
                input type="hidden" name="kind" value="person";
                div.row {
                    div.field {
                        label for="new-user-name" { "User name" }
                        input #new-user-name type="text" name="name" value=(person_name) maxlength="64" required
                            autocapitalize="none" spellcheck="false" autocomplete="off"
                            aria-invalid=(invalid(errors, "user_name")) aria-describedby="user_name-error";
                        (field_error(errors, "user_name"))
                    }
                    div.field {
                        label for="new-user-password" { "First password (8 characters or more)" }
                        input #new-user-password type="password" name="password" minlength="8" required
                            autocomplete="new-password" aria-invalid=(invalid(errors, "password"))
                            aria-describedby="password-error";
                        (field_error(errors, "password"))
                    }
                }
                button #create-user-submit type="submit" { "Create user" }
            }
        }
        section.card aria-labelledby="create-service-heading" {
            h2 #create-service-heading { "Create a service account" }
            p.muted { "A service account, for CI and other machines, has no password and cannot sign in here. It uses application tokens that admins issue on its page." }
            form #create-service-form method="post" action="/admin/users" {
                input type="hidden" name="csrf" value=(csrf);
                input type="hidden" name="kind" value="service";
                div.field {
                    label for="new-service-name" { "Account name" }
                    input #new-service-name type="text" name="name" value=(service_name) maxlength="64" required
                        autocapitalize="none" spellcheck="false" autocomplete="off" placeholder="e.g. ci-deployer"
                        aria-invalid=(invalid(errors, "service_name")) aria-describedby="service_name-error";
                    (field_error(errors, "service_name"))
                }
                button #create-service-submit type="submit" { "Create service account" }
            }
        }
    }
}

//! Creating and removing application tokens, and revoking docker logins.

use std::time::Instant;

use axum::extract::{Path, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use maud::html;

use super::layout::{Chrome, page};
use super::profile::{self, CreateForm, Errors, access_label};
use super::{PageError, PageForm};
use crate::manage::{Expiry, ManageError, validate_token_name};
use crate::registry::policy::AccessLevel;
use crate::store::FlashKind;
use crate::store::{AppToken, StoreError};
use crate::web::session::SignedIn;
use crate::web::stash::Created;
use crate::web::{ClientAddr, SharedState};

/// `POST /tokens`.
pub async fn create(
    State(state): State<SharedState>,
    ClientAddr(addr): ClientAddr,
    signed_in: SignedIn,
    PageForm(form): PageForm,
) -> Result<Response, PageError> {
    signed_in.check_csrf(form.get("csrf"))?;
    let mut values = CreateForm {
        name: form.get("name").unwrap_or_default().to_owned(),
        access: form.get("access").unwrap_or_default().to_owned(),
        expiry: form.get("expiry").unwrap_or_default().to_owned(),
        expiry_date: form.get("expiry_date").unwrap_or_default().to_owned(),
        repositories: form.get("repositories").unwrap_or_default().to_owned(),
        errors: Errors::new(),
    };
    let repositories = Some(parse_repositories(&values.repositories));

    let name = validate_token_name(&values.name).map_err(|e| ("name", e.to_string()));
    let access =
        AccessLevel::parse(&values.access).ok_or(("access", "Choose an access level.".to_owned()));
    let expiry = parse_expiry(&values.expiry, &values.expiry_date);
    let (name, access, expiry) = match (name, access, expiry) {
        (Ok(n), Ok(a), Ok(e)) => (n.to_owned(), a, e),
        (n, a, e) => {
            values
                .errors
                .extend([n.err(), a.err(), e.err()].into_iter().flatten());
            return reshow(&state, &signed_in, values);
        }
    };

    let user = signed_in.user.name.clone();
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let (token, secret) =
        match state
            .manager
            .create_token(&user, &name, access, expiry, repositories, now)
        {
            Ok(created) => created,
            Err(e) => {
                let problem = match e {
                    ManageError::Invalid(m) if m.contains("pattern") => ("repositories", m),
                    ManageError::Invalid(m) => ("expiry_date", m),
                    ManageError::Store(StoreError::Conflict(_)) => (
                        "name",
                        format!("You already have a token named “{name}”. Choose another name."),
                    ),
                    ManageError::Store(StoreError::LimitReached(limit)) => (
                        "form",
                        format!(
                            "You already have {limit} token{}, the most allowed. Remove one first.",
                            if limit == 1 { "" } else { "s" }
                        ),
                    ),
                    other => return Err(PageError::internal(other)),
                };
                values.errors.push(problem);
                return reshow(&state, &signed_in, values);
            }
        };
    tracing::info!(user = %user, token.id = %token.id, token.access = token.access.as_str(), "token created");
    let target = format!("{user}/{}", token.name);
    let detail = format!("access {}", token.access.as_str());
    state
        .audit
        .record(&user, "token.created", &target, Some(addr), Some(detail));

    let created = Created {
        name: token.name,
        owner: user,
        secret,
    };
    state.secrets.put(signed_in.hash, created, Instant::now());
    Ok(Redirect::to("/tokens/created").into_response())
}

/// The create form's repository patterns: separated by commas, spaces or lines.
pub(super) fn parse_repositories(field: &str) -> Vec<String> {
    field
        .split([',', ' ', '\n', '\r'])
        .filter(|p| !p.is_empty())
        .map(str::to_owned)
        .collect()
}

/// The create form's expiry choice.
pub(super) fn parse_expiry(choice: &str, date: &str) -> Result<Expiry, (&'static str, String)> {
    match choice {
        "never" => Ok(Expiry::Never),
        "30" => Ok(Expiry::InDays(30)),
        "90" => Ok(Expiry::InDays(90)),
        "date" => {
            let format = time::macros::format_description!("[year]-[month]-[day]");
            time::Date::parse(date.trim(), &format)
                .map(Expiry::EndOf)
                .map_err(|_| {
                    (
                        "expiry_date",
                        "Enter the expiry date as YYYY-MM-DD.".to_owned(),
                    )
                })
        }
        _ => Err(("expiry", "Choose when the token expires.".to_owned())),
    }
}

fn reshow(
    state: &SharedState,
    signed_in: &SignedIn,
    values: CreateForm,
) -> Result<Response, PageError> {
    let status = if values
        .errors
        .iter()
        .any(|(_, m)| m.contains("already have a token named"))
    {
        StatusCode::CONFLICT
    } else {
        StatusCode::UNPROCESSABLE_ENTITY
    };
    profile::render(
        state,
        signed_in,
        Chrome::default(),
        status,
        &values,
        &Errors::new(),
    )
}

/// `GET /tokens/created`: the secret, exactly once. A token an admin issued
/// for a service account names that account, and "Done" leads back to it.
pub async fn created(
    State(state): State<SharedState>,
    mut signed_in: SignedIn,
) -> Result<Response, PageError> {
    let Some(created) = state.secrets.take(&signed_in.hash, Instant::now()) else {
        signed_in.set_flash(
            &state,
            FlashKind::Info,
            "A token's secret is shown only once, right after it is created. If you did not copy it, \
             remove the token and create a new one."
                .to_owned(),
        );
        return Ok(Redirect::to("/").into_response());
    };
    let user = &signed_in.user;
    let login = format!(
        "docker login {} -u {}",
        state.config.registry_host(),
        created.owner
    );
    let own = created.owner == user.name;
    let done = if own {
        "/".to_owned()
    } else {
        format!("/admin/users/{}", created.owner)
    };
    let chrome = Chrome {
        user: Some(user),
        csrf: Some(&signed_in.session.csrf),
        flash: None,
    };
    let content = html! {
        section.card {
            h1 {
                "Token “" (created.name) "” "
                @if !own { "for " (created.owner) " " }
                "created"
            }
            p { strong { "Copy the secret now: it cannot be shown again." } " Portcullis keeps only a hash of it." }
            div.secret {
                code #token-secret { (created.secret.expose()) }
                button #copy-secret .secondary type="button" data-copy="token-secret" hidden { "Copy" }
            }
            p { "Sign in with it from a terminal, and paste the secret at the password prompt:" }
            div.secret {
                code #docker-login { (login) }
                button .secondary type="button" data-copy="docker-login" hidden { "Copy" }
            }
            p { a #back-to-profile .button href=(done) { "Done" } }
        }
    };
    let mut response = page("Token created", chrome, content).into_response();
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(response)
}

/// `GET /tokens/{id}/remove`: asks before removing.
pub async fn confirm_remove(
    State(state): State<SharedState>,
    signed_in: SignedIn,
    Path(id): Path<String>,
) -> Result<Response, PageError> {
    let token = own_token(&state, &signed_in, &id)?;
    let chrome = Chrome {
        user: Some(&signed_in.user),
        csrf: Some(&signed_in.session.csrf),
        flash: None,
    };
    let content = html! {
        section.card.narrow {
            h1 { "Remove token “" (token.name) "”?" }
            p { "Clients using it (" (access_label(token.access.as_str())) ") will be refused from their next request. This cannot be undone." }
            form #remove-token-form method="post" action=(format!("/tokens/{}/remove", token.id)) {
                input type="hidden" name="csrf" value=(signed_in.session.csrf);
                div.actions {
                    button #confirm-remove .danger type="submit" { "Remove token" }
                    a.button.secondary href="/" { "Cancel" }
                }
            }
        }
    };
    Ok(page("Remove token", chrome, content).into_response())
}

/// `POST /tokens/{id}/remove`.
pub async fn remove(
    State(state): State<SharedState>,
    ClientAddr(addr): ClientAddr,
    mut signed_in: SignedIn,
    Path(id): Path<String>,
    PageForm(form): PageForm,
) -> Result<Response, PageError> {
    signed_in.check_csrf(form.get("csrf"))?;
    let token = own_token(&state, &signed_in, &id)?;
    state
        .manager
        .revoke_token(&token.user, &token.name)
        .map_err(PageError::internal)?;
    tracing::info!(user = %token.user, token.id = %token.id, "token revoked");
    let target = format!("{}/{}", token.user, token.name);
    state.audit.record(
        &signed_in.user.name,
        "token.revoked",
        &target,
        Some(addr),
        None,
    );
    signed_in.set_flash(
        &state,
        FlashKind::Success,
        format!("Token “{}” removed.", token.name),
    );
    Ok(Redirect::to("/").into_response())
}

/// `POST /logins/{id}/revoke`.
pub async fn revoke_login(
    State(state): State<SharedState>,
    ClientAddr(addr): ClientAddr,
    mut signed_in: SignedIn,
    Path(id): Path<String>,
    PageForm(form): PageForm,
) -> Result<Response, PageError> {
    signed_in.check_csrf(form.get("csrf"))?;
    let user = signed_in.user.name.clone();
    match state.store.revoke_refresh(&user, &id) {
        Ok(()) => {}
        Err(StoreError::NotFound(_)) => return Err(PageError::not_found()),
        Err(e) => return Err(PageError::internal(e)),
    }
    tracing::info!(user = %user, refresh.id = %id, "docker login revoked");
    let target = format!("{user}/{id}");
    state
        .audit
        .record(&user, "refresh.revoked", &target, Some(addr), None);
    signed_in.set_flash(
        &state,
        FlashKind::Success,
        "Docker login revoked.".to_owned(),
    );
    Ok(Redirect::to("/").into_response())
}

/// One of the signed-in user's tokens by id; anyone else's is "not found".
fn own_token(state: &SharedState, signed_in: &SignedIn, id: &str) -> Result<AppToken, PageError> {
    let tokens = state
        .store
        .tokens_of(&signed_in.user.name)
        .map_err(PageError::internal)?;
    tokens
        .into_iter()
        .find(|t| t.id == id)
        .ok_or_else(PageError::not_found)
}

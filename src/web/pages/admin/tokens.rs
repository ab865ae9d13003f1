//! Application tokens from the admin side: every token of every user with
//! revocation, and the tokens of service accounts, which only admins issue.
//! A new secret is shown once on `/tokens/created`, like a person's own.

use std::time::Instant;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use maud::{Markup, html};

use super::account::{self, Forms, find_user};
use super::{Admin, Section, admin_page, done, now, sentence};
use crate::manage::{ManageError, validate_token_name};
use crate::registry::policy::AccessLevel;
use crate::store::{AppToken, FlashKind, StoreError, User};
use crate::web::pages::layout::{field_error, maybe_when, when};
use crate::web::pages::profile::{CreateForm, Errors, access_label, token_fields};
use crate::web::pages::tokens::{parse_expiry, parse_repositories};
use crate::web::pages::{PageError, PageForm};
use crate::web::stash::Created;
use crate::web::{ClientAddr, SharedState};

/// `GET /admin/tokens`.
pub async fn list(
    State(state): State<SharedState>,
    Admin(mut signed_in): Admin,
) -> Result<Response, PageError> {
    let flash = signed_in.take_flash(&state);
    let tokens = state.manager.all_tokens().map_err(PageError::internal)?;
    let csrf = signed_in.session.csrf.as_str();

    let content = html! {
        h1 { "Application tokens" }
        section.card aria-labelledby="all-tokens-heading" {
            h2 #all-tokens-heading { "All tokens" span.count #all-token-count { (tokens.len()) } }
            @if tokens.is_empty() {
                p.muted #no-tokens { "No user has an application token." }
            } @else {
                (tokens_table(&tokens, true, "list", csrf))
            }
        }
    };
    let body = admin_page(
        "Tokens",
        Section::Tokens,
        &signed_in,
        flash.as_ref(),
        content,
    );
    Ok(body.into_response())
}

/// `POST /admin/users/{name}/tokens`: issues a token for a service account.
pub async fn issue(
    State(state): State<SharedState>,
    ClientAddr(addr): ClientAddr,
    Admin(signed_in): Admin,
    Path(name): Path<String>,
    PageForm(form): PageForm,
) -> Result<Response, PageError> {
    signed_in.check_csrf(form.get("csrf"))?;
    let field = |key: &str| form.get(key).unwrap_or_default().to_owned();
    let mut values = CreateForm {
        name: field("name"),
        access: field("access"),
        expiry: field("expiry"),
        expiry_date: field("expiry_date"),
        repositories: field("repositories"),
        errors: Errors::new(),
    };
    let user = find_user(&state, &name)?;
    // People manage their own tokens; only service accounts have this form.
    if !user.service {
        return Err(PageError::not_found());
    }

    let token_name =
        validate_token_name(&values.name).map_err(|e| ("name", sentence(&e.to_string())));
    let access =
        AccessLevel::parse(&values.access).ok_or(("access", "Choose an access level.".to_owned()));
    let expiry = parse_expiry(&values.expiry, &values.expiry_date);
    let (token_name, access, expiry) = match (token_name, access, expiry) {
        (Ok(n), Ok(a), Ok(e)) => (n.to_owned(), a, e),
        (n, a, e) => {
            values
                .errors
                .extend([n.err(), a.err(), e.err()].into_iter().flatten());
            return reshow(
                &state,
                &signed_in,
                &user,
                values,
                StatusCode::UNPROCESSABLE_ENTITY,
            );
        }
    };

    let repositories = Some(parse_repositories(&values.repositories));
    let manager = &state.manager;
    let created = manager.create_token(&name, &token_name, access, expiry, repositories, now());
    let (token, secret) = match created {
        Ok(created) => created,
        Err(e) => {
            let (status, problem) = refusal(e, &name, &token_name)?;
            values.errors.push(problem);
            return reshow(&state, &signed_in, &user, values, status);
        }
    };

    let actor = &signed_in.user.name;
    tracing::info!(user = %name, admin = %actor, token.id = %token.id, token.access = token.access.as_str(), "token created");
    let target = format!("{name}/{}", token.name);
    let detail = format!("access {}", token.access.as_str());
    state
        .audit
        .record(actor, "token.created", &target, Some(addr), Some(detail));

    let created = Created {
        name: token.name,
        owner: name,
        secret,
    };
    state.secrets.put(signed_in.hash, created, Instant::now());
    Ok(Redirect::to("/tokens/created").into_response())
}

/// `POST /admin/tokens/{id}/revoke`. Goes back to the owner's page when sent
/// from there (`from=user`), else to the list of all tokens.
pub async fn revoke(
    State(state): State<SharedState>,
    ClientAddr(addr): ClientAddr,
    Admin(mut signed_in): Admin,
    Path(id): Path<String>,
    PageForm(form): PageForm,
) -> Result<Response, PageError> {
    signed_in.check_csrf(form.get("csrf"))?;
    let from_user = form.get("from") == Some("user");

    let tokens = state.manager.all_tokens().map_err(PageError::internal)?;
    let token = tokens.into_iter().find(|t| t.id == id);
    let token = token.ok_or_else(PageError::not_found)?;
    state
        .manager
        .revoke_token(&token.user, &token.name)
        .map_err(PageError::internal)?;
    let actor = signed_in.user.name.clone();
    tracing::info!(user = %token.user, admin = %actor, token.id = %token.id, "token revoked");
    let target = format!("{}/{}", token.user, token.name);
    state
        .audit
        .record(&actor, "token.revoked", &target, Some(addr), None);

    let message = format!("Token “{}” of {} revoked.", token.name, token.user);
    let back = if from_user {
        format!("/admin/users/{}", token.user)
    } else {
        "/admin/tokens".to_owned()
    };
    Ok(done(
        &state,
        &mut signed_in,
        FlashKind::Success,
        message,
        &back,
    ))
}

/// Why a token could not be issued, as a status and a field error. Anything
/// else is for the operator.
fn refusal(
    error: ManageError,
    owner: &str,
    token: &str,
) -> Result<(StatusCode, (&'static str, String)), PageError> {
    let unprocessable = StatusCode::UNPROCESSABLE_ENTITY;
    Ok(match error {
        ManageError::Invalid(m) if m.contains("pattern") => {
            (unprocessable, ("repositories", sentence(&m)))
        }
        ManageError::Invalid(m) => (unprocessable, ("expiry_date", sentence(&m))),
        ManageError::Store(StoreError::Conflict(_)) => {
            let message = format!("{owner} already has a token named “{token}”.");
            (StatusCode::CONFLICT, ("name", message))
        }
        ManageError::Store(StoreError::LimitReached(limit)) => {
            let message =
                format!("{owner} already has {limit} tokens, the most allowed. Revoke one first.");
            (unprocessable, ("form", message))
        }
        other => return Err(PageError::internal(other)),
    })
}

/// The account page again, with the issue form's errors.
fn reshow(
    state: &SharedState,
    signed_in: &crate::web::session::SignedIn,
    user: &User,
    token: CreateForm,
    status: StatusCode,
) -> Result<Response, PageError> {
    let forms = Forms {
        token,
        ..Forms::default()
    };
    account::render(state, signed_in, None, user, &forms, status)
}

/// The tokens section of an account page: its tokens, and for a service
/// account the form that issues one.
pub(super) fn user_tokens_card(
    user: &User,
    tokens: &[AppToken],
    limit: usize,
    form: &CreateForm,
    csrf: &str,
) -> Markup {
    html! {
        section.card aria-labelledby="user-tokens-heading" {
            h2 #user-tokens-heading {
                "Application tokens"
                span.count #token-count { (tokens.len()) " of " (limit) }
            }
            @if tokens.is_empty() {
                p.muted #no-tokens { (user.name) " has no application tokens." }
            } @else {
                (tokens_table(tokens, false, "user", csrf))
            }
            @if user.service {
                (issue_form(user, form, tokens.len() >= limit, csrf))
            } @else {
                p.muted { "People create their own tokens on their page." }
            }
        }
    }
}

/// A table of tokens with revoke buttons; `from` says where revoking returns.
fn tokens_table(tokens: &[AppToken], with_owner: bool, from: &str, csrf: &str) -> Markup {
    let now = now();
    html! {
        div.table-wrap {
            table #admin-tokens .stack {
                thead { tr {
                    @if with_owner { th { "Owner" } }
                    th { "Name" } th { "Access" } th { "Repositories" } th { "Last used" } th { "Expires" }
                    th { span.visually-hidden { "Actions" } }
                } }
                tbody {
                    @for token in tokens {
                        tr data-token-owner=(token.user) data-token-name=(token.name) {
                            @if with_owner {
                                td data-label="Owner" { a href=(format!("/admin/users/{}", token.user)) { (token.user) } }
                            }
                            td data-label="Name" { strong { (token.name) } span.sub { "created " (when(token.created)) } }
                            td data-label="Access" { span.badge { (access_label(token.access.as_str())) } }
                            td data-label="Repositories" {
                                @match &token.repositories {
                                    Some(patterns) => { code { (patterns.join(", ")) } }
                                    None => { span.muted { "all it may use" } }
                                }
                            }
                            td data-label="Last used" {
                                (maybe_when(token.last_used, "never"))
                                @if let Some(addr) = &token.last_used_addr { span.sub { "from " (addr) } }
                            }
                            td data-label="Expires" {
                                @if token.is_expired(now) { strong { "expired " } }
                                (maybe_when(token.expires, "never"))
                            }
                            td {
                                form.inline method="post" action=(format!("/admin/tokens/{}/revoke", token.id)) {
                                    input type="hidden" name="csrf" value=(csrf);
                                    input type="hidden" name="from" value=(from);
                                    button.secondary.small.revoke-token type="submit"
                                        aria-label=(format!("Revoke token {} of {}", token.name, token.user)) { "Revoke" }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

fn issue_form(user: &User, form: &CreateForm, at_limit: bool, csrf: &str) -> Markup {
    html! {
        h3 #issue-heading { "Issue a token" }
        (field_error(&form.errors, "form"))
        @if at_limit {
            p.flash.error #limit-reached { "This account has the most tokens allowed. Revoke one to issue another." }
        }
        form #issue-token-form method="post" action=(format!("/admin/users/{}/tokens", user.name)) {
            input type="hidden" name="csrf" value=(csrf);
            fieldset disabled[at_limit] {
                (token_fields(form, "e.g. ci", "e.g. public/*, web/site", "the account"))
                button #issue-token-submit type="submit" { "Issue token" }
            }
        }
    }
}

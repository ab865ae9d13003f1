//! `/admin/groups`: named groups of users, which authorization rules can name
//! (`group:web`, or `${group}` in a repository pattern).

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use maud::{Markup, html};

use super::{Admin, Section, admin_page, done, now, sentence};
use crate::manage::ManageError;
use crate::store::{Flash, FlashKind, Group, StoreError};
use crate::web::pages::layout::{field_error, invalid, when};
use crate::web::pages::profile::Errors;
use crate::web::pages::{PageError, PageForm};
use crate::web::session::SignedIn;
use crate::web::{ClientAddr, SharedState};

/// `GET /admin/groups`.
pub async fn list(
    State(state): State<SharedState>,
    Admin(mut signed_in): Admin,
) -> Result<Response, PageError> {
    let flash = signed_in.take_flash(&state);
    render(
        &state,
        &signed_in,
        flash.as_ref(),
        "",
        &Errors::new(),
        StatusCode::OK,
    )
}

/// `POST /admin/groups`: creates an empty group.
pub async fn create(
    State(state): State<SharedState>,
    ClientAddr(addr): ClientAddr,
    Admin(mut signed_in): Admin,
    PageForm(form): PageForm,
) -> Result<Response, PageError> {
    signed_in.check_csrf(form.get("csrf"))?;
    let name = form.get("name").unwrap_or_default().trim().to_owned();

    let problem = match state.manager.add_group(&name, now()) {
        Ok(_) => None,
        Err(ManageError::Invalid(m)) => Some((StatusCode::UNPROCESSABLE_ENTITY, m)),
        Err(ManageError::Store(StoreError::Conflict(m))) => Some((StatusCode::CONFLICT, m)),
        Err(e) => return Err(PageError::internal(e)),
    };
    if let Some((status, problem)) = problem {
        let errors = vec![("group_name", sentence(&problem))];
        return render(&state, &signed_in, None, &name, &errors, status);
    }

    let actor = signed_in.user.name.clone();
    tracing::info!(group = %name, admin = %actor, "group created");
    state
        .audit
        .record(&actor, "group.created", &name, Some(addr), None);

    let message = format!("Group “{name}” created.");
    Ok(done(
        &state,
        &mut signed_in,
        FlashKind::Success,
        message,
        "/admin/groups",
    ))
}

/// `POST /admin/groups/{name}/delete`: deletes a group; its members stay.
pub async fn delete(
    State(state): State<SharedState>,
    ClientAddr(addr): ClientAddr,
    Admin(mut signed_in): Admin,
    Path(name): Path<String>,
    PageForm(form): PageForm,
) -> Result<Response, PageError> {
    signed_in.check_csrf(form.get("csrf"))?;

    match state.manager.delete_group(&name) {
        Ok(()) => {}
        Err(ManageError::Store(StoreError::NotFound(_))) => return Err(PageError::not_found()),
        Err(e) => return Err(PageError::internal(e)),
    }
    let actor = signed_in.user.name.clone();
    tracing::info!(group = %name, admin = %actor, "group deleted");
    state
        .audit
        .record(&actor, "group.deleted", &name, Some(addr), None);

    let message = format!("Group “{name}” deleted.");
    Ok(done(
        &state,
        &mut signed_in,
        FlashKind::Success,
        message,
        "/admin/groups",
    ))
}

/// `POST /admin/groups/{name}/members`: adds the user named in the form.
pub async fn add_member(
    State(state): State<SharedState>,
    ClientAddr(addr): ClientAddr,
    Admin(signed_in): Admin,
    Path(group): Path<String>,
    PageForm(form): PageForm,
) -> Result<Response, PageError> {
    signed_in.check_csrf(form.get("csrf"))?;
    let user = form.get("user").unwrap_or_default().trim().to_owned();
    membership(&state, addr, signed_in, &group, &user, true)
}

/// `POST /admin/groups/{name}/members/{user}/remove`.
pub async fn remove_member(
    State(state): State<SharedState>,
    ClientAddr(addr): ClientAddr,
    Admin(signed_in): Admin,
    Path((group, user)): Path<(String, String)>,
    PageForm(form): PageForm,
) -> Result<Response, PageError> {
    signed_in.check_csrf(form.get("csrf"))?;
    membership(&state, addr, signed_in, &group, &user, false)
}

/// Puts `user` in `group` or takes them out, once the request is checked.
fn membership(
    state: &SharedState,
    addr: std::net::IpAddr,
    mut signed_in: SignedIn,
    group: &str,
    user: &str,
    member: bool,
) -> Result<Response, PageError> {
    let back = format!("/admin/groups#group-{group}");
    if state
        .store
        .group(group)
        .map_err(PageError::internal)?
        .is_none()
    {
        return Err(PageError::not_found());
    }
    match state.manager.set_membership(group, user, member) {
        Ok(()) => {}
        Err(ManageError::Store(StoreError::NotFound(_))) => {
            let message = format!("There is no user “{user}”.");
            return Ok(done(
                state,
                &mut signed_in,
                FlashKind::Error,
                message,
                &back,
            ));
        }
        Err(e) => return Err(PageError::internal(e)),
    }
    let (action, message) = if member {
        ("group.member_added", format!("“{user}” added to {group}."))
    } else {
        (
            "group.member_removed",
            format!("“{user}” removed from {group}."),
        )
    };
    let actor = signed_in.user.name.clone();
    tracing::info!(group = %group, user = %user, admin = %actor, action, "group membership changed");
    // The member is the target, so the event shows up under their name.
    let detail = format!("group {group}");
    state
        .audit
        .record(&actor, action, user, Some(addr), Some(detail));

    Ok(done(
        state,
        &mut signed_in,
        FlashKind::Success,
        message,
        &back,
    ))
}

fn render(
    state: &SharedState,
    signed_in: &SignedIn,
    flash: Option<&Flash>,
    new_name: &str,
    errors: &Errors,
    status: StatusCode,
) -> Result<Response, PageError> {
    let groups = state.manager.groups().map_err(PageError::internal)?;
    let users = state.manager.users().map_err(PageError::internal)?;
    let csrf = signed_in.session.csrf.as_str();

    let content = html! {
        h1 { "Groups" }
        p.muted { "Authorization rules can grant a group access, for instance to a team namespace of the same name." }
        @if groups.is_empty() {
            section.card { p.muted #no-groups { "No groups yet." } }
        }
        @for group in &groups { (group_card(group, csrf)) }
        datalist #user-names { @for user in &users { option value=(user.name) {} } }
        section.card aria-labelledby="create-group-heading" {
            h2 #create-group-heading { "Create a group" }
            form #create-group-form method="post" action="/admin/groups" {
                input type="hidden" name="csrf" value=(csrf);
                div.field {
                    label for="group-name" { "Group name" }
                    input #group-name type="text" name="name" value=(new_name) maxlength="64" required
                        autocapitalize="none" spellcheck="false" placeholder="e.g. web"
                        aria-invalid=(invalid(errors, "group_name")) aria-describedby="group_name-error";
                    (field_error(errors, "group_name"))
                }
                button #create-group-submit type="submit" { "Create group" }
            }
        }
    };
    let body = admin_page("Groups", Section::Groups, signed_in, flash, content);
    Ok((status, body).into_response())
}

fn group_card(group: &Group, csrf: &str) -> Markup {
    let base = format!("/admin/groups/{}", group.name);
    html! {
        section.card.group id=(format!("group-{}", group.name)) data-group=(group.name) {
            h2 {
                (group.name)
                span.count { (group.members.len()) " member" @if group.members.len() != 1 { "s" } }
            }
            p.muted { "Created " (when(group.created)) }
            @if group.members.is_empty() {
                p.muted { "No members." }
            } @else {
                ul.members {
                    @for member in &group.members {
                        li data-member=(member) {
                            a href=(format!("/admin/users/{member}")) { (member) }
                            form.inline method="post" action=(format!("{base}/members/{member}/remove")) {
                                input type="hidden" name="csrf" value=(csrf);
                                button.link type="submit" aria-label=(format!("Remove {member} from {}", group.name)) { "remove" }
                            }
                        }
                    }
                }
            }
            div.actions {
                form.inline.add-member method="post" action=(format!("{base}/members")) {
                    input type="hidden" name="csrf" value=(csrf);
                    label.visually-hidden for=(format!("add-{}", group.name)) { "User to add to " (group.name) }
                    input id=(format!("add-{}", group.name)) type="text" name="user" list="user-names" required
                        placeholder="user name" autocapitalize="none" spellcheck="false";
                    button.secondary.small type="submit" { "Add member" }
                }
                form.inline method="post" action=(format!("{base}/delete")) {
                    input type="hidden" name="csrf" value=(csrf);
                    button.danger.small type="submit" aria-label=(format!("Delete group {}", group.name)) { "Delete group" }
                }
            }
        }
    }
}

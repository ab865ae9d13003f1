//! `/admin/audit`: the audit log, newest first, filtered by user, action
//! prefix and age.

use axum::extract::{Query, State};
use axum::response::{IntoResponse, Response};
use maud::html;
use serde::Deserialize;

use super::{Admin, Section, admin_page, now};
use crate::store::AuditFilter;
use crate::web::SharedState;
use crate::web::pages::PageError;
use crate::web::pages::layout::when;

/// Most events shown at once.
const LIMIT: usize = 200;

/// `?user=`, `?action=` (a prefix such as `token.`) and `?days=`.
#[derive(Debug, Default, Deserialize)]
pub struct AuditQuery {
    user: Option<String>,
    action: Option<String>,
    days: Option<String>,
}

/// `GET /admin/audit`.
pub async fn show(
    State(state): State<SharedState>,
    Admin(mut signed_in): Admin,
    Query(query): Query<AuditQuery>,
) -> Result<Response, PageError> {
    let user = query.user.as_deref().unwrap_or_default().trim();
    let action = query.action.as_deref().unwrap_or_default().trim();
    let days = query.days.as_deref().unwrap_or_default().trim();
    let since_days = days.parse::<u32>().ok().filter(|d| *d > 0);
    let filter = AuditFilter {
        user: (!user.is_empty()).then(|| user.to_owned()),
        action: (!action.is_empty()).then(|| action.to_owned()),
        since: since_days.map(|d| now() - i64::from(d) * 86_400),
    };
    let flash = signed_in.take_flash(&state);

    // Show what happened a moment ago too, not only what is already written.
    if let Err(e) = state.audit.flush() {
        tracing::warn!(error = %e, "writing audit events failed");
    }
    let events = state
        .store
        .audit_events(&filter, LIMIT)
        .map_err(PageError::internal)?;

    let content = html! {
        h1 { "Audit log" }
        section.card aria-labelledby="audit-filter-heading" {
            h2 #audit-filter-heading { "Filter" }
            form #audit-filter method="get" action="/admin/audit" {
                div.row {
                    div.field {
                        label for="audit-user" { "User (actor or target)" }
                        input #audit-user type="text" name="user" value=(user) autocapitalize="none" spellcheck="false";
                    }
                    div.field {
                        label for="audit-action" { "Action starts with" }
                        input #audit-action type="text" name="action" value=(action) placeholder="e.g. token." spellcheck="false";
                    }
                    div.field {
                        label for="audit-days" { "Last days" }
                        input #audit-days type="number" name="days" value=(days) min="1" inputmode="numeric";
                        @if !days.is_empty() && since_days.is_none() { p.error { "Enter a whole number of days; showing all." } }
                    }
                }
                div.actions {
                    button type="submit" { "Show" }
                    a href="/admin/audit" { "Clear" }
                }
            }
        }
        section.card aria-labelledby="audit-heading" {
            h2 #audit-heading { "Events" span.count #event-count { (events.len()) @if events.len() == LIMIT { "+" } } }
            @if events.is_empty() {
                p.muted #no-events { "No events match." }
            } @else {
                @if events.len() == LIMIT { p.muted { "Showing the newest " (LIMIT) "; narrow the filter to see older ones." } }
                div.table-wrap {
                    table #audit-events .stack {
                        thead { tr { th { "When" } th { "Action" } th { "Target" } th { "Actor" } th { "From" } th { "Detail" } } }
                        tbody {
                            @for e in &events {
                                tr data-action=(e.action) {
                                    td data-label="When" { (when(e.at)) }
                                    td data-label="Action" { code { (e.action) } }
                                    td data-label="Target" { (e.target) }
                                    td.actor data-label="Actor" { @if e.actor.is_empty() { span.muted { "system" } } @else { (e.actor) } }
                                    td data-label="From" { (e.addr.as_deref().unwrap_or("")) }
                                    td data-label="Detail" { (e.detail.as_deref().unwrap_or("")) }
                                }
                            }
                        }
                    }
                }
            }
        }
    };
    let body = admin_page(
        "Audit log",
        Section::Audit,
        &signed_in,
        flash.as_ref(),
        content,
    );
    Ok(body.into_response())
}

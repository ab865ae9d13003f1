//! `/v2/token`: where registry clients trade credentials for a signed JWT.
//! GET with HTTP Basic (the docker protocol) and the OAuth2 POST form.

use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde::Serialize;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use tracing::{debug, error, warn};
use zeroize::Zeroizing;

use super::form::Form;
use super::{ApiError, ClientAddr, SharedState};
use crate::auth::{AuthError, Identity, Now, Via};
use crate::manage::validate_user_name;
use crate::metrics::TokenOutcome;
use crate::registry::jwt::{self, Claims};
use crate::registry::policy::Grant;
use crate::registry::scope::{Action, Scope, parse_scopes};

/// The credential a request carries.
enum Credential {
    Anonymous,
    Basic {
        username: String,
        secret: Zeroizing<String>,
    },
    Refresh(Zeroizing<String>),
}

/// A token request, parsed and bounded, before any check.
struct TokenRequest {
    service: Option<String>,
    scopes: Vec<Scope>,
    offline: bool,
    client_id: String,
    credential: Credential,
    /// POST answers also carry the granted `scope`.
    oauth: bool,
}

#[derive(Serialize)]
struct TokenResponse<'a> {
    token: &'a str,
    access_token: &'a str,
    expires_in: u64,
    issued_at: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    refresh_token: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    scope: Option<String>,
}

/// `GET /v2/token?service=…&scope=…[&offline_token=true&client_id=…]`.
pub async fn get(
    State(state): State<SharedState>,
    ClientAddr(addr): ClientAddr,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Result<Response, ApiError> {
    let form = Form::parse(query.unwrap_or_default().as_bytes())
        .map_err(|e| ApiError::bad_request("INVALID_REQUEST", e.to_string()))?;
    let credential = match basic_credentials(&headers)? {
        Some((username, secret)) => Credential::Basic { username, secret },
        None => Credential::Anonymous,
    };
    let request = TokenRequest {
        service: form.get("service").map(str::to_owned),
        scopes: scopes(&form)?,
        offline: form.get("offline_token") == Some("true"),
        client_id: form.get("client_id").unwrap_or_default().to_owned(),
        credential,
        oauth: false,
    };
    issue(&state, addr, request).await
}

/// `POST /v2/token`, form-encoded: `grant_type=password` or `refresh_token`.
pub async fn post(
    State(state): State<SharedState>,
    ClientAddr(addr): ClientAddr,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let body =
        body.map_err(|e| ApiError::from_status(e.status(), "INVALID_REQUEST", e.body_text()))?;
    if let Some(kind) = headers.get(header::CONTENT_TYPE)
        && !kind
            .as_bytes()
            .starts_with(b"application/x-www-form-urlencoded")
    {
        return Err(ApiError::bad_request(
            "INVALID_REQUEST",
            "the body must be application/x-www-form-urlencoded",
        ));
    }
    let form =
        Form::parse(&body).map_err(|e| ApiError::bad_request("INVALID_REQUEST", e.to_string()))?;
    let missing =
        |field| ApiError::bad_request("INVALID_REQUEST", format!("missing field {field}"));
    let credential = match form.get("grant_type") {
        Some("password") => Credential::Basic {
            username: form
                .get("username")
                .ok_or_else(|| missing("username"))?
                .to_owned(),
            secret: Zeroizing::new(
                form.get("password")
                    .ok_or_else(|| missing("password"))?
                    .to_owned(),
            ),
        },
        Some("refresh_token") => Credential::Refresh(Zeroizing::new(
            form.get("refresh_token")
                .ok_or_else(|| missing("refresh_token"))?
                .to_owned(),
        )),
        _ => {
            return Err(ApiError::bad_request(
                "UNSUPPORTED",
                "grant_type must be \"password\" or \"refresh_token\"",
            ));
        }
    };
    let request = TokenRequest {
        service: form.get("service").map(str::to_owned),
        scopes: scopes(&form)?,
        offline: form.get("access_type") == Some("offline"),
        client_id: form.get("client_id").unwrap_or_default().to_owned(),
        credential,
        oauth: true,
    };
    issue(&state, addr, request).await
}

fn scopes(form: &Form) -> Result<Vec<Scope>, ApiError> {
    parse_scopes(form.all("scope"))
        .map_err(|e| ApiError::bad_request("INVALID_SCOPE", e.to_string()))
}

/// Checks the service, authenticates, grants, signs and answers.
async fn issue(
    state: &SharedState,
    addr: std::net::IpAddr,
    request: TokenRequest,
) -> Result<Response, ApiError> {
    let config = &state.config;
    if let Some(service) = &request.service
        && service != &config.service
    {
        warn!(service.requested = ?service, service.expected = %config.service,
            "token request for another service; check the registry's auth.token.service");
        return Err(ApiError::bad_request(
            "INVALID_SERVICE",
            format!("service {service:?} is not served here"),
        ));
    }

    let now = Now::real();
    let identity = authenticate(state, &request.credential, addr, now).await?;

    let principal = identity.as_ref().map(Identity::principal);
    let user = principal.as_ref().map_or("", |p| p.name.as_str());
    let mut granted = Vec::with_capacity(request.scopes.len());
    let mut outcome = TokenOutcome::Granted;
    let mut denials = Vec::new();
    for asked in &request.scopes {
        let grant = state.policy.grant(principal.as_ref(), asked);
        denials.extend(rule_denial(asked, &grant));
        if grant.granted.actions != asked.actions {
            outcome = TokenOutcome::Reduced;
            debug!(user, scope.requested = %asked, scope.granted = %grant.granted,
                reasons = %grant.reasons.join("; "), "scope reduced by policy");
        }
        granted.push(grant.granted);
    }
    audit_rule_denials(state, user, &denials, addr);

    let refresh_token = match (&identity, &request.credential) {
        (
            Some(Identity {
                via: Via::Refresh { .. },
                ..
            }),
            Credential::Refresh(given),
        ) => Some(given.clone()),
        (Some(identity), _) if request.offline => {
            let secret = state
                .auth
                .issue_refresh(identity, &config.service, &request.client_id, now)
                .map_err(|e| {
                    error!(error = %e, "storing a refresh token failed");
                    ApiError::internal()
                })?;
            let detail = format!("client {}", request.client_id);
            let user = &identity.user.name;
            state
                .audit
                .record(user, "refresh.issued", user, Some(addr), Some(detail));
            Some(Zeroizing::new(secret.expose().to_owned()))
        }
        _ => None,
    };

    let subject = identity
        .as_ref()
        .map(|i| i.user.name.as_str())
        .unwrap_or("");
    let claims = Claims::new(
        &config.issuer,
        subject,
        &config.service,
        &granted,
        at(now),
        config.token_ttl,
    );
    let token = jwt::sign(&state.keys().signer, &claims).map_err(|e| {
        error!(error = %e, "signing a token failed");
        ApiError::internal()
    })?;

    let scope = request.oauth.then(|| {
        let granted: Vec<String> = granted
            .iter()
            .filter(|s| !s.actions.is_empty())
            .map(Scope::to_string)
            .collect();
        granted.join(" ")
    });
    let body = TokenResponse {
        token: &token,
        access_token: &token,
        expires_in: config.token_ttl,
        issued_at: at(now).format(&Rfc3339).unwrap_or_default(),
        refresh_token: refresh_token.as_deref().map(String::as_str),
        scope,
    };
    let mut response = Json(body).into_response();
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response.extensions_mut().insert(outcome);
    Ok(response)
}

/// Times every token request and counts it by outcome (see [`TokenOutcome`]).
pub async fn measure(
    State(state): State<SharedState>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let started = std::time::Instant::now();
    let response = next.run(request).await;
    let outcome = match response.status() {
        s if s.is_server_error() => TokenOutcome::Error,
        s if !s.is_success() => TokenOutcome::Refused,
        _ => response
            .extensions()
            .get::<TokenOutcome>()
            .copied()
            .unwrap_or(TokenOutcome::Granted),
    };
    state.metrics.token_request(outcome, started.elapsed());
    response
}

/// A push or delete (or `*`) in `asked` that a rule denied outright (not
/// merely not allowed), described for the audit log.
fn rule_denial(asked: &Scope, grant: &Grant) -> Option<String> {
    let wants_all = asked.actions.contains(&Action::All);
    let denied: Vec<&str> = [Action::Push, Action::Delete]
        .into_iter()
        .filter(|a| (wants_all || asked.actions.contains(a)) && grant.denied_by_rule.contains(a))
        .map(Action::as_str)
        .collect();
    (!denied.is_empty()).then(|| format!("{} on {}", denied.join(","), asked.name))
}

/// Most denied scopes one audit event lists by name.
const DENIALS_LISTED: usize = 5;

/// One audit event per token request for the pushes and deletes rules
/// denied, rate-limited per client so a flood of denied requests cannot
/// flood the log.
fn audit_rule_denials(state: &SharedState, user: &str, denials: &[String], addr: std::net::IpAddr) {
    let Some(first) = denials.first() else { return };
    let who = if user.is_empty() {
        addr.to_string()
    } else {
        user.to_owned()
    };
    if !state
        .audit
        .admit_noisy(&format!("denied:{who}"), std::time::Instant::now())
    {
        return;
    }
    let mut detail = denials
        .iter()
        .take(DENIALS_LISTED)
        .cloned()
        .collect::<Vec<_>>()
        .join("; ");
    if denials.len() > DENIALS_LISTED {
        detail.push_str(&format!("; and {} more", denials.len() - DENIALS_LISTED));
    }
    let target = first
        .rsplit_once(" on ")
        .map_or(first.as_str(), |(_, repo)| repo);
    state.audit.record(
        user,
        "access.denied",
        target,
        Some(addr),
        Some(format!("denied by rule: {detail}")),
    );
}

/// Turns the request's credential into an identity; `None` when anonymous.
async fn authenticate(
    state: &SharedState,
    credential: &Credential,
    addr: std::net::IpAddr,
    now: Now,
) -> Result<Option<Identity>, ApiError> {
    let (result, account) = match credential {
        Credential::Anonymous => return Ok(None),
        Credential::Basic { username, secret } => (
            state.auth.basic(username, secret, addr, now).await,
            loggable(username),
        ),
        Credential::Refresh(secret) => (
            state.auth.refresh(secret, &state.config.service, addr, now),
            "<refresh token>",
        ),
    };
    match result {
        Ok(identity) => Ok(Some(identity)),
        Err(AuthError::Rejected(reason)) => {
            warn!(account, client.addr = %addr, reason, "credentials refused");
            // Throttling bounds how many of these one client can cause.
            let who = if account.starts_with('<') {
                ""
            } else {
                account
            };
            if state
                .audit
                .admit_noisy(&format!("failed:{addr}"), std::time::Instant::now())
            {
                let detail = format!("token endpoint: {reason}");
                state
                    .audit
                    .record(who, "signin.failure", who, Some(addr), Some(detail));
            }
            Err(ApiError::unauthorized("invalid credentials"))
        }
        Err(AuthError::PasswordsRefused) => {
            warn!(account, client.addr = %addr, "password refused: tokens-only mode");
            Err(ApiError::unauthorized(
                "this server accepts application tokens only; create one in the web UI",
            ))
        }
        Err(AuthError::Throttled(wait)) => {
            warn!(account, client.addr = %addr, retry_after.s = wait.as_secs(), "credentials throttled");
            Err(ApiError::too_many(wait.as_secs_f64().ceil() as u64))
        }
        Err(AuthError::Store(e)) => {
            error!(error = %e, "reading credentials from the store failed");
            Err(ApiError::internal())
        }
    }
}

/// A user name is logged only when it is a valid one: people sometimes type
/// their password into the user field.
fn loggable(username: &str) -> &str {
    if validate_user_name(username).is_ok() {
        username
    } else {
        "<invalid user name>"
    }
}

/// HTTP Basic credentials, if any. Anything else in `Authorization` is a
/// client error, answered clearly rather than treated as anonymous.
fn basic_credentials(headers: &HeaderMap) -> Result<Option<(String, Zeroizing<String>)>, ApiError> {
    let Some(value) = headers.get(header::AUTHORIZATION) else {
        return Ok(None);
    };
    let malformed = || {
        ApiError::bad_request(
            "INVALID_REQUEST",
            "malformed Basic credentials in the Authorization header",
        )
    };
    let value = value.to_str().map_err(|_| malformed())?;
    let (scheme, encoded) = value.split_once(' ').ok_or_else(malformed)?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return Err(ApiError::bad_request(
            "INVALID_REQUEST",
            "only Basic authorization is accepted here",
        ));
    }
    let decoded = Zeroizing::new(STANDARD.decode(encoded.trim()).map_err(|_| malformed())?);
    let text = std::str::from_utf8(&decoded).map_err(|_| malformed())?;
    let (username, secret) = text.split_once(':').ok_or_else(malformed)?;
    Ok(Some((
        username.to_owned(),
        Zeroizing::new(secret.to_owned()),
    )))
}

fn at(now: Now) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(now.unix).unwrap_or(OffsetDateTime::UNIX_EPOCH)
}

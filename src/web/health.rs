//! Operational endpoints: liveness, readiness and Prometheus metrics.

use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::SharedState;
use crate::metrics::StoreFigures;

/// `GET /healthz`: the process answers.
pub async fn healthz() -> &'static str {
    "ok\n"
}

/// `GET /readyz`: the store can be read and the signing certificate is valid.
pub async fn readyz(State(state): State<SharedState>) -> Response {
    let now = time::OffsetDateTime::now_utc();
    if let Err(e) = state.store.counts() {
        tracing::error!(error = %e, "readiness check: the store cannot be read");
        return (StatusCode::SERVICE_UNAVAILABLE, "store unavailable\n").into_response();
    }
    if state.keys().signing_not_after <= now {
        tracing::error!("readiness check: the signing certificate has expired");
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            "signing certificate expired\n",
        )
            .into_response();
    }
    "ready\n".into_response()
}

/// `GET /metrics`, in the Prometheus text format.
pub async fn metrics(State(state): State<SharedState>) -> Response {
    let (users, tokens, sessions) = state.store.counts().unwrap_or_default();
    let path = state.config.data_dir.join(crate::store::DB_FILE);
    let file_bytes = std::fs::metadata(path).map(|m| m.len()).unwrap_or_default();
    let body = state.metrics.render(StoreFigures {
        users,
        tokens,
        sessions,
        file_bytes,
    });
    let kind = "application/openmetrics-text; version=1.0.0; charset=utf-8";
    ([(header::CONTENT_TYPE, kind)], body).into_response()
}

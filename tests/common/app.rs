//! An in-process application on a fresh data directory: a real redb file and
//! real keys, with requests sent straight into the router.

use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::http::{HeaderMap, Request, StatusCode};
use http_body_util::BodyExt;
use tower::ServiceExt;

use portcullis::AppState;
use portcullis::auth::password::Password;
use portcullis::config::Config;
use portcullis::manage::Expiry;
use portcullis::registry::policy::AccessLevel;

pub const ADMIN_PASSWORD: &str = "admin password 1";
pub const ALICE_PASSWORD: &str = "alice password 1";
pub const BOB_PASSWORD: &str = "bob password 1";

/// The application with users `admin` (admin), `alice` and `bob`.
pub struct TestApp {
    _dir: tempfile::TempDir,
    pub state: Arc<AppState>,
    router: Router,
}

/// A response, read whole.
pub struct Answer {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub bytes: Vec<u8>,
}

impl Answer {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.bytes).into_owned()
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.bytes).unwrap_or(serde_json::Value::Null)
    }

    pub fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
    }

    /// Every `Set-Cookie` value.
    pub fn set_cookies(&self) -> Vec<String> {
        let all = self.headers.get_all("set-cookie");
        all.iter().map(|v| v.to_str().unwrap().to_owned()).collect()
    }
}

impl TestApp {
    pub fn new() -> TestApp {
        TestApp::with(|_| {})
    }

    pub fn with(adjust: impl FnOnce(&mut Config)) -> TestApp {
        let dir = tempfile::tempdir().unwrap();
        let mut config = Config {
            data_dir: dir.path().join("data"),
            ..Config::default()
        };
        config.admin_password = Some(ADMIN_PASSWORD.to_owned());
        adjust(&mut config);
        let state = Arc::new(AppState::open(config).unwrap());
        let router = portcullis::web::router(Arc::clone(&state));
        let manager = &state.manager;
        manager
            .add_user("alice", false, &Password::new(ALICE_PASSWORD), 0)
            .unwrap();
        manager
            .add_user("bob", false, &Password::new(BOB_PASSWORD), 0)
            .unwrap();
        TestApp {
            _dir: dir,
            state,
            router,
        }
    }

    /// Creates an application token and returns its secret.
    pub fn token(&self, user: &str, name: &str, access: AccessLevel) -> String {
        let (_, secret) = self
            .state
            .manager
            .create_token(user, name, access, Expiry::Never, None, now())
            .unwrap();
        secret.expose().to_owned()
    }

    pub async fn send(&self, request: Request<Body>) -> Answer {
        let response = self.router.clone().oneshot(request).await.unwrap();
        let status = response.status();
        let headers = response.headers().clone();
        let bytes = response
            .into_body()
            .collect()
            .await
            .unwrap()
            .to_bytes()
            .to_vec();
        Answer {
            status,
            headers,
            bytes,
        }
    }
}

pub fn now() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

//! In-process tests of the token endpoint: every branch, real redb file on
//! disk, real signing keys, requests sent straight into the router.

mod common;

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use serde_json::Value;

use common::app::{ADMIN_PASSWORD, ALICE_PASSWORD, BOB_PASSWORD, TestApp, now};
use portcullis::auth::password::Password;
use portcullis::registry::policy::AccessLevel;
use portcullis::store::NewToken;

/// A token endpoint answer, decoded.
struct Reply {
    status: StatusCode,
    headers: axum::http::HeaderMap,
    body: Value,
}

impl Reply {
    /// The JWT's header and claims, decoded (signature checked separately).
    fn jwt(&self) -> (Value, Value) {
        let token = self.body["token"].as_str().expect("a token");
        let mut parts = token.split('.');
        let mut part = || {
            let bytes = URL_SAFE_NO_PAD.decode(parts.next().unwrap()).unwrap();
            serde_json::from_slice(&bytes).unwrap()
        };
        (part(), part())
    }

    fn access(&self) -> Value {
        self.jwt().1["access"].clone()
    }

    fn error_code(&self) -> &str {
        self.body["errors"][0]["code"].as_str().unwrap_or_default()
    }
}

async fn send(app: &TestApp, request: Request<Body>) -> Reply {
    let answer = app.send(request).await;
    Reply {
        status: answer.status,
        body: answer.json(),
        headers: answer.headers,
    }
}

async fn get(app: &TestApp, query: &str, basic: Option<(&str, &str)>) -> Reply {
    let mut request = Request::get(format!("/v2/token?{query}"));
    if let Some((user, secret)) = basic {
        request = request.header(header::AUTHORIZATION, basic_header(user, secret));
    }
    send(app, request.body(Body::empty()).unwrap()).await
}

async fn post(app: &TestApp, form: &str) -> Reply {
    let request = Request::post("/v2/token")
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(Body::from(form.to_owned()))
        .unwrap();
    send(app, request).await
}

fn basic_header(user: &str, secret: &str) -> String {
    format!("Basic {}", STANDARD.encode(format!("{user}:{secret}")))
}

fn actions(access: &Value, name: &str) -> Vec<String> {
    let entry = access
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["name"] == name);
    entry.map_or_else(Vec::new, |a| {
        a["actions"]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_str().unwrap().to_owned())
            .collect()
    })
}

const PUSH_ALL: &str = "scope=repository:alice/app:pull,push,delete";

#[tokio::test]
async fn anonymous_gets_a_token_with_no_access() {
    let app = TestApp::new();
    let login = get(&app, "service=registry", None).await;
    assert_eq!(login.status, StatusCode::OK);
    assert_eq!(login.jwt().1["sub"], "");
    assert_eq!(login.access(), Value::Array(vec![]));

    let asked = get(&app, &format!("service=registry&{PUSH_ALL}"), None).await;
    assert_eq!(asked.status, StatusCode::OK);
    assert_eq!(asked.access(), Value::Array(vec![]));
}

#[tokio::test]
async fn token_shape_follows_the_spec_and_verifies() {
    let app = TestApp::new();
    let answer = get(
        &app,
        &format!("service=registry&{PUSH_ALL}&account=mallory"),
        Some(("alice", ALICE_PASSWORD)),
    )
    .await;
    assert_eq!(answer.status, StatusCode::OK);
    assert_eq!(answer.headers[header::CACHE_CONTROL], "no-store");
    assert_eq!(answer.body["token"], answer.body["access_token"]);
    assert_eq!(answer.body["expires_in"], 900);
    assert!(answer.body["issued_at"].as_str().unwrap().ends_with('Z'));
    assert!(answer.body.get("refresh_token").is_none());
    assert!(
        answer.body.get("scope").is_none(),
        "scope is only in POST answers"
    );

    let (head, claims) = answer.jwt();
    assert_eq!(head["alg"], "ES256");
    assert_eq!(head["typ"], "JWT");
    assert_eq!(head["kid"], app.state.keys().signer.kid.as_str());
    assert_eq!(head["kid"].as_str().unwrap().len(), 59);
    assert_eq!(head["x5c"].as_array().unwrap().len(), 2);
    assert_eq!(claims["iss"], "portcullis");
    assert_eq!(
        claims["sub"], "alice",
        "sub comes from the credential, never from account"
    );
    assert_eq!(claims["aud"], "registry", "aud is a single string");
    assert!(claims["nbf"].as_i64() < claims["iat"].as_i64());
    assert_eq!(
        claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap(),
        900
    );
    assert!(claims["jti"].as_str().unwrap().len() >= 16);
    assert_eq!(
        actions(&claims["access"], "alice/app"),
        ["pull", "push", "delete"]
    );

    // The signature verifies with the key certified in x5c[0].
    let leaf = STANDARD.decode(head["x5c"][0].as_str().unwrap()).unwrap();
    let (_, cert) = x509_parser::parse_x509_certificate(&leaf).unwrap();
    let key = jsonwebtoken::DecodingKey::from_ec_der(&cert.public_key().subject_public_key.data);
    let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::ES256);
    validation.set_audience(&["registry"]);
    let token = answer.body["token"].as_str().unwrap();
    jsonwebtoken::decode::<Value>(token, &key, &validation).expect("signature verifies");
}

#[tokio::test]
async fn grants_the_intersection_of_asked_and_allowed() {
    let app = TestApp::new();
    let query = "service=registry&scope=repository:alice/app:pull,push%20repository:bob/app:pull\
                 &scope=repository:localhost:5000/alice/x:pull&scope=registry:catalog:*\
                 &scope=unknown:thing:pull";
    let answer = get(&app, query, Some(("alice", ALICE_PASSWORD))).await;
    assert_eq!(answer.status, StatusCode::OK);
    let access = answer.access();
    assert_eq!(actions(&access, "alice/app"), ["pull", "push"]);
    assert_eq!(access.as_array().unwrap().len(), 1, "{access}");

    let admin = get(&app, query, Some(("admin", ADMIN_PASSWORD))).await;
    let access = admin.access();
    assert_eq!(actions(&access, "bob/app"), ["pull"]);
    assert_eq!(actions(&access, "catalog"), ["*"]);
}

#[tokio::test]
async fn application_tokens_are_capped_by_level_and_owner() {
    let app = TestApp::new();
    let pull = app.token("alice", "pull", AccessLevel::Pull);
    let push = app.token("alice", "push", AccessLevel::Push);
    let q = format!("service=registry&{PUSH_ALL}");

    let answer = get(&app, &q, Some(("alice", &pull))).await;
    assert_eq!(actions(&answer.access(), "alice/app"), ["pull"]);
    let answer = get(&app, &q, Some(("alice", &push))).await;
    assert_eq!(actions(&answer.access(), "alice/app"), ["pull", "push"]);

    let wrong_user = get(&app, &q, Some(("bob", &push))).await;
    assert_eq!(wrong_user.status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        wrong_user.headers[header::WWW_AUTHENTICATE],
        "Basic realm=\"portcullis\""
    );
    assert_eq!(wrong_user.error_code(), "UNAUTHORIZED");
}

#[tokio::test]
async fn refused_credentials_all_look_the_same() {
    let app = TestApp::new();
    let token = app.token("alice", "t", AccessLevel::Push);
    let mut corrupted = token.clone().into_bytes();
    corrupted[8] = if corrupted[8] == b'a' { b'b' } else { b'a' };
    let corrupted = String::from_utf8(corrupted).unwrap();
    let unknown = "pcl_0000000000000000000000000000000000000A";
    let cases = [
        ("alice", "wrong password"),
        ("nobody", "wrong password"),
        ("alice", corrupted.as_str()),
        ("alice", unknown),
        ("", ""),
    ];
    let mut bodies = Vec::new();
    for (user, secret) in cases {
        let answer = get(&app, "service=registry", Some((user, secret))).await;
        assert_eq!(answer.status, StatusCode::UNAUTHORIZED, "{user}");
        bodies.push(answer.body);
    }
    assert!(bodies.windows(2).all(|w| w[0] == w[1]), "{bodies:?}");
}

#[tokio::test]
async fn bad_input_gets_a_clear_400() {
    let app = TestApp::new();
    let long = "a".repeat(20_000);
    let cases: Vec<(String, &str)> = vec![
        (
            "service=registry&scope=repository:alice".into(),
            "INVALID_SCOPE",
        ),
        (
            "service=registry&scope=repository:Alice/App:pull".into(),
            "INVALID_SCOPE",
        ),
        (
            "service=registry&scope=repository::pull".into(),
            "INVALID_SCOPE",
        ),
        (
            format!(
                "service=registry&scope={}",
                "repository:a/b:pull+".repeat(65)
            ),
            "INVALID_SCOPE",
        ),
        ("service=registry&scope=%FF%FE".into(), "INVALID_REQUEST"),
        (format!("service=registry&x={long}"), "INVALID_REQUEST"),
        ("service=other".into(), "INVALID_SERVICE"),
    ];
    for (query, code) in cases {
        let answer = get(&app, &query, None).await;
        assert_eq!(
            answer.status,
            StatusCode::BAD_REQUEST,
            "{}",
            &query[..query.len().min(80)]
        );
        assert_eq!(
            answer.error_code(),
            code,
            "{}",
            &query[..query.len().min(80)]
        );
        assert!(
            !answer.body["errors"][0]["message"]
                .as_str()
                .unwrap()
                .is_empty()
        );
    }
}

#[tokio::test]
async fn a_recreated_account_does_not_inherit_the_old_password() {
    let app = TestApp::new();
    let q = "service=registry";
    assert_eq!(
        get(&app, q, Some(("alice", ALICE_PASSWORD))).await.status,
        StatusCode::OK
    );
    app.state.manager.delete_user("alice").unwrap();
    let fresh = Password::new("a brand new password");
    app.state
        .manager
        .add_user("alice", false, &fresh, now())
        .unwrap();
    let old = get(&app, q, Some(("alice", ALICE_PASSWORD))).await;
    assert_eq!(
        old.status,
        StatusCode::UNAUTHORIZED,
        "the remembered success is not reused"
    );
}

#[tokio::test]
async fn service_accounts_have_no_password_to_set() {
    let app = TestApp::new();
    app.state.manager.add_service_account("ci", now()).unwrap();
    let set = app
        .state
        .manager
        .set_password("ci", &Password::new("a password 1"));
    assert!(set.is_err());
    let token = app.token("ci", "deploy", AccessLevel::Push);
    let answer = get(
        &app,
        "service=registry&scope=repository:ci/app:push",
        Some(("ci", &token)),
    )
    .await;
    assert_eq!(actions(&answer.access(), "ci/app"), ["push"]);
}

#[tokio::test]
async fn a_running_server_renews_its_signing_certificate() {
    let app = TestApp::new();
    let before = app.state.keys();
    let today = time::OffsetDateTime::now_utc();
    assert!(
        !app.state.renew_keys_if_due(today).unwrap(),
        "nothing to do yet"
    );
    let near_the_end = before.signing_not_after - time::Duration::days(10);
    assert!(app.state.renew_keys_if_due(near_the_end).unwrap());
    let after = app.state.keys();
    assert_eq!(after.signer.kid, before.signer.kid, "same key");
    assert!(
        after.signing_not_after > before.signing_not_after,
        "new certificate"
    );
    let answer = get(&app, "service=registry", Some(("alice", ALICE_PASSWORD))).await;
    assert_eq!(
        answer.jwt().0["x5c"][0],
        after.signer.x5c[0].as_str(),
        "signs with it"
    );
}

#[tokio::test]
async fn a_huge_body_gets_a_json_413() {
    let app = TestApp::new();
    let answer = post(
        &app,
        &format!("grant_type=password&x={}", "a".repeat(20_000)),
    )
    .await;
    assert_eq!(answer.status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(answer.error_code(), "INVALID_REQUEST");
}

#[tokio::test]
async fn garbage_authorization_headers_are_rejected() {
    let app = TestApp::new();
    let values: Vec<Vec<u8>> = vec![
        b"Basic !!!not-base64!!!".to_vec(),
        format!("Basic {}", STANDARD.encode("no-colon")).into_bytes(),
        format!("Basic {}", STANDARD.encode([0xff, 0xfe, b':', 0x80])).into_bytes(),
        b"Bearer abc".to_vec(),
        b"Basic".to_vec(),
        b"Basic \xff\xfe".to_vec(),
    ];
    for value in values {
        let request = Request::get("/v2/token?service=registry")
            .header(
                header::AUTHORIZATION,
                axum::http::HeaderValue::from_bytes(&value).unwrap(),
            )
            .body(Body::empty())
            .unwrap();
        let answer = send(&app, request).await;
        assert_eq!(
            answer.status,
            StatusCode::BAD_REQUEST,
            "{:?}",
            String::from_utf8_lossy(&value)
        );
        assert_eq!(answer.error_code(), "INVALID_REQUEST");
    }
}

#[tokio::test]
async fn refresh_tokens_are_stable_bound_and_capped() {
    let app = TestApp::new();
    let pull = app.token("alice", "pull", AccessLevel::Pull);
    let login = get(
        &app,
        "service=registry&offline_token=true&client_id=docker",
        Some(("alice", &pull)),
    )
    .await;
    assert_eq!(login.status, StatusCode::OK);
    let refresh = login.body["refresh_token"].as_str().unwrap().to_owned();
    assert!(refresh.starts_with("pclr_"));

    let form = format!(
        "grant_type=refresh_token&refresh_token={refresh}&service=registry&client_id=docker\
         &scope=repository:alice/app:pull,push&scope=repository:bob/app:pull"
    );
    let answer = post(&app, &form).await;
    assert_eq!(answer.status, StatusCode::OK);
    assert_eq!(
        answer.body["refresh_token"],
        refresh.as_str(),
        "the same refresh token comes back"
    );
    assert_eq!(answer.body["scope"], "repository:alice/app:pull");
    assert_eq!(answer.jwt().1["sub"], "alice");
    assert_eq!(
        actions(&answer.access(), "alice/app"),
        ["pull"],
        "never more than the pull token"
    );

    let other_service = form.replace("service=registry", "service=elsewhere");
    assert_eq!(
        post(&app, &other_service).await.status,
        StatusCode::BAD_REQUEST
    );

    app.state.manager.revoke_token("alice", "pull").unwrap();
    let after = post(&app, &form).await;
    assert_eq!(
        after.status,
        StatusCode::UNAUTHORIZED,
        "dies with its application token"
    );
}

#[tokio::test]
async fn refresh_tokens_from_passwords_die_with_a_password_change() {
    let app = TestApp::new();
    let login = get(
        &app,
        "service=registry&offline_token=true",
        Some(("alice", ALICE_PASSWORD)),
    )
    .await;
    let refresh = login.body["refresh_token"].as_str().unwrap().to_owned();
    let form =
        format!("grant_type=refresh_token&refresh_token={refresh}&service=registry&{PUSH_ALL}");
    let answer = post(&app, &form).await;
    assert_eq!(
        actions(&answer.access(), "alice/app"),
        ["pull", "push", "delete"]
    );

    app.state
        .manager
        .set_password("alice", &Password::new("a new password"))
        .unwrap();
    assert_eq!(post(&app, &form).await.status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn oauth_password_grant_and_bad_forms() {
    let app = TestApp::new();
    let form = format!(
        "grant_type=password&username=alice&password={}&service=registry&client_id=x\
         &access_type=offline&{PUSH_ALL}",
        ALICE_PASSWORD.replace(' ', "+")
    );
    let answer = post(&app, &form).await;
    assert_eq!(answer.status, StatusCode::OK);
    assert!(
        answer.body["refresh_token"]
            .as_str()
            .unwrap()
            .starts_with("pclr_")
    );
    assert_eq!(
        answer.body["scope"],
        "repository:alice/app:pull,push,delete"
    );

    for (form, code) in [
        (
            "grant_type=password&username=alice&service=registry",
            "INVALID_REQUEST",
        ),
        (
            "grant_type=refresh_token&service=registry",
            "INVALID_REQUEST",
        ),
        (
            "grant_type=client_credentials&service=registry",
            "UNSUPPORTED",
        ),
        ("service=registry", "UNSUPPORTED"),
    ] {
        let answer = post(&app, form).await;
        assert_eq!(answer.status, StatusCode::BAD_REQUEST, "{form}");
        assert_eq!(answer.error_code(), code, "{form}");
    }

    let json = Request::post("/v2/token")
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from("{}"))
        .unwrap();
    assert_eq!(send(&app, json).await.status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn chunked_post_without_content_length_works() {
    let app = TestApp::new();
    let token = app.token("alice", "t", AccessLevel::Push);
    let chunks: Vec<Result<String, std::io::Error>> = vec![
        Ok("grant_type=password&username=alice&".into()),
        Ok(format!("password={token}&service=registry&")),
        Ok("scope=repository:alice/app:pull".into()),
    ];
    let body = Body::from_stream(futures_stream(chunks));
    let request = Request::post("/v2/token")
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .header(header::TRANSFER_ENCODING, "chunked")
        .body(body)
        .unwrap();
    let answer = send(&app, request).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
    assert_eq!(answer.body["scope"], "repository:alice/app:pull");
}

fn futures_stream(
    items: Vec<Result<String, std::io::Error>>,
) -> impl futures_core::Stream<Item = Result<String, std::io::Error>> {
    tokio_stream::iter(items)
}

#[tokio::test]
async fn tokens_only_mode_refuses_passwords() {
    let app = TestApp::with(|c| c.tokens_only = true);
    let token = app.token("alice", "t", AccessLevel::Push);
    let q = format!("service=registry&{PUSH_ALL}");
    let refused = get(&app, &q, Some(("alice", ALICE_PASSWORD))).await;
    assert_eq!(refused.status, StatusCode::UNAUTHORIZED);
    assert!(
        refused.body["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("application tokens only")
    );
    let ok = get(&app, &q, Some(("alice", &token))).await;
    assert_eq!(actions(&ok.access(), "alice/app"), ["pull", "push"]);
}

#[tokio::test]
async fn disabled_users_and_expired_tokens_are_refused_next_time() {
    let app = TestApp::new();
    let token = app.token("alice", "t", AccessLevel::Push);
    let q = "service=registry";
    assert_eq!(
        get(&app, q, Some(("alice", &token))).await.status,
        StatusCode::OK
    );
    app.state.manager.set_disabled("alice", true).unwrap();
    assert_eq!(
        get(&app, q, Some(("alice", &token))).await.status,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        get(&app, q, Some(("alice", ALICE_PASSWORD))).await.status,
        StatusCode::UNAUTHORIZED
    );
    app.state.manager.set_disabled("alice", false).unwrap();
    assert_eq!(
        get(&app, q, Some(("alice", &token))).await.status,
        StatusCode::OK
    );

    let secret = portcullis::auth::secret::TokenSecret::generate(
        portcullis::auth::secret::SecretKind::AppToken,
    );
    let expired = NewToken {
        user: "alice".into(),
        name: "old".into(),
        access: AccessLevel::Push,
        expires: Some(now() - 1),
        repositories: None,
    };
    app.state
        .store
        .create_token(&secret.digest(), &expired, 5, now() - 100)
        .unwrap();
    assert_eq!(
        get(&app, q, Some(("alice", secret.expose()))).await.status,
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test]
async fn failures_are_throttled_without_locking_out_tokens() {
    let app = TestApp::new();
    let token = app.token("alice", "t", AccessLevel::Pull);
    let q = "service=registry";
    let mut statuses = Vec::new();
    for _ in 0..7 {
        statuses.push(get(&app, q, Some(("alice", "wrong password"))).await.status);
    }
    assert_eq!(statuses[..5], [StatusCode::UNAUTHORIZED; 5]);
    let blocked = get(&app, q, Some(("alice", ALICE_PASSWORD))).await;
    assert_eq!(
        blocked.status,
        StatusCode::TOO_MANY_REQUESTS,
        "even the right password waits"
    );
    assert!(
        blocked.headers[header::RETRY_AFTER]
            .to_str()
            .unwrap()
            .parse::<u64>()
            .unwrap()
            >= 1
    );
    assert_eq!(blocked.error_code(), "TOOMANYREQUESTS");

    let with_token = get(&app, q, Some(("alice", &token))).await;
    assert_eq!(
        with_token.status,
        StatusCode::OK,
        "valid application tokens still work"
    );
    let bob = get(&app, q, Some(("bob", BOB_PASSWORD))).await;
    assert_eq!(bob.status, StatusCode::OK, "other accounts are unaffected");
}

#[tokio::test]
async fn token_requests_write_nothing_until_the_batch() {
    let app = TestApp::new();
    let token = app.token("alice", "t", AccessLevel::Pull);
    assert_eq!(
        get(&app, "service=registry", Some(("alice", &token)))
            .await
            .status,
        StatusCode::OK
    );
    let before = app.state.store.tokens_of("alice").unwrap();
    assert_eq!(before[0].last_used, None, "no write on the hot path");
    app.state.flush_usage().unwrap();
    let after = app.state.store.tokens_of("alice").unwrap();
    assert!(after[0].last_used.is_some());
    assert_eq!(after[0].last_used_addr.as_deref(), Some("0.0.0.0"));
}

#[tokio::test]
async fn health_readiness_and_metrics() {
    let app = TestApp::new();
    let plain = |path: &str| Request::get(path).body(Body::empty()).unwrap();
    assert_eq!(app.send(plain("/healthz")).await.status, StatusCode::OK);
    assert_eq!(app.send(plain("/readyz")).await.status, StatusCode::OK);

    get(
        &app,
        "service=registry&scope=repository:alice/app:pull",
        Some(("alice", ALICE_PASSWORD)),
    )
    .await;
    get(
        &app,
        "service=registry&scope=repository:bob/app:pull",
        Some(("alice", ALICE_PASSWORD)),
    )
    .await;
    get(&app, "service=registry", Some(("alice", "wrong password"))).await;
    let metrics = app.send(plain("/metrics")).await.text();
    for line in [
        "portcullis_token_requests_total{outcome=\"granted\"} 1",
        "portcullis_token_requests_total{outcome=\"reduced\"} 1",
        "portcullis_token_requests_total{outcome=\"refused\"} 1",
        "portcullis_token_request_duration_seconds_count 3",
        "portcullis_users 3",
    ] {
        assert!(metrics.contains(line), "missing {line}:\n{metrics}");
    }
}

#[tokio::test]
async fn forwarded_addresses_count_only_behind_trusted_proxies() {
    // In-process requests have no socket peer and count as 0.0.0.0.
    let behind_proxy = TestApp::with(|c| c.trusted_proxies = vec!["0.0.0.0".into()]);
    let direct = TestApp::new();
    for (app, expected) in [(&behind_proxy, "192.0.2.7"), (&direct, "0.0.0.0")] {
        let token = app.token("alice", "t", AccessLevel::Pull);
        let request = Request::get("/v2/token?service=registry")
            .header(header::AUTHORIZATION, basic_header("alice", &token))
            .header("x-forwarded-for", "192.0.2.7")
            .body(Body::empty())
            .unwrap();
        assert_eq!(app.send(request).await.status, StatusCode::OK);
        app.state.flush_usage().unwrap();
        let used = app.state.store.tokens_of("alice").unwrap()[0]
            .last_used_addr
            .clone();
        assert_eq!(used.as_deref(), Some(expected));
    }
}

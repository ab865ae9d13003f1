//! In-process tests of the web UI: every page and form branch, with a small
//! cookie-keeping visitor. The real browser test is tests/browser.rs.

mod common;

use axum::body::Body;
use axum::http::{Request, StatusCode, header};

use common::app::{ALICE_PASSWORD, BOB_PASSWORD, TestApp, now};
use common::visitor::{Visitor, flash_of, location};
use portcullis::registry::policy::AccessLevel;
use portcullis::store::Session;

#[tokio::test]
async fn pages_carry_security_headers_and_require_sign_in() {
    let app = TestApp::new();
    let mut visitor = Visitor::new(&app);
    let page = visitor.get("/login").await;
    assert_eq!(page.status, StatusCode::OK);
    let csp = page.header("content-security-policy");
    assert!(
        csp.contains("frame-ancestors 'none'") && csp.contains("script-src 'self'"),
        "{csp}"
    );
    assert!(!csp.contains("unsafe-inline"));
    assert_eq!(page.header("x-content-type-options"), "nosniff");
    assert_eq!(page.header("referrer-policy"), "no-referrer");
    assert!(!page.text().contains("<script>"), "no inline script");

    for path in ["/", "/tokens/created", "/tokens/abc/remove"] {
        let answer = visitor.get(path).await;
        assert_eq!(answer.status, StatusCode::SEE_OTHER, "{path}");
        assert_eq!(location(&answer), "/login", "{path}");
    }
    assert_eq!(visitor.get("/nowhere").await.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn wrong_password_unknown_user_and_token_fail_alike() {
    let app = TestApp::new();
    let token = app.token("alice", "laptop", AccessLevel::Push);
    let mut messages = Vec::new();
    for (user, password) in [
        ("alice", "wrong password"),
        ("nobody", "wrong password"),
        ("alice", token.as_str()),
    ] {
        let mut visitor = Visitor::new(&app);
        let answer = visitor.login(user, password).await;
        assert_eq!(answer.status, StatusCode::UNAUTHORIZED, "{user}");
        assert!(
            answer
                .set_cookies()
                .iter()
                .all(|c| !c.starts_with("portcullis_session="))
        );
        messages.push(flash_of(&answer).unwrap());
    }
    assert!(
        messages
            .iter()
            .all(|m| m == "Invalid user name or password."),
        "{messages:?}"
    );
}

#[tokio::test]
async fn sign_in_sets_a_safe_cookie_and_a_new_session() {
    let app = TestApp::new();
    let mut visitor = Visitor::new(&app);
    visitor
        .cookies
        .insert("portcullis_session".into(), "planted-by-attacker".into());
    let answer = visitor.login("alice", ALICE_PASSWORD).await;
    assert_eq!(answer.status, StatusCode::SEE_OTHER);
    assert_eq!(location(&answer), "/");
    let cookie = answer
        .set_cookies()
        .into_iter()
        .find(|c| c.starts_with("portcullis_session="));
    let cookie = cookie.expect("a session cookie");
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("SameSite=Lax"),
        "{cookie}"
    );
    assert!(!cookie.contains("Secure"), "plain http public URL");
    assert!(!cookie.contains("planted-by-attacker"));

    let profile = visitor.get("/").await;
    assert_eq!(profile.status, StatusCode::OK);
    assert!(profile.text().contains("<h1>alice</h1>"));

    let https = TestApp::with(|c| c.public_url = Some("https://auth.example.test".into()));
    let mut visitor = Visitor::new(&https);
    let answer = visitor.login("alice", ALICE_PASSWORD).await;
    assert!(answer.set_cookies().iter().all(|c| c.contains("; Secure")));
}

#[tokio::test]
async fn forms_without_the_right_csrf_token_change_nothing() {
    let app = TestApp::new();
    let mut visitor = Visitor::signed_in(&app, "alice", ALICE_PASSWORD).await;
    let create = [("name", "laptop"), ("access", "push"), ("expiry", "never")];
    let missing = visitor.post("/tokens", &create).await;
    assert_eq!(missing.status, StatusCode::FORBIDDEN);
    let mut wrong = vec![("csrf", "not-the-token")];
    wrong.extend_from_slice(&create);
    assert_eq!(
        visitor.post("/tokens", &wrong).await.status,
        StatusCode::FORBIDDEN
    );
    assert!(app.state.store.tokens_of("alice").unwrap().is_empty());

    let mut login = Visitor::new(&app);
    let no_cookie = login.post(
        "/login",
        &[("username", "alice"), ("password", ALICE_PASSWORD)],
    );
    assert_eq!(no_cookie.await.status, StatusCode::FORBIDDEN);
    let logout = visitor.post("/logout", &[("csrf", "nope")]).await;
    assert_eq!(logout.status, StatusCode::FORBIDDEN);
    assert_eq!(
        visitor.get("/").await.status,
        StatusCode::OK,
        "still signed in"
    );
}

#[tokio::test]
async fn a_created_secret_is_shown_exactly_once() {
    let app = TestApp::new();
    let mut visitor = Visitor::signed_in(&app, "alice", ALICE_PASSWORD).await;
    let answer = visitor
        .submit(
            "/tokens",
            &[("name", "laptop"), ("access", "push"), ("expiry", "30")],
        )
        .await;
    assert_eq!(answer.status, StatusCode::SEE_OTHER);
    assert_eq!(location(&answer), "/tokens/created");

    let shown = visitor.get("/tokens/created").await;
    assert_eq!(shown.status, StatusCode::OK);
    assert_eq!(shown.header("cache-control"), "no-store");
    let html = shown.text();
    let start = html.find("id=\"token-secret\">").unwrap() + "id=\"token-secret\">".len();
    let secret = html[start..].split('<').next().unwrap();
    assert!(secret.starts_with("pcl_"));
    assert!(html.contains("docker login 127.0.0.1:5001 -u alice"));

    let tokens = app.state.store.tokens_of("alice").unwrap();
    assert_eq!(tokens.len(), 1);
    assert_eq!(tokens[0].access, AccessLevel::Push);
    assert!(tokens[0].expires.unwrap() > now() + 29 * 86_400);

    let again = visitor.get("/tokens/created").await;
    assert_eq!(
        again.status,
        StatusCode::SEE_OTHER,
        "a reload does not show it again"
    );
    let profile = visitor.get("/").await;
    assert!(!profile.text().contains(secret));
    assert!(flash_of(&profile).unwrap().contains("shown only once"));
}

#[tokio::test]
async fn create_form_errors_are_specific_to_the_field() {
    let app = TestApp::new();
    let mut visitor = Visitor::signed_in(&app, "alice", ALICE_PASSWORD).await;
    let ok = [("name", "laptop"), ("access", "pull"), ("expiry", "never")];
    assert_eq!(
        visitor.submit("/tokens", &ok).await.status,
        StatusCode::SEE_OTHER
    );

    let duplicate = visitor.submit("/tokens", &ok).await;
    assert_eq!(duplicate.status, StatusCode::CONFLICT);
    assert!(duplicate.text().contains("id=\"name-error\""));
    assert!(duplicate.text().contains("already have a token named"));

    let cases: &[(&[(&str, &str)], &str)] = &[
        (
            &[("name", ""), ("access", "pull"), ("expiry", "never")],
            "name-error",
        ),
        (
            &[("name", "x"), ("access", "admin"), ("expiry", "never")],
            "access-error",
        ),
        (
            &[("name", "x"), ("access", "pull"), ("expiry", "forever")],
            "expiry-error",
        ),
        (
            &[
                ("name", "x"),
                ("access", "pull"),
                ("expiry", "date"),
                ("expiry_date", "soon"),
            ],
            "expiry_date-error",
        ),
        (
            &[
                ("name", "x"),
                ("access", "pull"),
                ("expiry", "date"),
                ("expiry_date", "2001-01-01"),
            ],
            "expiry_date-error",
        ),
        (
            &[
                ("name", "x"),
                ("access", "pull"),
                ("expiry", "date"),
                ("expiry_date", "2999-01-01"),
            ],
            "expiry_date-error",
        ),
    ];
    for (fields, error_id) in cases {
        let answer = visitor.submit("/tokens", fields).await;
        assert_eq!(
            answer.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{fields:?}"
        );
        assert!(
            answer.text().contains(&format!("id=\"{error_id}\"")),
            "{fields:?}"
        );
    }
    assert_eq!(app.state.store.tokens_of("alice").unwrap().len(), 1);

    let date = (time::OffsetDateTime::now_utc() + time::Duration::days(100))
        .date()
        .to_string();
    let dated = [
        ("name", "dated"),
        ("access", "pull"),
        ("expiry", "date"),
        ("expiry_date", &date),
    ];
    assert_eq!(
        visitor.submit("/tokens", &dated).await.status,
        StatusCode::SEE_OTHER
    );
}

#[tokio::test]
async fn the_limit_is_shown_and_enforced() {
    let app = TestApp::with(|c| c.token_limit = 2);
    app.token("alice", "one", AccessLevel::Pull);
    let mut visitor = Visitor::signed_in(&app, "alice", ALICE_PASSWORD).await;
    let profile = visitor.get("/").await.text();
    assert!(profile.contains("1 of 2"));
    assert!(!profile.contains("limit-reached"));

    app.token("alice", "two", AccessLevel::Pull);
    let profile = visitor.get("/").await.text();
    assert!(profile.contains("2 of 2"));
    assert!(profile.contains("id=\"limit-reached\""));
    assert!(profile.contains("<fieldset disabled>"));

    let over = visitor.submit(
        "/tokens",
        &[("name", "three"), ("access", "pull"), ("expiry", "never")],
    );
    let over = over.await;
    assert_eq!(over.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(over.text().contains("the most allowed"));
    assert_eq!(app.state.store.tokens_of("alice").unwrap().len(), 2);
}

#[tokio::test]
async fn removing_a_token_asks_first_and_only_touches_your_own() {
    let app = TestApp::new();
    app.token("alice", "laptop", AccessLevel::Push);
    app.token("bob", "bobs", AccessLevel::Push);
    let alice_id = app.state.store.tokens_of("alice").unwrap()[0].id.clone();
    let bob_id = app.state.store.tokens_of("bob").unwrap()[0].id.clone();
    let mut visitor = Visitor::signed_in(&app, "alice", ALICE_PASSWORD).await;

    let confirm = visitor.get(&format!("/tokens/{alice_id}/remove")).await;
    assert_eq!(confirm.status, StatusCode::OK);
    assert!(confirm.text().contains("id=\"remove-token-form\""));
    assert_eq!(
        visitor
            .get(&format!("/tokens/{bob_id}/remove"))
            .await
            .status,
        StatusCode::NOT_FOUND
    );
    let bobs = visitor
        .submit(&format!("/tokens/{bob_id}/remove"), &[])
        .await;
    assert_eq!(bobs.status, StatusCode::NOT_FOUND);
    assert_eq!(app.state.store.tokens_of("bob").unwrap().len(), 1);

    let removed = visitor
        .submit(&format!("/tokens/{alice_id}/remove"), &[])
        .await;
    assert_eq!(removed.status, StatusCode::SEE_OTHER);
    assert!(app.state.store.tokens_of("alice").unwrap().is_empty());
    let profile = visitor.get("/").await;
    assert_eq!(flash_of(&profile).unwrap(), "Token “laptop” removed.");
}

#[tokio::test]
async fn expired_and_disabled_sessions_end_at_once() {
    let app = TestApp::new();
    let stale = now() - app.state.config.session_idle_ttl as i64 - 1;
    let session = Session {
        user: "alice".into(),
        csrf: "c".into(),
        created: stale,
        last_seen: stale,
        flash: None,
    };
    let id = "an-old-session-id";
    app.state
        .store
        .create_session(&portcullis::web::session::session_hash(id), &session)
        .unwrap();
    let mut visitor = Visitor::new(&app);
    visitor
        .cookies
        .insert("portcullis_session".into(), id.into());
    let answer = visitor.get("/").await;
    assert_eq!(location(&answer), "/login", "idle session refused");
    let hash = portcullis::web::session::session_hash(id);
    assert!(
        app.state.store.session(&hash).unwrap().is_none(),
        "and deleted"
    );

    let mut visitor = Visitor::signed_in(&app, "bob", BOB_PASSWORD).await;
    assert_eq!(visitor.get("/").await.status, StatusCode::OK);
    app.state.manager.set_disabled("bob", true).unwrap();
    assert_eq!(
        location(&visitor.get("/").await),
        "/login",
        "disabled user is out at once"
    );
}

#[tokio::test]
async fn disabling_or_resetting_from_outside_ends_sessions() {
    let app = TestApp::new();
    let mut visitor = Visitor::signed_in(&app, "bob", BOB_PASSWORD).await;
    app.state.manager.set_disabled("bob", true).unwrap();
    app.state.manager.set_disabled("bob", false).unwrap();
    assert_eq!(
        location(&visitor.get("/").await),
        "/login",
        "re-enabling does not revive it"
    );

    let mut visitor = Visitor::signed_in(&app, "bob", BOB_PASSWORD).await;
    let reset = portcullis::auth::password::Password::new("reset by admin 1");
    app.state.manager.set_password("bob", &reset).unwrap();
    assert_eq!(
        location(&visitor.get("/").await),
        "/login",
        "an admin reset signs out"
    );
}

#[tokio::test]
async fn changing_the_password_ends_other_sessions_and_docker_logins() {
    let app = TestApp::new();
    let mut other = Visitor::signed_in(&app, "alice", ALICE_PASSWORD).await;
    let mut visitor = Visitor::signed_in(&app, "alice", ALICE_PASSWORD).await;
    let token = app.token("alice", "laptop", AccessLevel::Pull);
    let identity = app
        .state
        .auth
        .password("alice", ALICE_PASSWORD, portcullis::auth::Now::real());
    let identity = identity.await.unwrap();
    app.state
        .auth
        .issue_refresh(
            &identity,
            "registry",
            "docker",
            portcullis::auth::Now::real(),
        )
        .unwrap();

    let wrong = visitor
        .submit(
            "/password",
            &[
                ("current_password", "nope"),
                ("new_password", "new password 1"),
                ("confirm_password", "new password 1"),
            ],
        )
        .await;
    assert_eq!(wrong.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(wrong.text().contains("id=\"current_password-error\""));
    let mismatch = visitor
        .submit(
            "/password",
            &[
                ("current_password", ALICE_PASSWORD),
                ("new_password", "new password 1"),
                ("confirm_password", "new password 2"),
            ],
        )
        .await;
    assert!(mismatch.text().contains("id=\"confirm_password-error\""));
    let short = visitor
        .submit(
            "/password",
            &[
                ("current_password", ALICE_PASSWORD),
                ("new_password", "short"),
                ("confirm_password", "short"),
            ],
        )
        .await;
    assert!(short.text().contains("id=\"new_password-error\""));

    let changed = visitor
        .submit(
            "/password",
            &[
                ("current_password", ALICE_PASSWORD),
                ("new_password", "new password 1"),
                ("confirm_password", "new password 1"),
            ],
        )
        .await;
    assert_eq!(changed.status, StatusCode::SEE_OTHER);
    let profile = visitor.get("/").await;
    let message = flash_of(&profile).unwrap();
    assert!(
        message.contains("1 other session was signed out"),
        "{message}"
    );
    assert!(message.contains("1 docker login was revoked"), "{message}");
    assert_eq!(location(&other.get("/").await), "/login");
    assert!(
        app.state
            .store
            .refresh_tokens_of("alice")
            .unwrap()
            .is_empty()
    );
    assert!(
        app.state.store.tokens_of("alice").unwrap().len() == 1,
        "tokens keep working"
    );
    drop(token);

    let mut fresh = Visitor::new(&app);
    assert_eq!(
        fresh.login("alice", "new password 1").await.status,
        StatusCode::SEE_OTHER
    );
}

#[tokio::test]
async fn sign_in_failures_are_throttled() {
    let app = TestApp::new();
    let mut visitor = Visitor::new(&app);
    for _ in 0..6 {
        visitor.login("alice", "wrong password").await;
    }
    let blocked = visitor.login("alice", ALICE_PASSWORD).await;
    assert_eq!(blocked.status, StatusCode::TOO_MANY_REQUESTS);
    assert!(
        flash_of(&blocked)
            .unwrap()
            .contains("Too many failed sign-ins")
    );
}

#[tokio::test]
async fn sign_out_ends_the_session() {
    let app = TestApp::new();
    let mut visitor = Visitor::signed_in(&app, "alice", ALICE_PASSWORD).await;
    let answer = visitor.submit("/logout", &[]).await;
    assert_eq!(location(&answer), "/login?signed_out=1");
    assert_eq!(location(&visitor.get("/").await), "/login");
}

#[tokio::test]
async fn assets_are_cached_by_content_hash() {
    let app = TestApp::new();
    let mut visitor = Visitor::new(&app);
    let page = visitor.get("/login").await.text();
    let start = page.find("/assets/style.css?v=").unwrap();
    let url = page[start..].split('"').next().unwrap().to_owned();
    let css = visitor.get(&url).await;
    assert_eq!(css.status, StatusCode::OK);
    assert_eq!(css.header("content-type"), "text/css; charset=utf-8");
    assert!(css.header("cache-control").contains("immutable"));
    let etag = css.header("etag").to_owned();
    let request = Request::get(&url)
        .header(header::IF_NONE_MATCH, &etag)
        .body(Body::empty());
    assert_eq!(
        app.send(request.unwrap()).await.status,
        StatusCode::NOT_MODIFIED
    );
    assert_eq!(
        visitor.get("/assets/missing.css").await.status,
        StatusCode::NOT_FOUND
    );
}

//! In-process tests of the admin pages: who may see them, every form's
//! effect and its audit event, and that nothing changes without the CSRF
//! token. The browser test (tests/browser.rs) drives the same pages in
//! Chromium.

mod common;

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;

use common::app::{ADMIN_PASSWORD, ALICE_PASSWORD, Answer, BOB_PASSWORD, TestApp};
use common::visitor::{Visitor, csrf_of, flash_of, location};
use portcullis::registry::policy::AccessLevel;
use portcullis::store::AuditFilter;

async fn admin(app: &TestApp) -> Visitor<'_> {
    Visitor::signed_in(app, "admin", ADMIN_PASSWORD).await
}

/// Asks the token endpoint for a token with Basic credentials.
async fn token_request(app: &TestApp, user: &str, secret: &str) -> Answer {
    let basic = format!("Basic {}", STANDARD.encode(format!("{user}:{secret}")));
    let request = Request::get("/v2/token?service=registry")
        .header(header::AUTHORIZATION, basic)
        .body(Body::empty())
        .unwrap();
    app.send(request).await
}

/// The secret on `/tokens/created`.
fn secret_of(page: &Answer) -> String {
    let html = page.text();
    let marker = "id=\"token-secret\">";
    let start = html.find(marker).expect("a shown secret") + marker.len();
    html[start..].split('<').next().unwrap().to_owned()
}

/// How many rows the users table shows.
fn user_rows(page: &Answer) -> usize {
    page.text().matches("<tr data-user=").count()
}

#[tokio::test]
async fn non_admins_get_not_found_everywhere() {
    let app = TestApp::new();
    let bob_token = app.token("bob", "laptop", AccessLevel::Pull);
    let bob_token_id = app.state.store.tokens_of("bob").unwrap()[0].id.clone();
    app.state.manager.add_group("web", 0).unwrap();
    let mut alice = Visitor::signed_in(&app, "alice", ALICE_PASSWORD).await;
    assert!(!alice.get("/").await.text().contains("id=\"admin-link\""));

    let pages = [
        "/admin",
        "/admin/users",
        "/admin/users?q=b&page=2",
        "/admin/users/bob",
        "/admin/users/bob/delete",
        "/admin/tokens",
        "/admin/groups",
        "/admin/audit?user=bob",
    ];
    for path in pages {
        assert_eq!(
            alice.get(path).await.status,
            StatusCode::NOT_FOUND,
            "GET {path}"
        );
    }
    let revoke = format!("/admin/tokens/{bob_token_id}/revoke");
    let forms: [(&str, &[(&str, &str)]); 9] = [
        (
            "/admin/users",
            &[
                ("kind", "person"),
                ("name", "eve"),
                ("password", "eve password 1"),
            ],
        ),
        ("/admin/users/bob/change", &[("change", "disable")]),
        ("/admin/users/alice/change", &[("change", "grant-admin")]),
        ("/admin/users/bob/password", &[("password", "taken over 1")]),
        ("/admin/users/bob/delete", &[]),
        (
            "/admin/users/bob/tokens",
            &[("name", "x"), ("access", "pull"), ("expiry", "never")],
        ),
        (&revoke, &[]),
        ("/admin/groups", &[("name", "ops")]),
        ("/admin/groups/web/members", &[("user", "alice")]),
    ];
    for (path, fields) in forms {
        let answer = alice.submit(path, fields).await;
        assert_eq!(answer.status, StatusCode::NOT_FOUND, "POST {path}");
    }
    let bob = app.state.store.user("bob").unwrap().unwrap();
    assert!(!bob.disabled);
    assert!(!app.state.store.user("alice").unwrap().unwrap().admin);
    assert!(app.state.store.user("eve").unwrap().is_none());
    assert_eq!(
        token_request(&app, "bob", &bob_token).await.status,
        StatusCode::OK
    );
    assert!(
        app.state
            .store
            .group("web")
            .unwrap()
            .unwrap()
            .members
            .is_empty()
    );

    let mut stranger = Visitor::new(&app);
    assert_eq!(location(&stranger.get("/admin/users").await), "/login");
    let mut admin = admin(&app).await;
    assert!(admin.get("/").await.text().contains("id=\"admin-link\""));
    assert_eq!(location(&admin.get("/admin").await), "/admin/users");
}

#[tokio::test]
async fn forms_without_the_csrf_token_change_nothing() {
    let app = TestApp::new();
    app.token("bob", "laptop", AccessLevel::Pull);
    let mut admin = admin(&app).await;
    let forms: [(&str, &[(&str, &str)]); 5] = [
        ("/admin/users", &[("kind", "service"), ("name", "ci")]),
        ("/admin/users/bob/change", &[("change", "disable")]),
        ("/admin/users/bob/password", &[("password", "taken over 1")]),
        ("/admin/users/bob/delete", &[]),
        ("/admin/groups", &[("name", "ops")]),
    ];
    for (path, fields) in forms {
        assert_eq!(
            admin.post(path, fields).await.status,
            StatusCode::FORBIDDEN,
            "{path}"
        );
        let mut wrong = vec![("csrf", "not-the-token")];
        wrong.extend_from_slice(fields);
        assert_eq!(
            admin.post(path, &wrong).await.status,
            StatusCode::FORBIDDEN,
            "{path}"
        );
    }
    let bob = app.state.store.user("bob").unwrap().unwrap();
    assert!(!bob.disabled);
    assert_eq!(app.state.store.tokens_of("bob").unwrap().len(), 1);
    assert!(app.state.store.user("ci").unwrap().is_none());
    assert!(app.state.manager.groups().unwrap().is_empty());
    let mut bob = Visitor::new(&app);
    assert_eq!(
        bob.login("bob", BOB_PASSWORD).await.status,
        StatusCode::SEE_OTHER
    );
}

#[tokio::test]
async fn admins_create_people_and_service_accounts() {
    let app = TestApp::new();
    let mut admin = admin(&app).await;

    let person = [
        ("kind", "person"),
        ("name", "carol"),
        ("password", "carol password 1"),
    ];
    let created = admin.submit("/admin/users", &person).await;
    assert_eq!(created.status, StatusCode::SEE_OTHER, "{}", created.text());
    assert_eq!(location(&created), "/admin/users/carol");
    let page = admin.get("/admin/users/carol").await;
    assert_eq!(flash_of(&page).unwrap(), "User “carol” created.");
    let mut carol = Visitor::new(&app);
    assert_eq!(
        carol.login("carol", "carol password 1").await.status,
        StatusCode::SEE_OTHER
    );

    let service = [("kind", "service"), ("name", "ci-bot")];
    assert_eq!(
        admin.submit("/admin/users", &service).await.status,
        StatusCode::SEE_OTHER
    );
    let account = app.state.store.user("ci-bot").unwrap().unwrap();
    assert!(account.service && account.password_hash.is_none() && !account.admin);
    let list = admin.get("/admin/users").await.text();
    let row = &list[list.find("data-user=\"ci-bot\"").unwrap()..];
    assert!(row.split("</tr>").next().unwrap().contains(">service<"));

    // A service account has no password: any sign-in fails like a wrong password.
    for password in ["", "anything at all", ADMIN_PASSWORD] {
        let mut visitor = Visitor::new(&app);
        let answer = visitor.login("ci-bot", password).await;
        assert_eq!(answer.status, StatusCode::UNAUTHORIZED);
        assert_eq!(flash_of(&answer).unwrap(), "Invalid user name or password.");
    }

    let duplicate = admin.submit("/admin/users", &person).await;
    assert_eq!(duplicate.status, StatusCode::CONFLICT);
    assert!(duplicate.text().contains("id=\"user_name-error\""));
    let short = [("kind", "person"), ("name", "dave"), ("password", "short")];
    let short = admin.submit("/admin/users", &short).await;
    assert_eq!(short.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(short.text().contains("id=\"password-error\""));
    assert!(short.text().contains("value=\"dave\""), "the name is kept");
    let bad = admin
        .submit("/admin/users", &[("kind", "service"), ("name", "Bad Name")])
        .await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(bad.text().contains("id=\"service_name-error\""));
    app.state.manager.add_group("web", 0).unwrap();
    let group = admin
        .submit("/admin/users", &[("kind", "service"), ("name", "web")])
        .await;
    assert_eq!(group.status, StatusCode::CONFLICT, "a group has that name");
    assert!(app.state.store.user("dave").unwrap().is_none());
}

#[tokio::test]
async fn disabling_signs_the_user_out_at_once() {
    let app = TestApp::new();
    let token = app.token("bob", "laptop", AccessLevel::Pull);
    let mut bob = Visitor::signed_in(&app, "bob", BOB_PASSWORD).await;
    let mut admin = admin(&app).await;

    let disabled = admin
        .submit("/admin/users/bob/change", &[("change", "disable")])
        .await;
    assert_eq!(location(&disabled), "/admin/users/bob");
    assert!(app.state.store.user("bob").unwrap().unwrap().disabled);
    assert_eq!(
        location(&bob.get("/").await),
        "/login",
        "signed out at once"
    );
    assert_eq!(
        token_request(&app, "bob", &token).await.status,
        StatusCode::UNAUTHORIZED
    );
    let page = admin.get("/admin/users/bob").await;
    assert!(flash_of(&page).unwrap().contains("is disabled"));
    assert!(page.text().contains("id=\"enable-user\""));

    let fields = [("change", "enable"), ("back", "list")];
    let enabled = admin.submit("/admin/users/bob/change", &fields).await;
    assert_eq!(location(&enabled), "/admin/users");
    assert_eq!(
        token_request(&app, "bob", &token).await.status,
        StatusCode::OK
    );
    assert_eq!(
        bob.login("bob", BOB_PASSWORD).await.status,
        StatusCode::SEE_OTHER
    );

    let myself = admin
        .submit("/admin/users/admin/change", &[("change", "disable")])
        .await;
    assert_eq!(location(&myself), "/admin/users/admin");
    assert!(!app.state.store.user("admin").unwrap().unwrap().disabled);
    let page = admin.get("/admin/users/admin").await;
    assert!(
        flash_of(&page)
            .unwrap()
            .contains("cannot change your own account")
    );
    let unknown = admin
        .submit("/admin/users/bob/change", &[("change", "explode")])
        .await;
    assert_eq!(unknown.status, StatusCode::BAD_REQUEST);
    let nobody = admin
        .submit("/admin/users/nobody/change", &[("change", "disable")])
        .await;
    assert_eq!(nobody.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn resetting_a_password_ends_the_users_sessions() {
    let app = TestApp::new();
    let mut alice = Visitor::signed_in(&app, "alice", ALICE_PASSWORD).await;
    let mut admin = admin(&app).await;

    let short = admin
        .submit("/admin/users/alice/password", &[("password", "short")])
        .await;
    assert_eq!(short.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(short.text().contains("id=\"password-error\""));
    assert_eq!(
        alice.get("/").await.status,
        StatusCode::OK,
        "nothing changed yet"
    );

    let fields = [("password", "reset password 1")];
    let reset = admin.submit("/admin/users/alice/password", &fields).await;
    assert_eq!(location(&reset), "/admin/users/alice");
    assert_eq!(location(&alice.get("/").await), "/login");
    assert_eq!(
        alice.login("alice", ALICE_PASSWORD).await.status,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        alice.login("alice", "reset password 1").await.status,
        StatusCode::SEE_OTHER
    );

    app.state.manager.add_service_account("ci", 0).unwrap();
    let service = admin.submit("/admin/users/ci/password", &fields).await;
    assert_eq!(location(&service), "/admin/users/ci");
    assert!(
        app.state
            .store
            .user("ci")
            .unwrap()
            .unwrap()
            .password_hash
            .is_none()
    );
    assert!(
        !admin
            .get("/admin/users/ci")
            .await
            .text()
            .contains("reset-password-form")
    );
}

#[tokio::test]
async fn granting_admin_opens_the_admin_pages() {
    let app = TestApp::new();
    let mut alice = Visitor::signed_in(&app, "alice", ALICE_PASSWORD).await;
    let mut admin = admin(&app).await;

    admin
        .submit("/admin/users/alice/change", &[("change", "grant-admin")])
        .await;
    assert!(app.state.store.user("alice").unwrap().unwrap().admin);
    assert_eq!(alice.get("/admin/users").await.status, StatusCode::OK);
    admin
        .submit("/admin/users/alice/change", &[("change", "remove-admin")])
        .await;
    assert_eq!(
        alice.get("/admin/users").await.status,
        StatusCode::NOT_FOUND
    );

    app.state.manager.add_service_account("ci", 0).unwrap();
    admin
        .submit("/admin/users/ci/change", &[("change", "grant-admin")])
        .await;
    assert!(!app.state.store.user("ci").unwrap().unwrap().admin);
    let page = admin.get("/admin/users/ci").await;
    assert!(
        flash_of(&page)
            .unwrap()
            .contains("cannot be an administrator")
    );
}

#[tokio::test]
async fn deleting_a_user_asks_first_and_removes_their_tokens() {
    let app = TestApp::new();
    let token = app.token("bob", "laptop", AccessLevel::Push);
    app.state.manager.add_group("web", 0).unwrap();
    app.state
        .manager
        .set_membership("web", "bob", true)
        .unwrap();
    let mut bob = Visitor::signed_in(&app, "bob", BOB_PASSWORD).await;
    let mut admin = admin(&app).await;

    let confirm = admin.get("/admin/users/bob/delete").await;
    assert_eq!(confirm.status, StatusCode::OK);
    let text = confirm.text();
    assert!(text.contains("id=\"delete-user-form\"") && text.contains("1 application token"));
    assert!(
        app.state.store.user("bob").unwrap().is_some(),
        "asking deletes nothing"
    );

    let deleted = admin.submit("/admin/users/bob/delete", &[]).await;
    assert_eq!(location(&deleted), "/admin/users");
    assert!(app.state.store.user("bob").unwrap().is_none());
    assert!(
        app.state
            .manager
            .all_tokens()
            .unwrap()
            .iter()
            .all(|t| t.user != "bob")
    );
    assert!(
        app.state
            .store
            .group("web")
            .unwrap()
            .unwrap()
            .members
            .is_empty()
    );
    assert_eq!(
        token_request(&app, "bob", &token).await.status,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(location(&bob.get("/").await), "/login");
    let list = admin.get("/admin/users").await;
    assert_eq!(flash_of(&list).unwrap(), "User “bob” deleted.");

    assert_eq!(
        admin.get("/admin/users/bob").await.status,
        StatusCode::NOT_FOUND
    );
    let myself = admin.submit("/admin/users/admin/delete", &[]).await;
    assert_eq!(location(&myself), "/admin/users/admin");
    assert!(app.state.store.user("admin").unwrap().is_some());
}

#[tokio::test]
async fn admins_issue_and_revoke_service_account_tokens() {
    let app = TestApp::new();
    app.state
        .manager
        .add_service_account("deployer", 0)
        .unwrap();
    let mut admin = admin(&app).await;
    let page = admin.get("/admin/users/deployer").await;
    assert!(page.text().contains("id=\"issue-token-form\""));

    let fields = [
        ("name", "ci"),
        ("access", "push"),
        ("expiry", "30"),
        ("repositories", "public/*, deployer/app"),
    ];
    let issued = admin.submit("/admin/users/deployer/tokens", &fields).await;
    assert_eq!(location(&issued), "/tokens/created", "{}", issued.text());
    let shown = admin.get("/tokens/created").await;
    assert_eq!(shown.header("cache-control"), "no-store");
    let secret = secret_of(&shown);
    assert!(secret.starts_with("pcl_"));
    let text = shown.text();
    assert!(text.contains("docker login 127.0.0.1:5001 -u deployer"));
    assert!(
        text.contains("href=\"/admin/users/deployer\""),
        "Done leads back"
    );
    assert!(
        !admin
            .get("/admin/users/deployer")
            .await
            .text()
            .contains(&secret)
    );

    let tokens = app.state.store.tokens_of("deployer").unwrap();
    let token = &tokens[0];
    assert_eq!(token.access, AccessLevel::Push);
    let patterns = ["public/*".to_owned(), "deployer/app".to_owned()];
    assert_eq!(token.repositories.as_deref(), Some(&patterns[..]));
    let answer = token_request(&app, "deployer", &secret).await;
    assert_eq!(answer.status, StatusCode::OK);

    let all = admin.get("/admin/tokens").await.text();
    assert!(all.contains("data-token-owner=\"deployer\" data-token-name=\"ci\""));
    assert!(all.contains("public/*, deployer/app"));

    let again = admin.submit("/admin/users/deployer/tokens", &fields).await;
    assert_eq!(again.status, StatusCode::CONFLICT);
    assert!(again.text().contains("id=\"name-error\""));
    let bad = [("name", "x"), ("access", "root"), ("expiry", "never")];
    let bad = admin.submit("/admin/users/deployer/tokens", &bad).await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(bad.text().contains("id=\"access-error\""));
    let person = admin.submit("/admin/users/alice/tokens", &fields).await;
    assert_eq!(
        person.status,
        StatusCode::NOT_FOUND,
        "people make their own"
    );

    let revoke = format!("/admin/tokens/{}/revoke", token.id);
    let revoked = admin.submit(&revoke, &[("from", "user")]).await;
    assert_eq!(location(&revoked), "/admin/users/deployer");
    assert!(app.state.store.tokens_of("deployer").unwrap().is_empty());
    let answer = token_request(&app, "deployer", &secret).await;
    assert_eq!(answer.status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        admin.submit(&revoke, &[]).await.status,
        StatusCode::NOT_FOUND
    );

    app.token("alice", "laptop", AccessLevel::Pull);
    let id = app.state.store.tokens_of("alice").unwrap()[0].id.clone();
    let revoked = admin
        .submit(&format!("/admin/tokens/{id}/revoke"), &[])
        .await;
    assert_eq!(location(&revoked), "/admin/tokens");
    let list = admin.get("/admin/tokens").await;
    assert_eq!(flash_of(&list).unwrap(), "Token “laptop” of alice revoked.");
}

#[tokio::test]
async fn admins_manage_groups() {
    let app = TestApp::new();
    let mut admin = admin(&app).await;
    let created = admin.submit("/admin/groups", &[("name", "web")]).await;
    assert_eq!(location(&created), "/admin/groups");
    let duplicate = admin.submit("/admin/groups", &[("name", "alice")]).await;
    assert_eq!(
        duplicate.status,
        StatusCode::CONFLICT,
        "a user has that name"
    );
    assert!(duplicate.text().contains("id=\"group_name-error\""));

    let added = admin
        .submit("/admin/groups/web/members", &[("user", "alice")])
        .await;
    assert_eq!(location(&added), "/admin/groups#group-web");
    assert_eq!(
        app.state.store.user("alice").unwrap().unwrap().groups,
        ["web"]
    );
    let page = admin.get("/admin/groups").await.text();
    assert!(page.contains("data-member=\"alice\""));
    admin
        .submit("/admin/groups/web/members", &[("user", "nobody")])
        .await;
    let page = admin.get("/admin/groups").await;
    assert_eq!(flash_of(&page).unwrap(), "There is no user “nobody”.");

    admin
        .submit("/admin/groups/web/members/alice/remove", &[])
        .await;
    assert!(
        app.state
            .store
            .user("alice")
            .unwrap()
            .unwrap()
            .groups
            .is_empty()
    );
    admin
        .submit("/admin/groups/web/members", &[("user", "bob")])
        .await;
    let deleted = admin.submit("/admin/groups/web/delete", &[]).await;
    assert_eq!(location(&deleted), "/admin/groups");
    assert!(app.state.store.group("web").unwrap().is_none());
    assert!(
        app.state
            .store
            .user("bob")
            .unwrap()
            .unwrap()
            .groups
            .is_empty()
    );
    let gone = admin.submit("/admin/groups/web/delete", &[]).await;
    assert_eq!(gone.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn the_audit_page_shows_what_admins_did() {
    let app = TestApp::new();
    app.state.manager.add_service_account("ci", 0).unwrap();
    let mut admin = admin(&app).await;
    admin
        .submit("/admin/users/bob/change", &[("change", "disable")])
        .await;
    admin
        .submit("/admin/users/bob/change", &[("change", "enable")])
        .await;
    admin
        .submit("/admin/users/alice/change", &[("change", "grant-admin")])
        .await;
    admin
        .submit("/admin/users/alice/change", &[("change", "remove-admin")])
        .await;
    admin
        .submit(
            "/admin/users/bob/password",
            &[("password", "bob password 2")],
        )
        .await;
    let fields = [("name", "ci"), ("access", "pull"), ("expiry", "never")];
    admin.submit("/admin/users/ci/tokens", &fields).await;
    let id = app.state.store.tokens_of("ci").unwrap()[0].id.clone();
    admin
        .submit(&format!("/admin/tokens/{id}/revoke"), &[])
        .await;
    admin.submit("/admin/groups", &[("name", "web")]).await;
    admin
        .submit("/admin/groups/web/members", &[("user", "alice")])
        .await;
    admin
        .submit("/admin/groups/web/members/alice/remove", &[])
        .await;
    admin.submit("/admin/groups/web/delete", &[]).await;
    admin
        .submit("/admin/users", &[("kind", "service"), ("name", "gone")])
        .await;
    admin.submit("/admin/users/gone/delete", &[]).await;

    let page = admin.get("/admin/audit").await;
    assert_eq!(page.status, StatusCode::OK);
    let expected = [
        "user.created",
        "user.disabled",
        "user.enabled",
        "user.password_changed",
        "user.admin_granted",
        "user.admin_removed",
        "user.deleted",
        "token.created",
        "token.revoked",
        "group.created",
        "group.deleted",
        "group.member_added",
        "group.member_removed",
    ];
    let text = page.text();
    for action in expected {
        assert!(
            text.contains(&format!("data-action=\"{action}\"")),
            "{action}"
        );
    }
    let events = app
        .state
        .store
        .audit_events(&AuditFilter::default(), 100)
        .unwrap();
    let admin_events: Vec<_> = events
        .iter()
        .filter(|e| e.action != "signin.success")
        .collect();
    assert_eq!(admin_events.len(), expected.len());
    for event in admin_events {
        assert_eq!(event.actor, "admin", "{event:?}");
        assert_eq!(event.addr.as_deref(), Some("0.0.0.0"), "{event:?}");
    }
    assert!(
        events
            .iter()
            .all(|e| !e.detail.as_deref().unwrap_or("").contains("bob password"))
    );
    assert!(!text.contains("bob password 2"), "no secret shown");

    let tokens = admin.get("/admin/audit?action=token.").await.text();
    assert_eq!(tokens.matches("<tr data-action=").count(), 2);
    let bobs = admin.get("/admin/audit?user=bob&days=1").await.text();
    assert_eq!(bobs.matches("<tr data-action=").count(), 3);
    let none = admin.get("/admin/audit?user=nobody").await.text();
    assert!(none.contains("id=\"no-events\""));
}

#[tokio::test]
async fn the_user_list_searches_and_pages() {
    let app = TestApp::new();
    for i in 0..30 {
        let name = format!("svc-{i:02}");
        app.state.manager.add_service_account(&name, 0).unwrap();
    }
    let mut admin = admin(&app).await;

    let first = admin.get("/admin/users").await;
    assert_eq!(user_rows(&first), 25);
    let text = first.text();
    assert!(text.contains("Page 1 of 2") && text.contains("href=\"/admin/users?q=&amp;page=2\""));
    let second = admin.get("/admin/users?page=2").await;
    assert_eq!(user_rows(&second), 33 - 25);
    let beyond = admin.get("/admin/users?page=99").await;
    assert!(beyond.text().contains("Page 2 of 2"));
    let junk = admin.get("/admin/users?page=abc").await;
    assert!(junk.text().contains("Page 1 of 2"));

    let search = admin.get("/admin/users?q=svc-1").await;
    assert_eq!(user_rows(&search), 10);
    assert!(
        !search.text().contains("Page 1 of"),
        "one page needs no pager"
    );
    let upper = admin.get("/admin/users?q=ALI").await;
    assert_eq!(user_rows(&upper), 1);
    let none = admin.get("/admin/users?q=zzz").await;
    assert!(none.text().contains("id=\"no-users\""));

    // The CSRF token the visitor finds on the list page is the session's.
    let csrf = csrf_of(&first);
    let fields = [
        ("csrf", csrf.as_str()),
        ("change", "disable"),
        ("back", "list"),
    ];
    let disabled = admin.post("/admin/users/svc-00/change", &fields).await;
    assert_eq!(location(&disabled), "/admin/users");
}

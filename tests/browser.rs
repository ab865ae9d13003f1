//! The web UI in a real headless Chromium: a user signs in, creates an application token, uses
//! it with skopeo against a real registry, removes it again and signs out; and the initial admin
//! creates a user and a service account, issues the service account a token and revokes it.
//!
//! Needs `chromium` and `chromium-driver` besides `docker-registry` and `skopeo`
//! (`apt-get install chromium chromium-driver docker-registry skopeo`); the test fails, rather
//! than skips, without them. Everything listens on 127.0.0.1. Screenshots land in
//! `target/screenshots/`; with `UPDATE_SCREENSHOTS=1` they are also copied to
//! `docs/screenshots/` for the README (off by default, so tests leave the tree clean). Run with
//! `cargo test --test browser -- --nocapture` to watch the steps.

mod common;

use std::path::PathBuf;
use std::sync::Arc;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use common::browser::{Browser, DESKTOP, MOBILE};
use common::oci::{OciImage, manifest_digest_in_layout};
use common::portcullis::{ADMIN_PASSWORD, Portcullis};
use common::registry::Registry;
use common::skopeo::{Auth, Skopeo, expect_refused};
use common::workdir::WorkDir;

const ALICE_PASSWORD: &str = "alice-correct-horse-battery";

/// Tag of the image in its OCI layout and of every pulled copy.
const TAG: &str = "browser";

/// Checks the harness alone (chromedriver, a Chromium session, a screenshot of a loopback
/// page), so a failure of the real test points at the UI only when this passes.
#[tokio::test]
async fn harness_screenshots_a_loopback_page() {
    let work = WorkDir::new("portcullis-browser-harness-");
    let portcullis = Arc::new(Portcullis::start(&work.subdir("portcullis"), false).await);
    let browser = Browser::start(&work.subdir("browser"), server_log(&portcullis)).await;

    browser.goto(&format!("{}/healthz", portcullis.url())).await;
    browser
        .expect_path("/healthz", "open the health check")
        .await;
    let shot = browser
        .screenshot("healthz.png", &[work.subdir("shots")])
        .await;
    let png = std::fs::read(&shot).expect("read the screenshot back");
    assert!(
        png.starts_with(b"\x89PNG\r\n\x1a\n"),
        "{} is not a PNG",
        shot.display()
    );

    browser.close().await;
}

/// Issue 3: everything a user does with tokens in the web UI, checked against a real registry.
#[tokio::test]
async fn web_ui_creates_and_removes_a_token_the_registry_honours() {
    let stack = Stack::start().await;

    step("1. create user alice with the CLI");
    stack.portcullis.add_user("alice", ALICE_PASSWORD).await;

    stack.sign_in().await;
    let secret = stack.create_token("laptop", "push").await;
    stack.profile_lists_token("laptop").await;
    stack.push_and_pull_back(&secret).await;
    stack.remove_token("laptop").await;
    stack.removed_token_is_refused(&secret).await;
    stack.sign_out().await;

    stack.finish().await;
}

/// Issue 4: the initial admin creates a user and a service account, issues the service account
/// a token that the token endpoint honours, and revokes it. No registry is needed: the token
/// endpoint is asked directly.
#[tokio::test]
async fn admin_creates_accounts_and_revokes_a_service_account_token() {
    let work = WorkDir::new("portcullis-browser-admin-");
    let portcullis = Arc::new(Portcullis::start(&work.subdir("portcullis"), false).await);
    let browser = Browser::start(&work.subdir("browser"), server_log(&portcullis)).await;
    let url = |path: &str| format!("{}{path}", portcullis.url());

    step("A1. the initial admin signs in and follows the Admin link");
    browser.goto(&url("/login")).await;
    browser.fill("input#username[name=username]", "admin").await;
    browser
        .fill("input#password[name=password]", ADMIN_PASSWORD)
        .await;
    browser.click_and_wait("button#login-submit").await;
    browser.expect_path("/", "after the admin signs in").await;
    browser.click_and_wait("a#admin-link").await;
    browser
        .expect_path("/admin/users", "after following the Admin link")
        .await;

    step("A2. create the user carol and the service account ci-deployer");
    browser.fill("input#new-user-name", "carol").await;
    browser
        .fill("input#new-user-password", "carol-first-password")
        .await;
    browser.click_and_wait("button#create-user-submit").await;
    browser
        .expect_path("/admin/users/carol", "after creating carol")
        .await;
    browser.expect_text(".flash.success", "carol").await;
    browser.goto(&url("/admin/users")).await;
    browser.fill("input#new-service-name", "ci-deployer").await;
    browser.click_and_wait("button#create-service-submit").await;
    browser
        .expect_path("/admin/users/ci-deployer", "after creating ci-deployer")
        .await;
    browser
        .expect_text("#account-kind", "service account")
        .await;

    browser.goto(&url("/admin/users")).await;
    browser
        .expect_text("#users tr[data-user=\"carol\"]", "person")
        .await;
    browser
        .expect_text("#users tr[data-user=\"ci-deployer\"]", "service")
        .await;
    screenshot(&browser, "admin-users.png").await;

    step("A3. issue ci-deployer a push token; its secret shows once");
    browser
        .click_and_wait("#users tr[data-user=\"ci-deployer\"] a.user-link")
        .await;
    browser
        .expect_path("/admin/users/ci-deployer", "open the service account")
        .await;
    browser.fill("input#token-name[name=name]", "ci").await;
    browser
        .select("select#token-access[name=access]", "push")
        .await;
    browser
        .select("select#token-expiry[name=expiry]", "30")
        .await;
    browser.click_and_wait("button#issue-token-submit").await;
    browser
        .expect_path("/tokens/created", "after issuing a token")
        .await;
    let secret = browser.text("code#token-secret").await.trim().to_owned();
    if !secret.starts_with("pcl_") || secret.contains(char::is_whitespace) {
        let message = format!("`#token-secret` must show one pcl_… secret, not {secret:?}");
        browser.fail(&message).await;
    }
    browser
        .expect_text("code#docker-login", "-u ci-deployer")
        .await;

    step("A4. the token endpoint accepts the secret for ci-deployer");
    let (status, body) = token_request(&portcullis.url(), "ci-deployer", &secret).await;
    assert_eq!(status, 200, "the issued token must be accepted: {body}");
    let claims = jwt_claims(&body);
    assert_eq!(claims["sub"], "ci-deployer", "{claims}");

    step("A5. revoke the token on the account page; the next token request is refused");
    browser.click_and_wait("a#back-to-profile").await;
    browser
        .expect_path("/admin/users/ci-deployer", "after Done")
        .await;
    let row = "#admin-tokens tr[data-token-name=\"ci\"]";
    browser.find(row).await;
    artifact(&browser, "admin-service-account.png").await;
    browser
        .click_and_wait(&format!("{row} button.revoke-token"))
        .await;
    browser
        .expect_path("/admin/users/ci-deployer", "after revoking")
        .await;
    browser.expect_text(".flash.success", "revoked").await;
    if browser.exists(row).await {
        browser.fail("the revoked token is still listed").await;
    }
    let (status, body) = token_request(&portcullis.url(), "ci-deployer", &secret).await;
    assert_eq!(status, 401, "a revoked token must be refused: {body}");

    step("A6. the audit log shows what the admin did");
    browser.goto(&url("/admin/audit")).await;
    browser
        .expect_text("#audit-events tr[data-action=\"token.revoked\"]", "admin")
        .await;
    artifact(&browser, "admin-audit.png").await;

    browser.close().await;
}

/// `GET /v2/token?service=registry` with Basic credentials: the status and the body.
async fn token_request(base: &str, user: &str, secret: &str) -> (u16, serde_json::Value) {
    let response = reqwest::Client::new()
        .get(format!("{base}/v2/token?service=registry"))
        .basic_auth(user, Some(secret))
        .send()
        .await
        .expect("ask the token endpoint");
    let status = response.status().as_u16();
    let body = response.json().await.unwrap_or_default();
    (status, body)
}

/// The claims of the JWT in a token response (no signature check: only `sub` matters here).
fn jwt_claims(body: &serde_json::Value) -> serde_json::Value {
    let token = body["token"].as_str().expect("a token in the response");
    let payload = token.split('.').nth(1).expect("a JWT payload");
    let json = URL_SAFE_NO_PAD.decode(payload).expect("base64url payload");
    serde_json::from_slice(&json).expect("JSON claims")
}

/// Portcullis, a registry that trusts it, skopeo with a test image, and a browser.
struct Stack {
    browser: Browser,
    /// Shared with the browser, which shows its log when a page check fails.
    portcullis: Arc<Portcullis>,
    registry: Registry,
    skopeo: Skopeo,
    image: OciImage,
    /// Removed last: the browser profile and every log live in it.
    _work: WorkDir,
}

impl Stack {
    /// Builds the image, starts portcullis, a registry configured by `portcullis
    /// registry-config`, and Chromium.
    async fn start() -> Stack {
        common::require_registry_tools();
        let work = WorkDir::new("portcullis-browser-");
        let image = OciImage::build(&work.subdir("image"), TAG, &unique_payload());
        let skopeo = Skopeo::new(&work.subdir("skopeo"));

        let portcullis = Arc::new(Portcullis::start(&work.subdir("portcullis"), false).await);
        let config = portcullis.registry_config().await;
        let registry = Registry::start(&work.subdir("registry"), &config, 401).await;
        let browser = Browser::start(&work.subdir("browser"), server_log(&portcullis)).await;

        Stack {
            browser,
            portcullis,
            registry,
            skopeo,
            image,
            _work: work,
        }
    }

    /// Step 2: the sign-in page refuses a wrong password, then lets alice in.
    async fn sign_in(&self) {
        step("2. sign in: a wrong password is refused, the right one opens the profile");
        let browser = &self.browser;
        browser.goto(&self.url("/login")).await;
        browser.expect_path("/login", "open the sign-in page").await;
        self.screenshot("sign-in.png").await;

        self.submit_login("alice", "not-alices-password").await;
        browser
            .expect_path("/login", "after a wrong password")
            .await;
        let status = browser.response_status().await;
        if status != 401 {
            let message = format!("a wrong password must answer 401, not {status}");
            browser.fail(&message).await;
        }
        browser
            .expect_text(".flash.error", "Invalid user name or password")
            .await;
        self.artifact("sign-in-error.png").await;

        self.submit_login("alice", ALICE_PASSWORD).await;
        browser.expect_path("/", "after signing in").await;
        browser.expect_text("h1", "alice").await;
    }

    async fn submit_login(&self, user: &str, password: &str) {
        let browser = &self.browser;
        browser.find("#login-form").await;
        browser.fill("input#username[name=username]", user).await;
        browser
            .fill("input#password[name=password]", password)
            .await;
        browser.click_and_wait("button#login-submit").await;
    }

    /// Step 3: create a token; the secret shows once, with a ready `docker login` command.
    async fn create_token(&self, name: &str, access: &str) -> String {
        step("3. create the push token `laptop`; its secret shows once");
        let browser = &self.browser;
        browser.find("#create-token-form").await;
        browser.fill("input#token-name[name=name]", name).await;
        browser
            .select("select#token-access[name=access]", access)
            .await;
        browser
            .select("select#token-expiry[name=expiry]", "90")
            .await;
        browser.click_and_wait("button#create-token-submit").await;
        browser
            .expect_path("/tokens/created", "after creating a token")
            .await;

        let secret = browser.text("code#token-secret").await.trim().to_owned();
        let well_formed = secret.starts_with("pcl_") && !secret.contains(char::is_whitespace);
        if !well_formed {
            browser
                .fail(&format!(
                    "`#token-secret` must show one pcl_… secret, not {secret:?}"
                ))
                .await;
        }
        browser.find("button#copy-secret").await;
        browser
            .expect_text("code#docker-login", "docker login")
            .await;
        browser.expect_text("code#docker-login", "-u alice").await;
        browser.find("a#back-to-profile").await;
        self.screenshot("token-created.png").await;

        browser.reload().await;
        if browser.exists("#token-secret").await {
            browser
                .fail("reloading /tokens/created must not show the secret again")
                .await;
        }
        self.artifact("token-created-reloaded.png").await;
        secret
    }

    /// Step 4: the profile lists the new token.
    async fn profile_lists_token(&self, name: &str) {
        step("4. the profile lists the token");
        let browser = &self.browser;
        // The reload above may already have led here; opening the profile works either way.
        browser.goto(&self.url("/")).await;
        browser.expect_path("/", "open the profile").await;
        let row = token_row(name);
        browser.expect_text(&row, name).await;
        browser.expect_text(&row, "push").await;
        self.screenshot("profile.png").await;

        browser.resize(MOBILE).await;
        self.screenshot("profile-mobile.png").await;
        browser.resize(DESKTOP).await;
    }

    /// Step 5: skopeo logs in with the secret from the page, pushes and pulls back.
    async fn push_and_pull_back(&self, secret: &str) {
        step("5. skopeo logs in with the token, pushes alice/app:1 and pulls it back");
        let (login, _) = self
            .skopeo
            .login(&self.registry.host(), "alice", secret)
            .await;
        login.expect_success("skopeo login with the token from the web UI");

        let remote = self.registry.reference("alice/app:1");
        let pushed = self
            .skopeo
            .push(&self.image.reference(), &remote, creds(secret))
            .await;
        pushed.expect_success("push alice/app:1 with the token from the web UI");

        let layout = self.skopeo.fresh_layout();
        let pulled = self.skopeo.pull(&remote, &layout, TAG, creds(secret)).await;
        pulled.expect_success("pull alice/app:1 back with the token from the web UI");
        assert_eq!(
            manifest_digest_in_layout(&layout, TAG),
            self.image.manifest_digest,
            "pulled a different manifest than was pushed"
        );
    }

    /// Step 6: remove the token through its confirmation page.
    async fn remove_token(&self, name: &str) {
        step("6. remove the token through its confirmation page");
        let browser = &self.browser;
        let row = token_row(name);
        browser
            .click_and_wait(&format!("{row} a.remove-token"))
            .await;
        browser.find("form#remove-token-form").await;
        self.artifact("remove-token.png").await;

        browser.click_and_wait("button#confirm-remove").await;
        browser
            .expect_path("/", "after confirming the removal")
            .await;
        browser.find(".flash.success").await;
        self.artifact("token-removed.png").await;
        if browser.exists(&row).await {
            browser
                .fail(&format!("the row `{row}` is still listed after removal"))
                .await;
        }
    }

    /// Step 7: the registry refuses the removed token.
    async fn removed_token_is_refused(&self, secret: &str) {
        step("7. the removed token is refused, even to pull");
        let remote = self.registry.reference("alice/app:1");
        let layout = self.skopeo.fresh_layout();
        let pulled = self.skopeo.pull(&remote, &layout, TAG, creds(secret)).await;
        expect_refused(&pulled, "pull with the token removed in the web UI");
    }

    /// Step 8: after signing out, the profile sends the browser to the sign-in page.
    async fn sign_out(&self) {
        step("8. sign out; the profile then redirects to /login");
        let browser = &self.browser;
        browser
            .click_and_wait("form#logout-form button#logout")
            .await;
        browser.goto(&self.url("/")).await;
        browser
            .expect_path("/login", "opening / after signing out")
            .await;
    }

    /// Ends the browser session; everything else stops as the rest of the stack drops.
    async fn finish(self) {
        self.browser.close().await;
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.portcullis.url())
    }

    /// A screenshot kept as a test artifact, and copied for the README when
    /// `UPDATE_SCREENSHOTS` is set.
    async fn screenshot(&self, name: &str) {
        screenshot(&self.browser, name).await;
    }

    /// A screenshot kept only as a test artifact.
    async fn artifact(&self, name: &str) {
        artifact(&self.browser, name).await;
    }
}

/// A screenshot kept as a test artifact, and copied for the README when `UPDATE_SCREENSHOTS` is
/// set.
async fn screenshot(browser: &Browser, name: &str) {
    let mut dirs = vec![artifact_dir()];
    if std::env::var_os("UPDATE_SCREENSHOTS").is_some() {
        dirs.push(manifest_dir().join("docs/screenshots"));
    }
    let path = browser.screenshot(name, &dirs).await;
    eprintln!("   screenshot {}", path.display());
}

/// A screenshot kept only as a test artifact.
async fn artifact(browser: &Browser, name: &str) {
    let path = browser.screenshot(name, &[artifact_dir()]).await;
    eprintln!("   screenshot {}", path.display());
}

/// The table row listing the token `name`.
fn token_row(name: &str) -> String {
    format!("#tokens tr[data-token-name=\"{name}\"]")
}

/// `--src-creds`/`--dest-creds` for alice with `secret`.
fn creds(secret: &str) -> Auth<'_> {
    Auth::Creds {
        user: "alice",
        secret,
    }
}

/// Lets a browser failure show the server's recent log lines.
fn server_log(portcullis: &Arc<Portcullis>) -> common::browser::LogSource {
    let portcullis = Arc::clone(portcullis);
    Box::new(move || portcullis.log_tail())
}

fn manifest_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn artifact_dir() -> PathBuf {
    manifest_dir().join("target/screenshots")
}

/// Content no other run produced, so a pull cannot be satisfied by stale storage.
fn unique_payload() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("the clock is after 1970")
        .as_nanos();
    let pid = std::process::id();
    format!("portcullis browser test image, pid {pid}, at {nanos} ns\n")
}

fn step(title: &str) {
    eprintln!("== {title}");
}

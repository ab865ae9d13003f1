//! End to end: a real CNCF distribution registry (2.8) hands authentication to a real
//! `portcullis serve`, and skopeo pushes and pulls an image as a user would.
//!
//! Needs `docker-registry` and `skopeo` on `PATH` (`apt-get install docker-registry skopeo`);
//! the test fails, rather than skips, without them. Everything listens on 127.0.0.1 and lives in
//! one temporary directory, which is kept when a test fails. Run with
//! `cargo test --test e2e -- --nocapture` to watch the steps.

mod common;

use std::path::{Path, PathBuf};

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use serde_json::{Value, json};

use common::command::Finished;
use common::oci::{OciImage, manifest_digest_in_layout};
use common::portcullis::Portcullis;
use common::registry::{OPEN_CONFIG, Registry};
use common::skopeo::{Auth, Skopeo, expect_refused};
use common::workdir::WorkDir;

const ALICE_PASSWORD: &str = "alice-correct-horse-battery";
const BOB_PASSWORD: &str = "bob-correct-horse-battery";

/// Tag of the image in its OCI layout and of every pulled copy.
const TAG: &str = "e2e";

/// Checks the harness alone (image builder, skopeo, registry) against a registry without
/// authentication, so a failure of the real test points at portcullis only when this passes.
#[tokio::test]
async fn harness_round_trips_an_image_through_an_open_registry() {
    common::require_registry_tools();
    let work = WorkDir::new("portcullis-harness-");
    let image = OciImage::build(&work.subdir("image"), TAG, &unique_payload("harness"));
    let skopeo = Skopeo::new(&work.subdir("skopeo"));
    let registry = Registry::start(&work.subdir("registry"), OPEN_CONFIG, 200).await;

    let remote = registry.reference("harness/app:1");
    let pushed = skopeo
        .push(&image.reference(), &remote, Auth::Anonymous)
        .await;
    pushed.expect_success("push to the open registry");

    let copy = work.path().join("pulled");
    let pulled = skopeo.pull(&remote, &copy, TAG, Auth::Anonymous).await;
    pulled.expect_success("pull from the open registry");
    assert_eq!(manifest_digest_in_layout(&copy, TAG), image.manifest_digest);
}

/// The core promise: users and application tokens managed in portcullis decide, through the
/// registry's token auth, who may pull and push which repository.
#[tokio::test]
async fn registry_access_follows_portcullis_users_and_tokens() {
    let mut stack = Stack::start().await;

    let alice = stack.create_users_and_tokens().await;
    let login_authfile = stack.login_with_app_token(&alice).await;
    stack.push_and_pull_back(&alice, &login_authfile).await;
    stack.foreign_namespace_is_refused(&alice).await;
    stack.pull_token_cannot_push(&alice).await;
    let from_push_token = stack.refresh_token_from_push_token(&alice).await;
    let from_pull_token = stack.refresh_token_from_pull_token(&alice).await;
    stack
        .revoked_push_token_is_refused(&alice, &from_push_token)
        .await;
    stack
        .revoking_pull_token_ends_its_refresh_token(&from_pull_token)
        .await;
    stack.tokens_only_restart_refuses_passwords().await;
}

/// The authorization rules of issue 4, end to end: the examples the configuration must
/// express, a service account, a token limited to one repository, and a disabled user.
const TEAM_RULES: &str = r#"
[[rules]]
name = "web team"
who = ["group:web"]
repository = "web/*"
allow = ["pull", "push"]

[[rules]]
name = "public"
who = ["authenticated", "anonymous"]
repository = "public/*"
allow = ["pull"]

[[rules]]
name = "ci deploys"
who = ["deployer"]
repository = "public/*"
allow = ["push"]
"#;

#[tokio::test]
async fn rules_groups_and_service_accounts_decide_registry_access() {
    let stack = Stack::start_with_rules(TEAM_RULES).await;
    let portcullis = &stack.portcullis;
    portcullis.add_user("alice", ALICE_PASSWORD).await;
    portcullis.add_user("bob", BOB_PASSWORD).await;
    portcullis.cli_ok(&["group", "add", "web"], None).await;
    portcullis
        .cli_ok(&["group", "add-member", "web", "alice"], None)
        .await;
    let alice = portcullis.create_token("alice", "laptop", "push").await;
    let bob = portcullis.create_token("bob", "laptop", "push").await;
    let as_alice = || Auth::Creds {
        user: "alice",
        secret: &alice,
    };
    let as_bob = || Auth::Creds {
        user: "bob",
        secret: &bob,
    };

    step("a group member pushes into the group namespace; a non-member is refused");
    stack
        .push("web/site:1", as_alice())
        .await
        .expect_success("alice pushes web/site");
    expect_refused(
        &stack.push("web/site:2", as_bob()).await,
        "bob pushes web/site",
    );
    expect_refused(
        &stack.pull("web/site:1", as_bob()).await,
        "bob pulls web/site",
    );

    step("a service account's token pushes; anonymous clients pull public/*");
    portcullis
        .cli_ok(&["user", "add", "deployer", "--service"], None)
        .await;
    let deployer = portcullis.create_token("deployer", "ci", "push").await;
    let as_deployer = Auth::Creds {
        user: "deployer",
        secret: &deployer,
    };
    stack
        .push("public/tool:1", as_deployer)
        .await
        .expect_success("service account pushes");
    stack
        .expect_pull(
            "public/tool:1",
            Auth::Anonymous,
            "anonymous pull of public/*",
        )
        .await;
    expect_refused(
        &stack.push("public/tool:2", Auth::Anonymous).await,
        "anonymous push",
    );
    expect_refused(
        &stack.pull("web/site:1", Auth::Anonymous).await,
        "anonymous pull of web/*",
    );

    step("a token limited to one repository cannot touch another");
    let args = [
        "token",
        "create",
        "alice",
        "--name",
        "only-app",
        "--repository",
        "alice/app",
    ];
    let limited = portcullis
        .cli_ok(&[&args[..], &["--access", "push"]].concat(), None)
        .await;
    let limited = limited.stdout_line().to_owned();
    let as_limited = || Auth::Creds {
        user: "alice",
        secret: &limited,
    };
    stack
        .push("alice/app:1", as_limited())
        .await
        .expect_success("limited token, its repository");
    expect_refused(
        &stack.push("alice/other:1", as_limited()).await,
        "limited token elsewhere",
    );
    expect_refused(
        &stack.push("web/site:3", as_limited()).await,
        "limited token, group repo",
    );

    step("disabling a user stops their token on the very next token request");
    stack
        .expect_pull(
            "web/site:1",
            as_alice(),
            "alice pulls before being disabled",
        )
        .await;
    portcullis.cli_ok(&["user", "disable", "alice"], None).await;
    expect_refused(
        &stack.pull("web/site:1", as_alice()).await,
        "disabled alice pulls",
    );
    portcullis.cli_ok(&["user", "enable", "alice"], None).await;
    stack
        .expect_pull("web/site:1", as_alice(), "alice pulls after being enabled")
        .await;

    step("the audit log saw the changes");
    let audit = portcullis
        .cli_ok(&["audit", "--json", "--limit", "500"], None)
        .await;
    for action in [
        "group.member_added",
        "user.disabled",
        "token.created",
        "user.created",
    ] {
        assert!(
            audit.stdout.contains(action),
            "audit lacks {action}:\n{}",
            audit.stdout
        );
    }
}

/// Key rotation with the real registry: a token signed before `key rotate` and one after both
/// work with no registry restart; replacing the CA by the documented two steps keeps pushes
/// working throughout, and afterwards tokens signed under the old CA are refused.
#[tokio::test]
async fn signing_keys_rotate_and_the_ca_is_replaced_without_downtime() {
    let mut stack = Stack::start().await;
    stack.portcullis.add_user("alice", ALICE_PASSWORD).await;
    let secret = stack
        .portcullis
        .create_token("alice", "laptop", "push")
        .await;
    let creds = || Auth::Creds {
        user: "alice",
        secret: &secret,
    };

    step("key rotate: tokens from before and after both work, no registry restart");
    stack
        .push("alice/app:1", creds())
        .await
        .expect_success("push before rotating");
    let before = stack.bearer(&secret).await;
    stack.portcullis.cli_ok(&["key", "rotate"], None).await;
    let after = stack.bearer(&secret).await;
    assert_ne!(
        jwt_header(&before)["kid"],
        jwt_header(&after)["kid"],
        "a new signing key"
    );
    stack
        .expect_registry_status(&before, 200, "token signed before the rotation")
        .await;
    stack
        .expect_registry_status(&after, 200, "token signed after the rotation")
        .await;
    stack
        .push("alice/app:2", creds())
        .await
        .expect_success("push after rotating");
    let listed = stack.portcullis.cli_ok(&["key", "list"], None).await;
    assert!(
        listed.stdout.contains("signing (retired)"),
        "{}",
        listed.stdout
    );

    step("CA step 1: stage a new CA, give registries both, restart them");
    stack
        .portcullis
        .cli_ok(&["key", "rotate", "--ca"], None)
        .await;
    let bundle = stack
        .portcullis
        .cli_ok(&["cert"], None)
        .await
        .stdout
        .clone();
    assert_eq!(
        bundle.matches("BEGIN CERTIFICATE").count(),
        2,
        "both CAs published"
    );
    stack.restart_registry().await;
    stack
        .push("alice/app:3", creds())
        .await
        .expect_success("push with both CAs trusted");
    let old_ca = stack.bearer(&secret).await;

    step("CA step 2: switch to the new CA and retire the old one");
    stack.portcullis.cli_ok(&["key", "retire"], None).await;
    stack
        .push("alice/app:4", creds())
        .await
        .expect_success("push signed under the new CA");
    let new_ca = stack.bearer(&secret).await;
    stack
        .expect_registry_status(&old_ca, 200, "old-CA token while both are trusted")
        .await;
    stack.restart_registry().await;
    stack
        .push("alice/app:5", creds())
        .await
        .expect_success("push after dropping the old CA");
    stack
        .expect_registry_status(&new_ca, 200, "new-CA token")
        .await;
    stack
        .expect_registry_status(&old_ca, 401, "old-CA token once the old CA is gone")
        .await;
}

/// Alice's application tokens, by what they may do.
struct AliceTokens {
    /// Named `laptop`, access `push`.
    push: String,
    /// Named `ci`, access `pull`.
    pull: String,
}

/// Everything one run of the scenario needs, torn down in field order (the directory last, so
/// that logs are still there when the servers print them on failure).
struct Stack {
    portcullis: Portcullis,
    registry: Registry,
    skopeo: Skopeo,
    image: OciImage,
    _work: WorkDir,
}

impl Stack {
    /// Step 1: build the image offline, start portcullis, and start a registry configured by
    /// `portcullis registry-config`.
    async fn start() -> Stack {
        Stack::start_with_rules("").await
    }

    /// Like [`Stack::start`], with `rules` (TOML) as portcullis's configuration file.
    async fn start_with_rules(rules: &str) -> Stack {
        common::require_registry_tools();
        let work = WorkDir::new("portcullis-e2e-");
        step("1. build an OCI image offline");
        let image = OciImage::build(&work.subdir("image"), TAG, &unique_payload("e2e"));
        let skopeo = Skopeo::new(&work.subdir("skopeo"));
        let inspect = ["inspect", "--format", "{{.Digest}}", &image.reference()].map(String::from);
        let inspected = skopeo.run(&inspect).await;
        inspected.expect_success("skopeo inspect of the built OCI layout");
        assert_eq!(
            inspected.stdout_line(),
            image.manifest_digest,
            "digest of the built image"
        );

        step("1. start portcullis and a registry configured by `portcullis registry-config`");
        let portcullis_dir = work.subdir("portcullis");
        // `serve` runs in this directory and reads portcullis.toml from it.
        std::fs::write(portcullis_dir.join("portcullis.toml"), rules).expect("write the config");
        let portcullis = Portcullis::start(&portcullis_dir, false).await;
        let config = portcullis.registry_config().await;
        let realm = format!("{}/v2/token", portcullis.url());
        assert!(
            config.contains(&realm),
            "registry-config must name the realm {realm}:\n{config}"
        );
        let registry = Registry::start(&work.subdir("registry"), &config, 401).await;

        Stack {
            portcullis,
            registry,
            skopeo,
            image,
            _work: work,
        }
    }

    /// Step 2: users alice and bob; a push token and a pull token for alice.
    async fn create_users_and_tokens(&self) -> AliceTokens {
        step("2. create users alice and bob, and alice's push and pull tokens");
        self.portcullis.add_user("alice", ALICE_PASSWORD).await;
        self.portcullis.add_user("bob", BOB_PASSWORD).await;

        let push = self
            .portcullis
            .create_token("alice", "laptop", "push")
            .await;
        let pull = self.portcullis.create_token("alice", "ci", "pull").await;
        assert_ne!(push, pull, "two tokens must not share a secret");
        AliceTokens { push, pull }
    }

    /// Step 3: `skopeo login` with an application token works; with a wrong one it does not.
    /// Returns the auth file the login wrote.
    async fn login_with_app_token(&self, alice: &AliceTokens) -> PathBuf {
        step("3. skopeo login with alice's push token");
        let host = self.registry.host();
        let (wrong, _) = self
            .skopeo
            .login(&host, "alice", "pcl_not-a-real-token")
            .await;
        expect_refused(&wrong, "login with a made-up token");

        let (login, authfile) = self.skopeo.login(&host, "alice", &alice.push).await;
        login.expect_success("login with alice's push token");
        let stored = read_json(&authfile);
        assert!(
            stored["auths"][&host]["auth"].is_string(),
            "login stored no entry: {stored}"
        );
        authfile
    }

    /// Step 4: push alice/app:1 with the push token, pull it back, compare manifest digests.
    async fn push_and_pull_back(&self, alice: &AliceTokens, login_authfile: &Path) {
        step("4. push alice/app:1 with the push token and pull it back");
        let remote = self.registry.reference("alice/app:1");
        let pushed = self
            .skopeo
            .push(&self.image.reference(), &remote, creds(&alice.push))
            .await;
        pushed.expect_success("push alice/app:1 with alice's push token");

        let what = "pull back with the auth file `skopeo login` wrote";
        self.expect_pull("alice/app:1", Auth::File(login_authfile), what)
            .await;
    }

    /// Step 5: alice's token is refused in bob's namespace, which bob himself can write.
    async fn foreign_namespace_is_refused(&self, alice: &AliceTokens) {
        step("5. alice's push token cannot push into bob's namespace");
        let pushed = self.push("bob/app:1", creds(&alice.push)).await;
        expect_refused(&pushed, "push bob/app:1 with alice's push token");

        let bob = Auth::Creds {
            user: "bob",
            secret: BOB_PASSWORD,
        };
        self.push("bob/app:1", bob)
            .await
            .expect_success("bob pushes bob/app:1 himself");
    }

    /// Step 6: the pull-only token pulls but cannot push, even into alice's own namespace.
    async fn pull_token_cannot_push(&self, alice: &AliceTokens) {
        step("6. alice's pull token can pull alice/app:1 but not push alice/other:1");
        self.expect_pull(
            "alice/app:1",
            creds(&alice.pull),
            "pull with alice's pull token",
        )
        .await;

        let pushed = self.push("alice/other:1", creds(&alice.pull)).await;
        expect_refused(&pushed, "push alice/other:1 with alice's pull token");
    }

    /// Step 7: a refresh token obtained with the push token pulls and pushes with no password.
    async fn refresh_token_from_push_token(&self, alice: &AliceTokens) -> PathBuf {
        step("7. a refresh token from alice's push token works without any password");
        let refresh = self
            .fetch_refresh_token(&alice.push, &["pull", "push"])
            .await;
        let authfile = self.identity_token_authfile(&refresh);

        self.expect_pull(
            "alice/app:1",
            Auth::File(&authfile),
            "pull with the refresh token",
        )
        .await;
        let pushed = self.push("alice/app:2", Auth::File(&authfile)).await;
        pushed.expect_success("push alice/app:2 with a refresh token from the push token");
        authfile
    }

    /// Step 8: a refresh token obtained with the pull token carries only pull access.
    async fn refresh_token_from_pull_token(&self, alice: &AliceTokens) -> PathBuf {
        step("8. a refresh token from alice's pull token pulls but cannot push");
        let refresh = self.fetch_refresh_token(&alice.pull, &["pull"]).await;
        let authfile = self.identity_token_authfile(&refresh);

        let what = "pull with a refresh token from the pull token";
        self.expect_pull("alice/app:1", Auth::File(&authfile), what)
            .await;
        let pushed = self.push("alice/other:2", Auth::File(&authfile)).await;
        expect_refused(&pushed, "push with a refresh token from the pull token");
        authfile
    }

    /// Step 9: after `token revoke`, the push token and its refresh token are refused, even for
    /// a pull.
    async fn revoked_push_token_is_refused(&self, alice: &AliceTokens, refresh_authfile: &Path) {
        step("9. after `token revoke alice laptop` the push token is refused, even to pull");
        self.portcullis.revoke_token("alice", "laptop").await;

        let pulled = self.pull("alice/app:1", creds(&alice.push)).await;
        expect_refused(&pulled, "pull with the revoked push token");
        let pulled = self.pull("alice/app:1", Auth::File(refresh_authfile)).await;
        expect_refused(
            &pulled,
            "pull with a refresh token from the revoked push token",
        );
    }

    /// Step 10: revoking the pull token ends the refresh token obtained with it.
    async fn revoking_pull_token_ends_its_refresh_token(&self, refresh_authfile: &Path) {
        step("10. after `token revoke alice ci` its refresh token is refused");
        self.portcullis.revoke_token("alice", "ci").await;

        let pulled = self.pull("alice/app:1", Auth::File(refresh_authfile)).await;
        expect_refused(
            &pulled,
            "pull with a refresh token from the revoked pull token",
        );
    }

    /// Step 11: the password pulls; after a restart with tokens only, it no longer does while
    /// an application token still does.
    async fn tokens_only_restart_refuses_passwords(&mut self) {
        step("11. alice's password pulls; after a tokens-only restart it is refused");
        let token = self.portcullis.create_token("alice", "spare", "pull").await;
        let password = Auth::Creds {
            user: "alice",
            secret: ALICE_PASSWORD,
        };
        self.expect_pull("alice/app:1", password, "pull with alice's password")
            .await;

        self.portcullis.restart(true).await;
        let password = Auth::Creds {
            user: "alice",
            secret: ALICE_PASSWORD,
        };
        let pulled = self.pull("alice/app:1", password).await;
        expect_refused(
            &pulled,
            "pull with alice's password when tokens_only is set",
        );
        self.expect_pull(
            "alice/app:1",
            creds(&token),
            "pull with a token when tokens_only is set",
        )
        .await;
    }

    /// Asks the token endpoint directly for an offline token, as `docker login` does, checks
    /// the answer and the JWT in it, and returns the refresh token.
    async fn fetch_refresh_token(&self, app_token: &str, expected_actions: &[&str]) -> String {
        let url = format!("{}/v2/token", self.portcullis.url());
        let query = [
            ("service", "registry"),
            ("scope", "repository:alice/app:pull,push"),
            ("offline_token", "true"),
            ("client_id", "e2e"),
        ];
        let request = reqwest::Client::new().get(&url).query(&query);
        let response = request.basic_auth("alice", Some(app_token)).send().await;
        let response = response.unwrap_or_else(|err| panic!("GET {url} failed: {err}"));
        let status = response.status();
        let body = response.text().await.expect("read the token response");
        assert!(status.is_success(), "GET {url} answered {status}: {body}");

        let answer: Value = serde_json::from_str(&body).expect("token response is JSON");
        check_token_response(&answer);
        check_claims(&jwt_claims(&answer["token"]), "alice/app", expected_actions);
        let refresh = answer["refresh_token"].as_str().unwrap_or_default();
        assert!(
            !refresh.is_empty(),
            "offline_token=true must return a refresh_token: {answer}"
        );
        refresh.to_owned()
    }

    /// An auth file as docker writes after a login that returned a refresh token.
    fn identity_token_authfile(&self, refresh_token: &str) -> PathBuf {
        let path = self.skopeo.fresh_authfile();
        // containers/image ignores an entry without `auth`; `user:` with no password is what
        // docker itself writes beside an identity token.
        let entry = json!({ "auth": STANDARD.encode("alice:"), "identitytoken": refresh_token });
        let file = json!({ "auths": { self.registry.host(): entry } });
        std::fs::write(&path, file.to_string()).expect("write the identity-token auth file");
        path
    }

    /// A registry token for alice, pull and push on alice/app, from the token endpoint.
    async fn bearer(&self, secret: &str) -> String {
        let url = format!("{}/v2/token", self.portcullis.url());
        let query = [
            ("service", "registry"),
            ("scope", "repository:alice/app:pull,push"),
        ];
        let request = reqwest::Client::new()
            .get(&url)
            .query(&query)
            .basic_auth("alice", Some(secret));
        let answer: Value = request
            .send()
            .await
            .expect("token request")
            .json()
            .await
            .expect("JSON");
        answer["token"].as_str().expect("a token").to_owned()
    }

    /// Asks the registry for alice/app's tags with `token` and checks the status.
    async fn expect_registry_status(&self, token: &str, expected: u16, what: &str) {
        let url = format!("http://{}/v2/alice/app/tags/list", self.registry.host());
        let response = reqwest::Client::new()
            .get(&url)
            .bearer_auth(token)
            .send()
            .await;
        let status = response.expect("registry request").status().as_u16();
        assert_eq!(status, expected, "{what}\n{}", self.registry.log_tail());
    }

    /// Starts the registry again on the same storage, with the configuration (and so the
    /// certificate bundle) portcullis gives now.
    async fn restart_registry(&mut self) {
        let config = self.portcullis.registry_config().await;
        let dir = self._work.subdir("registry");
        self.registry = Registry::start(&dir, &config, 401).await;
    }

    /// Pushes the test image to `repository_and_tag`.
    async fn push(&self, repository_and_tag: &str, auth: Auth<'_>) -> Finished {
        let remote = self.registry.reference(repository_and_tag);
        self.skopeo
            .push(&self.image.reference(), &remote, auth)
            .await
    }

    /// Pulls `repository_and_tag` into a fresh OCI layout.
    async fn pull(&self, repository_and_tag: &str, auth: Auth<'_>) -> Finished {
        let remote = self.registry.reference(repository_and_tag);
        let layout = self.skopeo.fresh_layout();
        self.skopeo.pull(&remote, &layout, TAG, auth).await
    }

    /// Pulls `repository_and_tag` and checks it is the image that was pushed.
    async fn expect_pull(&self, repository_and_tag: &str, auth: Auth<'_>, what: &str) {
        let remote = self.registry.reference(repository_and_tag);
        let layout = self.skopeo.fresh_layout();
        self.skopeo
            .pull(&remote, &layout, TAG, auth)
            .await
            .expect_success(what);
        let digest = manifest_digest_in_layout(&layout, TAG);
        assert_eq!(
            digest, self.image.manifest_digest,
            "{what}: pulled a different manifest"
        );
    }
}

/// Checks the fields every token response carries (DESIGN.md, "The token endpoint").
fn check_token_response(answer: &Value) {
    let token = answer["token"].as_str().unwrap_or_default();
    assert!(!token.is_empty(), "no `token` in {answer}");
    assert_eq!(
        answer["access_token"], answer["token"],
        "`access_token` must equal `token`"
    );
    let expires_in = answer["expires_in"].as_u64().unwrap_or_default();
    assert!(
        expires_in >= 60,
        "`expires_in` must be at least 60: {answer}"
    );
    let issued_at = answer["issued_at"].as_str().unwrap_or_default();
    assert!(
        issued_at.contains('T'),
        "`issued_at` must be RFC 3339: {answer}"
    );
}

/// The claims of a JWT, decoded without checking the signature (the registry checks that).
fn jwt_claims(token: &Value) -> Value {
    let token = token.as_str().expect("the token is a string");
    let payload = token.split('.').nth(1).expect("a JWT has three parts");
    let bytes = URL_SAFE_NO_PAD
        .decode(payload)
        .expect("the JWT payload is base64url");
    serde_json::from_slice(&bytes).expect("the JWT payload is JSON")
}

/// Checks subject, audience, issuer, and that `repository` was granted exactly `actions`.
fn check_claims(claims: &Value, repository: &str, actions: &[&str]) {
    assert_eq!(claims["sub"], "alice", "`sub`: {claims}");
    // Registry 2.8 rejects an array here.
    assert_eq!(
        claims["aud"], "registry",
        "`aud` must be a single string: {claims}"
    );
    assert_eq!(claims["iss"], "portcullis", "`iss`: {claims}");

    let access = claims["access"].as_array().cloned().unwrap_or_default();
    let entry = access.iter().find(|entry| entry["name"] == repository);
    let entry = entry.unwrap_or_else(|| panic!("no access to {repository} in {claims}"));
    let mut granted: Vec<&str> = entry["actions"]
        .as_array()
        .map(|list| list.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    granted.sort_unstable();
    let mut expected = actions.to_vec();
    expected.sort_unstable();
    assert_eq!(
        granted, expected,
        "actions granted on {repository}: {claims}"
    );
}

/// `--src-creds`/`--dest-creds` for alice with `secret`.
fn creds(secret: &str) -> Auth<'_> {
    Auth::Creds {
        user: "alice",
        secret,
    }
}

fn jwt_header(token: &str) -> Value {
    let header = token.split('.').next().unwrap_or_default();
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(header).expect("base64url")).expect("JSON")
}

fn read_json(path: &Path) -> Value {
    let bytes =
        std::fs::read(path).unwrap_or_else(|err| panic!("cannot read {}: {err}", path.display()));
    serde_json::from_slice(&bytes).expect("valid JSON")
}

/// Content no other run produced, so a pull cannot be satisfied by stale storage.
fn unique_payload(label: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("the clock is after 1970")
        .as_nanos();
    format!(
        "portcullis {label} test image, pid {}, at {nanos} ns\n",
        std::process::id()
    )
}

fn step(title: &str) {
    eprintln!("== {title}");
}

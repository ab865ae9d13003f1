//! Operations on a real `portcullis serve`: a backup taken under load restores to a store with
//! every acknowledged write, an export imports into a new data directory, and a SIGTERM in the
//! middle of a burst of token requests loses nothing and cuts no request off.
//!
//! Everything listens on 127.0.0.1 and lives in one temporary directory per test (kept when a
//! test fails, or with `KEEP_TEST_FILES=1`).

mod common;

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use serde_json::Value;

use common::portcullis::{DATA_DIR, Portcullis};
use common::workdir::WorkDir;

/// The per-user token limit the server runs with (its default).
const TOKEN_LIMIT: usize = 5;

const ALICE_PASSWORD: &str = "alice-correct-horse-battery";

/// A token creation the CLI acknowledged (exit 0, secret printed).
struct Acked {
    user: String,
    name: String,
    secret: String,
    at: Instant,
}

/// How one token request ended.
enum Outcome {
    /// A complete response: status and body, read to the end.
    Answered(u16, Value),
    /// The connection was refused: the listener was already closed.
    Refused,
    /// Anything else: reset, closed mid-response, timed out.
    CutOff(String),
}

/// A client that opens a new connection per request. With keep-alive, a request written on an
/// idle connection just as the server closes it fails in a way no server can prevent (HTTP
/// clients retry such requests); a fresh connection makes every failure mean what it says.
fn fresh_connection_client() -> reqwest::Client {
    reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .timeout(Duration::from_secs(20))
        .build()
        .expect("build the HTTP client")
}

/// `GET /v2/token?service=registry[&scope=…]` with Basic credentials.
async fn token_request(
    client: &reqwest::Client,
    url: &str,
    user: &str,
    secret: &str,
    scope: Option<&str>,
) -> Outcome {
    let mut request = client
        .get(format!("{url}/v2/token"))
        .query(&[("service", "registry")])
        .basic_auth(user, Some(secret));
    if let Some(scope) = scope {
        request = request.query(&[("scope", scope)]);
    }
    let response = match request.send().await {
        Ok(response) => response,
        Err(e) if e.is_connect() => return Outcome::Refused,
        Err(e) => return Outcome::CutOff(format!("{e:?}")),
    };
    let status = response.status().as_u16();
    match response.bytes().await {
        Ok(body) => match serde_json::from_slice(&body) {
            Ok(json) => Outcome::Answered(status, json),
            Err(e) => Outcome::CutOff(format!("status {status}, body is not JSON: {e}")),
        },
        Err(e) => Outcome::CutOff(format!("status {status}, body cut off: {e:?}")),
    }
}

/// Fails the test unless `user`/`secret` gets a signed token.
async fn assert_token_works(client: &reqwest::Client, url: &str, user: &str, secret: &str) {
    match token_request(client, url, user, secret, None).await {
        Outcome::Answered(200, json) if json["token"].is_string() => {}
        Outcome::Answered(status, json) => panic!("{user}: status {status}, {json}"),
        Outcome::Refused => panic!("{user}: connection refused"),
        Outcome::CutOff(e) => panic!("{user}: {e}"),
    }
}

/// Creates tokens for `accounts` through the CLI, `TOKEN_LIMIT` each, until `stop` is set or
/// every account is full; returns the acknowledged ones. With `may_fail`, a refused call (the
/// server is shutting down) ends the writer instead of failing the test.
async fn create_tokens(
    server: Arc<Portcullis>,
    accounts: Vec<String>,
    stop: Arc<AtomicBool>,
    acked_count: Arc<AtomicUsize>,
    may_fail: bool,
) -> Vec<Acked> {
    let mut acked = Vec::new();
    for user in accounts {
        for n in 0..TOKEN_LIMIT {
            if stop.load(Ordering::SeqCst) {
                return acked;
            }
            let name = format!("t{n}");
            let args = ["token", "create", &user, "--name", &name];
            let finished = server.cli(&args, None).await;
            if !finished.succeeded() {
                assert!(may_fail, "token create failed under load:\n{finished}");
                return acked;
            }
            acked.push(Acked {
                user: user.clone(),
                name,
                secret: finished.stdout_line().to_owned(),
                at: Instant::now(),
            });
            acked_count.fetch_add(1, Ordering::SeqCst);
        }
    }
    acked
}

/// The names of a user's tokens, from `token list`, with their last-used column.
async fn listed_tokens(server: &Portcullis, user: &str) -> Vec<(String, String)> {
    let listed = server.cli_ok(&["token", "list", user], None).await;
    listed
        .stdout
        .lines()
        .skip(1)
        .map(|line| {
            let columns: Vec<&str> = line.split_whitespace().collect();
            (columns[0].to_owned(), columns[3].to_owned())
        })
        .collect()
}

async fn add_service_accounts(server: &Portcullis, names: &[String]) {
    for name in names {
        server
            .cli_ok(&["user", "add", name, "--service"], None)
            .await;
    }
}

/// Restores a backup as the README says: copy its files into an empty data directory.
fn restore(backup: &Path, data_dir: &Path) {
    std::fs::create_dir_all(data_dir).unwrap();
    let status = std::process::Command::new("cp")
        .arg("-a")
        .arg(backup.join("."))
        .arg(data_dir)
        .status()
        .expect("run cp");
    assert!(status.success(), "cp -a failed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn backup_taken_under_load_restores_every_acknowledged_write() {
    let work = WorkDir::new("portcullis-backup-");
    let live = Portcullis::start(&work.subdir("live"), false).await;
    let url = live.url();
    let writers: Vec<Vec<String>> = (0..4)
        .map(|w| (0..3).map(|a| format!("svc{w}-{a}")).collect())
        .collect();
    add_service_accounts(&live, &writers.concat()).await;
    add_service_accounts(&live, &["reader".to_owned()]).await;
    let reader = live.create_token("reader", "load", "pull").await;
    let live = Arc::new(live);

    // Writers create tokens through the CLI (the server commits them); readers ask for
    // registry tokens the whole time.
    let stop = Arc::new(AtomicBool::new(false));
    let acked_count = Arc::new(AtomicUsize::new(0));
    let mut writing = tokio::task::JoinSet::new();
    for accounts in writers {
        let (server, stop, count) = (
            Arc::clone(&live),
            Arc::clone(&stop),
            Arc::clone(&acked_count),
        );
        writing.spawn(create_tokens(server, accounts, stop, count, false));
    }
    let mut reading = tokio::task::JoinSet::new();
    for _ in 0..4 {
        let (url, reader, stop) = (url.clone(), reader.clone(), Arc::clone(&stop));
        reading.spawn(async move {
            let client = reqwest::Client::new();
            let mut answered = 0;
            for _ in 0..2000 {
                if stop.load(Ordering::SeqCst) {
                    break;
                }
                assert_token_works(&client, &url, "reader", &reader).await;
                answered += 1;
            }
            answered
        });
    }

    let deadline = Instant::now() + Duration::from_secs(30);
    while acked_count.load(Ordering::SeqCst) < 8 {
        assert!(Instant::now() < deadline, "the writers made no progress");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // Writes acknowledged before this instant must be in the backup. Writes acknowledged after
    // it may or may not be: the backup's snapshot is taken at some point during the command.
    let backup_started = Instant::now();
    let backup = work.path().join("backup");
    let backup_arg = backup.to_str().unwrap();
    live.cli_ok(&["backup", backup_arg], None).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    stop.store(true, Ordering::SeqCst);

    let mut acked = Vec::new();
    while let Some(done) = writing.join_next().await {
        acked.extend(done.unwrap());
    }
    let mut reads = 0;
    while let Some(done) = reading.join_next().await {
        reads += done.unwrap();
    }
    let before: Vec<&Acked> = acked.iter().filter(|a| a.at < backup_started).collect();
    eprintln!(
        "{} tokens acknowledged, {} before the backup started; {reads} token requests",
        acked.len(),
        before.len()
    );
    assert!(reads > 0, "the readers never ran");

    let again = live.cli(&["backup", backup_arg], None).await;
    again.expect_failure("a second backup into the same directory");
    assert!(again.stderr.contains("already exists"), "{again}");
    let manifest: Value =
        serde_json::from_slice(&std::fs::read(backup.join("MANIFEST.json")).unwrap()).unwrap();
    assert!(manifest["tables"]["tokens"].as_u64().unwrap() > before.len() as u64);
    for name in [
        "portcullis.redb",
        "ca.crt",
        "ca.key",
        "signing.crt",
        "signing.key",
    ] {
        let mode = std::fs::metadata(backup.join(name)).unwrap().permissions();
        assert_eq!(
            std::os::unix::fs::PermissionsExt::mode(&mode) & 0o777,
            0o600,
            "{name}"
        );
    }

    let restored_dir = work.subdir("restored");
    restore(&backup, &restored_dir.join(DATA_DIR));
    let restored = Portcullis::start(&restored_dir, false).await;
    let restored_url = restored.url();
    assert_eq!(
        restored.cli_ok(&["cert"], None).await.stdout,
        live.cli_ok(&["cert"], None).await.stdout,
        "the restored server must keep the CA registries trust"
    );

    let client = reqwest::Client::new();
    for token in &before {
        assert_token_works(&client, &restored_url, &token.user, &token.secret).await;
    }
    // Nothing in the backup that was never acknowledged, and every token in it works.
    let mut in_backup = 0;
    for user in acked
        .iter()
        .map(|a| a.user.as_str())
        .collect::<std::collections::BTreeSet<_>>()
    {
        for (name, _) in listed_tokens(&restored, user).await {
            let token = acked.iter().find(|a| a.user == user && a.name == name);
            let token = token.unwrap_or_else(|| panic!("{user}/{name} was never acknowledged"));
            assert_token_works(&client, &restored_url, user, &token.secret).await;
            in_backup += 1;
        }
    }
    assert!(in_backup >= before.len());
    assert_token_works(&client, &restored_url, "reader", &reader).await;
    restored.cli_ok(&["audit", "--limit", "5"], None).await;
}

#[tokio::test]
async fn export_imports_into_a_new_data_directory() {
    let work = WorkDir::new("portcullis-export-");
    let live = Portcullis::start(&work.subdir("live"), false).await;
    live.add_user("alice", ALICE_PASSWORD).await;
    live.cli_ok(&["group", "add", "web"], None).await;
    live.cli_ok(&["group", "add-member", "web", "alice"], None)
        .await;
    let secret = live.create_token("alice", "laptop", "push").await;
    let client = reqwest::Client::new();
    assert_token_works(&client, &live.url(), "alice", &secret).await;

    let exported = live.cli_ok(&["export"], None).await.stdout.clone();
    assert!(
        !exported.contains(&secret),
        "an export holds digests, never secrets"
    );
    let json: Value = serde_json::from_str(&exported).expect("export is JSON");
    assert_eq!(json["format"], 1);
    assert!(json.get("sessions").is_none());
    let alice = json["users"]
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["name"] == "alice");
    assert!(
        alice.unwrap()["password_hash"]
            .as_str()
            .unwrap()
            .starts_with("$argon2id$")
    );
    let file = work.path().join("export.json");
    std::fs::write(&file, &exported).unwrap();
    let file = file.to_str().unwrap();

    let refused = live.cli(&["import", file], None).await;
    refused.expect_failure("import into the running server's data directory");
    assert!(refused.stderr.contains("serve"), "{refused}");

    let mut fresh = Portcullis::stopped(&work.subdir("fresh"), false);
    fresh.cli_ok(&["import", file], None).await;
    let twice = fresh.cli(&["import", file], None).await;
    twice.expect_failure("a second import");
    assert!(twice.stderr.contains("not empty"), "{twice}");
    fresh.restart(false).await;

    let url = fresh.url();
    assert_token_works(&client, &url, "alice", ALICE_PASSWORD).await;
    let scope = Some("repository:alice/app:pull,push");
    match token_request(&client, &url, "alice", &secret, scope).await {
        Outcome::Answered(200, json) => assert!(json["token"].is_string()),
        Outcome::Answered(status, json) => panic!("status {status}: {json}"),
        _ => panic!("the imported token's request failed"),
    }
    let groups = fresh.cli_ok(&["group", "list"], None).await;
    assert!(groups.stdout.contains("alice"), "{groups}");
    let audit = fresh
        .cli_ok(&["audit", "--action", "token.created"], None)
        .await;
    assert!(audit.stdout.contains("alice/laptop"), "{audit}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sigterm_during_a_burst_loses_no_acknowledged_write_and_cuts_off_no_request() {
    let work = WorkDir::new("portcullis-sigterm-");
    let server = Portcullis::start(&work.subdir("server"), false).await;
    let url = server.url();
    add_service_accounts(&server, &["burst".to_owned()]).await;
    let secret = server.create_token("burst", "used", "pull").await;
    // One use before the burst: its last-used time waits in memory for the next batch (every
    // 30 s) or the shutdown, whichever comes first.
    let client = fresh_connection_client();
    assert_token_works(&client, &url, "burst", &secret).await;
    let writers: Vec<String> = (0..2).map(|w| format!("writer{w}")).collect();
    add_service_accounts(&server, &writers).await;
    let server = Arc::new(server);

    let answered = Arc::new(AtomicUsize::new(0));
    let mut requests = tokio::task::JoinSet::new();
    for task in 0..8 {
        let (url, secret, answered) = (url.clone(), secret.clone(), Arc::clone(&answered));
        requests.spawn(async move {
            let client = fresh_connection_client();
            let mut outcomes = Vec::new();
            for i in 0..50 {
                // Every fourth request has unknown credentials and must get a complete 401
                // (a new name each time, so that failure throttling stays out of the way).
                let wrong = (task + i) % 4 == 0;
                let stranger = format!("stranger{task}x{i}");
                let (user, secret) = match wrong {
                    true => (stranger.as_str(), "pcl_wrong"),
                    false => ("burst", secret.as_str()),
                };
                let outcome = token_request(&client, &url, user, secret, None).await;
                if matches!(outcome, Outcome::Answered(..)) {
                    answered.fetch_add(1, Ordering::SeqCst);
                }
                outcomes.push((wrong, outcome));
            }
            outcomes
        });
    }
    let stop = Arc::new(AtomicBool::new(false));
    let acked_count = Arc::new(AtomicUsize::new(0));
    let mut writing = tokio::task::JoinSet::new();
    for accounts in writers.iter().map(|w| vec![w.clone()]) {
        let (server, stop, count) = (
            Arc::clone(&server),
            Arc::clone(&stop),
            Arc::clone(&acked_count),
        );
        writing.spawn(create_tokens(server, accounts, stop, count, true));
    }

    let deadline = Instant::now() + Duration::from_secs(30);
    while answered.load(Ordering::SeqCst) < 60 || acked_count.load(Ordering::SeqCst) < 2 {
        assert!(Instant::now() < deadline, "the burst made no progress");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    server.send_sigterm();

    let (mut complete, mut refused, mut cut_off) = (0, 0, Vec::new());
    while let Some(done) = requests.join_next().await {
        for (wrong, outcome) in done.unwrap() {
            match outcome {
                Outcome::Answered(401, json) if wrong && json["errors"].is_array() => complete += 1,
                Outcome::Answered(200, json) if !wrong && json["token"].is_string() => {
                    complete += 1
                }
                Outcome::Answered(status, json) => cut_off.push(format!("{status}: {json}")),
                Outcome::Refused => refused += 1,
                Outcome::CutOff(e) => cut_off.push(e),
            }
        }
    }
    stop.store(true, Ordering::SeqCst);
    let mut acked = Vec::new();
    while let Some(done) = writing.join_next().await {
        acked.extend(done.unwrap());
    }
    let mut server = Arc::into_inner(server).expect("every task is done");
    let (status, log) = server.wait_for_exit(Duration::from_secs(20));
    eprintln!(
        "{complete} requests answered, {refused} refused, {} cut off; {} tokens acknowledged",
        cut_off.len(),
        acked.len()
    );
    assert!(status.success(), "serve exited with {status}\n{log}");
    assert!(cut_off.is_empty(), "requests cut off: {cut_off:#?}\n{log}");
    assert!(complete >= 60);

    server.restart(false).await;
    let client = reqwest::Client::new();
    for token in &acked {
        let listed = listed_tokens(&server, &token.user).await;
        assert!(
            listed.iter().any(|(name, _)| *name == token.name),
            "{}/{} was acknowledged but is gone",
            token.user,
            token.name
        );
        assert_token_works(&client, &server.url(), &token.user, &token.secret).await;
    }
    let used = listed_tokens(&server, "burst").await;
    let last_used = &used.iter().find(|(name, _)| name == "used").unwrap().1;
    assert_ne!(
        last_used, "-",
        "the last-used time must be written at shutdown"
    );
}

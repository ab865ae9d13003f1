//! Runs `skopeo` the way a user would, but isolated: its own HOME, runtime dir, trust policy,
//! registries.conf and a separate auth file for every call, so no run sees another's
//! credentials.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use tokio::process::Command;

use super::command::{self, Finished};
use super::require_program;

/// Longest a single skopeo call may take before it counts as hung.
const CALL_TIMEOUT: Duration = Duration::from_secs(60);

/// Words skopeo prints when the registry or the token server refused the credentials or the
/// access, as opposed to failing for some unrelated reason.
const REFUSAL_WORDS: [&str; 5] = [
    "unauthorized",
    "denied",
    "authentication required",
    "invalid username/password",
    "forbidden",
];

/// Which credentials a registry-side reference uses.
pub enum Auth<'a> {
    /// `USER:SECRET` on the command line (`--src-creds` / `--dest-creds`).
    Creds { user: &'a str, secret: &'a str },
    /// An auth file as `skopeo login` (or the test) wrote it.
    File(&'a Path),
    /// No credentials at all (`--src-no-creds` / `--dest-no-creds`).
    Anonymous,
}

/// A skopeo installation plus the private directories its calls use.
pub struct Skopeo {
    program: PathBuf,
    dir: PathBuf,
    calls: AtomicUsize,
}

impl Skopeo {
    /// Prepares `dir` for skopeo's HOME, runtime dir, temporary files and configuration.
    pub fn new(dir: &Path) -> Skopeo {
        let program = require_program("skopeo");
        for sub in ["home", "run", "tmp"] {
            std::fs::create_dir_all(dir.join(sub)).expect("create a skopeo directory");
        }
        let policy = r#"{"default":[{"type":"insecureAcceptAnything"}]}"#;
        std::fs::write(dir.join("policy.json"), policy).expect("write the trust policy");
        // An empty registries.conf: only fully qualified references are used, and the host's
        // mirrors or blocks must not apply.
        std::fs::write(dir.join("registries.conf"), "").expect("write registries.conf");
        Skopeo {
            program,
            dir: dir.to_owned(),
            calls: AtomicUsize::new(0),
        }
    }

    /// A path for an auth file no earlier call has used (the file does not exist yet).
    pub fn fresh_authfile(&self) -> PathBuf {
        self.fresh_path("auth", "json")
    }

    /// A path for an OCI layout no earlier call has used, to pull into.
    pub fn fresh_layout(&self) -> PathBuf {
        self.fresh_path("pulled", "oci")
    }

    fn fresh_path(&self, stem: &str, extension: &str) -> PathBuf {
        let call = self.calls.fetch_add(1, Ordering::Relaxed);
        self.dir.join(format!("{stem}-{call}.{extension}"))
    }

    /// Runs `skopeo ARGS…` with the isolation described above and a time limit.
    pub async fn run(&self, args: &[String]) -> Finished {
        command::run(self.command(args), None, CALL_TIMEOUT).await
    }

    /// `skopeo login` to `host` over plain HTTP; returns the result and the auth file it wrote.
    pub async fn login(&self, host: &str, user: &str, secret: &str) -> (Finished, PathBuf) {
        let authfile = self.fresh_authfile();
        let mut args = strings(&["login", "--tls-verify=false", "--authfile"]);
        args.push(authfile.display().to_string());
        args.extend(strings(&["--username", user, "--password-stdin", host]));

        let stdin = format!("{secret}\n");
        let finished = command::run(self.command(&args), Some(&stdin), CALL_TIMEOUT).await;
        (finished, authfile)
    }

    /// Copies `source` (any skopeo reference, typically `oci:DIR:TAG`) to the registry
    /// reference `destination` (`docker://HOST/REPO:TAG`).
    pub async fn push(&self, source: &str, destination: &str, auth: Auth<'_>) -> Finished {
        let mut args = strings(&["copy", "--dest-tls-verify=false"]);
        args.extend(self.auth_args(&auth, "dest"));
        args.extend([source.to_owned(), destination.to_owned()]);
        self.run(&args).await
    }

    /// Copies the registry reference `source` into a new OCI layout at `layout` under `tag`.
    pub async fn pull(&self, source: &str, layout: &Path, tag: &str, auth: Auth<'_>) -> Finished {
        let mut args = strings(&["copy", "--src-tls-verify=false"]);
        args.extend(self.auth_args(&auth, "src"));
        args.extend([source.to_owned(), super::oci::oci_reference(layout, tag)]);
        self.run(&args).await
    }

    fn command(&self, args: &[String]) -> Command {
        let mut command = Command::new(&self.program);
        command
            .current_dir(&self.dir)
            .env("HOME", self.dir.join("home"))
            .env("XDG_RUNTIME_DIR", self.dir.join("run"))
            .env("XDG_CONFIG_HOME", self.dir.join("home/.config"))
            .env(
                "CONTAINERS_REGISTRIES_CONF",
                self.dir.join("registries.conf"),
            )
            .env_remove("REGISTRY_AUTH_FILE")
            .env_remove("DOCKER_CONFIG")
            .arg("--policy")
            .arg(self.dir.join("policy.json"))
            .arg("--tmpdir")
            .arg(self.dir.join("tmp"))
            .args(args);
        command
    }

    /// Arguments selecting `auth` for the `side` ("src" or "dest") of a copy.
    fn auth_args(&self, auth: &Auth<'_>, side: &str) -> Vec<String> {
        match auth {
            Auth::Creds { user, secret } => vec![
                "--authfile".to_owned(),
                self.fresh_authfile().display().to_string(),
                format!("--{side}-creds"),
                format!("{user}:{secret}"),
            ],
            Auth::File(path) => vec!["--authfile".to_owned(), path.display().to_string()],
            Auth::Anonymous => vec![
                "--authfile".to_owned(),
                self.fresh_authfile().display().to_string(),
                format!("--{side}-no-creds"),
            ],
        }
    }
}

/// Fails the test unless skopeo exited non-zero *because access was refused*; a crash, a
/// timeout or a connection error does not count.
pub fn expect_refused(finished: &Finished, what: &str) {
    finished.expect_failure(what);
    let stderr = finished.stderr.to_lowercase();
    let refused = REFUSAL_WORDS.iter().any(|word| stderr.contains(word));
    assert!(
        refused,
        "{what}: skopeo failed, but not with an access refusal\n{finished}"
    );
    let reason = finished.stderr.lines().last().unwrap_or_default();
    eprintln!("   refused as expected ({what}): {reason}");
}

fn strings(items: &[&str]) -> Vec<String> {
    items.iter().map(|item| (*item).to_owned()).collect()
}

//! The portcullis binary under test: `portcullis serve` on a loopback port with its data in the
//! test's directory, and the CLI calls (`user …`, `token …`, `registry-config`) that manage it.

use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus};
use std::time::{Duration, Instant};

use super::command::{self, Finished};
use super::process::ChildGuard;
use super::{free_port, inherited_vars};

/// The binary cargo built for this package.
const PROGRAM: &str = env!("CARGO_BIN_EXE_portcullis");

/// How long `serve` may take to answer `/healthz` (the first start generates keys).
const READY_TIMEOUT: Duration = Duration::from_secs(20);

/// Longest a CLI call may take; a password hash in a debug build is the slow part.
const CLI_TIMEOUT: Duration = Duration::from_secs(30);

/// How long `serve` gets to shut down after SIGTERM before it is killed.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// The data directory's name inside the directory a server is started in; a test can fill it
/// (with a restored backup, say) before [`Portcullis::start`].
pub const DATA_DIR: &str = "portcullis-data";

/// Password of the initial `admin` account.
pub const ADMIN_PASSWORD: &str = "e2e-admin-password";

/// A running `portcullis serve` and the settings every CLI call shares with it.
pub struct Portcullis {
    dir: PathBuf,
    pub data_dir: PathBuf,
    pub port: u16,
    tokens_only: bool,
    starts: usize,
    server: Option<ChildGuard>,
}

impl Portcullis {
    /// Starts a fresh server whose data, logs and working directory are under `dir`.
    pub async fn start(dir: &Path, tokens_only: bool) -> Portcullis {
        let mut portcullis = Portcullis::stopped(dir, tokens_only);
        portcullis.spawn_server().await;
        portcullis
    }

    /// Like [`Portcullis::start`] but without starting the server, for CLI calls on a stopped
    /// one; [`Portcullis::restart`] starts it.
    pub fn stopped(dir: &Path, tokens_only: bool) -> Portcullis {
        let data_dir = dir.join(DATA_DIR);
        std::fs::create_dir_all(&data_dir).expect("create the portcullis data directory");
        Portcullis {
            dir: dir.to_owned(),
            data_dir,
            port: free_port(),
            tokens_only,
            starts: 0,
            server: None,
        }
    }

    /// Stops the server (SIGTERM) and starts it again on the same port and data directory, so
    /// a registry configured with its realm keeps working.
    pub async fn restart(&mut self, tokens_only: bool) {
        if let Some(server) = self.server.take() {
            server.terminate(SHUTDOWN_GRACE);
        }
        self.tokens_only = tokens_only;
        self.spawn_server().await;
    }

    /// Sends the server SIGTERM without waiting, so a test can watch it shut down.
    pub fn send_sigterm(&self) {
        self.server
            .as_ref()
            .expect("portcullis is running")
            .send_sigterm();
    }

    /// Waits up to `limit` for the server to exit (after [`Portcullis::send_sigterm`]) and
    /// returns its status and log; [`Portcullis::restart`] then starts a new one. Fails the
    /// test, with the log, if it is still running.
    pub fn wait_for_exit(&mut self, limit: Duration) -> (ExitStatus, String) {
        let mut server = self.server.take().expect("portcullis is running");
        match server.wait_for_exit(limit) {
            Some(status) => (status, server.log_tail()),
            None => panic!("portcullis did not exit within {limit:?}"),
        }
    }

    /// `http://127.0.0.1:PORT`, the public URL the server was given.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The server's recent log lines, for failure messages.
    pub fn log_tail(&self) -> String {
        self.server.as_ref().map_or_else(
            || "(portcullis is not running)".to_owned(),
            ChildGuard::log_tail,
        )
    }

    /// Runs `portcullis ARGS…` against this server's settings, feeding it `stdin`.
    pub async fn cli(&self, args: &[&str], stdin: Option<&str>) -> Finished {
        let mut command = self.command();
        command.args(args);
        command::run(command.into(), stdin, CLI_TIMEOUT).await
    }

    /// Like [`Portcullis::cli`], but fails the test unless it exits 0 (the server's log is
    /// printed as the failing test drops it).
    pub async fn cli_ok(&self, args: &[&str], stdin: Option<&str>) -> Finished {
        let finished = self.cli(args, stdin).await;
        finished.expect_success("portcullis CLI call");
        finished
    }

    /// `portcullis user add NAME` with the password on stdin.
    pub async fn add_user(&self, name: &str, password: &str) {
        self.cli_ok(&["user", "add", name], Some(&format!("{password}\n")))
            .await;
    }

    /// `portcullis token create USER --name NAME --access ACCESS`; returns the secret.
    pub async fn create_token(&self, user: &str, name: &str, access: &str) -> String {
        let args = ["token", "create", user, "--name", name, "--access", access];
        let finished = self.cli_ok(&args, None).await;
        let secret = finished.stdout_line().to_owned();
        let one_token = secret.starts_with("pcl_") && !secret.contains(char::is_whitespace);
        assert!(
            one_token,
            "`token create` must print only a pcl_… secret, but\n{finished}"
        );
        secret
    }

    /// `portcullis token revoke USER NAME`.
    pub async fn revoke_token(&self, user: &str, name: &str) {
        self.cli_ok(&["token", "revoke", user, name], None).await;
    }

    /// `portcullis registry-config`: the registry configuration matching this server.
    pub async fn registry_config(&self) -> String {
        self.cli_ok(&["registry-config"], None).await.stdout.clone()
    }

    /// A `portcullis` command with the environment every invocation shares.
    fn command(&self) -> Command {
        let mut command = Command::new(PROGRAM);
        for name in inherited_vars("PORTCULLIS_") {
            command.env_remove(name);
        }
        command
            .current_dir(&self.dir)
            .env("PORTCULLIS_LISTEN", format!("127.0.0.1:{}", self.port))
            .env("PORTCULLIS_DATA_DIR", &self.data_dir)
            .env("PORTCULLIS_PUBLIC_URL", self.url())
            .env("PORTCULLIS_SERVICE", "registry")
            .env("PORTCULLIS_ISSUER", "portcullis")
            .env("PORTCULLIS_ADMIN_PASSWORD", ADMIN_PASSWORD)
            .env("PORTCULLIS_TOKENS_ONLY", self.tokens_only.to_string())
            .env("PORTCULLIS_LOG", "info,portcullis=debug")
            // The log goes to a file; colour codes would only make it harder to read.
            .env("NO_COLOR", "1");
        command
    }

    async fn spawn_server(&mut self) {
        self.starts += 1;
        let log = self.dir.join(format!("portcullis-{}.log", self.starts));
        let url = format!("{}/healthz", self.url());
        let mut command = self.command();
        command.arg("serve");
        let server = self
            .server
            .insert(ChildGuard::spawn("portcullis serve", command, &log));

        let client = reqwest::Client::new();
        let deadline = Instant::now() + READY_TIMEOUT;
        let mut last = String::from("no answer yet");
        while Instant::now() < deadline {
            server.assert_running();
            match client.get(&url).send().await {
                Ok(response) if response.status().is_success() => return,
                Ok(response) => last = format!("status {}", response.status()),
                Err(err) => last = err.to_string(),
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("portcullis did not answer {url} within {READY_TIMEOUT:?} (last: {last})");
    }
}

//! A CNCF distribution registry (`docker-registry serve`, 2.8) on a loopback port, with its
//! storage in the test's directory.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use super::process::ChildGuard;
use super::{free_port, inherited_vars, require_program};

/// How long the registry may take to answer `/v2/`.
const READY_TIMEOUT: Duration = Duration::from_secs(20);

/// A registry without authentication, for checking the image builder and skopeo alone.
pub const OPEN_CONFIG: &str = "\
version: 0.1
storage:
  filesystem:
    rootdirectory: /nonexistent
  delete:
    enabled: true
http:
  addr: 127.0.0.1:5000
";

/// A running registry; dropping it stops the process.
pub struct Registry {
    pub port: u16,
    server: ChildGuard,
}

impl Registry {
    /// Starts a registry from `config` (YAML), overriding its listen address and storage
    /// directory, and waits until `GET /v2/` answers `ready_status` (401 with token auth, 200
    /// without).
    pub async fn start(dir: &Path, config: &str, ready_status: u16) -> Registry {
        let program = require_program("docker-registry");
        let port = free_port();
        let config_path = dir.join("registry.yml");
        std::fs::write(&config_path, config).expect("write the registry config");
        let storage = dir.join("registry-storage");
        std::fs::create_dir_all(&storage).expect("create the registry storage");

        let mut command = Command::new(program);
        for name in inherited_vars("REGISTRY_") {
            command.env_remove(name);
        }
        command
            .arg("serve")
            .arg(&config_path)
            .current_dir(dir)
            .env("REGISTRY_HTTP_ADDR", format!("127.0.0.1:{port}"))
            .env("REGISTRY_STORAGE_FILESYSTEM_ROOTDIRECTORY", &storage);
        let server = ChildGuard::spawn("docker-registry", command, &dir.join("registry.log"));

        let mut registry = Registry { port, server };
        registry.wait_ready(ready_status).await;
        registry
    }

    /// `127.0.0.1:PORT`, the registry's host as image references and auth files name it.
    pub fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// `docker://127.0.0.1:PORT/REPOSITORY`, a skopeo reference into this registry.
    pub fn reference(&self, repository_and_tag: &str) -> String {
        format!("docker://{}/{repository_and_tag}", self.host())
    }

    /// The registry's recent log lines, for failure messages.
    pub fn log_tail(&self) -> String {
        self.server.log_tail()
    }

    async fn wait_ready(&mut self, ready_status: u16) {
        let url = format!("http://{}/v2/", self.host());
        let client = reqwest::Client::new();
        let deadline = Instant::now() + READY_TIMEOUT;
        let mut last = String::from("no answer yet");
        while Instant::now() < deadline {
            self.server.assert_running();
            match client.get(&url).send().await {
                Ok(response) if response.status().as_u16() == ready_status => return,
                Ok(response) => last = format!("status {}", response.status()),
                Err(err) => last = err.to_string(),
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        // Dropping the guard during the panic prints the log.
        let waited = READY_TIMEOUT;
        panic!("registry did not answer {url} with {ready_status} within {waited:?} ({last})");
    }
}

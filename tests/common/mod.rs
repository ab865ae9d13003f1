//! Helpers for the integration tests that drive real programs: the portcullis binary, a CNCF
//! distribution registry (`docker-registry`) and `skopeo`, plus an offline OCI image builder.
//!
//! Everything listens on 127.0.0.1 only and lives in one temporary directory per test, so tests
//! need no network and can run side by side.
#![allow(
    dead_code,
    reason = "every test binary compiles this module and uses its own subset"
)]

pub mod app;
pub mod browser;
pub mod command;
pub mod oci;
pub mod portcullis;
pub mod process;
pub mod registry;
pub mod skopeo;
pub mod visitor;
pub mod workdir;

use std::ffi::OsString;
use std::net::TcpListener;
use std::path::PathBuf;

/// How to get the external programs these tests drive.
pub const INSTALL_HINT: &str = "apt-get install docker-registry skopeo";

/// Returns a loopback port that was free a moment ago.
///
/// The listener is dropped before the port is used, so another process could take it in between;
/// on a test machine that race is rare enough to accept.
pub fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    listener
        .local_addr()
        .expect("read the bound address")
        .port()
}

/// Finds `program` on `PATH`, or fails the test saying how to install it.
///
/// A missing tool must fail loudly: a test that silently passes without its registry proves
/// nothing.
pub fn require_program(program: &str) -> PathBuf {
    find_program(program).unwrap_or_else(|| {
        panic!("`{program}` is not installed; this test needs it: run `{INSTALL_HINT}`")
    })
}

fn find_program(program: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .map(|dir| dir.join(program))
        .find(|candidate| candidate.is_file())
}

/// Fails the test, naming every missing program and how to install them, unless both
/// `docker-registry` and `skopeo` are on `PATH`.
pub fn require_registry_tools() {
    let missing: Vec<&str> = ["docker-registry", "skopeo"]
        .into_iter()
        .filter(|program| find_program(program).is_none())
        .collect();
    assert!(
        missing.is_empty(),
        "missing {}; this test needs them: run `{INSTALL_HINT}`",
        missing.join(" and ")
    );
}

/// Names of this process's environment variables that start with `prefix`.
///
/// Children get these removed so that a developer's own `PORTCULLIS_*` or `REGISTRY_*` settings
/// cannot change what a test runs against.
pub fn inherited_vars(prefix: &str) -> Vec<OsString> {
    std::env::vars_os()
        .map(|(name, _)| name)
        .filter(|name| name.to_string_lossy().starts_with(prefix))
        .collect()
}

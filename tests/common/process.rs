//! Long-running child processes (servers) that are killed when the test lets go of them, with
//! their output kept in a log file that is printed when a test fails.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// Lines of a server's log shown when a test fails.
const LOG_TAIL_LINES: usize = 60;

/// A running server; dropping it kills the process and reaps it.
pub struct ChildGuard {
    name: String,
    child: Child,
    log_path: PathBuf,
}

impl ChildGuard {
    /// Starts `command` with stdout and stderr both appended to `log_path`.
    pub fn spawn(name: &str, mut command: Command, log_path: &Path) -> ChildGuard {
        let log = File::options()
            .create(true)
            .append(true)
            .open(log_path)
            .unwrap_or_else(|err| panic!("cannot open {}: {err}", log_path.display()));
        let log_again = log.try_clone().expect("duplicate the log file handle");
        command.stdin(Stdio::null()).stdout(log).stderr(log_again);

        let child = command
            .spawn()
            .unwrap_or_else(|err| panic!("cannot start {name} ({command:?}): {err}"));
        ChildGuard {
            name: name.to_owned(),
            child,
            log_path: log_path.to_owned(),
        }
    }

    /// Everything the process has written so far.
    pub fn log(&self) -> String {
        std::fs::read(&self.log_path).map_or_else(
            |err| format!("(cannot read {}: {err})", self.log_path.display()),
            |bytes| String::from_utf8_lossy(&bytes).into_owned(),
        )
    }

    /// The last lines of the log, headed by the server's name, for failure messages.
    pub fn log_tail(&self) -> String {
        let log = self.log();
        let lines: Vec<&str> = log.lines().collect();
        let start = lines.len().saturating_sub(LOG_TAIL_LINES);
        format!(
            "----- last {} lines of {} ({}) -----\n{}",
            lines.len() - start,
            self.name,
            self.log_path.display(),
            lines[start..].join("\n")
        )
    }

    /// Fails the test, with the log, if the process has already exited.
    pub fn assert_running(&mut self) {
        if let Some(status) = self.child.try_wait().expect("poll the child process") {
            // Dropping the guard during the panic prints the log.
            panic!("{} exited early with {status}", self.name);
        }
    }

    /// Sends SIGTERM and returns at once, for tests that act while the process shuts down.
    pub fn send_sigterm(&self) {
        // std offers only SIGKILL; `kill` from procps/coreutils sends SIGTERM without adding
        // a libc dependency to the tests.
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
    }

    /// Waits up to `limit` for the process to exit; `None` if it is still running.
    pub fn wait_for_exit(&mut self, limit: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(status) = self.child.try_wait().expect("poll the child process") {
                return Some(status);
            }
            if Instant::now() >= deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Stops the process the way an operator would (SIGTERM), then SIGKILL after `grace`.
    pub fn terminate(mut self, grace: Duration) {
        self.send_sigterm();
        let deadline = Instant::now() + grace;
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        // Drop sends SIGKILL and reaps.
    }
}

impl Drop for ChildGuard {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            eprintln!("{}", self.log_tail());
        }
    }
}

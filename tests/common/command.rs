//! Running short-lived commands (CLI calls, skopeo) with a time limit and keeping everything a
//! failure message needs: the command line, the exit status, stdout and stderr.

use std::fmt;
use std::process::{ExitStatus, Stdio};
use std::time::Duration;

use tokio::io::AsyncWriteExt;
use tokio::process::Command;

/// What a finished command left behind.
pub struct Finished {
    /// The program and its arguments, for messages.
    pub command_line: String,
    /// `None` when the command was killed for running past its time limit.
    pub status: Option<ExitStatus>,
    pub stdout: String,
    pub stderr: String,
}

impl Finished {
    /// True when the command ran to completion and exited 0.
    pub fn succeeded(&self) -> bool {
        self.status.is_some_and(|status| status.success())
    }

    /// Fails the test unless the command exited 0; `what` says what the step was doing.
    pub fn expect_success(&self, what: &str) -> &Self {
        assert!(self.succeeded(), "{what}: expected success, but\n{self}");
        self
    }

    /// Fails the test unless the command ran to completion and exited non-zero.
    ///
    /// A timeout is not a refusal: it usually means something hung, which must not pass.
    pub fn expect_failure(&self, what: &str) -> &Self {
        let refused = self.status.is_some_and(|status| !status.success());
        assert!(refused, "{what}: expected a non-zero exit, but\n{self}");
        self
    }

    /// Standard output without the trailing newline.
    pub fn stdout_line(&self) -> &str {
        self.stdout.trim_end_matches(['\r', '\n'])
    }
}

impl fmt::Display for Finished {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "  command: {}", self.command_line)?;
        match self.status {
            Some(status) => writeln!(f, "  status:  {status}")?,
            None => writeln!(f, "  status:  killed after its time limit")?,
        }
        writeln!(f, "  stdout:  {}", self.stdout.trim_end())?;
        write!(f, "  stderr:  {}", self.stderr.trim_end())
    }
}

/// Runs `command` to completion, feeding it `stdin`, and kills it after `limit`.
///
/// Panics only when the program cannot be started at all; a non-zero exit is returned so that
/// the caller decides whether it was expected.
pub async fn run(mut command: Command, stdin: Option<&str>, limit: Duration) -> Finished {
    let command_line = describe(&command);
    command
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let mut child = command
        .spawn()
        .unwrap_or_else(|err| panic!("cannot start `{command_line}`: {err}"));

    if let (Some(input), Some(mut pipe)) = (stdin, child.stdin.take()) {
        // A program that exits without reading its input closes the pipe; its exit status and
        // stderr then tell more than this write error would.
        let _ = pipe.write_all(input.as_bytes()).await;
    }

    // Dropping the future on timeout drops the child, and `kill_on_drop` ends it.
    match tokio::time::timeout(limit, child.wait_with_output()).await {
        Ok(Ok(output)) => Finished {
            command_line,
            status: Some(output.status),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        },
        Ok(Err(err)) => panic!("waiting for `{command_line}` failed: {err}"),
        Err(_) => Finished {
            command_line,
            status: None,
            stdout: String::new(),
            stderr: format!("(no output kept: killed after {limit:?})"),
        },
    }
}

/// The command line as one string, for messages.
pub fn describe(command: &Command) -> String {
    let std = command.as_std();
    let mut line = std.get_program().to_string_lossy().into_owned();
    for arg in std.get_args() {
        line.push(' ');
        line.push_str(&arg.to_string_lossy());
    }
    line
}

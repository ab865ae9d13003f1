//! The control channel: CLI management commands run inside the server when
//! it is up (over a Unix socket in the data directory), or directly on the
//! database when it is not. redb allows one process per file, so this is how
//! the CLI never fails with "database already open".

use std::io::{BufRead, BufReader, Write};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt};
use tokio::net::UnixListener;

use crate::auth::password::Password;
use crate::config::Config;
use crate::manage::{Expiry, ManageError, Manager};
use crate::registry::policy::AccessLevel;
use crate::store::{AppToken, AuditEvent, AuditFilter, Export, Group, StoreError};

/// File name of the socket inside the data directory.
pub const SOCKET: &str = "control.sock";
/// Longest request line accepted on the socket.
const MAX_REQUEST: u64 = 64 * 1024;

/// One management command.
#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Request {
    UserAdd {
        name: String,
        admin: bool,
        password: String,
    },
    ServiceAccountAdd {
        name: String,
    },
    UserList,
    UserPasswd {
        name: String,
        password: String,
    },
    UserDisable {
        name: String,
    },
    UserEnable {
        name: String,
    },
    UserDelete {
        name: String,
    },
    TokenCreate {
        user: String,
        name: String,
        access: AccessLevel,
        expires_in_days: Option<u32>,
        #[serde(default)]
        repositories: Vec<String>,
    },
    TokenList {
        user: String,
    },
    TokenRevoke {
        user: String,
        name: String,
    },
    GroupAdd {
        name: String,
    },
    GroupDelete {
        name: String,
    },
    GroupList,
    GroupMembership {
        group: String,
        user: String,
        member: bool,
    },
    PolicyExplain {
        user: String,
        scopes: Vec<String>,
    },
    AuditList {
        filter: AuditFilter,
        limit: usize,
    },
    /// Write a backup of the database and the key files of `data_dir` (the
    /// directory holding this socket) into the new directory `dest`. Both
    /// paths are absolute.
    Backup {
        data_dir: PathBuf,
        dest: PathBuf,
    },
    /// Everything but sessions, as one JSON document.
    Export,
    /// The CLI changed the key files: a running server reloads them.
    KeysChanged {
        /// `key.rotated`, `key.ca_staged` or `key.ca_retired`.
        action: String,
        /// The new signing key's id.
        kid: String,
    },
}

/// A user as listed, without the password hash.
#[derive(Debug, Serialize, Deserialize)]
pub struct UserSummary {
    pub name: String,
    pub admin: bool,
    pub disabled: bool,
    #[serde(default)]
    pub service: bool,
    #[serde(default)]
    pub groups: Vec<String>,
    pub created: i64,
}

/// The answer to a [`Request`].
#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "result", rename_all = "snake_case")]
pub enum Response {
    Done { message: String },
    Users { users: Vec<UserSummary> },
    Tokens { tokens: Vec<AppToken> },
    Secret { secret: String },
    Groups { groups: Vec<Group> },
    Lines { lines: Vec<String> },
    Events { events: Vec<AuditEvent> },
    Export { export: Box<Export> },
    Failed { error: String },
}

/// Runs one request against the store and records it in the audit log as
/// done by `cli`. Blocking (argon2, redb writes).
pub fn execute(manager: &Manager, request: Request, now: i64) -> Response {
    let audit = audit_entry(&request);
    let response = run_request(manager, request, now);
    if let (Some((action, target, detail)), false) =
        (audit, matches!(response, Response::Failed { .. }))
    {
        let event = AuditEvent {
            at: now,
            actor: "cli".into(),
            action: action.into(),
            target,
            addr: None,
            detail,
        };
        if let Err(e) = manager.store().append_audit(&[event]) {
            tracing::error!(error = %e, "writing the audit log failed");
        }
    }
    response
}

/// The audit action, target and detail of a request that changes something.
fn audit_entry(request: &Request) -> Option<(&'static str, String, Option<String>)> {
    let (action, target) = match request {
        Request::UserAdd { name, .. } => ("user.created", name.clone()),
        Request::ServiceAccountAdd { name } => ("user.created", name.clone()),
        Request::UserPasswd { name, .. } => ("user.password_changed", name.clone()),
        Request::UserDisable { name } => ("user.disabled", name.clone()),
        Request::UserEnable { name } => ("user.enabled", name.clone()),
        Request::UserDelete { name } => ("user.deleted", name.clone()),
        Request::TokenCreate { user, name, .. } => ("token.created", format!("{user}/{name}")),
        Request::TokenRevoke { user, name } => ("token.revoked", format!("{user}/{name}")),
        Request::GroupAdd { name } => ("group.created", name.clone()),
        Request::GroupDelete { name } => ("group.deleted", name.clone()),
        // The member is the target, so the event shows up under their name.
        Request::GroupMembership {
            group,
            user,
            member,
        } => {
            let action = if *member {
                "group.member_added"
            } else {
                "group.member_removed"
            };
            return Some((action, user.clone(), Some(format!("group {group}"))));
        }
        Request::UserList | Request::TokenList { .. } | Request::GroupList => return None,
        Request::PolicyExplain { .. } | Request::AuditList { .. } => return None,
        Request::Backup { dest, .. } => ("data.backed_up", dest.display().to_string()),
        Request::Export => ("data.exported", String::new()),
        Request::KeysChanged { action, kid } => {
            let action = match action.as_str() {
                "key.ca_staged" => "key.ca_staged",
                "key.ca_retired" => "key.ca_retired",
                _ => "key.rotated",
            };
            return Some((action, kid.clone(), None));
        }
    };
    Some((action, target, None))
}

fn run_request(manager: &Manager, request: Request, now: i64) -> Response {
    let done = |message: String| Response::Done { message };
    let result = match request {
        Request::UserAdd {
            name,
            admin,
            password,
        } => manager
            .add_user(&name, admin, &Password::new(password), now)
            .map(|_| done(format!("user {name} created"))),
        Request::ServiceAccountAdd { name } => manager.add_service_account(&name, now).map(|_| {
            done(format!(
                "service account {name} created; give it tokens with `token create`"
            ))
        }),
        Request::UserList => manager.users().map(|users| Response::Users {
            users: users
                .into_iter()
                .map(|u| UserSummary {
                    name: u.name,
                    admin: u.admin,
                    disabled: u.disabled,
                    service: u.service,
                    groups: u.groups,
                    created: u.created,
                })
                .collect(),
        }),
        Request::UserPasswd { name, password } => manager
            .set_password(&name, &Password::new(password))
            .map(|_| {
                done(format!(
                    "password of {name} changed; their docker logins (refresh tokens) were revoked"
                ))
            }),
        Request::UserDisable { name } => manager
            .set_disabled(&name, true)
            .map(|_| done(format!("user {name} disabled"))),
        Request::UserEnable { name } => manager
            .set_disabled(&name, false)
            .map(|_| done(format!("user {name} enabled"))),
        Request::UserDelete { name } => manager
            .delete_user(&name)
            .map(|_| done(format!("user {name} deleted with all their tokens"))),
        Request::TokenCreate {
            user,
            name,
            access,
            expires_in_days,
            repositories,
        } => manager
            .create_token(
                &user,
                &name,
                access,
                expires_in_days.map_or(Expiry::Never, Expiry::InDays),
                Some(repositories),
                now,
            )
            .map(|(_, secret)| Response::Secret {
                secret: secret.expose().to_owned(),
            }),
        Request::TokenList { user } => manager
            .tokens(&user)
            .map(|tokens| Response::Tokens { tokens }),
        Request::TokenRevoke { user, name } => manager
            .revoke_token(&user, &name)
            .map(|_| done(format!("token {name:?} of {user} revoked"))),
        Request::GroupAdd { name } => manager
            .add_group(&name, now)
            .map(|_| done(format!("group {name} created"))),
        Request::GroupDelete { name } => manager
            .delete_group(&name)
            .map(|_| done(format!("group {name} deleted"))),
        Request::GroupList => manager.groups().map(|groups| Response::Groups { groups }),
        Request::GroupMembership {
            group,
            user,
            member,
        } => manager
            .set_membership(&group, &user, member)
            .map(|_| match member {
                true => done(format!("{user} added to {group}")),
                false => done(format!("{user} removed from {group}")),
            }),
        Request::AuditList { filter, limit } => manager
            .store()
            .audit_events(&filter, limit)
            .map(|events| Response::Events { events })
            .map_err(ManageError::from),
        Request::KeysChanged { kid, .. } => Ok(done(format!("signing with key {kid}"))),
        Request::PolicyExplain { user, scopes } => manager
            .explain(&user, &scopes)
            .map(|lines| Response::Lines { lines }),
        Request::Backup { data_dir, dest } => return backup(manager, &data_dir, &dest, now),
        Request::Export => manager
            .store()
            .export(now)
            .map(|export| Response::Export {
                export: Box::new(export),
            })
            .map_err(ManageError::from),
    };
    result.unwrap_or_else(|e| Response::Failed {
        error: describe(&e),
    })
}

fn backup(manager: &Manager, data_dir: &Path, dest: &Path, now: i64) -> Response {
    let now =
        time::OffsetDateTime::from_unix_timestamp(now).unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    match crate::backup::write(manager.store(), data_dir, dest, now) {
        Ok(manifest) => {
            let rows: u64 = manifest.tables.values().sum();
            tracing::info!(backup.dir = %dest.display(), backup.rows = rows, "backup written");
            Response::Done {
                message: format!(
                    "backup written to {}: {rows} rows, {} files",
                    dest.display(),
                    manifest.files.len() + 1
                ),
            }
        }
        Err(e) => Response::Failed {
            error: format!("backup failed: {e:#}"),
        },
    }
}

fn describe(error: &ManageError) -> String {
    match error {
        ManageError::Store(StoreError::Db(_) | StoreError::Corrupt { .. }) => {
            tracing::error!(error = %error, "control request failed");
            format!("storage failure: {error}")
        }
        other => other.to_string(),
    }
}

/// Serves the control socket until `stopping` turns true, then waits for the
/// requests under way, so a CLI command is never cut off by a shutdown.
pub async fn serve(
    dir: &Path,
    manager: Manager,
    reload_keys: KeyReload,
    mut stopping: tokio::sync::watch::Receiver<bool>,
) -> anyhow::Result<()> {
    let path = dir.join(SOCKET);
    // We hold the database lock, so a socket file left here is stale.
    let _ = std::fs::remove_file(&path);
    let listener =
        UnixListener::bind(&path).with_context(|| format!("binding {}", path.display()))?;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))?;
    let manager = Arc::new(manager);
    let mut running = tokio::task::JoinSet::new();
    loop {
        let stream = tokio::select! {
            accepted = listener.accept() => accepted?.0,
            _ = stopping.changed() => break,
        };
        let manager = Arc::clone(&manager);
        let reload_keys = Arc::clone(&reload_keys);
        running.spawn(async move {
            if let Err(e) = handle(stream, manager, reload_keys).await {
                tracing::warn!(error = %e, "control connection failed");
            }
        });
        // Forget the connections that are done.
        while running.try_join_next().is_some() {}
    }
    drop(listener);
    let _ = std::fs::remove_file(&path);
    while running.join_next().await.is_some() {}
    Ok(())
}

/// How the server reloads its keys after the CLI changed the key files.
pub type KeyReload = Arc<dyn Fn() -> anyhow::Result<()> + Send + Sync>;

async fn handle(
    stream: tokio::net::UnixStream,
    manager: Arc<Manager>,
    reload_keys: KeyReload,
) -> anyhow::Result<()> {
    let (read, mut write) = stream.into_split();
    let mut line = String::new();
    tokio::io::BufReader::new(read.take(MAX_REQUEST))
        .read_line(&mut line)
        .await?;
    let response = match serde_json::from_str::<Request>(&line) {
        Ok(request) => {
            let now = time::OffsetDateTime::now_utc().unix_timestamp();
            tokio::task::spawn_blocking(move || {
                if let Request::KeysChanged { .. } = request
                    && let Err(e) = reload_keys()
                {
                    return Response::Failed {
                        error: format!("reloading the keys failed: {e:#}"),
                    };
                }
                execute(&manager, request, now)
            })
            .await?
        }
        Err(e) => Response::Failed {
            error: format!("malformed control request: {e}"),
        },
    };
    let mut out = serde_json::to_vec(&response)?;
    out.push(b'\n');
    write.write_all(&out).await?;
    Ok(())
}

/// Runs `request` in the server if it is up, else directly on the database.
pub fn run(config: &Config, request: Request) -> anyhow::Result<Response> {
    let path = config.data_dir.join(SOCKET);
    // The server may be starting (database locked, socket not yet bound):
    // retry for a few seconds before giving up.
    for _ in 0..50 {
        if let Some(response) = over_socket(&path, &request)? {
            return Ok(response);
        }
        match crate::open_store(config) {
            Ok(store) => {
                let policy = Arc::new(config.policy()?);
                let manager = Manager::new(Arc::new(store), config.token_limit, policy);
                let now = time::OffsetDateTime::now_utc().unix_timestamp();
                return Ok(execute(&manager, request, now));
            }
            Err(e) if is_already_open(&e) => std::thread::sleep(Duration::from_millis(100)),
            Err(e) => return Err(e),
        }
    }
    bail!(
        "the database is locked by another process, and no server answers on {}",
        path.display()
    )
}

fn is_already_open(error: &anyhow::Error) -> bool {
    matches!(
        error.downcast_ref::<StoreError>(),
        Some(StoreError::AlreadyOpen)
    )
}

/// Sends the request over the socket; `None` when no server listens there.
fn over_socket(path: &PathBuf, request: &Request) -> anyhow::Result<Option<Response>> {
    let mut stream = match UnixStream::connect(path) {
        Ok(stream) => stream,
        Err(e)
            if matches!(
                e.kind(),
                std::io::ErrorKind::NotFound | std::io::ErrorKind::ConnectionRefused
            ) =>
        {
            return Ok(None);
        }
        Err(e) => return Err(e).with_context(|| format!("connecting to {}", path.display())),
    };
    let mut line = serde_json::to_vec(request)?;
    line.push(b'\n');
    stream.write_all(&line)?;
    let mut answer = String::new();
    BufReader::new(stream).read_line(&mut answer)?;
    if answer.is_empty() {
        bail!("the server closed the control connection without answering; see its log");
    }
    Ok(Some(
        serde_json::from_str(&answer).context("reading the server's answer")?,
    ))
}

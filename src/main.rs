//! The `portcullis` command: the server and its management CLI.

use std::io::{BufRead, IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, bail};
use clap::{Parser, Subcommand};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use portcullis::config::{Config, LogFormat};
use portcullis::control::{self, Request, Response};
use portcullis::registry::policy::AccessLevel;
use portcullis::registry::{keys, rotation};
use portcullis::store::{AuditEvent, AuditFilter};

/// Token authentication server for private container registries.
#[derive(Parser)]
#[command(version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the server (token endpoint, web UI, control socket).
    Serve,
    /// Manage user accounts.
    #[command(subcommand)]
    User(UserCommand),
    /// Manage application tokens.
    #[command(subcommand)]
    Token(TokenCommand),
    /// Manage groups of users.
    #[command(subcommand)]
    Group(GroupCommand),
    /// Explain access decisions.
    #[command(subcommand)]
    Policy(PolicyCommand),
    /// Print the audit log, newest first.
    Audit {
        /// Only events concerning this user (as actor or target).
        #[arg(long)]
        user: Option<String>,
        /// Only actions starting with this, e.g. `token.` or `signin.failure`.
        #[arg(long)]
        action: Option<String>,
        /// Only events of the last DAYS days.
        #[arg(long, value_name = "DAYS")]
        since_days: Option<u32>,
        /// At most this many events.
        #[arg(long, default_value_t = 100)]
        limit: usize,
        /// One JSON object per line instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Exit 0 if the server on the configured address is ready (for container
    /// health checks: a minimal image has no curl).
    Healthcheck,
    /// Write a consistent copy of the database and key files into the new
    /// directory DIR (works while the server runs).
    Backup {
        #[arg(value_name = "DIR")]
        dest: PathBuf,
    },
    /// Print users, groups, tokens, refresh tokens and the audit log as JSON
    /// (password hashes and token digests included; no web sessions).
    Export,
    /// Load a JSON export into an empty database (`-` reads standard input).
    Import { file: PathBuf },
    /// Rotate signing keys and replace the CA.
    #[command(subcommand)]
    Key(KeyCommand),
    /// Print a JWKS document of the signing keys (registry 3.x `auth.token.jwks`).
    Jwks,
    /// Print the CA certificate bundle for the registry's `rootcertbundle`.
    Cert,
    /// Print a registry config.yml wired to this server.
    RegistryConfig {
        /// Where the registry will find the certificate bundle (default: the
        /// CA file in the data directory).
        #[arg(long)]
        rootcertbundle: Option<PathBuf>,
    },
}

#[derive(Subcommand)]
enum GroupCommand {
    /// Create a group.
    Add { name: String },
    /// Delete a group (its members stay).
    Delete { name: String },
    /// List groups and their members.
    List,
    /// Put a user in a group.
    AddMember { group: String, user: String },
    /// Take a user out of a group.
    RemoveMember { group: String, user: String },
}

#[derive(Subcommand)]
enum KeyCommand {
    /// Sign with a new key certified by the current CA (no registry change);
    /// with --ca, stage a new CA in the bundle instead (step 1 of replacing it).
    Rotate {
        #[arg(long)]
        ca: bool,
    },
    /// Switch to the staged CA and drop the old one from the bundle (step 2).
    Retire,
    /// List current, staged and retired certificates.
    List,
}

#[derive(Subcommand)]
enum PolicyCommand {
    /// Print, for each scope, what USER would be granted and which rule decided.
    Explain {
        user: String,
        /// Scopes as clients send them, e.g. repository:team/app:pull,push.
        #[arg(required = true)]
        scopes: Vec<String>,
    },
}

#[derive(Subcommand)]
enum UserCommand {
    /// Create a user; the password is read from standard input.
    Add {
        name: String,
        /// Make the user an administrator.
        #[arg(long, conflicts_with = "service")]
        admin: bool,
        /// Create a service account: no password, application tokens only.
        #[arg(long)]
        service: bool,
    },
    /// List users.
    List,
    /// Set a user's password, read from standard input.
    Passwd { name: String },
    /// Disable an account: its tokens and refresh tokens stop working.
    Disable { name: String },
    /// Re-enable a disabled account.
    Enable { name: String },
    /// Delete an account and every token it owns.
    Delete { name: String },
}

#[derive(Subcommand)]
enum TokenCommand {
    /// Create an application token; prints only the secret.
    Create {
        user: String,
        #[arg(long)]
        name: String,
        /// pull, push (implies pull) or delete (implies both).
        #[arg(long, default_value = "pull", value_parser = parse_access)]
        access: AccessLevel,
        /// Expire after this many days (default: never).
        #[arg(long, value_name = "DAYS")]
        expires_in: Option<u32>,
        /// Limit the token to repositories matching this pattern (`*` matches
        /// anything); repeat for several.
        #[arg(long = "repository", value_name = "PATTERN")]
        repositories: Vec<String>,
    },
    /// List a user's tokens (never their secrets).
    List { user: String },
    /// Revoke a token by name.
    Revoke { user: String, name: String },
}

fn parse_access(s: &str) -> Result<AccessLevel, String> {
    AccessLevel::parse(s).ok_or_else(|| format!("{s:?} is not one of pull, push, delete"))
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("portcullis: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<()> {
    let config = Config::load()?;
    let serving = matches!(cli.command, Command::Serve);
    init_logging(&config, serving);
    match cli.command {
        Command::Serve => {
            let runtime = tokio::runtime::Runtime::new()?;
            runtime.block_on(portcullis::server::serve(config))
        }
        Command::User(command) => user(&config, command),
        Command::Token(command) => token(&config, command),
        Command::Group(command) => {
            let request = match command {
                GroupCommand::Add { name } => Request::GroupAdd { name },
                GroupCommand::Delete { name } => Request::GroupDelete { name },
                GroupCommand::List => Request::GroupList,
                GroupCommand::AddMember { group, user } => Request::GroupMembership {
                    group,
                    user,
                    member: true,
                },
                GroupCommand::RemoveMember { group, user } => Request::GroupMembership {
                    group,
                    user,
                    member: false,
                },
            };
            print_response(control::run(&config, request)?)
        }
        Command::Audit {
            user,
            action,
            since_days,
            limit,
            json,
        } => {
            let now = OffsetDateTime::now_utc().unix_timestamp();
            let since = since_days.map(|d| now - i64::from(d) * 86_400);
            let filter = AuditFilter {
                user,
                action,
                since,
            };
            match control::run(&config, Request::AuditList { filter, limit })? {
                Response::Events { events } => print_events(&events, json),
                other => print_response(other),
            }
        }
        Command::Policy(PolicyCommand::Explain { user, scopes }) => print_response(control::run(
            &config,
            Request::PolicyExplain { user, scopes },
        )?),
        Command::Healthcheck => healthcheck(&config),
        Command::Backup { dest } => {
            let request = Request::Backup {
                data_dir: std::path::absolute(&config.data_dir)?,
                dest: std::path::absolute(&dest)?,
            };
            print_response(control::run(&config, request)?)
        }
        Command::Export => print_response(control::run(&config, Request::Export)?),
        Command::Import { file } => import(&config, &file),
        Command::Key(command) => key(&config, command),
        Command::Jwks => {
            portcullis::ensure_data_dir(&config)?;
            let document = rotation::jwks(&config.data_dir, OffsetDateTime::now_utc())?;
            println!("{}", serde_json::to_string_pretty(&document)?);
            Ok(())
        }
        Command::Cert => {
            let keys = load_keys(&config)?;
            print!("{}", keys.ca_pem);
            Ok(())
        }
        Command::RegistryConfig { rootcertbundle } => {
            let keys = load_keys(&config)?;
            let bundle = rootcertbundle.unwrap_or(std::path::absolute(&keys.ca_path)?);
            print!("{}", registry_config(&config, &bundle));
            Ok(())
        }
    }
}

fn init_logging(config: &Config, serving: bool) {
    let default = if serving { "info" } else { "warn" };
    let filter = config
        .log
        .clone()
        .or_else(|| std::env::var("RUST_LOG").ok())
        .unwrap_or_else(|| default.to_owned());
    let filter = tracing_subscriber::EnvFilter::try_new(&filter)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr);
    match config.log_format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}

fn user(config: &Config, command: UserCommand) -> anyhow::Result<()> {
    let request = match command {
        UserCommand::Add {
            name,
            service: true,
            ..
        } => Request::ServiceAccountAdd { name },
        UserCommand::Add { name, admin, .. } => Request::UserAdd {
            name,
            admin,
            password: read_password()?,
        },
        UserCommand::List => Request::UserList,
        UserCommand::Passwd { name } => Request::UserPasswd {
            name,
            password: read_password()?,
        },
        UserCommand::Disable { name } => Request::UserDisable { name },
        UserCommand::Enable { name } => Request::UserEnable { name },
        UserCommand::Delete { name } => Request::UserDelete { name },
    };
    print_response(control::run(config, request)?)
}

fn token(config: &Config, command: TokenCommand) -> anyhow::Result<()> {
    let request = match command {
        TokenCommand::Create {
            user,
            name,
            access,
            expires_in,
            repositories,
        } => Request::TokenCreate {
            user,
            name,
            access,
            expires_in_days: expires_in,
            repositories,
        },
        TokenCommand::List { user } => Request::TokenList { user },
        TokenCommand::Revoke { user, name } => Request::TokenRevoke { user, name },
    };
    print_response(control::run(config, request)?)
}

fn print_response(response: Response) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    match response {
        Response::Failed { error } => bail!("{error}"),
        Response::Done { message } => eprintln!("{message}"),
        Response::Secret { secret } => writeln!(out, "{secret}")?,
        Response::Users { users } => {
            let header = ["NAME", "KIND", "ADMIN", "DISABLED", "CREATED", "GROUPS"];
            writeln!(
                out,
                "{:<24} {:<8} {:<6} {:<9} {:<21} {}",
                header[0], header[1], header[2], header[3], header[4], header[5]
            )?;
            for u in users {
                let kind = if u.service { "service" } else { "person" };
                writeln!(
                    out,
                    "{:<24} {:<8} {:<6} {:<9} {:<21} {}",
                    u.name,
                    kind,
                    yes(u.admin),
                    yes(u.disabled),
                    date(Some(u.created)),
                    u.groups.join(",")
                )?;
            }
        }
        Response::Groups { groups } => {
            writeln!(out, "{:<24} MEMBERS", "GROUP")?;
            for g in groups {
                writeln!(out, "{:<24} {}", g.name, g.members.join(" "))?;
            }
        }
        Response::Events { events } => print_events(&events, false)?,
        Response::Export { export } => {
            serde_json::to_writer_pretty(&mut out, &export)?;
            writeln!(out)?;
        }
        Response::Lines { lines } => {
            for line in lines {
                writeln!(out, "{line}")?;
            }
        }
        Response::Tokens { tokens } => {
            writeln!(
                out,
                "{:<24} {:<7} {:<21} {:<21} EXPIRES",
                "NAME", "ACCESS", "CREATED", "LAST USED"
            )?;
            for t in tokens {
                writeln!(
                    out,
                    "{:<24} {:<7} {:<21} {:<21} {}",
                    t.name,
                    t.access.as_str(),
                    date(Some(t.created)),
                    date(t.last_used),
                    date(t.expires)
                )?;
            }
        }
    }
    Ok(())
}

/// Text that came from clients, with control characters escaped so it
/// cannot forge lines or drive the terminal.
fn printable(text: &str) -> String {
    text.chars()
        .flat_map(|c| {
            if c.is_control() {
                c.escape_default().collect::<Vec<_>>()
            } else {
                vec![c]
            }
        })
        .collect()
}

fn print_events(events: &[AuditEvent], json: bool) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    for e in events {
        if json {
            writeln!(out, "{}", serde_json::to_string(e)?)?;
            continue;
        }
        let actor = if e.actor.is_empty() {
            "-".to_owned()
        } else {
            printable(&e.actor)
        };
        let addr = printable(e.addr.as_deref().unwrap_or("-"));
        let detail = printable(e.detail.as_deref().unwrap_or(""));
        let (action, target) = (printable(&e.action), printable(&e.target));
        let when = date(Some(e.at));
        writeln!(
            out,
            "{when}  {actor:<16} {action:<22} {target:<32} {addr:<15} {detail}"
        )?;
    }
    Ok(())
}

fn yes(flag: bool) -> &'static str {
    if flag { "yes" } else { "no" }
}

fn date(unix: Option<i64>) -> String {
    unix.and_then(|t| OffsetDateTime::from_unix_timestamp(t).ok())
        .and_then(|t| t.format(&Rfc3339).ok())
        .unwrap_or_else(|| "-".to_owned())
}

/// Reads a password: prompted twice on a terminal, one line otherwise.
fn read_password() -> anyhow::Result<String> {
    let stdin = std::io::stdin();
    if stdin.is_terminal() {
        let first = rpassword::prompt_password("Password: ")?;
        let second = rpassword::prompt_password("Repeat password: ")?;
        if first != second {
            bail!("the passwords do not match");
        }
        return Ok(first);
    }
    let mut line = String::new();
    stdin
        .lock()
        .read_line(&mut line)
        .context("reading the password from standard input")?;
    let password = line.trim_end_matches(['\n', '\r']).to_owned();
    if password.is_empty() {
        bail!("no password on standard input");
    }
    Ok(password)
}

fn key(config: &Config, command: KeyCommand) -> anyhow::Result<()> {
    portcullis::ensure_data_dir(config)?;
    let (dir, now) = (&config.data_dir, OffsetDateTime::now_utc());
    let (action, keys) = match command {
        KeyCommand::List => {
            let mut out = std::io::stdout().lock();
            writeln!(
                out,
                "{:<18} {:<21} {:<21} {:<60} SUBJECT",
                "ROLE", "NOT BEFORE", "NOT AFTER", "KID"
            )?;
            for k in rotation::list(dir)? {
                let (from, to) = (date(Some(k.not_before)), date(Some(k.not_after)));
                writeln!(
                    out,
                    "{:<18} {from:<21} {to:<21} {:<60} {}",
                    k.role, k.kid, k.subject
                )?;
            }
            return Ok(());
        }
        KeyCommand::Rotate { ca: false } => ("key.rotated", rotation::rotate_signing(dir, now)?),
        KeyCommand::Rotate { ca: true } => ("key.ca_staged", rotation::stage_ca(dir, now)?),
        KeyCommand::Retire => ("key.ca_retired", rotation::retire_ca(dir, now)?),
    };
    let kid = keys.signer.kid.clone();
    print_response(control::run(
        config,
        Request::KeysChanged {
            action: action.into(),
            kid,
        },
    )?)?;
    match action {
        "key.ca_staged" => eprintln!(
            "A new CA is staged and in the bundle ({}). Give registries the bundle from \
             `portcullis cert` and restart them, then run `portcullis key retire`.",
            keys.ca_path.display()
        ),
        "key.ca_retired" => eprintln!(
            "Signing under the new CA. The bundle ({}) now holds only it: give registries the \
             new bundle and restart them; tokens signed under the old CA are then refused.",
            keys.ca_path.display()
        ),
        _ => {}
    }
    Ok(())
}

/// Loads an export into the configured data directory's database, which
/// must be empty. Runs only on a stopped server: a running one has accounts.
fn import(config: &Config, file: &std::path::Path) -> anyhow::Result<()> {
    use portcullis::store::{Export, StoreError};

    let text = if file.as_os_str() == "-" {
        std::io::read_to_string(std::io::stdin()).context("reading standard input")?
    } else {
        std::fs::read_to_string(file).with_context(|| format!("reading {}", file.display()))?
    };
    let export: Export = serde_json::from_str(&text).context("reading the export")?;

    let store = match portcullis::open_store(config) {
        Err(e) if matches!(e.downcast_ref(), Some(StoreError::AlreadyOpen)) => bail!(
            "the database is in use (is `serve` running?); import only into a new data              directory, before `serve` first runs there"
        ),
        other => other?,
    };
    store.import(&export)?;

    let summary = format!(
        "{} users, {} groups, {} tokens, {} refresh tokens, {} audit events from version {}",
        export.users.len(),
        export.groups.len(),
        export.tokens.len(),
        export.refresh_tokens.len(),
        export.audit.len(),
        export.portcullis_version
    );
    let event = AuditEvent {
        at: OffsetDateTime::now_utc().unix_timestamp(),
        actor: "cli".into(),
        action: "data.imported".into(),
        target: String::new(),
        addr: None,
        detail: Some(summary.clone()),
    };
    store.append_audit(&[event])?;
    eprintln!("imported {summary}");
    Ok(())
}

/// A plain or TLS connection.
trait ReadWrite: std::io::Read + std::io::Write {}
impl<T: std::io::Read + std::io::Write> ReadWrite for T {}

/// Asks the server's `/readyz` over plain HTTP on the listen address (a
/// wildcard address is reached on loopback).
fn healthcheck(config: &Config) -> anyhow::Result<()> {
    use std::io::Read;
    use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpStream};
    use std::time::Duration;

    let mut addr = config.listen;
    if addr.ip().is_unspecified() {
        let loopback = match addr.ip() {
            IpAddr::V4(_) => IpAddr::V4(Ipv4Addr::LOCALHOST),
            IpAddr::V6(_) => IpAddr::V6(Ipv6Addr::LOCALHOST),
        };
        addr = SocketAddr::new(loopback, addr.port());
    }
    let limit = Duration::from_secs(5);
    let tcp = TcpStream::connect_timeout(&addr, limit)
        .with_context(|| format!("connecting to {addr}"))?;
    tcp.set_read_timeout(Some(limit))?;
    tcp.set_write_timeout(Some(limit))?;
    let mut stream: Box<dyn ReadWrite> = match &config.tls_cert {
        None => Box::new(tcp),
        Some(cert) => {
            let tls = portcullis::server::tls::pinned_client_config(cert)?;
            let name = rustls::pki_types::ServerName::try_from("localhost")?;
            let connection = rustls::ClientConnection::new(tls, name)?;
            Box::new(rustls::StreamOwned::new(connection, tcp))
        }
    };
    write!(
        stream,
        "GET /readyz HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )?;
    let mut answer = Vec::new();
    stream
        .take(4096)
        .read_to_end(&mut answer)
        .context("reading the answer")?;
    let answer = String::from_utf8_lossy(&answer);
    let status = answer.lines().next().unwrap_or_default();
    if status.split(' ').nth(1) == Some("200") {
        return Ok(());
    }
    bail!(
        "{addr} is not ready: {}",
        if status.is_empty() {
            "no answer"
        } else {
            status
        }
    )
}

fn load_keys(config: &Config) -> anyhow::Result<keys::Keys> {
    portcullis::ensure_data_dir(config)?;
    Ok(keys::load_or_create(
        &config.data_dir,
        OffsetDateTime::now_utc(),
    )?)
}

fn registry_config(config: &Config, bundle: &std::path::Path) -> String {
    format!(
        "# Registry configuration generated by `portcullis registry-config`.\n\
         # realm, service, issuer and rootcertbundle must match Portcullis.\n\
         version: 0.1\n\
         log:\n  level: info\n\
         storage:\n  filesystem:\n    rootdirectory: /var/lib/registry\n  \
         # Lets `delete` grants take effect.\n  delete:\n    enabled: true\n\
         http:\n  addr: :5000\n\
         auth:\n  token:\n    realm: {realm}\n    service: {service}\n    issuer: {issuer}\n    \
         rootcertbundle: {bundle}\n",
        realm = yaml_quote(&config.realm()),
        service = yaml_quote(&config.service),
        issuer = yaml_quote(&config.issuer),
        bundle = yaml_quote(&bundle.display().to_string()),
    )
}

/// A YAML double-quoted scalar: safe for any value.
fn yaml_quote(s: &str) -> String {
    serde_json::to_string(s).expect("strings serialise")
}

//! The `thor` command: serve the API, migrate, manage accounts, print the OpenAPI document.

use std::io::{BufRead, IsTerminal};
use std::process::ExitCode;
use std::time::Instant;

use anyhow::Context;
use clap::{Parser, Subcommand};
use thor::app::{self, AppState};
use thor::auth::{Role, accounts};
use thor::config::{
    Config, DataArgs, HorizonArgs, RetentionArgs, ServeArgs, ShiftArgs, StoreArgs, redact_url,
};
use thor::error::ApiError;

#[derive(Parser)]
#[command(
    name = "thor",
    version,
    about = "THOR: backend for Velsen's municipal enforcement field app",
    after_help = "Logs go to standard error, a command's own output to standard output. \
                  `thor <command> --help` lists that command's flags."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Start the HTTP API (SQLite under ./data by default).
    Serve {
        #[command(flatten)]
        args: ServeArgs,
        /// Load today's demo day and create the demo accounts (password `demo`); without it
        /// the demo accounts are switched off.
        #[arg(long, env = "THOR_DEMO")]
        demo: bool,
    },
    /// Apply migrations and load the reference data, then exit.
    Migrate {
        #[command(flatten)]
        data: DataArgs,
    },
    /// Manage accounts: add, list, passwd, deactivate, revoke.
    User {
        #[command(subcommand)]
        command: UserCommand,
    },
    /// Manage teams: add, list. Every account but a beheerder belongs to one.
    Team {
        #[command(subcommand)]
        command: TeamCommand,
    },
    /// Destroy tombstones past the horizon (--tombstone-days) and expired push answers;
    /// `serve` also does this every six hours.
    Purge {
        #[command(flatten)]
        horizons: HorizonArgs,
        #[command(flatten)]
        data: DataArgs,
    },
    /// Print the OpenAPI document the code generates (as in mobile-api-spec/openapi.json).
    Openapi,
    /// Print the visibility table the code enforces (as in VISIBILITY.md): who sees what.
    Visibility,
    /// Print the briefing of a day (and shift) in the terminal: all teams, without the youth
    /// sections (those are for jeugdboa's and Wpg-authorised leads); the read is audit-logged.
    Briefing {
        #[command(flatten)]
        shifts: ShiftArgs,
        /// The day (YYYY-MM-DD); default today (Europe/Amsterdam).
        #[arg(long)]
        date: Option<chrono::NaiveDate>,
        /// One shift of the day; omitted: the whole day.
        #[arg(long, value_parser = ["early", "late", "night"])]
        shift: Option<String>,
        /// Print the JSON the API serves instead of text.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        data: DataArgs,
    },
    /// The audit log's hash chain: seal the lines written since the last run, or verify that
    /// no line or seal was changed or removed (exit status 1 when the chain does not hold).
    Audit {
        #[command(subcommand)]
        command: AuditCommand,
    },
    /// Retention (Wpg art. 8 and 14, AVG): move records to their stage by their date and the
    /// terms, and destroy what is due; `serve` does this every six hours.
    Retention {
        #[command(subcommand)]
        command: RetentionCommand,
    },
}

#[derive(Subcommand)]
enum RetentionCommand {
    /// Run retention now (one instance at a time; safe to interrupt and to repeat), with a
    /// progress bar on a terminal; prints what changed per kind of record.
    Run {
        /// Change nothing: print what a run would change.
        #[arg(long)]
        dry_run: bool,
        /// With --dry-run: count as if it were this day (YYYY-MM-DD), to see what a term
        /// change or the coming months would do.
        #[arg(long, requires = "dry_run")]
        as_of: Option<chrono::NaiveDate>,
        #[command(flatten)]
        retention: RetentionArgs,
        #[command(flatten)]
        horizons: HorizonArgs,
        #[command(flatten)]
        store: StoreArgs,
        #[command(flatten)]
        data: DataArgs,
    },
}

/// The retention run's progress as a bar on standard error (drawn only on a terminal).
struct Bar(indicatif::ProgressBar);

impl thor::retention::run::Progress for Bar {
    fn start(&self, total: u64) {
        self.0.set_length(total);
    }
    fn advance(&self, n: u64) {
        self.0.inc(n);
    }
}

fn retention_table(r: &thor::retention::run::Report) -> String {
    let rows: Vec<Vec<String>> = r
        .changes
        .iter()
        .map(|c| {
            vec![
                c.key.to_string(),
                c.to_active.to_string(),
                c.to_restricted.to_string(),
                c.to_removed.to_string(),
                c.destroyed.to_string(),
                c.photos.to_string(),
                c.held.to_string(),
            ]
        })
        .collect();
    table(
        &[
            "KIND",
            "ACTIVE",
            "RESTRICTED",
            "REMOVED",
            "DESTROYED",
            "PHOTOS",
            "HELD",
        ],
        &rows,
    )
}

#[derive(Subcommand)]
enum AuditCommand {
    /// Walk the whole chain against the lines as they are now and print its head (keep that
    /// anchor outside thor). Reads only.
    Verify {
        /// A head printed earlier (by this command or by `serve`'s "audit chain sealed" log
        /// line), as SEQ:HASH: the check fails if the chain no longer contains it.
        #[arg(long)]
        anchor: Option<thor::audit::chain::Head>,
        #[command(flatten)]
        data: DataArgs,
    },
    /// Seal the lines not sealed yet (`serve` does this every minute and at shutdown).
    Seal {
        #[command(flatten)]
        data: DataArgs,
    },
    /// Write the evidence an auditor asks for over a period (NOREA's Wpg audit): who had Wpg
    /// access when, that the log is complete, retention runs and what they destroyed, legal
    /// holds, the disclosure register's totals, reads of restricted data. Markdown, or JSON
    /// with --json. The report is audit-logged.
    Report {
        /// First day of the period (YYYY-MM-DD, Europe/Amsterdam).
        #[arg(long)]
        from: chrono::NaiveDate,
        /// Last day of the period (included).
        #[arg(long)]
        to: chrono::NaiveDate,
        /// JSON instead of Markdown.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        data: DataArgs,
    },
}

const ROLES: [&str; 5] = ["handhaver", "jeugdboa", "teamleider", "beheerder", "fg"];

#[derive(Subcommand)]
enum UserCommand {
    /// Create an account. Without --password-stdin a random password is generated and printed once.
    Add {
        /// Login name: 3 to 64 letters, digits, '.', '-' or '_' (kept in lower case).
        #[arg(long)]
        username: String,
        /// What the account may do (see README, "What THOR is").
        #[arg(long, value_parser = ROLES)]
        role: String,
        /// The account's team, which must exist (`thor team add`); needed for every role but
        /// beheerder.
        #[arg(long)]
        team: Option<String>,
        /// Name shown on reports and the lead page; default the username.
        #[arg(long)]
        display_name: Option<String>,
        /// May read Wpg data without being a BOA (for a teamleider who is not a BOA).
        #[arg(long)]
        wpg: bool,
        /// The BOA's number (aanstelling), printed on the documents of a case.
        #[arg(long)]
        boa_number: Option<String>,
        /// Read the password from the first line of standard input (at least 12 characters).
        #[arg(long)]
        password_stdin: bool,
        #[command(flatten)]
        data: DataArgs,
    },
    /// List the accounts: username, display name, role, team, Wpg flag, active.
    List {
        #[command(flatten)]
        data: DataArgs,
    },
    /// Set a new password. Without --password-stdin a random one is generated and printed once.
    /// The account's devices stay logged in (`thor user revoke` logs them out).
    Passwd {
        /// The account.
        username: String,
        /// Read the password from the first line of standard input (at least 12 characters).
        #[arg(long)]
        password_stdin: bool,
        #[command(flatten)]
        data: DataArgs,
    },
    /// Switch an account off: its login is refused and all its device tokens are revoked. Its
    /// reports stay.
    Deactivate {
        /// The account.
        username: String,
        /// Why, for the audit log.
        #[arg(
            long,
            default_value = "deactivated by the beheerder from the command line"
        )]
        reason: String,
        #[command(flatten)]
        data: DataArgs,
    },
    /// Revoke a user's tokens: one device (a lost phone) or all of them.
    Revoke {
        /// The account whose tokens are revoked.
        #[arg(long)]
        username: String,
        /// Only this device's token (the `device_id` the app logged in with); default all.
        #[arg(long)]
        device: Option<String>,
        /// Why, for the audit log and the device list.
        #[arg(long, default_value = "revoked by the beheerder from the command line")]
        reason: String,
        #[command(flatten)]
        data: DataArgs,
    },
}

#[derive(Subcommand)]
enum TeamCommand {
    /// Create a team.
    Add {
        /// The team's name, e.g. "THOR Velsen".
        name: String,
        #[command(flatten)]
        data: DataArgs,
    },
    /// List the teams and how many accounts each has.
    List {
        #[command(flatten)]
        data: DataArgs,
    },
}

/// Logs go to standard error, never to standard output (which carries `--json`, the OpenAPI
/// document and the like), without colour codes unless standard error is a terminal. `serve`
/// logs from `info`, the other commands only warnings and errors; `RUST_LOG` overrides both.
fn init_logging(json: bool, serving: bool) {
    use tracing_subscriber::EnvFilter;
    let default = if serving {
        "info,sqlx=warn,sea_orm=warn,sea_orm_migration=warn"
    } else {
        "warn"
    };
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default));
    let ansi = std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none();
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(ansi)
        .with_target(false);
    if json {
        builder.json().init();
    } else {
        builder.init();
    }
}

/// A write-path error as one line for the terminal: what the API would say, or the cause of an
/// internal error (which the API only logs).
fn cli_error(e: ApiError) -> anyhow::Error {
    match e {
        ApiError::Internal(e) => e,
        e => anyhow::anyhow!("{}", e.to_problem().detail),
    }
}

/// Writes a command's output to standard output; a reader that went away (`| head`) is not an
/// error.
fn emit(text: &str) -> anyhow::Result<()> {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        r => r.context("writing to standard output"),
    }
}

/// Opens the database of a command that is not the server.
async fn open(data: DataArgs) -> anyhow::Result<AppState> {
    open_config(data.config()).await
}

async fn open_config(config: Config) -> anyhow::Result<AppState> {
    init_logging(config.log_json, false);
    AppState::open(config).await
}

/// The first line of standard input, or a generated password (then `true`).
fn read_password(from_stdin: bool) -> anyhow::Result<(String, bool)> {
    if from_stdin {
        let mut line = String::new();
        std::io::stdin()
            .lock()
            .read_line(&mut line)
            .context("reading the password from standard input")?;
        let pw = line.trim_end_matches(['\r', '\n']).to_string();
        anyhow::ensure!(
            !pw.is_empty(),
            "--password-stdin: standard input has no password line"
        );
        Ok((pw, false))
    } else {
        Ok((
            thor::auth::token::generate()
                .trim_start_matches("thor_")
                .chars()
                .take(20)
                .collect(),
            true,
        ))
    }
}

async fn user_by_name(
    state: &AppState,
    username: &str,
) -> anyhow::Result<thor::auth::entities::app_user::Model> {
    accounts::find_by_username(&state.db.read, username)
        .await
        .map_err(cli_error)?
        .with_context(|| format!("no user {username:?} (`thor user list` shows them)"))
}

/// Columns padded to their widest cell (counted in characters), two spaces apart.
fn table(header: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for r in rows {
        for (w, c) in widths.iter_mut().zip(r) {
            *w = (*w).max(c.chars().count());
        }
    }
    let mut out = String::new();
    let head: Vec<String> = header.iter().map(|h| h.to_string()).collect();
    for r in std::iter::once(&head).chain(rows) {
        let mut line = String::new();
        for (i, (c, w)) in r.iter().zip(&widths).enumerate() {
            if i + 1 == r.len() {
                line.push_str(c);
            } else {
                line.push_str(c);
                line.extend(std::iter::repeat_n(' ', w - c.chars().count() + 2));
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

async fn serve(config: Config, demo: bool) -> anyhow::Result<()> {
    let started = Instant::now();
    let addr = config.addr;
    tracing::info!(database = %redact_url(&config.effective_database_url()), "opening database");
    let state = AppState::open(config).await?;
    if demo {
        let scenario = thor::demo::generate(&state.reference, thor::demo::today(), 150, 0x7400);
        let loaded = thor::demo::load(&state, &scenario)
            .await
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        tracing::info!(created = loaded.created, already_there = loaded.already_there, date = %scenario.date, "demo day loaded");
        // The 28 days before the demo day load in the background (seconds in a debug build):
        // the server is ready at once, and the briefing's trends fill in when it is done. A
        // restart finds them in place after one query.
        {
            let st = state.clone();
            let date = scenario.date;
            tokio::spawn(async move {
                match thor::demo::load_history(&st, date, thor::demo::HISTORY_DAYS, 0x7400).await {
                    Ok(history) => tracing::info!(
                        created = history.created,
                        already_there = history.already_there,
                        days = thor::demo::HISTORY_DAYS,
                        "demo history loaded"
                    ),
                    Err(e) => tracing::error!(error = %e, "loading the demo history failed"),
                }
            });
        }
    } else {
        let n = accounts::set_demo_accounts_active(&state.db, false)
            .await
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        if n > 0 {
            tracing::warn!(
                accounts = n,
                "demo accounts switched off (start with --demo to use them)"
            );
        }
    }
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("binding {addr}"))?;
    let local = listener.local_addr()?;
    tracing::info!(addr = %local, ready_ms = started.elapsed().as_millis() as u64, "thor is listening");
    if demo {
        println!();
        println!(
            "  THOR demo on http://{local}  (demo day {}, Europe/Amsterdam)",
            thor::demo::today()
        );
        println!("  Demo accounts, password `demo` (they exist only while serving with --demo):");
        for u in thor::demo::USERS.iter().filter(|u| u.login) {
            println!("    {:<12} {}", u.username, u.role.as_str());
        }
        println!();
    }
    app::serve(state, listener, app::shutdown_signal()).await
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Serve { args, demo } => {
            let config = args.config();
            init_logging(config.log_json, true);
            serve(config, demo).await
        }
        Command::Migrate { data } => {
            let state = open(data).await?;
            state.db.close().await;
            println!("migrations applied, reference data loaded");
            Ok(())
        }
        Command::User { command } => user(command).await,
        Command::Team { command } => team(command).await,
        Command::Purge { data, horizons } => {
            let mut config = data.config();
            horizons.apply(&mut config);
            let days = config.tombstone_days;
            let state = open_config(config).await?;
            let mark = thor::sync::purge(
                &state.db,
                chrono::Duration::days(i64::from(days)),
                chrono::Utc::now(),
            )
            .await?;
            println!("purged up to sequence {mark} (tombstone horizon {days} days)");
            Ok(())
        }
        Command::Audit {
            command: AuditCommand::Verify { anchor, data },
        } => {
            let state = open(data).await?;
            let verdict = thor::audit::chain::verify(&state.db.read, anchor.as_ref()).await?;
            emit(&format!("{verdict}\n"))?;
            if !verdict.holds() {
                std::process::exit(1);
            }
            Ok(())
        }
        Command::Audit {
            command: AuditCommand::Seal { data },
        } => {
            let state = open(data).await?;
            let (n, head) = thor::audit::chain::seal(&state.db.write).await?;
            match head {
                Some(h) => println!("sealed {n} lines; head {h}"),
                None => println!("nothing to seal"),
            }
            Ok(())
        }
        Command::Retention {
            command:
                RetentionCommand::Run {
                    dry_run,
                    as_of,
                    retention,
                    horizons,
                    store,
                    data,
                },
        } => {
            let mut config = data.config();
            horizons.apply(&mut config);
            store.apply(&mut config);
            config.retention = retention.retention;
            let state = open_config(config).await?;
            let as_of = match as_of {
                Some(d) => thor::violations::store::amsterdam_day(d).0,
                None => chrono::Utc::now(),
            };
            let bar = Bar(indicatif::ProgressBar::new(0));
            let report = thor::retention::run::Run {
                db: &state.db,
                blobs: &state.photos.blobs,
                reference: &state.reference,
                terms: &state.retention,
                as_of,
                dry_run,
                actor: "cli",
            }
            .execute(&bar)
            .await?;
            bar.0.finish_and_clear();
            if let Some(why) = &report.skipped {
                anyhow::bail!("retention did not run: {why}");
            }
            let as_of = as_of
                .with_timezone(&chrono_tz::Europe::Amsterdam)
                .format("%Y-%m-%d %H:%M");
            let head = if dry_run {
                format!("Dry run as of {as_of}: what a run would change (nothing was changed)")
            } else {
                format!(
                    "Retention run {} as of {as_of}: {} photo objects deleted",
                    report.run_id.map(|u| u.to_string()).unwrap_or_default(),
                    report.objects_deleted
                )
            };
            emit(&format!(
                "{head}\nTerms: {}\n\n{}",
                report.terms,
                retention_table(&report)
            ))
        }
        Command::Audit {
            command:
                AuditCommand::Report {
                    from,
                    to,
                    json,
                    data,
                },
        } => {
            if to < from {
                anyhow::bail!("--to ({to}) is before --from ({from})");
            }
            let state = open(data).await?;
            let start = thor::violations::store::amsterdam_day(from).0;
            let end = thor::violations::store::amsterdam_day(to).1;
            let report = thor::audit::report::build(&state.db.read, start, end).await?;
            thor::audit::record(
                &state.db.write,
                &thor::audit::Actor::system("cli"),
                thor::audit::Entry {
                    action: "audit_report",
                    record_type: "audit_log",
                    record_id: None,
                    reason: None,
                    detail: Some(serde_json::json!({ "from": from, "to": to })),
                },
                chrono::Utc::now(),
            )
            .await?;
            if json {
                emit(&format!("{}\n", serde_json::to_string_pretty(&report)?))
            } else {
                emit(&thor::audit::report::markdown(&report))
            }
        }
        Command::Openapi => emit(&thor::openapi::pretty_json()?),
        Command::Visibility => emit(&thor::access::markdown()),
        Command::Briefing {
            data,
            shifts,
            date,
            shift,
            json,
        } => {
            let shift = match shift.as_deref() {
                Some(s) => Some(
                    thor::briefing::Shift::parse(s)
                        .ok_or_else(|| anyhow::anyhow!("--shift is early, late or night"))?,
                ),
                None => None,
            };
            let mut config = data.config();
            shifts.apply(&mut config);
            let state = open_config(config).await?;
            let date = date.unwrap_or_else(thor::demo::today);
            let operator = thor::auth::Principal::system("cli");
            thor::audit::record(
                &state.db.write,
                &thor::audit::Actor::system("cli"),
                thor::audit::Entry::new("read", "briefing", format!("{date}/{shift:?}")),
                chrono::Utc::now(),
            )
            .await?;
            let b = thor::briefing::load::briefing(
                &state.db.read,
                &state.ask(&operator, date, shift, chrono::Utc::now()),
            )
            .await
            .map_err(cli_error)?;
            if json {
                emit(&format!("{}\n", serde_json::to_string_pretty(&b)?))
            } else {
                emit(&thor::briefing::text::render(&b))
            }
        }
    }
}

async fn user(command: UserCommand) -> anyhow::Result<()> {
    match command {
        UserCommand::Add {
            data,
            username,
            role,
            team,
            display_name,
            wpg,
            boa_number,
            password_stdin,
        } => {
            let role = Role::parse(&role).with_context(|| {
                format!(
                    "unknown role {role:?}: use handhaver, jeugdboa, teamleider, beheerder or fg"
                )
            })?;
            let (password, generated) = read_password(password_stdin)?;
            let state = open(data).await?;
            let user = accounts::create_user(
                &state.db,
                &thor::audit::Actor::system("thor user add"),
                accounts::NewUser {
                    username,
                    display_name: display_name.unwrap_or_default(),
                    role,
                    team,
                    wpg_authorised: wpg,
                    boa_number,
                    password: password.clone(),
                    demo: false,
                    team_policy: accounts::TeamPolicy::MustExist,
                },
            )
            .await
            .map_err(cli_error)?;
            println!("created {} ({}) id {}", user.username, user.role, user.id);
            if generated {
                println!("password (shown once): {password}");
            }
            Ok(())
        }
        UserCommand::List { data } => {
            let state = open(data).await?;
            let users = accounts::list_users(&state.db.read)
                .await
                .map_err(cli_error)?;
            let yes_no = |b: bool| if b { "yes" } else { "no" }.to_string();
            let rows: Vec<Vec<String>> = users
                .into_iter()
                .map(|(u, team)| {
                    vec![
                        u.username,
                        u.display_name,
                        u.role,
                        team.unwrap_or_else(|| "-".into()),
                        yes_no(u.wpg_authorised),
                        if u.demo && !u.active {
                            "no (demo)".to_string()
                        } else if u.demo {
                            "yes (demo)".to_string()
                        } else {
                            yes_no(u.active)
                        },
                    ]
                })
                .collect();
            emit(&table(
                &[
                    "USERNAME",
                    "DISPLAY NAME",
                    "ROLE",
                    "TEAM",
                    "WPG FLAG",
                    "ACTIVE",
                ],
                &rows,
            ))
        }
        UserCommand::Passwd {
            data,
            username,
            password_stdin,
        } => {
            let (password, generated) = read_password(password_stdin)?;
            let state = open(data).await?;
            let user = user_by_name(&state, &username).await?;
            accounts::set_password(
                &state.db,
                &thor::audit::Actor::system("thor user passwd"),
                user.id,
                password.clone(),
            )
            .await
            .map_err(cli_error)?;
            println!("password of {} set", user.username);
            if generated {
                println!("password (shown once): {password}");
            }
            if !user.active {
                println!(
                    "note: {} is deactivated; the password does not log in",
                    user.username
                );
            }
            Ok(())
        }
        UserCommand::Deactivate {
            data,
            username,
            reason,
        } => {
            let state = open(data).await?;
            let user = user_by_name(&state, &username).await?;
            let done = accounts::deactivate(
                &state.db,
                &thor::audit::Actor::system("thor user deactivate"),
                user.id,
                &reason,
            )
            .await
            .map_err(cli_error)?;
            if done.was_active {
                println!(
                    "deactivated {}; revoked {} token(s)",
                    user.username, done.tokens
                );
            } else {
                println!(
                    "{} was deactivated already; revoked {} token(s)",
                    user.username, done.tokens
                );
            }
            Ok(())
        }
        UserCommand::Revoke {
            data,
            username,
            device,
            reason,
        } => {
            let state = open(data).await?;
            let user = user_by_name(&state, &username).await?;
            let n = accounts::revoke(
                &state.db,
                &thor::audit::Actor::system("thor user revoke"),
                user.id,
                device.as_deref(),
                &reason,
            )
            .await
            .map_err(cli_error)?;
            println!("revoked {n} token(s) of {}", user.username);
            Ok(())
        }
    }
}

async fn team(command: TeamCommand) -> anyhow::Result<()> {
    match command {
        TeamCommand::Add { data, name } => {
            let state = open(data).await?;
            let t = accounts::create_team(
                &state.db,
                &thor::audit::Actor::system("thor team add"),
                &name,
            )
            .await
            .map_err(cli_error)?;
            println!("created team {:?} id {}", t.name, t.id);
            Ok(())
        }
        TeamCommand::List { data } => {
            let state = open(data).await?;
            let teams = accounts::list_teams(&state.db.read)
                .await
                .map_err(cli_error)?;
            let users = accounts::list_users(&state.db.read)
                .await
                .map_err(cli_error)?;
            let rows: Vec<Vec<String>> = teams
                .into_iter()
                .map(|t| {
                    let n = users
                        .iter()
                        .filter(|(u, _)| u.team_id == Some(t.id))
                        .count();
                    vec![t.name, n.to_string()]
                })
                .collect();
            emit(&table(&["TEAM", "ACCOUNTS"], &rows))
        }
    }
}

fn main() -> ExitCode {
    thor::db::sqlite_on_mimalloc();
    let cli = Cli::parse();
    let rt = match thor::perf::runtime() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("thor: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match rt.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("thor: {e:#}");
            ExitCode::FAILURE
        }
    }
}

//! The `thor` command: serve the API, migrate, manage accounts, print the OpenAPI document.

/// mimalloc instead of glibc's allocator: a push allocates and frees many small values (JSON
/// maps, query parameters), and glibc's malloc/free took a sixth of its server time in `perf`.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::io::BufRead;
use std::process::ExitCode;
use std::time::Instant;

use anyhow::Context;
use clap::{Parser, Subcommand};
use thor::app::{self, AppState};
use thor::auth::{Role, accounts};
use thor::config::{Config, redact_url};

#[derive(Parser)]
#[command(
    name = "thor",
    version,
    about = "THOR: backend for Velsen's municipal enforcement field app"
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
        config: Config,
        /// Load today's demo day and create the demo accounts (password `demo`).
        #[arg(long, env = "THOR_DEMO")]
        demo: bool,
    },
    /// Apply migrations and load the reference data, then exit.
    Migrate {
        #[command(flatten)]
        config: Config,
    },
    /// Manage accounts.
    User {
        #[command(subcommand)]
        command: UserCommand,
    },
    /// Destroy tombstones past the horizon (THOR_TOMBSTONE_DAYS) and expired push answers;
    /// `serve` also does this every six hours.
    Purge {
        #[command(flatten)]
        config: Config,
    },
    /// Print the OpenAPI document the code generates (as in mobile-api-spec/openapi.json).
    Openapi,
    /// Print the visibility table the code enforces (as in VISIBILITY.md): who sees what.
    Visibility,
    /// Print the briefing of a day (and shift) in the terminal: all teams, without the youth
    /// sections (those are for jeugdboa's and Wpg-authorised leads); the read is audit-logged.
    Briefing {
        #[command(flatten)]
        config: Config,
        /// The day (YYYY-MM-DD); default today (Europe/Amsterdam).
        #[arg(long)]
        date: Option<chrono::NaiveDate>,
        /// early, late or night; omitted: the whole day.
        #[arg(long)]
        shift: Option<String>,
        /// Print the JSON the API serves instead of text.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand)]
enum UserCommand {
    /// Create an account. Without --password-stdin a random password is generated and printed once.
    Add {
        #[command(flatten)]
        config: Config,
        #[arg(long)]
        username: String,
        /// handhaver, jeugdboa, teamleider or beheerder.
        #[arg(long)]
        role: String,
        /// Team name (created if new).
        #[arg(long)]
        team: Option<String>,
        #[arg(long, default_value = "")]
        display_name: String,
        /// May read Wpg data without being a BOA (for a teamleider who is not a BOA).
        #[arg(long)]
        wpg: bool,
        /// Read the password from the first line of standard input.
        #[arg(long)]
        password_stdin: bool,
    },
    /// Revoke a user's tokens: one device (a lost phone) or all of them.
    Revoke {
        #[command(flatten)]
        config: Config,
        #[arg(long)]
        username: String,
        #[arg(long)]
        device: Option<String>,
        #[arg(long, default_value = "revoked by the beheerder from the command line")]
        reason: String,
    },
}

fn init_logging(json: bool) {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new("info,sqlx=warn,sea_orm=warn,sea_orm_migration=warn"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(false);
    if json {
        builder.json().init();
    } else {
        builder.init();
    }
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
    let purge_db = state.db.clone();
    let horizon = chrono::Duration::days(i64::from(state.config.tombstone_days));
    tokio::spawn(async move {
        // Not at start-up: the first purge runs six hours in, then every six hours.
        let every = std::time::Duration::from_secs(6 * 3600);
        let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
        loop {
            tick.tick().await;
            match thor::sync::purge(&purge_db, horizon, chrono::Utc::now()).await {
                Ok(mark) => tracing::info!(purged_seq = mark, "tombstone purge done"),
                Err(e) => tracing::error!(error = %e, "tombstone purge failed"),
            }
        }
    });
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
        Command::Serve { config, demo } => {
            init_logging(config.log_json);
            serve(config, demo).await
        }
        Command::Migrate { config } => {
            init_logging(config.log_json);
            let state = AppState::open(config).await?;
            state.db.close().await;
            println!("migrations applied, reference data loaded");
            Ok(())
        }
        Command::User { command } => {
            match command {
                UserCommand::Add {
                    config,
                    username,
                    role,
                    team,
                    display_name,
                    wpg,
                    password_stdin,
                } => {
                    init_logging(config.log_json);
                    let role = Role::parse(&role).with_context(|| format!("unknown role {role:?}: use handhaver, jeugdboa, teamleider or beheerder"))?;
                    let (password, generated) = if password_stdin {
                        let mut line = String::new();
                        std::io::stdin().lock().read_line(&mut line)?;
                        (line.trim_end_matches(['\r', '\n']).to_string(), false)
                    } else {
                        (
                            thor::auth::token::generate()
                                .trim_start_matches("thor_")
                                .chars()
                                .take(20)
                                .collect(),
                            true,
                        )
                    };
                    let state = AppState::open(config).await?;
                    let user = accounts::create_user(
                        &state.db,
                        &thor::audit::Actor::system("thor user add"),
                        accounts::NewUser {
                            username,
                            display_name,
                            role,
                            team,
                            wpg_authorised: wpg,
                            password: password.clone(),
                            demo: false,
                        },
                    )
                    .await
                    .map_err(|e| anyhow::anyhow!("{}", e.to_problem().detail))?;
                    println!("created {} ({}) id {}", user.username, user.role, user.id);
                    if generated {
                        println!("password (shown once): {password}");
                    }
                    Ok(())
                }
                UserCommand::Revoke {
                    config,
                    username,
                    device,
                    reason,
                } => {
                    init_logging(config.log_json);
                    let state = AppState::open(config).await?;
                    let user = accounts::find_by_username(&state.db.read, &username)
                        .await
                        .map_err(|e| anyhow::anyhow!("{e}"))?
                        .with_context(|| format!("no user {username:?}"))?;
                    let n = accounts::revoke(
                        &state.db,
                        &thor::audit::Actor::system("thor user revoke"),
                        user.id,
                        device.as_deref(),
                        &reason,
                    )
                    .await
                    .map_err(|e| anyhow::anyhow!("{e}"))?;
                    println!("revoked {n} token(s) of {username}");
                    Ok(())
                }
            }
        }
        Command::Purge { config } => {
            init_logging(config.log_json);
            let days = config.tombstone_days;
            let state = AppState::open(config).await?;
            let mark = thor::sync::purge(
                &state.db,
                chrono::Duration::days(i64::from(days)),
                chrono::Utc::now(),
            )
            .await?;
            println!("purged up to sequence {mark} (tombstone horizon {days} days)");
            Ok(())
        }
        Command::Openapi => {
            print!("{}", thor::openapi::pretty_json()?);
            Ok(())
        }
        Command::Visibility => {
            print!("{}", thor::access::markdown());
            Ok(())
        }
        Command::Briefing {
            config,
            date,
            shift,
            json,
        } => {
            init_logging(config.log_json);
            let state = AppState::open(config).await?;
            let shift = match shift.as_deref() {
                Some(s) => Some(
                    thor::briefing::Shift::parse(s)
                        .ok_or_else(|| anyhow::anyhow!("--shift is early, late or night"))?,
                ),
                None => None,
            };
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
                &state.reference,
                &state.round_cache,
                &state.shifts,
                &operator,
                date,
                shift,
                chrono::Utc::now(),
            )
            .await
            .map_err(|e| anyhow::anyhow!("{e}"))?;
            if json {
                println!("{}", serde_json::to_string_pretty(&b)?);
            } else {
                print!("{}", thor::briefing::text::render(&b));
            }
            Ok(())
        }
    }
}

fn main() -> ExitCode {
    thor::db::sqlite_on_mimalloc();
    let cli = Cli::parse();
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        // An idle server's runtime threads give their freed memory back (see thor::memory).
        .on_thread_unpark(thor::memory::on_thread_wake)
        .build()
    {
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

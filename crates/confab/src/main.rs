//! `confab`: the chat server and its operator commands.

use anyhow::{Context, bail};
use clap::{Args, Parser, Subcommand};
use confab::config::Config;
use confab_core::command::CreateApp;
use confab_core::{Command, Outcome};
use std::io::IsTerminal;
use std::sync::Arc;

/// mimalloc instead of the system allocator: the request path allocates many small, short-lived
/// buffers on several threads, where glibc's malloc showed up at ~5 % of CPU samples.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(
    name = "confab",
    version,
    about = "Confab: a multi-tenant chat server in one binary"
)]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

/// Options every subcommand takes.
#[derive(Args, Clone, Default)]
struct Common {
    /// A TOML configuration file.
    #[arg(long, global = true)]
    config: Option<std::path::PathBuf>,
    /// Where the data lives [env: CONFAB_DATA_DIR] [default: ./confab-data]
    #[arg(long, global = true)]
    data_dir: Option<String>,
    /// The database: a SQLite file path or a postgres://USER@HOST/DB URL [env: CONFAB_DATABASE]
    /// [default: DATA_DIR/confab.db]
    #[arg(long, global = true)]
    database: Option<String>,
    /// The admin key [env: CONFAB_ADMIN_KEY] [default: generated into DATA_DIR/admin.key]
    #[arg(long, global = true)]
    admin_key: Option<String>,
    /// full (fsync every commit) or normal [env: CONFAB_DURABILITY]
    #[arg(long, global = true)]
    durability: Option<String>,
}

#[derive(Subcommand)]
enum Cmd {
    /// Run the server.
    Serve {
        /// Address to listen on [env: CONFAB_LISTEN] [default: 127.0.0.1:8080]
        #[arg(long)]
        listen: Option<String>,
        /// NATS for a cluster of nodes, e.g. nats://127.0.0.1:4222 [env: CONFAB_NATS]
        /// [default: none, an in-process bus for one node]
        #[arg(long)]
        nats: Option<String>,
        /// With PostgreSQL and NATS, send each app's writes to one node, true or false
        /// [env: CONFAB_ROUTE_WRITES] [default: true]
        #[arg(long)]
        route_writes: Option<String>,
        #[command(flatten)]
        common: Common,
    },
    /// Create or upgrade the database schema, then exit.
    Migrate {
        #[command(flatten)]
        common: Common,
    },
    /// Recreate every projection by replaying the event log.
    Rebuild {
        #[command(flatten)]
        common: Common,
    },
    /// Copy everything into another, empty database by replaying the event log.
    Copy {
        /// The target database: a SQLite file path or a postgres://USER@HOST/DB URL.
        #[arg(long)]
        to: String,
        #[command(flatten)]
        common: Common,
    },
    /// Operator commands.
    Admin {
        #[command(subcommand)]
        what: Admin,
        #[command(flatten)]
        common: Common,
    },
}

#[derive(Subcommand)]
enum Admin {
    /// Apps.
    Apps {
        #[command(subcommand)]
        what: AdminApps,
    },
    /// User tokens.
    Tokens {
        #[command(subcommand)]
        what: AdminTokens,
    },
    /// An app's identity providers (sign-in with Google or any OpenID Connect provider).
    Providers {
        #[command(subcommand)]
        what: AdminProviders,
    },
}

#[derive(Subcommand)]
enum AdminProviders {
    /// Create or replace provider ID of an app (APP is the app token). SETTINGS is JSON:
    /// '{"preset":"google","client_ids":["..."]}' or the settings in full.
    Put {
        app: String,
        id: String,
        settings: String,
    },
    /// List an app's providers, one JSON object a line.
    List { app: String },
    /// Delete provider ID of an app and every identity linked through it.
    Delete { app: String, id: String },
}

#[derive(Subcommand)]
enum AdminApps {
    /// Create an app; prints its token and its secret (shown once).
    Create { name: String },
}

#[derive(Subcommand)]
enum AdminTokens {
    /// Mint a token for an existing user of an app (APP is the app token).
    Mint {
        app: String,
        user: String,
        /// Lifetime in seconds.
        #[arg(long)]
        ttl: Option<i64>,
    },
}

/// `serve` passes its own flags (`--listen`, `--nats`, `--route-writes`) too.
fn load(common: &Common, serve: [Option<&str>; 3]) -> anyhow::Result<Config> {
    let [listen, nats, route_writes] = serve;
    let mut c = Config::default();
    if let Some(path) = &common.config {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read {}", path.display()))?;
        c.apply_toml(&text, &path.display().to_string())?;
    }
    c.apply_env(|k| std::env::var(k).ok())?;
    let flags = [
        ("listen", listen, "--listen"),
        ("nats", nats, "--nats"),
        ("route_writes", route_writes, "--route-writes"),
        ("data_dir", common.data_dir.as_deref(), "--data-dir"),
        ("database", common.database.as_deref(), "--database"),
        ("admin_key", common.admin_key.as_deref(), "--admin-key"),
        ("durability", common.durability.as_deref(), "--durability"),
    ];
    for (key, value, flag) in flags {
        if let Some(v) = value {
            c.set(key, v, flag)?;
        }
    }
    c.validate()?;
    Ok(c)
}

fn init_tracing(level: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("RUST_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(level));
    // A log line that cannot be written (a full disk under a redirected stderr) is dropped.
    // With internal errors on, the subscriber would report it with `eprintln!`, which panics
    // when stderr fails too, and take down whichever thread was logging (the writer, say).
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr)
        .log_internal_errors(false)
        .init();
}

/// A progress bar on stderr when it is a terminal (replays of millions of events take a while).
fn progress_bar() -> confab_core::store::Progress {
    let tty = std::io::stderr().is_terminal();
    Arc::new(move |done, total| {
        if tty {
            let width = 40usize;
            let filled = if total == 0 {
                width
            } else {
                (done as usize * width) / total as usize
            };
            eprint!(
                "\r[{}{}] {done}/{total} events",
                "#".repeat(filled),
                " ".repeat(width - filled)
            );
            if done == total {
                eprintln!();
            }
        }
    })
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! { _ = ctrl_c => {}, _ = term => {} }
}

/// `confab admin providers ...`: the same rules as the API's `/v1/app/identity-providers`.
async fn providers(
    store: &Arc<dyn confab_core::store::Store>,
    config: &Config,
    what: AdminProviders,
) -> anyhow::Result<()> {
    let app_of = |token: String| async move {
        store
            .app_keys_by_token(&token)
            .await?
            .context("no app with that token")
    };
    match what {
        AdminProviders::Put { app, id, settings } => {
            let keys = app_of(app).await?;
            let body: serde_json::Value =
                serde_json::from_str(&settings).context("SETTINGS is not JSON")?;
            let provider = confab_oidc::ProviderConfig::from_settings(&id, body)?;
            provider.check_fetch_policy(confab::oidc_fetch_policy(config))?;
            if let Some(old) = store.identity_provider(keys.id, &id).await? {
                let old: confab_oidc::ProviderConfig = serde_json::from_str(&old.config)?;
                if old.issuer != provider.issuer {
                    bail!(
                        "a provider's issuer cannot change: delete it (which removes its \
                         identity links) and create it again"
                    );
                }
            }
            let json = serde_json::to_string(&provider)?;
            let created = store.put_identity_provider(keys.id, &id, &json).await?;
            println!(
                "{} {id}: {json}",
                if created { "created" } else { "replaced" }
            );
        }
        AdminProviders::List { app } => {
            let keys = app_of(app).await?;
            for p in store.identity_providers(keys.id).await? {
                println!("{{\"id\":{:?},\"settings\":{}}}", p.id, p.config);
            }
        }
        AdminProviders::Delete { app, id } => {
            let keys = app_of(app).await?;
            if !store.delete_identity_provider(keys.id, &id).await? {
                bail!("the app has no provider {id}");
            }
            println!("deleted {id}");
        }
    }
    Ok(())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Cmd::Serve {
            listen,
            nats,
            route_writes,
            common,
        } => {
            let serve = [listen.as_deref(), nats.as_deref(), route_writes.as_deref()];
            let config = load(&common, serve)?;
            init_tracing(&config.log);
            let running = confab::start(&config).await?;
            if running.admin_key_new {
                // Not `eprintln!`: it panics when stderr cannot be written.
                use std::io::Write;
                let _ = writeln!(
                    std::io::stderr(),
                    "Admin key (shown once; kept in {}): {}",
                    config.data_dir.join("admin.key").display(),
                    running.admin_key
                );
            }
            tracing::info!(addr = %running.addr, db = %config.database_display(), "confab listening");
            running.wait(shutdown_signal()).await?;
            tracing::info!("confab stopped");
        }
        Cmd::Migrate { common } => {
            let config = load(&common, [None, None, None])?;
            let _lock = confab::lock_data_dir(&config)?;
            let n = if config.is_postgres() {
                confab_store_postgres::migrate(&config.database).await?
            } else {
                confab_store_sqlite::migrate(&config.database_path())?
            };
            println!("migrations applied: {n}");
        }
        Cmd::Rebuild { common } => {
            let config = load(&common, [None, None, None])?;
            let _lock = confab::lock_data_dir(&config)?;
            let store = confab::open_store(&config).await?;
            let started = std::time::Instant::now();
            let n = store.rebuild(progress_bar()).await?;
            println!(
                "rebuilt projections from {n} events in {:.1?}",
                started.elapsed()
            );
        }
        Cmd::Copy { to, common } => {
            let config = load(&common, [None, None, None])?;
            let _lock = confab::lock_data_dir(&config)?;
            let source = confab::open_store(&config).await?;
            let mut target_config = config.clone();
            target_config.set("database", &to, "--to")?;
            if target_config.database_display() == config.database_display() {
                bail!("--to names the source database itself");
            }
            let target = confab::open_store(&target_config).await?;
            let started = std::time::Instant::now();
            let copied = confab::copy::copy(&source, &target, progress_bar()).await?;
            println!(
                "copied {} events of {} apps into {to} in {:.1?}; counts checked",
                copied.events,
                copied.apps,
                started.elapsed()
            );
        }
        Cmd::Admin { what, common } => {
            let config = load(&common, [None, None, None])?;
            // The running server's writer assumes it is the only one: an operator command
            // writing beside it would break its numbering. Refused while a server runs.
            let _lock = confab::lock_data_dir(&config)?;
            let store = confab::open_store(&config).await?;
            match what {
                Admin::Apps {
                    what: AdminApps::Create { name },
                } => {
                    let secret = confab_api::auth::new_app_secret();
                    let cmd = Command::CreateApp(CreateApp {
                        name,
                        token: confab_api::auth::new_app_token(),
                        secret_hash: confab_api::auth::hash_secret(&secret),
                        signing_key: confab_api::auth::random_hex(32),
                    });
                    confab_core::validate::command(&cmd, &confab::limits(&config))?;
                    let Outcome::App(app) = store.execute(cmd).await? else {
                        bail!("unexpected outcome")
                    };
                    let shown = serde_json::json!({
                        "name": app.name,
                        "token": app.token,
                        "public_id": app.key_id,
                        "secret": secret,
                    });
                    println!("{shown}");
                }
                Admin::Tokens {
                    what: AdminTokens::Mint { app, user, ttl },
                } => {
                    let keys = store
                        .app_keys_by_token(&app)
                        .await?
                        .context("no app with that token")?;
                    let user = confab_core::validate::user_id(&user)?;
                    let ttl = ttl.unwrap_or(config.default_token_ttl);
                    if ttl < 1 || ttl > config.max_token_ttl {
                        bail!("--ttl must be between 1 and {}", config.max_token_ttl);
                    }
                    store
                        .execute(Command::RecordLogin {
                            app: keys.id,
                            user: user.clone(),
                        })
                        .await?;
                    let (token, _) = confab_api::auth::mint(&keys, &user, ttl)
                        .map_err(|e| anyhow::anyhow!(e.message))?;
                    println!("{token}");
                }
                Admin::Providers { what } => providers(&store, &config, what).await?,
            }
        }
    }
    Ok(())
}

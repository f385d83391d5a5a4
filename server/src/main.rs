//! `swell`: the server (`serve`), the embedded demo (`demo`) and operator commands.

mod auth;
mod cli;
mod clusters;
mod completions;
mod hooks_cli;
mod config;
mod hooks;
mod live;
mod metrics_api;
mod metrics_auth;
mod page_cache;
mod replay_cli;
mod replay_plot;
mod tenancy_cli;
mod web;

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::{Arc, Mutex};

use anyhow::Context;
use clap::{Parser, Subcommand};
use engine::{Engine, EngineOptions};
use leptos::prelude::LeptosOptions;

use config::{Config, Flags, redact_url};

#[derive(Parser)]
#[command(name = "swell", version, about = "Event-driven, predictive autoscaling for Kubernetes")]
struct Cli {
    /// Configuration file (default: ./swell.toml if present).
    #[arg(long, global = true)]
    config: Option<PathBuf>,
    /// Address to listen on, e.g. 127.0.0.1:3000.
    #[arg(long, global = true)]
    bind: Option<String>,
    /// Database URL: sqlite://path or postgres://user:pass@host/db.
    #[arg(long, global = true)]
    database_url: Option<String>,
    /// Folder of the built site (pkg/ with wasm, js and css).
    #[arg(long, global = true)]
    site_root: Option<String>,
    /// Log filter, e.g. info or swell=debug.
    #[arg(long, global = true)]
    log: Option<String>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the web server and the scaling engine.
    ///
    /// Example: swell serve --config /etc/swell/swell.toml
    Serve,
    /// Run with a simulated cluster replaying recorded traffic and three demo ScaledObjects.
    ///
    /// Example: `swell demo --bind 127.0.0.1:3000`
    Demo {
        /// Empty deployments left for objects you make (`playground`, `playground-2`, …);
        /// the dashboard benchmark makes 100 objects and asks for 100.
        #[arg(long, default_value_t = 1)]
        playgrounds: usize,
    },
    /// Apply pending database migrations and exit.
    ///
    /// Example: swell migrate --database-url postgres://swell@db.internal/swell
    Migrate,
    /// Register or list the Kubernetes clusters Swell scales workloads on.
    ///
    /// Example: swell cluster add east --kubeconfig ~/.kube/east.yaml --tenant team-a
    Cluster {
        #[command(subcommand)]
        command: ClusterCommand,
    },
    /// Store trigger authentication (secret parameters, sealed) for objects made in Swell.
    ///
    /// Example: swell auth add amqp --tenant team-a --namespace shop --param-file host=/run/secrets/amqp-url
    Auth {
        #[command(subcommand)]
        command: AuthCommand,
    },
    /// Manage webhook sources (`POST /hooks/{tenant}/{source}`).
    ///
    /// Example: swell webhook add deploys --tenant team-a
    Webhook {
        #[command(subcommand)]
        command: WebhookCommand,
    },
    /// Create and list tenants and set their identity provider.
    ///
    /// Example: swell tenant add team-a --name "Team A"
    Tenant {
        #[command(subcommand)]
        command: tenancy_cli::TenantCommand,
    },
    /// Grant and revoke users' roles in a tenant.
    ///
    /// Example: swell user grant ana@example.com --tenant team-a --role operator
    User {
        #[command(subcommand)]
        command: tenancy_cli::UserCommand,
    },
    /// API tokens for the CLI and scripts.
    ///
    /// Example: swell token create ci --tenant team-a --role operator --expires-in 30d
    Token {
        #[command(subcommand)]
        command: tenancy_cli::TokenCommand,
    },
    /// Sealed secrets: `rotate` re-seals them all under secret_key.
    ///
    /// Example: SWELL_PREVIOUS_SECRET_KEYS='["'$OLD'"]' SWELL_SECRET_KEY=$NEW swell secrets rotate
    Secrets {
        #[command(subcommand)]
        command: SecretsCommand,
    },
    /// Print every HTTP route with who may call it (JSON lines).
    #[command(hide = true)]
    Routes,
    /// Replay a ScaledObject over a recorded trace against reactive baselines (no cluster).
    ///
    /// Example: swell replay --trace requests.csv --value-column requests --object so.yaml --tune --out plots/
    Replay(replay_cli::ReplayArgs),
    /// Write Swell's CustomResourceDefinitions as YAML (one file each); with --keda, the same
    /// types in KEDA's group keda.sh, for compatibility mode on a cluster without KEDA's CRDs.
    ///
    /// Example: swell crdgen --out deploy/helm/swell/crds; swell crdgen --keda --out deploy/crds-keda
    Crdgen {
        #[arg(long, default_value = "deploy/helm/swell/crds")]
        out: PathBuf,
        /// Generate keda.sh/v1alpha1 CRDs instead of swell.dev/v1alpha1 ones.
        #[arg(long)]
        keda: bool,
    },
    /// Print a completion script for a shell (bash, zsh, fish, elvish or powershell).
    ///
    /// Example: swell completions bash > ~/.local/share/bash-completion/completions/swell
    Completions {
        shell: clap_complete::Shell,
    },
    #[command(flatten)]
    Client(cli::ClientCommand),
}

#[derive(Subcommand)]
enum SecretsCommand {
    /// Re-seal every stored secret under secret_key; keys in previous_secret_keys still open
    /// what they sealed until then. Example: SWELL_SECRET_KEY=$NEW
    /// SWELL_PREVIOUS_SECRET_KEYS='["'$OLD'"]' swell secrets rotate
    Rotate,
}

#[derive(Subcommand)]
enum AuthCommand {
    /// Create or replace a trigger authentication; triggers name it in authenticationRef.
    ///
    /// Example: swell auth add amqp --tenant team-a --namespace shop --param-file host=/run/secrets/amqp-url
    Add {
        name: String,
        #[arg(long, default_value = "default")]
        tenant: String,
        /// The namespace of the objects that use it.
        #[arg(long, default_value = "default")]
        namespace: String,
        /// A parameter from a file: `key=path` (e.g. `password=/run/secrets/pw`); repeatable.
        /// Values are never taken on the command line, where shells keep them.
        #[arg(long = "param-file", value_name = "KEY=PATH")]
        param_files: Vec<String>,
    },
}

#[derive(Subcommand)]
enum WebhookCommand {
    /// Create a source (or rotate its secret): prints the new HMAC secret once.
    ///
    /// Example: swell webhook add deploys --tenant team-a
    Add {
        source: String,
        #[arg(long, default_value = "default")]
        tenant: String,
    },
}

#[derive(Subcommand)]
enum ClusterCommand {
    /// Add (or replace) a cluster: its kubeconfig is stored sealed with secret_key.
    ///
    /// Example: swell cluster add east --kubeconfig ~/.kube/east.yaml --tenant team-a
    Add {
        name: String,
        /// Kubeconfig file (its current context is used).
        #[arg(long, conflicts_with = "in_cluster", required_unless_present = "in_cluster")]
        kubeconfig: Option<PathBuf>,
        /// The cluster Swell runs in (service account token).
        #[arg(long)]
        in_cluster: bool,
        /// The tenant that owns the cluster's ScaledObjects.
        #[arg(long, default_value = "default")]
        tenant: String,
    },
    /// List registered clusters.
    ///
    /// Example: swell cluster list --database-url sqlite://swell.db
    List,
}

/// A start-up failure: one line, exit code 2.
struct Startup(String);

/// Server-side rendering allocates many small strings per page; mimalloc handles that with
/// less contention than glibc's malloc on a busy multi-threaded runtime.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Command::Completions { shell } = cli.command {
        completions::print(shell);
        return ExitCode::SUCCESS;
    }
    if let Command::Client(command) = cli.command {
        engine::init_tls();
        return cli::run(command);
    }
    let flags = Flags { bind: cli.bind.clone(), database_url: cli.database_url.clone(), site_root: cli.site_root.clone(), log: cli.log.clone() };
    let config = match config::load(cli.config.as_deref(), &flags) {
        Ok(c) => c,
        Err(msg) => return startup_failed(&msg),
    };
    init_tracing(&config.log);
    engine::init_tls();
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("tokio runtime");
    match runtime.block_on(run(cli.command, config)) {
        Ok(Ok(())) => ExitCode::SUCCESS,
        Ok(Err(Startup(msg))) => startup_failed(&msg),
        Err(e) => {
            eprintln!("swell: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn startup_failed(msg: &str) -> ExitCode {
    eprintln!("swell: {msg}");
    ExitCode::from(2)
}

fn init_tracing(filter: &str) {
    // kube-client warns "Server cert bypassed" on every TLS handshake with a cluster whose
    // kubeconfig skips verification; Swell says it once per cluster instead (sync.rs).
    let filter = format!("{filter},kube_client::client::tls=error");
    let filter = tracing_subscriber::EnvFilter::try_new(&filter).unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).init();
}

async fn run(command: Command, config: Config) -> anyhow::Result<Result<(), Startup>> {
    if let Command::Replay(args) = &command {
        let args = args.clone();
        return Ok(tokio::task::spawn_blocking(move || replay_cli::run(&args)).await?.map_err(Startup));
    }
    if let Command::Routes = &command {
        for r in web::route_list() {
            println!("{r}");
        }
        return Ok(Ok(()));
    }
    if let Command::Crdgen { out, keda } = &command {
        clusters::crdgen(out, *keda)?;
        return Ok(Ok(()));
    }
    let db = match engine::store::connect(&config.database_url).await {
        Ok(db) => db,
        Err(e) => {
            return Ok(Err(Startup(format!(
                "cannot reach database {} (config key database_url): {e}",
                redact_url(&config.database_url)
            ))));
        }
    };
    engine::store::migrate(&db).await.context("while applying migrations")?;
    if let Command::Migrate = command {
        tracing::info!(database = %redact_url(&config.database_url), "migrations applied");
        return Ok(Ok(()));
    }
    if let Command::Auth { command: AuthCommand::Add { name, tenant, namespace, param_files } } = &command {
        return Ok(hooks_cli::add_auth(&db, &config, tenant, namespace, name, param_files).await?.map_err(Startup));
    }
    if let Command::Webhook { command: WebhookCommand::Add { source, tenant } } = &command {
        return Ok(hooks_cli::add(&db, &config, tenant, source).await?.map_err(Startup));
    }
    match &command {
        Command::Tenant { command } => return Ok(tenancy_cli::tenant(&db, &config, command).await?.map_err(Startup)),
        Command::User { command } => return Ok(tenancy_cli::user(&db, command).await?.map_err(Startup)),
        Command::Token { command } => return Ok(tenancy_cli::token(&db, command).await?.map_err(Startup)),
        Command::Secrets { command: SecretsCommand::Rotate } => return Ok(tenancy_cli::rotate(&db, &config).await?.map_err(Startup)),
        _ => {}
    }
    if let Command::Cluster { command } = &command {
        return Ok(match command {
            ClusterCommand::Add { name, kubeconfig, in_cluster: _, tenant } => clusters::add(&db, &config, name, kubeconfig.as_deref(), tenant).await?.map_err(Startup),
            ClusterCommand::List => {
                clusters::list(&db).await?;
                Ok(())
            }
        });
    }

    let sealer = match config.sealer() {
        Ok(s) => s.map(Arc::new),
        Err(e) => return Ok(Err(Startup(e))),
    };
    let mut opts = EngineOptions { retention: chrono::Duration::days(config.retention_days as i64), sealer: sealer.clone(), ..Default::default() };
    if let Command::Demo { playgrounds } = &command {
        engine::demo::seed(&db).await.context("while seeding the demo")?;
        opts.sim = Some(Arc::new(Mutex::new(engine::demo::cluster_with_playgrounds(*playgrounds))));
    }
    let engine = Engine::new(db, opts).await.context("while loading scaled objects")?;

    let listener = match tokio::net::TcpListener::bind(config.bind).await {
        Ok(l) => l,
        Err(e) => return Ok(Err(Startup(format!("cannot listen on {} (config key bind): {e}", config.bind)))),
    };
    let leptos_options = LeptosOptions::builder()
        .output_name("swell")
        .site_root(config.site_root.to_string_lossy().to_string())
        .site_pkg_dir("pkg")
        .site_addr(config.bind)
        .env(leptos::config::Env::PROD)
        .build();

    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let loop_handle = engine.spawn(stop_rx.clone());
    let mut metrics_api = None;
    if let Command::Serve = command {
        match clusters::start(&engine, &config, stop_rx.clone()).await? {
            Ok(clients) if clients.is_empty() => {}
            Ok(clients) => {
                let cert = match metrics_api::ServingCert::load(config.metrics_api_tls_cert.as_deref(), config.metrics_api_tls_key.as_deref(), config.metrics_api_bind) {
                    Ok(cert) => cert,
                    Err(msg) => return Ok(Err(Startup(msg))),
                };
                let mut rx = stop_rx.clone();
                let (addr, engine) = (config.metrics_api_bind, engine.clone());
                tracing::info!(clusters = clients.len(), address = %addr, "external metrics API (HTTPS) for the HPA");
                metrics_api = Some(tokio::spawn(async move {
                    let stop = async move {
                        let _ = rx.changed().await;
                    };
                    let trust = metrics_auth::Trust::load(clients).await;
                    if let Err(e) = metrics_api::serve(addr, engine, trust, cert, stop).await {
                        tracing::error!(address = %addr, error = %e, "external metrics API stopped (config key metrics_api_bind)");
                    }
                }));
            }
            Err(msg) => return Ok(Err(Startup(msg))),
        }
    }
    let local_sign_in = matches!(command, Command::Demo { .. }) && listener.local_addr()?.ip().is_loopback();
    if matches!(command, Command::Demo { .. }) && !local_sign_in {
        tracing::warn!(address = %config.bind, "the demo's local sign-in is off: Swell is not bound to loopback");
    }
    let settings = auth::Settings {
        public_url: tenancy_cli::public_url(&config),
        local_sign_in,
        cookie_secure: config.cookie_secure,
        session_ttl: time::Duration::seconds(config.session_ttl_secs.max(1) as i64),
    };
    let auth = auth::Auth::new(engine.clone(), sealer.clone(), &settings);
    let cleanup = auth::store::SqlStore::new(engine.db().clone()).spawn_cleanup(std::time::Duration::from_secs(config.session_cleanup_secs.max(1)));
    let hooks = Arc::new(hooks::Hooks::new(engine.clone(), sealer));
    let state = web::AppState { leptos_options, engine, hooks, auth };
    tracing::info!(address = %listener.local_addr()?, "listening; dashboard at http://{}", listener.local_addr()?);
    web::launch(listener, state, shutdown_signal()).await.context("while serving")?;
    cleanup.abort();
    let _ = stop_tx.send(true);
    loop_handle.await.context("while stopping the engine")?;
    if let Some(api) = metrics_api {
        api.await.context("external metrics API")?;
    }
    tracing::info!("stopped");
    Ok(Ok(()))
}

/// Completes on Ctrl-C or SIGTERM.
async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = ctrl_c => {},
        _ = terminate => {},
    }
    tracing::info!("shutting down");
}

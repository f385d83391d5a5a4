//! Client commands (`swell login`, `get`, `describe`, `apply`, `override`, …): they talk to
//! a running Swell through the dashboard's own server functions with an API token, so the
//! CLI and the pages share one API. Exit codes: 0 ok, 1 error, 2 usage, 3 not found,
//! 4 refused.

pub mod contexts;
mod import;
mod watch;
mod objects;
pub mod output;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Subcommand, ValueEnum};
use leptos::prelude::ServerFnError;
use leptos::server_fn::ServerFn;

use output::Format;

/// Why a client command failed, and so its exit code.
#[derive(Debug)]
pub enum Failure {
    Error(String),
    Usage(String),
    NotFound(String),
    Refused(String),
}

impl Failure {
    pub fn code(&self) -> u8 {
        match self {
            Failure::Error(_) => 1,
            Failure::Usage(_) => 2,
            Failure::NotFound(_) => 3,
            Failure::Refused(_) => 4,
        }
    }

    fn message(&self) -> &str {
        match self {
            Failure::Error(m) | Failure::Usage(m) | Failure::NotFound(m) | Failure::Refused(m) => m,
        }
    }
}

/// What every client command takes: which server, which tenant, which output.
#[derive(Args, Clone, Debug, Default)]
pub struct ClientOpts {
    /// A context of the CLI's config file (default: the current one; `swell context list`).
    #[arg(long)]
    pub context: Option<String>,
    /// The tenant to act in (default: the context's).
    #[arg(long)]
    pub tenant: Option<String>,
    /// Output format.
    #[arg(short = 'o', long, value_enum, default_value_t = Format::Table)]
    pub output: Format,
}

/// Why, and for how long, an object is held by hand (override, pause).
#[derive(Args, Clone, Debug)]
pub struct Hold {
    /// Why: kept in the audit log and shown with the object.
    #[arg(long)]
    pub reason: String,
    /// Lift it by itself after this long (e.g. 30m, 2h); default: until cleared.
    #[arg(long = "for", value_parser = humantime::parse_duration)]
    pub duration: Option<std::time::Duration>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Kind {
    /// ScaledObjects.
    #[value(name = "so", alias = "scaledobject", alias = "scaledobjects")]
    ScaledObjects,
    /// ScaledJobs.
    #[value(name = "sj", alias = "scaledjob", alias = "scaledjobs")]
    ScaledJobs,
    /// Webhooks and trigger authentications (names only, never values).
    #[value(name = "sources", alias = "source")]
    Sources,
    /// Clusters: connected, leader, objects, last sync error.
    #[value(name = "clusters", alias = "cluster")]
    Clusters,
    /// Forecast model versions of predictive ScaledObjects.
    #[value(name = "models", alias = "model")]
    Models,
    /// The decisions of one ScaledObject (NAME required).
    #[value(name = "decisions", alias = "decision")]
    Decisions,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum ObjectKind {
    /// A ScaledObject.
    #[value(name = "so", alias = "scaledobject", alias = "scaledobjects")]
    ScaledObject,
}

#[derive(Subcommand)]
pub enum ClientCommand {
    /// Log in to a running Swell with an API token and make it the current context.
    ///
    /// Example: swell token create cli --tenant team-a --role operator | swell login https://swell.example.com --token-stdin
    Login {
        /// The server, e.g. http://127.0.0.1:3000.
        url: String,
        /// Read the token from standard input (else it is asked for on the terminal).
        #[arg(long)]
        token_stdin: bool,
        /// The context's name (default: the server's host and port).
        #[arg(long)]
        context: Option<String>,
    },
    /// List or switch the servers the CLI has logged in to.
    ///
    /// Example: swell context use prod
    Context {
        #[command(subcommand)]
        command: ContextCommand,
    },
    /// List ScaledObjects (so), ScaledJobs (sj), sources, clusters, models, or an object's decisions.
    ///
    /// Example: swell get so -o wide; swell get decisions shop/orders --rule scale_to_zero --since 1h
    Get {
        kind: Kind,
        /// The ScaledObject (NAME or NAMESPACE/NAME) for `decisions`.
        name: Option<String>,
        /// decisions: only those of this rule (e.g. scale_to_metric).
        #[arg(long)]
        rule: Option<String>,
        /// decisions: only those of the last 15m, 1h, 6h, 24h or 7d.
        #[arg(long)]
        since: Option<String>,
        #[command(flatten)]
        opts: ClientOpts,
    },
    /// Everything about one ScaledObject: spec, status, triggers with their last values, the
    /// newest decisions with their explanations, forecast and anomalies.
    ///
    /// Example: swell describe so shop/orders
    Describe {
        kind: ObjectKind,
        /// NAME or NAMESPACE/NAME.
        name: String,
        #[command(flatten)]
        opts: ClientOpts,
    },
    /// Create or replace ScaledObjects from a manifest (Swell's or KEDA's; `-` reads stdin).
    ///
    /// Example: swell apply -f orders.yaml
    Apply {
        #[arg(short = 'f', long)]
        file: String,
        #[command(flatten)]
        opts: ClientOpts,
    },
    /// Delete a ScaledObject made in Swell (cluster-made ones are deleted in their cluster).
    ///
    /// Example: swell delete so shop/orders
    Delete {
        kind: ObjectKind,
        name: String,
        #[command(flatten)]
        opts: ClientOpts,
    },
    /// Fix a ScaledObject's replicas by hand, or clear that.
    ///
    /// Example: swell override set shop/orders 5 --reason "black friday" --for 2h
    Override {
        #[command(subcommand)]
        command: OverrideCommand,
    },
    /// Stop scaling a ScaledObject at its current replicas.
    ///
    /// Example: swell pause shop/orders --reason "db migration" --for 30m
    Pause {
        name: String,
        #[command(flatten)]
        hold: Hold,
        #[command(flatten)]
        opts: ClientOpts,
    },
    /// Clear an override or pause.
    ///
    /// Example: swell resume shop/orders
    Resume {
        name: String,
        #[command(flatten)]
        opts: ClientOpts,
    },
    /// Translate KEDA manifests (ScaledObject, ScaledJob, TriggerAuthentication,
    /// ClusterTriggerAuthentication) into Swell's, with a report of every field: kept,
    /// translated, unsupported (Swell refuses it) or dropped, with the reason. The manifests go
    /// to stdout (or --out), the report to stderr.
    ///
    /// Example: swell import-keda keda/ --out swell/; swell import-keda --from-cluster --kubeconfig ~/.kube/config
    ImportKeda {
        /// Files, folders (every .yaml/.yml in them) or - for stdin.
        paths: Vec<PathBuf>,
        /// Also read every keda.sh/v1alpha1 object of a cluster.
        #[arg(long)]
        from_cluster: bool,
        /// The cluster's kubeconfig for --from-cluster (default: $KUBECONFIG, ~/.kube/config).
        #[arg(long)]
        kubeconfig: Option<PathBuf>,
        /// Write one file per object into this folder instead of stdout.
        #[arg(long)]
        out: Option<PathBuf>,
        /// Report every field, kept ones too.
        #[arg(long)]
        all: bool,
        /// Exit 1 if any field is dropped or unsupported.
        #[arg(long)]
        strict: bool,
        /// The report's format (table on stderr, or json/yaml).
        #[arg(short = 'o', long, value_enum, default_value_t = Format::Table)]
        output: Format,
    },
    /// Follow one ScaledObject live (the dashboard's websocket): a line per change of its
    /// phase, replicas or metrics, and each decision with its explanation, until Ctrl-C.
    /// It reconnects after a lost connection; -o json prints each change as one JSON line.
    ///
    /// Example: swell watch so shop/orders
    Watch {
        #[arg(value_enum)]
        kind: WatchKind,
        /// NAME or NAMESPACE/NAME.
        name: String,
        #[command(flatten)]
        opts: ClientOpts,
    },
    /// Retrain or roll back a predictive ScaledObject's forecast model.
    ///
    /// Example: swell models rollback shop/orders 3
    Models {
        #[command(subcommand)]
        command: ModelsCommand,
    },
}

/// What `swell watch` follows.
#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum WatchKind {
    #[value(name = "so", alias = "scaledobject")]
    So,
}

#[derive(Subcommand)]
pub enum ContextCommand {
    /// The contexts, the current one marked.
    ///
    /// Example: swell context list -o json
    List {
        #[arg(short = 'o', long, value_enum, default_value_t = Format::Table)]
        output: Format,
    },
    /// Make a context the current one.
    ///
    /// Example: swell context use prod
    Use { name: String },
}

#[derive(Subcommand)]
pub enum OverrideCommand {
    /// Hold the object at REPLICAS until cleared or expired.
    ///
    /// Example: swell override set shop/orders 5 --reason "black friday" --for 2h
    Set {
        name: String,
        replicas: u32,
        #[command(flatten)]
        hold: Hold,
        #[command(flatten)]
        opts: ClientOpts,
    },
    /// Clear the override (or pause): the object scales by its triggers again.
    ///
    /// Example: swell override clear shop/orders
    Clear {
        name: String,
        #[command(flatten)]
        opts: ClientOpts,
    },
}

#[derive(Subcommand)]
pub enum ModelsCommand {
    /// Train a challenger at the next poll (kept only if it beats the champion); --wait
    /// follows the training (a spinner on a terminal) and prints its verdict.
    ///
    /// Example: swell models train shop/orders --wait
    Train {
        name: String,
        /// Wait for the new version and print whether it became the champion.
        #[arg(long)]
        wait: bool,
        /// How long --wait waits at most.
        #[arg(long, value_parser = humantime::parse_duration, default_value = "10m")]
        timeout: std::time::Duration,
        #[command(flatten)]
        opts: ClientOpts,
    },
    /// Make a kept version the champion again.
    ///
    /// Example: swell models rollback shop/orders 3
    Rollback {
        name: String,
        version: i32,
        #[command(flatten)]
        opts: ClientOpts,
    },
}

/// Runs a client command; prints its failure on stderr and maps it to the exit code.
pub fn run(command: ClientCommand) -> ExitCode {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("tokio runtime");
    match runtime.block_on(objects::dispatch(command)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(f) => {
            eprintln!("swell: {}", f.message());
            ExitCode::from(f.code())
        }
    }
}

/// The server a command talks to, set up for every server function call that follows.
pub struct Session {
    pub url: String,
    pub tenant: String,
    /// The API token (for the websocket of `swell watch`; never printed).
    token: String,
}

impl Session {
    /// Points the server functions' client at the context's server and token.
    pub fn open(opts: &ClientOpts) -> Result<Session, Failure> {
        let config = contexts::load()?;
        let (_, ctx) = config.context(opts.context.as_deref())?;
        Ok(Session::connect(&ctx.url, ctx.token, opts.tenant.clone().unwrap_or(ctx.tenant)))
    }

    pub fn connect(url: &str, token: String, tenant: String) -> Session {
        let url = url.trim_end_matches('/').to_string();
        // One server per process: the URL lives as long as the process.
        let _ = leptos::server_fn::client::try_set_server_url(Box::leak(url.clone().into_boxed_str()));
        app::client::set_token(token.clone());
        Session { url, tenant, token }
    }

    /// Calls a server function on the server; its error becomes a [`Failure`] by the answer's
    /// status (403 refused, 404 not found) with the server's own message.
    pub async fn call<F>(&self, f: F) -> Result<F::Output, Failure>
    where
        F: ServerFn<Error = ServerFnError>,
    {
        f.run_on_client().await.map_err(|e| self.failure(e))
    }

    fn failure(&self, e: ServerFnError) -> Failure {
        let msg = match e {
            ServerFnError::Request(m) => {
                return Failure::Error(format!("cannot reach Swell at {}: {m}; is it running, and is the context's URL right? (`swell context list`)", self.url));
            }
            ServerFnError::ServerError(m) => m,
            other => other.to_string(),
        };
        match app::client::last_status() {
            401 => Failure::Refused(format!("the API token was refused by {} (revoked or expired?): log in again with `swell login {} --token-stdin`", self.url, self.url)),
            403 => Failure::Refused(msg),
            404 => Failure::NotFound(msg),
            _ => Failure::Error(msg),
        }
    }
}

#[cfg(test)]
mod tests {
    /// The CLI of one build calls the server of another: a server function's path must not
    /// depend on where either was built (server_fn hashes the build folder in by default).
    #[test]
    fn server_function_paths_are_the_same_in_every_build() {
        let mut paths: Vec<String> = leptos::server_fn::axum::server_fn_paths().map(|(p, _)| p.to_string()).collect();
        assert!(paths.len() >= 18, "{paths:?}");
        paths.retain(|p| !p.strip_prefix("/api/").is_some_and(|name| !name.is_empty() && name.chars().all(|c| c.is_ascii_lowercase() || c == '_')));
        assert!(paths.is_empty(), "paths with a build-dependent part: {paths:?}");
    }
}

//! What each client command asks the server, and how it prints the answer.

use std::io::{IsTerminal, Read};

use app::api::{LoadObject, LoadOverview, ObjectDetail, ObjectRow, OverrideReplicas, PauseObject, ResumeObject};
use app::catalog::{LoadClusters, LoadJobs, LoadSources};
use app::editor::{ApplyYaml, DeleteObject};
use app::models::{LoadModels, RetrainModel, RollbackModel};

use super::output::{self, Format, Rows, fields, opt};
use super::{ClientCommand, ClientOpts, ContextCommand, Failure, Kind, ModelsCommand, OverrideCommand, Session, contexts};

pub async fn dispatch(command: ClientCommand) -> Result<(), Failure> {
    match command {
        ClientCommand::Login { url, token_stdin, context } => login(&url, token_stdin, context).await,
        ClientCommand::Context { command } => context(command),
        ClientCommand::Get { kind, name, rule, since, opts } => get(kind, name, rule, since, &opts).await,
        ClientCommand::Describe { name, opts, .. } => describe(&name, &opts).await,
        ClientCommand::Apply { file, opts } => apply(&file, &opts).await,
        ClientCommand::Watch { name, opts, .. } => {
            let (s, o) = object(&opts, &name).await?;
            super::watch::watch(&s, o, opts.output).await
        }
        ClientCommand::ImportKeda { paths, from_cluster, kubeconfig, out, all, strict, output } => {
            super::import::import_keda(super::import::Sources { paths, from_cluster, kubeconfig }, out, all, strict, output).await
        }
        ClientCommand::Delete { name, opts, .. } => {
            let (s, o) = object(&opts, &name).await?;
            s.call(DeleteObject { tenant: s.tenant.clone(), id: o.id, confirm: o.name.clone() }).await?;
            done(&format!("scaledobject {}/{} deleted", o.namespace, o.name))
        }
        ClientCommand::Override { command: OverrideCommand::Set { name, replicas, hold, opts } } => {
            let (s, o) = object(&opts, &name).await?;
            let call = OverrideReplicas { tenant: s.tenant.clone(), id: o.id, replicas: replicas.to_string(), reason: hold.reason, expires_minutes: minutes(hold.duration) };
            s.call(call).await?;
            done(&format!("scaledobject {}/{} held at {replicas} replicas{}", o.namespace, o.name, until(hold.duration)))
        }
        ClientCommand::Override { command: OverrideCommand::Clear { name, opts } } | ClientCommand::Resume { name, opts } => {
            let (s, o) = object(&opts, &name).await?;
            s.call(ResumeObject { tenant: s.tenant.clone(), id: o.id }).await?;
            done(&format!("scaledobject {}/{} scales by its triggers again", o.namespace, o.name))
        }
        ClientCommand::Pause { name, hold, opts } => {
            let (s, o) = object(&opts, &name).await?;
            s.call(PauseObject { tenant: s.tenant.clone(), id: o.id, reason: hold.reason, expires_minutes: minutes(hold.duration) }).await?;
            done(&format!("scaledobject {}/{} paused{}", o.namespace, o.name, until(hold.duration)))
        }
        ClientCommand::Models { command: ModelsCommand::Train { name, wait, timeout, opts } } => {
            let (s, o) = object(&opts, &name).await?;
            let before = newest_version(&s, o.id).await?;
            s.call(RetrainModel { tenant: s.tenant.clone(), id: o.id }).await?;
            if !wait {
                return done(&format!("scaledobject {}/{}: a challenger model trains at the next poll", o.namespace, o.name));
            }
            let trained = wait_for_version(&s, o.id, before, timeout).await?;
            let verdict = if trained.promoted { "the champion now" } else { "kept, not the champion" };
            let mae = trained.mae.map(app::charts::num).unwrap_or_else(|| "-".into());
            done(&format!("scaledobject {}/{}: model version {} ({}) is {verdict}: MAE {mae}; {}", o.namespace, o.name, trained.version, trained.kind, trained.reason))
        }
        ClientCommand::Models { command: ModelsCommand::Rollback { name, version, opts } } => {
            let (s, o) = object(&opts, &name).await?;
            s.call(RollbackModel { tenant: s.tenant.clone(), id: o.id, version }).await?;
            done(&format!("scaledobject {}/{}: model version {version} is the champion", o.namespace, o.name))
        }
    }
}

/// The session the options name and the object NAME names in its tenant.
async fn object(opts: &ClientOpts, name: &str) -> Result<(Session, ObjectRow), Failure> {
    let s = Session::open(opts)?;
    let o = resolve(&s, name).await?;
    Ok((s, o))
}

/// The newest kept model version of an object (0 for none).
async fn newest_version(s: &Session, id: i32) -> Result<i32, Failure> {
    let models = s.call(LoadModels { tenant: s.tenant.clone() }).await?;
    let object = models.into_iter().find(|m| m.id == id).ok_or_else(|| Failure::Usage("the object is not predictive: set spec.predictive.mode to on or forecastOnly".into()))?;
    Ok(object.versions.iter().map(|v| v.version).max().unwrap_or(0))
}

/// Polls the object's versions until one newer than `before` is stored (a spinner on a
/// terminal meanwhile), or `timeout` passes.
async fn wait_for_version(s: &Session, id: i32, before: i32, timeout: std::time::Duration) -> Result<app::models::VersionRow, Failure> {
    let spinner = std::io::stderr().is_terminal().then(|| {
        let b = indicatif::ProgressBar::new_spinner().with_message("training (at the next poll)");
        b.enable_steady_tick(std::time::Duration::from_millis(120));
        b
    });
    let deadline = std::time::Instant::now() + timeout;
    let found = loop {
        let models = s.call(LoadModels { tenant: s.tenant.clone() }).await?;
        let object = models.into_iter().find(|m| m.id == id);
        if let Some(v) = object.as_ref().and_then(|o| o.versions.iter().find(|v| v.version > before)) {
            break Ok(v.clone());
        }
        if let Some(status) = object.map(|o| o.status).filter(|st| st.contains("failed")) {
            break Err(Failure::Error(format!("training failed: {status}")));
        }
        if std::time::Instant::now() > deadline {
            break Err(Failure::Error(format!("no new model version after {}; the object's models page says why (`swell get models`)", humantime::format_duration(timeout))));
        }
        tokio::time::sleep(std::time::Duration::from_secs(1)).await;
    };
    if let Some(b) = spinner {
        b.finish_and_clear();
    }
    found
}

fn done(line: &str) -> Result<(), Failure> {
    println!("{line}");
    Ok(())
}

/// Minutes for a server function's `expires_minutes` (rounded up; empty for never).
fn minutes(d: Option<std::time::Duration>) -> String {
    d.map(|d| d.as_secs().div_ceil(60).max(1).to_string()).unwrap_or_default()
}

fn until(d: Option<std::time::Duration>) -> String {
    d.map(|d| format!(" for {}", humantime::format_duration(d))).unwrap_or_default()
}

async fn login(url: &str, token_stdin: bool, name: Option<String>) -> Result<(), Failure> {
    if !(url.starts_with("http://") || url.starts_with("https://")) {
        return Err(Failure::Usage(format!("URL: {url:?} is not a server address; give http(s)://host:port")));
    }
    let token = if token_stdin {
        let mut text = String::new();
        std::io::stdin().read_to_string(&mut text).map_err(|e| Failure::Error(format!("cannot read the token from stdin: {e}")))?;
        text.trim().to_string()
    } else if std::io::stdin().is_terminal() {
        rpassword::prompt_password("API token: ").map_err(|e| Failure::Error(format!("cannot read the token: {e}")))?.trim().to_string()
    } else {
        return Err(Failure::Usage("no token: pass --token-stdin and send it on standard input".into()));
    };
    if token.is_empty() {
        return Err(Failure::Usage("no token: the input was empty; create one with `swell token create NAME --tenant T --role R`".into()));
    }
    let s = Session::connect(url, token.clone(), String::new());
    let overview = s.call(LoadOverview { tenant: None }).await?;
    let name = name.unwrap_or_else(|| contexts::default_name(&s.url));
    let mut config = contexts::load()?;
    config.contexts.insert(name.clone(), contexts::Context { url: s.url.clone(), tenant: overview.tenant.clone(), token });
    config.current_context = Some(name.clone());
    let path = contexts::save(&config)?;
    done(&format!("logged in to {} as tenant {} ({} scaled objects); context {name} saved in {}", s.url, overview.tenant, overview.objects.len(), path.display()))
}

fn context(command: ContextCommand) -> Result<(), Failure> {
    let mut config = contexts::load()?;
    match command {
        ContextCommand::List { output } => {
            let current = config.current_context.clone();
            let list: Vec<serde_json::Value> = config
                .contexts
                .iter()
                .map(|(n, c)| serde_json::json!({"name": n, "url": c.url, "tenant": c.tenant, "current": current.as_deref() == Some(n)}))
                .collect();
            output::emit(output, &list, |_| Rows {
                headers: vec!["CURRENT", "NAME", "URL", "TENANT"],
                rows: config.contexts.iter().map(|(n, c)| vec![if current.as_deref() == Some(n) { "*".into() } else { String::new() }, n.clone(), c.url.clone(), c.tenant.clone()]).collect(),
            })
        }
        ContextCommand::Use { name } => {
            config.context(Some(&name))?;
            config.current_context = Some(name.clone());
            contexts::save(&config)?;
            done(&format!("current context: {name}"))
        }
    }
}

/// The object NAME or NAMESPACE/NAME names in the session's tenant.
async fn resolve(s: &Session, name: &str) -> Result<ObjectRow, Failure> {
    let overview = s.call(LoadOverview { tenant: Some(s.tenant.clone()) }).await?;
    let (namespace, short) = match name.split_once('/') {
        Some((ns, n)) => (Some(ns), n),
        None => (None, name),
    };
    let mut found: Vec<ObjectRow> = overview.objects.into_iter().filter(|o| o.name == short && namespace.is_none_or(|ns| o.namespace == ns)).collect();
    match found.len() {
        0 => Err(Failure::NotFound(format!("no ScaledObject {name:?} in tenant {}; `swell get so` lists them", s.tenant))),
        1 => Ok(found.remove(0)),
        _ => {
            let all: Vec<String> = found.iter().map(|o| format!("{}/{}", o.namespace, o.name)).collect();
            Err(Failure::Usage(format!("NAME: {name:?} is in several namespaces ({}); give NAMESPACE/NAME", all.join(", "))))
        }
    }
}

fn metric_text(metrics: &[(String, f64)]) -> String {
    metrics.iter().map(|(n, v)| format!("{n}={}", app::charts::num(*v))).collect::<Vec<_>>().join(", ")
}

fn object_rows(objects: &[ObjectRow], wide: bool) -> Rows {
    let mut headers = vec!["NAMESPACE", "NAME", "TARGET", "MIN", "MAX", "CURRENT", "DESIRED", "STATE", "METRIC"];
    if wide {
        headers.extend(["READY", "ORIGIN", "CLUSTER", "OVERRIDE", "ANOMALY", "ERROR"]);
    }
    let rows = objects
        .iter()
        .map(|o| {
            let mut row = vec![
                o.namespace.clone(),
                o.name.clone(),
                o.target.clone(),
                o.min_replicas.to_string(),
                o.max_replicas.to_string(),
                opt(o.current_replicas),
                opt(o.desired_replicas),
                o.phase.clone(),
                metric_text(&o.metrics),
            ];
            if wide {
                row.extend([opt(o.ready_replicas), o.origin.clone(), o.cluster.clone(), opt(o.override_.clone()), opt(o.anomaly.clone()), opt(o.error.clone())]);
            }
            row
        })
        .collect();
    Rows { headers, rows }
}

async fn get(kind: Kind, name: Option<String>, rule: Option<String>, since: Option<String>, opts: &ClientOpts) -> Result<(), Failure> {
    if kind != Kind::Decisions && name.is_some() {
        return Err(Failure::Usage("NAME: only `get decisions NAME` takes a name; use `swell describe so NAME` for one object".into()));
    }
    let s = Session::open(opts)?;
    let tenant = s.tenant.clone();
    let format = opts.output;
    match kind {
        Kind::ScaledObjects => {
            let overview = s.call(LoadOverview { tenant: Some(tenant) }).await?;
            output::emit(format, &overview.objects, |wide| object_rows(&overview.objects, wide))
        }
        Kind::ScaledJobs => {
            let jobs = s.call(LoadJobs { tenant }).await?;
            output::emit(format, &jobs, |wide| {
                let mut headers = vec!["NAMESPACE", "NAME", "STRATEGY", "QUEUE", "RUNNING", "PENDING", "SUCCEEDED", "FAILED", "MAX", "PAUSED"];
                if wide {
                    headers.extend(["CLUSTER", "POLLED", "ERROR", "EXPLANATION"]);
                }
                let rows = jobs
                    .iter()
                    .map(|j| {
                        let mut row = vec![j.namespace.clone(), j.name.clone(), j.strategy.clone()];
                        row.extend([j.queue, j.running, j.pending, j.succeeded, j.failed, j.max_replicas].map(|n| n.to_string()));
                        row.push(j.paused.to_string());
                        if wide {
                            row.extend([j.cluster.clone(), j.at.clone(), opt(j.error.clone()), j.explanation.clone()]);
                        }
                        row
                    })
                    .collect();
                Rows { headers, rows }
            })
        }
        Kind::Sources => {
            let sources = s.call(LoadSources { tenant }).await?;
            output::emit(format, &sources, |_| {
                let hooks = sources.webhooks.iter().map(|w| vec!["webhook".into(), String::new(), w.name.clone(), format!("value {}, last push {}", app::charts::num(w.value), opt(w.last_push.clone()))]);
                let auths = sources.trigger_auths.iter().map(|a| vec![a.kind.clone(), a.namespace.clone(), a.name.clone(), format!("parameters: {}", a.parameters.join(", "))]);
                Rows { headers: vec!["KIND", "NAMESPACE", "NAME", "DETAIL"], rows: hooks.chain(auths).collect() }
            })
        }
        Kind::Clusters => {
            let clusters = s.call(LoadClusters { tenant }).await?;
            output::emit(format, &clusters, |_| Rows {
                headers: vec!["NAME", "KIND", "CONNECTED", "LEADER", "OBJECTS", "LAST SYNC ERROR"],
                rows: clusters.iter().map(|c| vec![c.name.clone(), c.kind.clone(), c.connected.to_string(), c.leader.to_string(), c.objects.to_string(), opt(c.last_sync_error.clone())]).collect(),
            })
        }
        Kind::Models => {
            let models = s.call(LoadModels { tenant }).await?;
            output::emit(format, &models, |wide| {
                let mut headers = vec!["OBJECT", "VERSION", "KIND", "CREATED", "MAE", "CHAMPION", "PROMOTED"];
                if wide {
                    headers.extend(["TRAINED ON", "MAPE", "REASON"]);
                }
                let rows = models
                    .iter()
                    .flat_map(|m| m.versions.iter().map(move |v| (m, v)))
                    .map(|(m, v)| {
                        let mut row = vec![m.name.clone(), v.version.to_string(), v.kind.clone(), v.created_at.clone(), opt(v.mae.map(app::charts::num)), v.is_champion.to_string(), v.promoted.to_string()];
                        if wide {
                            row.extend([v.trained.clone(), opt(v.mape.map(app::charts::num)), v.reason.clone()]);
                        }
                        row
                    })
                    .collect();
                Rows { headers, rows }
            })
        }
        Kind::Decisions => {
            let name = name.ok_or_else(|| Failure::Usage("NAME: `get decisions` needs the ScaledObject, e.g. `swell get decisions shop/orders`".into()))?;
            let o = resolve(&s, &name).await?;
            let detail = s.call(LoadObject { tenant, id: o.id, rule, since }).await?;
            output::emit(format, &detail.decisions, |_| decision_rows(&detail, usize::MAX))
        }
    }
}

fn decision_rows(detail: &ObjectDetail, most: usize) -> Rows {
    Rows {
        headers: vec!["TIME (UTC)", "STATE", "RULE", "REPLICAS", "WHY"],
        rows: detail.decisions.iter().take(most).map(|d| vec![d.at.clone(), d.state.clone(), d.rule.clone(), format!("{} -> {}", d.prev_replicas, d.new_replicas), d.explanation.clone()]).collect(),
    }
}

async fn describe(name: &str, opts: &ClientOpts) -> Result<(), Failure> {
    let s = Session::open(opts)?;
    let o = resolve(&s, name).await?;
    let detail = s.call(LoadObject { tenant: s.tenant.clone(), id: o.id, rule: None, since: None }).await?;
    if matches!(opts.output, Format::Json | Format::Yaml) {
        return output::emit(opts.output, &detail, |_| unreachable!("json and yaml print the answer itself"));
    }
    let r = &detail.object;
    let summary = fields(&[
        ("Name", r.name.clone()),
        ("Namespace", r.namespace.clone()),
        ("Tenant", detail.tenant.clone()),
        ("Cluster", r.cluster.clone()),
        ("Origin", r.origin.clone()),
        ("Target", r.target.clone()),
        ("Replicas", format!("{} current, {} ready, {} desired (min {}, max {})", opt(r.current_replicas), opt(r.ready_replicas), opt(r.desired_replicas), r.min_replicas, r.max_replicas)),
        ("State", r.phase.clone()),
        ("Override", opt(r.override_.clone())),
        ("Error", opt(r.error.clone())),
        ("Anomaly", opt(r.anomaly.clone())),
        ("Forecast", r.forecast.clone().unwrap_or_else(|| "not predictive".into())),
        ("Model", opt(r.model_status.clone())),
        ("Last decision", opt(r.last_decision.clone())),
    ]);
    let triggers = Rows {
        headers: vec!["TYPE", "METRIC", "LAST VALUE", "TARGET", "ACTIVATION", "LATENCY", "ERROR"],
        rows: r
            .triggers
            .iter()
            .map(|t| vec![t.kind.clone(), t.metric.clone(), opt(t.last.map(app::charts::num)), app::charts::num(t.target), app::charts::num(t.activation_target), format!("{} ms", t.latency_ms), opt(t.error.clone())])
            .collect(),
    };
    println!("{summary}\n\nTriggers:\n{}\n\nDecisions (newest first):\n{}", output::render(&triggers), output::render(&decision_rows(&detail, 10)));
    Ok(())
}

/// The documents of a manifest file (`---` between them), empty ones dropped.
fn documents(text: &str) -> Vec<String> {
    let mut docs = vec![String::new()];
    for line in text.lines() {
        if line.trim_end() == "---" {
            docs.push(String::new());
        } else {
            let doc = docs.last_mut().expect("one document at least");
            doc.push_str(line);
            doc.push('\n');
        }
    }
    docs.into_iter().filter(|d| d.lines().any(|l| !l.trim().is_empty() && !l.trim_start().starts_with('#'))).collect()
}

/// Applies every ScaledObject of the file, after checking that each document is one: a file
/// with something else in it applies nothing.
async fn apply(file: &str, opts: &ClientOpts) -> Result<(), Failure> {
    let text = if file == "-" {
        let mut t = String::new();
        std::io::stdin().read_to_string(&mut t).map_err(|e| Failure::Error(format!("cannot read the manifest from stdin: {e}")))?;
        t
    } else {
        std::fs::read_to_string(file).map_err(|e| Failure::Error(format!("-f {file}: {e}")))?
    };
    let docs = documents(&text);
    if docs.is_empty() {
        return Err(Failure::Usage(format!("-f {file}: no manifest in it")));
    }
    // Every document is checked before any is applied; each keeps its namespace/name to report.
    let mut checked = Vec::with_capacity(docs.len());
    for (i, doc) in docs.into_iter().enumerate() {
        let mut value: serde_json::Value = serde_saphyr::from_str(&doc).map_err(|e| Failure::Usage(format!("-f {file}: document {}: yaml: {e}", i + 1)))?;
        let mut doc = doc;
        // KEDA's manifests are translated here; one that would lose a field applies nothing.
        if value.get("apiVersion").and_then(|v| v.as_str()) == Some(engine::keda::KEDA_API_VERSION) {
            let imported = engine::keda::import(&value).map_err(|e| Failure::Usage(format!("-f {file}: document {}: {e}", i + 1)))?;
            let lost: Vec<String> = imported.blocking().map(|e| format!("{}: {}", e.path, e.reason)).collect();
            if !lost.is_empty() {
                return Err(Failure::Usage(format!("-f {file}: document {}: KEDA fields Swell cannot take (nothing was applied; `swell import-keda {file}` reports every field):\n  {}", i + 1, lost.join("\n  "))));
            }
            value = imported.manifest;
            doc = serde_saphyr::to_string(&value).map_err(|e| Failure::Error(format!("yaml: {e}")))?;
        }
        let kind = value.get("kind").and_then(|k| k.as_str()).unwrap_or("(no kind)");
        if kind != "ScaledObject" {
            return Err(Failure::Usage(format!("-f {file}: document {}: kind {kind:?}: only ScaledObjects are applied over the API (nothing was applied); trigger authentication: `swell auth add`", i + 1)));
        }
        let meta = |k: &str| value.pointer(&format!("/metadata/{k}")).and_then(|v| v.as_str()).unwrap_or("default").to_string();
        checked.push((doc, format!("{}/{}", meta("namespace"), meta("name"))));
    }
    let s = Session::open(opts)?;
    let bar = (checked.len() > 1 && std::io::stderr().is_terminal()).then(|| indicatif::ProgressBar::new(checked.len() as u64));
    for (doc, name) in checked {
        let id = s.call(ApplyYaml { tenant: s.tenant.clone(), yaml: doc }).await?;
        let line = format!("scaledobject {name} applied (id {id})");
        match &bar {
            Some(b) => {
                b.println(&line);
                b.inc(1);
            }
            None => println!("{line}"),
        }
    }
    if let Some(b) = bar {
        b.finish_and_clear();
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn documents_split_on_separators_and_skip_empty_ones() {
        let docs = documents("---\n# only a comment\n---\nkind: ScaledObject\nmetadata:\n  name: a\n---\n\n---\nkind: ScaledObject\n");
        assert_eq!(docs.len(), 2, "{docs:?}");
        assert!(docs[0].contains("name: a"));
    }

    #[test]
    fn durations_round_up_to_whole_minutes() {
        assert_eq!(minutes(None), "");
        assert_eq!(minutes(Some(std::time::Duration::from_secs(30))), "1");
        assert_eq!(minutes(Some(std::time::Duration::from_secs(61))), "2");
        assert_eq!(minutes(Some(std::time::Duration::from_secs(7200))), "120");
    }
}

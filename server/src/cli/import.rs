//! `swell import-keda`: KEDA manifests (files, folders, stdin or a cluster) written as Swell's,
//! with a report of every field kept, translated, unsupported or dropped.

use std::io::{IsTerminal, Read};
use std::path::{Path, PathBuf};

use engine::keda::{self, Imported, Outcome};
use serde_json::Value;

use super::{Failure, Format, output};

/// Where the KEDA manifests come from.
pub struct Sources {
    pub paths: Vec<PathBuf>,
    pub from_cluster: bool,
    pub kubeconfig: Option<PathBuf>,
}

pub async fn import_keda(sources: Sources, out: Option<PathBuf>, all: bool, strict: bool, format: Format) -> Result<(), Failure> {
    let mut docs: Vec<(String, Value)> = Vec::new();
    for path in &sources.paths {
        read_path(path, &mut docs)?;
    }
    if sources.from_cluster {
        from_cluster(sources.kubeconfig.as_deref(), &mut docs).await?;
    }
    if docs.is_empty() {
        return Err(Failure::Usage("no KEDA manifest found: give files or folders (or - for stdin), or --from-cluster".into()));
    }
    let bar = (docs.len() > 1 && std::io::stderr().is_terminal()).then(|| indicatif::ProgressBar::new(docs.len() as u64));
    let mut imported = Vec::with_capacity(docs.len());
    for (origin, doc) in &docs {
        // Only keda.sh documents are translated; the rest of a file (Secrets, Deployments) is not ours.
        if doc.get("apiVersion").and_then(Value::as_str) != Some(keda::KEDA_API_VERSION) {
            continue;
        }
        let one = keda::import(doc).map_err(|e| Failure::Usage(format!("{origin}: {e}")))?;
        imported.push(one);
        if let Some(b) = &bar {
            b.inc(1);
        }
    }
    if let Some(b) = bar {
        b.finish_and_clear();
    }
    if imported.is_empty() {
        return Err(Failure::Usage(format!("no keda.sh/v1alpha1 object among the {} documents read", docs.len())));
    }
    write(&imported, out.as_deref())?;
    report(&imported, all, format)?;
    let blocking: usize = imported.iter().map(|i| i.blocking().count()).sum();
    if strict && blocking > 0 {
        return Err(Failure::Error(format!("{blocking} field(s) dropped or unsupported (see the report); --strict refuses that")));
    }
    Ok(())
}

/// Reads a file, every `.yaml`/`.yml` file of a folder, or stdin (`-`).
fn read_path(path: &Path, docs: &mut Vec<(String, Value)>) -> Result<(), Failure> {
    if path.as_os_str() == "-" {
        let mut text = String::new();
        std::io::stdin().read_to_string(&mut text).map_err(|e| Failure::Error(format!("cannot read stdin: {e}")))?;
        return parse("stdin", &text, docs);
    }
    let meta = std::fs::metadata(path).map_err(|e| Failure::Usage(format!("{}: {e}", path.display())))?;
    if meta.is_dir() {
        let mut files: Vec<PathBuf> = std::fs::read_dir(path)
            .map_err(|e| Failure::Error(format!("{}: {e}", path.display())))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.is_dir() || p.extension().is_some_and(|x| x == "yaml" || x == "yml"))
            .collect();
        files.sort();
        for f in files {
            read_path(&f, docs)?;
        }
        return Ok(());
    }
    let text = std::fs::read_to_string(path).map_err(|e| Failure::Usage(format!("{}: {e}", path.display())))?;
    parse(&path.display().to_string(), &text, docs)
}

fn parse(origin: &str, text: &str, docs: &mut Vec<(String, Value)>) -> Result<(), Failure> {
    let values: Vec<Value> = serde_saphyr::from_multiple(text).map_err(|e| Failure::Usage(format!("{origin}: yaml: {e}")))?;
    for (i, v) in values.into_iter().filter(|v| !v.is_null()).enumerate() {
        docs.push((format!("{origin} document {}", i + 1), v));
    }
    Ok(())
}

/// Lists every `keda.sh/v1alpha1` object the kubeconfig's cluster has.
async fn from_cluster(kubeconfig: Option<&Path>, docs: &mut Vec<(String, Value)>) -> Result<(), Failure> {
    use kube::api::{Api, DynamicObject};
    engine::init_tls();
    let client = match kubeconfig {
        Some(p) => {
            let text = std::fs::read_to_string(p).map_err(|e| Failure::Usage(format!("--kubeconfig {}: {e}", p.display())))?;
            engine::sync::client_from_kubeconfig(&text).await.map_err(|e| Failure::Usage(e.to_string()))?
        }
        None => kube::Client::try_default().await.map_err(|e| Failure::Usage(format!("no kubeconfig: {e}; give --kubeconfig FILE")))?,
    };
    use keda::Kind;
    for kind in [Kind::ScaledObject, Kind::ScaledJob, Kind::TriggerAuthentication, Kind::ClusterTriggerAuthentication] {
        let (ar, plural, kind) = (keda::resource(kind), kind.plural(), kind.as_str());
        let api: Api<DynamicObject> = Api::all_with(client.clone(), &ar);
        let list = match api.list(&Default::default()).await {
            Ok(l) => l,
            Err(kube::Error::Api(e)) if e.code == 404 => continue, // KEDA's CRD is not installed
            Err(e) => return Err(Failure::Error(format!("listing keda.sh {plural}: {e}"))),
        };
        for item in list.items {
            let name = format!("cluster {kind} {}/{}", item.metadata.namespace.clone().unwrap_or_default(), item.metadata.name.clone().unwrap_or_default());
            let mut v = serde_json::to_value(&item).map_err(|e| Failure::Error(format!("{name}: {e}")))?;
            v["apiVersion"] = keda::KEDA_API_VERSION.into();
            v["kind"] = kind.into();
            docs.push((name, v));
        }
    }
    Ok(())
}

/// Swell's manifests: one file per object in `out`, else all of them on stdout.
fn write(imported: &[Imported], out: Option<&Path>) -> Result<(), Failure> {
    let yaml = |i: &Imported| serde_saphyr::to_string(&i.manifest).map_err(|e| Failure::Error(format!("{}: {e}", i.display_name())));
    match out {
        Some(dir) => {
            std::fs::create_dir_all(dir).map_err(|e| Failure::Error(format!("--out {}: {e}", dir.display())))?;
            for i in imported {
                let file = dir.join(format!("{}-{}.yaml", i.kind.as_str().to_ascii_lowercase(), i.display_name().replace('/', "-")));
                std::fs::write(&file, yaml(i)?).map_err(|e| Failure::Error(format!("{}: {e}", file.display())))?;
                eprintln!("wrote {}", file.display());
            }
        }
        None => {
            for i in imported {
                println!("---\n{}", yaml(i)?.trim_end());
            }
        }
    }
    Ok(())
}

/// The report on stderr (stdout may carry the manifests): one line per field that did not
/// stay as it was (every field with --all), then a summary per object.
fn report(imported: &[Imported], all: bool, format: Format) -> Result<(), Failure> {
    if matches!(format, Format::Json | Format::Yaml) {
        let value: Vec<Value> = imported
            .iter()
            .map(|i| serde_json::json!({"kind": i.kind, "object": i.display_name(), "fields": i.report.iter().filter(|e| all || e.outcome != Outcome::Kept).collect::<Vec<_>>()}))
            .collect();
        let text = if format == Format::Json { serde_json::to_string_pretty(&value).unwrap_or_default() } else { serde_saphyr::to_string(&value).unwrap_or_default() };
        eprintln!("{text}");
        return Ok(());
    }
    let mut rows = output::Rows { headers: vec!["OBJECT", "FIELD", "OUTCOME", "TO / REASON"], rows: Vec::new() };
    for i in imported {
        for e in i.report.iter().filter(|e| all || e.outcome != Outcome::Kept) {
            let outcome = format!("{:?}", e.outcome).to_ascii_lowercase();
            rows.rows.push(vec![format!("{} {}", i.kind.as_str(), i.display_name()), e.path.clone(), outcome, e.to.clone().unwrap_or_else(|| e.reason.clone())]);
        }
    }
    if !rows.rows.is_empty() {
        eprintln!("{}\n", output::render(&rows));
    }
    for i in imported {
        let n = |o: Outcome| i.report.iter().filter(|e| e.outcome == o).count();
        eprintln!(
            "{} {}: {} kept, {} translated, {} unsupported, {} dropped{}",
            i.kind.as_str(),
            i.display_name(),
            n(Outcome::Kept),
            n(Outcome::Translated),
            n(Outcome::Unsupported),
            n(Outcome::Dropped),
            if i.blocking().next().is_none() { " — nothing lost" } else { "" }
        );
    }
    Ok(())
}

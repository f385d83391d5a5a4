//! How client commands print: a table sized to the terminal (`table`, `wide`), or the
//! server function's own answer as JSON or YAML for scripts. Colour only on a terminal,
//! never with `NO_COLOR` set.

use std::io::IsTerminal;

use comfy_table::{Attribute, Cell, ContentArrangement, Table, presets};
use serde::Serialize;

use super::Failure;

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// Columns that fit a terminal.
    #[default]
    Table,
    /// Every column.
    Wide,
    /// The server's answer as JSON.
    Json,
    /// The server's answer as YAML.
    Yaml,
}

/// Rows for the table formats; `wide` asks for every column.
pub struct Rows {
    pub headers: Vec<&'static str>,
    pub rows: Vec<Vec<String>>,
}

/// Colour and bold on a terminal, unless `NO_COLOR` is set (https://no-color.org).
pub fn colour() -> bool {
    std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
}

/// Prints `value` as asked: tables through `rows`, JSON and YAML from `value` itself.
pub fn emit<T: Serialize>(format: Format, value: &T, rows: impl FnOnce(bool) -> Rows) -> Result<(), Failure> {
    match format {
        Format::Json => println!("{}", serde_json::to_string_pretty(value).map_err(|e| Failure::Error(format!("json: {e}")))?),
        Format::Yaml => print!("{}", serde_saphyr::to_string(value).map_err(|e| Failure::Error(format!("yaml: {e}")))?),
        Format::Table | Format::Wide => println!("{}", render(&rows(format == Format::Wide))),
    }
    Ok(())
}

/// A kubectl-like table: no borders, upper-case headers, wrapped to the terminal's width.
pub fn render(rows: &Rows) -> String {
    let mut table = Table::new();
    table.load_style(presets::NOTHING).set_content_arrangement(ContentArrangement::Dynamic);
    let bold = colour();
    table.set_header(rows.headers.iter().map(|h| if bold { Cell::new(h).add_attribute(Attribute::Bold) } else { Cell::new(h) }));
    for row in &rows.rows {
        table.add_row(row.iter().map(Cell::new));
    }
    // kubectl's look: columns flush left, two spaces between them.
    for column in table.column_iter_mut() {
        column.set_padding((0, 2));
    }
    if rows.rows.is_empty() {
        return format!("{}\n(none)", table.lines().next().unwrap_or_default().trim_end());
    }
    table.lines().map(|l| l.trim_end().to_string()).collect::<Vec<_>>().join("\n")
}

/// `label: value` lines, labels aligned (describe).
pub fn fields(pairs: &[(&str, String)]) -> String {
    let width = pairs.iter().map(|(k, _)| k.len()).max().unwrap_or(0) + 1;
    pairs.iter().map(|(k, v)| format!("{:<width$} {v}", format!("{k}:"))).collect::<Vec<_>>().join("\n")
}

/// An optional number as the dashboard shows it.
pub fn opt<T: ToString>(v: Option<T>) -> String {
    v.map_or_else(|| "-".to_string(), |v| v.to_string())
}

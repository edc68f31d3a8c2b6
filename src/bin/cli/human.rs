//! The human-readable report: tables, errors grouped by table with
//! entry:line and an excerpt, warnings, and a one-line verdict.

use std::borrow::Cow;
use std::io::{self, Write};
use std::time::Duration;

use snappack::report::{Code, Finding, NumberSource, Report};

/// Writes the report for people.
pub fn print(
    out: &mut impl Write,
    name: &str,
    report: &Report,
    elapsed: Duration,
    color: bool,
) -> io::Result<()> {
    let paint = |code: &str, text: &str| {
        if color {
            format!("\x1b[{code}m{text}\x1b[0m")
        } else {
            text.to_owned()
        }
    };
    let name = shown(name);
    writeln!(
        out,
        "{name} ({}): {}, {}, {}{}",
        report.format,
        plural(report.tables.len() as u64, "table"),
        plural(report.documents, "document"),
        bytes(report.bytes),
        if report.storage.files > 0 {
            format!(", {}", plural(report.storage.files, "stored file"))
        } else {
            String::new()
        }
    )?;
    if !report.tables.is_empty() {
        let rows: Vec<[String; 6]> = report
            .tables
            .iter()
            .map(|t| {
                [
                    shown(&t.component).into_owned(),
                    shown(&t.name).into_owned(),
                    t.number.map_or("-".into(), |n| n.to_string()),
                    source(t.number_source).into(),
                    count(t.documents),
                    bytes(t.bytes),
                ]
            })
            .collect();
        let header = ["component", "table", "number", "from", "documents", "size"];
        let mut widths = header.map(str::len);
        for row in &rows {
            for (w, cell) in widths.iter_mut().zip(row) {
                *w = (*w).max(cell.len());
            }
        }
        let show_component = report.tables.iter().any(|t| !t.component.is_empty());
        let line = |cells: &[String; 6]| {
            let mut s = String::from(" ");
            for (i, cell) in cells.iter().enumerate() {
                if i == 0 && !show_component {
                    continue;
                }
                if i >= 4 {
                    s.push_str(&format!(" {:>w$}", cell, w = widths[i]));
                } else {
                    s.push_str(&format!(" {:<w$}", cell, w = widths[i]));
                }
            }
            s.trim_end().to_owned()
        };
        writeln!(out)?;
        writeln!(out, "{}", paint("1", &line(&header.map(String::from))))?;
        for row in &rows {
            writeln!(out, "{}", line(row))?;
        }
    }
    if !report.errors.is_empty() {
        writeln!(out)?;
        writeln!(
            out,
            "{}",
            paint("1;31", &format!("Errors ({}):", count(report.error_count)))
        )?;
        print_grouped(out, &report.errors, &|s| paint("31", s), &|s| paint("2", s))?;
    }
    if !report.warnings.is_empty() {
        writeln!(out)?;
        writeln!(
            out,
            "{}",
            paint(
                "1;33",
                &match report.warnings.len() as u64 {
                    listed if listed < report.warning_count => format!(
                        "Warnings (the first {} of {}):",
                        count(listed),
                        count(report.warning_count)
                    ),
                    listed => format!("Warnings ({}):", count(listed)),
                }
            )
        )?;
        print_grouped(out, &report.warnings, &|s| paint("33", s), &|s| {
            paint("2", s)
        })?;
    }
    writeln!(out)?;
    let took = format!("checked in {:.2}s", elapsed.as_secs_f64());
    if report.valid {
        // A single-table file (JSONL, JSON, CSV) is one table's rows, not a snapshot.
        let verdict = if report.tables.is_empty() {
            "VALID, but empty: Convex would import this snapshot, which has no tables (in replaceAll mode, that deletes every table)."
        } else if report.format == "zip" {
            "VALID: Convex would import this snapshot."
        } else {
            "VALID: Convex would import this file."
        };
        writeln!(out, "{} {took}", paint("1;32", verdict))
    } else {
        let tables = {
            let mut t: Vec<(&str, &str)> = report
                .errors
                .iter()
                .filter_map(|f| f.table.as_deref().map(|t| (f.component.as_str(), t)))
                .collect();
            t.sort();
            t.dedup();
            t.len()
        };
        // Errors of snappack's own (options, reading, names it cannot
        // tell apart) are not Convex's verdict.
        let own = |f: &Finding| {
            super::about_options(report, f)
                || matches!(f.code, Code::ReadFailed | Code::DuplicateEntryName)
        };
        if let Some(hint) = format_hint(&name, report) {
            writeln!(out, "{hint}")?;
        }
        let verdict =
            if report.error_count > report.errors.len() as u64 || !report.errors.iter().all(own) {
                "Convex would reject this import"
            } else if super::only_option_errors(report) {
                "fix the options: nothing was checked"
            } else {
                "snappack could not check all of the input"
            };
        writeln!(
            out,
            "{} {took}",
            paint(
                "1;31",
                &format!(
                    "INVALID: {} error{}{}; {verdict}.",
                    count(report.error_count),
                    if report.error_count == 1 { "" } else { "s" },
                    match (tables, report.errors.len() as u64) {
                        (0, _) => String::new(),
                        (tables, listed) if listed < report.error_count => format!(
                            ", the {} listed in {}",
                            count(listed),
                            plural(tables as u64, "table")
                        ),
                        (tables, _) => format!(" in {}", plural(tables as u64, "table")),
                    }
                )
            )
        )
    }
}

/// What a single-table file needs that Convex's words do not say: its
/// table (`--table`), or, for a file of the other JSON format than the one
/// it was read as (JSON lines named .json, a JSON array named .jsonl), that
/// format; `None` for other reports.
fn format_hint(name: &str, report: &Report) -> Option<String> {
    // A single-table file given without its table: Convex's message names
    // no option.
    if report
        .errors
        .iter()
        .any(|e| e.code == Code::InvalidName && e.message.ends_with("import requires table name"))
    {
        return Some(format!(
            "{name} is one table's documents: give the table to import them into with --table NAME."
        ));
    }
    // A second value after the first: one document a line.
    let lines = report.format == "json"
        && report
            .errors
            .iter()
            .any(|e| e.code == Code::NotJson && e.message.contains("trailing characters"));
    // Its first line opens an array: one JSON array of documents.
    let array = report.format == "jsonl"
        && report.errors.iter().any(|e| {
            e.line == Some(1)
                && e.excerpt
                    .as_deref()
                    .is_some_and(|excerpt| excerpt.trim_start().starts_with('['))
        });
    match (lines, array) {
        (true, _) => Some(format!(
            "{name} holds more than one JSON value: if it has one document a line (JSON lines), \
             give --format jsonl (or name it .jsonl)."
        )),
        (_, true) => Some(format!(
            "{name} starts with [: if it is one JSON array of documents, give --format json (or \
             name it .json)."
        )),
        _ => None,
    }
}

/// Findings grouped by (component, table), in the order first met.
fn print_grouped(
    out: &mut impl Write,
    findings: &[Finding],
    code_paint: &dyn Fn(&str) -> String,
    dim: &dyn Fn(&str) -> String,
) -> io::Result<()> {
    type Group<'a> = ((&'a str, Option<&'a str>), Vec<&'a Finding>);
    let mut groups: Vec<Group> = Vec::new();
    for f in findings {
        let key = (f.component.as_str(), f.table.as_deref());
        match groups.iter_mut().find(|(k, _)| *k == key) {
            Some((_, list)) => list.push(f),
            None => groups.push((key, vec![f])),
        }
    }
    for ((component, table), list) in groups {
        let title = match (component, table) {
            (_, None) => "archive".to_owned(),
            ("", Some(t)) => shown(t).into_owned(),
            (c, Some(t)) => format!("{}/{}", shown(c), shown(t)),
        };
        writeln!(out, "  {title}")?;
        for f in list {
            let mut place = match (&f.entry, f.line) {
                (Some(e), Some(l)) => format!("{}:{l}", clipped(e, ENTRY_LEN)),
                (Some(e), None) => clipped(e, ENTRY_LEN),
                (None, Some(l)) => format!("line {l}"),
                (None, None) => String::new(),
            };
            if let Some(field) = &f.field {
                place.push_str(&format!(" field {}", clipped(field, FIELD_LEN)));
            }
            if !place.is_empty() {
                place.push(' ');
            }
            writeln!(
                out,
                "    {place}{} {}",
                code_paint(f.code.as_str()),
                clipped(&f.message, MESSAGE_LEN)
            )?;
            if let Some(excerpt) = &f.excerpt {
                writeln!(out, "      {}", dim(&shown(excerpt)))?;
            }
        }
    }
    Ok(())
}

/// The most characters of an entry name, a field path and a message shown
/// in a finding: they can hold names and values from the input of any
/// length (the JSON report has them whole).
const ENTRY_LEN: usize = 200;
const FIELD_LEN: usize = 100;
const MESSAGE_LEN: usize = 400;

/// `text` [`shown`], and at most `max` characters of it: a longer one keeps
/// its start and its end (where a message says what is wrong) around `...`,
/// as line excerpts are cut.
fn clipped(text: &str, max: usize) -> String {
    let text = shown(text);
    let count = text.chars().count();
    if count <= max {
        return text.into_owned();
    }
    let head = max * 2 / 3;
    let tail = max - head - 3;
    let mut out: String = text.chars().take(head).collect();
    out.push_str("...");
    out.extend(text.chars().skip(count - tail));
    out
}

/// Text from the input, safe to print on a terminal: control characters
/// (an escape sequence could retitle or clear it) and bidirectional
/// formatting characters (which reorder what follows them on the screen)
/// are written as `\u{1b}`.
pub(super) fn shown(text: &str) -> Cow<'_, str> {
    if !text.chars().any(unsafe_on_a_terminal) {
        return Cow::Borrowed(text);
    }
    Cow::Owned(
        text.chars()
            .map(|c| match unsafe_on_a_terminal(c) {
                true => c.escape_unicode().to_string(),
                false => c.to_string(),
            })
            .collect(),
    )
}

/// A control character, or one of Unicode's bidirectional formatting
/// characters (marks, embeddings, overrides and isolates).
fn unsafe_on_a_terminal(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{061c}' | '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}'
        )
}

fn source(s: NumberSource) -> &'static str {
    match s {
        NumberSource::Tables => "_tables",
        NumberSource::Id => "_id",
        NumberSource::Target => "target",
        NumberSource::Unassigned => "server",
    }
}

/// A byte count in B, KB, MB or GB (decimal units).
pub fn bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KB", "MB", "GB", "TB"];
    let mut value = n as f64;
    let mut unit = 0;
    while value >= 1000.0 && unit + 1 < UNITS.len() {
        value /= 1000.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{n} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

/// A count with thousands separators.
pub use snappack::report::grouped as count;

/// "1 table", "2 tables", "1,000 tables".
pub fn plural(n: u64, noun: &str) -> String {
    format!("{} {noun}{}", count(n), if n == 1 { "" } else { "s" })
}

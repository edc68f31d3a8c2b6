//! Table numbers, as Convex assigns them: `_tables` rows first, then the
//! first document's `_id`, then (given the target's tables) the number the
//! target already uses for that name; and the conflicts each step can raise,
//! including those with the target's existing tables for the chosen mode.
//! [`check_target`] does the last step again from a Report alone, and
//! [`removed_by_import`] lists what an import in a mode takes from the
//! target's tables.

use std::collections::{HashMap, HashSet};

use serde::{Deserialize, Serialize};

use super::{
    in_component, table_conflict_message, Context, ImportMode, PlannedTable, TargetTable,
    TargetTables,
};
use crate::convex::MAX_USER_TABLES;
use crate::report::{Code, Finding, NumberSource, Report, TableSummary};

/// Numbers claimed in one component.
#[derive(Default)]
pub(crate) struct Namespace {
    by_number: HashMap<u32, String>,
    by_name: HashMap<String, u32>,
}

/// Numbers claimed per component.
#[derive(Default)]
pub(crate) struct Numbering {
    namespaces: HashMap<String, Namespace>,
}

impl Numbering {
    /// The number already claimed by `name` in `component`.
    pub fn number_of(&self, component: &str, name: &str) -> Option<u32> {
        self.namespaces.get(component)?.by_name.get(name).copied()
    }

    /// True when `name` is listed (by a `_tables` row or an earlier claim).
    pub fn has(&self, component: &str, name: &str) -> bool {
        self.number_of(component, name).is_some()
    }

    /// Claims `number` for `name`; on a clash returns the table holding it.
    pub fn claim(&mut self, component: &str, name: &str, number: u32) -> Result<(), String> {
        let ns = self.namespaces.entry(component.to_owned()).or_default();
        if let Some(holder) = ns.by_number.get(&number) {
            return Err(holder.clone());
        }
        ns.by_number.insert(number, name.to_owned());
        ns.by_name.insert(name.to_owned(), number);
        Ok(())
    }
}

/// The warning for a table without a number whose documents carry `_id`s:
/// neither `_tables` nor its first document gave it one (that document has
/// no `_id` that decodes), so the server picks one.
pub(crate) fn unassigned_number_warning(component: &str, table: &str) -> Finding {
    Finding::new(
        Code::UnassignedTableNumber,
        format!("documents of {table} carry _id values, but the table got no number from _tables or from its first document's _id, so the server chooses the table's number and these ids will likely not match it (ImportConflict)"),
    )
    .table(component, table.to_owned())
}

/// Convex's message for two tables on one number.
pub(crate) fn conflict_message(first: &str, second: &str, component: &str, number: u32) -> String {
    format!(
        "conflict between `{first}` and `{second}`{} with number {number}",
        in_component(component)
    )
}

/// A table-level finding about `table`, at its first documents entry, or
/// at the `_tables` row of a table only listed there.
fn located(table: &PlannedTable, finding: Finding) -> Finding {
    let finding = finding.table(&table.component, table.name.clone());
    match (table.entries.first(), &table.listed_at) {
        (Some(entry), _) => finding.entry(entry),
        (None, Some(at)) => finding.entry(&at.entry).line(at.line),
        (None, None) => finding,
    }
}

/// A finding about `table`'s number, where the number came from: the
/// `_tables` row that lists it, or the first line of its first documents
/// entry, whose `_id` gave it. A number the target gave is not in the
/// input: the finding is then placed as [`located`] places it.
fn at_number(table: &PlannedTable, finding: Finding) -> Finding {
    match (table.number_source, &table.listed_at, table.entries.first()) {
        (NumberSource::Tables, Some(at), _) => finding
            .table(&table.component, table.name.clone())
            .entry(&at.entry)
            .line(at.line),
        (NumberSource::Id, _, Some(entry)) => finding
            .table(&table.component, table.name.clone())
            .entry(entry)
            .line(1),
        _ => located(table, finding),
    }
}

/// A finding about `table`, which has no number of its own, where its
/// number would have come from: its `_tables` row (one whose number
/// another row took), else the first line of its first documents entry.
fn at_own_number(table: &PlannedTable, finding: Finding) -> Finding {
    let finding = finding.table(&table.component, table.name.clone());
    match (&table.listed_at, table.entries.first()) {
        (Some(at), _) => finding.entry(&at.entry).line(at.line),
        (None, Some(entry)) => finding.entry(entry).line(1),
        (None, None) => finding,
    }
}

/// `finding` with where `holder`'s number comes from (as [`at_number`]
/// places it) as its first line.
fn with_first_line_at_number(mut finding: Finding, holder: &PlannedTable) -> Finding {
    let at = at_number(holder, Finding::new(finding.code, ""));
    if let (Some(line), Some(entry)) = (at.line, at.entry) {
        finding.first_line = Some(line);
        finding.first_entry = (finding.entry.as_ref() != Some(&entry)).then_some(entry);
    }
    finding
}

/// Step 3 and the mode's conflicts with the target deployment's tables.
pub(crate) fn apply_target(
    tables: &mut [PlannedTable],
    numbering: &mut Numbering,
    ctx: &mut Context,
) {
    let user_tables = tables.iter().filter(|t| !t.name.starts_with('_')).count();
    let too_many = || {
        Finding::new(
            Code::TooManyTables,
            format!("Number of tables cannot exceed {MAX_USER_TABLES}."),
        )
    };
    let Some(target) = ctx.options.target.clone() else {
        // Without the target's tables, the archive's own must fit.
        if user_tables > MAX_USER_TABLES {
            ctx.error(too_many());
        }
        return;
    };
    let mode = ctx.options.mode;
    // The target's tables by component and name (a name is there once:
    // `TargetTables::check`), and by component and number (system tables
    // may share one).
    let mut by_name: HashMap<(&str, &str), &TargetTable> = HashMap::new();
    let mut by_number: HashMap<(&str, u32), Vec<&TargetTable>> = HashMap::new();
    for t in &target.tables {
        by_name.entry((&t.component, &t.name)).or_insert(t);
        by_number
            .entry((&t.component, t.number))
            .or_default()
            .push(t);
    }
    let existing = |component: &str, name: &str| by_name.get(&(component, name)).copied();
    // Step 3: reuse the existing table's number when it is still free.
    for t in 0..tables.len() {
        let table = &tables[t];
        if table.number.is_some() {
            continue;
        }
        let Some(found) = existing(&table.component, &table.name) else {
            continue;
        };
        match numbering.claim(&table.component, &table.name, found.number) {
            Ok(()) => {}
            // Appended to, the existing table keeps its number, which
            // another imported table has claimed: two tables on one number.
            // It is placed where the table's own number would have come
            // from, with where the other's comes from as its first line.
            Err(holder) if mode == ImportMode::Append => {
                let finding = at_own_number(
                    table,
                    Finding::new(
                        Code::TableNumberConflict,
                        format!(
                            "conflict between `{holder}` and `{}`{} with table number {}",
                            table.name,
                            in_component(&table.component),
                            found.number
                        ),
                    ),
                );
                let holder = tables
                    .iter()
                    .find(|h| h.component == table.component && h.name == holder);
                ctx.error(match holder {
                    Some(holder) => with_first_line_at_number(finding, holder),
                    None => finding,
                });
            }
            // Elsewhere the server gives the table a fresh number.
            Err(_) => continue,
        }
        tables[t].number = Some(found.number);
        tables[t].number_source = NumberSource::Target;
    }
    let planned: HashSet<(&str, &str)> = tables
        .iter()
        .map(|t| (t.component.as_str(), t.name.as_str()))
        .collect();
    let kept = target
        .tables
        .iter()
        .filter(|e| !e.name.starts_with('_'))
        .filter(|_| mode != ImportMode::ReplaceAll)
        .filter(|e| !planned.contains(&(e.component.as_str(), e.name.as_str())))
        .count();
    if user_tables + kept > MAX_USER_TABLES {
        ctx.error(too_many());
    }
    for table in tables.iter() {
        let located = |f: Finding| located(table, f);
        let here = existing(&table.component, &table.name);
        if mode == ImportMode::RequireEmpty {
            if let Some(found) = here.filter(|e| e.documents > 0) {
                ctx.error(located(Finding::new(
                    Code::TableExists,
                    format!(
                        "Table {} already exists. Please choose a new table name or use replace/append modes.",
                        found.name
                    ),
                )));
            }
        }
        let Some(number) = table.number else { continue };
        if mode == ImportMode::Append {
            if let Some(found) = here.filter(|e| e.number != number) {
                ctx.error(at_number(
                    table,
                    Finding::new(
                        Code::TableNumberConflict,
                        format!(
                            "table {}{} wants table number {number} but was already assigned {}",
                            table.name,
                            in_component(&table.component),
                            found.number
                        ),
                    ),
                ));
            }
        }
        // A table not imported keeps its number, but for the user tables
        // ReplaceAll deletes (system tables stay).
        let holder = by_number
            .get(&(table.component.as_str(), number))
            .into_iter()
            .flatten()
            .find(|e| {
                e.name != table.name
                    && !planned.contains(&(e.component.as_str(), e.name.as_str()))
                    && (mode != ImportMode::ReplaceAll || e.name.starts_with('_'))
            });
        if let Some(holder) = holder {
            ctx.error(at_number(
                table,
                Finding::new(
                    Code::TableConflict,
                    table_conflict_message(&table.name, &table.component, &holder.name),
                ),
            ));
        }
    }
}

/// Why [`check_target`] cannot check a report against a target.
#[derive(Debug, thiserror::Error)]
pub enum TargetCheckError {
    /// The target's tables cannot be a deployment's ([`TargetTables::check`]).
    #[error("the target deployment's tables are not valid: {0}")]
    InvalidTarget(String),
}

impl TargetCheckError {
    /// The stable code: the target is an option of the check.
    pub fn code(&self) -> &'static str {
        match self {
            TargetCheckError::InvalidTarget(_) => "InvalidOptions",
        }
    }
}

/// What an input's tables meet in a target deployment in one import mode,
/// found from the input's [`Report`] alone by [`check_target`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TargetCheck {
    /// The report's tables, numbered as the import numbers them against the
    /// target (a table the input gives no number takes the target's).
    pub tables: Vec<TableSummary>,
    /// The conflicts with the target's tables in the mode, as validating
    /// with the target lists them: `TableExists`, `TableNumberConflict`,
    /// `TableConflict`, `TooManyTables`.
    pub errors: Vec<Finding>,
    /// False when a table numbered here has documents (or, for `_storage`,
    /// files) whose `_id`s may not have been checked against this number:
    /// the report gave the table no number, or numbered it from another
    /// target. Then only validating with the target lists the
    /// `ImportConflict`s they meet.
    pub exact: bool,
    /// What the import removes from the target's tables when it finishes
    /// ([`removed_by_import`]): empty but in replace and replaceAll.
    #[serde(default)]
    pub removed: Vec<Removed>,
}

/// A table of the target that an import removes documents from when it finishes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Removed {
    /// The target's table.
    #[serde(flatten)]
    pub table: TargetTable,
    /// True when the import replaces it (its documents go, the input's
    /// come); false when replaceAll deletes it, as the input lacks it.
    pub replaced: bool,
}

/// What importing an input with `tables` (a report's) into `target` in
/// `mode` removes, as Convex's modes do: in replace and replaceAll, the
/// documents of every table the input imports that the target has with
/// documents; in replaceAll also every user table of the target the input
/// lacks, in every component. Nothing in requireEmpty and append.
pub fn removed_by_import(
    target: &TargetTables,
    tables: &[TableSummary],
    mode: ImportMode,
) -> Vec<Removed> {
    if !matches!(mode, ImportMode::Replace | ImportMode::ReplaceAll) {
        return Vec::new();
    }
    let imported: HashSet<(&str, &str)> = tables
        .iter()
        .map(|t| (t.component.as_str(), t.name.as_str()))
        .collect();
    target
        .tables
        .iter()
        .filter_map(|table| {
            let replaced = imported.contains(&(table.component.as_str(), table.name.as_str()));
            let deleted = mode == ImportMode::ReplaceAll && !table.name.starts_with('_');
            let removed = match (replaced, deleted) {
                (true, _) => table.documents > 0,
                (false, deleted) => deleted,
            };
            removed.then(|| Removed {
                table: table.clone(),
                replaced,
            })
        })
        .collect()
}

/// Checks the tables of a validated input against `target`'s tables in
/// `mode` without reading the input again: the table numbers and the
/// conflicts that validating it with `target` and `mode` gives. `report` is
/// best the report of a validation without a target (with one, its own
/// conflicts are among its errors); its tables are taken as planned before
/// any target, numbers from `_tables` and first `_id`s.
pub fn check_target(
    report: &Report,
    target: &TargetTables,
    mode: ImportMode,
) -> Result<TargetCheck, TargetCheckError> {
    target.check().map_err(TargetCheckError::InvalidTarget)?;
    let mut numbering = Numbering::default();
    let mut tables: Vec<PlannedTable> = report
        .tables
        .iter()
        .map(|t| {
            let own = matches!(t.number_source, NumberSource::Tables | NumberSource::Id);
            let number = t.number.filter(|_| own);
            // A table whose number clashes was left without one, as the walk does.
            let number = number.filter(|&n| numbering.claim(&t.component, &t.name, n).is_ok());
            PlannedTable {
                component: t.component.clone(),
                name: t.name.clone(),
                number,
                number_source: if number.is_some() {
                    t.number_source
                } else {
                    NumberSource::Unassigned
                },
                rules: crate::convex::value::ValueRules::Plain,
                entries: t.entries.clone(),
                listed_at: t.listed_at.clone(),
            }
        })
        .collect();
    let options = super::Options {
        target: Some(target.clone()),
        mode,
        max_errors: Some(usize::MAX),
        ..super::Options::default()
    };
    let mut progress = |_| true;
    let mut ctx = Context::new(&options, &mut progress);
    apply_target(&mut tables, &mut numbering, &mut ctx);
    let mut exact = true;
    let tables: Vec<TableSummary> = report
        .tables
        .iter()
        .zip(&tables)
        .map(|(before, planned)| {
            let unchecked_ids = match before.number_source {
                // Its `_id`s were checked against the other target's number.
                NumberSource::Target => before.number != planned.number,
                // Its `_id`s (a `_storage` table's: its files') were checked
                // against none. The report's `UnassignedTableNumber` warnings
                // name the tables whose documents carry `_id`s, but the list
                // is cut at `max_errors`: any documents may be such.
                NumberSource::Unassigned => {
                    planned.number.is_some() && (before.name == "_storage" || before.documents > 0)
                }
                NumberSource::Tables | NumberSource::Id => false,
            };
            exact &= !unchecked_ids;
            TableSummary {
                number: planned.number,
                number_source: planned.number_source,
                ..before.clone()
            }
        })
        .collect();
    Ok(TargetCheck {
        removed: removed_by_import(target, &tables, mode),
        tables,
        errors: ctx.errors,
        exact,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target(tables: &[(&str, &str, u32, u64)]) -> TargetTables {
        TargetTables {
            tables: tables
                .iter()
                .map(|&(component, name, number, documents)| TargetTable {
                    component: component.into(),
                    name: name.into(),
                    number,
                    documents,
                })
                .collect(),
        }
    }

    fn summary(component: &str, name: &str) -> TableSummary {
        TableSummary {
            component: component.into(),
            name: name.into(),
            number: None,
            number_source: NumberSource::Unassigned,
            documents: 1,
            bytes: 1,
            entries: Vec::new(),
            listed_at: None,
        }
    }

    #[test]
    fn imports_remove_what_their_mode_replaces_or_deletes() {
        let target = target(&[
            ("", "users", 10001, 5),
            ("", "empty", 10002, 0),
            ("", "posts", 10003, 7),
            ("billing", "users", 10001, 2),
            ("", "_storage", 540, 4),
        ]);
        let input = [summary("", "users"), summary("", "empty")];
        let removed = |mode| {
            removed_by_import(&target, &input, mode)
                .into_iter()
                .map(|r| (r.table.component, r.table.name, r.replaced))
                .collect::<Vec<_>>()
        };
        assert_eq!(removed(ImportMode::RequireEmpty), []);
        assert_eq!(removed(ImportMode::Append), []);
        // An empty table replaced loses nothing.
        let owned = |tables: &[(&str, &str, bool)]| -> Vec<(String, String, bool)> {
            tables
                .iter()
                .map(|&(component, name, replaced)| (component.into(), name.into(), replaced))
                .collect()
        };
        assert_eq!(removed(ImportMode::Replace), owned(&[("", "users", true)]));
        // Every user table not imported goes, in every component; system tables stay.
        assert_eq!(
            removed(ImportMode::ReplaceAll),
            owned(&[
                ("", "users", true),
                ("", "posts", false),
                ("billing", "users", false)
            ])
        );
    }
}

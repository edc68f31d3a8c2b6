//! Activation planning: given the hidden tables an import wrote and the
//! tables active in the database right now, decide with Convex's import-mode
//! semantics which tables are deleted, which hidden tables become active (and
//! with which number), and which are appended into an existing table — or
//! refuse with Convex's code and message.
//!
//! Pure: the SQL backends read the state inside their finishing transaction,
//! call [`plan`], and apply the result in that same transaction.

use std::collections::btree_map::Entry;
use std::collections::{BTreeMap, BTreeSet, HashMap};

use super::{ImportError, ImportMode};
use crate::convex::MAX_USER_TABLES;
use crate::report::Code;
use crate::validate::table::import_conflict_message;
use crate::validate::{in_component, table_conflict_message};

/// User tables are numbered from here upward (Convex's first user table is 10001).
pub const FIRST_USER_TABLE_NUMBER: u32 = 10001;

/// A table written by the import, not yet visible.
#[derive(Debug, Clone, PartialEq)]
pub struct HiddenTable {
    /// Row id of the hidden table.
    pub table_id: i64,
    /// Component path (`""` is the root).
    pub component: String,
    /// Table name.
    pub name: String,
    /// The number the stream declared (`_tables` or the first `_id`), if any.
    pub requested: Option<u32>,
    /// For a table without a declared number: the first document `_id` seen
    /// (its table number and text). Its number must be the table's final one.
    pub pin: Option<(u32, String)>,
    /// The active table of that name when the import declared this table
    /// (`(table_id, generation)`), to detect another import finishing first.
    pub observed: Option<(i64, i64)>,
}

/// A table visible in the database.
#[derive(Debug, Clone, PartialEq)]
pub struct ActiveTable {
    /// Row id of the table.
    pub table_id: i64,
    /// Component path.
    pub component: String,
    /// Table name.
    pub name: String,
    /// Table number.
    pub number: u32,
    /// Documents in the table.
    pub documents: u64,
    /// Bumped on every change of the table's contents.
    pub generation: i64,
}

/// What finishing an import does, in one transaction.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Plan {
    /// Active tables to delete with their documents.
    pub delete: Vec<i64>,
    /// Hidden tables that become active: `(hidden table id, number)`.
    pub activate: Vec<(i64, u32)>,
    /// Hidden tables whose documents move into an existing table (Append):
    /// `(hidden table id, existing table id, number)`.
    pub append: Vec<(i64, i64, u32)>,
}

fn error(code: Code, component: &str, table: &str, message: String) -> ImportError {
    ImportError {
        code: code.as_str(),
        message,
        component: component.to_owned(),
        table: Some(table.to_owned()),
        line: None,
    }
}

/// Plans the activation of `hidden` against `active` (every component) in `mode`.
pub fn plan(
    mode: ImportMode,
    hidden: &[HiddenTable],
    active: &[ActiveTable],
) -> Result<Plan, ImportError> {
    let existing: HashMap<(&str, &str), &ActiveTable> = active
        .iter()
        .map(|t| ((t.component.as_str(), t.name.as_str()), t))
        .collect();
    let imported: BTreeSet<(&str, &str)> = hidden
        .iter()
        .map(|t| (t.component.as_str(), t.name.as_str()))
        .collect();

    // Another import changed a table this one writes since it was declared.
    if let Some(changed) = changed_table(hidden, active) {
        return Err(changed);
    }

    // RequireEmpty: every imported table that exists must be empty.
    if mode == ImportMode::RequireEmpty {
        for table in hidden {
            if let Some(e) = existing.get(&(table.component.as_str(), table.name.as_str())) {
                if e.documents > 0 {
                    return Err(error(
                        Code::TableExists,
                        &table.component,
                        &table.name,
                        format!(
                            "Table {} already exists. Please choose a new table name or use replace/append modes.",
                            table.name
                        ),
                    ));
                }
            }
        }
    }

    let mut components: BTreeMap<&str, Vec<&HiddenTable>> = BTreeMap::new();
    for table in hidden {
        components.entry(&table.component).or_default().push(table);
    }
    let mut plan = Plan::default();
    for (component, tables) in &components {
        plan_component(
            mode, component, tables, active, &existing, &imported, &mut plan,
        )?;
    }

    // ReplaceAll deletes every user table not imported, in every component.
    if mode == ImportMode::ReplaceAll {
        for e in active {
            if !e.name.starts_with('_')
                && !imported.contains(&(e.component.as_str(), e.name.as_str()))
            {
                plan.delete.push(e.table_id);
            }
        }
    }

    let deleted: BTreeSet<i64> = plan.delete.iter().copied().collect();
    // Sets, not lists searched per table: an import may have thousands.
    let activated: BTreeSet<i64> = plan.activate.iter().map(|&(id, _)| id).collect();
    let user_tables = active
        .iter()
        .filter(|t| !t.name.starts_with('_') && !deleted.contains(&t.table_id))
        .count()
        + hidden
            .iter()
            .filter(|t| {
                !t.name.starts_with('_')
                    && activated.contains(&t.table_id)
                    && !existing.contains_key(&(t.component.as_str(), t.name.as_str()))
            })
            .count();
    if user_tables > MAX_USER_TABLES {
        return Err(ImportError {
            code: Code::TooManyTables.as_str(),
            message: format!("Number of tables cannot exceed {MAX_USER_TABLES}."),
            component: String::new(),
            table: None,
            line: None,
        });
    }
    Ok(plan)
}

/// The code of `error_changed`: the import raced another one on a table.
pub const TABLE_CHANGED: &str = "TableChanged";

/// The first of `hidden` (an import's tables) that another import changed
/// (created, replaced, appended to or deleted) since this one declared it,
/// as the refusal of finishing it (`TableChanged`): an import with such a
/// table can no longer finish, since what it declared against is gone.
pub fn changed_table(hidden: &[HiddenTable], active: &[ActiveTable]) -> Option<ImportError> {
    let now: HashMap<(&str, &str), (i64, i64)> = active
        .iter()
        .map(|t| {
            (
                (t.component.as_str(), t.name.as_str()),
                (t.table_id, t.generation),
            )
        })
        .collect();
    hidden
        .iter()
        .find(|table| {
            now.get(&(table.component.as_str(), table.name.as_str()))
                .copied()
                != table.observed
        })
        .map(error_changed)
}

fn error_changed(table: &HiddenTable) -> ImportError {
    ImportError {
        code: TABLE_CHANGED,
        message: format!(
            "Table `{}`{} changed while this import was running (another import finished on it). Start the import again.",
            table.name,
            in_component(&table.component)
        ),
        component: table.component.clone(),
        table: Some(table.name.clone()),
        line: None,
    }
}

/// The `TableChanged` refusal a failed import's record keeps
/// ([`ImportError::recorded`]), read back; `None` for any other error.
pub fn recorded_table_changed(recorded: &str) -> Option<ImportError> {
    let rest = recorded.strip_prefix(TABLE_CHANGED)?.strip_prefix(": ")?;
    let (message, place) = rest.strip_suffix(')')?.rsplit_once(" (table ")?;
    // Table names have no `/`; component paths may.
    let (component, table) = place.rsplit_once('/').unwrap_or(("", place));
    Some(ImportError {
        code: TABLE_CHANGED,
        message: message.to_owned(),
        component: component.to_owned(),
        table: Some(table.to_owned()),
        line: None,
    })
}

fn plan_component(
    mode: ImportMode,
    component: &str,
    tables: &[&HiddenTable],
    active: &[ActiveTable],
    existing: &HashMap<(&str, &str), &ActiveTable>,
    imported: &BTreeSet<(&str, &str)>,
    plan: &mut Plan,
) -> Result<(), ImportError> {
    let in_comp = in_component(component);
    let existing_here = |name: &str| existing.get(&(component, name)).copied();

    // Steps 1-2 (declared numbers): two tables on one number are a conflict.
    let mut claimed: BTreeMap<u32, &str> = BTreeMap::new();
    for table in tables {
        if let Some(number) = table.requested {
            if let Some(first) = claimed.insert(number, &table.name) {
                return Err(error(
                    Code::TableNumberConflict,
                    component,
                    &table.name,
                    format!(
                        "conflict between `{first}` and `{}`{in_comp} with table number {number}",
                        table.name
                    ),
                ));
            }
        }
    }
    // Step 3: reuse the existing table's number when no imported table claims it.
    let mut numbers: Vec<Option<u32>> = tables.iter().map(|t| t.requested).collect();
    for (number, table) in numbers.iter_mut().zip(tables) {
        let Some(e) = existing_here(&table.name).filter(|_| number.is_none()) else {
            continue;
        };
        match claimed.entry(e.number) {
            Entry::Vacant(slot) => {
                slot.insert(&table.name);
                *number = Some(e.number);
            }
            // Appended to, the existing table keeps its number, which
            // another imported table claims: two tables on one number.
            Entry::Occupied(holder) if mode == ImportMode::Append => {
                return Err(error(
                    Code::TableNumberConflict,
                    component,
                    &table.name,
                    format!(
                        "conflict between `{}` and `{}`{in_comp} with table number {}",
                        holder.get(),
                        table.name,
                        e.number
                    ),
                ));
            }
            // Elsewhere the table gets a fresh number.
            Entry::Occupied(_) => {}
        }
    }

    // Tables that stay as they are: in ReplaceAll only system tables not imported,
    // otherwise every table not imported.
    let staying: Vec<&ActiveTable> = active
        .iter()
        .filter(|e| e.component == component)
        .filter(|e| !imported.contains(&(component, e.name.as_str())))
        .filter(|e| mode != ImportMode::ReplaceAll || e.name.starts_with('_'))
        .collect();

    // Step 5: an imported number held by a table that stays (the first of
    // them, should several hold it).
    let mut staying_by_number: HashMap<u32, &ActiveTable> = HashMap::new();
    for e in &staying {
        staying_by_number.entry(e.number).or_insert(e);
    }
    for (number, table) in numbers.iter().zip(tables) {
        let Some(number) = number else { continue };
        if let Some(e) = staying_by_number.get(number) {
            let message = table_conflict_message(&table.name, component, &e.name);
            return Err(error(Code::TableConflict, component, &table.name, message));
        }
    }

    // Step 6: Append into an existing table keeps that table's number.
    if mode == ImportMode::Append {
        for (number, table) in numbers.iter().zip(tables) {
            if let (Some(number), Some(e)) = (number, existing_here(&table.name)) {
                if *number != e.number {
                    return Err(error(
                        Code::TableNumberConflict,
                        component,
                        &table.name,
                        format!(
                            "table {}{in_comp} wants table number {number} but was already assigned {}",
                            table.name, e.number
                        ),
                    ));
                }
            }
        }
    }

    // Fresh numbers: the first free ones above 10000.
    let mut taken: BTreeSet<u32> = staying.iter().map(|e| e.number).collect();
    taken.extend(claimed.keys().copied());
    let mut next = FIRST_USER_TABLE_NUMBER;
    for number in numbers.iter_mut().filter(|n| n.is_none()) {
        while taken.contains(&next) {
            next += 1;
        }
        taken.insert(next);
        *number = Some(next);
    }

    for (number, table) in numbers.into_iter().zip(tables) {
        let number = number.expect("every table has a number by now");
        if let Some((pinned, id)) = &table.pin {
            if *pinned != number {
                return Err(error(
                    Code::ImportConflict,
                    component,
                    &table.name,
                    import_conflict_message(id, &table.name),
                ));
            }
        }
        match existing_here(&table.name) {
            Some(e) if mode == ImportMode::Append => {
                plan.append.push((table.table_id, e.table_id, number))
            }
            Some(e) => {
                plan.delete.push(e.table_id);
                plan.activate.push((table.table_id, number));
            }
            None => plan.activate.push((table.table_id, number)),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {

    /// A `TableChanged` refusal reads back from its record as it was, a
    /// component's table included.
    #[test]
    fn a_recorded_table_change_reads_back() {
        for component in ["", "billing", "billing/invoices"] {
            let table = HiddenTable {
                component: component.into(),
                ..hidden(1, "users", Some(10001))
            };
            let error = error_changed(&table);
            assert_eq!(recorded_table_changed(&error.recorded()), Some(error));
        }
        assert_eq!(
            recorded_table_changed("DocumentExists: Cannot create document (table users, line 3)"),
            None
        );
    }

    use super::*;

    fn hidden(id: i64, name: &str, requested: Option<u32>) -> HiddenTable {
        HiddenTable {
            table_id: id,
            component: String::new(),
            name: name.into(),
            requested,
            pin: None,
            observed: None,
        }
    }

    fn active(id: i64, name: &str, number: u32, documents: u64) -> ActiveTable {
        ActiveTable {
            table_id: id,
            component: String::new(),
            name: name.into(),
            number,
            documents,
            generation: 0,
        }
    }

    fn observing(mut t: HiddenTable, e: &ActiveTable) -> HiddenTable {
        t.observed = Some((e.table_id, e.generation));
        t
    }

    #[test]
    fn step_three_reuses_free_numbers_and_allocates_fresh_ones() {
        let existing = [active(1, "a", 10001, 1), active(2, "b", 10005, 1)];
        let import = [
            observing(hidden(10, "a", None), &existing[0]),
            observing(hidden(11, "b", None), &existing[1]),
            hidden(12, "c", Some(10005)),
            hidden(13, "d", None),
        ];
        // `b` cannot reuse 10005 (claimed by `c`), so it and `d` get fresh numbers.
        let plan = plan(ImportMode::Replace, &import, &existing).unwrap();
        assert_eq!(
            plan.activate,
            vec![(10, 10001), (11, 10002), (12, 10005), (13, 10003)]
        );
        assert_eq!(plan.delete, vec![1, 2]);
    }

    #[test]
    fn appending_to_a_table_whose_number_another_imported_table_claims_is_refused() {
        let existing = [active(1, "a", 10001, 1)];
        let import = [
            hidden(10, "b", Some(10001)),
            observing(hidden(11, "a", None), &existing[0]),
        ];
        // Appended to, `a` keeps 10001, which `b` claims.
        let err = plan(ImportMode::Append, &import, &existing).unwrap_err();
        assert_eq!(err.code, "TableNumberConflict");
        assert_eq!(
            err.message,
            "conflict between `b` and `a` with table number 10001"
        );
        // Replaced, `a` is a new table with a fresh number.
        let plan = plan(ImportMode::Replace, &import, &existing).unwrap();
        assert_eq!(plan.activate, vec![(10, 10001), (11, 10002)]);
    }

    #[test]
    fn pinned_ids_must_match_the_assigned_number() {
        let mut t = hidden(10, "a", None);
        t.pin = Some((10002, "someid".into()));
        let err = plan(ImportMode::Replace, &[t], &[]).unwrap_err();
        assert_eq!(err.code, "ImportConflict");
        assert!(err
            .message
            .starts_with("_id someid cannot be imported into 'a'"));
    }

    #[test]
    fn conflicts_name_the_system_table() {
        let existing = [active(1, "_storage", 540, 0)];
        let err = plan(
            ImportMode::Replace,
            &[hidden(10, "files", Some(540))],
            &existing,
        )
        .unwrap_err();
        assert_eq!(err.code, "TableConflict");
        assert_eq!(
            err.message,
            "New table `files` has IDs that conflict with existing system table"
        );
        // ReplaceAll does not delete system tables, so the clash stays.
        let err = plan(
            ImportMode::ReplaceAll,
            &[hidden(10, "files", Some(540))],
            &existing,
        )
        .unwrap_err();
        assert_eq!(err.code, "TableConflict");
    }

    #[test]
    fn components_are_separate_namespaces() {
        let mut existing = active(1, "t", 10001, 1);
        existing.component = "c".into();
        let plan = plan(
            ImportMode::RequireEmpty,
            &[hidden(10, "t", Some(10001))],
            &[existing],
        )
        .unwrap();
        assert_eq!(plan.activate, vec![(10, 10001)]);
        assert!(plan.delete.is_empty());
    }

    #[test]
    fn a_table_changed_since_declaration_is_refused() {
        let before = active(1, "t", 10001, 1);
        let mut after = before.clone();
        after.generation = 1;
        let err = plan(
            ImportMode::Append,
            &[observing(hidden(10, "t", None), &before)],
            &[after],
        )
        .unwrap_err();
        assert_eq!(err.code, TABLE_CHANGED);
    }
}

//! The one implementation of [`Store`](super::Store) over SQL, written
//! once for both backends: they differ only in how they connect, lock and
//! bind values.
//! Statements use `$n` placeholders, which SQLite and PostgreSQL both read.

use std::collections::{HashMap, HashSet};

use super::plan::{self, ActiveTable, HiddenTable};
use super::{
    ActivatedTable, DocumentLines, FrameWrite, ImportError, ImportMode, ImportRecord, ImportState,
    ImportTarget, ImportsPage, ImportsQuery, Observed, StoreError, StoredDocument,
    TableDeclaration, TargetTable,
};
use crate::convex::DocumentId;
use crate::report::Code;

/// A statement parameter.
#[derive(Debug, Clone, Copy)]
pub(super) enum Param<'a> {
    Null,
    Int(i64),
    Text(&'a str),
}

/// A value read from a row.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Cell {
    Null,
    Int(i64),
    Text(String),
    Blob(Vec<u8>),
}

impl Cell {
    fn int(&self) -> Result<i64, StoreError> {
        match self {
            Cell::Int(v) => Ok(*v),
            other => Err(StoreError::Database(format!(
                "expected an integer, got {other:?}"
            ))),
        }
    }

    fn opt_int(&self) -> Result<Option<i64>, StoreError> {
        match self {
            Cell::Null => Ok(None),
            other => other.int().map(Some),
        }
    }

    fn text(self) -> Result<String, StoreError> {
        match self {
            Cell::Text(v) => Ok(v),
            other => Err(StoreError::Database(format!(
                "expected text, got {other:?}"
            ))),
        }
    }

    fn opt_text(self) -> Result<Option<String>, StoreError> {
        match self {
            Cell::Null => Ok(None),
            other => other.text().map(Some),
        }
    }

    fn internal_id(self) -> Result<[u8; 16], StoreError> {
        match self {
            Cell::Blob(v) => v.try_into().map_err(|v: Vec<u8>| {
                StoreError::Database(format!("internal id of {} bytes", v.len()))
            }),
            other => Err(StoreError::Database(format!(
                "expected bytes, got {other:?}"
            ))),
        }
    }
}

fn number(cell: &Cell) -> Result<u32, StoreError> {
    u32::try_from(cell.int()?).map_err(|e| StoreError::Database(format!("table number: {e}")))
}

/// A connection inside a transaction.
pub(super) trait Conn {
    /// Runs a statement; returns the rows changed.
    fn exec(&mut self, sql: &str, params: &[Param<'_>]) -> Result<u64, StoreError>;
    /// Runs a query; returns every row.
    fn query(&mut self, sql: &str, params: &[Param<'_>]) -> Result<Vec<Vec<Cell>>, StoreError>;
    /// Appends documents (internal id, JSON line) to the documents table
    /// named `table` (see [`documents_table`]), in order.
    fn insert_documents(
        &mut self,
        table: &str,
        rows: &[([u8; 16], &str)],
    ) -> Result<(), StoreError>;
}

/// The SQL table holding the documents of table row `table_id`: one per
/// table, appended to in arrival order while the table is hidden (no index
/// to maintain: the re-validation already refused duplicate ids), and given
/// its unique index on the internal id once its last document is in.
pub(super) fn documents_table(table_id: i64) -> String {
    format!("snappack_docs_{table_id}")
}

/// The unique index on the internal ids of table row `table_id`'s documents.
fn documents_index(table_id: i64) -> String {
    format!("snappack_docs_{table_id}_id")
}

/// Creates the unique index on the internal ids of table row `table_id`'s
/// documents, unless it is there.
fn create_index(table_id: i64) -> String {
    format!(
        "CREATE UNIQUE INDEX IF NOT EXISTS {} ON {} (internal_id)",
        documents_index(table_id),
        documents_table(table_id)
    )
}

/// The id of table `name` (in `component`) that `import` declared.
fn hidden_table_id(
    c: &mut dyn Conn,
    import: &str,
    component: &str,
    name: &str,
) -> Result<i64, StoreError> {
    let found = c.query(
        "SELECT id FROM snappack_tables WHERE import_id = $1 AND component = $2 AND name = $3",
        &[
            Param::Text(import),
            Param::Text(component),
            Param::Text(name),
        ],
    )?;
    found.first().ok_or_else(|| StoreError::UndeclaredTable {
        import: import.to_owned(),
        component: component.to_owned(),
        table: name.to_owned(),
    })?[0]
        .int()
}

/// Declares `table`, a hidden table of `import`: its row, which records what
/// the import saw of the table, and its documents table. Nothing when the
/// import has it already (declared by a try of the same write that failed
/// after this table's batch was committed).
fn declare_table<B: Backend>(
    c: &mut dyn Conn,
    import: &str,
    table: &TableDeclaration,
) -> Result<(), StoreError> {
    match hidden_table_id(c, import, &table.component, &table.name) {
        Ok(_) => return Ok(()),
        Err(StoreError::UndeclaredTable { .. }) => {}
        Err(e) => return Err(e),
    }
    // As the declaration was acknowledged, else as it is now.
    let observed = match table.observed {
        Some(observed) => observed,
        None => observe_table(c, &table.component, &table.name)?,
    };
    let (observed_id, observed_generation) = match observed {
        Some((id, generation)) => (Param::Int(id), Param::Int(generation)),
        None => (Param::Null, Param::Null),
    };
    let created = c.query(
        "INSERT INTO snappack_tables (component, name, number, import_id, observed_id, observed_generation) \
         VALUES ($1, $2, $3, $4, $5, $6) RETURNING id",
        &[
            Param::Text(&table.component),
            Param::Text(&table.name),
            table.number.map_or(Param::Null, |n| Param::Int(n.into())),
            Param::Text(import),
            observed_id,
            observed_generation,
        ],
    )?;
    let table_id = created
        .first()
        .ok_or_else(|| StoreError::Database("INSERT returned no id".into()))?[0]
        .int()?;
    c.exec(
        &format!(
            "CREATE TABLE {} (internal_id {} NOT NULL, json TEXT NOT NULL)",
            documents_table(table_id),
            B::BYTES
        ),
        &[],
    )?;
    Ok(())
}

/// The table where an earlier layout kept every document; this one keeps
/// each table's documents in a table of its own and cannot read it.
pub(super) const OLD_DOCUMENTS_TABLE: &str = "snappack_documents";

/// Why a database written in the earlier layout is not opened (rather than
/// shown without its documents).
pub(super) fn old_layout_error() -> StoreError {
    StoreError::Database(format!(
        "this database keeps its documents in {OLD_DOCUMENTS_TABLE}, the layout of an earlier \
         snappack that this version cannot read; keep it with that version, and import the \
         snapshots again into a new database (--database)"
    ))
}

/// A database engine.
pub(super) trait Backend: Send + Sync {
    /// The column type of byte strings (`BLOB`, `BYTEA`).
    const BYTES: &'static str;
    /// A column every row has, without being given one, whose order is
    /// the order rows were added in, in a table only ever appended to, as
    /// an import's hidden tables are (SQLite's `rowid`; PostgreSQL's
    /// `ctid`, which is that order unless space freed by a write that
    /// failed, once vacuumed, is filled by a later one).
    const ADDED_ORDER: &'static str;
    /// A query of the names of the indexes in the database whose names
    /// start `snappack_docs_` (among them every [`documents_index`]).
    const DOCUMENTS_INDEXES: &'static str;

    /// How many tables a transaction that creates, indexes or drops
    /// tables one by one may take on at once, where the database holds a
    /// lock per table until the transaction ends and has room for only so
    /// many (PostgreSQL's `max_locks_per_transaction`): the work of an
    /// import that need not be atomic (its hidden tables, which nothing
    /// else sees) is cut into transactions of this many tables.
    fn tables_per_transaction(&self) -> usize;

    /// Runs `f` in one transaction, committed when it returns `Ok`. Exclusive
    /// transactions are serialized with each other (finishing and cancelling
    /// imports, writes that declare tables, claiming the data folder).
    fn transaction<T: Send>(
        &self,
        exclusive: bool,
        f: impl FnOnce(&mut dyn Conn) -> Result<T, StoreError> + Send,
    ) -> Result<T, StoreError>;
}

/// [`super::Store`] over a [`Backend`].
pub(super) struct SqlStore<B> {
    backend: B,
}

fn load_import(c: &mut dyn Conn, id: &str) -> Result<ImportRecord, StoreError> {
    let mut rows = c.query(
        "SELECT id, mode, state, applied_seq, error, label, target FROM snappack_imports WHERE id = $1",
        &[Param::Text(id)],
    )?;
    let row = rows
        .pop()
        .ok_or_else(|| StoreError::UnknownImport(id.to_owned()))?;
    record(row)
}

fn record(row: Vec<Cell>) -> Result<ImportRecord, StoreError> {
    let mut cells = row.into_iter();
    let mut next = || cells.next().unwrap_or(Cell::Null);
    let id = next().text()?;
    let mode = next().text()?;
    let state = next().text()?;
    let applied_seq = next().opt_int()?.map(|s| s as u64);
    let error = next().opt_text()?;
    let label = next().opt_text()?;
    // Recorded as JSON; one that does not read (written by hand, say) is
    // taken for none rather than making the import unreadable.
    let target = next()
        .opt_text()?
        .and_then(|json| serde_json::from_str(&json).ok());
    Ok(ImportRecord {
        mode: mode
            .parse::<ImportMode>()
            .map_err(|e| StoreError::Database(format!("import {id}: {e}")))?,
        state: ImportState::parse(&state)
            .ok_or_else(|| StoreError::Database(format!("import {id} has state {state:?}")))?,
        id,
        applied_seq,
        error,
        label,
        target,
    })
}

fn open_import(c: &mut dyn Conn, id: &str) -> Result<ImportRecord, StoreError> {
    let record = load_import(c, id)?;
    if record.state != ImportState::Open {
        return Err(StoreError::NotOpen {
            id: id.to_owned(),
            state: record.state,
        });
    }
    Ok(record)
}

fn drop_table(c: &mut dyn Conn, table_id: i64) -> Result<(), StoreError> {
    c.exec(
        &format!("DROP TABLE IF EXISTS {}", documents_table(table_id)),
        &[],
    )?;
    c.exec(
        "DELETE FROM snappack_tables WHERE id = $1",
        &[Param::Int(table_id)],
    )?;
    Ok(())
}

/// Retires active table `table_id`, which a finish deletes or replaces:
/// its row goes, so that nothing sees the table from the finish's commit on,
/// and its documents table is listed in `snappack_retired`, to be dropped
/// after the commit ([`drop_retired`]). Dropping it here would hold locks
/// on it (PostgreSQL: its documents, index, TOAST table and types, about
/// seven) until the finish commits, for every table the finish replaces.
fn retire_table(c: &mut dyn Conn, table_id: i64) -> Result<(), StoreError> {
    c.exec(
        "DELETE FROM snappack_tables WHERE id = $1",
        &[Param::Int(table_id)],
    )?;
    c.exec(
        "INSERT INTO snappack_retired (table_id) VALUES ($1)",
        &[Param::Int(table_id)],
    )?;
    Ok(())
}

/// Drops the documents table of retired table `table_id` ([`retire_table`]).
fn drop_retired(c: &mut dyn Conn, table_id: i64) -> Result<(), StoreError> {
    c.exec(
        &format!("DROP TABLE IF EXISTS {}", documents_table(table_id)),
        &[],
    )?;
    c.exec(
        "DELETE FROM snappack_retired WHERE table_id = $1",
        &[Param::Int(table_id)],
    )?;
    Ok(())
}

fn load_hidden(c: &mut dyn Conn, import: &str) -> Result<Vec<(HiddenTable, u64)>, StoreError> {
    let rows = c.query(
        "SELECT id, component, name, number, pin_number, pin_id, observed_id, observed_generation, documents \
         FROM snappack_tables WHERE import_id = $1 ORDER BY id",
        &[Param::Text(import)],
    )?;
    rows.into_iter()
        .map(|row| {
            let mut cells = row.into_iter();
            let mut next = || cells.next().unwrap_or(Cell::Null);
            let table_id = next().int()?;
            let component = next().text()?;
            let name = next().text()?;
            let requested = next().opt_int()?.map(|n| n as u32);
            let pin_number = next().opt_int()?;
            let pin_id = next().opt_text()?;
            let observed_id = next().opt_int()?;
            let observed_generation = next().opt_int()?;
            let documents = next().int()? as u64;
            Ok((
                HiddenTable {
                    table_id,
                    component,
                    name,
                    requested,
                    pin: pin_number.zip(pin_id).map(|(n, id)| (n as u32, id)),
                    observed: observed_id.zip(observed_generation),
                },
                documents,
            ))
        })
        .collect()
}

/// The active table `name` of `component`: its row id and generation.
fn observe_table(c: &mut dyn Conn, component: &str, name: &str) -> Result<Observed, StoreError> {
    let found = c.query(
        "SELECT id, generation FROM snappack_tables \
         WHERE import_id IS NULL AND component = $1 AND name = $2",
        &[Param::Text(component), Param::Text(name)],
    )?;
    match found.first() {
        Some(row) => Ok(Some((row[0].int()?, row[1].int()?))),
        None => Ok(None),
    }
}

fn active_tables(c: &mut dyn Conn) -> Result<Vec<ActiveTable>, StoreError> {
    let rows = c.query(
        "SELECT id, component, name, number, documents, generation FROM snappack_tables \
         WHERE import_id IS NULL ORDER BY component, name",
        &[],
    )?;
    rows.into_iter()
        .map(|row| {
            Ok(ActiveTable {
                table_id: row[0].int()?,
                number: number(&row[3])?,
                documents: row[4].int()? as u64,
                generation: row[5].int()?,
                name: row[2].clone().text()?,
                component: row[1].clone().text()?,
            })
        })
        .collect()
}

impl<B: Backend> SqlStore<B> {
    /// Wraps a backend whose schema is in place.
    pub(super) fn new(backend: B) -> Self {
        SqlStore { backend }
    }

    pub(super) fn tables(&self) -> Result<Vec<TargetTable>, StoreError> {
        self.backend.transaction(false, |c| {
            Ok(active_tables(c)?
                .into_iter()
                .map(|t| TargetTable {
                    component: t.component,
                    name: t.name,
                    number: t.number,
                    documents: t.documents,
                })
                .collect())
        })
    }

    pub(super) fn create_import(
        &self,
        id: &str,
        mode: ImportMode,
        label: Option<&str>,
        target: Option<&ImportTarget>,
    ) -> Result<(), StoreError> {
        let target = target
            .map(serde_json::to_string)
            .transpose()
            .map_err(|e| StoreError::Database(e.to_string()))?;
        self.backend.transaction(false, |c| {
            if !c
                .query(
                    "SELECT 1 FROM snappack_imports WHERE id = $1",
                    &[Param::Text(id)],
                )?
                .is_empty()
            {
                return Err(StoreError::DuplicateImport(id.to_owned()));
            }
            c.exec(
                "INSERT INTO snappack_imports (id, mode, state, label, target) \
                 VALUES ($1, $2, $3, $4, $5)",
                &[
                    Param::Text(id),
                    Param::Text(mode.as_str()),
                    Param::Text(ImportState::Open.as_str()),
                    label.map_or(Param::Null, Param::Text),
                    target.as_deref().map_or(Param::Null, Param::Text),
                ],
            )?;
            Ok(())
        })
    }

    pub(super) fn imports(&self) -> Result<Vec<ImportRecord>, StoreError> {
        self.backend.transaction(false, |c| {
            c.query(
                "SELECT id, mode, state, applied_seq, error, label, target FROM snappack_imports ORDER BY seq",
                &[],
            )?
            .into_iter()
            .map(record)
            .collect()
        })
    }

    pub(super) fn imports_page(&self, query: ImportsQuery<'_>) -> Result<ImportsPage, StoreError> {
        self.backend.transaction(false, |c| {
            let before = match query.before {
                None => None,
                Some(id) => {
                    let row = c
                        .query(
                            "SELECT seq FROM snappack_imports WHERE id = $1",
                            &[Param::Text(id)],
                        )?
                        .pop()
                        .ok_or_else(|| StoreError::UnknownImport(id.to_owned()))?;
                    Some(row.into_iter().next().unwrap_or(Cell::Null).int()?)
                }
            };
            let mut conditions = Vec::new();
            let mut params = Vec::new();
            if let Some(seq) = before {
                params.push(Param::Int(seq));
                conditions.push(format!("seq < ${}", params.len()));
            }
            if let Some(state) = query.state {
                params.push(Param::Text(state.as_str()));
                conditions.push(format!("state = ${}", params.len()));
            }
            let filter = if conditions.is_empty() {
                String::new()
            } else {
                format!("WHERE {}", conditions.join(" AND "))
            };
            // One more than asked: whether there are older ones.
            let mut imports = c
                .query(
                    &format!(
                        "SELECT id, mode, state, applied_seq, error, label, target FROM snappack_imports \
                         {filter} ORDER BY seq DESC LIMIT {}",
                        query.limit.saturating_add(1)
                    ),
                    &params,
                )?
                .into_iter()
                .map(record)
                .collect::<Result<Vec<_>, _>>()?;
            let older = imports.len() > query.limit;
            imports.truncate(query.limit);
            imports.reverse();
            Ok(ImportsPage { imports, older })
        })
    }

    pub(super) fn import(&self, id: &str) -> Result<ImportRecord, StoreError> {
        self.backend.transaction(false, |c| load_import(c, id))
    }

    pub(super) fn write_frames(
        &self,
        import: &str,
        frames: &[FrameWrite<'_>],
    ) -> Result<(), StoreError> {
        let batch = self.backend.tables_per_transaction().max(1);
        // 1. The tables the frames declare, a batch per transaction: hidden
        // until the import finishes, they need not appear at once, and one
        // transaction for thousands would need a lock on each. A batch
        // written by a try of this write that failed later is found and
        // kept. Each batch is serialized with finishing imports, as each
        // records what it observed of its tables: so a finish either sees
        // the declaration (and the import is noted changed after it) or is
        // seen by it.
        let applied = self
            .backend
            .transaction(false, |c| Ok(open_import(c, import)?.applied_seq))?;
        let declared: Vec<&TableDeclaration> = frames
            .iter()
            .filter(|frame| applied.is_none_or(|applied| frame.seq > applied))
            .flat_map(|frame| &frame.tables)
            .collect();
        for tables in declared.chunks(batch) {
            self.backend.transaction(true, |c| {
                open_import(c, import)?;
                tables
                    .iter()
                    .try_for_each(|table| declare_table::<B>(c, import, table))
            })?;
        }
        // 2. The documents and pins, in one transaction with the last frame's
        // number: a frame is in, or not at all.
        let ended = self.backend.transaction(false, |c| {
            let record = open_import(c, import)?;
            let mut applied = record.applied_seq;
            // Hidden table ids by (component, name), and documents added to each.
            let mut table_ids: HashMap<(&str, &str), (i64, i64)> = HashMap::new();
            let mut rows: Vec<([u8; 16], &str)> = Vec::new();
            let mut ended = Vec::new();
            for frame in frames {
                if applied.is_some_and(|applied| frame.seq <= applied) {
                    continue;
                }
                // Frames land in order: a gap would lose the frames between.
                let next = applied.map_or(0, |applied| applied + 1);
                if frame.seq != next {
                    return Err(StoreError::Database(format!(
                        "frame {} of import {import} cannot be written before frame {next}",
                        frame.seq
                    )));
                }
                applied = Some(frame.seq);
                // Documents in runs of one table (a frame holds one or a few).
                let mut documents = frame.documents.iter().peekable();
                while let Some(first) = documents.peek() {
                    let key = (first.component, first.table);
                    rows.clear();
                    while let Some(doc) = documents.next_if(|d| (d.component, d.table) == key) {
                        rows.push((doc.internal, doc.json));
                    }
                    let entry = match table_ids.get_mut(&key) {
                        Some(entry) => entry,
                        None => {
                            let id = hidden_table_id(c, import, key.0, key.1)?;
                            table_ids.entry(key).or_insert((id, 0))
                        }
                    };
                    entry.1 += rows.len() as i64;
                    c.insert_documents(&documents_table(entry.0), &rows)?;
                }
                for (component, name) in &frame.ended {
                    ended.push(match table_ids.get(&(component.as_str(), name.as_str())) {
                        Some(&(id, _)) => id,
                        None => hidden_table_id(c, import, component, name)?,
                    });
                }
                for pin in &frame.pins {
                    c.exec(
                        "UPDATE snappack_tables SET pin_number = $4, pin_id = $5 \
                         WHERE import_id = $1 AND component = $2 AND name = $3 AND pin_number IS NULL",
                        &[
                            Param::Text(import),
                            Param::Text(&pin.component),
                            Param::Text(&pin.table),
                            Param::Int(pin.number.into()),
                            Param::Text(&pin.id),
                        ],
                    )?;
                }
            }
            for (table_id, added) in table_ids.values() {
                c.exec(
                    "UPDATE snappack_tables SET documents = documents + $2 WHERE id = $1",
                    &[Param::Int(*table_id), Param::Int(*added)],
                )?;
            }
            if applied != record.applied_seq {
                c.exec(
                    "UPDATE snappack_imports SET applied_seq = $2 WHERE id = $1",
                    &[Param::Text(import), Param::Int(applied.unwrap_or(0) as i64)],
                )?;
            }
            Ok(ended)
        })?;
        // 3. A table is complete at its end: its index is built now, on the
        // writes' thread, rather than at finish (which builds those missing,
        // should this fail), a batch of tables per transaction.
        for tables in ended.chunks(batch) {
            self.backend.transaction(false, |c| {
                tables
                    .iter()
                    .try_for_each(|&table_id| c.exec(&create_index(table_id), &[]).map(|_| ()))
            })?;
        }
        Ok(())
    }

    pub(super) fn finish_import(
        &self,
        import: &str,
        lines: &DocumentLines<'_>,
    ) -> Result<Vec<ActivatedTable>, StoreError> {
        // The index of every hidden table that lacks one (a write that
        // failed after its table ended), before the finish, a batch per
        // transaction: hidden, they need not be indexed at once, and the
        // finish then takes no lock on a table it activates.
        self.index_hidden_tables(import)?;
        let result = self.backend.transaction(true, |c| {
            let record = open_import(c, import)?;
            let hidden = load_hidden(c, import)?;
            let active = active_tables(c)?;
            let tables: Vec<HiddenTable> = hidden.iter().map(|(t, _)| t.clone()).collect();
            let plan = plan::plan(record.mode, &tables, &active)?;

            for &(hidden_id, existing_id, number) in &plan.append {
                // The first in the import's order, which is its file's:
                // the one a user would look at first.
                let clash = c.query(
                    &format!(
                        "SELECT h.internal_id FROM {} h JOIN {} e ON e.internal_id = h.internal_id \
                         ORDER BY h.{} LIMIT 1",
                        documents_table(hidden_id),
                        documents_table(existing_id),
                        B::ADDED_ORDER
                    ),
                    &[],
                )?;
                if let Some(row) = clash.into_iter().next() {
                    let internal = row.into_iter().next().unwrap_or(Cell::Null).internal_id()?;
                    let (table, _) = hidden
                        .iter()
                        .find(|(t, _)| t.table_id == hidden_id)
                        .expect("planned tables are the import's");
                    let id = DocumentId::new(number, internal);
                    return Err(ImportError {
                        code: Code::DocumentExists.as_str(),
                        message: format!(
                            "Cannot create document with _id {} that already exists. Try to update it with `db.patch` or `db.replace`.",
                            id.encode()
                        ),
                        component: table.component.clone(),
                        table: Some(table.name.clone()),
                        line: lines(&table.component, &table.name, id),
                    }
                    .into());
                }
            }

            // Dropped after the commit, a batch per transaction.
            for &table_id in &plan.delete {
                retire_table(c, table_id)?;
            }
            // By hidden table, rather than a search of the plan per table.
            let appended: HashMap<i64, (i64, u32)> = plan
                .append
                .iter()
                .map(|&(hidden_id, existing_id, number)| (hidden_id, (existing_id, number)))
                .collect();
            let activate: HashMap<i64, u32> = plan.activate.iter().copied().collect();
            let mut activated = Vec::new();
            for (table, documents) in &hidden {
                let summary = |number, appended| ActivatedTable {
                    component: table.component.clone(),
                    name: table.name.clone(),
                    number,
                    documents: *documents,
                    appended,
                };
                if let Some(&(existing_id, number)) = appended.get(&table.table_id) {
                    c.exec(
                        &format!(
                            "INSERT INTO {} (internal_id, json) SELECT internal_id, json FROM {}",
                            documents_table(existing_id),
                            documents_table(table.table_id)
                        ),
                        &[],
                    )?;
                    c.exec(
                        "UPDATE snappack_tables SET documents = documents + $2, generation = generation + 1 WHERE id = $1",
                        &[Param::Int(existing_id), Param::Int(*documents as i64)],
                    )?;
                    // Its hidden table is dropped after the commit.
                    activated.push(summary(number, true));
                } else if let Some(&number) = activate.get(&table.table_id) {
                    // Indexed before the transaction.
                    c.exec(
                        "UPDATE snappack_tables SET import_id = NULL, number = $2, generation = 0, \
                         observed_id = NULL, observed_generation = NULL, pin_number = NULL, pin_id = NULL \
                         WHERE id = $1",
                        &[Param::Int(table.table_id), Param::Int(number.into())],
                    )?;
                    activated.push(summary(number, false));
                }
            }
            c.exec(
                "UPDATE snappack_imports SET state = $2 WHERE id = $1",
                &[Param::Text(import), Param::Text(ImportState::Finished.as_str())],
            )?;
            Ok((activated, plan.delete))
        });
        match result {
            Err(StoreError::Import(error)) => {
                self.end_import(import, ImportState::Failed, Some(&error.recorded()))?;
                Err(error.into())
            }
            Ok((activated, retired)) => {
                // The tables it deleted or replaced, and the hidden tables
                // it appended to existing ones.
                if let Err(e) = self.drop_retired_tables(&retired) {
                    eprintln!(
                        "snappack: import {import} finished, but not all the tables it replaced \
                         or deleted were dropped ({e}): the next start drops them"
                    );
                }
                self.drop_tables_after_end(import);
                Ok(activated)
            }
            Err(e) => Err(e),
        }
    }

    pub(super) fn cancel_import(
        &self,
        import: &str,
        reason: Option<&str>,
    ) -> Result<(), StoreError> {
        self.end_import(import, ImportState::Cancelled, reason)
    }

    pub(super) fn fail_import(&self, import: &str, error: &ImportError) -> Result<(), StoreError> {
        self.end_import(import, ImportState::Failed, Some(&error.recorded()))
    }

    /// Drops an open import's hidden tables and records its end.
    fn end_import(
        &self,
        import: &str,
        state: ImportState,
        error: Option<&str>,
    ) -> Result<(), StoreError> {
        self.backend.transaction(true, |c| {
            open_import(c, import)?;
            c.exec(
                "UPDATE snappack_imports SET state = $2, error = $3 WHERE id = $1",
                &[
                    Param::Text(import),
                    Param::Text(state.as_str()),
                    error.map_or(Param::Null, Param::Text),
                ],
            )?;
            Ok(())
        })?;
        self.drop_tables_after_end(import);
        Ok(())
    }

    /// Drops the hidden tables ended import `import` left, a batch per
    /// transaction (nothing sees them, so they need not go at once, and one
    /// transaction for thousands would need a lock on each); those a
    /// failure leaves are said, and the next start drops them
    /// ([`drop_ended_tables`](Self::drop_ended_tables)).
    fn drop_tables_after_end(&self, import: &str) {
        if let Err(e) = self.drop_tables_of_ended(Some(import)) {
            eprintln!(
                "snappack: import {import} ended, but not all its hidden tables were dropped \
                 ({e}): the next start drops them"
            );
        }
    }

    pub(super) fn drop_ended_tables(&self) -> Result<u64, StoreError> {
        let retired = self.backend.transaction(false, |c| {
            c.query(
                "SELECT table_id FROM snappack_retired ORDER BY table_id",
                &[],
            )?
            .iter()
            .map(|row| row[0].int())
            .collect::<Result<Vec<i64>, _>>()
        })?;
        self.drop_retired_tables(&retired)?;
        Ok(retired.len() as u64 + self.drop_tables_of_ended(None)?)
    }

    /// Drops the documents tables of `retired` tables ([`retire_table`]), a
    /// batch per transaction.
    fn drop_retired_tables(&self, retired: &[i64]) -> Result<(), StoreError> {
        for tables in retired.chunks(self.backend.tables_per_transaction().max(1)) {
            self.backend.transaction(false, |c| {
                tables
                    .iter()
                    .try_for_each(|&table_id| drop_retired(c, table_id))
            })?;
        }
        Ok(())
    }

    /// Builds the index of each of `import`'s hidden tables that lacks one,
    /// a batch per transaction.
    fn index_hidden_tables(&self, import: &str) -> Result<(), StoreError> {
        let missing = self.backend.transaction(false, |c| {
            open_import(c, import)?;
            let indexes: HashSet<String> = c
                .query(B::DOCUMENTS_INDEXES, &[])?
                .into_iter()
                .map(|row| row.into_iter().next().unwrap_or(Cell::Null).text())
                .collect::<Result<_, _>>()?;
            c.query(
                "SELECT id FROM snappack_tables WHERE import_id = $1 ORDER BY id",
                &[Param::Text(import)],
            )?
            .iter()
            .map(|row| row[0].int())
            .filter(|id| {
                !id.as_ref()
                    .is_ok_and(|&id| indexes.contains(&documents_index(id)))
            })
            .collect::<Result<Vec<i64>, _>>()
        })?;
        for tables in missing.chunks(self.backend.tables_per_transaction().max(1)) {
            self.backend.transaction(false, |c| {
                tables
                    .iter()
                    .try_for_each(|&table_id| c.exec(&create_index(table_id), &[]).map(|_| ()))
            })?;
        }
        Ok(())
    }

    /// Drops the hidden tables of the imports that are no longer open
    /// (`import` only, when given), a batch per transaction; returns how many.
    fn drop_tables_of_ended(&self, import: Option<&str>) -> Result<u64, StoreError> {
        let open = ImportState::Open.as_str();
        let ids = self.backend.transaction(false, |c| {
            let rows = match import {
                Some(import) => c.query(
                    "SELECT t.id FROM snappack_tables t JOIN snappack_imports i ON i.id = t.import_id \
                     WHERE t.import_id = $1 AND i.state <> $2 ORDER BY t.id",
                    &[Param::Text(import), Param::Text(open)],
                )?,
                None => c.query(
                    "SELECT t.id FROM snappack_tables t JOIN snappack_imports i ON i.id = t.import_id \
                     WHERE i.state <> $1 ORDER BY t.id",
                    &[Param::Text(open)],
                )?,
            };
            rows.iter()
                .map(|row| row[0].int())
                .collect::<Result<Vec<i64>, _>>()
        })?;
        for tables in ids.chunks(self.backend.tables_per_transaction().max(1)) {
            self.backend.transaction(false, |c| {
                tables
                    .iter()
                    .try_for_each(|&table_id| drop_table(c, table_id))
            })?;
        }
        Ok(ids.len() as u64)
    }

    pub(super) fn observe_tables(
        &self,
        tables: &[(&str, &str)],
    ) -> Result<Vec<Observed>, StoreError> {
        self.backend.transaction(false, |c| {
            tables
                .iter()
                .map(|&(component, name)| observe_table(c, component, name))
                .collect()
        })
    }

    pub(super) fn changed_table(&self, import: &str) -> Result<Option<ImportError>, StoreError> {
        self.backend.transaction(false, |c| {
            let hidden: Vec<HiddenTable> = load_hidden(c, import)?
                .into_iter()
                .map(|(table, _)| table)
                .collect();
            Ok(plan::changed_table(&hidden, &active_tables(c)?))
        })
    }

    pub(super) fn claim_data_folder(&self, folder: &str) -> Result<Option<String>, StoreError> {
        self.backend.transaction(true, |c| {
            let rows = c.query(
                "SELECT value FROM snappack_meta WHERE key = 'data_folder'",
                &[],
            )?;
            match rows.into_iter().next() {
                Some(row) => {
                    let owner = row.into_iter().next().unwrap_or(Cell::Null).text()?;
                    Ok((owner != folder).then_some(owner))
                }
                None => {
                    c.exec(
                        "INSERT INTO snappack_meta (key, value) VALUES ('data_folder', $1)",
                        &[Param::Text(folder)],
                    )?;
                    Ok(None)
                }
            }
        })
    }

    pub(super) fn data_folder(&self) -> Result<Option<String>, StoreError> {
        self.backend.transaction(false, |c| {
            let rows = c.query(
                "SELECT value FROM snappack_meta WHERE key = 'data_folder'",
                &[],
            )?;
            match rows.into_iter().next() {
                Some(row) => Ok(Some(row.into_iter().next().unwrap_or(Cell::Null).text()?)),
                None => Ok(None),
            }
        })
    }

    pub(super) fn hidden_tables(&self) -> Result<u64, StoreError> {
        self.backend.transaction(false, |c| {
            let rows = c.query(
                "SELECT (SELECT COUNT(*) FROM snappack_tables WHERE import_id IS NOT NULL) \
                 + (SELECT COUNT(*) FROM snappack_retired)",
                &[],
            )?;
            Ok(rows[0][0].int()? as u64)
        })
    }

    pub(super) fn documents(
        &self,
        component: &str,
        table: &str,
    ) -> Result<Option<Vec<StoredDocument>>, StoreError> {
        self.backend.transaction(false, |c| {
            let found = c.query(
                "SELECT id, number FROM snappack_tables WHERE import_id IS NULL AND component = $1 AND name = $2",
                &[Param::Text(component), Param::Text(table)],
            )?;
            let Some(row) = found.first() else {
                return Ok(None);
            };
            let (table_id, table_number) = (row[0].int()?, number(&row[1])?);
            let rows = c.query(
                &format!(
                    "SELECT internal_id, json FROM {} ORDER BY internal_id",
                    documents_table(table_id)
                ),
                &[],
            )?;
            rows.into_iter()
                .map(|row| {
                    let mut cells = row.into_iter();
                    let internal = cells.next().unwrap_or(Cell::Null).internal_id()?;
                    let json = cells.next().unwrap_or(Cell::Null).text()?;
                    Ok(StoredDocument {
                        id: DocumentId::new(table_number, internal).encode(),
                        json,
                    })
                })
                .collect::<Result<Vec<_>, StoreError>>()
                .map(Some)
        })
    }
}

/// Implements [`super::Store`] for a newtype around [`SqlStore`].
macro_rules! delegate_store {
    ($store:ty) => {
        impl $crate::server::store::Store for $store {
            fn tables(&self) -> Result<Vec<$crate::server::store::TargetTable>, StoreError> {
                self.0.tables()
            }
            fn create_import(
                &self,
                id: &str,
                mode: $crate::server::store::ImportMode,
                label: Option<&str>,
                target: Option<&$crate::server::store::ImportTarget>,
            ) -> Result<(), StoreError> {
                self.0.create_import(id, mode, label, target)
            }
            fn imports(&self) -> Result<Vec<$crate::server::store::ImportRecord>, StoreError> {
                self.0.imports()
            }
            fn imports_page(
                &self,
                query: $crate::server::store::ImportsQuery<'_>,
            ) -> Result<$crate::server::store::ImportsPage, StoreError> {
                self.0.imports_page(query)
            }
            fn import(&self, id: &str) -> Result<$crate::server::store::ImportRecord, StoreError> {
                self.0.import(id)
            }
            fn write_frames(
                &self,
                import: &str,
                frames: &[$crate::server::store::FrameWrite<'_>],
            ) -> Result<(), StoreError> {
                self.0.write_frames(import, frames)
            }
            fn finish_import_locating(
                &self,
                import: &str,
                lines: &$crate::server::store::DocumentLines<'_>,
            ) -> Result<Vec<$crate::server::store::ActivatedTable>, StoreError> {
                self.0.finish_import(import, lines)
            }
            fn cancel_import(&self, import: &str, reason: Option<&str>) -> Result<(), StoreError> {
                self.0.cancel_import(import, reason)
            }
            fn fail_import(
                &self,
                import: &str,
                error: &$crate::server::store::ImportError,
            ) -> Result<(), StoreError> {
                self.0.fail_import(import, error)
            }
            fn observe_tables(
                &self,
                tables: &[(&str, &str)],
            ) -> Result<Vec<$crate::server::store::Observed>, StoreError> {
                self.0.observe_tables(tables)
            }
            fn changed_table(
                &self,
                import: &str,
            ) -> Result<Option<$crate::server::store::ImportError>, StoreError> {
                self.0.changed_table(import)
            }
            fn claim_data_folder(&self, folder: &str) -> Result<Option<String>, StoreError> {
                self.0.claim_data_folder(folder)
            }
            fn data_folder(&self) -> Result<Option<String>, StoreError> {
                self.0.data_folder()
            }
            fn hidden_tables(&self) -> Result<u64, StoreError> {
                self.0.hidden_tables()
            }
            fn drop_ended_tables(&self) -> Result<u64, StoreError> {
                self.0.drop_ended_tables()
            }
            fn documents(
                &self,
                component: &str,
                table: &str,
            ) -> Result<Option<Vec<$crate::server::store::StoredDocument>>, StoreError> {
                self.0.documents(component, table)
            }
        }
    };
}
pub(super) use delegate_store;

//! The snapshot ZIP walk: read with random access, entry by entry, so that
//! memory stays bounded whatever the archive's size.

use std::collections::hash_map::Entry;
use std::collections::{HashMap, HashSet};
use std::io::{self, Read, Seek, SeekFrom};

use deflate64::Deflate64Decoder;
use sha2::{Digest, Sha256};
use zip::read::{Config, ZipFile};
use zip::result::ZipError;
// Public, outside semver (Cargo.lock pins it): the one reader that lists
// entries sharing a name.
use zip::unstable::read::ZipIterable;
use zip::{CompressionMethod, ZipArchive};

use super::numbers::{apply_target, conflict_message, unassigned_number_warning, Numbering};
use super::scan::{scan, Checking, Reporting, ScanStop};
use super::storage::StorageMetadata;
use super::table::TableChecker;
use super::{
    in_component, shard, Context, Plan, PlannedFile, PlannedTable, Shard, Share, Sink, Stop,
    Tracked,
};
use crate::archive::inflate::{
    deflate_entry, zstd_entry, CheckedEntry, Declared, DeflateEntry, ZstdEntry,
};
use crate::archive::lines::{starts_as_utf16, with_cr_alone_hint, without_newline, UTF16_HINT};
use crate::archive::{classify, storage_name, EntryKind, Format, LineError, LineReader};
use crate::convex::names::check_identifier;
use crate::convex::value::{encode_base64, ValueRules};
use crate::convex::DocumentId;
use crate::report::{Code, Finding, ListedAt, NumberSource};

/// Longest line read; a document is at most 1 MiB, even escaped this is ample.
pub(crate) const MAX_LINE: usize = 64 << 20;

/// One documents entry.
struct Stream {
    component: String,
    table: String,
    index: usize,
    name: String,
    /// Uncompressed size, as the central directory declares it.
    size: u64,
    /// Where its local header starts and its compressed size.
    span: (u64, u64),
}

/// One stored-file entry.
struct Blob {
    component: String,
    id: DocumentId,
    index: usize,
    name: String,
    size: u64,
    span: (u64, u64),
}

/// Validates a snapshot ZIP archive: classifies its entries by name and
/// reads their generated schemas, numbers the tables, then checks every
/// document of the tables this walk owns and their stored files, feeding
/// `sink` as it goes. Returns the plan; a stop carries what was planned.
pub(super) fn walk<R: Read + Seek>(
    input: R,
    ctx: &mut Context,
    sink: &mut dyn Sink,
) -> Result<Plan, Stop> {
    let unplanned = || Plan {
        format: Some(Format::Zip),
        ..Plan::default()
    };
    let mut archive = match open_archive(input, ctx) {
        Ok(archive) => archive,
        Err(why) => {
            ctx.read_error(Finding::new(
                Code::InvalidZip,
                format!("invalid zip file: {why}"),
            ));
            return Ok(unplanned());
        }
    };
    // Convex refuses such an import before it reads anything, and so does
    // this walk: the option is wrong, not the archive, whose documents
    // (checked against the server's tables, which an upload would not
    // reach) would bury the one finding that matters.
    if let Some(table) = &ctx.options.table {
        ctx.error(Finding::new(
            Code::InvalidName,
            format!("ZIP import cannot have table name (got '{table}')"),
        ));
        return Ok(unplanned());
    }
    let mut entries = read_entries(&mut archive, ctx).map_err(|halt| halt.with(unplanned()))?;
    let (tables, clashed) =
        number_tables(&mut archive, &mut entries, ctx).map_err(|halt| halt.with(unplanned()))?;
    let files = plan_files(&tables, &mut entries, ctx);
    let plan = Plan {
        format: Some(Format::Zip),
        bytes: 0,
        tables,
        files,
        left_out: std::mem::take(&mut entries.left_out),
    };
    ctx.counts = vec![(0, 0); plan.tables.len()];
    if let Some(shard) = ctx.shard() {
        share_out(&plan, &entries.streams, &entries.blobs, shard, ctx);
    }
    if let Err(e) = sink.begin(&plan) {
        return Err(Stop::Sink(e, plan));
    }
    // The `_storage` rows of each component, by component.
    let mut metadata: HashMap<String, StorageMetadata> = HashMap::new();
    let checked = check_tables(
        &mut archive,
        &plan,
        &entries.streams,
        &clashed,
        &mut metadata,
        ctx,
        sink,
    )
    .and_then(|()| {
        check_files(
            &mut archive,
            &plan,
            &entries.blobs,
            &mut metadata,
            ctx,
            sink,
        )
    });
    if let Err(halt) = checked {
        return Err(halt.with(plan));
    }
    report_missing_files(&plan, &metadata, ctx);
    if let Err(e) = sink.finish() {
        return Err(Stop::Sink(e, plan));
    }
    Ok(plan)
}

/// Why a stage of the walk ended it early: a [`Stop`] once the plan made so
/// far is added.
enum Halt {
    Cancelled,
    Sink(io::Error),
    InputFailed,
}

impl Halt {
    fn with(self, plan: Plan) -> Stop {
        match self {
            Halt::Cancelled => Stop::Cancelled(plan),
            Halt::Sink(e) => Stop::Sink(e, plan),
            Halt::InputFailed => Stop::InputFailed(plan),
        }
    }
}

impl From<ScanStop> for Halt {
    fn from(stop: ScanStop) -> Self {
        match stop {
            ScanStop::Cancelled => Halt::Cancelled,
            ScanStop::Sink(e) => Halt::Sink(e),
        }
    }
}

/// What stage A finds in the archive's entries, by name.
#[derive(Default)]
struct Entries {
    /// Documents entries, `_tables` included, in archive order.
    streams: Vec<Stream>,
    /// Stored-file entries, one per file.
    blobs: Vec<Blob>,
    /// Entries naming a stored file an earlier entry names (by `blobs`
    /// index): an error only where the component's files are imported.
    repeated_blobs: Vec<(usize, String)>,
    /// Entries that no stream can carry (see [`Plan::left_out`]).
    left_out: Vec<String>,
    /// Each table's value rules, from its generated schema.
    schemas: HashMap<(String, String), ValueRules>,
}

/// Stage A: every entry by name; generated schemas are read now.
fn read_entries<R: Read + Seek>(
    archive: &mut ZipArchive<R>,
    ctx: &mut Context,
) -> Result<Entries, Halt> {
    let options = ctx.options;
    // The component the archive is imported into.
    let base = &options.component;
    let mut entries = Entries::default();
    // Each stored file's place in `blobs`, by component and id.
    let mut blob_ids: HashMap<(String, DocumentId), usize> = HashMap::new();
    for index in 0..archive.len() {
        // From the central directory: no read of the entry itself.
        let (name, size, span) = match archive.by_index_data(index) {
            Ok(file) => (
                file.name().map(|n| n.into_owned()),
                file.size(),
                (file.header_start(), file.compressed_size()),
            ),
            Err(e) => {
                ctx.error(Finding::new(
                    Code::InvalidZip,
                    format!("invalid zip file: entry {index}: {e}"),
                ));
                continue;
            }
        };
        let name = match name {
            Ok(name) => name,
            Err(e) => {
                ctx.error(Finding::new(
                    Code::InvalidZip,
                    format!("invalid zip file: entry {index} has an unreadable name: {e}"),
                ));
                continue;
            }
        };
        match classify(&name, base) {
            Err(e) => {
                ctx.error(Finding::new(e.code, e.message).entry(&name));
                entries.left_out.push(name.clone());
            }
            Ok(EntryKind::Documents { component, table }) => entries.streams.push(Stream {
                component,
                table,
                index,
                name: name.clone(),
                size,
                span,
            }),
            Ok(EntryKind::GeneratedSchema { component, table }) => {
                let mark = ctx.findings_mark();
                let rules = read_generated_schema(archive, index, &name, ctx);
                ctx.name_table_since(mark, &component, &table);
                if ctx.input_failed() {
                    return Err(Halt::InputFailed);
                }
                entries.schemas.insert((component, table), rules);
            }
            Ok(EntryKind::SkippedSystemTable { component, table }) => ctx.warning(
                Finding::new(
                    Code::SkippedSystemTable,
                    format!("system table {table} is not imported; its entry is skipped"),
                )
                .entry(&name)
                .table(&component, table),
            ),
            Ok(EntryKind::Ignored) => {
                if let Some(why) = ignored_data(&name) {
                    ctx.warning(
                        Finding::new(
                            Code::EntryIgnored,
                            format!("this entry is not read, as Convex does not read it: {why}"),
                        )
                        .entry(&name),
                    );
                }
            }
        }
        match storage_name(&name, base) {
            None => {}
            Some(Err(e)) => {
                ctx.error(Finding::new(e.code, e.message).entry(&name));
                entries.left_out.push(name);
            }
            Some(Ok(file)) => match DocumentId::decode(&file.id) {
                // The extension is not part of the id: `<id>` and `<id>.png`
                // would be stored twice under one `_id`.
                Ok(id) => match blob_ids.entry((file.component.clone(), id)) {
                    Entry::Occupied(first) => entries.repeated_blobs.push((*first.get(), name)),
                    Entry::Vacant(slot) => {
                        slot.insert(entries.blobs.len());
                        entries.blobs.push(Blob {
                            component: file.component,
                            id,
                            index,
                            name,
                            size,
                            span,
                        });
                    }
                },
                Err(e) => {
                    ctx.error(
                        Finding::new(
                            Code::InvalidStorageId,
                            format!("_storage id '{}' invalid: {e}", file.id),
                        )
                        .entry(&name),
                    );
                    entries.left_out.push(name);
                }
            },
        }
    }
    Ok(entries)
}

/// Tables, each by its component and name.
type TableSet = HashSet<(String, String)>;

/// Table numbers: `_tables` rows, then each table's first `_id`, then the
/// target's tables. Returns the tables in import order, and those whose
/// first `_id`'s number another table holds.
fn number_tables<R: Read + Seek>(
    archive: &mut ZipArchive<R>,
    entries: &mut Entries,
    ctx: &mut Context,
) -> Result<(Vec<PlannedTable>, TableSet), Halt> {
    // Table numbers, step 1: `_tables` rows.
    let mut numbering = Numbering::default();
    let mut listed: Vec<ListedTable> = Vec::new();
    for stream in entries.streams.iter().filter(|s| s.table == "_tables") {
        let errors = ctx.error_count;
        read_tables_entry(archive, stream, &mut numbering, &mut listed, ctx);
        if ctx.input_failed() {
            return Err(Halt::InputFailed);
        }
        // A row declared no table: the stream cannot carry it to the server.
        if ctx.error_count > errors {
            entries.left_out.push(stream.name.clone());
        }
    }

    // Step 2, in entry order: the first document's `_id`.
    let mut tables: Vec<PlannedTable> = Vec::new();
    // Tables whose first `_id`'s number another table holds: that is their
    // error, and the server choosing their number never comes to pass.
    let mut clashed = TableSet::new();
    // Each table's place in `tables`, by component and name.
    let mut planned: HashMap<(String, String), usize> = HashMap::new();
    for stream in entries.streams.iter().filter(|s| s.table != "_tables") {
        let key = (stream.component.clone(), stream.table.clone());
        if let Some(&t) = planned.get(&key) {
            tables[t].entries.push(stream.name.clone());
            ctx.warning(
                Finding::new(
                    Code::RepeatedTableEntry,
                    format!(
                        "table {} has more than one documents entry: snappack imports them one after the other, but Convex's importer, which continues a table it is importing from the documents it has, skips as many of this entry's first documents as the entries before it gave the table",
                        stream.table
                    ),
                )
                .entry(&stream.name)
                .table(&stream.component, stream.table.clone()),
            );
            continue;
        }
        let (number, number_source) = match numbering.number_of(&stream.component, &stream.table) {
            Some(n) => (Some(n), NumberSource::Tables),
            None => match first_id_number(archive, stream.index, ctx)? {
                Some(n) => match numbering.claim(&stream.component, &stream.table, n) {
                    Ok(()) => (Some(n), NumberSource::Id),
                    Err(holder) => {
                        ctx.error(
                            Finding::new(
                                Code::InvalidId,
                                conflict_message(&holder, &stream.table, &stream.component, n),
                            )
                            .entry(&stream.name)
                            .table(&stream.component, stream.table.clone())
                            .line(1),
                        );
                        clashed.insert(key.clone());
                        (None, NumberSource::Unassigned)
                    }
                },
                None => (None, NumberSource::Unassigned),
            },
        };
        let rules = entries
            .schemas
            .get(&key)
            .copied()
            .unwrap_or(ValueRules::Plain);
        planned.insert(key, tables.len());
        tables.push(PlannedTable {
            component: stream.component.clone(),
            name: stream.table.clone(),
            number,
            number_source,
            rules,
            entries: vec![stream.name.clone()],
            listed_at: None,
        });
    }
    // Every table `_tables` lists points at its row; those without
    // documents are created empty.
    for listed in listed {
        match planned.get(&(listed.component.clone(), listed.name.clone())) {
            Some(&t) => tables[t].listed_at = Some(listed.at),
            None => tables.push(PlannedTable {
                number: numbering.number_of(&listed.component, &listed.name),
                component: listed.component,
                name: listed.name,
                number_source: NumberSource::Tables,
                rules: ValueRules::Plain,
                entries: Vec::new(),
                listed_at: Some(listed.at),
            }),
        }
    }
    apply_target(&mut tables, &mut numbering, ctx);
    Ok((tables, clashed))
}

/// The stored files to import: those of components with `_storage`
/// metadata (a file named twice there is an error; elsewhere a warning
/// says the files are not imported).
fn plan_files(
    tables: &[PlannedTable],
    entries: &mut Entries,
    ctx: &mut Context,
) -> Vec<PlannedFile> {
    let mut files = Vec::new();
    let mut ignored_components: Vec<&str> = Vec::new();
    let with_storage = storage_tables(tables);
    // Convex reads no stored file of a component without `_storage`
    // metadata, so one named twice there is no error.
    for (first, name) in std::mem::take(&mut entries.repeated_blobs) {
        let first = &entries.blobs[first];
        if with_storage.contains_key(first.component.as_str()) {
            ctx.error(
                Finding::new(
                    Code::DuplicateId,
                    format!(
                        "Objects in table \"_storage\" have duplicate _id fields: \
                         entries {} and {name} are both stored file {}",
                        first.name, first.id
                    ),
                )
                .entry(&name)
                .table(&first.component, "_storage"),
            );
            entries.left_out.push(name);
        }
    }
    for blob in &entries.blobs {
        if with_storage.contains_key(blob.component.as_str()) {
            files.push(PlannedFile {
                component: blob.component.clone(),
                id: blob.id,
                entry: blob.name.clone(),
                size: blob.size,
            });
        } else if !ignored_components.contains(&blob.component.as_str()) {
            ignored_components.push(&blob.component);
            ctx.warning(
                Finding::new(
                    Code::StorageFilesIgnored,
                    format!(
                        "stored files{} are not imported: there is no _storage/documents.jsonl for them",
                        in_component(&blob.component)
                    ),
                )
                .entry(&blob.name),
            );
        }
    }
    files
}

/// Stage C: every document of every table this walk owns. `clashed` are
/// the tables whose first `_id`'s number another table holds; `metadata`
/// gets each component's `_storage` rows.
fn check_tables<R: Read + Seek>(
    archive: &mut ZipArchive<R>,
    plan: &Plan,
    streams: &[Stream],
    clashed: &TableSet,
    metadata: &mut HashMap<String, StorageMetadata>,
    ctx: &mut Context,
    sink: &mut dyn Sink,
) -> Result<(), Halt> {
    let mut spare: Option<TableChecker> = None;
    let streams_by_name: HashMap<&str, &Stream> =
        streams.iter().map(|s| (s.name.as_str(), s)).collect();
    for (t, table) in plan.tables.iter().enumerate() {
        if !ctx.owns_table(t) {
            continue;
        }
        ctx.set_phase(1 + t as u32);
        let mut checker = match spare.take() {
            Some(done) => done.reuse(&table.name, table.number, table.rules),
            None => TableChecker::new(&table.name, table.number, table.rules),
        };
        let mut ids_without_first = false;
        // Whether the table's first entry, whose first line alone could give
        // the table its number (step 2), has a document.
        let mut first_entry_has_documents = false;
        for (e, entry_name) in table.entries.iter().enumerate() {
            let Some(&stream) = streams_by_name.get(entry_name.as_str()) else {
                continue;
            };
            let documents_before = ctx.counts[t].0;
            let storage = (table.name == "_storage").then(|| {
                let storage = metadata.entry(table.component.clone()).or_default();
                storage.entry = e;
                storage
            });
            ctx.enter_share(stream.span);
            checker.start_entry(entry_name);
            scan_entry(
                archive,
                stream,
                t,
                table,
                &mut checker,
                storage,
                &mut ids_without_first,
                ctx,
                sink,
            )?;
            if ctx.input_failed() {
                return Err(Halt::InputFailed);
            }
            if e == 0 {
                first_entry_has_documents = ctx.counts[t].0 > documents_before;
            }
        }
        if ids_without_first && !clashed.contains(&(table.component.clone(), table.name.clone())) {
            let warning = unassigned_number_warning(&table.component, &table.name);
            // At the first document, or at the first entry when it has none:
            // a later entry's first line numbers nothing, `_id` or not.
            ctx.warning(match table.entries.first() {
                Some(entry) if first_entry_has_documents => warning.entry(entry).line(1),
                Some(entry) => warning.entry(entry),
                None => warning,
            });
        }
        sink.end_table(t).map_err(Halt::Sink)?;
        spare = Some(checker);
    }
    Ok(())
}

/// The stored files of the `_storage` tables this walk owns: their bytes
/// against their rows in `metadata` (which marks the rows that have one).
fn check_files<R: Read + Seek>(
    archive: &mut ZipArchive<R>,
    plan: &Plan,
    blobs: &[Blob],
    metadata: &mut HashMap<String, StorageMetadata>,
    ctx: &mut Context,
    sink: &mut dyn Sink,
) -> Result<(), Halt> {
    // Stored files: bytes against their metadata.
    let tables_before_files = 1 + plan.tables.len() as u32;
    let storage_tables = storage_tables(&plan.tables);
    let blobs_by_name: HashMap<&str, &Blob> = blobs.iter().map(|b| (b.name.as_str(), b)).collect();
    for (f, file) in plan.files.iter().enumerate() {
        let Some(&storage_table) = storage_tables.get(file.component.as_str()) else {
            continue;
        };
        let storage = &plan.tables[storage_table];
        if !ctx.owns_table(storage_table) {
            continue;
        }
        ctx.set_phase(tables_before_files + f as u32);
        let storage_number = storage.number;
        let meta = metadata.entry(file.component.clone()).or_default();
        let (expected, row_error) = match meta.rows.get_mut(&file.id) {
            Some(row) => {
                row.has_file = true;
                let at = (row.entry, row.line);
                (
                    row.sha256.map(|sha256| (sha256, at)),
                    row.document_error().map(|e| (at, e)),
                )
            }
            None => (None, None),
        };
        let located = |f: Finding| f.entry(&file.entry).table(&file.component, "_storage");
        let blob = blobs_by_name.get(file.entry.as_str()).copied();
        if let Some(blob) = blob {
            ctx.enter_share(blob.span);
        }
        let digest = match blob.map(|b| hash_file(archive, b.index, ctx.input.len, f, sink)) {
            Some(Ok(digest)) => digest,
            Some(Err(HashStop::Sink(e))) => return Err(Halt::Sink(e)),
            Some(Err(stop)) => {
                let finding = match &stop {
                    HashStop::Zip(e) => zip_entry_error(e),
                    _ => Finding::new(Code::InvalidZip, format!("invalid zip file: {stop}")),
                };
                ctx.read_error(located(finding));
                if ctx.input_failed() {
                    return Err(Halt::InputFailed);
                }
                continue;
            }
            None => continue,
        };
        ctx.storage.files += 1;
        ctx.storage.bytes += file.size;
        if let Some((expected, (entry, line))) = expected {
            if expected != digest {
                // The file, and the row that declares its digest.
                let row =
                    at_storage_row(storage, entry, line, Finding::new(Code::Sha256Mismatch, ""));
                let declared = match &row.entry {
                    Some(rows) => format!("line {line} of {rows}"),
                    None => format!("line {line}"),
                };
                let mut finding = located(Finding::new(
                    Code::Sha256Mismatch,
                    format!(
                        "Sha256 mismatch. Expected: {} Actual: {} (the sha256 of the _storage row on {declared})",
                        encode_base64(&expected),
                        encode_base64(&digest)
                    ),
                ));
                finding.first_line = Some(line);
                finding.first_entry = row.entry;
                ctx.error(finding);
            }
        }
        // The row Convex inserts for the file.
        if let Some(((entry, line), error)) = row_error {
            let finding = Finding::new(error.code, error.message.clone());
            ctx.error(error.locate(at_storage_row(storage, entry, line, finding)));
        }
        if let Some(number) = storage_number {
            if file.id.table != number {
                ctx.error(located(Finding::new(
                    Code::ImportConflict,
                    super::table::import_conflict_message(&file.id.to_string(), "_storage"),
                )));
            }
        }
        if !ctx.tick(ctx.input.position()) {
            return Err(Halt::Cancelled);
        }
    }
    Ok(())
}

/// Warns of each `_storage` row without a file, in the tables this walk owns.
fn report_missing_files(
    plan: &Plan,
    metadata: &HashMap<String, StorageMetadata>,
    ctx: &mut Context,
) {
    // Rows without a file, by component in the order of their `_storage` tables.
    let files_before_missing = 1 + (plan.tables.len() + plan.files.len()) as u32;
    for (t, table) in plan.tables.iter().enumerate() {
        if table.name != "_storage" || !ctx.owns_table(t) {
            continue;
        }
        let component = &table.component;
        let Some(meta) = metadata.get(component) else {
            continue;
        };
        ctx.set_phase(files_before_missing + t as u32);
        let mut missing: Vec<(&DocumentId, (usize, u64))> = meta
            .rows
            .iter()
            .filter(|(_, row)| !row.has_file)
            .map(|(id, row)| (id, (row.entry, row.line)))
            .collect();
        missing.sort_by_key(|(_, at)| *at);
        for (id, (entry, line)) in missing {
            let finding = Finding::new(
                Code::StorageFileMissing,
                format!("no file for _storage row {id}; Convex skips the row"),
            );
            ctx.warning(at_storage_row(table, entry, line, finding));
        }
    }
}

/// `finding` at line `line` of entry `entry` (an index into its entries) of
/// `_storage` table `table`.
fn at_storage_row(table: &PlannedTable, entry: usize, line: u64, finding: Finding) -> Finding {
    let finding = finding.table(&table.component, "_storage").line(line);
    match table.entries.get(entry) {
        Some(entry) => finding.entry(entry),
        None => finding,
    }
}

/// Each component's `_storage` table: its place in `tables`.
fn storage_tables(tables: &[PlannedTable]) -> HashMap<&str, usize> {
    tables
        .iter()
        .enumerate()
        .filter(|(_, t)| t.name == "_storage")
        .map(|(i, t)| (t.component.as_str(), i))
        .collect()
}

/// Gives each table (and each stored file, with its component's `_storage`
/// table) to one of the workers, by uncompressed bytes, and makes this
/// worker's progress count the compressed bytes of its own entries.
fn share_out(plan: &Plan, streams: &[Stream], blobs: &[Blob], shard: Shard, ctx: &mut Context) {
    // Uncompressed and compressed bytes: of each entry, and of each
    // component's stored files (which go with its `_storage` table).
    let entries: HashMap<&str, (u64, u64)> = streams
        .iter()
        .map(|s| (s.name.as_str(), (s.size, s.span.1)))
        .chain(blobs.iter().map(|b| (b.name.as_str(), (b.size, b.span.1))))
        .collect();
    let mut files: HashMap<&str, (u64, u64)> = HashMap::new();
    for file in &plan.files {
        let (size, compressed) = entries
            .get(file.entry.as_str())
            .copied()
            .unwrap_or_default();
        let total = files.entry(file.component.as_str()).or_default();
        *total = (total.0 + size, total.1 + compressed);
    }
    let bytes: Vec<(u64, u64)> = plan
        .tables
        .iter()
        .map(|table| {
            let stored = (table.name == "_storage")
                .then(|| files.get(table.component.as_str()).copied())
                .flatten()
                .unwrap_or_default();
            table
                .entries
                .iter()
                .filter_map(|name| entries.get(name.as_str()))
                .fold(stored, |(a, b), (size, compressed)| {
                    (a + size, b + compressed)
                })
        })
        .collect();
    let weights: Vec<u64> = bytes.iter().map(|&(size, _)| size).collect();
    ctx.owners = shard::assign(&weights, shard.count);
    ctx.progress.bytes_total = bytes
        .iter()
        .enumerate()
        .filter(|&(t, _)| ctx.owns_table(t))
        .map(|(_, &(_, compressed))| compressed)
        .sum();
    ctx.share = Some(Share::default());
}

/// Checks every line of one documents entry.
#[allow(clippy::too_many_arguments)]
fn scan_entry<R: Read + Seek>(
    archive: &mut ZipArchive<R>,
    stream: &Stream,
    t: usize,
    table: &PlannedTable,
    checker: &mut TableChecker,
    storage: Option<&mut StorageMetadata>,
    ids_without_first: &mut bool,
    ctx: &mut Context,
    sink: &mut dyn Sink,
) -> Result<(), ScanStop> {
    let at = |f: Finding| {
        f.entry(&stream.name)
            .table(&table.component, table.name.clone())
    };
    let checking = Checking::new(checker, storage, table.number, stream.size);
    let input_len = ctx.input.len;
    let mut reporting = Reporting {
        t,
        table,
        ids_without_first,
        ctx,
        sink,
        at: &at,
        row: 0,
        bytes: 0,
    };
    open_entry(archive, stream.index, input_len)
        .map(|entry| scan(entry, checking, &mut reporting))
        .unwrap_or_else(|e| {
            reporting.ctx.read_error(at(zip_entry_error(&e)));
            Ok(())
        })
}

/// An entry's uncompressed bytes, checked against its declared size and
/// CRC32. One is open at a time, so the variants' sizes do not matter.
#[allow(clippy::large_enum_variant)]
enum EntryReader<'a, R: Read> {
    /// Inflated here with large buffers (`archive::inflate`).
    Deflate(DeflateEntry<ZipFile<'a, R>>),
    /// Decoded here: the zip crate is built without zstd.
    Zstd(ZstdEntry<ZipFile<'a, R>>),
    /// Checked here, as Convex checks it.
    Stored(CheckedEntry<ZipFile<'a, R>>),
    /// Decoded and checked here: the zip crate checks no entry that
    /// inflates to less than it declares, nor skips a CRC-32 declared as 0.
    Deflate64(CheckedEntry<Deflate64Decoder<io::BufReader<ZipFile<'a, R>>>>),
    /// Anything else, read (or refused) by the zip crate.
    Zip(ZipFile<'a, R>),
}

impl<R: Read> Read for EntryReader<'_, R> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        match self {
            EntryReader::Deflate(entry) => entry.read(out),
            EntryReader::Zstd(entry) => entry.read(out),
            EntryReader::Stored(entry) => entry.read(out),
            EntryReader::Deflate64(entry) => entry.read(out),
            EntryReader::Zip(entry) => entry.read(out),
        }
    }
}

/// Opens entry `index` for reading, by its compression method. An entry
/// whose compressed data, as the central directory declares it, reaches
/// past the end of the input (`input_len` bytes) is refused: the archive
/// is cut short or its directory damaged, and reading would take whatever
/// follows the entry (the directory itself) for its data, or stop short.
fn open_entry<R: Read + Seek>(
    archive: &mut ZipArchive<R>,
    index: usize,
    input_len: u64,
) -> Result<EntryReader<'_, R>, ZipError> {
    let (method, encrypted, declared) = {
        let entry = archive.by_index_data(index)?;
        let declared = Declared {
            size: entry.size(),
            crc32: entry.crc32(),
        };
        (entry.compression(), entry.encrypted(), declared)
    };
    if encrypted {
        return archive.by_index(index).map(EntryReader::Zip);
    }
    let supported = [
        CompressionMethod::Deflated,
        CompressionMethod::ZSTD,
        CompressionMethod::Stored,
        CompressionMethod::DEFLATE64,
    ];
    if !supported.contains(&method) {
        // Nor does Convex's reader take any other. The zip crate would say
        // so only at the first read, as if the entry were damaged.
        return Err(ZipError::CompressionMethodNotSupported(method_code(method)));
    }
    let raw = archive.by_index_raw(index)?;
    // Known once the local header is read, which opening the entry does.
    let start = raw.data_start().unwrap_or(raw.header_start());
    let size = raw.compressed_size();
    if start.saturating_add(size) > input_len {
        return Err(ZipError::Io(io::Error::new(
            io::ErrorKind::InvalidData,
            format!(
                "the central directory declares {size} bytes of compressed data from byte \
                 {start}, past the end of the archive ({input_len} bytes): the archive is cut \
                 short or its central directory is damaged"
            ),
        )));
    }
    Ok(match method {
        CompressionMethod::Deflated => EntryReader::Deflate(deflate_entry(raw, declared)),
        CompressionMethod::ZSTD => EntryReader::Zstd(zstd_entry(raw, declared)?),
        CompressionMethod::Stored => EntryReader::Stored(CheckedEntry::new(raw, declared)),
        _ => EntryReader::Deflate64(CheckedEntry::new(Deflate64Decoder::new(raw), declared)),
    })
}

/// The number a ZIP header gives `method`.
#[allow(deprecated)] // The zip crate keeps the number for the methods it names.
fn method_code(method: CompressionMethod) -> u16 {
    method.to_u16()
}

/// Opens the archive, or says why it cannot: every ZIP this reads starts
/// with a local header ("PK"), so an input without one is some other kind of
/// file, and one with it that does not open is damaged or cut short.
///
/// `ZipArchive` keys entries by name and keeps the last of those that share
/// one, where Convex imports them all: each shared name is an error here.
fn open_archive<R: Read + Seek>(
    input: R,
    ctx: &mut Context,
) -> Result<ZipArchive<Tracked<R>>, String> {
    let unreadable = |e: io::Error| format!("cannot read it ({e})");
    let input_len = ctx.input.len;
    let mut input = Tracked::new(input, ctx.input.clone());
    let mut signature = [0u8; 2];
    let looks_like_zip = match input.read_exact(&mut signature) {
        Ok(()) => signature == *b"PK",
        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => false,
        Err(e) => return Err(unreadable(e)),
    };
    input.seek(SeekFrom::Start(0)).map_err(unreadable)?;
    let tracked = input;
    let damaged = |e: ZipError| {
        let detail = e.to_string();
        if looks_like_zip && detail.contains("::") {
            // The zip crate's own names of its structures mean nothing to a user.
            "the archive is damaged or cut short (one of its ZIP records is cut short or malformed)"
                .to_owned()
        } else if looks_like_zip {
            format!("the archive is damaged or cut short ({detail})")
        } else if input_len == 0 {
            "the archive is empty (0 bytes)".to_owned()
        } else {
            "this is not a ZIP archive (it does not start with \"PK\")".to_owned()
        }
    };
    let archive = ZipArchive::new(tracked).map_err(damaged)?;
    if archive.is_empty() && archive.central_directory_start().max(archive.offset()) > 0 {
        let at = archive.central_directory_start().max(archive.offset());
        return Err(listed_empty(archive.into_inner(), at, ctx.input.len));
    }
    if !archive.has_duplicate_names() {
        return Ok(archive);
    }
    let mut tracked = archive.into_inner();
    for (name, count) in shared_names(&mut tracked) {
        ctx.error(
            Finding::new(
                Code::DuplicateEntryName,
                format!(
                    "{count} entries of the archive are named '{name}': Convex would import \
                     them all, but snappack reads one entry per name, so it cannot check or \
                     pack them"
                ),
            )
            .entry(&name),
        );
    }
    ZipArchive::new(tracked).map_err(damaged)
}

/// Why an archive whose end record (at byte `at` of an input of `len`
/// bytes) lists no entries, though bytes come before it, is refused: read
/// as it says, it would be a valid, empty import, which in replaceAll mode
/// deletes every table. Most often the record read is inside the comment of
/// another one, the archive's own, which ZIP readers searching from the end
/// find second (or not at all); else the archive is damaged.
fn listed_empty<R: Read + Seek>(mut input: R, at: u64, len: u64) -> String {
    const SIGNATURE: &[u8; 4] = b"PK\x05\x06";
    // A comment is at most 65,535 bytes: an enclosing record starts within them.
    let from = at.saturating_sub(u64::from(u16::MAX) + 22);
    let mut tail = Vec::new();
    let read = input
        .seek(SeekFrom::Start(from))
        .and_then(|_| input.take(len - from).read_to_end(&mut tail));
    let enclosing = read.ok().and_then(|_| {
        (0..tail.len().saturating_sub(21)).rev().find(|&i| {
            let start = from + i as u64;
            let comment = u64::from(u16::from_le_bytes([tail[i + 20], tail[i + 21]]));
            start < at && tail[i..].starts_with(SIGNATURE) && start + 22 + comment == len
        })
    });
    match enclosing {
        Some(i) => format!(
            "the archive's comment holds an end-of-central-directory record (at byte {at}) that \
             lists no entries, and ZIP readers take that one for the archive's own (at byte {}): \
             read so, this archive is empty; rewrite it without that comment",
            from + i as u64
        ),
        None => format!(
            "the archive's end-of-central-directory record (at byte {at}) lists no entries, yet \
             {at} bytes come before it: the archive is damaged (its entries are not listed)"
        ),
    }
}

/// The names that more than one entry has, with how many, in the order of
/// their first entry in the central directory.
fn shared_names<R: Read + Seek>(input: &mut R) -> Vec<(String, usize)> {
    let mut counts: Vec<(String, usize)> = Vec::new();
    let mut at: HashMap<String, usize> = HashMap::new();
    let Ok(mut iterable) = ZipIterable::try_new(input, Config::default()) else {
        return counts;
    };
    let Ok(files) = iterable.files() else {
        return counts;
    };
    for entry in files {
        let Ok(entry) = entry else { break };
        let name = match entry.name() {
            Ok(name) => name.into_owned(),
            Err(_) => String::from_utf8_lossy(entry.name_raw()).into_owned(),
        };
        let index = *at.entry(name.clone()).or_insert_with(|| {
            counts.push((name, 0));
            counts.len() - 1
        });
        counts[index].1 += 1;
    }
    counts.retain(|(_, count)| *count > 1);
    counts
}

fn zip_entry_error(e: &ZipError) -> Finding {
    match e {
        // Encrypted entries, for one: Convex cannot read them either.
        ZipError::UnsupportedArchive(what) => Finding::new(
            Code::InvalidZip,
            format!("invalid zip file: the entry cannot be read: {what}"),
        ),
        ZipError::CompressionMethodNotSupported(method) => Finding::new(
            Code::UnsupportedCompression,
            format!("the entry uses compression method {method}, which snappack cannot read (stored, deflate, deflate64 and zstd are supported)"),
        ),
        ZipError::Io(e) => Finding::new(Code::InvalidZip, format!("invalid zip file: {e}")),
        other => Finding::new(Code::InvalidZip, format!("invalid zip file: {other}")),
    }
}

/// The finding for line `row` of a generated schema that could not be read.
pub(super) fn schema_line_error(e: &LineError, row: u64) -> Finding {
    match e {
        LineError::LineTooLong => Finding::new(
            Code::InvalidGeneratedSchema,
            format!("line {row} is longer than {MAX_LINE} bytes"),
        )
        .line(row),
        // Where reading had reached, unless a check of the whole entry failed.
        LineError::Read(e) => {
            let finding = Finding::new(Code::InvalidZip, format!("invalid zip file: {e}"));
            match crate::archive::inflate::failed_at_entry_end(e) {
                true => finding,
                false => finding.line(row),
            }
        }
    }
}

/// Why an entry Convex ignores looks meant as table data (a `.jsonl` name
/// other than macOS's resource forks, or an archive that is no stored
/// file), or `None` for a README and the like.
fn ignored_data(name: &str) -> Option<&'static str> {
    let file = name.rsplit('/').next().unwrap_or(name);
    let lower = name.to_ascii_lowercase();
    if name.starts_with("__MACOSX/") || file.starts_with("._") {
        return None;
    }
    // A snapshot zipped again (or several in one archive) imports nothing;
    // a stored file may be any file, an archive too.
    let stored = name
        .rsplit_once('/')
        .is_some_and(|(folder, _)| folder.ends_with("_storage"));
    if lower.ends_with(".zip") && !stored {
        return Some(
            "it is an archive, and Convex does not open an archive inside the snapshot: \
             give the snapshot's own archive, whose entries are `<table>/documents.jsonl`",
        );
    }
    if !lower.ends_with(".jsonl") {
        return None;
    }
    let why = if name.contains('\\') {
        "its name has `\\` between folders, where a ZIP has `/`"
    } else if name.ends_with("/documents.jsonl") || name.ends_with("/generated_schema.jsonl") {
        "the folder of its table has no name"
    } else if lower.ends_with("/documents.jsonl") || lower.ends_with("/generated_schema.jsonl") {
        "a table's entries are named in lowercase: `<table>/documents.jsonl`"
    } else if !name.contains('/') {
        "a table's documents are read from `<table>/documents.jsonl`, not from a file at the top of the archive"
    } else {
        "a table's documents are read from `<table>/documents.jsonl` only"
    };
    Some(why)
}

/// Reads a `generated_schema.jsonl`: `"uniform"`, or a legacy shape.
fn read_generated_schema<R: Read + Seek>(
    archive: &mut ZipArchive<R>,
    index: usize,
    name: &str,
    ctx: &mut Context,
) -> ValueRules {
    let file = match open_entry(archive, index, ctx.input.len) {
        Ok(file) => file,
        Err(e) => {
            ctx.read_error(zip_entry_error(&e).entry(name));
            return ValueRules::Plain;
        }
    };
    let mut lines = LineReader::new(file, MAX_LINE);
    let (first, newline) = match lines.next_line_with_end() {
        None => (String::new(), false),
        Some((_, Ok(line))) => match std::str::from_utf8(without_newline(line).0) {
            Ok(first) => (first.to_owned(), without_newline(line).1),
            Err(e) => {
                // An entry saved as UTF-16 is told so, after Convex's message.
                let hint = match starts_as_utf16(line) {
                    true => format!("; the entry {UTF16_HINT}"),
                    false => String::new(),
                };
                ctx.error(
                    Finding::new(
                        Code::NotUtf8,
                        format!("Import wasn't valid UTF8: {e}{hint}"),
                    )
                    .entry(name)
                    .line(1),
                );
                return ValueRules::Plain;
            }
        },
        Some((_, Err(e))) => {
            ctx.read_error(schema_line_error(&e, 1).entry(name));
            return ValueRules::Plain;
        }
    };
    let shape = match serde_json::from_str::<serde_json::Value>(&first) {
        Err(e) => {
            let message = super::as_read_with_newline(
                Code::JsonInvalidRow,
                format!("Row 1 wasn't valid JSON: {e}"),
                first.as_bytes(),
                1,
                newline,
            );
            let message = with_entry_hints(message, first.as_bytes(), 1);
            ctx.error(
                Finding::new(Code::JsonInvalidRow, message)
                    .entry(name)
                    .line(1)
                    .excerpt(&first),
            );
            return ValueRules::Plain;
        }
        Ok(serde_json::Value::String(shape)) => shape,
        Ok(_) => {
            ctx.error(
                Finding::new(
                    Code::InvalidConvexValue,
                    "Row 1 wasn't a valid Convex value: first line of generated_schema must be a string",
                )
                .entry(name)
                .line(1)
                .excerpt(&first),
            );
            return ValueRules::Plain;
        }
    };
    if shape == "uniform" {
        return ValueRules::Uniform;
    }
    super::legacy_schema(&shape, &mut lines, name, ctx);
    ValueRules::Plain
}

/// Reads one `_tables` entry: step 1 of table numbering.
fn read_tables_entry<R: Read + Seek>(
    archive: &mut ZipArchive<R>,
    stream: &Stream,
    numbering: &mut Numbering,
    listed: &mut Vec<ListedTable>,
    ctx: &mut Context,
) {
    let component = &stream.component;
    let file = match open_entry(archive, stream.index, ctx.input.len) {
        Ok(file) => file,
        Err(e) => {
            ctx.read_error(zip_entry_error(&e).entry(&stream.name));
            return;
        }
    };
    let mut lines = LineReader::new(file, MAX_LINE);
    while let Some((row, line)) = lines.next_line_with_end() {
        let at = |f: Finding| f.entry(&stream.name).table(component, "_tables").line(row);
        let (line, newline) = match line {
            Ok(line) => without_newline(line),
            Err(e) => {
                ctx.read_error(at(Finding::new(
                    Code::InvalidZip,
                    format!("invalid zip file: {e}"),
                )));
                return;
            }
        };
        let Ok(text) = std::str::from_utf8(line) else {
            ctx.error(at(Finding::new(
                Code::InvalidZip,
                not_utf8_message(line, row),
            )));
            return;
        };
        let fail = |code: Code, message: String| at(Finding::new(code, message).excerpt(text));
        let value: serde_json::Value = match serde_json::from_str(text) {
            Ok(value) => value,
            Err(e) => {
                let message = super::as_read_with_newline(
                    Code::JsonInvalidRow,
                    format!("Row {row} wasn't valid JSON: {e}"),
                    line,
                    row,
                    newline,
                );
                let message = with_entry_hints(message, line, row);
                ctx.error(fail(Code::JsonInvalidRow, message));
                continue;
            }
        };
        let Some(object) = value.as_object() else {
            ctx.error(fail(
                Code::NotAnObject,
                format!("Row {row} wasn't an object"),
            ));
            continue;
        };
        let Some(name) = object.get("name").and_then(|n| n.as_str()) else {
            ctx.error(fail(
                Code::InvalidConvexValue,
                format!("Row {row} wasn't a valid Convex value: table requires name"),
            ));
            continue;
        };
        if let Err(reason) = check_identifier(name) {
            ctx.error(fail(
                Code::InvalidName,
                format!("{name:?} isn't a valid table name: {reason}"),
            ));
            continue;
        }
        // Convex casts the number with saturation: fractions truncate, negatives become 0.
        let number = object.get("id").and_then(|n| n.as_f64()).map(|n| n as u32);
        let Some(number) = number.filter(|n| *n != 0) else {
            // Convex prints the optional JSON value with `{:?}`: `Some(String("1"))`, `None`.
            let received = object.get("id");
            ctx.error(fail(
                Code::InvalidConvexValue,
                format!("Row {row} wasn't a valid Convex value: table requires id (received {received:?})"),
            ));
            continue;
        };
        if let Some(refusal) = crate::convex::names::system_table_refusal(name) {
            ctx.error(fail(Code::InvalidTableName, refusal));
            continue;
        }
        if numbering.has(component, name) {
            ctx.error(fail(
                Code::DuplicateTableName,
                format!(
                    "`_tables` contains duplicate entries for `{name}`{}",
                    in_component(component)
                ),
            ));
            continue;
        }
        match numbering.claim(component, name, number) {
            Ok(()) => listed.push(ListedTable {
                component: component.clone(),
                name: name.to_owned(),
                at: ListedAt {
                    entry: stream.name.clone(),
                    line: row,
                },
            }),
            Err(holder) => ctx.error(fail(
                Code::InvalidId,
                conflict_message(&holder, name, component, number),
            )),
        }
    }
}

/// A table a `_tables` row lists, and where.
struct ListedTable {
    component: String,
    name: String,
    at: ListedAt,
}

/// The table number of the first row's `_id`, when it is an object whose
/// `_id` is a string that decodes. (The table's scan reports why it is not.)
fn first_id_number<R: Read + Seek>(
    archive: &mut ZipArchive<R>,
    index: usize,
    ctx: &Context,
) -> Result<Option<u32>, Halt> {
    let number = open_entry(archive, index, ctx.input.len)
        .ok()
        .and_then(|file| {
            let mut lines = LineReader::new(file, MAX_LINE);
            first_id_of(lines.next_line()?.1.ok()?)
        });
    if ctx.input_failed() {
        return Err(Halt::InputFailed);
    }
    Ok(number)
}

/// The table number in the `_id` of one document line, if it has one that decodes.
pub(crate) fn first_id_of(line: &[u8]) -> Option<u32> {
    let row: serde_json::Map<String, serde_json::Value> = serde_json::from_slice(line).ok()?;
    DocumentId::decode(row.get("_id")?.as_str()?)
        .ok()
        .map(|id| id.table)
}

enum HashStop {
    Zip(ZipError),
    Read(io::Error),
    Sink(io::Error),
}

impl std::fmt::Display for HashStop {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            HashStop::Zip(e) => e.fmt(f),
            HashStop::Read(e) | HashStop::Sink(e) => e.fmt(f),
        }
    }
}

/// Streams a stored file (entry `index` of an input of `input_len` bytes)
/// to the sink and returns its SHA-256.
fn hash_file<R: Read + Seek>(
    archive: &mut ZipArchive<R>,
    index: usize,
    input_len: u64,
    file_index: usize,
    sink: &mut dyn Sink,
) -> Result<[u8; 32], HashStop> {
    let mut file = open_entry(archive, index, input_len).map_err(HashStop::Zip)?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 256 << 10];
    loop {
        let n = match file.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(HashStop::Read(e)),
        };
        hasher.update(&buf[..n]);
        sink.file_chunk(file_index, &buf[..n])
            .map_err(HashStop::Sink)?;
    }
    let digest: [u8; 32] = hasher.finalize().into();
    sink.end_file(file_index, &digest).map_err(HashStop::Sink)?;
    Ok(digest)
}

/// `message`, Convex's about line `row` of an entry, `line`, that is not
/// JSON, with why when the entry starts with a UTF-8 byte order mark (the
/// mark cannot be seen, and Convex takes it, in a ZIP archive, as the
/// start of the row) or its lines end with a `\r` alone, as a single-table
/// file's are told ([`with_cr_alone_hint`]).
pub(super) fn with_entry_hints(message: String, line: &[u8], row: u64) -> String {
    let message = match row == 1 && line.starts_with(b"\xEF\xBB\xBF") {
        true => format!(
            "{message}; the entry starts with a UTF-8 byte order mark, which Convex reads as \
             part of the row: save it without one"
        ),
        false => message,
    };
    with_cr_alone_hint(message, line, "entry")
}

/// Convex's message for line `row` of an entry, `line`, that is not UTF-8,
/// with where it fails; an entry saved as UTF-16 is told so after it, as a
/// single-table file is.
pub(super) fn not_utf8_message(line: &[u8], row: u64) -> String {
    let hint = match row == 1 && starts_as_utf16(line) {
        true => format!("; the entry {UTF16_HINT}"),
        false => String::new(),
    };
    format!("invalid zip file: line {row} is not valid UTF-8{hint}")
}

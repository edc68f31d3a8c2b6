//! Synthetic Convex snapshots for tests and benchmarks.
//!
//! [`write_snapshot`] writes a ZIP laid out exactly as Convex's exporter lays
//! one out: `README.md`, a `_tables/documents.jsonl` per component, per table
//! `documents.jsonl` (keys byte-sorted, float `_creationTime`, v6 `_id`s of
//! the table's number) and `generated_schema.jsonl` (`"uniform"`), and, with
//! stored files, `_storage/documents.jsonl` plus one entry per file. Every
//! entry is deflated and streamed: memory stays bounded whatever the size.
//! [`write_snapshot_streamed`] writes the same snapshot to an output that
//! cannot seek, each entry's sizes after its data, as Convex's exporter
//! writes them (`snappack gen` writes so, into a file or a pipe alike).
//!
//! Output is a pure function of the [`GenSpec`] (a built-in splitmix64
//! generator, fixed entry timestamps). Optional [`Fault`]s are injected at
//! places the generator picks and reports in [`GenSummary::faults`], with the
//! code a validator must report there.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{Seek, Write};

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use zip::write::SimpleFileOptions;
use zip::{CompressionMethod, DateTime, ZipWriter};

use crate::convex::id::MAX_ID_LEN;
use crate::convex::names::check_identifier;
use crate::convex::DocumentId;
use crate::report::Code;

/// Table number of `_storage` ids (the `_file_storage` system table).
pub const STORAGE_TABLE_NUMBER: u32 = 540;
/// First user table number in every component.
pub const FIRST_USER_TABLE_NUMBER: u32 = 10001;
/// Rows Convex inserts per batch: duplicates further apart than this are in
/// different batches.
const BATCH_ROWS: u64 = 8000;
/// Flush generated lines to the archive in pieces of about this size.
const FLUSH_BYTES: usize = 1 << 16;

/// The fixed text Convex's exporter writes as `README.md`.
const README: &str = "# Welcome to your Convex snapshot export!\n\nThis ZIP file contains a snapshot of the tables in your Convex deployment.\n\nDocuments for each table are listed as lines of JSON in\n<table_name>/documents.jsonl files.\n\nFor details on the format and how to use this snapshot with npx convex import,\ncheck out [the docs](https://docs.convex.dev/database/import-export/export) or\nask us in [Discord](http://convex.dev/community).\n";

/// What to generate. Every field has a default, so `{}` is a valid spec.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default, deny_unknown_fields)]
pub struct GenSpec {
    /// Seed: the same spec always gives the same bytes.
    pub seed: u64,
    /// User tables in each component.
    pub tables: u32,
    /// Documents in each table.
    pub documents_per_table: u64,
    /// When set, this many documents in all, spread evenly over all tables
    /// (instead of `documents_per_table`).
    pub total_documents: Option<u64>,
    /// Child component paths (`"a"`, `"a/b"`); missing parents are added.
    /// The root component always exists.
    pub components: Vec<String>,
    /// Stored files in each component (0: no `_storage` entries, as an
    /// export without file storage).
    pub storage_files: u32,
    /// Smallest stored file, in bytes.
    pub storage_min_bytes: u64,
    /// Largest stored file, in bytes.
    pub storage_max_bytes: u64,
    /// Folder every entry is under (`"snapshot/"`), as when an export was
    /// unzipped and zipped again.
    pub prefix: String,
    /// What documents look like.
    pub document: DocumentShape,
    /// Faults to inject, each once, at a place the generator picks.
    pub faults: Vec<Fault>,
    /// Deflate level, 1 (fast, the default) to 9 (small); common zip tools use 6.
    pub compression_level: u8,
}

impl Default for GenSpec {
    fn default() -> Self {
        GenSpec {
            seed: 1,
            tables: 3,
            documents_per_table: 100,
            total_documents: None,
            components: Vec::new(),
            storage_files: 0,
            storage_min_bytes: 16,
            storage_max_bytes: 4096,
            prefix: String::new(),
            document: DocumentShape::default(),
            faults: Vec::new(),
            compression_level: 1,
        }
    }
}

/// The shape of generated documents.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default, deny_unknown_fields)]
pub struct DocumentShape {
    /// User fields per document besides `_id` and `_creationTime` (optional
    /// ones are absent from about half the documents).
    pub fields: u32,
    /// About the longest string value, in bytes (lengths vary from 0).
    pub max_string_len: u32,
    /// Levels of nested objects inside object fields (0: flat objects).
    pub nesting: u32,
    /// Longest array.
    pub max_array_len: u32,
    /// Write `$bytes`, `$integer` and `$float` values.
    pub wrappers: bool,
}

impl Default for DocumentShape {
    fn default() -> Self {
        DocumentShape {
            fields: 8,
            max_string_len: 40,
            nesting: 2,
            max_array_len: 4,
            wrappers: true,
        }
    }
}

/// A fault the generator can inject, and the code a validator reports for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Fault {
    /// Two rows of the largest table share an `_id`, more than 8000 rows
    /// apart when the table is big enough (`DuplicateId`; `first_line` is
    /// the first row).
    DuplicateId,
    /// A row's `_id` carries another table's number (`ImportConflict`).
    ForeignTableId,
    /// A row's `_id` does not decode (`InvalidId`).
    UndecodableId,
    /// A row's `_id` is a number (`InvalidIdError`).
    NonStringId,
    /// A row cut in half (`JsonInvalidRow`).
    BadJsonLine,
    /// A row that is a JSON array (`InvalidConvexValue`).
    NonObjectRow,
    /// A row that is an `$integer` wrapper (`NotAnObject`).
    WrapperRow,
    /// A `{"$set": [...]}` value (`InvalidConvexValue`).
    SetWrapper,
    /// An integer `_creationTime` in a uniform table (`InvalidCreationTimeError`).
    IntegerCreationTime,
    /// A nested field name starting with `$` (`InvalidConvexValue`).
    DollarFieldName,
    /// A top-level field starting with `_` (`InvalidDocumentError`).
    UnderscoreField,
    /// A document over 1 MiB (`ValueTooLargeError`).
    OversizedDocument,
    /// A document nested 21 levels deep (`InvalidDocumentError`).
    TooDeep,
    /// An array of 8193 elements (`InvalidConvexValue`).
    ArrayTooLong,
    /// `_tables` lists a table name twice (`DuplicateTableName`).
    DuplicateTableName,
    /// `_tables` puts a second name on a table's number (`InvalidId`).
    SharedTableNumber,
    /// A table folder that is not an identifier (`InvalidTableName`).
    InvalidTableName,
    /// A `_components/<name>/` that is not an identifier (`InvalidComponentName`).
    InvalidComponentName,
    /// A `_storage/<id>` file whose id does not decode (`InvalidStorageId`).
    InvalidStorageId,
    /// A `generated_schema.jsonl` whose legacy shape does not parse
    /// (`InvalidGeneratedSchema`).
    BadGeneratedSchema,
    /// A `_storage` metadata row whose `sha256` is not its file's
    /// (`Sha256Mismatch`, at the file's entry). Needs stored files.
    Sha256Mismatch,
}

impl Fault {
    /// Every fault.
    pub const ALL: &'static [Fault] = &[
        Fault::DuplicateId,
        Fault::ForeignTableId,
        Fault::UndecodableId,
        Fault::NonStringId,
        Fault::BadJsonLine,
        Fault::NonObjectRow,
        Fault::WrapperRow,
        Fault::SetWrapper,
        Fault::IntegerCreationTime,
        Fault::DollarFieldName,
        Fault::UnderscoreField,
        Fault::OversizedDocument,
        Fault::TooDeep,
        Fault::ArrayTooLong,
        Fault::DuplicateTableName,
        Fault::SharedTableNumber,
        Fault::InvalidTableName,
        Fault::InvalidComponentName,
        Fault::InvalidStorageId,
        Fault::BadGeneratedSchema,
        Fault::Sha256Mismatch,
    ];

    /// The code a validator reports for this fault.
    pub fn code(self) -> Code {
        match self {
            Fault::DuplicateId => Code::DuplicateId,
            Fault::ForeignTableId => Code::ImportConflict,
            Fault::UndecodableId | Fault::SharedTableNumber => Code::InvalidId,
            Fault::NonStringId => Code::InvalidIdError,
            Fault::BadJsonLine => Code::JsonInvalidRow,
            Fault::NonObjectRow
            | Fault::SetWrapper
            | Fault::DollarFieldName
            | Fault::ArrayTooLong => Code::InvalidConvexValue,
            Fault::WrapperRow => Code::NotAnObject,
            Fault::IntegerCreationTime => Code::InvalidCreationTimeError,
            Fault::UnderscoreField | Fault::TooDeep => Code::InvalidDocumentError,
            Fault::OversizedDocument => Code::ValueTooLargeError,
            Fault::DuplicateTableName => Code::DuplicateTableName,
            Fault::InvalidTableName => Code::InvalidTableName,
            Fault::InvalidComponentName => Code::InvalidComponentName,
            Fault::InvalidStorageId => Code::InvalidStorageId,
            Fault::BadGeneratedSchema => Code::InvalidGeneratedSchema,
            Fault::Sha256Mismatch => Code::Sha256Mismatch,
        }
    }

    /// True for faults placed on one row of a user table.
    fn is_row_fault(self) -> bool {
        matches!(
            self,
            Fault::DuplicateId
                | Fault::ForeignTableId
                | Fault::UndecodableId
                | Fault::NonStringId
                | Fault::BadJsonLine
                | Fault::NonObjectRow
                | Fault::WrapperRow
                | Fault::SetWrapper
                | Fault::IntegerCreationTime
                | Fault::DollarFieldName
                | Fault::UnderscoreField
                | Fault::OversizedDocument
                | Fault::TooDeep
                | Fault::ArrayTooLong
        )
    }
}

/// Where a fault was injected.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InjectedFault {
    /// The fault.
    pub fault: Fault,
    /// The code a validator must report for it.
    pub code: Code,
    /// The archive entry it is in.
    pub entry: String,
    /// Component path (`""` for the root).
    pub component: String,
    /// The table it concerns, if any (`_tables`, `_storage` included).
    pub table: Option<String>,
    /// 1-based line within the entry, for faults on one line.
    pub line: Option<u64>,
    /// For a duplicate id, the line of its first occurrence.
    pub first_line: Option<u64>,
}

/// One generated user table.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GenTable {
    /// Component path (`""` for the root).
    pub component: String,
    /// Table name.
    pub name: String,
    /// Table number (in `_tables` and in every `_id`).
    pub number: u32,
    /// Lines of `documents.jsonl` (fault rows included).
    pub documents: u64,
    /// Uncompressed bytes of `documents.jsonl`.
    pub bytes: u64,
    /// The `documents.jsonl` entry.
    pub entry: String,
}

/// One generated stored file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GenStorageFile {
    /// Component path (`""` for the root).
    pub component: String,
    /// The file's `_storage` id.
    pub id: String,
    /// Its entry, `<prefix>_storage/<id><ext>`.
    pub entry: String,
    /// Size in bytes.
    pub size: u64,
    /// Content type, if any.
    pub content_type: Option<String>,
}

/// What [`write_snapshot`] wrote.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GenSummary {
    /// User tables, in archive order.
    pub tables: Vec<GenTable>,
    /// Stored files, in archive order.
    pub storage: Vec<GenStorageFile>,
    /// Injected faults, in the order of the spec.
    pub faults: Vec<InjectedFault>,
    /// Entries in the archive.
    pub entries: u64,
    /// Documents in all user tables.
    pub documents: u64,
    /// Uncompressed bytes of all entries.
    pub bytes: u64,
}

/// Why a snapshot could not be generated.
#[derive(Debug, thiserror::Error)]
pub enum GenError {
    /// The spec asks for something impossible.
    #[error("invalid generator spec: {0}")]
    Spec(String),
    /// Writing failed.
    #[error("cannot write the archive: {0}")]
    Io(#[from] std::io::Error),
    /// The ZIP writer failed.
    #[error("cannot write the archive: {0}")]
    Zip(#[from] zip::result::ZipError),
}

/// Writes a synthetic snapshot ZIP to `out` (give a buffered writer), each
/// entry's sizes and CRC-32 in its local header, which the writer goes back
/// to fill in.
pub fn write_snapshot<W: Write + Seek>(out: W, spec: &GenSpec) -> Result<GenSummary, GenError> {
    write_into(ZipWriter::new(Quiet::new(out)), spec)
}

/// Writes the snapshot [`write_snapshot`] writes, but to an output that
/// cannot seek (a pipe), front to back in bounded memory: each entry's
/// sizes and CRC-32 follow its data (a data descriptor, flag bit 3, as
/// Convex's exporter writes its entries), and the central directory has
/// them, as in any ZIP. Readers that go by the central directory (Convex's
/// importer, snappack) read it as they read the other; the bytes differ.
pub fn write_snapshot_streamed<W: Write>(out: W, spec: &GenSpec) -> Result<GenSummary, GenError> {
    write_into(ZipWriter::new_stream(Quiet::new(out)), spec)
}

/// Writes the snapshot with `zip`, whatever its output.
fn write_into<S: Write + Seek>(zip: ZipWriter<S>, spec: &GenSpec) -> Result<GenSummary, GenError> {
    let mut plan = Plan::new(spec)?;
    let mut faults = plan.place_faults(spec)?;
    let mut w = Archive {
        zip,
        level: spec.compression_level,
        entries: 0,
        bytes: 0,
    };
    w.entry(
        &format!("{}README.md", spec.prefix),
        README.as_bytes(),
        false,
    )?;
    for component in &plan.components {
        plan.write_tables_entry(&mut w, component, &mut faults)?;
    }
    let mut tables = Vec::with_capacity(plan.order.len());
    for &t in &plan.order {
        tables.push(plan.write_table(&mut w, spec, t)?);
    }
    let mut storage = Vec::new();
    for component in &plan.components {
        plan.write_storage(&mut w, component, &mut storage)?;
    }
    for extra in &plan.extra_entries {
        w.entry(&extra.name, &extra.content, false)?;
    }
    w.zip.finish()?;
    Ok(GenSummary {
        documents: tables.iter().map(|t| t.documents).sum(),
        tables,
        storage,
        faults,
        entries: w.entries,
        bytes: w.bytes,
    })
}

// ---------------------------------------------------------------------------
// Planning: names, numbers, field kinds and fault places, before any output.

/// What a user field holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Id,
    CreationTime,
    Str,
    OptionalStr,
    Int,
    Float,
    Bool,
    Nullable,
    Ref(u32),
    Tags,
    Numbers,
    Object,
    Bytes,
    Special,
}

const KINDS: [Kind; 12] = [
    Kind::Str,
    Kind::Int,
    Kind::Float,
    Kind::Bool,
    Kind::OptionalStr,
    Kind::Ref(0),
    Kind::Tags,
    Kind::Object,
    Kind::Nullable,
    Kind::Numbers,
    Kind::Bytes,
    Kind::Special,
];

const TABLE_NAMES: [&str; 16] = [
    "users", "messages", "channels", "posts", "comments", "orders", "products", "events",
    "sessions", "tasks", "projects", "teams", "invoices", "payments", "reviews", "tags",
];

/// Uppercase names sort before `_creationTime`, lowercase after.
const FIELD_NAMES: [&str; 22] = [
    "Kind",
    "Title",
    "author",
    "body",
    "count",
    "done",
    "email",
    "flags",
    "label",
    "meta",
    "name",
    "owner",
    "priority",
    "rating",
    "score",
    "status",
    "summary",
    "labels",
    "text",
    "updatedAt",
    "value",
    "weight",
];

const WORDS: [&str; 24] = [
    "alpha",
    "beta",
    "gamma",
    "delta",
    "convex",
    "snapshot",
    "table",
    "row",
    "import",
    "export",
    "value",
    "field",
    "quick",
    "brown",
    "fox",
    "lazy",
    "dog",
    "café",
    "naïve",
    "日本語",
    "\"quoted\"",
    "back\\slash",
    "line",
    "zip",
];

const CONTENT_TYPES: [(Option<&str>, &str); 5] = [
    (Some("image/png"), ".png"),
    (Some("text/plain"), ".txt"),
    (Some("application/pdf"), ".pdf"),
    (Some("application/json"), ".json"),
    (None, ""),
];

struct Plan {
    components: Vec<ComponentPlan>,
    tables: Vec<TablePlan>,
    /// Archive order of tables: smallest first.
    order: Vec<usize>,
    extra_entries: Vec<ExtraEntry>,
    seed: u64,
}

struct ComponentPlan {
    index: usize,
    path: String,
    /// Entry prefix: the spec's folder and `_components/<name>/` per segment.
    prefix: String,
    tables: Vec<usize>,
    /// `_tables` rows added by faults: name, number, index into the faults.
    extra_rows: Vec<(String, u32, usize)>,
    storage: Vec<StoragePlan>,
}

struct TablePlan {
    component: usize,
    name: String,
    number: u32,
    documents: u64,
    fields: Vec<(String, Kind)>,
    /// Fault rows by line.
    row_faults: BTreeMap<u64, RowFault>,
    /// Lines whose id a later duplicate repeats.
    remember: BTreeSet<u64>,
    /// Entry may pass 4 GiB: write ZIP64 headers.
    large: bool,
}

#[derive(Clone, Copy)]
struct RowFault {
    fault: Fault,
    /// For a duplicate: the line whose id is repeated.
    first_line: u64,
    /// For a foreign id: the number to use.
    other_number: u32,
}

struct StoragePlan {
    id: DocumentId,
    size: u64,
    content_type: Option<&'static str>,
    extension: &'static str,
    creation_time: f64,
    internal_id: [u8; 16],
    wrong_sha256: bool,
}

struct ExtraEntry {
    name: String,
    content: Vec<u8>,
}

impl Plan {
    fn new(spec: &GenSpec) -> Result<Plan, GenError> {
        check_spec(spec)?;
        let shape = &spec.document;
        let mut paths: Vec<String> = vec![String::new()];
        for path in &spec.components {
            let segments: Vec<&str> = path.split('/').collect();
            for segment in &segments {
                check_identifier(segment)
                    .map_err(|e| spec_error(format!("component path '{path}': {e}")))?;
            }
            for end in 1..=segments.len() {
                let parent = segments[..end].join("/");
                if !paths.contains(&parent) {
                    paths.push(parent);
                }
            }
        }
        let table_count = paths.len() as u64 * u64::from(spec.tables);
        if table_count > crate::convex::MAX_USER_TABLES as u64 {
            return Err(spec_error(format!(
                "{table_count} tables; Convex allows at most {}",
                crate::convex::MAX_USER_TABLES
            )));
        }
        let mut rng = Rng::new(spec.seed, 1);
        let mut kinds: Vec<Kind> = KINDS.to_vec();
        if !shape.wrappers {
            kinds.retain(|k| !matches!(k, Kind::Bytes | Kind::Special));
        }
        let mut components = Vec::with_capacity(paths.len());
        let mut tables = Vec::new();
        for (c, path) in paths.into_iter().enumerate() {
            let mut prefix = spec.prefix.clone();
            if !path.is_empty() {
                for segment in path.split('/') {
                    prefix.push_str("_components/");
                    prefix.push_str(segment);
                    prefix.push('/');
                }
            }
            let mut component = ComponentPlan {
                index: c,
                path,
                prefix,
                tables: Vec::new(),
                extra_rows: Vec::new(),
                storage: Vec::new(),
            };
            for i in 0..spec.tables as usize {
                let number = FIRST_USER_TABLE_NUMBER + i as u32;
                let name = match i / TABLE_NAMES.len() {
                    0 => TABLE_NAMES[i].to_owned(),
                    round => format!("{}{}", TABLE_NAMES[i % TABLE_NAMES.len()], round + 1),
                };
                let mut fields: Vec<(String, Kind)> = (0..shape.fields as usize)
                    .map(|j| {
                        let name = match j / FIELD_NAMES.len() {
                            0 => FIELD_NAMES[(j + 3 * i) % FIELD_NAMES.len()].to_owned(),
                            round => format!("{}{}", FIELD_NAMES[j % FIELD_NAMES.len()], round + 1),
                        };
                        let kind = match kinds[(j + i) % kinds.len()] {
                            Kind::Ref(_) => Kind::Ref(
                                FIRST_USER_TABLE_NUMBER + rng.below(u64::from(spec.tables)) as u32,
                            ),
                            kind => kind,
                        };
                        (name, kind)
                    })
                    .collect();
                fields.push(("_id".into(), Kind::Id));
                fields.push(("_creationTime".into(), Kind::CreationTime));
                fields.sort_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
                let documents = match spec.total_documents {
                    None => spec.documents_per_table,
                    Some(total) => {
                        let index = tables.len() as u64;
                        total / table_count + u64::from(index < total % table_count)
                    }
                };
                let large = documents.saturating_mul(max_line_estimate(shape)) > 3 << 30;
                component.tables.push(tables.len());
                tables.push(TablePlan {
                    component: c,
                    name,
                    number,
                    documents,
                    fields,
                    row_faults: BTreeMap::new(),
                    remember: BTreeSet::new(),
                    large,
                });
            }
            for _ in 0..spec.storage_files {
                let size = spec.storage_min_bytes
                    + rng.below(spec.storage_max_bytes - spec.storage_min_bytes + 1);
                let (content_type, extension) =
                    CONTENT_TYPES[rng.below(CONTENT_TYPES.len() as u64) as usize];
                let creation_time = rng.creation_time();
                let mut internal_id = [0u8; 16];
                rng.fill(&mut internal_id);
                component.storage.push(StoragePlan {
                    id: DocumentId::new(STORAGE_TABLE_NUMBER, rng.internal_id(creation_time)),
                    size,
                    content_type,
                    extension,
                    creation_time,
                    internal_id,
                    wrong_sha256: false,
                });
            }
            components.push(component);
        }
        let mut order: Vec<usize> = (0..tables.len()).collect();
        order.sort_by_key(|&t| tables[t].documents);
        Ok(Plan {
            components,
            tables,
            order,
            extra_entries: Vec::new(),
            seed: spec.seed,
        })
    }

    /// Picks a place for every fault of the spec and records it.
    fn place_faults(&mut self, spec: &GenSpec) -> Result<Vec<InjectedFault>, GenError> {
        let mut rng = Rng::new(spec.seed, 2);
        let mut placed = Vec::with_capacity(spec.faults.len());
        for (k, &fault) in spec.faults.iter().enumerate() {
            let mut at = InjectedFault {
                fault,
                code: fault.code(),
                entry: String::new(),
                component: String::new(),
                table: None,
                line: None,
                first_line: None,
            };
            if fault.is_row_fault() {
                let t = self.place_row_fault(fault, &mut rng)?;
                let table = &self.tables[t.0];
                let component = &self.components[table.component];
                at.entry = format!("{}{}/documents.jsonl", component.prefix, table.name);
                at.component = component.path.clone();
                at.table = Some(table.name.clone());
                at.line = Some(t.1);
                at.first_line = t.2;
                placed.push(at);
                continue;
            }
            let root = &spec.prefix;
            match fault {
                Fault::DuplicateTableName | Fault::SharedTableNumber => {
                    let with_tables: Vec<usize> = (0..self.components.len())
                        .filter(|&c| !self.components[c].tables.is_empty())
                        .collect();
                    if with_tables.is_empty() {
                        return Err(needs(fault, "a table"));
                    }
                    let c = with_tables[rng.below(with_tables.len() as u64) as usize];
                    let component = &mut self.components[c];
                    let t = component.tables[rng.below(component.tables.len() as u64) as usize];
                    let table = &self.tables[t];
                    let row = if fault == Fault::DuplicateTableName {
                        let fresh = FIRST_USER_TABLE_NUMBER
                            + component.tables.len() as u32
                            + component.extra_rows.len() as u32;
                        (table.name.clone(), fresh, k)
                    } else {
                        (format!("ghost{k}"), table.number, k)
                    };
                    component.extra_rows.push(row);
                    at.entry = format!("{}_tables/documents.jsonl", component.prefix);
                    at.component = component.path.clone();
                    at.table = Some("_tables".into());
                    // The line is known once the rows are sorted, when written.
                }
                Fault::InvalidTableName => {
                    at.entry = format!("{root}bad-table{k}/documents.jsonl");
                    self.extra(&at.entry, Vec::new());
                }
                Fault::InvalidComponentName => {
                    at.entry = format!("{root}_components/bad-component{k}/items/documents.jsonl");
                    self.extra(&at.entry, Vec::new());
                }
                Fault::InvalidStorageId => {
                    let id = DocumentId::new(STORAGE_TABLE_NUMBER, rng.internal_id(1.7e12));
                    at.entry = format!("{root}_storage/{}.bin", corrupt_id(&id));
                    self.extra(&at.entry, b"not a stored file".to_vec());
                }
                Fault::BadGeneratedSchema => {
                    at.entry = format!("{root}legacy{k}/generated_schema.jsonl");
                    at.table = Some(format!("legacy{k}"));
                    at.line = Some(1);
                    self.extra(&at.entry, b"\"{\\\"a\\\": int64\"\n".to_vec());
                }
                Fault::Sha256Mismatch => {
                    let with_files: Vec<usize> = (0..self.components.len())
                        .filter(|&c| self.components[c].storage.iter().any(|s| !s.wrong_sha256))
                        .collect();
                    if with_files.is_empty() {
                        return Err(needs(fault, "a stored file (storageFiles > 0)"));
                    }
                    let c = with_files[rng.below(with_files.len() as u64) as usize];
                    let component = &mut self.components[c];
                    let free: Vec<usize> = (0..component.storage.len())
                        .filter(|&i| !component.storage[i].wrong_sha256)
                        .collect();
                    let i = free[rng.below(free.len() as u64) as usize];
                    component.storage[i].wrong_sha256 = true;
                    let file = &component.storage[i];
                    at.entry =
                        format!("{}_storage/{}{}", component.prefix, file.id, file.extension);
                    at.component = component.path.clone();
                    at.table = Some("_storage".into());
                }
                _ => unreachable!("row faults are placed above"),
            }
            placed.push(at);
        }
        Ok(placed)
    }

    fn extra(&mut self, name: &str, content: Vec<u8>) {
        self.extra_entries.push(ExtraEntry {
            name: name.to_owned(),
            content,
        });
    }

    /// Places a row fault: (table, line, first line of a duplicate). Never on
    /// line 1, whose `_id` decides the table's number when `_tables` does not.
    fn place_row_fault(
        &mut self,
        fault: Fault,
        rng: &mut Rng,
    ) -> Result<(usize, u64, Option<u64>), GenError> {
        let free = |table: &TablePlan, line: u64| {
            !table.row_faults.contains_key(&line) && !table.remember.contains(&line)
        };
        if fault == Fault::DuplicateId {
            let Some(t) = (0..self.tables.len())
                .filter(|&t| self.tables[t].documents >= 3)
                .max_by_key(|&t| (self.tables[t].documents, std::cmp::Reverse(t)))
            else {
                return Err(needs(fault, "a table of 3 or more documents"));
            };
            let n = self.tables[t].documents;
            for _ in 0..64 {
                let (first, second) = if n >= BATCH_ROWS + 3 {
                    let first = 2 + rng.below((n - BATCH_ROWS - 2).min(1000));
                    let gap = BATCH_ROWS + 1 + rng.below(n - first - BATCH_ROWS);
                    (first, first + gap)
                } else {
                    (2 + rng.below(n / 2), n)
                };
                let first = first.min(second - 1);
                let table = &mut self.tables[t];
                if free(table, first) && free(table, second) {
                    table.remember.insert(first);
                    table.row_faults.insert(
                        second,
                        RowFault {
                            fault,
                            first_line: first,
                            other_number: 0,
                        },
                    );
                    return Ok((t, second, Some(first)));
                }
            }
            return Err(needs(fault, "more free rows"));
        }
        let candidates: Vec<usize> = (0..self.tables.len())
            .filter(|&t| self.tables[t].documents >= 2)
            .collect();
        if candidates.is_empty() {
            return Err(needs(fault, "a table of 2 or more documents"));
        }
        for _ in 0..64 {
            let t = candidates[rng.below(candidates.len() as u64) as usize];
            let line = 2 + rng.below(self.tables[t].documents - 1);
            if !free(&self.tables[t], line) {
                continue;
            }
            let siblings = &self.components[self.tables[t].component].tables;
            let number = self.tables[t].number;
            let other_number = siblings
                .iter()
                .map(|&s| self.tables[s].number)
                .find(|&n| n != number)
                .unwrap_or(number + 1);
            self.tables[t].row_faults.insert(
                line,
                RowFault {
                    fault,
                    first_line: 0,
                    other_number,
                },
            );
            return Ok((t, line, None));
        }
        Err(needs(fault, "more free rows"))
    }

    fn write_tables_entry<S: Write + Seek>(
        &self,
        w: &mut Archive<S>,
        component: &ComponentPlan,
        faults: &mut [InjectedFault],
    ) -> Result<(), GenError> {
        let mut rows: Vec<(u32, bool, &str, Option<usize>)> = component
            .tables
            .iter()
            .map(|&t| {
                (
                    self.tables[t].number,
                    false,
                    self.tables[t].name.as_str(),
                    None,
                )
            })
            .chain(
                component
                    .extra_rows
                    .iter()
                    .map(|(name, number, k)| (*number, true, name.as_str(), Some(*k))),
            )
            .collect();
        rows.sort_by_key(|row| (row.0, row.1));
        let mut text = Vec::new();
        for (line, (number, _, name, fault)) in rows.into_iter().enumerate() {
            text.extend_from_slice(b"{\"name\":\"");
            text.extend_from_slice(name.as_bytes());
            text.extend_from_slice(b"\",\"id\":");
            push_display(&mut text, number);
            text.extend_from_slice(b"}\n");
            if let Some(k) = fault {
                faults[k].line = Some(line as u64 + 1);
            }
        }
        w.entry(
            &format!("{}_tables/documents.jsonl", component.prefix),
            &text,
            false,
        )
    }

    fn write_table<S: Write + Seek>(
        &self,
        w: &mut Archive<S>,
        spec: &GenSpec,
        t: usize,
    ) -> Result<GenTable, GenError> {
        let table = &self.tables[t];
        let component = &self.components[table.component];
        let entry = format!("{}{}/documents.jsonl", component.prefix, table.name);
        w.start(&entry, table.large)?;
        let mut rng = Rng::new(self.seed, 1000 + t as u64);
        let mut out = Vec::with_capacity(FLUSH_BYTES + 4096);
        let mut id_json = Vec::with_capacity(MAX_ID_LEN + 2);
        let mut remembered: BTreeMap<u64, DocumentId> = BTreeMap::new();
        let mut creation_time = rng.creation_time();
        let mut bytes = 0u64;
        for line in 1..=table.documents {
            creation_time += 1.0 + rng.below(60_000) as f64 + rng.below(1000) as f64 / 1000.0;
            let mut id = DocumentId::new(table.number, rng.internal_id(creation_time));
            let fault = table.row_faults.get(&line).copied();
            if table.remember.contains(&line) {
                remembered.insert(line, id);
            }
            let mut extra: Option<Vec<u8>> = None;
            let mut integer_time = false;
            id_json.clear();
            match fault.map(|f| f.fault) {
                Some(Fault::DuplicateId) => id = remembered[&fault.unwrap().first_line],
                Some(Fault::ForeignTableId) => id.table = fault.unwrap().other_number,
                Some(Fault::NonObjectRow) => {
                    out.extend_from_slice(b"[1,\"two\",null]\n");
                    continue;
                }
                Some(Fault::WrapperRow) => {
                    out.extend_from_slice(b"{\"$integer\":\"AQAAAAAAAAA=\"}\n");
                    continue;
                }
                Some(Fault::IntegerCreationTime) => integer_time = true,
                Some(f) => extra = fault_field(f),
                None => {}
            }
            match fault.map(|f| f.fault) {
                Some(Fault::UndecodableId) => {
                    id_json.push(b'"');
                    id_json.extend_from_slice(corrupt_id(&id).as_bytes());
                    id_json.push(b'"');
                }
                Some(Fault::NonStringId) => id_json.extend_from_slice(b"12345"),
                _ => {
                    let mut text = [0u8; MAX_ID_LEN];
                    id_json.push(b'"');
                    id_json.extend_from_slice(id.encode_into(&mut text));
                    id_json.push(b'"');
                }
            }
            let start = out.len();
            let doc = Document {
                table,
                shape: &spec.document,
                id_json: &id_json,
                creation_time,
                integer_time,
                extra: extra.as_deref(),
            };
            doc.write(&mut out, &mut rng);
            if fault.map(|f| f.fault) == Some(Fault::BadJsonLine) {
                // Cut before an ASCII byte so the line stays UTF-8.
                let mut cut = start + (out.len() - start) / 2;
                while out[cut] >= 0x80 {
                    cut -= 1;
                }
                out.truncate(cut);
                out.push(b'\n');
            }
            if out.len() >= FLUSH_BYTES {
                w.write(&out)?;
                bytes += out.len() as u64;
                out.clear();
            }
        }
        w.write(&out)?;
        bytes += out.len() as u64;
        let schema = format!("{}{}/generated_schema.jsonl", component.prefix, table.name);
        w.entry(&schema, b"\"uniform\"\n", false)?;
        Ok(GenTable {
            component: component.path.clone(),
            name: table.name.clone(),
            number: table.number,
            documents: table.documents,
            bytes,
            entry,
        })
    }

    fn write_storage<S: Write + Seek>(
        &self,
        w: &mut Archive<S>,
        component: &ComponentPlan,
        files: &mut Vec<GenStorageFile>,
    ) -> Result<(), GenError> {
        if component.storage.is_empty() {
            return Ok(());
        }
        let mut rows = Vec::new();
        for (i, file) in component.storage.iter().enumerate() {
            let mut hash = Sha256::new();
            let seed = self.file_seed(component, i) + u64::from(file.wrong_sha256);
            file_content(seed, file.size, |chunk| {
                hash.update(chunk);
                Ok(())
            })?;
            rows.extend_from_slice(b"{\"_id\":\"");
            rows.extend_from_slice(file.id.to_string().as_bytes());
            rows.extend_from_slice(b"\",\"_creationTime\":");
            push_float(&mut rows, file.creation_time);
            rows.extend_from_slice(b",\"sha256\":\"");
            rows.extend_from_slice(BASE64.encode(hash.finalize()).as_bytes());
            rows.extend_from_slice(b"\",\"size\":");
            push_display(&mut rows, file.size);
            rows.extend_from_slice(b",\"contentType\":");
            match file.content_type {
                Some(ct) => {
                    rows.push(b'"');
                    rows.extend_from_slice(ct.as_bytes());
                    rows.push(b'"');
                }
                None => rows.extend_from_slice(b"null"),
            }
            rows.extend_from_slice(b",\"internalId\":\"");
            rows.extend_from_slice(uuid_text(&file.internal_id).as_bytes());
            rows.extend_from_slice(b"\"}\n");
        }
        w.entry(
            &format!("{}_storage/documents.jsonl", component.prefix),
            &rows,
            false,
        )?;
        for (i, file) in component.storage.iter().enumerate() {
            let entry = format!("{}_storage/{}{}", component.prefix, file.id, file.extension);
            w.start(&entry, file.size > 3 << 30)?;
            file_content(self.file_seed(component, i), file.size, |chunk| {
                w.write(chunk)
            })?;
            files.push(GenStorageFile {
                component: component.path.clone(),
                id: file.id.to_string(),
                entry,
                size: file.size,
                content_type: file.content_type.map(str::to_owned),
            });
        }
        Ok(())
    }

    fn file_seed(&self, component: &ComponentPlan, i: usize) -> u64 {
        mix(self.seed, (component.index as u64) << 32 | i as u64) << 1
    }
}

fn check_spec(spec: &GenSpec) -> Result<(), GenError> {
    let shape = &spec.document;
    if spec.storage_min_bytes > spec.storage_max_bytes {
        return Err(spec_error(
            "storageMinBytes is above storageMaxBytes".into(),
        ));
    }
    if !(1..=9).contains(&spec.compression_level) {
        return Err(spec_error("compressionLevel must be 1 to 9".into()));
    }
    if !spec.prefix.is_empty() && !spec.prefix.ends_with('/') {
        return Err(spec_error(format!(
            "prefix '{}' must end with '/'",
            spec.prefix
        )));
    }
    // Entries must stay inside the folder the archive unzips into.
    let segments = spec.prefix.trim_end_matches('/').split('/');
    if spec.prefix.starts_with('/')
        || segments.into_iter().any(|s| s == ".." || s == ".")
        || spec.prefix.contains('\\')
    {
        return Err(spec_error(format!(
            "prefix '{}' must be a relative folder path without '.', '..' or '\\'",
            spec.prefix
        )));
    }
    if shape.fields > 1000 || shape.nesting > 12 || shape.max_array_len > 8192 {
        return Err(spec_error(
            "documents allow at most 1000 fields, nesting 12, arrays of 8192".into(),
        ));
    }
    if max_line_estimate(shape) > 1 << 20 {
        return Err(spec_error(
            "documents could pass 1 MiB: lower fields, maxStringLen, nesting or maxArrayLen".into(),
        ));
    }
    Ok(())
}

/// A generous bound on one document line's length.
fn max_line_estimate(shape: &DocumentShape) -> u64 {
    let string = u64::from(shape.max_string_len) + 24;
    let object = (u64::from(shape.nesting) + 1) * (string + 48);
    let array = u64::from(shape.max_array_len) * (string + 2);
    128 + u64::from(shape.fields) * (40 + object.max(array))
}

fn spec_error(message: String) -> GenError {
    GenError::Spec(message)
}

fn needs(fault: Fault, what: &str) -> GenError {
    // As the spec and `--fault` spell it.
    let name = serde_json::to_value(fault)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_else(|| format!("{fault:?}"));
    spec_error(format!("fault {name} needs {what}"))
}

// ---------------------------------------------------------------------------
// Output.

struct Archive<S: Write + Seek> {
    zip: ZipWriter<S>,
    level: u8,
    entries: u64,
    bytes: u64,
}

/// The archive's output, silent after its first error: the error goes to
/// the caller, and the ZIP writer, dropped, finishes into nothing instead of
/// printing its own message about the same failure. After the error, writes
/// and seeks go on at a position of its own, as they would have in the
/// file: a seek answered with 0 would make the writer's sizes underflow,
/// and it would print that.
struct Quiet<W> {
    inner: W,
    failed: bool,
    /// Where the writer is, and the furthest it got.
    position: u64,
    end: u64,
}

impl<W> Quiet<W> {
    fn new(inner: W) -> Self {
        Quiet {
            inner,
            failed: false,
            position: 0,
            end: 0,
        }
    }

    fn moved_to(&mut self, position: u64) -> u64 {
        self.position = position;
        self.end = self.end.max(position);
        position
    }

    fn track<T>(&mut self, result: std::io::Result<T>, otherwise: T) -> std::io::Result<T> {
        match (self.failed, result) {
            (true, _) => Ok(otherwise),
            (false, Err(e)) => {
                self.failed = true;
                Err(e)
            }
            (false, ok) => ok,
        }
    }
}

impl<W: Write> Write for Quiet<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let result = match self.failed {
            true => Ok(buf.len()),
            false => self.inner.write(buf),
        };
        if let Ok(written) = result {
            self.moved_to(self.position + written as u64);
        }
        self.track(result, buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        if self.failed {
            return Ok(());
        }
        let result = self.inner.flush();
        self.track(result, ())
    }
}

impl<W: Seek> Seek for Quiet<W> {
    fn seek(&mut self, pos: std::io::SeekFrom) -> std::io::Result<u64> {
        use std::io::SeekFrom;
        if self.failed {
            let to = match pos {
                SeekFrom::Start(to) => to,
                SeekFrom::Current(by) => self.position.saturating_add_signed(by),
                SeekFrom::End(by) => self.end.saturating_add_signed(by),
            };
            return Ok(self.moved_to(to));
        }
        let result = self.inner.seek(pos);
        if let Ok(to) = result {
            self.moved_to(to);
        }
        let position = self.position;
        self.track(result, position)
    }
}

impl<S: Write + Seek> Archive<S> {
    fn start(&mut self, name: &str, large: bool) -> Result<(), GenError> {
        let options = SimpleFileOptions::default()
            .compression_method(CompressionMethod::Deflated)
            .compression_level(Some(i64::from(self.level)))
            .last_modified_time(DateTime::default())
            .unix_permissions(0o644)
            .large_file(large);
        self.zip.start_file(name, options)?;
        self.entries += 1;
        Ok(())
    }

    fn write(&mut self, bytes: &[u8]) -> Result<(), GenError> {
        self.zip.write_all(bytes)?;
        self.bytes += bytes.len() as u64;
        Ok(())
    }

    fn entry(&mut self, name: &str, content: &[u8], large: bool) -> Result<(), GenError> {
        self.start(name, large)?;
        self.write(content)
    }
}

/// One document line being written.
struct Document<'a> {
    table: &'a TablePlan,
    shape: &'a DocumentShape,
    id_json: &'a [u8],
    creation_time: f64,
    integer_time: bool,
    extra: Option<&'a [u8]>,
}

impl Document<'_> {
    fn write(&self, out: &mut Vec<u8>, rng: &mut Rng) {
        out.push(b'{');
        let mut first = true;
        if let Some(extra) = self.extra {
            out.extend_from_slice(extra);
            first = false;
        }
        for (name, kind) in &self.table.fields {
            if *kind == Kind::OptionalStr && rng.coin(2) {
                continue;
            }
            if !first {
                out.push(b',');
            }
            first = false;
            out.push(b'"');
            out.extend_from_slice(name.as_bytes());
            out.extend_from_slice(b"\":");
            self.value(out, rng, *kind);
        }
        out.extend_from_slice(b"}\n");
    }

    fn value(&self, out: &mut Vec<u8>, rng: &mut Rng, kind: Kind) {
        let max_len = self.shape.max_string_len;
        match kind {
            Kind::Id => out.extend_from_slice(self.id_json),
            Kind::CreationTime if self.integer_time => push_display(out, self.creation_time as u64),
            Kind::CreationTime => push_float(out, self.creation_time),
            Kind::Str | Kind::OptionalStr => push_words(out, rng, max_len),
            Kind::Int => push_display(out, rng.int()),
            Kind::Float => push_float(out, rng.float()),
            Kind::Bool => out.extend_from_slice(if rng.coin(2) { b"true" } else { b"false" }),
            Kind::Nullable if rng.coin(2) => out.extend_from_slice(b"null"),
            Kind::Nullable => push_words(out, rng, max_len),
            Kind::Ref(number) => {
                let id = DocumentId::new(number, rng.internal_id(self.creation_time));
                let mut text = [0u8; MAX_ID_LEN];
                out.push(b'"');
                out.extend_from_slice(id.encode_into(&mut text));
                out.push(b'"');
            }
            Kind::Tags | Kind::Numbers => {
                out.push(b'[');
                for i in 0..rng.below(u64::from(self.shape.max_array_len) + 1) {
                    if i > 0 {
                        out.push(b',');
                    }
                    match (kind, rng.coin(2)) {
                        (Kind::Tags, _) => push_words(out, rng, max_len / 2),
                        (_, true) => push_display(out, rng.int()),
                        (_, false) => push_float(out, rng.float()),
                    }
                }
                out.push(b']');
            }
            Kind::Object => self.object(out, rng, self.shape.nesting),
            Kind::Bytes => {
                let mut bytes = [0u8; 24];
                let len = rng.below(25) as usize;
                rng.fill(&mut bytes[..len]);
                out.extend_from_slice(b"{\"$bytes\":\"");
                out.extend_from_slice(BASE64.encode(&bytes[..len]).as_bytes());
                out.extend_from_slice(b"\"}");
            }
            Kind::Special => match rng.below(8) {
                // What the exporter writes for NaN and infinities; `$integer`
                // is never exported but imports.
                0 => out.extend_from_slice(b"{\"$float\":\"AAAAAAAA+H8=\"}"),
                1 => out.extend_from_slice(b"{\"$float\":\"AAAAAAAA8H8=\"}"),
                2 => out.extend_from_slice(b"{\"$float\":\"AAAAAAAA8P8=\"}"),
                3 => {
                    out.extend_from_slice(b"{\"$integer\":\"");
                    let encoded = BASE64.encode(rng.int().to_le_bytes());
                    out.extend_from_slice(encoded.as_bytes());
                    out.extend_from_slice(b"\"}");
                }
                4 => out.extend_from_slice(b"-0.0"),
                _ => push_float(out, rng.float()),
            },
        }
    }

    /// `{"count": int, "label": string, "next": {...}}`, keys byte-sorted.
    fn object(&self, out: &mut Vec<u8>, rng: &mut Rng, depth: u32) {
        out.extend_from_slice(b"{\"count\":");
        push_display(out, rng.int());
        out.extend_from_slice(b",\"label\":");
        push_words(out, rng, self.shape.max_string_len);
        if depth > 0 {
            out.extend_from_slice(b",\"next\":");
            self.object(out, rng, depth - 1);
        }
        out.push(b'}');
    }
}

/// The field a fault adds at the start of a document, if it adds one.
fn fault_field(fault: Fault) -> Option<Vec<u8>> {
    let mut field = Vec::new();
    match fault {
        Fault::SetWrapper => field.extend_from_slice(b"\"faultSet\":{\"$set\":[1,2]}"),
        Fault::DollarFieldName => {
            field.extend_from_slice(b"\"faultMeta\":{\"note\":\"x\",\"$bad\":1}")
        }
        Fault::UnderscoreField => field.extend_from_slice(b"\"_secret\":\"hidden\""),
        Fault::ArrayTooLong => {
            field.extend_from_slice(b"\"faultList\":[0");
            field.extend(std::iter::repeat_n(*b",0", 8192).flatten());
            field.push(b']');
        }
        Fault::TooDeep => {
            field.extend_from_slice(b"\"faultDeep\":");
            field.extend(std::iter::repeat_n(*b"{\"d\":", 20).flatten());
            field.extend_from_slice(b"null");
            field.extend(std::iter::repeat_n(b'}', 20));
        }
        Fault::OversizedDocument => {
            field.extend_from_slice(b"\"faultBlob\":\"");
            field.extend(std::iter::repeat_n(b'x', 1 << 20));
            field.push(b'"');
        }
        _ => return None,
    }
    Some(field)
}

/// The id's text with its last character changed: it no longer decodes.
fn corrupt_id(id: &DocumentId) -> String {
    let mut text = id.to_string();
    let last = if text.ends_with('0') { "1" } else { "0" };
    text.replace_range(text.len() - 1.., last);
    text
}

/// Streams a stored file's deterministic bytes to `sink` in chunks.
fn file_content(
    seed: u64,
    size: u64,
    mut sink: impl FnMut(&[u8]) -> Result<(), GenError>,
) -> Result<(), GenError> {
    let mut rng = Rng::new(seed, 3);
    let mut chunk = vec![0u8; FLUSH_BYTES.min(size as usize)];
    let mut left = size;
    while left > 0 {
        let n = (left as usize).min(chunk.len());
        rng.fill(&mut chunk[..n]);
        sink(&chunk[..n])?;
        left -= n as u64;
    }
    Ok(())
}

fn uuid_text(bytes: &[u8; 16]) -> String {
    let mut b = *bytes;
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let hex = crate::hex(&b);
    format!(
        "{}-{}-{}-{}-{}",
        &hex[..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..]
    )
}

/// A JSON string of words, about `max_len` bytes at most.
fn push_words(out: &mut Vec<u8>, rng: &mut Rng, max_len: u32) {
    out.push(b'"');
    let target = rng.below(u64::from(max_len) + 1) as usize;
    let mut len = 0;
    while len < target {
        if len > 0 {
            out.push(b' ');
            len += 1;
        }
        let word = WORDS[rng.below(WORDS.len() as u64) as usize].as_bytes();
        if word.iter().any(|&b| b == b'"' || b == b'\\') {
            for &b in word {
                if b == b'"' || b == b'\\' {
                    out.push(b'\\');
                }
                out.push(b);
            }
        } else {
            out.extend_from_slice(word);
        }
        len += word.len();
    }
    out.push(b'"');
}

fn push_display(out: &mut Vec<u8>, value: impl std::fmt::Display) {
    // Writing into a Vec cannot fail.
    let _ = write!(out, "{value}");
}

/// A finite float as the exporter writes it: shortest round-trip form with
/// a `.` or exponent.
fn push_float(out: &mut Vec<u8>, value: f64) {
    // serde_json writes finite floats with ryu ("1.0", "1e21"); a Vec cannot fail.
    let _ = serde_json::to_writer(out, &value);
}

/// splitmix64: tiny, fast and good enough for synthetic data.
struct Rng(u64);

fn mix(seed: u64, stream: u64) -> u64 {
    let mut rng = Rng(seed ^ stream.wrapping_mul(0xD1B5_4A32_D192_ED03));
    rng.next();
    rng.next()
}

impl Rng {
    fn new(seed: u64, stream: u64) -> Rng {
        Rng(mix(seed, stream))
    }

    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (0 when `n` is 0).
    fn below(&mut self, n: u64) -> u64 {
        ((u128::from(self.next()) * u128::from(n)) >> 64) as u64
    }

    fn coin(&mut self, one_in: u64) -> bool {
        self.below(one_in) == 0
    }

    fn fill(&mut self, out: &mut [u8]) {
        for chunk in out.chunks_mut(8) {
            let bytes = self.next().to_le_bytes();
            chunk.copy_from_slice(&bytes[..chunk.len()]);
        }
    }

    /// Mostly small integers, some beyond 2^53.
    fn int(&mut self) -> i64 {
        if self.coin(16) {
            self.next() as i64
        } else {
            self.below(2_000_001) as i64 - 1_000_000
        }
    }

    /// A float with up to three decimals; some are whole ("3.0").
    fn float(&mut self) -> f64 {
        let whole = self.below(20_001) as f64 - 10_000.0;
        if self.coin(8) {
            whole
        } else {
            whole + self.below(1000) as f64 / 1000.0
        }
    }

    /// A start time in ms between 2020 and 2023.
    fn creation_time(&mut self) -> f64 {
        1.6e12 + self.below(100_000_000_000) as f64 + self.below(1000) as f64 / 1000.0
    }

    /// 14 random bytes, then the day number as Convex's ids end.
    fn internal_id(&mut self, creation_time: f64) -> [u8; 16] {
        let mut internal = [0u8; 16];
        self.fill(&mut internal[..14]);
        let day = (creation_time / 86_400_000.0) as u16;
        internal[14..].copy_from_slice(&day.to_be_bytes());
        internal
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spec_from_json_with_defaults() {
        let spec: GenSpec = serde_json::from_str(
            r#"{"seed": 9, "components": ["a/b"], "document": {"fields": 3}, "faults": ["duplicateId", "sha256Mismatch"]}"#,
        )
        .unwrap();
        assert_eq!(spec.seed, 9);
        assert_eq!(spec.tables, 3);
        assert_eq!(spec.document.fields, 3);
        assert_eq!(spec.document.max_string_len, 40);
        assert_eq!(spec.faults, [Fault::DuplicateId, Fault::Sha256Mismatch]);
        assert!(serde_json::from_str::<GenSpec>(r#"{"tabels": 3}"#).is_err());
    }

    #[test]
    fn bad_specs_are_refused() {
        let cases = [
            GenSpec {
                components: vec!["a/bad-name".into()],
                ..GenSpec::default()
            },
            GenSpec {
                prefix: "snapshot".into(),
                ..GenSpec::default()
            },
            GenSpec {
                prefix: "../up/".into(),
                ..GenSpec::default()
            },
            GenSpec {
                prefix: "a/./b/".into(),
                ..GenSpec::default()
            },
            GenSpec {
                prefix: "/root/".into(),
                ..GenSpec::default()
            },
            GenSpec {
                faults: vec![Fault::Sha256Mismatch],
                ..GenSpec::default()
            },
            GenSpec {
                documents_per_table: 1,
                faults: vec![Fault::BadJsonLine],
                ..GenSpec::default()
            },
            GenSpec {
                document: DocumentShape {
                    fields: 1000,
                    max_string_len: 4000,
                    ..DocumentShape::default()
                },
                ..GenSpec::default()
            },
        ];
        for spec in cases {
            let result = write_snapshot(std::io::Cursor::new(Vec::new()), &spec);
            assert!(matches!(result, Err(GenError::Spec(_))), "{spec:?}");
        }
        // A fault is named as the spec and `--fault` spell it.
        let spec = GenSpec {
            documents_per_table: 1,
            faults: vec![Fault::BadJsonLine],
            ..GenSpec::default()
        };
        let Err(GenError::Spec(message)) = write_snapshot(std::io::Cursor::new(Vec::new()), &spec)
        else {
            panic!("a spec error");
        };
        assert!(message.starts_with("fault badJsonLine needs "), "{message}");
    }

    #[test]
    fn rng_is_deterministic_and_spread() {
        let a: Vec<u64> = (0..4).map(|_| Rng::new(5, 1).next()).collect();
        assert!(a.windows(2).all(|w| w[0] == w[1]));
        let mut rng = Rng::new(5, 1);
        let mut seen = [0u32; 10];
        for _ in 0..10_000 {
            seen[rng.below(10) as usize] += 1;
        }
        assert!(seen.iter().all(|&n| (800..1200).contains(&n)), "{seen:?}");
        assert_ne!(Rng::new(5, 1).next(), Rng::new(5, 2).next());
    }

    #[test]
    fn corrupted_ids_do_not_decode() {
        let mut rng = Rng::new(1, 1);
        for table in [1, 540, 10001, 3_000_000] {
            let id = DocumentId::new(table, rng.internal_id(1.7e12));
            assert!(DocumentId::decode(&corrupt_id(&id)).is_err());
        }
    }
}

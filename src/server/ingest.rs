//! Re-validation of a received stream, frame by frame: the server trusts no
//! client. The decoder (`crate::migration`) has already checked each frame's
//! checksum, sequence, item order, counts and file digests; here every
//! document is checked again with the core's [`TableChecker`] (values, with
//! the rules its table declares; `_id`s, their table numbers, duplicates
//! across the whole table), table declarations are checked against each
//! other, and each frame becomes the [`FrameWrite`] the store applies plus
//! the storage-file pieces to keep.
//!
//! Pure: no I/O. The driver (`super::imports`) applies what a frame yields.

use std::borrow::Cow;
use std::collections::HashMap;

use sha2::{Digest, Sha256};

use super::store::{DocumentWrite, FrameWrite, TableDeclaration, TablePin};
use crate::archive::check_component_path;
use crate::convex::names::check_identifier;
use crate::convex::value::{encode_base64, IdField};
use crate::convex::DocumentId;
use crate::convex::MAX_USER_TABLES;
use crate::migration::{Frame, Item, TableDecl};
use crate::report::{Code, NumberSource};
use crate::validate::storage::StorageMetadata;
use crate::validate::table::{import_conflict_message, RowFinding};
use crate::validate::{line_too_long, TableChecker, MAX_LINE};

/// Why a frame is refused, with where: the import stays at the frame before.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Rejection {
    /// Stable code (Convex's where Convex has one).
    pub code: &'static str,
    /// What is wrong.
    pub message: String,
    /// Component path of the table concerned.
    pub component: String,
    /// The table concerned.
    pub table: Option<Box<str>>,
    /// 1-based document (line) number within the table.
    pub line: Option<u64>,
    /// The field concerned, as a path from the document (boxed: a
    /// rejection is returned through every step of a frame).
    pub field: Option<Box<str>>,
    /// Sequence number of the refused frame.
    pub seq: u64,
}

/// A piece of a storage file to keep.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FilePiece<'a> {
    /// A file starts: its component and `_storage` id.
    Start {
        /// Component path.
        component: &'a str,
        /// The file's `_storage` id.
        id: &'a str,
    },
    /// Bytes of the open file.
    Data(&'a [u8]),
    /// The open file is complete; its SHA-256 (checked by the decoder).
    End([u8; 32]),
}

/// What one accepted frame yields.
#[derive(Debug, Default)]
pub struct Accepted<'a> {
    /// Tables declared.
    pub tables: Vec<TableDeclaration>,
    /// Documents: stream table index, internal id, line.
    pub documents: Vec<(usize, [u8; 16], Cow<'a, str>)>,
    /// Pins found.
    pub pins: Vec<TablePin>,
    /// Tables ended (indexes into the import's tables).
    pub ended: Vec<usize>,
    /// Storage file pieces, in order.
    pub files: Vec<FilePiece<'a>>,
    /// The frame holds `Done`.
    pub done: bool,
}

impl Accepted<'_> {
    /// The store write of this frame.
    pub fn write<'s>(&'s self, seq: u64, ingest: &'s Ingest) -> FrameWrite<'s> {
        FrameWrite {
            seq,
            tables: self.tables.clone(),
            documents: self
                .documents
                .iter()
                .map(|(table, internal, line)| {
                    let t = &ingest.tables[*table];
                    DocumentWrite {
                        component: &t.component,
                        table: &t.name,
                        internal: *internal,
                        json: line,
                    }
                })
                .collect(),
            pins: self.pins.clone(),
            ended: self
                .ended
                .iter()
                .filter_map(|&table| ingest.tables.get(table))
                .map(|t| (t.component.clone(), t.name.clone()))
                .collect(),
        }
    }
}

struct TableState {
    component: String,
    name: String,
    number: Option<u32>,
    checker: TableChecker,
    /// For `_storage`: its rows, checked as Convex reads them (a fixed
    /// record), held back until `Done` (a row whose file never came is
    /// skipped, as Convex skips it).
    storage: Option<StorageTable>,
    /// Documents checked so far (the next one's 1-based row is `rows + 1`).
    rows: u64,
    /// For a table without a number: the first `_id`'s number.
    pinned: Option<u32>,
}

impl TableState {
    /// The refusal of row `row` of this table, in frame `seq`.
    fn reject(&self, row: u64, finding: RowFinding, seq: u64) -> Rejection {
        Rejection {
            code: finding.code.as_str(),
            message: finding.message,
            component: self.component.clone(),
            table: Some(self.name.as_str().into()),
            line: Some(row),
            field: finding.field.map(String::into_boxed_str),
            seq,
        }
    }
}

/// A `_storage` table's metadata and its rows not yet written.
#[derive(Default)]
struct StorageTable {
    metadata: StorageMetadata,
    /// Rows by file, in the order first met; a later row of a file
    /// replaces the earlier one, as in Convex.
    pending: Vec<(DocumentId, String)>,
    pending_at: HashMap<DocumentId, usize>,
    /// The row (1-based, in the table) each file's kept row came on: its
    /// last. Kept after the rows are written, for a refusal at finish.
    row_of: HashMap<DocumentId, u64>,
    /// Files that came without a row: id, size and SHA-256.
    without_rows: Vec<(DocumentId, u64, [u8; 32])>,
    /// Size and SHA-256 of the files that came, by id, for rows that do
    /// not give them.
    received: HashMap<DocumentId, (u64, [u8; 32])>,
}

impl StorageTable {
    /// Checks row `row` as Convex reads a `_storage` row and holds it back
    /// until `Done`, in place of an earlier row of the same file.
    fn hold_row(
        &mut self,
        line: Cow<'_, str>,
        row: u64,
        number: Option<u32>,
    ) -> Result<(), RowFinding> {
        self.metadata.check_row(&line, row, number)?;
        let id = serde_json::from_str::<StorageRowId>(&line)
            .ok()
            .and_then(|r| DocumentId::decode(&r.id).ok());
        if let Some(id) = id {
            self.row_of.insert(id, row);
            match self.pending_at.get(&id) {
                Some(&at) => self.pending[at].1 = line.into_owned(),
                None => {
                    self.pending_at.insert(id, self.pending.len());
                    self.pending.push((id, line.into_owned()));
                }
            }
        }
        Ok(())
    }
}

/// The `_id` of a `_storage` row (already checked).
#[derive(serde::Deserialize)]
struct StorageRowId {
    #[serde(rename = "_id")]
    id: String,
}

/// The storage file being received: its component, id, expected digest
/// (`None` without a row, or a row without `sha256`), why its row cannot be
/// inserted as a document (if it cannot), and size so far.
struct OpenFile {
    component: String,
    id: DocumentId,
    has_row: bool,
    expected: Option<[u8; 32]>,
    row_error: Option<RowFinding>,
    size: u64,
}

/// The re-validation state of one import's stream.
pub struct Ingest {
    import_id: String,
    tables: Vec<TableState>,
    /// The start of a document line split across items: (table, bytes).
    partial: Option<(usize, Vec<u8>)>,
    /// The storage file being received.
    file: Option<OpenFile>,
    /// Tables by component and declared number.
    numbered: HashMap<(String, u32), usize>,
    /// User tables declared.
    user_tables: usize,
}

/// The number a declaration fixes: from `_tables` or the first `_id`. A
/// number the client took from this server's tables (step 3) is decided
/// again at finish, against the tables as they are then.
fn declared_number(decl: &TableDecl) -> Option<u32> {
    match decl.number_source {
        NumberSource::Tables | NumberSource::Id => decl.number,
        NumberSource::Target | NumberSource::Unassigned => None,
    }
}

impl Ingest {
    /// State at the start of import `import_id`'s stream.
    pub fn new(import_id: &str) -> Self {
        Ingest {
            import_id: import_id.to_owned(),
            tables: Vec::new(),
            partial: None,
            file: None,
            numbered: HashMap::new(),
            user_tables: 0,
        }
    }

    /// True when the stream declared a `_storage` table (in any component).
    pub fn declares_storage(&self) -> bool {
        self.tables.iter().any(|t| t.name == "_storage")
    }

    /// The 1-based line (document number) of document `id` in table `name`
    /// of `component`, as the import's frames gave it (for `_storage`, the
    /// row kept: a file's last); `None` for a table the import did not
    /// declare, a document it did not send, and the row the server made for
    /// a file that came without one.
    pub fn line_of(&self, component: &str, name: &str, id: DocumentId) -> Option<u64> {
        let table = self
            .tables
            .iter()
            .find(|t| t.component == component && t.name == name)?;
        match &table.storage {
            Some(storage) => storage.row_of.get(&id).copied(),
            None => table.checker.first_seen(id),
        }
    }

    /// Checks one decoded frame. On refusal the state is partly advanced:
    /// the caller rebuilds it from the frames accepted before.
    pub fn frame<'a>(&mut self, frame: &'a Frame) -> Result<Accepted<'a>, Rejection> {
        let seq = frame.sequence;
        let mut out = Accepted::default();
        for item in &frame.items {
            match item {
                Item::Header(_) => {}
                Item::TableEnd(end) => out.ended.push(end.table as usize),
                Item::Table(decl) => {
                    let declaration = self.declare(decl).map_err(|(code, message)| Rejection {
                        code,
                        message,
                        component: decl.component.clone(),
                        table: Some(decl.name.as_str().into()),
                        line: None,
                        field: None,
                        seq,
                    })?;
                    out.tables.push(declaration);
                }
                Item::Documents { table, data } => {
                    self.documents(*table as usize, data, seq, &mut out)?
                }
                Item::File(start) => {
                    self.start_file(&start.component, &start.id, seq)?;
                    out.files.push(FilePiece::Start {
                        component: &start.component,
                        id: &start.id,
                    });
                }
                Item::FileData(data) => {
                    if let Some(file) = self.file.as_mut() {
                        file.size += data.len() as u64;
                    }
                    out.files.push(FilePiece::Data(data))
                }
                Item::FileEnd { sha256 } => {
                    self.end_file(sha256, seq)?;
                    out.files.push(FilePiece::End(*sha256));
                }
                Item::Done(_) => {
                    out.done = true;
                    self.release_storage_rows(&mut out);
                }
            }
        }
        Ok(out)
    }

    /// A refusal about a stored file of `component`.
    fn storage_rejection(component: &str, code: Code, message: String, seq: u64) -> Rejection {
        Rejection {
            code: code.as_str(),
            message,
            component: component.to_owned(),
            table: Some("_storage".into()),
            line: None,
            field: None,
            seq,
        }
    }

    /// A storage file starts: its id must decode and carry the `_storage`
    /// table's number; its row (if any) gives the digest to expect.
    fn start_file(&mut self, component: &str, id: &str, seq: u64) -> Result<(), Rejection> {
        check_component_path(component).map_err(|why| {
            Self::storage_rejection(component, Code::InvalidComponentName, why, seq)
        })?;
        let decoded = DocumentId::decode(id).map_err(|e| {
            Self::storage_rejection(
                component,
                Code::InvalidStorageId,
                format!("Invalid storage id '{id}': {e}"),
                seq,
            )
        })?;
        let table = self
            .tables
            .iter_mut()
            .find(|t| t.name == "_storage" && t.component == component);
        let (mut has_row, mut expected, mut row_error) = (false, None, None);
        // (The decoder refuses a file sent twice.)
        if let Some(table) = table {
            if table.number.is_some_and(|n| n != decoded.table) {
                let message = import_conflict_message(id, "_storage");
                return Err(Self::storage_rejection(
                    component,
                    Code::ImportConflict,
                    message,
                    seq,
                ));
            }
            if let Some(row) = table
                .storage
                .as_mut()
                .and_then(|s| s.metadata.rows.get_mut(&decoded))
            {
                row.has_file = true;
                has_row = true;
                expected = row.sha256;
                row_error = row.document_error();
            }
        }
        self.file = Some(OpenFile {
            component: component.to_owned(),
            id: decoded,
            has_row,
            expected,
            row_error,
            size: 0,
        });
        Ok(())
    }

    /// A storage file ends: its digest must be its row's. A file without
    /// a row gets one at `Done`.
    fn end_file(&mut self, sha256: &[u8; 32], seq: u64) -> Result<(), Rejection> {
        let Some(file) = self.file.take() else {
            return Ok(());
        };
        let storage = self
            .tables
            .iter_mut()
            .find(|t| t.name == "_storage" && t.component == file.component)
            .and_then(|t| t.storage.as_mut());
        if let Some(storage) = storage {
            if file.has_row {
                storage.received.insert(file.id, (file.size, *sha256));
            } else {
                storage.without_rows.push((file.id, file.size, *sha256));
            }
        }
        match file.expected {
            Some(expected) if expected != *sha256 => {
                let mut rejection = Self::storage_rejection(
                    &file.component,
                    Code::Sha256Mismatch,
                    format!(
                        "Sha256 mismatch. Expected: {} Actual: {}",
                        encode_base64(&expected),
                        encode_base64(sha256)
                    ),
                    seq,
                );
                rejection.message.push_str(&format!(" (file {})", file.id));
                Err(rejection)
            }
            _ => match file.row_error {
                Some(error) => {
                    let mut rejection =
                        Self::storage_rejection(&file.component, error.code, error.message, seq);
                    rejection.field = error.field.map(String::into_boxed_str);
                    Err(rejection)
                }
                None => Ok(()),
            },
        }
    }

    /// At `Done`: the `_storage` rows whose file came, into their tables,
    /// and for each file that came without a row, the row Convex makes for
    /// it: its id, digest and size (no content type, no creation time).
    fn release_storage_rows<'a>(&mut self, out: &mut Accepted<'a>) {
        for (index, table) in self.tables.iter_mut().enumerate() {
            let Some(storage) = table.storage.as_mut() else {
                continue;
            };
            for (id, size, sha256) in storage.without_rows.drain(..) {
                let sha256 = encode_base64(&sha256);
                let row = format!(r#"{{"_id":"{id}","sha256":"{sha256}","size":{size}}}"#);
                out.documents.push((index, id.internal, Cow::Owned(row)));
            }
            storage.pending_at.clear();
            for (id, line) in storage.pending.drain(..) {
                if storage
                    .metadata
                    .rows
                    .get(&id)
                    .is_some_and(|row| row.has_file)
                {
                    let line = match storage.received.get(&id) {
                        Some(&(size, sha256)) => with_file_facts(line, size, &sha256),
                        None => line,
                    };
                    out.documents.push((index, id.internal, Cow::Owned(line)));
                }
            }
            storage.received.clear();
        }
    }

    /// Checks a table declaration (its name and component, its number
    /// against the tables declared before, the count of user tables) and
    /// starts the table.
    fn declare(&mut self, decl: &TableDecl) -> Result<TableDeclaration, (&'static str, String)> {
        if decl.name != "_storage" {
            check_identifier(&decl.name).map_err(|reason| {
                (
                    Code::InvalidTableName.as_str(),
                    format!("table name '{}' invalid: {reason}", decl.name),
                )
            })?;
            if let Some(refusal) = crate::convex::names::system_table_refusal(&decl.name) {
                return Err((Code::InvalidTableName.as_str(), refusal));
            }
        }
        check_component_path(&decl.component)
            .map_err(|why| (Code::InvalidComponentName.as_str(), why))?;
        // (The decoder refuses a table declared twice.) Looked up, not
        // compared with every earlier table: streams may declare thousands.
        let number = declared_number(decl);
        if let Some(n) = number {
            let key = (decl.component.clone(), n);
            if let Some(&other) = self.numbered.get(&key) {
                return Err((
                    Code::InvalidId.as_str(),
                    format!(
                        "conflict between `{}` and `{}`{} with number {n}",
                        self.tables[other].name,
                        decl.name,
                        crate::validate::in_component(&decl.component)
                    ),
                ));
            }
            self.numbered.insert(key, self.tables.len());
        }
        // No deployment takes more: refused now rather than at finish.
        if !decl.name.starts_with('_') {
            self.user_tables += 1;
            if self.user_tables > MAX_USER_TABLES {
                return Err((
                    Code::TooManyTables.as_str(),
                    format!("Number of tables cannot exceed {MAX_USER_TABLES}."),
                ));
            }
        }
        self.tables.push(TableState {
            component: decl.component.clone(),
            name: decl.name.clone(),
            number,
            checker: TableChecker::new(&decl.name, number, decl.rules),
            storage: (decl.name == "_storage").then(StorageTable::default),
            rows: 0,
            pinned: None,
        });
        Ok(TableDeclaration {
            component: decl.component.clone(),
            name: decl.name.clone(),
            number,
            observed: None,
        })
    }

    /// Checks the lines of a documents item of `table`; a line the item
    /// leaves unfinished is held for the next item.
    fn documents<'a>(
        &mut self,
        table: usize,
        data: &'a [u8],
        seq: u64,
        out: &mut Accepted<'a>,
    ) -> Result<(), Rejection> {
        if table >= self.tables.len() {
            return Err(self.reject_stream(seq, format!("documents of undeclared table {table}")));
        }
        let mut rest = data;
        // A line begun in an earlier item continues here.
        if let Some((open, mut start)) = self.partial.take() {
            if open != table {
                return Err(
                    self.reject_stream(seq, "a split line continues in another table".into())
                );
            }
            match memchr::memchr(b'\n', rest) {
                Some(end) => {
                    start.extend_from_slice(&rest[..end]);
                    rest = &rest[end + 1..];
                    let line = self.line(table, Cow::Owned(start), seq)?;
                    self.check(table, line, seq, out)?;
                }
                None => {
                    start.extend_from_slice(rest);
                    self.hold_partial(table, start, seq)?;
                    return Ok(());
                }
            }
        }
        while !rest.is_empty() {
            match memchr::memchr(b'\n', rest) {
                Some(end) => {
                    let line = self.line(table, Cow::Borrowed(&rest[..end]), seq)?;
                    self.check(table, line, seq, out)?;
                    rest = &rest[end + 1..];
                }
                None => {
                    self.hold_partial(table, rest.to_vec(), seq)?;
                    break;
                }
            }
        }
        Ok(())
    }

    /// A refusal of the stream's structure, not of a document.
    fn reject_stream(&self, seq: u64, message: String) -> Rejection {
        Rejection {
            code: "OrderViolation",
            message,
            component: String::new(),
            table: None,
            line: None,
            field: None,
            seq,
        }
    }

    /// Keeps the start of a line the next item continues, refusing it as
    /// soon as it is longer than any line is read: a line split across many
    /// frames would otherwise grow here (and again at every replay) until
    /// its end.
    fn hold_partial(&mut self, table: usize, start: Vec<u8>, seq: u64) -> Result<(), Rejection> {
        if start.len() > MAX_LINE {
            return Err(self.too_long(table, seq));
        }
        self.partial = Some((table, start));
        Ok(())
    }

    /// The next line of `table` is longer than any line is read.
    fn too_long(&self, table: usize, seq: u64) -> Rejection {
        let t = &self.tables[table];
        let row = t.rows + 1;
        let finding = line_too_long(row);
        t.reject(row, RowFinding::new(finding.code, finding.message), seq)
    }

    /// A line as text (the row it will be is `rows + 1`).
    fn line<'a>(
        &self,
        table: usize,
        bytes: Cow<'a, [u8]>,
        seq: u64,
    ) -> Result<Cow<'a, str>, Rejection> {
        if bytes.len() > MAX_LINE {
            return Err(self.too_long(table, seq));
        }
        let t = &self.tables[table];
        let text = match bytes {
            Cow::Borrowed(b) => simdutf8::basic::from_utf8(b)
                .map(Cow::Borrowed)
                .map_err(|_| ()),
            Cow::Owned(b) => String::from_utf8(b).map(Cow::Owned).map_err(|_| ()),
        };
        text.map_err(|()| {
            let row = t.rows + 1;
            let message = format!("Row {row} is not valid UTF-8");
            t.reject(row, RowFinding::new(Code::NotUtf8, message), seq)
        })
    }

    /// Checks the next line of `table` and adds it to the frame's
    /// documents; a table without a number takes its first `_id`'s (a
    /// pin), and a `_storage` row is held until `Done`.
    fn check<'a>(
        &mut self,
        table: usize,
        line: Cow<'a, str>,
        seq: u64,
        out: &mut Accepted<'a>,
    ) -> Result<(), Rejection> {
        let t = &mut self.tables[table];
        t.rows += 1;
        let row = t.rows;
        if let Some(storage) = t.storage.as_mut() {
            return storage
                .hold_row(line, row, t.number)
                .map_err(|finding| t.reject(row, finding, seq));
        }
        let checked = match t.checker.check(line.as_bytes(), row, row) {
            Ok(doc) => doc,
            Err(finding) => return Err(t.reject(row, finding, seq)),
        };
        let internal = match checked.id {
            IdField::Valid(id) => {
                if t.number.is_none() {
                    match t.pinned {
                        None => {
                            t.pinned = Some(id.table);
                            out.pins.push(TablePin {
                                component: t.component.clone(),
                                table: t.name.clone(),
                                number: id.table,
                                id: id.to_string(),
                            });
                        }
                        Some(pinned) if pinned != id.table => {
                            let message = import_conflict_message(&id.to_string(), &t.name);
                            let finding = RowFinding::new(Code::ImportConflict, message).at("_id");
                            return Err(t.reject(row, finding, seq));
                        }
                        Some(_) => {}
                    }
                }
                id.internal
            }
            _ => derived_internal_id(&self.import_id, &t.component, &t.name, row),
        };
        out.documents.push((table, internal, line));
        Ok(())
    }
}

/// The internal id of row `row` of a table, which has no `_id`: derived
/// from the import, the table and the row, so that a replay after a
/// restart gives the same one.
fn derived_internal_id(import_id: &str, component: &str, table: &str, row: u64) -> [u8; 16] {
    let digest = Sha256::new()
        .chain_update(import_id.as_bytes())
        .chain_update([0])
        .chain_update(component.as_bytes())
        .chain_update([0])
        .chain_update(table.as_bytes())
        .chain_update(row.to_le_bytes())
        .finalize();
    let mut internal = [0u8; 16];
    internal.copy_from_slice(&digest[..16]);
    internal
}

/// A `_storage` row of a file that came, with the file's `sha256` and
/// `size` where the row does not give them: Convex's file storage records
/// both for every file, and the digest is what finds the file in the
/// file store. A row that gives them is kept as it came.
fn with_file_facts(line: String, size: u64, sha256: &[u8; 32]) -> String {
    let Ok(serde_json::Value::Object(mut row)) = serde_json::from_str(&line) else {
        return line;
    };
    let missing = |key: &str| row.get(key).is_none_or(serde_json::Value::is_null);
    let (no_sha256, no_size) = (missing("sha256"), missing("size"));
    if !no_sha256 && !no_size {
        return line;
    }
    if no_sha256 {
        row.insert("sha256".into(), encode_base64(sha256).into());
    }
    if no_size {
        row.insert("size".into(), size.into());
    }
    serde_json::Value::Object(row).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::convex::value::ValueRules;

    /// A frame declaring table `t` (number 10001) and giving it `data`.
    fn frame_with(data: &[u8]) -> Frame {
        let decl = TableDecl {
            component: String::new(),
            name: "t".into(),
            number: Some(10001),
            number_source: NumberSource::Tables,
            rules: ValueRules::Plain,
            expected_documents: 2,
        };
        let items = vec![
            Item::Table(decl),
            Item::Documents {
                table: 0,
                data: data.to_vec(),
            },
        ];
        Frame {
            sequence: 3,
            offset: 0,
            len: 0,
            items,
            prefix_crc32: 0,
        }
    }

    #[test]
    fn a_refused_line_names_its_table_row_field_and_frame() {
        let frame = frame_with(b"{\"a\":1}\n{\"a\":\"\xff\"}\n");
        let r = Ingest::new("i").frame(&frame).unwrap_err();
        assert_eq!(
            (
                r.code,
                r.message.as_str(),
                r.table.as_deref(),
                r.line,
                r.seq
            ),
            ("NotUtf8", "Row 2 is not valid UTF-8", Some("t"), Some(2), 3)
        );
        let frame = frame_with(b"{\"a\":1}\n{\"$a\":1}\n");
        let r = Ingest::new("i").frame(&frame).unwrap_err();
        assert_eq!(
            (r.table.as_deref(), r.line, r.field.as_deref(), r.seq),
            (Some("t"), Some(2), Some(r#"["$a"]"#), 3),
            "{r:?}"
        );
    }
}

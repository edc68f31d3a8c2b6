//! The one output of validation: a plain-data [`Report`], identical from the
//! native build and from WebAssembly, and the stable [`Code`]s of findings.

use serde::{Deserialize, Serialize};

macro_rules! codes {
    ($($(#[$doc:meta])* $name:ident,)*) => {
        /// Stable codes of findings. Convex's names where Convex has one.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        pub enum Code {
            $($(#[$doc])* $name,)*
        }

        impl Code {
            /// Every code.
            pub const ALL: &'static [Code] = &[$(Code::$name),*];

            /// The code's stable name.
            pub fn as_str(self) -> &'static str {
                match self {
                    $(Code::$name => stringify!($name),)*
                }
            }
        }
    };
}

codes! {
    // ---- Convex's codes ----
    /// The archive cannot be read as a ZIP, or an entry does not inflate or is not UTF-8.
    InvalidZip,
    /// A table folder name is not a valid identifier, or the table name given
    /// for a single-table import starts with `_`.
    InvalidTableName,
    /// A `_components/<name>/` name is not a valid identifier.
    InvalidComponentName,
    /// The component path the import targets is not `/`-joined identifiers.
    InvalidComponentPath,
    /// A line is not exactly one JSON value.
    JsonInvalidRow,
    /// A row does not convert to a Convex value.
    InvalidConvexValue,
    /// A legacy generated schema does not parse.
    InvalidGeneratedSchema,
    /// A single-table file is not UTF-8.
    NotUtf8,
    /// A JSON or JSONL file starts with a UTF-8 byte order mark.
    Utf8BomNotSupported,
    /// A JSON array file is over 16 MiB.
    JsonArrayTooLarge,
    /// A JSON array file is not JSON.
    NotJson,
    /// A JSON file is not an array.
    NotJsonArray,
    /// A CSV header cell is not a field name.
    CsvInvalidHeader,
    /// A CSV row has another number of cells than the header.
    CsvRowMissingFields,
    /// A CSV row cannot be read.
    CsvInvalidRow,
    /// A `_tables` row (or a uniform wrapper row) is not an object.
    NotAnObject,
    /// A name in `_tables` is not valid; or a single-table import has no table
    /// name, or a ZIP import was given one.
    InvalidName,
    /// RequireEmpty and the table already has documents.
    TableExists,
    /// A table is listed twice in `_tables`.
    DuplicateTableName,
    /// Two tables on one number, or an `_id` that does not decode.
    InvalidId,
    /// An imported table's number is held by an existing table that stays.
    TableConflict,
    /// Append into a table whose number differs from the requested one; or two
    /// imported tables on one number: a table appended to whose number
    /// another imported table took, or, at a server's finish, two declared on
    /// one number.
    TableNumberConflict,
    /// More than 10000 user tables.
    TooManyTables,
    /// A `_storage/<id>` file name whose id does not decode.
    InvalidStorageId,
    /// Two documents of one table with the same `_id`.
    DuplicateId,
    /// A document whose `_id` already exists in the target table.
    DocumentExists,
    /// An `_id` whose table number differs from its table's number.
    ImportConflict,
    /// An `_id` that is not a string.
    InvalidIdError,
    /// A `_creationTime` that is not a Float64.
    InvalidCreationTimeError,
    /// A document that breaks a document rule (system fields, nesting, creation time).
    InvalidDocumentError,
    /// A document over 1 MiB; or a line (a CSV row) over the 64 MiB snappack
    /// reads, after which its entry or file is not read further.
    ValueTooLargeError,
    /// A stored file whose bytes do not match its `sha256`.
    Sha256Mismatch,
    // ---- snappack's own codes ----
    /// An entry uses a compression method Convex cannot read.
    UnsupportedCompression,
    /// Two or more entries of a ZIP archive have one name; snappack reads one
    /// entry per name, so it refuses rather than leave any out.
    DuplicateEntryName,
    /// The input could not be read.
    ReadFailed,
    /// The caller's options do not fit the input (a format that cannot be told,
    /// a target table list that is not valid).
    InvalidOptions,
    /// A system table other than `_tables` and `_storage` is skipped (warning).
    SkippedSystemTable,
    /// Two entries feed one table; snappack imports both in order, where
    /// Convex skips as many of the later entry's first documents as the
    /// table has from the earlier ones (warning).
    RepeatedTableEntry,
    /// A legacy generated schema: values are checked as far as the shape allows (warning).
    LegacyGeneratedSchema,
    /// A `_storage` metadata row without a file; Convex drops it (warning).
    StorageFileMissing,
    /// Stored files in a component without `_storage/documents.jsonl`; Convex ignores them (warning).
    StorageFilesIgnored,
    /// An entry named like table data (`.jsonl`) that is not a table's
    /// `documents.jsonl` or `generated_schema.jsonl`, or an archive (`.zip`)
    /// that is not a stored file: Convex ignores it (warning).
    EntryIgnored,
    /// More errors than `max_errors`; the rest are counted, not listed (warning).
    TooManyErrors,
    /// The caller stopped validation before the end (warning; the report is incomplete).
    Cancelled,
    /// The table name given for a single-table import is not valid.
    ImportInvalidName,
    /// Documents carry `_id`s but the table's first document does not, so the
    /// server picks the table's number and those ids will likely conflict (warning).
    UnassignedTableNumber,
    /// The schema given for a CSV file has no table of the file's table
    /// name, so no empty cell is removed (warning).
    SchemaTableMissing,
    /// A document's `_creationTime` is negative (`-0` too), NaN or infinite:
    /// Convex cannot read it, and fails the import with an internal error
    /// ("Your request couldn't be completed. Try again later.") that names
    /// no row, after retrying it.
    UnreadableCreationTime,
    /// A CSV file's header is one column whose name holds a `;`: the file
    /// likely separates its cells with `;`, where Convex splits at commas
    /// only, so every row would be one field (warning).
    CsvOneColumn,
    /// A CSV file's header names one column twice: Convex keeps the last
    /// such column's cell in each row, so the others are not imported
    /// (warning).
    CsvDuplicateHeader,
    /// A CSV file's last row opens a quoted cell that is never closed:
    /// Convex reads the rest of the file into that cell, so the lines after
    /// the quote are not rows (warning).
    CsvUnclosedQuote,
}

impl Code {
    /// Whether a finding of this code means some of the input was not read:
    /// a damaged entry, a failed read, an unknown compression, entries
    /// sharing a name (one is read). Packing past it, even forced, would
    /// drop that part without a word; the walk records it whatever the cap
    /// on the errors listed.
    pub fn leaves_input_unread(self) -> bool {
        matches!(
            self,
            Code::InvalidZip
                | Code::ReadFailed
                | Code::UnsupportedCompression
                | Code::DuplicateEntryName
        )
    }
}

impl std::fmt::Display for Code {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Where a table's number came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NumberSource {
    /// A `_tables` row.
    Tables,
    /// The `_id` of the table's first document.
    Id,
    /// The target deployment's existing table of that name.
    Target,
    /// None yet: the server allocates a fresh number.
    Unassigned,
}

/// One table of the input.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TableSummary {
    /// Component path (`""` for the root, `a/b` for nested components).
    pub component: String,
    /// Table name (`_storage` for stored files' metadata).
    pub name: String,
    /// Table number, when one is assigned.
    pub number: Option<u32>,
    /// Where the number came from.
    pub number_source: NumberSource,
    /// Documents read.
    pub documents: u64,
    /// Uncompressed bytes of the table's document entries.
    pub bytes: u64,
    /// Archive entries that feed this table, in import order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub entries: Vec<String>,
    /// The `_tables` row that lists the table, if one does: where findings
    /// about its number point, and, for a table no entry feeds, every
    /// finding about it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub listed_at: Option<ListedAt>,
}

/// A row of a `_tables` entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ListedAt {
    /// The `_tables` entry.
    pub entry: String,
    /// The row's line, from 1.
    pub line: u64,
}

/// Stored files found in the archive.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StorageSummary {
    /// Files with a valid id.
    pub files: u64,
    /// Their uncompressed bytes.
    pub bytes: u64,
}

/// One error or warning, with where it was found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Finding {
    /// Stable code.
    pub code: Code,
    /// What is wrong, in Convex's words where Convex has them.
    pub message: String,
    /// Archive entry (or file name) it was found in.
    pub entry: Option<String>,
    /// Table it concerns.
    pub table: Option<String>,
    /// Component path of that table, when not the root.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub component: String,
    /// 1-based line (row) within the entry.
    pub line: Option<u64>,
    /// The field concerned, as a path from the document (`profile.tags[2]`)
    /// or a CSV column name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    /// The other line involved: the first occurrence of a duplicate id,
    /// the `_storage` row that declares a stored file's `sha256`, or, when
    /// a table appended to keeps a number another imported table took
    /// (`TableNumberConflict`), where that table's number comes from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_line: Option<u64>,
    /// The entry of `first_line`, when it is not `entry` (a table with
    /// several documents entries, a stored file's `_storage` row, or the
    /// other table's entry).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_entry: Option<String>,
    /// The start of the offending line.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub excerpt: Option<String>,
}

impl Finding {
    /// A finding with a code and message, and no location yet.
    pub fn new(code: Code, message: impl Into<String>) -> Self {
        Finding {
            code,
            message: message.into(),
            entry: None,
            table: None,
            component: String::new(),
            line: None,
            field: None,
            first_line: None,
            first_entry: None,
            excerpt: None,
        }
    }

    /// Sets the field, if there is one.
    pub fn field(mut self, field: Option<String>) -> Self {
        self.field = field;
        self
    }

    /// Sets the entry.
    pub fn entry(mut self, entry: impl Into<String>) -> Self {
        self.entry = Some(entry.into());
        self
    }

    /// Sets the table and its component.
    pub fn table(mut self, component: &str, table: impl Into<String>) -> Self {
        self.component = component.to_owned();
        self.table = Some(table.into());
        self
    }

    /// Sets the line.
    pub fn line(mut self, line: u64) -> Self {
        self.line = Some(line);
        self
    }

    /// Sets the excerpt from the offending line.
    pub fn excerpt(mut self, line: &str) -> Self {
        self.excerpt = Some(excerpt(line, EXCERPT_LEN));
        self
    }

    /// Sets the excerpt to the part of `line` around byte `at` (its start
    /// when `None`).
    pub fn excerpt_at(mut self, line: &str, at: Option<usize>) -> Self {
        self.excerpt = Some(match at {
            Some(at) => excerpt_around(line, at, EXCERPT_LEN),
            None => excerpt(line, EXCERPT_LEN),
        });
        self
    }
}

/// Length of line excerpts in findings, in bytes.
pub const EXCERPT_LEN: usize = 120;

/// The first `max` bytes of `text` (cut at a character boundary), with `...` when cut.
pub fn excerpt(text: &str, max: usize) -> String {
    let text = text.trim_end_matches(['\r', '\n']);
    if text.len() <= max {
        return text.to_owned();
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}...", &text[..end])
}

/// `n` with thousands separators: `20,000`.
pub fn grouped(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// About `max` bytes of `text` around byte `at`, with `...` on each side
/// that was cut: a long line's excerpt that shows where its error is.
pub fn excerpt_around(text: &str, at: usize, max: usize) -> String {
    let text = text.trim_end_matches(['\r', '\n']);
    if text.len() <= max {
        return text.to_owned();
    }
    let mut start = at
        .min(text.len())
        .saturating_sub(max / 2)
        .min(text.len() - max);
    while !text.is_char_boundary(start) {
        start -= 1;
    }
    let mut end = (start + max).min(text.len());
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    let before = if start > 0 { "..." } else { "" };
    let after = if end < text.len() { "..." } else { "" };
    format!("{before}{}{after}", &text[start..end])
}

/// The result of validating one input.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Report {
    /// True when there are no errors: Convex would import this input.
    pub valid: bool,
    /// The input's format.
    pub format: String,
    /// Tables in import order.
    pub tables: Vec<TableSummary>,
    /// Stored files.
    pub storage: StorageSummary,
    /// Errors, in the order found (capped at `max_errors`).
    pub errors: Vec<Finding>,
    /// Warnings: things Convex accepts but a user should know.
    pub warnings: Vec<Finding>,
    /// Errors found in all, including those past the cap.
    pub error_count: u64,
    /// Warnings found in all, including those past the cap (which
    /// `warnings` lists `max_errors` of).
    #[serde(default)]
    pub warning_count: u64,
    /// Documents read in all tables.
    pub documents: u64,
    /// Uncompressed bytes read.
    pub bytes: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_serialize_by_name() {
        for code in Code::ALL {
            assert_eq!(
                serde_json::to_value(code).unwrap(),
                serde_json::json!(code.as_str())
            );
        }
        assert_eq!(
            serde_json::to_string(&NumberSource::Unassigned).unwrap(),
            "\"unassigned\""
        );
    }

    #[test]
    fn excerpts_cut_at_char_boundaries() {
        assert_eq!(excerpt("abc\n", 10), "abc");
        assert_eq!(excerpt("ééé", 3), "é...");
    }

    #[test]
    fn excerpts_around_a_place_show_it() {
        let line = format!("{}XY{}", "a".repeat(200), "b".repeat(200));
        let shown = excerpt_around(&line, 200, 20);
        assert_eq!(
            shown,
            format!("...{}XY{}...", "a".repeat(10), "b".repeat(8))
        );
        assert_eq!(
            excerpt_around(&line, 0, 20),
            format!("{}...", "a".repeat(20))
        );
        assert_eq!(
            excerpt_around(&line, 9999, 20),
            format!("...{}", "b".repeat(20))
        );
        assert_eq!(excerpt_around("short", 3, 20), "short");
        assert_eq!(
            excerpt_around(&"é".repeat(50), 51, 10),
            format!("...{}...", "é".repeat(5))
        );
    }

    #[test]
    fn counts_are_grouped_by_thousands() {
        assert_eq!(grouped(0), "0");
        assert_eq!(grouped(999), "999");
        assert_eq!(grouped(20_000), "20,000");
        assert_eq!(grouped(1_234_567), "1,234,567");
    }
}

//! Checking one JSON document line as Convex converts and inserts it, in a
//! single borrowing pass: no value tree is built.
//!
//! The walk computes Convex's size metric and nesting, checks every field
//! name, decodes the `$integer` / `$float` / `$bytes` wrappers of uniform
//! exports, and pulls out `_id` and `_creationTime`. Table-level checks (the
//! id's table number, duplicates) are the caller's: see
//! [`crate::validate::table`].
//!
//! Convex reads a line into a JSON value before converting it, so a key an
//! object repeats keeps its last value (in the place of its first). The walk
//! over the line's text counts every repeat, which can only make a document
//! look larger or wrong, never valid when it is not: a line it refuses is
//! walked again over the JSON value Convex converts, and that walk decides.
//! It also follows the path to the error, so that value errors name their
//! field: `profile.tags[2]`.

use std::borrow::Cow;
use std::fmt;

use base64::Engine as _;
use serde::de::{self, DeserializeSeed, IgnoredAny, MapAccess, SeqAccess, Visitor};

use super::id::{DocumentId, IdDecodeError};
use super::names::check_field_name;
use crate::report::Code;

/// Largest document, by Convex's size metric, with `_id` and `_creationTime`.
pub const MAX_DOCUMENT_SIZE: u64 = 1 << 20;
/// Largest single value.
pub const MAX_VALUE_SIZE: u64 = 32 << 20;
/// Deepest document nesting.
pub const MAX_DOCUMENT_NESTING: u32 = 16;
/// Deepest value nesting.
pub const MAX_VALUE_NESTING: u32 = 64;
/// Most fields in one object.
pub const MAX_OBJECT_FIELDS: usize = 1024;
/// Most elements in one array.
pub const MAX_ARRAY_LEN: usize = 8192;
/// `_creationTime` must be below this (2^53).
pub const MAX_CREATION_TIME: f64 = 9_007_199_254_740_992.0;

/// How JSON becomes Convex values, chosen by the table's generated schema.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ValueRules {
    /// `"uniform"`: integers are Int64; `$integer`, `$float`, `$bytes` wrappers.
    Uniform,
    /// No generated schema (and legacy shapes): every number is a Float64 and
    /// any `$` key is an error.
    #[default]
    Plain,
}

/// What a document's `_id` field holds.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum IdField {
    /// No `_id`: the server will generate one.
    #[default]
    Absent,
    /// A string that decodes.
    Valid(DocumentId),
    /// A string that does not decode.
    Invalid(String, IdDecodeError),
    /// Not a string.
    NotString(String),
}

/// What a document's `_creationTime` holds.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
enum CreationTime {
    #[default]
    Absent,
    Float(f64),
    /// Anything else; `integer` when it is an Int64.
    NotFloat {
        integer: bool,
    },
}

/// A document that passed every per-document check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckedDocument {
    /// The document's `_id`.
    pub id: IdField,
    /// Convex's size of the document as it will be stored.
    pub size: u64,
}

/// Why a row is rejected: a stable code, Convex's message and the field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RowError {
    /// The stable code.
    pub code: Code,
    /// The message, as Convex words it.
    pub message: String,
    /// The field it is about, as a path from the document (`a.b[2]`);
    /// `None` when it is about the whole document.
    pub field: Option<String>,
    /// Where in the line a JSON syntax error was found (a byte offset), so
    /// that an excerpt of a long line can show that part.
    pub at_byte: Option<usize>,
    /// The document's `_id`, when Convex checks it before this error (its
    /// insert checks the `_id` before the `_creationTime` and the rules of
    /// a valid document): the caller checks the `_id` first.
    pub id_first: Option<IdField>,
}

impl RowError {
    /// An error about the whole row.
    pub fn new(code: Code, message: impl Into<String>) -> Self {
        RowError {
            code,
            message: message.into(),
            field: None,
            at_byte: None,
            id_first: None,
        }
    }

    /// The same error, about `field`.
    pub fn at(mut self, field: Option<String>) -> Self {
        self.field = field;
        self
    }

    fn convex_value(row: u64, inner: impl fmt::Display) -> Self {
        Self::new(
            Code::InvalidConvexValue,
            format!("Row {row} wasn't a valid Convex value: {inner}"),
        )
    }
}

/// Checks one document line (1-based `row` within its table's stream).
///
/// `table_number`, when known, is used for the size of a generated `_id`.
pub fn check_document(
    line: &str,
    rules: ValueRules,
    row: u64,
    table_number: Option<u32>,
) -> Result<CheckedDocument, RowError> {
    let mut de = serde_json::Deserializer::from_str(line);
    let walked = walk(&mut de, rules, false).and_then(|walked| de.end().map(|()| walked));
    let (scan, stats) = walked.map_err(|e| json_error(row, e))?;
    judge(scan, stats, line, row, table_number)
        .or_else(|_| check_as_converted(line, rules, row, table_number))
}

/// [`check_document`] for a line the walk over its text refused: walks the
/// JSON value Convex converts instead, following the path to the error.
fn check_as_converted(
    line: &str,
    rules: ValueRules,
    row: u64,
    table_number: Option<u32>,
) -> Result<CheckedDocument, RowError> {
    let value: serde_json::Value = serde_json::from_str(line).map_err(|e| json_error(row, e))?;
    let (scan, stats) = walk(value, rules, true).map_err(|e| json_error(row, e))?;
    judge(scan, stats, line, row, table_number)
}

/// Convex's `JsonInvalidRow` message for line `row`, `text`, when the
/// line ends with a `\n` and its JSON ends too soon without it (an error at
/// the end of the input: an empty line, a value cut short); `None` for any
/// other line. Convex reads a line with its `\n` (`read_line`) and parses
/// both, so it words such an error past the `\n` (at line 2, or as a
/// control character in a string), where the messages made of `text`
/// alone word it at the end of line 1.
pub fn json_error_with_newline(text: &[u8], row: u64) -> Option<String> {
    if !serde_json::from_slice::<IgnoredAny>(text).err()?.is_eof() {
        return None;
    }
    let with_newline = [text, b"\n"].concat();
    let e = serde_json::from_slice::<IgnoredAny>(&with_newline).err()?;
    Some(format!("Row {row} wasn't valid JSON: {e}"))
}

/// Convex's error for a line (`row`) that is not JSON.
fn json_error(row: u64, e: serde_json::Error) -> RowError {
    // A document is one line: serde_json's column on it is the byte offset
    // just past where the error was found (0 for an error about no place).
    let at_byte = (e.line() == 1 && e.column() > 0).then(|| e.column() - 1);
    RowError {
        at_byte,
        ..RowError::new(
            Code::JsonInvalidRow,
            format!("Row {row} wasn't valid JSON: {e}"),
        )
    }
}

/// The verdict on a walked document (line `row`), in the order Convex
/// meets the problems: converting the value, then inserting it (its size,
/// its `_id`, its `_creationTime`, then every rule of a valid document at
/// once). An error Convex raises only after checking the `_id` carries the
/// `_id` in [`RowError::id_first`].
fn judge(
    scan: Scan<'_>,
    stats: Stats,
    line: &str,
    row: u64,
    table_number: Option<u32>,
) -> Result<CheckedDocument, RowError> {
    if let Some(problem) = scan.problem {
        return Err(match problem {
            Problem::Value(inner) => RowError::convex_value(row, inner).at(scan.problem_field),
            Problem::NotObject => RowError::convex_value(
                row,
                format!("expected object, received {}", compact_excerpt(line)),
            ),
            Problem::WrapperRow => {
                RowError::new(Code::NotAnObject, format!("Row {row} wasn't an object"))
            }
        });
    }
    let mut size = stats.size;
    if scan.id == IdField::Absent {
        let id_len = DocumentId::text_len(table_number.unwrap_or(10001)) as u64;
        size += 3 + 1 + 2 + id_len;
    }
    if matches!(scan.creation_time, CreationTime::Absent) {
        size += 13 + 1 + 9;
    }
    if size > MAX_DOCUMENT_SIZE {
        return Err(RowError::new(
            Code::ValueTooLargeError,
            format!(
                "Row {row}: Value is too large ({} > maximum size 1 MiB)",
                binary_size(size)
            ),
        ));
    }
    match insert_error(&scan, stats, row) {
        Some(error) => Err(RowError {
            id_first: Some(scan.id),
            ..error
        }),
        None => Ok(CheckedDocument { id: scan.id, size }),
    }
}

/// Why Convex's insert refuses a converted document of the right size,
/// after its `_id` passed: a `_creationTime` it cannot read, an `_id` that
/// is not a string, a `_creationTime` that is not a Float64, then every
/// broken rule of a valid document in one message (nesting, the creation
/// time's range, then each system field in field order).
fn insert_error(scan: &Scan<'_>, stats: Stats, row: u64) -> Option<RowError> {
    let invalid_time =
        |t: f64| format!("The '_creationTime' field should be a timestamp in milliseconds, is {t}");
    if let CreationTime::Float(t) = scan.creation_time {
        // Convex cannot read a negative (-0 included), NaN or infinite
        // time: its import fails with an internal error, which says neither
        // the row nor the field, so this finding has no message of Convex's
        // to repeat and says what Convex does instead.
        if t.is_sign_negative() || !t.is_finite() {
            return Some(
                RowError::new(
                    Code::UnreadableCreationTime,
                    format!(
                        "Row {row}: '_creationTime' is {t}, which Convex cannot read as a creation \
                         time (a timestamp in milliseconds, above 0 and below 2^53): Convex fails \
                         the import with an internal error (\"Your request couldn't be completed. \
                         Try again later.\"), naming no row"
                    ),
                )
                .at(Some("_creationTime".into())),
            );
        }
    }
    if let IdField::NotString(value) = &scan.id {
        return Some(
            RowError::new(
                Code::InvalidIdError,
                format!(
                    "Row {row}: '_id' field {value} is not a string, so the document can't keep it"
                ),
            )
            .at(Some("_id".into())),
        );
    }
    if let CreationTime::NotFloat { integer } = scan.creation_time {
        // Only in a uniform export can a number be an Int64.
        let integer = match integer {
            true => " (an integer is an Int64 in a uniform export)",
            false => "",
        };
        return Some(
            RowError::new(
                Code::InvalidCreationTimeError,
                format!("Row {row}: '_creationTime' must be a floating-point number of milliseconds{integer}"),
            )
            .at(Some("_creationTime".into())),
        );
    }
    let mut violations: Vec<(String, Option<String>)> = Vec::new();
    if stats.nesting > MAX_DOCUMENT_NESTING {
        violations.push((
            format!(
                "Document is too nested (nested {} levels deep > maximum nesting {MAX_DOCUMENT_NESTING})",
                stats.nesting
            ),
            None,
        ));
    }
    if let CreationTime::Float(t) = scan.creation_time {
        if !(t > 0.0 && t < MAX_CREATION_TIME) {
            violations.push((invalid_time(t), Some("_creationTime".into())));
        }
    }
    let mut system_fields: Vec<&String> = scan.underscore_fields.iter().collect();
    system_fields.sort();
    system_fields.dedup();
    for field in system_fields {
        violations.push((
            format!("Field '{field}' starts with an underscore, which is only allowed for system fields like '_id'"),
            Some(field_path(&[Segment::Field(field.into())])),
        ));
    }
    let field = violations.first()?.1.clone();
    let messages: Vec<String> = violations.into_iter().map(|(message, _)| message).collect();
    Some(
        RowError::new(
            Code::InvalidDocumentError,
            format!("Row {row} isn't a valid document: {}", messages.join("\n ")),
        )
        .at(field),
    )
}

/// The compact JSON of a row Convex names in an error, its first 100 bytes.
fn compact_excerpt(line: &str) -> String {
    let compact = serde_json::from_str::<serde_json::Value>(line)
        .and_then(|value| serde_json::to_string(&value))
        .unwrap_or_else(|_| line.trim().to_owned());
    crate::report::excerpt(&compact, 100)
}

/// Formats a byte count with binary units, two decimals ("1.00 MiB").
pub fn binary_size(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} B")
    } else {
        format!("{value:.2} {}", UNITS[unit])
    }
}

/// The first semantic problem met during the walk. The walk goes on after
/// it, so that a later JSON syntax error still wins, as it does in Convex
/// (which parses the whole line before converting it).
enum Problem {
    Value(String),
    NotObject,
    WrapperRow,
}

/// What a walk found besides sizes.
#[derive(Default)]
struct Scan<'de> {
    rules: ValueRules,
    problem: Option<Problem>,
    /// Where the first problem is (`None`: the document itself).
    problem_field: Option<String>,
    id: IdField,
    creation_time: CreationTime,
    /// Every top-level field starting with `_` but `_id` and `_creationTime`.
    underscore_fields: Vec<String>,
    /// Where the walk is: the fields and indexes from the document down,
    /// when `track_path` (a walk that names the field of an error).
    path: Vec<Segment<'de>>,
    track_path: bool,
}

impl<'de> Scan<'de> {
    /// Steps into a field or element (`segment`), when the path is followed.
    fn enter(&mut self, segment: impl FnOnce() -> Segment<'de>) {
        if self.track_path {
            self.path.push(segment());
        }
    }

    /// Steps back out of it.
    fn leave(&mut self) {
        self.path.pop();
    }

    fn fail(&mut self, problem: Problem) {
        if self.problem.is_none() {
            self.problem = Some(problem);
            self.problem_field = (!self.path.is_empty()).then(|| field_path(&self.path));
        }
    }

    fn invalid(&mut self, message: impl FnOnce() -> String) {
        if self.problem.is_none() {
            self.fail(Problem::Value(message()));
        }
    }
}

/// Walks one line (or the JSON value read from it) as a document.
fn walk<'de, D: de::Deserializer<'de>>(
    deserializer: D,
    rules: ValueRules,
    track_path: bool,
) -> Result<(Scan<'de>, Stats), D::Error> {
    let mut scan = Scan {
        rules,
        track_path,
        ..Scan::default()
    };
    let stats = Walk {
        scan: &mut scan,
        role: Role::Document,
        depth: 0,
    }
    .deserialize(deserializer)?;
    Ok((scan, stats))
}

/// One step from a value to a value inside it.
enum Segment<'de> {
    Field(Cow<'de, str>),
    Index(usize),
}

/// A path as people read it: `profile.tags[2]`, with `["odd name"]` for a
/// field that is not a plain identifier.
fn field_path(path: &[Segment<'_>]) -> String {
    let mut out = String::new();
    for segment in path {
        match segment {
            Segment::Field(name) => {
                let plain = name
                    .chars()
                    .next()
                    .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
                    && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
                if plain {
                    if !out.is_empty() {
                        out.push('.');
                    }
                    out.push_str(name);
                } else {
                    out.push('[');
                    out.push_str(&serde_json::to_string(name.as_ref()).unwrap_or_default());
                    out.push(']');
                }
            }
            Segment::Index(index) => out.push_str(&format!("[{index}]")),
        }
    }
    out
}

/// Size and nesting of one value, by Convex's metric.
#[derive(Clone, Copy, Default)]
struct Stats {
    size: u64,
    nesting: u32,
}

const SCALAR_SIZE: u64 = 9;

#[derive(Clone, Copy, PartialEq, Eq)]
enum Role {
    /// The whole row: must be an object.
    Document,
    /// The top-level `_id` value.
    Id,
    /// The top-level `_creationTime` value.
    CreationTime,
    /// Any other value.
    Value,
}

/// Walks one value; the seed and the visitor in one.
struct Walk<'s, 'de> {
    scan: &'s mut Scan<'de>,
    role: Role,
    depth: u32,
}

impl<'de> DeserializeSeed<'de> for Walk<'_, 'de> {
    type Value = Stats;

    fn deserialize<D: de::Deserializer<'de>>(self, deserializer: D) -> Result<Stats, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Walk<'_, 'de> {
    fn scalar(self, description: impl FnOnce() -> String, size: u64) -> Stats {
        match self.role {
            Role::Document => self.scan.fail(Problem::NotObject),
            Role::Id => self.scan.id = IdField::NotString(description()),
            Role::CreationTime => {
                self.scan.creation_time = CreationTime::NotFloat { integer: false }
            }
            Role::Value => {}
        }
        Stats { size, nesting: 0 }
    }

    fn number(self, float: Option<f64>, description: impl FnOnce() -> String) -> Stats {
        if self.role == Role::CreationTime {
            self.scan.creation_time = match float {
                Some(t) => CreationTime::Float(t),
                None => CreationTime::NotFloat { integer: true },
            };
            return Stats {
                size: SCALAR_SIZE,
                nesting: 0,
            };
        }
        self.scalar(description, SCALAR_SIZE)
    }

    fn child(&mut self, role: Role) -> Walk<'_, 'de> {
        Walk {
            scan: self.scan,
            role,
            depth: self.depth + 1,
        }
    }

    fn check_nesting(&mut self, stats: Stats) -> Stats {
        if stats.nesting > MAX_VALUE_NESTING {
            let nesting = stats.nesting;
            self.scan.invalid(|| {
                format!("Value is too nested (nested {nesting} levels deep > maximum nesting {MAX_VALUE_NESTING})")
            });
        }
        if stats.size > MAX_VALUE_SIZE {
            let size = stats.size;
            self.scan.invalid(|| {
                format!(
                    "Value is too large ({} > maximum size 32 MiB)",
                    binary_size(size)
                )
            });
        }
        stats
    }
}

impl<'de> Visitor<'de> for Walk<'_, 'de> {
    type Value = Stats;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_unit<E>(self) -> Result<Stats, E> {
        Ok(self.scalar(|| "null".into(), 1))
    }

    fn visit_bool<E>(self, v: bool) -> Result<Stats, E> {
        Ok(self.scalar(|| v.to_string(), 1))
    }

    fn visit_i64<E>(self, v: i64) -> Result<Stats, E> {
        let float = (self.scan.rules == ValueRules::Plain).then_some(v as f64);
        Ok(self.number(float, || v.to_string()))
    }

    fn visit_u64<E>(self, v: u64) -> Result<Stats, E> {
        // Integers above i64::MAX are Float64 under every rule.
        let float =
            (self.scan.rules == ValueRules::Plain || v > i64::MAX as u64).then_some(v as f64);
        Ok(self.number(float, || v.to_string()))
    }

    fn visit_f64<E>(self, v: f64) -> Result<Stats, E> {
        Ok(self.number(Some(v), || v.to_string()))
    }

    fn visit_str<E>(self, v: &str) -> Result<Stats, E> {
        if self.role == Role::Id {
            self.scan.id = match DocumentId::decode(v) {
                Ok(id) => IdField::Valid(id),
                Err(e) => IdField::Invalid(v.to_owned(), e),
            };
            return Ok(Stats {
                size: 2 + v.len() as u64,
                nesting: 0,
            });
        }
        Ok(self.scalar(|| excerpt_json_string(v), 2 + v.len() as u64))
    }

    fn visit_seq<A: SeqAccess<'de>>(mut self, mut seq: A) -> Result<Stats, A::Error> {
        let mut stats = Stats {
            size: 2,
            nesting: 0,
        };
        let mut len = 0usize;
        loop {
            self.scan.enter(|| Segment::Index(len));
            let next = seq.next_element_seed(self.child(Role::Value))?;
            self.scan.leave();
            let Some(child) = next else { break };
            len += 1;
            stats.size += child.size;
            stats.nesting = stats.nesting.max(child.nesting);
        }
        stats.nesting += 1;
        if len > MAX_ARRAY_LEN {
            self.scan.invalid(|| {
                format!("Array length is too long ({len} > maximum length {MAX_ARRAY_LEN})")
            });
        }
        match self.role {
            Role::Document => self.scan.fail(Problem::NotObject),
            Role::Id => self.scan.id = IdField::NotString("an array".into()),
            Role::CreationTime => {
                self.scan.creation_time = CreationTime::NotFloat { integer: false }
            }
            Role::Value => {}
        }
        Ok(self.check_nesting(stats))
    }

    fn visit_map<A: MapAccess<'de>>(mut self, mut map: A) -> Result<Stats, A::Error> {
        let top = self.role == Role::Document;
        let named = self.scan.track_path;
        let seed = || KeySeed { top, named };
        let Some(first) = map.next_key_seed(seed())? else {
            return Ok(self.object_done(
                Stats {
                    size: 2,
                    nesting: 1,
                },
                0,
            ));
        };
        let first = match first {
            Key::Dollar(kind) if self.scan.rules == ValueRules::Uniform => {
                return self.wrapper(kind, map);
            }
            other => other,
        };
        let mut stats = Stats {
            size: 2,
            nesting: 0,
        };
        let mut fields = 0usize;
        let mut key = Some(first);
        while let Some(k) = key {
            fields += 1;
            self.scan.enter(|| Segment::Field(k.name()));
            let role = match &k {
                Key::Id if top => Role::Id,
                Key::CreationTime if top => Role::CreationTime,
                _ => Role::Value,
            };
            match &k {
                Key::Invalid(invalid) => {
                    let message = invalid.1.clone();
                    self.scan.invalid(|| message);
                }
                Key::Dollar(kind) => {
                    let name = kind.name().to_owned();
                    self.scan.invalid(|| {
                        format!("Field name {name} starts with '$', which is reserved.")
                    });
                }
                Key::Underscore(name) => self.scan.underscore_fields.push(name.clone()),
                _ => {}
            }
            let child = map.next_value_seed(self.child(role))?;
            self.scan.leave();
            stats.size += k.len() as u64 + 1 + child.size;
            stats.nesting = stats.nesting.max(child.nesting);
            key = map.next_key_seed(seed())?;
        }
        stats.nesting += 1;
        Ok(self.object_done(stats, fields))
    }
}

impl<'de> Walk<'_, 'de> {
    fn object_done(mut self, stats: Stats, mut fields: usize) -> Stats {
        if self.role == Role::Document {
            // Convex adds the system fields a row lacks before it counts.
            fields += usize::from(self.scan.id == IdField::Absent)
                + usize::from(matches!(self.scan.creation_time, CreationTime::Absent));
        }
        if fields > MAX_OBJECT_FIELDS {
            self.scan.invalid(|| {
                format!(
                    "Object has too many fields ({fields} > maximum number {MAX_OBJECT_FIELDS})"
                )
            });
        }
        match self.role {
            Role::Id => self.scan.id = IdField::NotString("an object".into()),
            Role::CreationTime => {
                self.scan.creation_time = CreationTime::NotFloat { integer: false }
            }
            Role::Document | Role::Value => {}
        }
        self.check_nesting(stats)
    }

    /// An object whose first key starts with `$` in a uniform export: exactly
    /// one of `$integer`, `$float`, `$bytes` with a base64 string.
    fn wrapper<A: MapAccess<'de>>(self, kind: Dollar, mut map: A) -> Result<Stats, A::Error> {
        let payload = map.next_value::<WrapperPayload>()?;
        let mut extra = false;
        while map.next_key::<IgnoredAny>()?.is_some() {
            extra = true;
            map.next_value::<IgnoredAny>()?;
        }
        let scan = self.scan;
        let result = decode_wrapper(&kind, payload, extra);
        let (size, float) = match result {
            Ok(decoded) => decoded,
            Err(message) => {
                scan.invalid(|| message);
                (SCALAR_SIZE, None)
            }
        };
        match self.role {
            Role::Document => scan.fail(Problem::WrapperRow),
            Role::Id => {
                let what = match kind.name() {
                    "$integer" => "an Int64",
                    "$float" => "a Float64",
                    "$bytes" => "a Bytes value",
                    _ => "an object",
                };
                scan.id = IdField::NotString(format!("{what} ({{\"{}\": ...}})", kind.name()));
            }
            Role::CreationTime => {
                scan.creation_time = match float {
                    Some(t) => CreationTime::Float(t),
                    None => CreationTime::NotFloat {
                        integer: kind.name() == "$integer",
                    },
                }
            }
            Role::Value => {}
        }
        Ok(Stats { size, nesting: 0 })
    }
}

/// The value of a wrapper: a string, or something that is not one.
enum WrapperPayload {
    Text(String),
    Other(String),
}

impl<'de> de::Deserialize<'de> for WrapperPayload {
    fn deserialize<D: de::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = WrapperPayload;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_str<E>(self, v: &str) -> Result<WrapperPayload, E> {
                Ok(WrapperPayload::Text(v.to_owned()))
            }
            fn visit_unit<E>(self) -> Result<WrapperPayload, E> {
                Ok(WrapperPayload::Other("null".into()))
            }
            fn visit_bool<E>(self, v: bool) -> Result<WrapperPayload, E> {
                Ok(WrapperPayload::Other(format!("boolean `{v}`")))
            }
            fn visit_i64<E>(self, v: i64) -> Result<WrapperPayload, E> {
                Ok(WrapperPayload::Other(format!("integer `{v}`")))
            }
            fn visit_u64<E>(self, v: u64) -> Result<WrapperPayload, E> {
                Ok(WrapperPayload::Other(format!("integer `{v}`")))
            }
            fn visit_f64<E>(self, v: f64) -> Result<WrapperPayload, E> {
                Ok(WrapperPayload::Other(format!("floating point `{v}`")))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<WrapperPayload, A::Error> {
                while seq.next_element::<IgnoredAny>()?.is_some() {}
                Ok(WrapperPayload::Other("sequence".into()))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<WrapperPayload, A::Error> {
                while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
                Ok(WrapperPayload::Other("map".into()))
            }
        }
        d.deserialize_any(V)
    }
}

/// Decodes a wrapper; returns its size and, for `$float`, the float.
fn decode_wrapper(
    kind: &Dollar,
    payload: WrapperPayload,
    extra: bool,
) -> Result<(u64, Option<f64>), String> {
    if extra {
        return Err(format!(
            "Object with special key {} must have exactly one field",
            kind.name()
        ));
    }
    let text = match payload {
        WrapperPayload::Text(text) => text,
        WrapperPayload::Other(what) => {
            return Err(format!("invalid type: {what}, expected a string"))
        }
    };
    let eight = |text: &str, what: &str| -> Result<[u8; 8], String> {
        let bytes = decode_base64(text)?;
        bytes
            .try_into()
            .map_err(|_| format!("{what} must be exactly eight bytes"))
    };
    match kind {
        Dollar::Integer => eight(&text, "Int64").map(|_| (SCALAR_SIZE, None)),
        Dollar::Float => {
            let value = f64::from_le_bytes(eight(&text, "Float64")?);
            if value.is_normal() || value.is_subnormal() {
                return Err(format!("Float64 {value} should be encoded as a number"));
            }
            Ok((SCALAR_SIZE, Some(value)))
        }
        Dollar::Bytes => decode_base64(&text).map(|b| (2 + b.len() as u64, None)),
        Dollar::Other(name) => Err(format!(
            "Unrecognized special field {name}: only $integer, $float and $bytes are allowed"
        )),
    }
}

/// Standard-alphabet base64 with optional padding; trailing bits must be zero.
const BASE64: base64::engine::GeneralPurpose = base64::engine::GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    base64::engine::GeneralPurposeConfig::new()
        .with_decode_padding_mode(base64::engine::DecodePaddingMode::Indifferent),
);

/// Standard base64 with padding, as Convex writes `sha256` and `$bytes`.
pub fn encode_base64(bytes: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// Decodes base64 as Convex reads it: standard alphabet, optional padding,
/// trailing bits zero.
pub fn decode_base64(text: &str) -> Result<Vec<u8>, String> {
    BASE64
        .decode(text)
        .map_err(|e| format!("invalid base64: {e}"))
}

/// [`decode_base64`] into `out`, without allocating: the decoded length, or
/// `None` when the text is not base64 or decodes to more than `out` holds.
pub fn decode_base64_into(text: &[u8], out: &mut [u8]) -> Option<usize> {
    BASE64.decode_slice(text, out).ok()
}

/// A `$` key at the start of an object.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Dollar {
    Integer,
    Float,
    Bytes,
    Other(String),
}

impl Dollar {
    fn name(&self) -> &str {
        match self {
            Dollar::Integer => "$integer",
            Dollar::Float => "$float",
            Dollar::Bytes => "$bytes",
            Dollar::Other(name) => name,
        }
    }
}

/// An object key, classified as it is read.
enum Key<'de> {
    Id,
    CreationTime,
    /// A top-level `_x` key other than the system fields.
    Underscore(String),
    Dollar(Dollar),
    /// A name Convex refuses: the name and why.
    Invalid(Box<(String, String)>),
    /// Any other name, by its length.
    Plain(usize),
    /// Any other name, when the walk follows the path.
    Named(Cow<'de, str>),
}

impl<'de> Key<'de> {
    fn len(&self) -> usize {
        match self {
            Key::Id => 3,
            Key::CreationTime => 13,
            Key::Underscore(name) => name.len(),
            Key::Dollar(kind) => kind.name().len(),
            Key::Invalid(_) => 0,
            Key::Plain(len) => *len,
            Key::Named(name) => name.len(),
        }
    }

    /// The name (empty for a key read by its length only).
    fn name(&self) -> Cow<'de, str> {
        match self {
            Key::Id => Cow::Borrowed("_id"),
            Key::CreationTime => Cow::Borrowed("_creationTime"),
            Key::Underscore(name) => Cow::Owned(name.clone()),
            Key::Invalid(invalid) => Cow::Owned(invalid.0.clone()),
            Key::Dollar(kind) => Cow::Owned(kind.name().to_owned()),
            Key::Plain(_) => Cow::Borrowed(""),
            Key::Named(name) => name.clone(),
        }
    }
}

/// Reads a key; `named`: keep plain keys' names too.
struct KeySeed {
    top: bool,
    named: bool,
}

impl<'de> DeserializeSeed<'de> for KeySeed {
    type Value = Key<'de>;

    fn deserialize<D: de::Deserializer<'de>>(self, deserializer: D) -> Result<Key<'de>, D::Error> {
        deserializer.deserialize_str(self)
    }
}

impl KeySeed {
    #[inline]
    fn classify<'de>(&self, v: &str, name: impl FnOnce() -> Cow<'de, str>) -> Key<'de> {
        match v {
            "_id" if self.top => Key::Id,
            "_creationTime" if self.top => Key::CreationTime,
            "$integer" => Key::Dollar(Dollar::Integer),
            "$float" => Key::Dollar(Dollar::Float),
            "$bytes" => Key::Dollar(Dollar::Bytes),
            _ if v.starts_with('$') => Key::Dollar(Dollar::Other(v.to_owned())),
            _ => match check_field_name(v) {
                Err(message) => Key::Invalid(Box::new((v.to_owned(), message))),
                Ok(()) if self.top && v.starts_with('_') => Key::Underscore(v.to_owned()),
                Ok(()) if self.named => Key::Named(name()),
                Ok(()) => Key::Plain(v.len()),
            },
        }
    }
}

impl<'de> Visitor<'de> for KeySeed {
    type Value = Key<'de>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a field name")
    }

    fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Key<'de>, E> {
        Ok(self.classify(v, || Cow::Borrowed(v)))
    }

    fn visit_str<E>(self, v: &str) -> Result<Key<'de>, E> {
        Ok(self.classify(v, || Cow::Owned(v.to_owned())))
    }
}

/// A short JSON rendering of a string for messages (at most 100 bytes).
fn excerpt_json_string(v: &str) -> String {
    let json = serde_json::to_string(v).unwrap_or_default();
    crate::report::excerpt(&json, 100)
}

#[cfg(test)]
mod tests {
    use super::*;

    const ID: &str = "j57fzzzzzzzzzzzzzzzzzzzzzzzzzkyr";

    fn check(line: &str, rules: ValueRules) -> Result<CheckedDocument, RowError> {
        check_document(line, rules, 1, Some(10001))
    }

    fn code(line: &str, rules: ValueRules) -> Code {
        check(line, rules).expect_err(line).code
    }

    fn field_of(line: &str, rules: ValueRules) -> Option<String> {
        check(line, rules).expect_err(line).field
    }

    #[test]
    fn errors_name_their_field() {
        let plain = ValueRules::Plain;
        assert_eq!(
            field_of(r#"{"a":{"b":[1,{"$x":2}]}}"#, plain).as_deref(),
            Some(r#"a.b[1]["$x"]"#)
        );
        assert_eq!(
            field_of(r#"{"odd key":{"c d":{"$y":1}}}"#, plain).as_deref(),
            Some(r#"["odd key"]["c d"]["$y"]"#)
        );
        let uniform = ValueRules::Uniform;
        assert_eq!(
            field_of(r#"{"n":[{"$integer":"%%"}]}"#, uniform).as_deref(),
            Some("n[0]")
        );
        let wide = format!(
            "{{\"o\":{{{}}}}}",
            (0..1025)
                .map(|i| format!("\"k{i}\":1"))
                .collect::<Vec<_>>()
                .join(",")
        );
        assert_eq!(field_of(&wide, plain).as_deref(), Some("o"));
        assert_eq!(
            field_of(r#"{"_creationTime":"x"}"#, plain).as_deref(),
            Some("_creationTime")
        );
        assert_eq!(field_of(r#"{"_id":1}"#, plain).as_deref(), Some("_id"));
        assert_eq!(field_of(r#"{"_x":1}"#, plain).as_deref(), Some("_x"));
        // About the whole document: no field.
        assert_eq!(field_of("[1]", plain), None);
        let big = format!(r#"{{"s":"{}"}}"#, "x".repeat(1 << 20));
        assert_eq!(field_of(&big, plain), None);
    }

    /// An `_id` that is a wrapped value is named by its type, not its key.
    #[test]
    fn an_id_that_is_a_wrapped_value_is_named_by_its_type() {
        for (wrapped, what) in [
            (r#"{"$bytes":""}"#, "a Bytes value ({\"$bytes\": ...})"),
            (
                r#"{"$integer":"AQAAAAAAAAA="}"#,
                "an Int64 ({\"$integer\": ...})",
            ),
        ] {
            let line = format!(r#"{{"_id":{wrapped}}}"#);
            let error = check(&line, ValueRules::Uniform).expect_err(&line);
            assert_eq!(error.code, Code::InvalidIdError);
            assert_eq!(
                error.message,
                format!("Row 1: '_id' field {what} is not a string, so the document can't keep it")
            );
        }
    }

    /// Convex adds `_id` and `_creationTime` to a row that lacks them, then
    /// counts its fields: 1023 of the row's own and both added are too many.
    #[test]
    fn the_system_fields_a_row_lacks_count_towards_its_fields() {
        let row = |fields: usize, system: &str| {
            let own = (0..fields).map(|i| format!("\"f{i}\":1"));
            let all: Vec<String> = own
                .chain((!system.is_empty()).then(|| system.to_owned()))
                .collect();
            format!("{{{}}}", all.join(","))
        };
        let id = format!(r#""_id":"{ID}""#);
        let time = r#""_creationTime":1700000000000.5"#;
        let both = format!("{id},{time}");
        for (line, added) in [
            (row(1023, ""), 2),
            (row(1024, &id), 1),
            (row(1024, time), 1),
            (row(1023, &both), 0),
        ] {
            for rules in [ValueRules::Plain, ValueRules::Uniform] {
                let error = check(&line, rules).expect_err("too many fields");
                assert_eq!(error.code, Code::InvalidConvexValue);
                let count = line.matches("\":").count() + added;
                assert!(
                    error.message.contains(&format!(
                        "Object has too many fields ({count} > maximum number 1024)"
                    )),
                    "{}",
                    error.message
                );
                assert!(
                    crate::convex::fast::check_fast(line.as_bytes(), rules, Some(10001)).is_none()
                );
            }
        }
        for line in [row(1022, ""), row(1022, &id), row(1022, &both)] {
            assert!(check(&line, ValueRules::Plain).is_ok());
            assert!(crate::convex::fast::check_fast(
                line.as_bytes(),
                ValueRules::Plain,
                Some(10001)
            )
            .is_some());
        }
    }

    /// Convex reads a line into a JSON value first: a repeated key keeps its
    /// last value, in its first place, and counts once.
    #[test]
    fn a_repeated_key_keeps_its_last_value() {
        let plain = ValueRules::Plain;
        assert!(check(r#"{"a":{"$bad":1},"a":1}"#, plain).is_ok());
        assert_eq!(
            code(r#"{"a":1,"a":{"$bad":1}}"#, plain),
            Code::InvalidConvexValue
        );
        let half = "x".repeat(700_000);
        assert!(check(&format!(r#"{{"s":"{half}","s":"{half}"}}"#), plain).is_ok());
        let same = format!("{{{}}}", vec![r#""k":1"#; 1100].join(","));
        assert!(check(&same, plain).is_ok());
        let uniform = ValueRules::Uniform;
        assert!(check(
            r#"{"w":{"$integer":"AQAAAA==","$integer":"AQAAAAAAAAA="}}"#,
            uniform
        )
        .is_ok());
        assert_eq!(
            code(
                r#"{"w":{"$integer":"AQAAAAAAAAA=","$integer":"AQAAAA=="}}"#,
                uniform
            ),
            Code::InvalidConvexValue
        );
        let doc = check(&format!(r#"{{"_id":"nope","_id":"{ID}"}}"#), plain).unwrap();
        assert_eq!(doc.id, IdField::Valid(DocumentId::new(10001, [0xff; 16])));
    }

    #[test]
    fn size_matches_convex_example() {
        let line = format!(r#"{{"foo":"bar","_id":"{ID}","_creationTime":1700000000000.5}}"#);
        assert_eq!(check(&line, ValueRules::Uniform).unwrap().size, 72);
        // Without _id and _creationTime, the generated ones count the same.
        assert_eq!(
            check(r#"{"foo":"bar"}"#, ValueRules::Uniform).unwrap().size,
            72
        );
    }

    #[test]
    fn ids_are_extracted() {
        let doc = check(&format!(r#"{{"_id":"{ID}"}}"#), ValueRules::Plain).unwrap();
        assert_eq!(doc.id, IdField::Valid(DocumentId::new(10001, [0xff; 16])));
        let doc = check(r#"{"_id":"nope"}"#, ValueRules::Plain).unwrap();
        assert!(
            matches!(doc.id, IdField::Invalid(ref s, IdDecodeError::InvalidLength(4)) if s == "nope")
        );
        assert_eq!(
            code(r#"{"_id":5}"#, ValueRules::Plain),
            Code::InvalidIdError
        );
        // A nested _id is just a field.
        assert_eq!(
            check(r#"{"a":{"_id":5}}"#, ValueRules::Plain).unwrap().id,
            IdField::Absent
        );
    }

    #[test]
    fn uniform_wrappers() {
        let ok = [
            r#"{"a":{"$integer":"AQAAAAAAAAA="}}"#,
            r#"{"a":{"$integer":"AQAAAAAAAAA"}}"#,
            r#"{"a":{"$float":"AAAAAAAA+H8="}}"#,
            r#"{"a":{"$float":"AAAAAAAA8P8="}}"#,
            r#"{"a":{"$float":"AAAAAAAAAIA="}}"#,
            r#"{"a":{"$bytes":"aGVsbG8="}}"#,
            r#"{"a":{"$bytes":""}}"#,
            r#"{"a":[1,{"$bytes":"AA=="},"x",null,true]}"#,
        ];
        for line in ok {
            check(line, ValueRules::Uniform).unwrap_or_else(|e| panic!("{line}: {e:?}"));
        }
        let bad = [
            r#"{"a":{"$integer":"AQAAAA=="}}"#,
            r#"{"a":{"$foo":1}}"#,
            r#"{"a":{"$integer":"AQAAAAAAAAA=","b":1}}"#,
            r#"{"a":{"b":1,"$integer":"AQAAAAAAAAA="}}"#,
            r#"{"a":{"$float":"AAAAAAAA8D8="}}"#,
            r#"{"a":{"$set":[]}}"#,
            r#"{"a":{"$map":[]}}"#,
            r#"{"a":{"$bytes":1}}"#,
            r#"{"a":{"$bytes":"AB=="}}"#,
        ];
        for line in bad {
            assert_eq!(
                code(line, ValueRules::Uniform),
                Code::InvalidConvexValue,
                "{line}"
            );
        }
        assert_eq!(
            code(r#"{"$integer":"AQAAAAAAAAA="}"#, ValueRules::Uniform),
            Code::NotAnObject
        );
        let e = check(r#"{"a":{"$integer":"AQAAAA=="}}"#, ValueRules::Uniform).unwrap_err();
        assert_eq!(
            e.message,
            "Row 1 wasn't a valid Convex value: Int64 must be exactly eight bytes"
        );
    }

    #[test]
    fn plain_rules_reject_every_dollar_key() {
        let e = check(r#"{"a":{"$integer":"AQAAAAAAAAA="}}"#, ValueRules::Plain).unwrap_err();
        assert_eq!(e.code, Code::InvalidConvexValue);
        assert!(e
            .message
            .ends_with("Field name $integer starts with '$', which is reserved."));
        assert_eq!(
            code(r#"{"$unrecognized": {}}"#, ValueRules::Plain),
            Code::InvalidConvexValue
        );
        assert_eq!(
            code(r#"{"okay": {}, "$notOkay": {}}"#, ValueRules::Uniform),
            Code::InvalidConvexValue
        );
    }

    #[test]
    fn creation_time_rules() {
        assert_eq!(
            code(r#"{"_creationTime":1700000000000}"#, ValueRules::Uniform),
            Code::InvalidCreationTimeError
        );
        assert!(check(r#"{"_creationTime":1700000000000}"#, ValueRules::Plain).is_ok());
        assert!(check(r#"{"_creationTime":1700000000000.0}"#, ValueRules::Uniform).is_ok());
        assert_eq!(
            code(r#"{"_creationTime":0.0}"#, ValueRules::Uniform),
            Code::InvalidDocumentError
        );
        assert_eq!(
            code(
                r#"{"_creationTime":9007199254740992.0}"#,
                ValueRules::Uniform
            ),
            Code::InvalidDocumentError
        );
        assert_eq!(
            code(r#"{"_creationTime":"x"}"#, ValueRules::Plain),
            Code::InvalidCreationTimeError
        );
        // Only an Int64, which only a uniform export has, is spoken of as one.
        for (line, rules, int64) in [
            (r#"{"_creationTime":null}"#, ValueRules::Plain, false),
            (r#"{"_creationTime":null}"#, ValueRules::Uniform, false),
            (r#"{"_creationTime":"1"}"#, ValueRules::Uniform, false),
            (r#"{"_creationTime":[1.5]}"#, ValueRules::Uniform, false),
            (r#"{"_creationTime":17}"#, ValueRules::Uniform, true),
            (
                r#"{"_creationTime":{"$integer":"EQAAAAAAAAA="}}"#,
                ValueRules::Uniform,
                true,
            ),
        ] {
            let e = check(line, rules).unwrap_err();
            assert_eq!(e.message.contains("Int64"), int64, "{line}: {}", e.message);
        }
    }

    #[test]
    fn json_errors_win_over_value_errors() {
        let e = check(r#"{"$bad":1,"x":}"#, ValueRules::Plain).unwrap_err();
        assert_eq!(e.code, Code::JsonInvalidRow);
        assert!(
            e.message.starts_with("Row 1 wasn't valid JSON: "),
            "{}",
            e.message
        );
        assert_eq!(code("", ValueRules::Plain), Code::JsonInvalidRow);
        assert_eq!(code("{} {}", ValueRules::Plain), Code::JsonInvalidRow);
        let deep = format!("{}{}", "[".repeat(130), "]".repeat(130));
        assert_eq!(
            code(&format!(r#"{{"a":{deep}}}"#), ValueRules::Plain),
            Code::JsonInvalidRow
        );
    }

    #[test]
    fn rows_must_be_objects() {
        // Convex names the row by its compact JSON, cut at 100 bytes.
        for (row, received) in [
            ("[1, 2]", "[1,2]"),
            ("1.0", "1.0"),
            ("1e2", "100.0"),
            ("-0", "-0.0"),
            (" \"a\" ", "\"a\""),
        ] {
            let e = check(row, ValueRules::Plain).unwrap_err();
            assert_eq!(e.code, Code::InvalidConvexValue);
            assert_eq!(
                e.message,
                format!("Row 1 wasn't a valid Convex value: expected object, received {received}")
            );
        }
        let long = format!("[{}]", vec!["1"; 60].join(", "));
        let e = check(&long, ValueRules::Uniform).unwrap_err();
        let cut = format!("[{}", vec!["1"; 60].join(","));
        assert_eq!(
            e.message,
            format!(
                "Row 1 wasn't a valid Convex value: expected object, received {}...",
                &cut[..100]
            )
        );
    }

    /// Convex inserts a converted document by checking its size, then its
    /// `_id`, then its `_creationTime`, then every rule of a valid document
    /// in one message; a row with several problems gets the first.
    #[test]
    fn insert_problems_come_in_convex_order() {
        let big = "x".repeat(1 << 20);
        // The size before anything else.
        let e = check(
            &format!(r#"{{"_x":1,"_id":5,"s":"{big}"}}"#),
            ValueRules::Plain,
        )
        .unwrap_err();
        assert_eq!((e.code, e.id_first), (Code::ValueTooLargeError, None));
        // The rest after the `_id`, which the caller checks first.
        let e = check(r#"{"_id":"nope","_x":1}"#, ValueRules::Plain).unwrap_err();
        assert_eq!(e.code, Code::InvalidDocumentError);
        assert!(matches!(e.id_first, Some(IdField::Invalid(ref s, _)) if s == "nope"));
        // A time Convex cannot read, before an `_id` that is not a string.
        let e = check(r#"{"_id":5,"_creationTime":-1.0}"#, ValueRules::Plain).unwrap_err();
        assert_eq!(e.code, Code::UnreadableCreationTime);
        assert_eq!(e.field.as_deref(), Some("_creationTime"));
        let e = check(r#"{"_id":5,"_creationTime":1}"#, ValueRules::Uniform).unwrap_err();
        assert_eq!(e.code, Code::InvalidIdError);
        let e = check(r#"{"_creationTime":1,"_x":1}"#, ValueRules::Uniform).unwrap_err();
        assert_eq!(e.code, Code::InvalidCreationTimeError);
        // Every broken rule at once: nesting, time, then system fields sorted.
        let deep = format!("{}1{}", r#"{"a":"#.repeat(16), "}".repeat(16));
        let e = check(
            &format!(r#"{{"_b":1,"_creationTime":0.0,"_a":{deep},"_b":2}}"#),
            ValueRules::Plain,
        )
        .unwrap_err();
        assert_eq!(e.code, Code::InvalidDocumentError);
        assert_eq!(
            e.message,
            "Row 1 isn't a valid document: Document is too nested (nested 17 levels deep > maximum nesting 16)\n \
             The '_creationTime' field should be a timestamp in milliseconds, is 0\n \
             Field '_a' starts with an underscore, which is only allowed for system fields like '_id'\n \
             Field '_b' starts with an underscore, which is only allowed for system fields like '_id'"
        );
        assert_eq!(e.field, None);
        let e = check(r#"{"_creationTime":5.0,"_z":1,"_y":1}"#, ValueRules::Plain).unwrap_err();
        assert_eq!(e.field.as_deref(), Some("_y"));
    }

    #[test]
    fn limits() {
        assert_eq!(
            code(r#"{"_secret":1}"#, ValueRules::Plain),
            Code::InvalidDocumentError
        );
        assert!(check(r#"{"a":{"_nested":1}}"#, ValueRules::Plain).is_ok());
        let nested = |n: usize| {
            format!(
                "{}{}",
                r#"{"a":"#.repeat(n),
                "1".to_owned() + &"}".repeat(n)
            )
        };
        assert!(check(&nested(16), ValueRules::Plain).is_ok());
        assert_eq!(
            code(&nested(17), ValueRules::Plain),
            Code::InvalidDocumentError
        );
        assert_eq!(
            code(&nested(66), ValueRules::Plain),
            Code::InvalidConvexValue
        );
        let long_array = format!(r#"{{"a":[{}0]}}"#, "0,".repeat(8192));
        assert_eq!(
            code(&long_array, ValueRules::Plain),
            Code::InvalidConvexValue
        );
        let many: Vec<String> = (0..1025).map(|i| format!(r#""f{i}":1"#)).collect();
        assert_eq!(
            code(&format!("{{{}}}", many.join(",")), ValueRules::Plain),
            Code::InvalidConvexValue
        );
        let big = format!(r#"{{"a":"{}"}}"#, "x".repeat(1 << 20));
        let e = check(&big, ValueRules::Plain).unwrap_err();
        assert_eq!(e.code, Code::ValueTooLargeError);
        assert!(
            e.message.contains("1.00 MiB > maximum size 1 MiB"),
            "{}",
            e.message
        );
        assert_eq!(
            code(r#"{"bad\u0001key":1}"#, ValueRules::Plain),
            Code::InvalidConvexValue
        );
    }

    #[test]
    fn base64_rules() {
        assert_eq!(
            decode_base64("AQAAAAAAAAA").unwrap(),
            decode_base64("AQAAAAAAAAA=").unwrap()
        );
        assert!(decode_base64("AB==").is_err());
        assert!(decode_base64("A-_=").is_err());
        assert!(decode_base64(" AA==").is_err());
        assert_eq!(decode_base64("").unwrap(), Vec::<u8>::new());
    }
}

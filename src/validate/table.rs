//! Checking the documents of one table, in order: each line's value (the
//! fast scan, [`Precheck`], else the full checker), and what spans the rows:
//! the `_id`'s table number and duplicate ids across the whole table. Shared
//! by the validator and by the server, which re-checks every document it
//! receives.

use super::ids::{HashedId, IdKeys, IdSet};
use crate::archive::lines::{starts_as_utf16, UTF16_HINT};
use crate::convex::fast::{check_fast, check_fast_line};
use crate::convex::value::{check_document, CheckedDocument, IdField, ValueRules};
use crate::convex::DocumentId;
use crate::report::{Code, Finding};

/// A rejected row: code, message, the field and, for duplicates, the first line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RowFinding {
    /// Stable code.
    pub code: Code,
    /// Convex's message.
    pub message: String,
    /// The field concerned (a path from the document), if one is.
    pub field: Option<String>,
    /// For `DuplicateId`: the line of the first document with that id.
    pub first_line: Option<u64>,
    /// For `DuplicateId`: that line's entry, when it is another entry of
    /// the table.
    pub first_entry: Option<String>,
    /// Where in the line a JSON syntax error was found (a byte offset).
    pub at_byte: Option<usize>,
}

impl RowFinding {
    /// A finding about the whole row.
    pub fn new(code: Code, message: String) -> Self {
        RowFinding {
            code,
            message,
            field: None,
            first_line: None,
            first_entry: None,
            at_byte: None,
        }
    }

    /// The same finding, about `field`.
    pub fn at(mut self, field: &str) -> Self {
        self.field = Some(field.to_owned());
        self
    }

    /// Where it is in `finding`: the field and the first line.
    pub fn locate(&self, finding: Finding) -> Finding {
        let mut finding = finding.field(self.field.clone());
        finding.first_line = self.first_line;
        finding.first_entry = self.first_entry.clone();
        finding
    }
}

/// Checks the documents of one table, in order.
pub struct TableChecker {
    name: String,
    number: Option<u32>,
    rules: ValueRules,
    /// Decoded ids seen so far, with the line each was first seen on,
    /// counted across the table's entries.
    ids: IdSet,
    /// The table's entries so far (when there are several), each with the
    /// lines of the entries before it.
    entries: Vec<(u64, String)>,
    /// The lines of the entries before the current one.
    line_base: u64,
    /// The last line checked in the current entry.
    last_line: u64,
    /// Duplicates are placed by row, not line: a JSON array's elements,
    /// often all on one line.
    by_row: bool,
}

/// The stateless first half of [`TableChecker::check`]: the fast scan of a
/// plainly valid line. It is `Copy` and `Send`, so that lines can be
/// prechecked on another thread while the checker keeps the duplicate set.
#[derive(Debug, Clone, Copy)]
pub struct Precheck {
    number: Option<u32>,
    rules: ValueRules,
    keys: IdKeys,
}

/// What [`Precheck::first_line`] found, compactly (a chunk holds one per line).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Prechecked {
    /// A plainly valid document, with its `_id` if it has one (hashed for
    /// the duplicate set, once for both its preload and its insert).
    Plain(Option<HashedId>),
    /// Anything else: the full checker decides.
    Unsure,
}

impl Precheck {
    /// The length of the first line of `text` (which ends at the first `\n`
    /// or at the end), and whether it is plainly valid (and its id) or left
    /// to the full checker.
    #[inline]
    pub fn first_line(&self, text: &[u8]) -> (usize, Prechecked) {
        let (len, doc) = check_fast_line(text, self.rules, self.number);
        let prechecked = match doc {
            Some(CheckedDocument {
                id: IdField::Valid(id),
                ..
            }) => Prechecked::Plain(Some(self.keys.hashed(id))),
            // The fast scan leaves every other kind of `_id` to the full checker.
            Some(_) => Prechecked::Plain(None),
            None => Prechecked::Unsure,
        };
        (len, prechecked)
    }
}

impl TableChecker {
    /// A checker for table `name` with its assigned number (if any) and value rules.
    pub fn new(name: &str, number: Option<u32>, rules: ValueRules) -> Self {
        TableChecker {
            name: name.to_owned(),
            number,
            rules,
            ids: IdSet::default(),
            entries: Vec::new(),
            line_base: 0,
            last_line: 0,
            by_row: false,
        }
    }

    /// Places duplicate ids by row rather than line (a JSON array).
    pub fn place_by_row(mut self) -> Self {
        self.by_row = true;
        self
    }

    /// Where a duplicate of the document at `row`, `line` is placed.
    fn place(&self, row: u64, line: u64) -> u64 {
        if self.by_row {
            row
        } else {
            line
        }
    }

    /// The next entry of the table starts (entry `name`): its lines are
    /// numbered from 1 again, and a duplicate of an id from an earlier
    /// entry names that entry.
    pub fn start_entry(&mut self, name: &str) {
        if !self.entries.is_empty() {
            self.line_base += self.last_line;
        }
        self.entries.push((self.line_base, name.to_owned()));
        self.last_line = 0;
    }

    /// Where line `at` of the whole table is: its line in its entry, and
    /// that entry when it is not the current one.
    fn locate(&self, at: u64) -> (u64, Option<&str>) {
        match self.entries.iter().rposition(|(base, _)| *base < at) {
            Some(i) => {
                let (base, name) = &self.entries[i];
                let other = (i + 1 < self.entries.len()).then_some(name.as_str());
                (at - base, other)
            }
            None => (at, None),
        }
    }

    /// The table's number.
    pub fn number(&self) -> Option<u32> {
        self.number
    }

    /// Where document `id` was first seen in the table, if it was: its
    /// place as [`check`](Self::check) numbered it (the line counted across
    /// the table's entries, or the row when placed by row).
    pub fn first_seen(&self, id: DocumentId) -> Option<u64> {
        self.ids.get(self.ids.keys().hashed(id))
    }

    /// Documents with distinct ids seen so far.
    pub fn distinct_ids(&self) -> usize {
        self.ids.len()
    }

    /// Makes room for about `ids` more ids (an estimate; the set grows past it as needed).
    pub fn reserve_ids(&mut self, ids: usize) {
        self.ids.reserve(ids);
    }

    /// Readies the duplicate set for `prechecked`'s id, which comes soon:
    /// see `IdSet::preload`.
    #[inline]
    pub fn preload(&self, prechecked: &Prechecked) {
        if let Prechecked::Plain(Some(id)) = prechecked {
            self.ids.preload(id);
        }
    }

    /// A checker for another table that reuses this one's memory.
    pub fn reuse(mut self, name: &str, number: Option<u32>, rules: ValueRules) -> Self {
        self.ids.clear();
        self.entries.clear();
        self.line_base = 0;
        self.last_line = 0;
        self.name.clear();
        self.name.push_str(name);
        self.number = number;
        self.rules = rules;
        self
    }

    /// The stateless half of [`check`](Self::check), with the current rules.
    pub fn precheck(&self) -> Precheck {
        Precheck {
            number: self.number,
            rules: self.rules,
            keys: self.ids.keys(),
        }
    }

    /// Checks one document: `row` numbers the row in Convex's messages, `line`
    /// is where it is reported (the same for JSONL). A line that is not UTF-8
    /// is `NotUtf8` (which a ZIP reports as `InvalidZip`).
    pub fn check(
        &mut self,
        bytes: &[u8],
        row: u64,
        line: u64,
    ) -> Result<CheckedDocument, RowFinding> {
        self.last_line = line;
        let doc = match check_fast(bytes, self.rules, self.number) {
            Some(doc) => doc,
            None => self.check_whole(bytes, row, line)?,
        };
        self.accept_id_field(&doc.id, self.place(row, line))
            .map(|_| doc)
    }

    /// [`check`](Self::check) for a line whose [`Precheck`] gave
    /// `prechecked`: whether the document has a valid `_id`.
    pub fn check_prechecked(
        &mut self,
        bytes: &[u8],
        prechecked: Prechecked,
        row: u64,
        line: u64,
    ) -> Result<bool, RowFinding> {
        self.last_line = line;
        match prechecked {
            Prechecked::Plain(Some(id)) => self.accept_id(id, self.place(row, line)).map(|()| true),
            Prechecked::Plain(None) => Ok(false),
            Prechecked::Unsure => {
                let doc = self.check_whole(bytes, row, line)?;
                self.accept_id_field(&doc.id, self.place(row, line))
            }
        }
    }

    /// A document's `_id` field: an invalid one is `InvalidId`, a valid one
    /// goes through [`accept_id`](Self::accept_id). Returns whether there was
    /// a valid one.
    fn accept_id_field(&mut self, id: &IdField, place: u64) -> Result<bool, RowFinding> {
        match id {
            IdField::Invalid(text, reason) => Err(RowFinding::new(
                Code::InvalidId,
                format!("invalid _id '{text}': {reason}"),
            )
            .at("_id")),
            IdField::Valid(id) => {
                let id = self.ids.keys().hashed(*id);
                self.accept_id(id, place).map(|()| true)
            }
            IdField::Absent | IdField::NotString(_) => Ok(false),
        }
    }

    /// The full checker, with Convex's messages. When Convex would check
    /// the document's `_id` before its error, the `_id` is checked first.
    fn check_whole(
        &mut self,
        bytes: &[u8],
        row: u64,
        line: u64,
    ) -> Result<CheckedDocument, RowFinding> {
        let text = std::str::from_utf8(bytes).map_err(|e| {
            let hint = match line == 1 && starts_as_utf16(bytes) {
                true => format!("; it {UTF16_HINT}"),
                false => String::new(),
            };
            RowFinding::new(
                Code::NotUtf8,
                format!("Import wasn't valid UTF8: line {line} is not valid UTF-8 ({e}{hint})"),
            )
        })?;
        let error = match check_document(text, self.rules, row, self.number) {
            Ok(doc) => return Ok(doc),
            Err(error) => error,
        };
        if let Some(id) = &error.id_first {
            self.accept_id_field(id, self.place(row, line))?;
        }
        Err(RowFinding {
            field: error.field,
            at_byte: error.at_byte,
            ..RowFinding::new(error.code, error.message)
        })
    }

    /// A valid `_id`: it must carry the table's number and not repeat.
    fn accept_id(&mut self, id: HashedId, place: u64) -> Result<(), RowFinding> {
        if let Some(number) = self.number {
            if id.id.table != number {
                return Err(RowFinding::new(
                    Code::ImportConflict,
                    import_conflict_message(&id.id.to_string(), &self.name),
                )
                .at("_id"));
            }
        }
        self.remember_hashed(id, place)
    }

    /// Records an id; a second sighting is `DuplicateId` naming the first line.
    pub fn remember(&mut self, id: DocumentId, line: u64) -> Result<(), RowFinding> {
        self.remember_hashed(self.ids.keys().hashed(id), line)
    }

    /// [`remember`](Self::remember) for an id already hashed.
    fn remember_hashed(&mut self, id: HashedId, place: u64) -> Result<(), RowFinding> {
        let Some(first) = self.ids.insert(id, self.line_base + place) else {
            return Ok(());
        };
        let (first, entry) = self.locate(first);
        let place = match (entry, self.by_row) {
            (_, true) => format!("in rows {first} and {place}"),
            (Some(entry), false) => format!("first on line {first} of {entry}"),
            (None, false) => format!("first on line {first}"),
        };
        Err(RowFinding {
            code: Code::DuplicateId,
            message: format!(
                "Objects in table \"{}\" have duplicate _id fields ({} {place})",
                self.name, id.id
            ),
            field: Some("_id".into()),
            // A row is not a line.
            first_line: Some(first).filter(|_| !self.by_row),
            first_entry: entry.map(str::to_owned),
            at_byte: None,
        })
    }
}

/// Convex's text for an `_id` whose table number is not its table's.
pub fn import_conflict_message(id: &str, table: &str) -> String {
    format!(
        "_id {id} cannot be imported into '{table}' because it came from a different deployment and conflict with preexisting tables in this deployment. Try deleting preexisting tables or importing into an empty deployment."
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(id: &DocumentId) -> String {
        format!(r#"{{"_id":"{id}","_creationTime":1.5,"x":1}}"#)
    }

    #[test]
    fn duplicates_name_both_lines() {
        let a = DocumentId::new(10001, [1; 16]);
        let b = DocumentId::new(10001, [2; 16]);
        let mut checker = TableChecker::new("users", Some(10001), ValueRules::Uniform);
        assert!(checker.check(line(&a).as_bytes(), 1, 1).is_ok());
        assert!(checker.check(line(&b).as_bytes(), 2, 2).is_ok());
        let e = checker.check(line(&a).as_bytes(), 3, 3).unwrap_err();
        assert_eq!(e.code, Code::DuplicateId);
        assert_eq!(e.first_line, Some(1));
        assert!(e
            .message
            .starts_with("Objects in table \"users\" have duplicate _id fields"));
        assert_eq!(checker.distinct_ids(), 2);
    }

    #[test]
    fn a_reused_checker_starts_its_table_afresh() {
        let a = DocumentId::new(10001, [1; 16]);
        let mut checker = TableChecker::new("users", Some(10001), ValueRules::Uniform);
        for n in 0..1000u16 {
            let mut internal = [0; 16];
            internal[..2].copy_from_slice(&n.to_le_bytes());
            checker
                .remember(DocumentId::new(10001, internal), 1)
                .unwrap();
        }
        let mut checker = checker.reuse("posts", Some(10002), ValueRules::Plain);
        assert_eq!(checker.distinct_ids(), 0);
        assert_eq!(checker.number(), Some(10002));
        // users' ids are not posts' ids; posts' own are.
        let b = DocumentId::new(10002, [0; 16]);
        assert_eq!(
            checker.check(line(&a).as_bytes(), 1, 1).unwrap_err().code,
            Code::ImportConflict
        );
        assert!(checker.check(line(&b).as_bytes(), 2, 2).is_ok());
        let e = checker.check(line(&b).as_bytes(), 3, 3).unwrap_err();
        assert_eq!((e.code, e.first_line), (Code::DuplicateId, Some(2)));
        assert!(e.message.starts_with("Objects in table \"posts\""));
    }

    #[test]
    fn ids_must_carry_the_table_number() {
        let mut checker = TableChecker::new("users", Some(10002), ValueRules::Uniform);
        let e = checker
            .check(line(&DocumentId::new(10001, [1; 16])).as_bytes(), 1, 1)
            .unwrap_err();
        assert_eq!(e.code, Code::ImportConflict);
        let e = checker.check(br#"{"_id":"abc"}"#, 2, 2).unwrap_err();
        assert_eq!(e.code, Code::InvalidId);
        assert!(e.message.starts_with("invalid _id 'abc'"));
    }

    #[test]
    fn duplicates_past_four_billion_lines_name_the_first() {
        let a = DocumentId::new(10001, [1; 16]);
        let b = DocumentId::new(10001, [2; 16]);
        let far = u64::from(u32::MAX) + 10;
        let mut checker = TableChecker::new("users", Some(10001), ValueRules::Uniform);
        checker.remember(a, 7).unwrap();
        checker.remember(b, far).unwrap();
        assert_eq!(
            checker.remember(a, far + 1).unwrap_err().first_line,
            Some(7)
        );
        assert_eq!(checker.remember(b, 8).unwrap_err().first_line, Some(far));
        assert_eq!(
            checker.remember(b, far + 2).unwrap_err().first_line,
            Some(far)
        );
        assert_eq!(checker.distinct_ids(), 2);
    }

    #[test]
    fn prechecked_lines_are_judged_as_whole_checks_judge_them() {
        let own = DocumentId::new(10001, [1; 16]);
        let other = DocumentId::new(10002, [2; 16]);
        let lines = [
            line(&own),
            line(&own),
            line(&other),
            r#"{"_id":"abc"}"#.to_owned(),
            r#"{"_id":5}"#.to_owned(),
            r#"{"x":1}"#.to_owned(),
            r#"{"x":1e5}"#.to_owned(),
            r#"{"$x":1}"#.to_owned(),
            "not json".to_owned(),
            "{\"x\":1,\n\"y\":2}".to_owned(),
            "{\"x\":1} \r".to_owned(),
            String::new(),
            r#"{"x":"no end"#.to_owned(),
        ];
        let mut whole = TableChecker::new("users", Some(10001), ValueRules::Uniform);
        let mut split = TableChecker::new("users", Some(10001), ValueRules::Uniform);
        // The prechecks find the lines in the text they make up, as a chunk's.
        let lines: Vec<&str> = lines.iter().flat_map(|text| text.split('\n')).collect();
        let text = lines.join("\n");
        let mut rest = text.as_bytes();
        for (n, line) in lines.iter().enumerate() {
            let n = n as u64 + 1;
            let expected = whole
                .check(line.as_bytes(), n, n)
                .map(|doc| matches!(doc.id, IdField::Valid(_)));
            let (len, prechecked) = split.precheck().first_line(rest);
            assert_eq!(&rest[..len], line.as_bytes());
            rest = rest.get(len + 1..).unwrap_or_default();
            let got = split.check_prechecked(line.as_bytes(), prechecked, n, n);
            assert_eq!(got, expected, "{line}");
        }
    }
}

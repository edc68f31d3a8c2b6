//! Checks that span the rows of one table: the `_id`'s table number and
//! duplicate ids across the whole table. Shared by the validator and by the
//! server, which re-checks every document it receives.

use std::collections::hash_map::{Entry, HashMap};

use rustc_hash::FxBuildHasher;

use crate::convex::value::{check_document, CheckedDocument, IdField, ValueRules};
use crate::convex::DocumentId;
use crate::report::Code;

/// A rejected row: code, message and, for duplicates, the first line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RowFinding {
    /// Stable code.
    pub code: Code,
    /// Convex's message.
    pub message: String,
    /// For `DuplicateId`: the line of the first document with that id.
    pub first_line: Option<u64>,
}

/// Checks the documents of one table, in order.
pub struct TableChecker {
    name: String,
    number: Option<u32>,
    rules: ValueRules,
    /// Decoded ids seen so far, with the line each was first seen on.
    seen: HashMap<DocumentId, u64, FxBuildHasher>,
}

impl TableChecker {
    /// A checker for table `name` with its assigned number (if any) and value rules.
    pub fn new(name: &str, number: Option<u32>, rules: ValueRules) -> Self {
        TableChecker {
            name: name.to_owned(),
            number,
            rules,
            seen: HashMap::default(),
        }
    }

    /// The table's number.
    pub fn number(&self) -> Option<u32> {
        self.number
    }

    /// Switches value rules (when a later entry of the same table has another schema).
    pub fn set_rules(&mut self, rules: ValueRules) {
        self.rules = rules;
    }

    /// Documents with distinct ids seen so far.
    pub fn distinct_ids(&self) -> usize {
        self.seen.len()
    }

    /// Checks one document: `row` numbers the row in Convex's messages, `line`
    /// is where it is reported (the same for JSONL).
    pub fn check(
        &mut self,
        text: &str,
        row: u64,
        line: u64,
    ) -> Result<CheckedDocument, RowFinding> {
        let doc = check_document(text, self.rules, row, self.number).map_err(|e| RowFinding {
            code: e.code,
            message: e.message,
            first_line: None,
        })?;
        match &doc.id {
            IdField::Invalid(text, reason) => Err(RowFinding {
                code: Code::InvalidId,
                message: format!("invalid _id '{text}': {reason}"),
                first_line: None,
            }),
            IdField::Valid(id) => {
                if let Some(number) = self.number {
                    if id.table != number {
                        return Err(RowFinding {
                            code: Code::ImportConflict,
                            message: import_conflict_message(&id.to_string(), &self.name),
                            first_line: None,
                        });
                    }
                }
                self.remember(*id, line)?;
                Ok(doc)
            }
            IdField::Absent | IdField::NotString(_) => Ok(doc),
        }
    }

    /// Records an id; a second sighting is `DuplicateId` naming the first line.
    pub fn remember(&mut self, id: DocumentId, line: u64) -> Result<(), RowFinding> {
        match self.seen.entry(id) {
            Entry::Vacant(slot) => {
                slot.insert(line);
                Ok(())
            }
            Entry::Occupied(slot) => Err(RowFinding {
                code: Code::DuplicateId,
                message: format!(
                    "Objects in table \"{}\" have duplicate _id fields ({id} first on line {first})",
                    self.name,
                    first = slot.get()
                ),
                first_line: Some(*slot.get()),
            }),
        }
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
        assert!(checker.check(&line(&a), 1, 1).is_ok());
        assert!(checker.check(&line(&b), 2, 2).is_ok());
        let e = checker.check(&line(&a), 3, 3).unwrap_err();
        assert_eq!(e.code, Code::DuplicateId);
        assert_eq!(e.first_line, Some(1));
        assert!(e
            .message
            .starts_with("Objects in table \"users\" have duplicate _id fields"));
        assert_eq!(checker.distinct_ids(), 2);
    }

    #[test]
    fn ids_must_carry_the_table_number() {
        let mut checker = TableChecker::new("users", Some(10002), ValueRules::Uniform);
        let e = checker
            .check(&line(&DocumentId::new(10001, [1; 16])), 1, 1)
            .unwrap_err();
        assert_eq!(e.code, Code::ImportConflict);
        let e = checker.check(r#"{"_id":"abc"}"#, 2, 2).unwrap_err();
        assert_eq!(e.code, Code::InvalidId);
        assert!(e.message.starts_with("invalid _id 'abc'"));
    }
}

//! The `_storage` table: metadata rows of stored files, checked as Convex
//! reads them (a fixed record, not a document), and pairing with the files.

use std::collections::HashMap;

use serde::Deserialize;

use super::table::RowFinding;
use crate::convex::value::{decode_base64, MAX_CREATION_TIME};
use crate::convex::DocumentId;
use crate::report::Code;

/// The metadata of one stored file, as Convex deserializes a `_storage` row.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct StorageRow {
    #[serde(rename = "_id")]
    id: String,
    #[serde(rename = "_creationTime", default)]
    creation_time: Option<f64>,
    #[serde(default)]
    sha256: Option<String>,
    #[serde(default)]
    _size: Option<i64>,
    #[serde(default)]
    content_type: Option<String>,
    #[serde(default)]
    internal_id: Option<String>,
}

/// What a metadata row says about its file.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct FileMetadata {
    /// The `_storage` table's entry of the row (an index into its entries).
    pub entry: usize,
    /// Line of the row in that entry.
    pub line: u64,
    /// Expected SHA-256, when the row gives one.
    pub sha256: Option<[u8; 32]>,
    /// Whether a file entry was found for it.
    pub has_file: bool,
    /// The row's `_creationTime`, if it gives one.
    pub creation_time: Option<f64>,
}

impl FileMetadata {
    /// Why Convex refuses this row as the document it inserts for its file,
    /// if it does: a `_creationTime` must then be a document's, above 0 and
    /// below 2^53. (Reading the row only refuses negative ones; a row
    /// without a file is not inserted, so nothing else is checked.)
    pub fn document_error(&self) -> Option<RowFinding> {
        let t = self.creation_time?;
        (!(t > 0.0 && t < MAX_CREATION_TIME)).then(|| {
            RowFinding::new(
                Code::InvalidDocumentError,
                format!(
                    "Row {} isn't a valid document: The '_creationTime' field should be a timestamp in milliseconds, is {t}",
                    self.line
                ),
            )
            .at("_creationTime")
        })
    }
}

/// Metadata rows of one component's `_storage` table, by file id.
#[derive(Default)]
pub(crate) struct StorageMetadata {
    pub rows: HashMap<DocumentId, FileMetadata>,
    /// The entry the rows now checked come from (an index into the
    /// `_storage` table's entries), as their lines count per entry.
    pub entry: usize,
}

/// The first field of a `_storage` row whose value [`StorageRow`] cannot
/// take, to name it in the finding.
fn mistyped_field(row: &serde_json::Value) -> Option<&'static str> {
    let row = row.as_object()?;
    let fits = |field: &str, value: &serde_json::Value| match field {
        "_id" => value.is_string(),
        "_creationTime" => value.is_null() || value.is_number(),
        "size" => value.is_null() || value.is_i64(),
        _ => value.is_null() || value.is_string(),
    };
    [
        "_id",
        "_creationTime",
        "sha256",
        "size",
        "contentType",
        "internalId",
    ]
    .into_iter()
    .find(|field| row.get(*field).is_some_and(|value| !fits(field, value)))
}

impl StorageMetadata {
    /// Checks one `_storage` row (1-based `row`) against the storage table's number.
    pub fn check_row(
        &mut self,
        text: &str,
        row: u64,
        number: Option<u32>,
    ) -> Result<(), RowFinding> {
        let invalid = RowFinding::new;
        let parsed: StorageRow = match serde_json::from_str::<serde_json::Value>(text) {
            Err(e) => {
                return Err(invalid(
                    Code::JsonInvalidRow,
                    format!("Row {row} wasn't valid JSON: {e}"),
                ))
            }
            Ok(value) => {
                let field = mistyped_field(&value);
                serde_json::from_value(value).map_err(|e| {
                    let finding = invalid(
                        Code::InvalidConvexValue,
                        format!("Row {row} wasn't a valid Convex value: {e}"),
                    );
                    match field {
                        Some(field) => finding.at(field),
                        None => finding,
                    }
                })?
            }
        };
        let value_error = |reason: String| {
            invalid(
                Code::InvalidConvexValue,
                format!("Row {row} wasn't a valid Convex value: {reason}"),
            )
        };
        let id =
            DocumentId::decode(&parsed.id).map_err(|e| value_error(e.to_string()).at("_id"))?;
        if let Some(number) = number {
            if id.table != number {
                return Err(invalid(
                    Code::InvalidId,
                    format!(
                        "_storage entry has invalid ID {} (TableNumber({}) != TableNumber({number}))",
                        parsed.id, id.table
                    ),
                )
                .at("_id"));
            }
        }
        if let Some(content_type) = &parsed.content_type {
            if !is_mime_type(content_type) {
                return Err(value_error(format!(
                    "contentType '{content_type}' is not a MIME type"
                ))
                .at("contentType"));
            }
        }
        let sha256 = match &parsed.sha256 {
            None => None,
            Some(text) => {
                let bytes = decode_base64(text)
                    .map_err(|e| value_error(format!("sha256: {e}")).at("sha256"))?;
                Some(<[u8; 32]>::try_from(bytes.as_slice()).map_err(|_| {
                    value_error(format!("sha256 must be 32 bytes, got {}", bytes.len()))
                        .at("sha256")
                })?)
            }
        };
        if let Some(internal_id) = &parsed.internal_id {
            if !is_uuid(internal_id) {
                return Err(
                    value_error(format!("internalId '{internal_id}' is not a UUID"))
                        .at("internalId"),
                );
            }
        }
        // As Convex reads a creation time: not negative (-0 included).
        if let Some(t) = parsed.creation_time.filter(|t| t.is_sign_negative()) {
            return Err(value_error(format!("Invalid creation time {t}")).at("_creationTime"));
        }
        // A later row of the same file replaces an earlier one: Convex
        // collects the rows by id before it reads any file.
        self.rows.insert(
            id,
            FileMetadata {
                entry: self.entry,
                line: row,
                sha256,
                has_file: false,
                creation_time: parsed.creation_time,
            },
        );
        Ok(())
    }
}

/// `type/subtype[; parameters]` with RFC 7230 token characters.
fn is_mime_type(text: &str) -> bool {
    let essence = text.split(';').next().unwrap_or("").trim();
    let token = |s: &str| {
        !s.is_empty()
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
    };
    matches!(essence.split_once('/'), Some((t, s)) if token(t) && token(s))
}

/// A UUID in hyphenated, simple, braced or URN form.
fn is_uuid(text: &str) -> bool {
    let text = text
        .strip_prefix("urn:uuid:")
        .or_else(|| text.strip_prefix('{').and_then(|t| t.strip_suffix('}')))
        .unwrap_or(text);
    let hex = |s: &str| s.bytes().all(|b| b.is_ascii_hexdigit());
    match text.len() {
        32 => hex(text),
        36 => {
            let groups: Vec<&str> = text.split('-').collect();
            groups.iter().map(|g| g.len()).eq([8, 4, 4, 4, 12]) && groups.iter().all(|g| hex(g))
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ID: &str = "kg21pzwemsm55e1fnt2kcsvgjh6h6gtf";

    #[test]
    fn rows() {
        let mut meta = StorageMetadata::default();
        let ok = format!(
            r#"{{"_id":"{ID}","_creationTime":1.5,"sha256":"47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=","size":0,"contentType":"image/png","internalId":"5a7e2f6e-1c1e-4b8e-9c1a-3f2b1d0e9a7b"}}"#
        );
        assert_eq!(meta.check_row(&ok, 1, Some(540)), Ok(()));
        let negative = format!(r#"{{"_id":"{ID}","size":-1}}"#);
        assert_eq!(
            StorageMetadata::default().check_row(&negative, 1, Some(540)),
            Ok(())
        );
        // A second row of the file replaces the first.
        let again = format!(r#"{{"_id":"{ID}"}}"#);
        assert_eq!(meta.check_row(&again, 2, Some(540)), Ok(()));
        let id = DocumentId::decode(ID).unwrap();
        assert_eq!((meta.rows[&id].line, meta.rows[&id].sha256), (2, None));
        let mut meta = StorageMetadata::default();
        assert_eq!(
            meta.check_row(&ok, 1, Some(541)).unwrap_err().code,
            Code::InvalidId
        );
        // Each with the field the finding names.
        let bad = [
            (format!(r#"{{"_id":"{ID}","size":12.5}}"#), Some("size")),
            (format!(r#"{{"_id":"{ID}","size":12.0}}"#), Some("size")),
            // Convex reads the size as an i64.
            (
                format!(r#"{{"_id":"{ID}","size":9223372036854775808}}"#),
                Some("size"),
            ),
            (
                format!(r#"{{"_id":"{ID}","contentType":"nope"}}"#),
                Some("contentType"),
            ),
            (
                format!(r#"{{"_id":"{ID}","contentType":7}}"#),
                Some("contentType"),
            ),
            (
                format!(r#"{{"_id":"{ID}","internalId":"xyz"}}"#),
                Some("internalId"),
            ),
            (
                format!(r#"{{"_id":"{ID}","sha256":"AAAA"}}"#),
                Some("sha256"),
            ),
            (format!(r#"{{"_id":"{ID}","sha256":[]}}"#), Some("sha256")),
            (
                format!(r#"{{"_id":"{ID}","_creationTime":-5}}"#),
                Some("_creationTime"),
            ),
            (
                format!(r#"{{"_id":"{ID}","_creationTime":-0.0}}"#),
                Some("_creationTime"),
            ),
            (
                format!(r#"{{"_id":"{ID}","_creationTime":"x"}}"#),
                Some("_creationTime"),
            ),
            (r#"{"_id":"notanid"}"#.to_owned(), Some("_id")),
            (r#"{"_id":5}"#.to_owned(), Some("_id")),
            (r#"{"size":1}"#.to_owned(), None),
            ("[1]".to_owned(), None),
        ];
        for (row, field) in bad {
            let e = StorageMetadata::default()
                .check_row(&row, 1, Some(540))
                .unwrap_err();
            assert_eq!(e.code, Code::InvalidConvexValue, "{row}");
            assert_eq!(e.field.as_deref(), field, "{row}");
        }
        assert_eq!(
            StorageMetadata::default()
                .check_row("{", 1, None)
                .unwrap_err()
                .code,
            Code::JsonInvalidRow
        );
    }

    /// A creation time of 0 or from 2^53 reads fine; only the document
    /// Convex inserts for a file that came refuses it.
    #[test]
    fn a_creation_time_out_of_range_matters_only_with_a_file() {
        for (time, refused) in [("0", true), ("9007199254740992", true), ("1.5", false)] {
            let mut metadata = StorageMetadata::default();
            let row = format!(r#"{{"_id":"{ID}","_creationTime":{time}}}"#);
            metadata.check_row(&row, 3, Some(540)).unwrap();
            let id = DocumentId::decode(ID).unwrap();
            let error = metadata.rows[&id].document_error();
            assert_eq!(error.is_some(), refused, "{time}");
            if let Some(error) = error {
                assert_eq!(error.code, Code::InvalidDocumentError);
                assert_eq!(error.field.as_deref(), Some("_creationTime"));
                assert!(error.message.starts_with("Row 3 isn't a valid document"));
            }
        }
    }

    #[test]
    fn uuid_forms() {
        for ok in [
            "5a7e2f6e-1c1e-4b8e-9c1a-3f2b1d0e9a7b",
            "5a7e2f6e1c1e4b8e9c1a3f2b1d0e9a7b",
            "{5a7e2f6e-1c1e-4b8e-9c1a-3f2b1d0e9a7b}",
            "urn:uuid:5a7e2f6e-1c1e-4b8e-9c1a-3f2b1d0e9a7b",
        ] {
            assert!(is_uuid(ok), "{ok}");
        }
        assert!(!is_uuid("5a7e2f6e-1c1e-4b8e-9c1a-3f2b1d0e9a7"));
        assert!(is_mime_type("text/plain; charset=utf-8"));
        assert!(!is_mime_type("text"));
    }
}

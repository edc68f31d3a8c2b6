//! Inputs: their [`Format`] (given, else from the name's extension, else
//! from the first bytes), what an archive entry name means to Convex's
//! importer, how a prefix becomes a component path, and reading documents:
//! entry inflation ([`inflate`]), line by line ([`lines`]), CSV rows typed
//! as Convex types them ([`csv`]).

pub mod csv;
pub mod inflate;
pub mod lines;

use std::io::{self, Read, Seek};

use serde::{Deserialize, Serialize};

use crate::convex::names::check_identifier;
use crate::report::Code;

pub use lines::{ChunkReader, LineError, LineReader};

/// How much of an input [`Format::detect`] reads for its first bytes: enough
/// for blank lines before a JSON document starts.
const SNIFFED_BYTES: usize = 4096;

/// The input formats Convex imports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Format {
    /// A snapshot ZIP.
    #[serde(rename = "zip")]
    Zip,
    /// One JSON object a line, one table.
    #[serde(rename = "jsonl", alias = "jsonLines")]
    JsonLines,
    /// One JSON array of objects, one table.
    #[serde(rename = "json", alias = "jsonArray")]
    JsonArray,
    /// CSV with a header row, one table.
    #[serde(rename = "csv")]
    Csv,
}

impl Format {
    /// The format a file name's extension implies, as Convex's CLI infers it.
    pub fn from_file_name(name: &str) -> Option<Format> {
        let ext = name.rsplit_once('.')?.1.to_ascii_lowercase();
        match ext.as_str() {
            "zip" => Some(Format::Zip),
            "jsonl" => Some(Format::JsonLines),
            "json" => Some(Format::JsonArray),
            "csv" => Some(Format::Csv),
            _ => None,
        }
    }

    /// The format the first bytes of an input show, for one whose name does
    /// not tell: a ZIP's signature, or how JSON starts (`[` for an array,
    /// `{` for JSON lines). CSV has no sign of its own.
    pub fn from_first_bytes(head: &[u8]) -> Option<Format> {
        // A local file header, or the end record of an archive with no entries.
        if head.starts_with(b"PK\x03\x04") || head.starts_with(b"PK\x05\x06") {
            return Some(Format::Zip);
        }
        match head.iter().find(|c| !c.is_ascii_whitespace())? {
            b'[' => Some(Format::JsonArray),
            b'{' => Some(Format::JsonLines),
            _ => None,
        }
    }

    /// The format of `input` named `name`: from the name's extension, else
    /// from its first bytes ([`Format::from_first_bytes`]). It is read from
    /// the start, which is where it is left.
    pub fn detect(name: &str, input: &mut (impl Read + Seek)) -> io::Result<Option<Format>> {
        if let Some(format) = Format::from_file_name(name) {
            return Ok(Some(format));
        }
        let mut head = Vec::with_capacity(SNIFFED_BYTES);
        input.rewind()?;
        input
            .by_ref()
            .take(SNIFFED_BYTES as u64)
            .read_to_end(&mut head)?;
        input.rewind()?;
        Ok(Format::from_first_bytes(&head))
    }

    /// The format's short name (`zip`, `jsonl`, `json`, `csv`).
    pub fn as_str(self) -> &'static str {
        match self {
            Format::Zip => "zip",
            Format::JsonLines => "jsonl",
            Format::JsonArray => "json",
            Format::Csv => "csv",
        }
    }
}

impl std::str::FromStr for Format {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "zip" => Ok(Format::Zip),
            "jsonl" | "jsonLines" => Ok(Format::JsonLines),
            "json" | "jsonArray" => Ok(Format::JsonArray),
            "csv" => Ok(Format::Csv),
            _ => Err(format!(
                "unknown format '{s}' (expected zip, jsonl, json or csv)"
            )),
        }
    }
}

/// What one ZIP entry is, by its name alone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EntryKind {
    /// `[prefix/]<table>/documents.jsonl` (including `_tables` and `_storage`).
    Documents {
        /// Component path from the prefix (`""` for the root).
        component: String,
        /// Table name.
        table: String,
    },
    /// `[prefix/]<table>/generated_schema.jsonl`.
    GeneratedSchema {
        /// Component path from the prefix (`""` for the root).
        component: String,
        /// Table name.
        table: String,
    },
    /// `[prefix/]<t>/documents.jsonl` of a system table other than `_tables` and `_storage`.
    SkippedSystemTable {
        /// Component path from the prefix (`""` for the root).
        component: String,
        /// Table name.
        table: String,
    },
    /// Anything else: README, folders, stray files.
    Ignored,
}

/// A `..._storage/<id>[.ext]` name: a stored file (the pattern is not anchored).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StorageName {
    /// Component path from the prefix.
    pub component: String,
    /// The id text (not yet decoded).
    pub id: String,
}

/// A name problem that fails the import: the code and Convex's message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NameError {
    /// `InvalidTableName` or `InvalidComponentName`.
    pub code: Code,
    /// Convex's message.
    pub message: String,
}

/// Classifies an entry name as Convex's importer does. `base` is the
/// component path the import targets (`""` for the root).
pub fn classify(name: &str, base: &str) -> Result<EntryKind, NameError> {
    let (prefix, table, is_documents) = if let Some(rest) = name.strip_suffix("/documents.jsonl") {
        let (prefix, table) = split_last(rest);
        (prefix, table, true)
    } else if let Some(rest) = name.strip_suffix("/generated_schema.jsonl") {
        let (prefix, table) = split_last(rest);
        (prefix, table, false)
    } else {
        return Ok(EntryKind::Ignored);
    };
    if table.is_empty() {
        return Ok(EntryKind::Ignored);
    }
    if let Err(reason) = check_identifier(table) {
        return Err(NameError {
            code: Code::InvalidTableName,
            message: format!("table name '{table}' invalid: {reason}"),
        });
    }
    let component = component_path(prefix, base)?;
    let table = table.to_owned();
    Ok(match (is_documents, table.as_str()) {
        (false, _) => EntryKind::GeneratedSchema { component, table },
        (true, "_tables" | "_storage") => EntryKind::Documents { component, table },
        (true, t) if t.starts_with('_') => EntryKind::SkippedSystemTable { component, table },
        (true, _) => EntryKind::Documents { component, table },
    })
}

/// Matches Convex's (unanchored) stored-file pattern `(.*/)?_storage/([^/.]+)(\.[^/]+)?$`.
///
/// The literal id `documents` is the metadata stream, not a file.
pub fn storage_name(name: &str, base: &str) -> Option<Result<StorageName, NameError>> {
    let (dir, file) = name.rsplit_once('/')?;
    if !dir.ends_with("_storage") {
        return None;
    }
    let (id, ext) = match file.split_once('.') {
        Some((id, ext)) => (id, Some(ext)),
        None => (file, None),
    };
    if id.is_empty() || ext == Some("") || id == "documents" {
        return None;
    }
    // With the pattern unanchored, the prefix is only captured when `_storage`
    // is a whole folder name; `foo_storage/x` matches with no prefix.
    let prefix = match dir.strip_suffix("_storage") {
        Some("") => "",
        Some(p) if p.ends_with('/') => p,
        _ => "",
    };
    Some(component_path(prefix, base).map(|component| StorageName {
        component,
        id: id.to_owned(),
    }))
}

/// Splits `a/b/c` into (`a/b/`, `c`); (`""`, `c`) when there is no folder.
fn split_last(path: &str) -> (&str, &str) {
    match path.rfind('/') {
        Some(i) => (&path[..=i], &path[i + 1..]),
        None => ("", path),
    }
}

/// Checks a component path: names joined by `/`, each an identifier; `""`
/// is the root. The error names the first bad name and why.
pub fn check_component_path(path: &str) -> Result<(), String> {
    if path.is_empty() {
        return Ok(());
    }
    for name in path.split('/') {
        check_identifier(name)
            .map_err(|reason| format!("component name '{name}' invalid: {reason}"))?;
    }
    Ok(())
}

/// The component path a prefix names: `_components/<name>/` groups (a
/// name is not empty) peeled from the right (each `_components` at the
/// start or after a `/`), appended to `base`. Whatever is left of the prefix
/// is ignored. Names are checked as they are peeled, the last one first.
pub fn component_path(prefix: &str, base: &str) -> Result<String, NameError> {
    let mut names = Vec::new();
    let mut rest = prefix;
    while let Some(without_slash) = rest.strip_suffix('/') {
        let (before, name) = split_last(without_slash);
        let Some(head) = before.strip_suffix("_components/") else {
            break;
        };
        if name.is_empty() || !(head.is_empty() || head.ends_with('/')) {
            break;
        }
        if let Err(reason) = check_identifier(name) {
            return Err(NameError {
                code: Code::InvalidComponentName,
                message: format!("component name '{name}' invalid: {reason}"),
            });
        }
        names.push(name);
        rest = head;
    }
    let mut path = base.to_owned();
    for name in names.iter().rev() {
        if !path.is_empty() {
            path.push('/');
        }
        path.push_str(name);
    }
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn docs(component: &str, table: &str) -> EntryKind {
        EntryKind::Documents {
            component: component.into(),
            table: table.into(),
        }
    }

    #[test]
    fn classifies_like_convex() {
        let cases = [
            ("users/documents.jsonl", docs("", "users")),
            ("users/documentsxjsonl", EntryKind::Ignored),
            ("snapshot/users/documents.jsonl", docs("", "users")),
            ("a/b/c/users/documents.jsonl", docs("", "users")),
            ("/users/documents.jsonl", docs("", "users")),
            ("documents.jsonl", EntryKind::Ignored),
            ("_tables/documents.jsonl", docs("", "_tables")),
            ("_storage/documents.jsonl", docs("", "_storage")),
            (
                "_scheduled_functions/documents.jsonl",
                EntryKind::SkippedSystemTable {
                    component: "".into(),
                    table: "_scheduled_functions".into(),
                },
            ),
            (
                "_components/waitlist/tbl/documents.jsonl",
                docs("waitlist", "tbl"),
            ),
            (
                "some/parentdir/_components/waitlist/tbl/documents.jsonl",
                docs("waitlist", "tbl"),
            ),
            (
                "_components/waitlist/_components/ratelimit/tbl/documents.jsonl",
                docs("waitlist/ratelimit", "tbl"),
            ),
            (
                "_components/a/x/_components/b/tbl/documents.jsonl",
                docs("b", "tbl"),
            ),
            ("_components/waitlist/documents.jsonl", docs("", "waitlist")),
            ("component/_tables/documents.jsonl", docs("", "_tables")),
            ("x_components/a/tbl/documents.jsonl", docs("", "tbl")),
            ("__MACOSX/users/._documents.jsonl", EntryKind::Ignored),
            ("__MACOSX/users/documents.jsonl", docs("", "users")),
            ("users\\documents.jsonl", EntryKind::Ignored),
            // A component name is not empty: `_components//` is a plain folder.
            ("_components//t/documents.jsonl", docs("", "t")),
            (
                "_components/a/_components//t/documents.jsonl",
                docs("", "t"),
            ),
            ("README.md", EntryKind::Ignored),
            (
                "users/generated_schema.jsonl",
                EntryKind::GeneratedSchema {
                    component: "".into(),
                    table: "users".into(),
                },
            ),
        ];
        for (name, expected) in cases {
            assert_eq!(classify(name, ""), Ok(expected), "{name}");
        }
        assert_eq!(
            classify(
                "_components/waitlist/_components/ratelimit/tbl/documents.jsonl",
                "friendship"
            ),
            Ok(docs("friendship/waitlist/ratelimit", "tbl"))
        );
        assert_eq!(
            classify("tbl/documents.jsonl", "waitlist/ratelimit"),
            Ok(docs("waitlist/ratelimit", "tbl"))
        );
    }

    #[test]
    fn bad_names() {
        let e = classify("Users Table/documents.jsonl", "").unwrap_err();
        assert_eq!(e.code, Code::InvalidTableName);
        assert!(
            e.message.starts_with("table name 'Users Table' invalid: "),
            "{}",
            e.message
        );
        let e = classify("_components/bad-name/t/documents.jsonl", "").unwrap_err();
        assert_eq!(e.code, Code::InvalidComponentName);
        assert!(e.message.starts_with("component name 'bad-name' invalid: "));
        // Names are checked as Convex peels them, the last one first.
        let e = classify("_components/a-b/_components/c-d/t/documents.jsonl", "").unwrap_err();
        assert!(e.message.starts_with("component name 'c-d' invalid: "));
        // The table name is checked before the component path.
        assert_eq!(
            classify("_components/bad-name/1t/documents.jsonl", "")
                .unwrap_err()
                .code,
            Code::InvalidTableName
        );
    }

    #[test]
    fn storage_names() {
        let id = "kg2ah8mk1xtg35g7zyexyc96e96yr74f";
        for name in [
            format!("_storage/{id}.gif"),
            format!("_storage/{id}"),
            format!("_storage/{id}.tar.gz"),
            format!("snapshot/_storage/{id}.gif"),
        ] {
            assert_eq!(
                storage_name(&name, ""),
                Some(Ok(StorageName {
                    component: "".into(),
                    id: id.into()
                })),
                "{name}"
            );
        }
        assert_eq!(
            storage_name(&format!("_components/c/_storage/{id}.png"), ""),
            Some(Ok(StorageName {
                component: "c".into(),
                id: id.into()
            }))
        );
        for ignored in [
            "_storage/",
            "_storage/.hidden",
            "_storage/sub/file.png",
            "_storage/documents.jsonl",
            "users/documents.jsonl",
        ] {
            assert_eq!(storage_name(ignored, ""), None, "{ignored}");
        }
        assert_eq!(
            storage_name("foo_storage/abc", ""),
            Some(Ok(StorageName {
                component: "".into(),
                id: "abc".into()
            }))
        );
        assert_eq!(
            storage_name("my_storage/generated_schema.jsonl", ""),
            Some(Ok(StorageName {
                component: "".into(),
                id: "generated_schema".into()
            }))
        );
    }

    #[test]
    fn formats_from_names() {
        assert_eq!(Format::from_file_name("x.ZIP"), Some(Format::Zip));
        assert_eq!(Format::from_file_name("a.b.jsonl"), Some(Format::JsonLines));
        assert_eq!(Format::from_file_name("noext"), None);
    }

    #[test]
    fn formats_from_first_bytes() {
        for (head, format) in [
            (&b"PK\x03\x04\x14\x00"[..], Some(Format::Zip)),
            (b"PK\x05\x06\x00\x00", Some(Format::Zip)),
            (b"\n\n  {\"a\":1}\n", Some(Format::JsonLines)),
            (b"[{\"a\":1}]", Some(Format::JsonArray)),
            (b"a,b\n1,2\n", None),
            (b"PK", None),
            (b"", None),
        ] {
            assert_eq!(Format::from_first_bytes(head), format, "{head:?}");
        }
        // The name wins; the input is left at its start either way.
        let mut input = io::Cursor::new(b"PK\x03\x04rest".to_vec());
        assert_eq!(
            Format::detect("a.csv", &mut input).unwrap(),
            Some(Format::Csv)
        );
        assert_eq!(Format::detect("63", &mut input).unwrap(), Some(Format::Zip));
        assert_eq!(input.position(), 0);
    }
}

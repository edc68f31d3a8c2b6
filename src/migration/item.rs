//! Migration items: what a stream says, and their exact encoding inside a
//! frame's (uncompressed) payload.
//!
//! Every item starts with a one-byte tag. Integers are little-endian and
//! fixed-width; a string is a `u32` byte length and UTF-8 bytes; an optional
//! string is a byte 0 (absent) or 1 followed by the string.

use crate::convex::value::ValueRules;
use crate::report::NumberSource;

pub(crate) const TAG_HEADER: u8 = 1;
pub(crate) const TAG_TABLE: u8 = 2;
pub(crate) const TAG_DOCUMENTS: u8 = 3;
pub(crate) const TAG_TABLE_END: u8 = 4;
pub(crate) const TAG_FILE: u8 = 5;
pub(crate) const TAG_FILE_DATA: u8 = 6;
pub(crate) const TAG_FILE_END: u8 = 7;
pub(crate) const TAG_DONE: u8 = 8;

/// Bytes before the data of a `Documents` item: tag, table index, length.
pub(crate) const DOCUMENTS_HEAD_LEN: usize = 9;
/// Bytes before the data of a `FileData` item: tag, length.
pub(crate) const FILE_DATA_HEAD_LEN: usize = 5;

/// Counts over a whole stream: expected ones in the [`Header`], actual ones
/// in [`Item::Done`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Totals {
    /// Tables declared.
    pub tables: u32,
    /// Documents (lines) in all tables.
    pub documents: u64,
    /// Bytes of all tables' document data, newline terminators included.
    pub document_bytes: u64,
    /// Storage files.
    pub files: u64,
    /// Bytes of all storage files.
    pub file_bytes: u64,
}

impl std::fmt::Display for Totals {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} tables, {} documents ({} bytes), {} files ({} bytes)",
            self.tables, self.documents, self.document_bytes, self.files, self.file_bytes
        )
    }
}

/// The first item of every stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    /// Item format version; equals the stream header's version.
    pub version: u16,
    /// Milliseconds since the Unix epoch, as given by the producer.
    pub created_at_ms: i64,
    /// Who wrote the stream (for example `snappack 0.1.0`).
    pub producer: String,
    /// What the producer expects to send, for progress and preallocation.
    /// Advisory: the checked counts are in [`Item::Done`].
    pub expected: Totals,
}

impl Header {
    /// A header of the current format version.
    pub fn new(producer: impl Into<String>, created_at_ms: i64, expected: Totals) -> Self {
        Header {
            version: super::FORMAT_VERSION,
            created_at_ms,
            producer: producer.into(),
            expected,
        }
    }
}

/// Declares the next table; tables are numbered 0, 1, 2... in declaration order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableDecl {
    /// Component path: `""` for the root, `a/b` for nested components.
    pub component: String,
    /// Table name.
    pub name: String,
    /// Table number, when assigned (never 0).
    pub number: Option<u32>,
    /// Where the number came from.
    pub number_source: NumberSource,
    /// How the table's rows become Convex values (its generated schema, or
    /// [`ValueRules::Plain`] without one); the receiver checks them so.
    pub rules: ValueRules,
    /// Documents the producer expects to send (advisory; [`TableEnd`] is checked).
    pub expected_documents: u64,
}

/// Closes a table: the counts and checksum of everything sent for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TableEnd {
    /// Table index.
    pub table: u32,
    /// Documents (newline-terminated lines) sent.
    pub documents: u64,
    /// Bytes of document data sent, newlines included.
    pub bytes: u64,
    /// CRC32 (IEEE) of that data.
    pub crc32: u32,
}

/// Starts a storage file; its data follows in [`Item::FileData`] items.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileStart {
    /// Component path of the file's `_storage`.
    pub component: String,
    /// The file's `_storage` document id.
    pub id: String,
    /// Content type, when known.
    pub content_type: Option<String>,
    /// Size in bytes.
    pub size: u64,
}

/// One migration item.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Item {
    /// Stream header; first.
    Header(Header),
    /// Table declaration; before the table's documents.
    Table(TableDecl),
    /// A piece of a table's document data: original JSON lines, each ending
    /// in `\n`. Only a line longer than a frame is split across items, in
    /// which case the following item continues it.
    Documents {
        /// Table index.
        table: u32,
        /// The bytes; never empty.
        data: Vec<u8>,
    },
    /// A table is complete.
    TableEnd(TableEnd),
    /// A storage file starts.
    File(FileStart),
    /// A chunk of the open storage file; never empty.
    FileData(Vec<u8>),
    /// The open storage file is complete.
    FileEnd {
        /// SHA-256 of its data.
        sha256: [u8; 32],
    },
    /// The stream is complete; the actual totals. Last.
    Done(Totals),
}

/// Why an item's bytes do not decode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ItemError {
    Unknown(u8),
    Malformed(&'static str),
}

const TOTALS_LEN: usize = 4 + 8 * 4;

fn str_len(s: &str) -> usize {
    4 + s.len()
}

impl Item {
    /// Exact encoded length.
    pub(crate) fn encoded_len(&self) -> usize {
        1 + match self {
            Item::Header(h) => 2 + 8 + str_len(&h.producer) + TOTALS_LEN,
            Item::Table(t) => str_len(&t.component) + str_len(&t.name) + 1 + 1 + 4 + 8,
            Item::Documents { data, .. } => DOCUMENTS_HEAD_LEN - 1 + data.len(),
            Item::TableEnd(_) => 4 + 8 + 8 + 4,
            Item::File(f) => {
                str_len(&f.component)
                    + str_len(&f.id)
                    + 1
                    + f.content_type.as_deref().map_or(0, str_len)
                    + 8
            }
            Item::FileData(data) => FILE_DATA_HEAD_LEN - 1 + data.len(),
            Item::FileEnd { .. } => 32,
            Item::Done(_) => TOTALS_LEN,
        }
    }

    /// Appends the encoding to `out`. Lengths must fit `u32`: the encoder
    /// bounds every item by the frame size first.
    pub(crate) fn encode(&self, out: &mut Vec<u8>) {
        match self {
            Item::Header(h) => {
                out.push(TAG_HEADER);
                out.extend_from_slice(&h.version.to_le_bytes());
                out.extend_from_slice(&h.created_at_ms.to_le_bytes());
                put_str(out, &h.producer);
                put_totals(out, &h.expected);
            }
            Item::Table(t) => {
                out.push(TAG_TABLE);
                put_str(out, &t.component);
                put_str(out, &t.name);
                out.push(source_byte(t.number_source));
                out.push(rules_byte(t.rules));
                out.extend_from_slice(&t.number.unwrap_or(0).to_le_bytes());
                out.extend_from_slice(&t.expected_documents.to_le_bytes());
            }
            Item::Documents { table, data } => {
                out.push(TAG_DOCUMENTS);
                out.extend_from_slice(&table.to_le_bytes());
                put_bytes(out, data);
            }
            Item::TableEnd(e) => {
                out.push(TAG_TABLE_END);
                out.extend_from_slice(&e.table.to_le_bytes());
                out.extend_from_slice(&e.documents.to_le_bytes());
                out.extend_from_slice(&e.bytes.to_le_bytes());
                out.extend_from_slice(&e.crc32.to_le_bytes());
            }
            Item::File(f) => {
                out.push(TAG_FILE);
                put_str(out, &f.component);
                put_str(out, &f.id);
                match &f.content_type {
                    None => out.push(0),
                    Some(t) => {
                        out.push(1);
                        put_str(out, t);
                    }
                }
                out.extend_from_slice(&f.size.to_le_bytes());
            }
            Item::FileData(data) => {
                out.push(TAG_FILE_DATA);
                put_bytes(out, data);
            }
            Item::FileEnd { sha256 } => {
                out.push(TAG_FILE_END);
                out.extend_from_slice(sha256);
            }
            Item::Done(t) => {
                out.push(TAG_DONE);
                put_totals(out, t);
            }
        }
    }

    /// Decodes the item starting at `payload[*pos]` and advances `pos`.
    pub(crate) fn decode(payload: &[u8], pos: &mut usize) -> Result<Item, ItemError> {
        let mut r = Reader {
            buf: payload,
            pos: *pos,
        };
        let item = match r.u8()? {
            TAG_HEADER => Item::Header(Header {
                version: u16::from_le_bytes(r.array()?),
                created_at_ms: i64::from_le_bytes(r.array()?),
                producer: r.string()?,
                expected: r.totals()?,
            }),
            TAG_TABLE => {
                let component = r.string()?;
                let name = r.string()?;
                let number_source = match r.u8()? {
                    0 => NumberSource::Tables,
                    1 => NumberSource::Id,
                    2 => NumberSource::Target,
                    3 => NumberSource::Unassigned,
                    _ => return Err(ItemError::Malformed("unknown number source")),
                };
                let rules = match r.u8()? {
                    0 => ValueRules::Plain,
                    1 => ValueRules::Uniform,
                    _ => return Err(ItemError::Malformed("unknown value rules")),
                };
                let number = r.u32()?;
                Item::Table(TableDecl {
                    component,
                    name,
                    number: (number != 0).then_some(number),
                    number_source,
                    rules,
                    expected_documents: r.u64()?,
                })
            }
            TAG_DOCUMENTS => {
                let table = r.u32()?;
                Item::Documents {
                    table,
                    data: r.data()?,
                }
            }
            TAG_TABLE_END => Item::TableEnd(TableEnd {
                table: r.u32()?,
                documents: r.u64()?,
                bytes: r.u64()?,
                crc32: r.u32()?,
            }),
            TAG_FILE => Item::File(FileStart {
                component: r.string()?,
                id: r.string()?,
                content_type: match r.u8()? {
                    0 => None,
                    1 => Some(r.string()?),
                    _ => return Err(ItemError::Malformed("bad content type flag")),
                },
                size: r.u64()?,
            }),
            TAG_FILE_DATA => Item::FileData(r.data()?),
            TAG_FILE_END => Item::FileEnd { sha256: r.array()? },
            TAG_DONE => Item::Done(r.totals()?),
            tag => return Err(ItemError::Unknown(tag)),
        };
        *pos = r.pos;
        Ok(item)
    }
}

/// The byte a [`NumberSource`] is written as.
fn source_byte(source: NumberSource) -> u8 {
    match source {
        NumberSource::Tables => 0,
        NumberSource::Id => 1,
        NumberSource::Target => 2,
        NumberSource::Unassigned => 3,
    }
}

/// The byte [`ValueRules`] are written as.
fn rules_byte(rules: ValueRules) -> u8 {
    match rules {
        ValueRules::Plain => 0,
        ValueRules::Uniform => 1,
    }
}

fn put_bytes(out: &mut Vec<u8>, bytes: &[u8]) {
    out.extend_from_slice(&(bytes.len() as u32).to_le_bytes());
    out.extend_from_slice(bytes);
}

fn put_str(out: &mut Vec<u8>, s: &str) {
    put_bytes(out, s.as_bytes());
}

fn put_totals(out: &mut Vec<u8>, t: &Totals) {
    out.extend_from_slice(&t.tables.to_le_bytes());
    for n in [t.documents, t.document_bytes, t.files, t.file_bytes] {
        out.extend_from_slice(&n.to_le_bytes());
    }
}

/// A bounds-checked cursor: every length is checked against what is left
/// before anything is allocated.
struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl Reader<'_> {
    fn take(&mut self, n: usize) -> Result<&[u8], ItemError> {
        let rest = &self.buf[self.pos..];
        if n > rest.len() {
            return Err(ItemError::Malformed("item runs past the end of the frame"));
        }
        self.pos += n;
        Ok(&rest[..n])
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], ItemError> {
        let mut a = [0; N];
        a.copy_from_slice(self.take(N)?);
        Ok(a)
    }

    fn u8(&mut self) -> Result<u8, ItemError> {
        Ok(self.array::<1>()?[0])
    }

    fn u32(&mut self) -> Result<u32, ItemError> {
        Ok(u32::from_le_bytes(self.array()?))
    }

    fn u64(&mut self) -> Result<u64, ItemError> {
        Ok(u64::from_le_bytes(self.array()?))
    }

    fn bytes(&mut self) -> Result<&[u8], ItemError> {
        let len = self.u32()? as usize;
        self.take(len)
    }

    fn data(&mut self) -> Result<Vec<u8>, ItemError> {
        let data = self.bytes()?;
        if data.is_empty() {
            return Err(ItemError::Malformed("empty data"));
        }
        Ok(data.to_vec())
    }

    fn string(&mut self) -> Result<String, ItemError> {
        let bytes = self.bytes()?;
        std::str::from_utf8(bytes)
            .map(str::to_owned)
            .map_err(|_| ItemError::Malformed("string is not UTF-8"))
    }

    fn totals(&mut self) -> Result<Totals, ItemError> {
        Ok(Totals {
            tables: self.u32()?,
            documents: self.u64()?,
            document_bytes: self.u64()?,
            files: self.u64()?,
            file_bytes: self.u64()?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn samples() -> Vec<Item> {
        vec![
            Item::Header(Header::new("p", -5, Totals::default())),
            Item::Table(TableDecl {
                component: "a/b".into(),
                name: "users".into(),
                number: Some(10001),
                number_source: NumberSource::Id,
                rules: ValueRules::Uniform,
                expected_documents: 2,
            }),
            Item::Table(TableDecl {
                component: String::new(),
                name: "t".into(),
                number: None,
                number_source: NumberSource::Unassigned,
                rules: ValueRules::Plain,
                expected_documents: 0,
            }),
            Item::Documents {
                table: 7,
                data: b"{}\n".to_vec(),
            },
            Item::TableEnd(TableEnd {
                table: 1,
                documents: 2,
                bytes: 3,
                crc32: 4,
            }),
            Item::File(FileStart {
                component: "c".into(),
                id: "id".into(),
                content_type: Some("image/png".into()),
                size: 9,
            }),
            Item::File(FileStart {
                component: String::new(),
                id: "id".into(),
                content_type: None,
                size: 0,
            }),
            Item::FileData(vec![0, 1, 2]),
            Item::FileEnd { sha256: [7; 32] },
            Item::Done(Totals {
                tables: 1,
                documents: 2,
                document_bytes: 3,
                files: 4,
                file_bytes: 5,
            }),
        ]
    }

    #[test]
    fn items_round_trip_with_exact_lengths() {
        for item in samples() {
            let mut out = Vec::new();
            item.encode(&mut out);
            assert_eq!(out.len(), item.encoded_len(), "{item:?}");
            let mut pos = 0;
            assert_eq!(Item::decode(&out, &mut pos).unwrap(), item);
            assert_eq!(pos, out.len());
            // Every proper prefix is malformed, never a panic.
            for cut in 0..out.len() {
                let mut pos = 0;
                assert!(Item::decode(&out[..cut], &mut pos).is_err());
            }
        }
    }

    #[test]
    fn bad_bytes_are_named() {
        let mut pos = 0;
        assert_eq!(Item::decode(&[99], &mut pos), Err(ItemError::Unknown(99)));
        let mut empty = Vec::new();
        Item::FileData(Vec::new()).encode(&mut empty);
        assert_eq!(
            Item::decode(&empty, &mut pos),
            Err(ItemError::Malformed("empty data"))
        );
    }

    #[test]
    fn table_enum_bytes_are_checked() {
        let mut table = Vec::new();
        samples()[1].encode(&mut table);
        // Tag, "a/b", "users": the number source byte, then the rules byte.
        let source_at = 1 + 4 + 3 + 4 + 5;
        assert_eq!(table[source_at..source_at + 2], [1, 1]);
        for (at, byte, reason) in [
            (source_at, 4, "unknown number source"),
            (source_at + 1, 2, "unknown value rules"),
            (source_at + 1, 0xff, "unknown value rules"),
        ] {
            let mut bad = table.clone();
            bad[at] = byte;
            let mut pos = 0;
            assert_eq!(
                Item::decode(&bad, &mut pos),
                Err(ItemError::Malformed(reason))
            );
            assert_eq!(pos, 0);
        }
        let mut plain = table.clone();
        plain[source_at + 1] = 0;
        let mut pos = 0;
        let Ok(Item::Table(decl)) = Item::decode(&plain, &mut pos) else {
            panic!("a Plain table decodes");
        };
        assert_eq!(decl.rules, ValueRules::Plain);
    }
}

//! The order rules and running counts of a stream, shared by the encoder
//! (which refuses to write a stream that breaks them) and the decoder
//! (which refuses to read one).
//!
//! Rules: the header comes first and once; a table is declared once (by
//! component and name) before its documents and ended once, after them; a
//! line split across `Documents` items is continued by the next item; a
//! storage file is sent once (by component and id), its data items follow
//! its start and add up to its size; `Done` comes last, after every table is
//! ended and every file is complete, and carries the actual totals.

use std::collections::HashSet;

use sha2::{Digest, Sha256};

use super::item::{FileStart, Header, Item, TableDecl, TableEnd, Totals};
use super::FORMAT_VERSION;
use crate::crc32::Crc32;

/// Why an item may not come next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Violation {
    /// The item breaks an order rule.
    Order(String),
    /// A count, size or checksum does not match the data sent.
    Mismatch(String),
}

#[derive(Debug, Clone)]
struct TableState {
    documents: u64,
    bytes: u64,
    crc: Crc32,
    ended: bool,
}

#[derive(Debug, Clone)]
struct FileState {
    size: u64,
    received: u64,
    sha: Sha256,
}

/// Where a stream is, item by item.
#[derive(Debug, Clone, Default)]
pub(crate) struct StreamState {
    header: bool,
    done: bool,
    tables: Vec<TableState>,
    /// The table whose last line is not yet terminated.
    open_line: Option<u32>,
    file: Option<FileState>,
    totals: Totals,
    /// Tables declared and files started, by component and name or id.
    table_names: HashSet<(String, String)>,
    file_ids: HashSet<(String, String)>,
    /// Tables declared and not yet ended.
    open_tables: usize,
}

fn order(reason: impl Into<String>) -> Violation {
    Violation::Order(reason.into())
}

impl StreamState {
    /// True once `Done` is accepted.
    pub(crate) fn is_done(&self) -> bool {
        self.done
    }

    /// The totals so far.
    pub(crate) fn totals(&self) -> Totals {
        self.totals
    }

    /// Documents sent so far in a table (0 for an undeclared one).
    pub(crate) fn documents_in(&self, table: u32) -> u64 {
        self.tables.get(table as usize).map_or(0, |t| t.documents)
    }

    /// Checks and applies one item.
    pub(crate) fn apply(&mut self, item: &Item) -> Result<(), Violation> {
        match item {
            Item::Header(h) => self.header(h),
            Item::Table(t) => self.table(t).map(|_| ()),
            Item::Documents { table, data } => self.documents(*table, data),
            Item::TableEnd(e) => self.check_table_end(e),
            Item::File(f) => self.file(f),
            Item::FileData(data) => self.file_data(data),
            Item::FileEnd { sha256 } => self.check_file_end(sha256),
            Item::Done(t) => self.check_done(t),
        }
    }

    /// Everything but the header must come after it and before `Done`, and
    /// nothing but the continuation of a split line or of a file's data may
    /// come in between.
    fn expect_between(&self, what: &str) -> Result<(), Violation> {
        if !self.header {
            return Err(order(format!("{what} before the header")));
        }
        if self.done {
            return Err(order(format!("{what} after Done")));
        }
        if let Some(table) = self.open_line {
            return Err(order(format!(
                "{what} while a line of table {table} is unfinished"
            )));
        }
        if self.file.is_some() {
            return Err(order(format!("{what} inside a storage file")));
        }
        Ok(())
    }

    fn header(&mut self, h: &Header) -> Result<(), Violation> {
        if self.header {
            return Err(order("a second header"));
        }
        if h.version != FORMAT_VERSION {
            return Err(order(format!(
                "header version {} in a version {FORMAT_VERSION} stream",
                h.version
            )));
        }
        self.header = true;
        Ok(())
    }

    /// Declares a table and returns its index.
    pub(crate) fn table(&mut self, t: &TableDecl) -> Result<u32, Violation> {
        self.expect_between("a table declaration")?;
        if !self.file_ids.is_empty() {
            return Err(order(format!(
                "table {} declared after a storage file: tables come first",
                t.name
            )));
        }
        if t.number == Some(0) {
            return Err(order("table number 0"));
        }
        if !self
            .table_names
            .insert((t.component.clone(), t.name.clone()))
        {
            return Err(order(format!(
                "table {} of component '{}' is declared twice",
                t.name, t.component
            )));
        }
        let index = u32::try_from(self.tables.len())
            .ok()
            .filter(|&i| i < u32::MAX)
            .ok_or_else(|| order("too many tables"))?;
        self.tables.push(TableState {
            documents: 0,
            bytes: 0,
            crc: Crc32::new(),
            ended: false,
        });
        self.totals.tables += 1;
        self.open_tables += 1;
        Ok(index)
    }

    fn open_table(&mut self, table: u32, what: &str) -> Result<&mut TableState, Violation> {
        match self.tables.get_mut(table as usize) {
            None => Err(order(format!("{what} of undeclared table {table}"))),
            Some(t) if t.ended => Err(order(format!("{what} of ended table {table}"))),
            Some(t) => Ok(t),
        }
    }

    /// Adds document data (any split of the table's newline-terminated lines).
    pub(crate) fn documents(&mut self, table: u32, data: &[u8]) -> Result<(), Violation> {
        match self.open_line {
            Some(open) if open == table => {}
            _ => self.expect_between("documents")?,
        }
        let state = self.open_table(table, "documents")?;
        let lines = data.iter().filter(|&&b| b == b'\n').count() as u64;
        state.documents += lines;
        state.bytes += data.len() as u64;
        state.crc.update(data);
        self.totals.documents += lines;
        self.totals.document_bytes += data.len() as u64;
        self.open_line = (data.last() != Some(&b'\n')).then_some(table);
        Ok(())
    }

    /// Ends a table and returns its counts.
    pub(crate) fn end_table(&mut self, table: u32) -> Result<TableEnd, Violation> {
        self.expect_between("a table end")?;
        let state = self.open_table(table, "the end")?;
        state.ended = true;
        let end = TableEnd {
            table,
            documents: state.documents,
            bytes: state.bytes,
            crc32: state.crc.value(),
        };
        self.open_tables -= 1;
        Ok(end)
    }

    fn check_table_end(&mut self, sent: &TableEnd) -> Result<(), Violation> {
        let actual = self.end_table(sent.table)?;
        if *sent != actual {
            return Err(Violation::Mismatch(format!(
                "table {} ends with {} documents, {} bytes, CRC32 {:08x}; received {}, {}, {:08x}",
                sent.table,
                sent.documents,
                sent.bytes,
                sent.crc32,
                actual.documents,
                actual.bytes,
                actual.crc32
            )));
        }
        Ok(())
    }

    /// Starts a storage file.
    pub(crate) fn file(&mut self, f: &FileStart) -> Result<(), Violation> {
        self.expect_between("a storage file")?;
        // Every `_storage` row is in before any file, as Convex reads them.
        if self.open_tables > 0 {
            return Err(order(format!(
                "stored file {} before every table is ended: files come after the tables",
                f.id
            )));
        }
        if !self.file_ids.insert((f.component.clone(), f.id.clone())) {
            return Err(order(format!(
                "stored file {} of component '{}' is sent twice",
                f.id, f.component
            )));
        }
        self.file = Some(FileState {
            size: f.size,
            received: 0,
            sha: Sha256::new(),
        });
        self.totals.files += 1;
        Ok(())
    }

    /// Adds data to the open storage file.
    pub(crate) fn file_data(&mut self, data: &[u8]) -> Result<(), Violation> {
        let Some(file) = &mut self.file else {
            return Err(order("file data outside a storage file"));
        };
        let received = file.received + data.len() as u64;
        if received > file.size {
            return Err(Violation::Mismatch(format!(
                "storage file of {} bytes receives {received}",
                file.size
            )));
        }
        file.received = received;
        file.sha.update(data);
        self.totals.file_bytes += data.len() as u64;
        Ok(())
    }

    /// Completes the open storage file and returns its SHA-256.
    pub(crate) fn end_file(&mut self) -> Result<[u8; 32], Violation> {
        let Some(file) = self.file.take() else {
            return Err(order("file end outside a storage file"));
        };
        if file.received != file.size {
            return Err(Violation::Mismatch(format!(
                "storage file of {} bytes ends after {}",
                file.size, file.received
            )));
        }
        Ok(file.sha.finalize().into())
    }

    fn check_file_end(&mut self, sent: &[u8; 32]) -> Result<(), Violation> {
        let actual = self.end_file()?;
        if *sent != actual {
            return Err(Violation::Mismatch(
                "storage file SHA-256 does not match its data".into(),
            ));
        }
        Ok(())
    }

    /// Completes the stream and returns the actual totals.
    pub(crate) fn done(&mut self) -> Result<Totals, Violation> {
        self.expect_between("Done")?;
        if let Some(table) = self.tables.iter().position(|t| !t.ended) {
            return Err(order(format!("Done before table {table} is ended")));
        }
        self.done = true;
        Ok(self.totals)
    }

    fn check_done(&mut self, sent: &Totals) -> Result<(), Violation> {
        let actual = self.done()?;
        if *sent != actual {
            return Err(Violation::Mismatch(format!(
                "Done says {sent}; received {actual}"
            )));
        }
        Ok(())
    }
}

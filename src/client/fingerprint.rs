//! What an import's label says of the file it was started with, so that a
//! resumed upload can refuse another file before it sends anything.
//!
//! A new import's label is `name (size bytes, fingerprint hex)`, where the
//! fingerprint is the first 16 bytes of the SHA-256 of the file's first and
//! last MiB, as the web page computes it (`www/app.js`, whose labels are
//! `size-lastModified-hex`, then ` table NAME` for a table file imported as
//! table NAME). Labels of older clients, `name (size bytes)`,
//! say only the name and size. A file that differs only in the middle
//! passes this check; packing then refuses it before a frame is sent, when
//! its first frames are not the import's
//! ([`EncoderConfig::resume_crc32`](crate::migration::EncoderConfig::resume_crc32)).

use sha2::{Digest, Sha256};

/// The bytes hashed from each end of a file.
pub const FINGERPRINT_SPAN: u64 = 1 << 20;

/// Longest label an import takes, in bytes (the server refuses longer ones).
pub const MAX_LABEL_LEN: usize = 256;

/// A file as an import's label records it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileIdentity {
    /// The file's name, when the label has it (shortened to fit a label).
    pub name: Option<String>,
    /// Size in bytes.
    pub size: u64,
    /// The fingerprint, 32 hex digits, when the label has one.
    pub fingerprint: Option<String>,
}

impl FileIdentity {
    /// A file of `size` bytes named `name`, whose first and last
    /// [`FINGERPRINT_SPAN`] bytes are `head` and `tail` (the same bytes
    /// twice when the file is smaller).
    pub fn of(name: &str, size: u64, head: &[u8], tail: &[u8]) -> Self {
        let mut sha = Sha256::new();
        sha.update(head);
        sha.update(tail);
        let digest = sha.finalize();
        let hex = crate::hex(&digest[..16]);
        FileIdentity {
            name: Some(name.to_owned()),
            size,
            fingerprint: Some(hex),
        }
    }

    /// The label of a new import: `name (size bytes, fingerprint hex)`, the
    /// name shortened to keep it within [`MAX_LABEL_LEN`] bytes.
    pub fn label(&self) -> String {
        let tail = match &self.fingerprint {
            Some(hex) => format!(" ({} bytes, fingerprint {hex})", self.size),
            None => format!(" ({} bytes)", self.size),
        };
        let mut name = self.name.clone().unwrap_or_default();
        if name.len() + tail.len() > MAX_LABEL_LEN {
            let mut end = MAX_LABEL_LEN - tail.len() - '…'.len_utf8();
            while !name.is_char_boundary(end) {
                end -= 1;
            }
            name.truncate(end);
            name.push('…');
        }
        name + &tail
    }

    /// What a label says of its file: one made by [`FileIdentity::label`],
    /// an older client's `name (size bytes)`, or the web page's
    /// `size-lastModified-hex` (a table file's followed by ` table NAME`);
    /// `None` for any other.
    pub fn from_label(label: &str) -> Option<Self> {
        if let Some((name, rest)) = label.strip_suffix(')').and_then(|l| l.rsplit_once(" (")) {
            let (size, fingerprint) = match rest.split_once(" bytes, fingerprint ") {
                Some((size, hex)) => (size, Some(hex)),
                None => (rest.strip_suffix(" bytes")?, None),
            };
            return Some(FileIdentity {
                name: Some(name.to_owned()),
                size: size.parse().ok()?,
                fingerprint: fingerprint
                    .filter(|hex| is_fingerprint(hex))
                    .map(str::to_owned),
            });
        }
        let file = label
            .split_once(" table ")
            .map_or(label, |(file, _table)| file);
        let mut parts = file.splitn(3, '-');
        let (size, modified, hex) = (parts.next()?, parts.next()?, parts.next()?);
        modified.parse::<u64>().ok()?;
        Some(FileIdentity {
            name: None,
            size: size.parse().ok()?,
            // Outside a secure context the page hashes with FNV-1a: not comparable.
            fingerprint: is_fingerprint(hex).then(|| hex.to_owned()),
        })
    }

    /// Whether this file may be the one `recorded` was made of: the same
    /// size, and the same fingerprint when both have one, else the same name
    /// when the label has one.
    pub fn matches(&self, recorded: &FileIdentity) -> bool {
        self.size == recorded.size
            && match (&self.fingerprint, &recorded.fingerprint) {
                (Some(a), Some(b)) => a == b,
                _ => recorded.name.is_none() || self.name == recorded.name,
            }
    }
}

impl std::fmt::Display for FileIdentity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.name {
            Some(name) => write!(f, "{name} ({} bytes", self.size)?,
            None => write!(f, "a file of {} bytes", self.size)?,
        }
        match (&self.fingerprint, &self.name) {
            (Some(hex), Some(_)) => write!(f, ", fingerprint {hex})"),
            (Some(hex), None) => write!(f, ", fingerprint {hex}"),
            (None, Some(_)) => write!(f, ")"),
            (None, None) => Ok(()),
        }
    }
}

/// 32 lowercase hex digits.
fn is_fingerprint(hex: &str) -> bool {
    hex.len() == 32 && hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_round_trip_and_old_and_web_labels_are_read() {
        let file = FileIdentity::of("snapshot (2).zip", 5, b"hello", b"hello");
        let hex = file.fingerprint.clone().unwrap();
        assert_eq!(hex.len(), 32);
        let label = file.label();
        assert_eq!(
            label,
            format!("snapshot (2).zip (5 bytes, fingerprint {hex})")
        );
        assert_eq!(FileIdentity::from_label(&label), Some(file.clone()));
        assert_eq!(file.to_string(), label);

        let old = FileIdentity::from_label("snapshot (2).zip (5 bytes)").unwrap();
        assert_eq!(
            (old.name.as_deref(), old.size),
            (Some("snapshot (2).zip"), 5)
        );
        assert!(file.matches(&old));
        let renamed = FileIdentity::from_label("other.zip (5 bytes)").unwrap();
        assert!(!file.matches(&renamed));

        let web = FileIdentity::from_label(&format!("5-1700000000000-{hex}")).unwrap();
        assert!(file.matches(&web));
        assert_eq!(
            web.to_string(),
            format!("a file of 5 bytes, fingerprint {hex}")
        );
        // A table file's, which names the table it is imported as.
        let table =
            FileIdentity::from_label(&format!("5-1700000000000-{hex} table people")).unwrap();
        assert_eq!(table, web);
        let fnv = FileIdentity::from_label("5-1700000000000-0badf00d").unwrap();
        assert_eq!(fnv.fingerprint, None);
        assert!(file.matches(&fnv));

        for other in ["busy", "", "x (y bytes)", "5-x-abc"] {
            assert_eq!(FileIdentity::from_label(other), None, "{other}");
        }
    }

    #[test]
    fn another_file_does_not_match() {
        let file = FileIdentity::of("a.zip", 5, b"hello", b"hello");
        let same_size = FileIdentity::of("a.zip", 5, b"jello", b"jello");
        assert!(!same_size.matches(&file));
        let other_size = FileIdentity::of("a.zip", 6, b"hello!", b"hello!");
        assert!(!other_size.matches(&file));
        assert!(file.matches(&file));
    }

    #[test]
    fn a_long_name_is_shortened_to_fit_a_label() {
        let file = FileIdentity::of(&"é".repeat(200), 1 << 40, b"x", b"x");
        let label = file.label();
        assert!(label.len() <= MAX_LABEL_LEN, "{}", label.len());
        let read = FileIdentity::from_label(&label).unwrap();
        assert!(file.matches(&read));
    }
}

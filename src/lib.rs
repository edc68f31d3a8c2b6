//! snappack checks Convex snapshot archives with Convex's exact import
//! semantics where the archive already is (browser, Node, command line),
//! repackages them into checksummed frames, and imports them on a server
//! that re-checks every frame with this same code.
//!
//! The core is sans-IO: it reads through `std::io::Read + Seek` or is fed
//! byte slices, and returns values. Drivers (CLI, server, WebAssembly) live
//! at the edges.
#![warn(missing_docs)]
pub mod archive;
pub mod client;
pub mod convex;
pub mod crc32;
pub mod gen;
pub mod migration;
pub mod report;
#[cfg(not(target_arch = "wasm32"))]
pub mod server;
pub mod validate;
#[cfg(target_arch = "wasm32")]
mod wasm;

pub use archive::Format;
pub use report::{Code, Finding, NumberSource, Report, TableSummary};
pub use validate::{validate, ImportMode, Options, Progress};

/// Lowercase hex of bytes: digests, tokens and UUIDs as text.
pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

//! The Convex data model as far as imports need it: document ids, names,
//! value rules and limits.
pub mod fast;
pub mod id;
pub mod legacy;
pub mod names;
pub mod value;

pub use id::{DocumentId, IdDecodeError};

/// At most this many user tables in a deployment (`TooManyTables`).
pub const MAX_USER_TABLES: usize = 10_000;

//! The Convex data model as far as imports need it: document ids, names,
//! value rules and limits.
pub mod id;
pub mod legacy;
pub mod names;
pub mod value;

pub use id::{DocumentId, IdDecodeError};

//! The import server (native only): receives the migration-item stream over
//! HTTP, re-checks every frame with the core, and imports the snapshot into
//! SQLite or PostgreSQL with Convex's import modes.

pub mod store;

//! The database layer both products share: the `database:` settings of a configuration file
//! ([`DatabaseSettings`], with each product's defaults from a [`DatabaseProfile`]) and one
//! migration runner for SQLite and PostgreSQL ([`migrate`]): ordered, versioned, embedded
//! migrations, applied once even when several instances start together, and a refusal to open a
//! schema newer than the binary ([`MigrationError::NewerSchema`]).
//!
//! It knows no product: each product brings its own plans, lock keys and profile.

pub mod migrate;
mod settings;

pub use migrate::{Migration, MigrationError, PgScope};
pub use settings::{DatabaseProfile, DatabaseSettings, MAX_CONNECTIONS_LIMIT, Target};

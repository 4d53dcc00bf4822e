//! Black-box tests of the thor API, each on SQLite and (with THOR_TEST_POSTGRES) PostgreSQL.

mod audit_chain;
mod auth;
/// The decompression bombs of `backend/tests/decode_memory.rs`: one generator for both.
#[allow(dead_code)]
#[path = "../../../backend/tests/support/bombs.rs"]
mod bombs;
mod briefing;
mod cases;
mod cursor_race;
mod demo;
mod field;
mod holes;
mod openapi;
mod ops;
mod photos;
mod push_hostile;
mod recovery;
mod reference;
mod register;
mod rejections;
mod retention;
mod role_matrix;
mod sync;
mod sync_clients;
mod sync_doc;
mod sync_model;
mod violations;
mod visibility;

/// The recipient, purpose and legal basis an export of Wpg data states for the disclosure
/// register (appended to an export's query).
pub const PROVISION: &str =
    "&recipient=eigen%20team&purpose=maandrapportage&legal_basis=Wpg%20art.%208";

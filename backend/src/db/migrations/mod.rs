//! Schema migrations, one per file; the file name is the migration's name in `seaql_migrations`.
//! The same migrations run on SQLite and PostgreSQL.

use sea_orm_migration::prelude::*;

mod m20261126_000001_foundation;
mod m20261126_000002_sync;
mod m20261126_000003_photos;
mod m20261126_000004_field_records;
mod m20261126_000005_briefing;
mod m20261126_000006_briefing_docs;
mod m20261126_000007_pull_indexes;
mod m20261126_000008_redundant_index;
mod m20261202_000009_creation;
mod m20261202_000010_signoff_per_team;
mod m20261203_000011_accountability;
mod m20261207_000012_retention;
mod m20261208_000013_cases;

pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(m20261126_000001_foundation::Migration),
            Box::new(m20261126_000002_sync::Migration),
            Box::new(m20261126_000003_photos::Migration),
            Box::new(m20261126_000004_field_records::Migration),
            Box::new(m20261126_000005_briefing::Migration),
            Box::new(m20261126_000006_briefing_docs::Migration),
            Box::new(m20261126_000007_pull_indexes::Migration),
            Box::new(m20261126_000008_redundant_index::Migration),
            Box::new(m20261202_000009_creation::Migration),
            Box::new(m20261202_000010_signoff_per_team::Migration),
            Box::new(m20261203_000011_accountability::Migration),
            Box::new(m20261207_000012_retention::Migration),
            Box::new(m20261208_000013_cases::Migration),
        ]
    }
}

/// Makes a table append-only: the database itself refuses UPDATE and DELETE on it.
async fn append_only(m: &SchemaManager<'_>, table: &str) -> Result<(), DbErr> {
    use sea_orm::{ConnectionTrait, DbBackend};
    let db = m.get_connection();
    match m.get_database_backend() {
        DbBackend::Sqlite => {
            for (op, name) in [("UPDATE", "no_update"), ("DELETE", "no_delete")] {
                db.execute_unprepared(&format!(
                    "CREATE TRIGGER {table}_{name} BEFORE {op} ON {table} \
                     BEGIN SELECT RAISE(ABORT, '{table} is append-only'); END;"
                ))
                .await?;
            }
        }
        DbBackend::Postgres => {
            db.execute_unprepared(&format!(
                "CREATE FUNCTION {table}_append_only() RETURNS trigger LANGUAGE plpgsql AS \
                 $$ BEGIN RAISE EXCEPTION '{table} is append-only'; END $$;"
            ))
            .await?;
            db.execute_unprepared(&format!(
                "CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE ON {table} \
                 FOR EACH ROW EXECUTE FUNCTION {table}_append_only();"
            ))
            .await?;
        }
        _ => {}
    }
    Ok(())
}

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
        ]
    }
}

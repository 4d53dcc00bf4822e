//! Who created a synced record, and at which sequence number: `created_seq` and
//! `created_device` on every synced table.
//!
//! The sync engine needs both. A pull lists a record in `created` only when the device has never
//! had it (created after the device's cursor, by another device), so WatermelonDB works with its
//! default `sendCreatedAsUpdated: false`. A push of a record the device created itself and never
//! pulled back (its `base_rev` is null) is merged against the creation: only writes by other
//! devices since then are concurrent, so "create → sync → submit → sync" on one phone is never a
//! conflict. Rows from before this migration have both null (unknown: the engine then falls back
//! to the creating user).

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

/// Every table the sync engine writes.
const TABLES: &[&str] = &[
    "violation",
    "photo",
    "patrol_round",
    "track_segment",
    "youth_group",
    "youth_observation",
    "youth_person",
    "incident",
    "briefing_note",
    "briefing_doc",
];

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        for t in TABLES {
            // SQLite adds one column per ALTER TABLE.
            m.alter_table(
                Table::alter()
                    .table(*t)
                    .add_column(big_integer_null("created_seq"))
                    .to_owned(),
            )
            .await?;
            m.alter_table(
                Table::alter()
                    .table(*t)
                    .add_column(string_null("created_device"))
                    .to_owned(),
            )
            .await?;
        }
        Ok(())
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        for t in TABLES {
            for c in ["created_device", "created_seq"] {
                m.alter_table(Table::alter().table(*t).drop_column(c).to_owned())
                    .await?;
            }
        }
        Ok(())
    }
}

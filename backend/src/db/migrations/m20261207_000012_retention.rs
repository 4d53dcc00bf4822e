//! Retention (Wpg art. 8 and 14, AVG art. 5(1)(e)): the stage of each record, legal holds,
//! the runs and what they destroyed.
//!
//! - `retention_stage` on the report table and on every field-record table: 0 active,
//!   1 restricted (beperkt), 2 removed (verwijderd). The retention run sets it from the record's
//!   dates and the configured terms; a destroyed record has no row left.
//! - `legal_hold`: a record kept at its stage while a hold is open (objection, appeal, criminal
//!   case), with who placed and lifted it and why.
//! - `retention_run`: each run, what it changed per kind and stage (append-only).
//! - `destruction_record`: what is left of a destroyed record: its kind, id, team, dates and the
//!   hash of its content and of each photo's bytes (append-only).
//! - `round_stats`: a round's statistics, kept when its raw GPS fixes are destroyed before it.

use sea_orm::{ConnectionTrait, DbBackend};
use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

/// The tables whose rows carry a stage: the reports and every field-record table.
const STAGED: [&str; 9] = [
    "violation",
    "patrol_round",
    "track_segment",
    "youth_group",
    "youth_observation",
    "youth_person",
    "incident",
    "briefing_note",
    "briefing_doc",
];

const APPEND_ONLY: [&str; 2] = ["retention_run", "destruction_record"];

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        for t in STAGED {
            m.alter_table(
                Table::alter()
                    .table(t)
                    .add_column(small_integer("retention_stage").default(0))
                    .to_owned(),
            )
            .await?;
        }
        m.create_table(
            Table::create()
                .table("legal_hold")
                .col(uuid("id").primary_key())
                .col(string("table_name"))
                .col(uuid("record_id"))
                .col(uuid_null("team_id"))
                .col(string("reason"))
                .col(uuid_null("placed_by"))
                .col(string("placed_by_name"))
                .col(timestamp_with_time_zone("placed_at"))
                .col(uuid_null("lifted_by"))
                .col(string_null("lifted_by_name"))
                .col(timestamp_with_time_zone_null("lifted_at"))
                .col(string_null("lift_reason"))
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("ix_legal_hold_record")
                .table("legal_hold")
                .col("table_name")
                .col("record_id")
                .to_owned(),
        )
        .await?;
        m.create_table(
            Table::create()
                .table("retention_run")
                .col(uuid("id").primary_key())
                .col(timestamp_with_time_zone("started_at"))
                .col(timestamp_with_time_zone("finished_at"))
                .col(timestamp_with_time_zone("as_of"))
                .col(string("actor"))
                .col(string("terms"))
                .col(json("changes"))
                .to_owned(),
        )
        .await?;
        m.create_table(
            Table::create()
                .table("destruction_record")
                .col(uuid("id").primary_key())
                .col(uuid("run_id"))
                .col(timestamp_with_time_zone("destroyed_at"))
                .col(string("table_name"))
                .col(uuid("record_id"))
                .col(uuid_null("team_id"))
                .col(timestamp_with_time_zone("occurred_at"))
                .col(string("regime"))
                .col(string("content_sha256"))
                .col(json("photos"))
                .to_owned(),
        )
        .await?;
        m.create_table(
            Table::create()
                .table("round_stats")
                .col(uuid("round_id").primary_key())
                .col(json("stats"))
                .col(timestamp_with_time_zone("kept_at"))
                .to_owned(),
        )
        .await?;
        m.create_table(
            Table::create()
                .table("retention_lease")
                .col(integer("id").primary_key())
                .col(string("holder"))
                .col(timestamp_with_time_zone("until"))
                .to_owned(),
        )
        .await?;
        for table in APPEND_ONLY {
            super::append_only(m, table).await?;
        }
        Ok(())
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        for table in ["legal_hold", "retention_lease", "round_stats"]
            .into_iter()
            .chain(APPEND_ONLY)
        {
            m.drop_table(Table::drop().table(table).to_owned()).await?;
        }
        for table in APPEND_ONLY {
            if m.get_database_backend() == DbBackend::Postgres {
                m.get_connection()
                    .execute_unprepared(&format!("DROP FUNCTION IF EXISTS {table}_append_only()"))
                    .await?;
            }
        }
        for t in STAGED {
            m.alter_table(
                Table::alter()
                    .table(t)
                    .drop_column("retention_stage")
                    .to_owned(),
            )
            .await?;
        }
        Ok(())
    }
}

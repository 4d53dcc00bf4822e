//! Field records of the other kinds of field work: patrol rounds and their GPS track segments,
//! youth groups, youth-group observations, youth persons (Wpg: a table of its own) and
//! incidents. One layout for all: the record's synced fields as a JSON document, with the
//! columns the server filters on (team, parent, time) beside it.

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

pub const TABLES: &[&str] = &[
    "patrol_round",
    "track_segment",
    "youth_group",
    "youth_observation",
    "youth_person",
    "incident",
];

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        for t in TABLES {
            m.create_table(
                Table::create()
                    .table(*t)
                    .col(pk_uuid("id"))
                    .col(uuid_null("team_id"))
                    .col(uuid_null("parent_id"))
                    .col(timestamp_with_time_zone("occurred_at"))
                    .col(json("data"))
                    .col(uuid("created_by"))
                    .col(timestamp_with_time_zone("created_at"))
                    .col(timestamp_with_time_zone("updated_at"))
                    .col(string("create_hash"))
                    .col(big_integer("server_rev"))
                    .col(json("field_revs"))
                    .col(big_integer_null("deleted_seq"))
                    .col(string_null("last_device_id"))
                    .to_owned(),
            )
            .await?;
            m.create_index(
                Index::create()
                    .name(format!("ix_{t}_rev"))
                    .table(*t)
                    .col("server_rev")
                    .to_owned(),
            )
            .await?;
            m.create_index(
                Index::create()
                    .name(format!("ix_{t}_parent"))
                    .table(*t)
                    .col("parent_id")
                    .to_owned(),
            )
            .await?;
            m.create_index(
                Index::create()
                    .name(format!("ix_{t}_time"))
                    .table(*t)
                    .col("team_id")
                    .col("occurred_at")
                    .to_owned(),
            )
            .await?;
        }
        m.create_table(
            Table::create()
                .table("violation_duplicate")
                .col(uuid("violation_id"))
                .col(uuid("duplicate_of"))
                .col(uuid("marked_by"))
                .col(timestamp_with_time_zone("marked_at"))
                .primary_key(Index::create().col("violation_id").col("duplicate_of"))
                .to_owned(),
        )
        .await?;
        m.alter_table(
            Table::alter()
                .table("violation")
                .add_column(uuid_null("round_id"))
                .to_owned(),
        )
        .await?;
        Ok(())
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.alter_table(
            Table::alter()
                .table("violation")
                .drop_column("round_id")
                .to_owned(),
        )
        .await?;
        m.drop_table(Table::drop().table("violation_duplicate").to_owned())
            .await?;
        for t in TABLES {
            m.drop_table(Table::drop().table(*t).to_owned()).await?;
        }
        Ok(())
    }
}

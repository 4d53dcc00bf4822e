//! The briefing: the team lead's attention points (a synced field record) and sign-offs (a
//! frozen copy of the briefing as signed).

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            Table::create()
                .table("briefing_note")
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
                .name("ix_briefing_note_rev")
                .table("briefing_note")
                .col("server_rev")
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("ix_briefing_note_time")
                .table("briefing_note")
                .col("team_id")
                .col("occurred_at")
                .to_owned(),
        )
        .await?;
        m.create_table(
            Table::create()
                .table("briefing_signoff")
                .col(string("date"))
                .col(string("shift"))
                .col(uuid_null("team_id"))
                .col(uuid("signed_by"))
                .col(string("signed_by_name"))
                .col(timestamp_with_time_zone("signed_at"))
                .col(json("snapshot"))
                .primary_key(Index::create().col("date").col("shift"))
                .to_owned(),
        )
        .await?;
        Ok(())
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.drop_table(Table::drop().table("briefing_signoff").to_owned())
            .await?;
        m.drop_table(Table::drop().table("briefing_note").to_owned())
            .await
    }
}

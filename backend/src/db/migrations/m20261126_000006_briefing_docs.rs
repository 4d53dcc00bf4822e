//! Signed briefings as synced documents, so phones read them offline.

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            Table::create()
                .table("briefing_doc")
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
                .name("ix_briefing_doc_rev")
                .table("briefing_doc")
                .col("server_rev")
                .to_owned(),
        )
        .await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.drop_table(Table::drop().table("briefing_doc").to_owned())
            .await
    }
}

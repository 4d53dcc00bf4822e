//! Offline sync: revision history (the base of a three-way merge), conflict records, stored push
//! responses (Idempotency-Key), devices with their clock offset, and the tombstone horizon.

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.alter_table(
            Table::alter()
                .table("sync_space")
                .add_column(big_integer("purged_seq").default(0))
                .to_owned(),
        )
        .await?;
        m.create_table(
            Table::create()
                .table("record_history")
                .col(string("table_name"))
                .col(string("record_id"))
                .col(big_integer("rev"))
                .col(json("snapshot"))
                .col(timestamp_with_time_zone("at"))
                .primary_key(
                    Index::create()
                        .col("table_name")
                        .col("record_id")
                        .col("rev"),
                )
                .to_owned(),
        )
        .await?;
        m.create_table(
            Table::create()
                .table("sync_conflict")
                .col(pk_uuid("id"))
                .col(string("table_name"))
                .col(string("record_id"))
                .col(string_null("field"))
                .col(string("kind"))
                .col(string("policy"))
                .col(json_null("base_value"))
                .col(json_null("server_value"))
                .col(json_null("client_value"))
                .col(json_null("applied_value"))
                .col(big_integer_null("base_rev"))
                .col(big_integer_null("server_rev"))
                .col(uuid_null("team_id"))
                .col(uuid_null("user_id"))
                .col(string_null("device_id"))
                .col(text_null("detail"))
                .col(timestamp_with_time_zone("created_at"))
                .col(string("status"))
                .col(timestamp_with_time_zone_null("resolved_at"))
                .col(uuid_null("resolved_by"))
                .col(string_null("resolution"))
                .col(json_null("resolved_value"))
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("ix_sync_conflict_status")
                .table("sync_conflict")
                .col("status")
                .col("team_id")
                .to_owned(),
        )
        .await?;
        m.create_table(
            Table::create()
                .table("sync_push")
                .col(string("idempotency_key"))
                .col(uuid("user_id"))
                .col(string("device_id"))
                .col(string("request_sha256"))
                .col(json("response"))
                .col(timestamp_with_time_zone("created_at"))
                .primary_key(Index::create().col("user_id").col("idempotency_key"))
                .to_owned(),
        )
        .await?;
        m.create_table(
            Table::create()
                .table("sync_device")
                .col(uuid("user_id"))
                .col(string("device_id"))
                .col(string_null("app_version"))
                .col(integer_null("schema_version"))
                .col(big_integer_null("clock_offset_ms"))
                .col(timestamp_with_time_zone_null("last_push_at"))
                .col(timestamp_with_time_zone_null("last_pull_at"))
                .col(big_integer_null("last_pulled_seq"))
                .col(timestamp_with_time_zone_null("window_start"))
                .primary_key(Index::create().col("user_id").col("device_id"))
                .to_owned(),
        )
        .await?;
        for col in [
            json("flags").default("[]").take(),
            big_integer_null("device_clock_offset_ms"),
        ] {
            m.alter_table(Table::alter().table("violation").add_column(col).to_owned())
                .await?;
        }
        Ok(())
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        for col in ["flags", "device_clock_offset_ms"] {
            m.alter_table(
                Table::alter()
                    .table("violation")
                    .drop_column(col)
                    .to_owned(),
            )
            .await?;
        }
        for t in [
            "sync_device",
            "sync_push",
            "sync_conflict",
            "record_history",
        ] {
            m.drop_table(Table::drop().table(t).if_exists().to_owned())
                .await?;
        }
        m.alter_table(
            Table::alter()
                .table("sync_space")
                .drop_column("purged_seq")
                .to_owned(),
        )
        .await
    }
}

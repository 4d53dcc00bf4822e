//! Photos as evidence: the photo record (synced), its resumable upload state and its
//! derivative job, in one row per photo.

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            Table::create()
                .table("photo")
                .col(pk_uuid("id"))
                .col(uuid_null("violation_id"))
                .col(uuid_null("observation_id"))
                .col(uuid_null("team_id"))
                .col(string("sha256"))
                .col(big_integer("size_bytes"))
                .col(string("mime"))
                .col(timestamp_with_time_zone_null("captured_at"))
                .col(double_null("lat"))
                .col(double_null("lon"))
                .col(double_null("accuracy_m"))
                .col(string("upload_state"))
                .col(big_integer("upload_offset").default(0))
                .col(timestamp_with_time_zone_null("upload_expires_at"))
                .col(timestamp_with_time_zone_null("uploaded_at"))
                .col(string_null("format"))
                .col(integer_null("width"))
                .col(integer_null("height"))
                .col(json_null("exif"))
                .col(string("derivative_state"))
                .col(text_null("derivative_error"))
                .col(integer("derive_attempts").default(0))
                .col(timestamp_with_time_zone_null("derive_lease_until"))
                .col(text_null("failure"))
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
                .name("ix_photo_violation")
                .table("photo")
                .col("violation_id")
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("ix_photo_rev")
                .table("photo")
                .col("server_rev")
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("ix_photo_sha")
                .table("photo")
                .col("sha256")
                .col("upload_state")
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("ix_photo_derive")
                .table("photo")
                .col("derivative_state")
                .col("upload_state")
                .to_owned(),
        )
        .await?;
        Ok(())
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.drop_table(Table::drop().table("photo").to_owned()).await
    }
}

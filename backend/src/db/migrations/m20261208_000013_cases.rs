//! Finishing a case: the afdoening the officer chose (`violation.sanction`), the steps the office
//! took on its track (`case_step`), the documents made from the record (`case_document`, each
//! version kept with its hash: a changed record makes a new version, never an overwritten one),
//! the officer's BOA number for those documents (`app_user.boa_number`), and the addresses the
//! Locatieserver gave for positions (`address_cache`), so a document rendered again says the same.
//!
//! The steps and documents go with their report when retention destroys it.

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.alter_table(
            Table::alter()
                .table("violation")
                .add_column(string_null("sanction"))
                .to_owned(),
        )
        .await?;
        m.alter_table(
            Table::alter()
                .table("app_user")
                .add_column(string_null("boa_number"))
                .to_owned(),
        )
        .await?;
        m.create_table(
            Table::create()
                .table("case_step")
                .col(uuid("id").primary_key())
                .col(uuid("violation_id"))
                .col(uuid_null("team_id"))
                .col(string("step"))
                .col(timestamp_with_time_zone("taken_at"))
                .col(uuid("taken_by"))
                .col(string("taken_by_name"))
                .col(string_null("note"))
                // The track's last step: the case is finished (the open list skips it in SQL).
                .col(boolean("closes").default(false))
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("ux_case_step_violation_step")
                .table("case_step")
                .col("violation_id")
                .col("step")
                .unique()
                .to_owned(),
        )
        .await?;
        m.create_table(
            Table::create()
                .table("case_document")
                .col(uuid("id").primary_key())
                .col(uuid("violation_id"))
                .col(uuid_null("team_id"))
                .col(string("kind"))
                .col(integer("version"))
                .col(string("sha256"))
                .col(binary("content"))
                .col(timestamp_with_time_zone("made_at"))
                .col(uuid("made_by"))
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("ux_case_document_version")
                .table("case_document")
                .col("violation_id")
                .col("kind")
                .col("version")
                .unique()
                .to_owned(),
        )
        .await?;
        m.create_table(
            Table::create()
                .table("address_cache")
                .col(integer("lat_e5"))
                .col(integer("lon_e5"))
                .col(string_null("address"))
                .col(double_null("distance_m"))
                .col(timestamp_with_time_zone("looked_up_at"))
                .primary_key(Index::create().col("lat_e5").col("lon_e5"))
                .to_owned(),
        )
        .await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        for t in ["address_cache", "case_document", "case_step"] {
            m.drop_table(Table::drop().table(t).to_owned()).await?;
        }
        m.alter_table(
            Table::alter()
                .table("app_user")
                .drop_column("boa_number")
                .to_owned(),
        )
        .await?;
        m.alter_table(
            Table::alter()
                .table("violation")
                .drop_column("sanction")
                .to_owned(),
        )
        .await
    }
}

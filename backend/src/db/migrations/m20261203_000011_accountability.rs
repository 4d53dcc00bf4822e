//! Accountability: the audit chain's seals (`audit::chain`) and the disclosure register
//! (`audit::register`), both append-only like the audit log itself.

use sea_orm::{ConnectionTrait, DbBackend};
use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

const TABLES: [&str; 2] = ["audit_seal", "disclosure_register"];

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            Table::create()
                .table("audit_seal")
                .col(big_integer("seq").primary_key())
                .col(big_integer_uniq("line_id"))
                .col(string("line_hash"))
                .col(string("chain_hash"))
                .col(timestamp_with_time_zone("sealed_at"))
                .to_owned(),
        )
        .await?;
        m.create_table(
            Table::create()
                .table("disclosure_register")
                .col(uuid("id").primary_key())
                .col(uuid("provision_id"))
                .col(timestamp_with_time_zone("at"))
                .col(uuid_null("actor_user_id"))
                .col(string("actor"))
                .col(string("recipient"))
                .col(string("purpose"))
                .col(string("legal_basis"))
                .col(string("channel"))
                .col(string("subject_kind"))
                .col(string("subject"))
                .col(string("record_type"))
                .col(string("record_id"))
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("ix_disclosure_subject")
                .table("disclosure_register")
                .col("subject_kind")
                .col("subject")
                .col("at")
                .to_owned(),
        )
        .await?;
        for table in TABLES {
            super::append_only(m, table).await?;
        }
        Ok(())
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        for table in TABLES {
            m.drop_table(Table::drop().table(table).to_owned()).await?;
            if m.get_database_backend() == DbBackend::Postgres {
                m.get_connection()
                    .execute_unprepared(&format!("DROP FUNCTION IF EXISTS {table}_append_only()"))
                    .await?;
            }
        }
        Ok(())
    }
}

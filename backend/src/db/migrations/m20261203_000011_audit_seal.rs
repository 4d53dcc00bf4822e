//! The audit chain (`audit::chain`): one seal per audit line, append-only like the log itself.

use sea_orm::{ConnectionTrait, DbBackend};
use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

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
        let db = m.get_connection();
        match m.get_database_backend() {
            DbBackend::Sqlite => {
                db.execute_unprepared(
                    "CREATE TRIGGER audit_seal_no_update BEFORE UPDATE ON audit_seal \
                     BEGIN SELECT RAISE(ABORT, 'audit_seal is append-only'); END;",
                )
                .await?;
                db.execute_unprepared(
                    "CREATE TRIGGER audit_seal_no_delete BEFORE DELETE ON audit_seal \
                     BEGIN SELECT RAISE(ABORT, 'audit_seal is append-only'); END;",
                )
                .await?;
            }
            DbBackend::Postgres => {
                db.execute_unprepared(
                    "CREATE FUNCTION audit_seal_append_only() RETURNS trigger LANGUAGE plpgsql AS \
                     $$ BEGIN RAISE EXCEPTION 'audit_seal is append-only'; END $$;",
                )
                .await?;
                db.execute_unprepared(
                    "CREATE TRIGGER audit_seal_append_only BEFORE UPDATE OR DELETE ON audit_seal \
                     FOR EACH ROW EXECUTE FUNCTION audit_seal_append_only();",
                )
                .await?;
            }
            _ => {}
        }
        Ok(())
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.drop_table(Table::drop().table("audit_seal").to_owned())
            .await?;
        if m.get_database_backend() == DbBackend::Postgres {
            m.get_connection()
                .execute_unprepared("DROP FUNCTION IF EXISTS audit_seal_append_only()")
                .await?;
        }
        Ok(())
    }
}

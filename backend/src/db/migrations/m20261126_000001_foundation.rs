//! The foundation: accounts and device tokens, the audit log, reference data (areas, categories,
//! feitcodes), violation reports, and the sync cursor every write stamps.

use sea_orm::{ConnectionTrait, DbBackend};
use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

fn ts(col: &'static str) -> ColumnDef {
    timestamp_with_time_zone(col)
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        // The sync cursor: one row per organisation (an installation serves one municipality).
        // It starts at 1: WatermelonDB refuses a pull timestamp of 0.
        m.create_table(
            Table::create()
                .table("sync_space")
                .col(integer("id").primary_key())
                .col(big_integer("last_seq").default(1))
                .to_owned(),
        )
        .await?;
        m.exec_stmt(
            Query::insert()
                .into_table("sync_space")
                .columns(["id", "last_seq"])
                .values_panic([1.into(), 1i64.into()])
                .to_owned(),
        )
        .await?;
        m.create_table(
            Table::create()
                .table("sync_change")
                .col(big_integer("seq").primary_key())
                .col(string("table_name"))
                .col(string("record_id"))
                .col(string("op"))
                .col(string_null("device_id"))
                .col(json_null("changed_fields"))
                .col(ts("changed_at"))
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("ix_sync_change_record")
                .table("sync_change")
                .col("table_name")
                .col("record_id")
                .to_owned(),
        )
        .await?;

        m.create_table(
            Table::create()
                .table("team")
                .col(pk_uuid("id"))
                .col(string_uniq("name"))
                .col(ts("created_at"))
                .to_owned(),
        )
        .await?;
        m.create_table(
            Table::create()
                .table("app_user")
                .col(pk_uuid("id"))
                .col(string_uniq("username"))
                .col(string("display_name"))
                .col(text("password_hash"))
                .col(string("role"))
                .col(uuid_null("team_id"))
                .col(boolean("wpg_authorised").default(false))
                .col(boolean("active").default(true))
                .col(boolean("demo").default(false))
                .col(ts("created_at"))
                .col(ts("updated_at"))
                .foreign_key(
                    ForeignKey::create()
                        .name("fk_user_team")
                        .from("app_user", "team_id")
                        .to("team", "id"),
                )
                .to_owned(),
        )
        .await?;
        m.create_table(
            Table::create()
                .table("device_token")
                .col(pk_uuid("id"))
                .col(uuid("user_id"))
                .col(string("device_id"))
                .col(string_uniq("token_hash"))
                .col(ts("created_at"))
                .col(ts("expires_at"))
                .col(timestamp_with_time_zone_null("revoked_at"))
                .col(string_null("revoked_reason"))
                .foreign_key(
                    ForeignKey::create()
                        .name("fk_token_user")
                        .from("device_token", "user_id")
                        .to("app_user", "id"),
                )
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("ix_device_token_user_device")
                .table("device_token")
                .col("user_id")
                .col("device_id")
                .to_owned(),
        )
        .await?;

        m.create_table(
            Table::create()
                .table("audit_log")
                .col(big_pk_auto("id"))
                .col(ts("at"))
                .col(uuid_null("actor_user_id"))
                .col(string_null("actor"))
                .col(string_null("device_id"))
                .col(string("action"))
                .col(string("record_type"))
                .col(string_null("record_id"))
                .col(text_null("reason"))
                .col(json_null("detail"))
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("ix_audit_record")
                .table("audit_log")
                .col("record_type")
                .col("record_id")
                .to_owned(),
        )
        .await?;
        // Append-only, enforced by the database itself, not only by the code.
        let db = m.get_connection();
        match m.get_database_backend() {
            DbBackend::Sqlite => {
                db.execute_unprepared(
                    "CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log \
                     BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END;",
                )
                .await?;
                db.execute_unprepared(
                    "CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log \
                     BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END;",
                )
                .await?;
            }
            DbBackend::Postgres => {
                db.execute_unprepared(
                    "CREATE FUNCTION audit_log_append_only() RETURNS trigger LANGUAGE plpgsql AS \
                     $$ BEGIN RAISE EXCEPTION 'audit_log is append-only'; END $$;",
                )
                .await?;
                db.execute_unprepared(
                    "CREATE TRIGGER audit_log_append_only BEFORE UPDATE OR DELETE ON audit_log \
                     FOR EACH ROW EXECUTE FUNCTION audit_log_append_only();",
                )
                .await?;
            }
            _ => {}
        }

        m.create_table(
            Table::create()
                .table("area")
                .col(string("code").primary_key())
                .col(string("kind"))
                .col(string("name"))
                .col(string_null("wijk_code"))
                .col(text("geometry"))
                .col(string("attribution"))
                .to_owned(),
        )
        .await?;
        m.create_table(
            Table::create()
                .table("category")
                .col(string("code").primary_key())
                .col(string("name"))
                .col(string("description"))
                .col(string("feitcode_domains"))
                .col(integer("sort_order"))
                .to_owned(),
        )
        .await?;
        m.create_table(
            Table::create()
                .table("feitcode")
                .col(string("code"))
                .col(date("valid_from"))
                .col(date_null("valid_until"))
                .col(string("category"))
                .col(string("domain"))
                .col(text("description"))
                .col(string("article"))
                .col(string("track"))
                .col(json("tariffs_eur"))
                .col(string("source"))
                .primary_key(Index::create().col("code").col("valid_from"))
                .to_owned(),
        )
        .await?;

        m.create_table(
            Table::create()
                .table("violation")
                .col(pk_uuid("id"))
                .col(string("category"))
                .col(string_null("feitcode"))
                .col(ts("observed_at"))
                .col(double("lat"))
                .col(double("lon"))
                .col(double("accuracy_m"))
                .col(string("location_source"))
                .col(timestamp_with_time_zone_null("fix_time"))
                .col(string_null("wijk_code"))
                .col(string_null("buurt_code"))
                .col(text("description"))
                .col(string("outcome"))
                .col(string_null("plate"))
                .col(boolean_null("driver_present"))
                .col(json("officer_ids"))
                .col(string("status"))
                .col(text_null("review_note"))
                .col(uuid_null("reviewed_by"))
                .col(timestamp_with_time_zone_null("reviewed_at"))
                .col(uuid_null("team_id"))
                .col(string("privacy_regime"))
                .col(uuid("created_by"))
                .col(ts("created_at"))
                .col(ts("updated_at"))
                .col(string("create_hash"))
                .col(big_integer("server_rev"))
                .col(json("field_revs"))
                .col(big_integer_null("deleted_seq"))
                .col(string_null("last_device_id"))
                .to_owned(),
        )
        .await?;
        for (name, cols) in [
            ("ix_violation_observed", &["observed_at", "id"][..]),
            (
                "ix_violation_team_observed",
                &["team_id", "observed_at"][..],
            ),
            ("ix_violation_server_rev", &["server_rev"][..]),
        ] {
            let mut idx = Index::create();
            idx.name(name).table("violation");
            for c in cols {
                idx.col(*c);
            }
            m.create_index(idx.to_owned()).await?;
        }
        m.create_table(
            Table::create()
                .table("violation_officer")
                .col(uuid("violation_id"))
                .col(uuid("user_id"))
                .primary_key(Index::create().col("violation_id").col("user_id"))
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("ix_violation_officer_user")
                .table("violation_officer")
                .col("user_id")
                .to_owned(),
        )
        .await?;
        Ok(())
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        for t in [
            "violation_officer",
            "violation",
            "feitcode",
            "category",
            "area",
            "audit_log",
            "device_token",
            "app_user",
            "team",
            "sync_change",
            "sync_space",
        ] {
            m.drop_table(Table::drop().table(t).if_exists().to_owned())
                .await?;
        }
        if m.get_database_backend() == DbBackend::Postgres {
            m.get_connection()
                .execute_unprepared("DROP FUNCTION IF EXISTS audit_log_append_only()")
                .await?;
        }
        Ok(())
    }
}

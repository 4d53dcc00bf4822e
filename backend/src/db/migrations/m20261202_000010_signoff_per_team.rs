//! Each team signs its own briefing: the sign-off is keyed by team, date and shift.
//!
//! Before, a sign-off was keyed by date and shift only, so the first team lead to sign froze
//! the briefing for every team (and served it to them). The table is rebuilt with `team_id`
//! in its primary key (SQLite cannot change a primary key in place); existing rows keep their
//! team. A row without a team (it could not be made by a lead with a team) is dropped.

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

const COLS: &str = "date, shift, team_id, signed_by, signed_by_name, signed_at, snapshot";

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            Table::create()
                .table("briefing_signoff_team")
                .col(string("date"))
                .col(string("shift"))
                .col(uuid("team_id"))
                .col(uuid("signed_by"))
                .col(string("signed_by_name"))
                .col(timestamp_with_time_zone("signed_at"))
                .col(json("snapshot"))
                .primary_key(Index::create().col("team_id").col("date").col("shift"))
                .to_owned(),
        )
        .await?;
        let db = m.get_connection();
        db.execute_unprepared(&format!(
            "INSERT INTO briefing_signoff_team ({COLS}) SELECT {COLS} FROM briefing_signoff WHERE team_id IS NOT NULL"
        ))
        .await?;
        m.drop_table(Table::drop().table("briefing_signoff").to_owned())
            .await?;
        m.rename_table(
            Table::rename()
                .table("briefing_signoff_team", "briefing_signoff")
                .to_owned(),
        )
        .await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            Table::create()
                .table("briefing_signoff_day")
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
        // One team's sign-off per day and shift survives the way back (the earliest).
        m.get_connection()
            .execute_unprepared(&format!(
                "INSERT INTO briefing_signoff_day ({COLS}) SELECT {COLS} FROM briefing_signoff s \
                 WHERE NOT EXISTS (SELECT 1 FROM briefing_signoff o WHERE o.date = s.date \
                 AND o.shift = s.shift AND o.signed_at < s.signed_at)"
            ))
            .await?;
        m.drop_table(Table::drop().table("briefing_signoff").to_owned())
            .await?;
        m.rename_table(
            Table::rename()
                .table("briefing_signoff_day", "briefing_signoff")
                .to_owned(),
        )
        .await
    }
}

//! Indexes for reading in order.
//!
//! A pull reads one team's records in revision order (`team_id = ? AND server_rev > ?  ORDER BY
//! server_rev LIMIT n`). With only `(team_id, occurred_at)` and `(server_rev)` to choose from,
//! SQLite walked the whole team through `(team_id, occurred_at)` and sorted it in a temporary
//! B-tree for every page, so a first pull cost O(records²/page). `(team_id, server_rev)` lets
//! every page start at the cursor and stop after `n` rows.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

const TABLES: &[&str] = &[
    "violation",
    "photo",
    "patrol_round",
    "track_segment",
    "youth_group",
    "youth_observation",
    "youth_person",
    "incident",
    "briefing_note",
    "briefing_doc",
];

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        // An export pages one team's reports by (observed_at, id): this index delivers them in
        // that order, so a page reads its 1,000 rows and no more.
        m.create_index(
            Index::create()
                .name("ix_violation_team_observed_id")
                .table("violation")
                .col("team_id")
                .col("observed_at")
                .col("id")
                .to_owned(),
        )
        .await?;
        for t in TABLES {
            m.create_index(
                Index::create()
                    .name(format!("ix_{t}_team_rev"))
                    .table(*t)
                    .col("team_id")
                    .col("server_rev")
                    .to_owned(),
            )
            .await?;
        }
        Ok(())
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.drop_index(
            Index::drop()
                .name("ix_violation_team_observed_id")
                .table("violation")
                .to_owned(),
        )
        .await?;
        for t in TABLES {
            m.drop_index(
                Index::drop()
                    .name(format!("ix_{t}_team_rev"))
                    .table(*t)
                    .to_owned(),
            )
            .await?;
        }
        Ok(())
    }
}

//! Drops `(team_id, observed_at)` on reports: `(team_id, observed_at, id)` (migration 7) starts
//! with the same columns and serves every query the older one served, and each index is one
//! more B-tree every pushed report is inserted into.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.drop_index(
            Index::drop()
                .name("ix_violation_team_observed")
                .table("violation")
                .to_owned(),
        )
        .await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_index(
            Index::create()
                .name("ix_violation_team_observed")
                .table("violation")
                .col("team_id")
                .col("observed_at")
                .to_owned(),
        )
        .await
    }
}

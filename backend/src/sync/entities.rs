//! Tables of the sync engine.

pub mod sync_conflict {
    use sea_orm::entity::prelude::*;

    /// A field whose offline edit was not simply taken over, for a team lead to look at.
    #[sea_orm::model]
    #[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
    #[sea_orm(table_name = "sync_conflict")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: Uuid,
        pub table_name: String,
        pub record_id: String,
        pub field: Option<String>,
        /// both_changed, not_writable, edit_on_deleted or rejected.
        pub kind: String,
        pub policy: String,
        pub base_value: Option<Json>,
        pub server_value: Option<Json>,
        pub client_value: Option<Json>,
        pub applied_value: Option<Json>,
        pub base_rev: Option<i64>,
        pub server_rev: Option<i64>,
        pub team_id: Option<Uuid>,
        pub user_id: Option<Uuid>,
        pub device_id: Option<String>,
        pub detail: Option<String>,
        pub created_at: DateTimeUtc,
        /// open or resolved.
        pub status: String,
        pub resolved_at: Option<DateTimeUtc>,
        pub resolved_by: Option<Uuid>,
        pub resolution: Option<String>,
        pub resolved_value: Option<Json>,
    }

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod sync_push {
    use sea_orm::entity::prelude::*;

    /// The stored answer to a push, replayed for a retry with the same Idempotency-Key.
    #[sea_orm::model]
    #[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
    #[sea_orm(table_name = "sync_push")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub user_id: Uuid,
        #[sea_orm(primary_key, auto_increment = false)]
        pub idempotency_key: String,
        pub device_id: String,
        pub request_sha256: String,
        pub response: Json,
        pub created_at: DateTimeUtc,
    }

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod sync_device {
    use sea_orm::entity::prelude::*;

    /// What the server knows of a device: app and schema version, clock offset, last sync.
    #[sea_orm::model]
    #[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
    #[sea_orm(table_name = "sync_device")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub user_id: Uuid,
        #[sea_orm(primary_key, auto_increment = false)]
        pub device_id: String,
        pub app_version: Option<String>,
        pub schema_version: Option<i32>,
        /// Server time minus device time at the last push, in milliseconds.
        pub clock_offset_ms: Option<i64>,
        pub last_push_at: Option<DateTimeUtc>,
        pub last_pull_at: Option<DateTimeUtc>,
        pub last_pulled_seq: Option<i64>,
        /// Start of the time window the device was last given.
        pub window_start: Option<DateTimeUtc>,
    }

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod record_history {
    use sea_orm::entity::prelude::*;

    /// A record as it was at a revision: the base of a later three-way merge.
    #[sea_orm::model]
    #[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
    #[sea_orm(table_name = "record_history")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub table_name: String,
        #[sea_orm(primary_key, auto_increment = false)]
        pub record_id: String,
        #[sea_orm(primary_key, auto_increment = false)]
        pub rev: i64,
        pub snapshot: Json,
        pub at: DateTimeUtc,
    }

    impl ActiveModelBehavior for ActiveModel {}
}

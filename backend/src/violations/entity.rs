//! Tables of the violations feature.

pub mod violation {
    use sea_orm::entity::prelude::*;

    #[sea_orm::model]
    #[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
    #[sea_orm(table_name = "violation")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: Uuid,
        pub category: String,
        pub feitcode: Option<String>,
        pub observed_at: DateTimeUtc,
        pub lat: f64,
        pub lon: f64,
        pub accuracy_m: f64,
        pub location_source: String,
        pub fix_time: Option<DateTimeUtc>,
        pub wijk_code: Option<String>,
        pub buurt_code: Option<String>,
        pub description: String,
        pub outcome: String,
        pub plate: Option<String>,
        pub driver_present: Option<bool>,
        pub sanction: Option<String>,
        pub officer_ids: Json,
        pub status: String,
        pub review_note: Option<String>,
        pub reviewed_by: Option<Uuid>,
        pub reviewed_at: Option<DateTimeUtc>,
        pub team_id: Option<Uuid>,
        pub privacy_regime: String,
        pub created_by: Uuid,
        pub created_at: DateTimeUtc,
        pub updated_at: DateTimeUtc,
        /// SHA-256 of the canonical create request: the same id posted with the same content
        /// is a retry, with other content a conflict.
        pub create_hash: String,
        pub server_rev: i64,
        pub field_revs: Json,
        pub deleted_seq: Option<i64>,
        pub last_device_id: Option<String>,
        /// The sequence number and device of the create (null for rows from before they were kept).
        pub created_seq: Option<i64>,
        pub created_device: Option<String>,
        /// Plausibility flags for reviewers, e.g. `clock_offset` (the phone's clock was off by
        /// more than 5 minutes when it pushed the report). Never blocking.
        pub flags: Json,
        /// Server time minus device time when the report arrived, if the device said.
        pub device_clock_offset_ms: Option<i64>,
        /// The patrol round the report was made on.
        pub round_id: Option<Uuid>,
        /// The record's retention stage (`retention::Stage`): 0 active, 1 restricted, 2 removed.
        pub retention_stage: i16,
    }

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod violation_officer {
    use sea_orm::entity::prelude::*;

    /// Index of the officers on a report, for the `officer=` filter.
    #[sea_orm::model]
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "violation_officer")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub violation_id: Uuid,
        #[sea_orm(primary_key, auto_increment = false)]
        pub user_id: Uuid,
    }

    impl ActiveModelBehavior for ActiveModel {}
}

//! The photo table: the synced record, its upload state and its derivative job in one row.

pub mod photo {
    use sea_orm::entity::prelude::*;

    #[sea_orm::model]
    #[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
    #[sea_orm(table_name = "photo")]
    pub struct Model {
        /// The client's id (a UUID made on the phone); also the tus upload's key.
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: Uuid,
        /// The report the photo belongs to.
        pub violation_id: Option<Uuid>,
        /// The youth-group observation it belongs to (a later record type).
        pub observation_id: Option<Uuid>,
        pub team_id: Option<Uuid>,
        /// SHA-256 of the original as the phone declared it, lowercase hex.
        pub sha256: String,
        pub size_bytes: i64,
        /// The type the phone declared; `format` is what the bytes turned out to be.
        pub mime: String,
        /// When the phone took the photo (device clock).
        pub captured_at: Option<DateTimeUtc>,
        /// The phone's GPS fix at capture.
        pub lat: Option<f64>,
        pub lon: Option<f64>,
        pub accuracy_m: Option<f64>,
        /// pending, partial, complete or failed.
        pub upload_state: String,
        /// Bytes received so far (the staging file is the truth; this is for reports).
        pub upload_offset: i64,
        pub upload_expires_at: Option<DateTimeUtc>,
        pub uploaded_at: Option<DateTimeUtc>,
        /// jpeg, png or webp, sniffed from the bytes.
        pub format: Option<String>,
        pub width: Option<i32>,
        pub height: Option<i32>,
        /// What the original's EXIF says (capture time, GPS, orientation, make and model).
        pub exif: Option<Json>,
        /// none (not uploaded yet), pending, done or failed.
        pub derivative_state: String,
        pub derivative_error: Option<String>,
        pub derive_attempts: i32,
        /// A worker holds the job until then; a crashed worker's job is taken again after it.
        pub derive_lease_until: Option<DateTimeUtc>,
        /// Why the upload failed, when it did.
        pub failure: Option<String>,
        pub created_by: Uuid,
        pub created_at: DateTimeUtc,
        pub updated_at: DateTimeUtc,
        pub create_hash: String,
        pub server_rev: i64,
        pub field_revs: Json,
        pub deleted_seq: Option<i64>,
        pub last_device_id: Option<String>,
        /// The sequence number and device of the create (null for rows from before they were kept).
        pub created_seq: Option<i64>,
        pub created_device: Option<String>,
    }

    impl ActiveModelBehavior for ActiveModel {}
}

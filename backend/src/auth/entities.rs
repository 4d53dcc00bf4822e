//! Tables of the accounts feature: teams, users and device tokens.

pub mod team {
    use sea_orm::entity::prelude::*;

    /// A team of officers with its team lead; records are scoped to the team that made them.
    #[sea_orm::model]
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "team")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: Uuid,
        #[sea_orm(unique)]
        pub name: String,
        pub created_at: DateTimeUtc,
    }

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod app_user {
    use sea_orm::entity::prelude::*;

    #[sea_orm::model]
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "app_user")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: Uuid,
        #[sea_orm(unique)]
        pub username: String,
        pub display_name: String,
        pub password_hash: String,
        pub role: String,
        pub team_id: Option<Uuid>,
        pub wpg_authorised: bool,
        pub active: bool,
        /// Created by `--demo`; deactivated whenever the server starts without `--demo`.
        pub demo: bool,
        pub created_at: DateTimeUtc,
        pub updated_at: DateTimeUtc,
        /// The BOA's number (aanstelling), printed on the documents of a case.
        pub boa_number: Option<String>,
    }

    impl ActiveModelBehavior for ActiveModel {}

    impl Model {
        /// The name pages and documents show: the display name, the username without one.
        pub fn shown_name(&self) -> &str {
            match self.display_name.trim() {
                "" => &self.username,
                _ => &self.display_name,
            }
        }
    }
}

pub mod device_token {
    use sea_orm::entity::prelude::*;

    /// An opaque bearer token bound to one device; only its SHA-256 is stored.
    #[sea_orm::model]
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "device_token")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: Uuid,
        pub user_id: Uuid,
        pub device_id: String,
        #[sea_orm(unique)]
        pub token_hash: String,
        pub created_at: DateTimeUtc,
        pub expires_at: DateTimeUtc,
        pub revoked_at: Option<DateTimeUtc>,
        pub revoked_reason: Option<String>,
    }

    impl ActiveModelBehavior for ActiveModel {}
}

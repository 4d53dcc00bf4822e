use sea_orm::entity::prelude::*;

/// One line of the append-only access and change log (Wpg art. 32: who consulted, changed,
/// disclosed or destroyed which record, when, from which device and why).
#[sea_orm::model]
#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "audit_log")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub at: DateTimeUtc,
    pub actor_user_id: Option<Uuid>,
    pub actor: Option<String>,
    pub device_id: Option<String>,
    pub action: String,
    pub record_type: String,
    pub record_id: Option<String>,
    pub reason: Option<String>,
    pub detail: Option<Json>,
}

impl ActiveModelBehavior for ActiveModel {}

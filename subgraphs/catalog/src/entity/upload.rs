//! An uploaded file; its bytes are in `catalog_upload_chunks`.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "catalog_uploads")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    pub owner_id: String,
    pub file_name: String,
    pub content_type: String,
    /// The size announced when the slot was asked for; none for a multipart upload.
    pub size: Option<i64>,
    /// Bytes stored, from the start, without gaps.
    pub received: i64,
    pub complete: bool,
    pub created_at: DateTimeUtc,
    pub expires_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}

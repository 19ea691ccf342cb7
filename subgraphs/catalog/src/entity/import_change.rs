//! One staged change of an import: a product to create, update, archive or delete.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "catalog_import_changes")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub import_id: String,
    #[sea_orm(primary_key, auto_increment = false)]
    pub seq: i64,
    /// The file's row; none for products absent from the file.
    pub row_no: Option<i64>,
    pub sku: String,
    pub kind: String,
    pub product_id: String,
    /// The product before (a `ProductDoc` as JSON), for updates, archives and deletes.
    pub before_doc: Option<String>,
    /// The product after, for creates and updates (with `stock` when the file had it).
    pub after_doc: Option<String>,
    /// A JSON list of the fields an update changes.
    pub changed_fields: String,
    /// The hash of what the import wrote, to tell later edits at rollback.
    pub written_hash: Option<String>,
    /// `staged`, `applied`, `rolled_back` or `kept` (rollback left a later edit alone).
    pub state: String,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}

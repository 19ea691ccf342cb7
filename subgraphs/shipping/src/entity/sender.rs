use sea_orm::entity::prelude::*;

/// Where a supplier's parcels leave from (the label's sender block).
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "shipping_senders")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub supplier_id: String,
    pub name: String,
    pub line1: String,
    pub line2: String,
    pub postal_code: String,
    pub city: String,
    pub country: String,
    pub updated_at: DateTimeUtc,
}

impl Model {
    /// The sender block's lines.
    pub fn lines(&self) -> Vec<String> {
        [
            self.name.clone(),
            self.line1.clone(),
            self.line2.clone(),
            format!("{} {}", self.postal_code, self.city),
            self.country.clone(),
        ]
        .into_iter()
        .filter(|l| !l.trim().is_empty())
        .collect()
    }
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}

use sea_orm::entity::prelude::*;

/// One line of a paid order, as the orders' events told it.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "reviews_purchases")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub order_id: String,
    #[sea_orm(primary_key, auto_increment = false)]
    pub product_id: String,
    pub user_id: String,
    pub supplier_id: String,
    /// When the order was delivered; only then may its buyer review the product.
    pub delivered_at: Option<DateTimeUtc>,
    pub refunded: bool,
    pub created_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}

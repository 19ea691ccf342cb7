use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "reviews_reviews")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    pub product_id: String,
    pub user_id: String,
    /// Who sells the product (may reply once).
    pub supplier_id: String,
    /// 1 to 5 stars.
    pub rating: i32,
    pub title: String,
    /// As the shopper wrote it; escaped where it is shown as HTML.
    pub body: String,
    /// VISIBLE or HIDDEN.
    pub status: String,
    /// Why an admin hid (or restored) it.
    pub moderation_note: Option<String>,
    /// Every purchase it stands on was refunded.
    pub refunded: bool,
    pub helpful_votes: i64,
    pub reports: i64,
    pub reply: Option<String>,
    pub replied_at: Option<DateTimeUtc>,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}

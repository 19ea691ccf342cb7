//! A card payment for an order.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "payments_payments")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    /// The caller's key for the authorization: the same key, the same payment.
    pub idempotency_key: String,
    pub order_id: String,
    /// Who pays (the order's owner), so only they and admins see it.
    pub user_id: String,
    /// See [`crate::service::Status`].
    pub status: String,
    pub amount: i64,
    pub currency: String,
    pub captured_amount: i64,
    pub refunded_amount: i64,
    pub card_brand: String,
    pub card_last4: String,
    pub card_exp_month: i32,
    pub card_exp_year: i32,
    pub provider: String,
    pub provider_ref: Option<String>,
    pub decline_code: Option<String>,
    pub decline_reason: Option<String>,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}

//! A checkout in progress or done: the saga's stored state.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "orders_checkouts")]
pub struct Model {
    /// Also the id of the order it makes.
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    pub user_id: String,
    pub idempotency_key: String,
    pub cart_id: String,
    /// The address as JSON, so a checkout resumed after a crash can make the order.
    pub shipping_address: String,
    /// See [`crate::service::checkout::Step`].
    pub step: String,
    pub payment_id: Option<String>,
    pub error_code: Option<String>,
    pub error: Option<String>,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
    /// The cart while this checkout runs (unique: one checkout per cart at a time).
    pub active_cart_id: Option<String>,
    /// Bumped when the recovery takes the checkout over; steps are recorded only under
    /// the attempt that ran them.
    pub attempt: i32,
    /// The quoted shipping per supplier as JSON (see `service::checkout::Shipping`);
    /// `None` until quoted (or for orders from before).
    pub shipping_choices: Option<String>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}

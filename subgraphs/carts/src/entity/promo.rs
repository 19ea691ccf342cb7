//! A promo code.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "carts_promo_codes")]
pub struct Model {
    /// Upper case.
    #[sea_orm(primary_key, auto_increment = false)]
    pub code: String,
    pub description: String,
    /// `PERCENT` (value in basis points) or `FIXED` (value in minor units of `currency`).
    pub kind: String,
    pub value: i64,
    /// Required for FIXED codes and for a minimum subtotal.
    pub currency: Option<String>,
    pub min_subtotal: i64,
    pub starts_at: Option<DateTimeUtc>,
    pub ends_at: Option<DateTimeUtc>,
    pub max_uses: Option<i64>,
    pub max_uses_per_user: Option<i64>,
    pub uses: i64,
    pub created_at: DateTimeUtc,
    /// Set while the code is switched off.
    pub disabled_at: Option<DateTimeUtc>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}

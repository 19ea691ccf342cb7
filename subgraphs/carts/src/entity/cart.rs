//! A cart.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "carts_carts")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    /// The owner; `None` for an anonymous cart.
    pub user_id: Option<String>,
    /// SHA-256 of an anonymous cart's token.
    pub token_hash: Option<String>,
    /// Set by the first line; every line is in it.
    pub currency: Option<String>,
    /// ISO 3166-1 alpha-2 country that sets the tax rate.
    pub country: Option<String>,
    pub promo_code: Option<String>,
    /// Why a promo code was not taken over when an anonymous cart was merged in;
    /// cleared by the next promo code change.
    pub promo_note: Option<String>,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}

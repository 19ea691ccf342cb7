//! An account.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "users_users")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    /// Lower-cased; `deleted-<id>@invalid` once the account is deleted.
    pub email: String,
    pub email_verified: bool,
    /// Argon2id PHC string; `None` for accounts that only sign in through a provider.
    pub password_hash: Option<String>,
    pub name: String,
    pub phone: Option<String>,
    /// Comma-separated role names (`CUSTOMER,SUPPLIER`).
    pub roles: String,
    pub disabled: bool,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
    pub deleted_at: Option<DateTimeUtc>,
}

impl Model {
    pub fn role_list(&self) -> Vec<shop_kit::auth::Role> {
        self.roles
            .split(',')
            .filter_map(shop_kit::auth::Role::parse)
            .collect()
    }
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}

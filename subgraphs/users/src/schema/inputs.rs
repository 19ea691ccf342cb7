use async_graphql::InputObject;
use shop_kit::auth::Role;

use super::types::AddressKind;
use crate::service::addresses::AddressFields;

#[derive(InputObject)]
pub struct RegisterInput {
    pub email: String,
    /// At least 10 characters; not a common password, not containing the e-mail or name.
    #[graphql(secret)]
    pub password: String,
    pub name: String,
}

#[derive(InputObject)]
pub struct ProfileInput {
    pub name: Option<String>,
    /// An empty string removes the phone number.
    pub phone: Option<String>,
}

#[derive(InputObject)]
pub struct AddressInput {
    pub kind: AddressKind,
    /// The recipient.
    pub name: String,
    pub line1: String,
    #[graphql(default)]
    pub line2: String,
    pub city: String,
    pub postal_code: String,
    #[graphql(default)]
    pub region: String,
    /// ISO 3166-1 alpha-2 (`DE`, `US`).
    pub country: String,
    pub phone: Option<String>,
    #[graphql(default)]
    pub is_default: bool,
}

impl From<AddressInput> for AddressFields {
    fn from(i: AddressInput) -> Self {
        AddressFields {
            kind: i.kind.as_str().to_string(),
            name: i.name,
            line1: i.line1,
            line2: i.line2,
            city: i.city,
            postal_code: i.postal_code,
            region: i.region,
            country: i.country,
            phone: i.phone,
            is_default: i.is_default,
        }
    }
}

#[derive(InputObject)]
pub struct CreateUserInput {
    pub email: String,
    pub name: String,
    /// Without one, the user gets a link to choose a password.
    #[graphql(secret)]
    pub password: Option<String>,
    pub roles: Vec<Role>,
}

//! Catalog domain logic: plain async functions over a connection or transaction.
//! Resolvers in `schema` stay thin and call these.

pub mod access;
pub mod catalogs;
pub mod categories;
pub mod events;
pub mod products;
pub mod search;

use sea_orm::DatabaseConnection;
use shop_kit::events::Outbox;

/// What catalog services need: the database and the domain's outbox.
#[derive(Clone)]
pub struct CatalogCtx {
    pub db: DatabaseConnection,
    pub outbox: Outbox,
}

impl CatalogCtx {
    pub fn new(db: DatabaseConnection) -> Self {
        CatalogCtx {
            db,
            outbox: Outbox::new("catalog_outbox"),
        }
    }
}

/// Trims `value` and checks its length; the message names the field.
pub(crate) fn required_text(field: &str, value: &str, max: usize) -> shop_kit::ApiResult<String> {
    let v = value.trim();
    if v.is_empty() {
        return Err(shop_kit::ApiError::bad_input(format!(
            "{field} must not be empty"
        )));
    }
    if v.chars().count() > max {
        return Err(shop_kit::ApiError::bad_input(format!(
            "{field} must be at most {max} characters"
        )));
    }
    Ok(v.to_string())
}

pub(crate) fn optional_text(field: &str, value: &str, max: usize) -> shop_kit::ApiResult<String> {
    if value.chars().count() > max {
        return Err(shop_kit::ApiError::bad_input(format!(
            "{field} must be at most {max} characters"
        )));
    }
    Ok(value.trim().to_string())
}

pub(crate) fn check_id(field: &str, id: &str) -> shop_kit::ApiResult<()> {
    if shop_kit::ids::is_valid_id(id) {
        Ok(())
    } else {
        Err(shop_kit::ApiError::bad_input(format!(
            "{field}: '{id}' is not a valid id"
        )))
    }
}

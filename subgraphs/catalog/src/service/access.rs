//! Who may change what: suppliers their own catalogs, admins everything.

use sea_orm::{ConnectionTrait, EntityTrait};
use shop_kit::auth::{Caller, Principal, Role};
use shop_kit::{ApiError, ApiResult};

use crate::entity::catalog;

/// The caller, if it may write catalogs at all (SUPPLIER or ADMIN).
pub fn require_writer(caller: &Caller) -> ApiResult<&Principal> {
    let p = caller.require()?;
    if p.has_role(Role::Supplier) || p.is_admin() {
        Ok(p)
    } else {
        Err(ApiError::forbidden(
            "only suppliers and admins may change catalogs",
        ))
    }
}

/// Loads a catalog the caller may change.
pub async fn writable_catalog<C: ConnectionTrait>(
    conn: &C,
    p: &Principal,
    catalog_id: &str,
) -> ApiResult<catalog::Model> {
    super::check_id("catalogId", catalog_id)?;
    let cat = catalog::Entity::find_by_id(catalog_id.to_string())
        .one(conn)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("catalog {catalog_id} not found")))?;
    if p.is_admin() || cat.supplier_id == p.user_id {
        Ok(cat)
    } else {
        Err(ApiError::forbidden(
            "this catalog belongs to another supplier",
        ))
    }
}

/// Loads a catalog the caller may change, for a write that changes what its products
/// are (their fields, or their categories' paths): bumps its revision, so an import
/// reviewed before this write refuses to apply after it.
pub async fn changing_catalog<C: ConnectionTrait>(
    conn: &C,
    p: &Principal,
    catalog_id: &str,
) -> ApiResult<catalog::Model> {
    let cat = writable_catalog(conn, p, catalog_id).await?;
    super::imports::engine::bump_revision(conn, &cat.id).await?;
    Ok(cat)
}

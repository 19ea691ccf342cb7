//! Catalogs: created by suppliers (or by admins for a supplier), renamed, deleted.

use chrono::Utc;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, EntityTrait, PaginatorTrait, QueryFilter,
    QueryOrder, QuerySelect, Set,
};
use shop_kit::auth::Caller;
use shop_kit::pagination::{PageArgs, Window};
use shop_kit::{ApiError, ApiResult, ids};

use super::access::{require_writer, writable_catalog};
use super::events::{CATALOG_DELETED, CatalogDeleted};
use super::{CatalogCtx, check_id, optional_text, required_text};
use crate::entity::{catalog, category, product};

pub const MAX_NAME: usize = 200;
pub const MAX_DESCRIPTION: usize = 5000;

pub struct NewCatalog {
    pub name: String,
    pub description: Option<String>,
    /// Only admins may create a catalog on a supplier's behalf.
    pub supplier_id: Option<String>,
}

pub async fn create(
    ctx: &CatalogCtx,
    caller: &Caller,
    input: NewCatalog,
) -> ApiResult<catalog::Model> {
    let p = require_writer(caller)?;
    let supplier_id = match input.supplier_id {
        Some(s) if s != p.user_id => {
            if !p.is_admin() {
                return Err(ApiError::forbidden(
                    "only admins may create catalogs for another supplier",
                ));
            }
            required_text("supplierId", &s, 64)?
        }
        _ => p.user_id.clone(),
    };
    let now = Utc::now();
    let model = catalog::ActiveModel {
        id: Set(ids::new_id()),
        supplier_id: Set(supplier_id),
        name: Set(required_text("name", &input.name, MAX_NAME)?),
        description: Set(optional_text(
            "description",
            input.description.as_deref().unwrap_or(""),
            MAX_DESCRIPTION,
        )?),
        revision: Set(0),
        created_at: Set(now),
        updated_at: Set(now),
    };
    Ok(model.insert(&ctx.db).await?)
}

pub async fn update(
    ctx: &CatalogCtx,
    caller: &Caller,
    id: &str,
    name: Option<String>,
    description: Option<String>,
) -> ApiResult<catalog::Model> {
    let p = require_writer(caller)?;
    let txn = shop_kit::db::begin_write(&ctx.db).await?;
    let existing = writable_catalog(&txn, p, id).await?;
    let mut model: catalog::ActiveModel = existing.into();
    if let Some(name) = name {
        model.name = Set(required_text("name", &name, MAX_NAME)?);
    }
    if let Some(d) = description {
        model.description = Set(optional_text("description", &d, MAX_DESCRIPTION)?);
    }
    model.updated_at = Set(Utc::now());
    let updated = model.update(&txn).await?;
    txn.commit().await?;
    Ok(updated)
}

/// Deletes a catalog with its categories and products in one transaction; inventory
/// drops the stock records when it consumes the `catalog.catalog_deleted` event written
/// in that same transaction.
pub async fn delete(ctx: &CatalogCtx, caller: &Caller, id: &str) -> ApiResult<String> {
    let p = require_writer(caller)?;
    let txn = shop_kit::db::begin_write(&ctx.db).await?;
    let cat = writable_catalog(&txn, p, id).await?;
    product::Entity::delete_many()
        .filter(product::Column::CatalogId.eq(&cat.id))
        .exec(&txn)
        .await?;
    // Children first keeps the self-referencing parent key satisfied on every engine.
    delete_categories_bottom_up(&txn, &cat.id).await?;
    catalog::Entity::delete_by_id(cat.id.clone())
        .exec(&txn)
        .await?;
    ctx.outbox
        .write(
            &txn,
            CATALOG_DELETED,
            &cat.id,
            serde_json::to_value(CatalogDeleted {
                catalog_id: cat.id.clone(),
            })
            .unwrap_or_default(),
        )
        .await?;
    txn.commit().await?;
    ctx.outbox.wake();
    Ok(cat.id)
}

async fn delete_categories_bottom_up<C: ConnectionTrait>(
    conn: &C,
    catalog_id: &str,
) -> ApiResult<()> {
    let all = category::Entity::find()
        .filter(category::Column::CatalogId.eq(catalog_id))
        .all(conn)
        .await?;
    let order = super::categories::bottom_up_order(&all);
    for id in order {
        category::Entity::delete_by_id(id).exec(conn).await?;
    }
    Ok(())
}

pub async fn get<C: ConnectionTrait>(conn: &C, id: &str) -> ApiResult<Option<catalog::Model>> {
    check_id("id", id)?;
    Ok(catalog::Entity::find_by_id(id.to_string())
        .one(conn)
        .await?)
}

/// Catalogs, newest first, optionally of one supplier.
pub async fn list(
    ctx: &CatalogCtx,
    supplier_id: Option<&str>,
    page: &PageArgs,
) -> ApiResult<(Window, Vec<catalog::Model>)> {
    page.validate()?;
    let mut q = catalog::Entity::find();
    if let Some(s) = supplier_id {
        q = q.filter(catalog::Column::SupplierId.eq(s));
    }
    let total = q.clone().count(&ctx.db).await?;
    let window = page.window(total)?;
    let rows = q
        .order_by_asc(catalog::Column::Name)
        .order_by_asc(catalog::Column::Id)
        .offset(window.offset)
        .limit(window.limit)
        .all(&ctx.db)
        .await?;
    Ok((window, rows))
}

//! Categories: a tree per catalog. Deleting a non-empty category is refused unless the
//! caller asks to move its products and children to its parent.

use std::collections::{HashMap, HashSet};

use chrono::Utc;
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, EntityTrait, PaginatorTrait, QueryFilter,
    QueryOrder, Set,
};
use shop_kit::auth::Caller;
use shop_kit::{ApiError, ApiResult, ids};

use super::access::{changing_catalog, require_writer, writable_catalog};
use super::{CatalogCtx, check_id, required_text};
use crate::entity::{category, product};

pub const MAX_NAME: usize = 200;

pub async fn get<C: ConnectionTrait>(conn: &C, id: &str) -> ApiResult<Option<category::Model>> {
    check_id("id", id)?;
    Ok(category::Entity::find_by_id(id.to_string())
        .one(conn)
        .await?)
}

async fn must_get<C: ConnectionTrait>(conn: &C, id: &str) -> ApiResult<category::Model> {
    get(conn, id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("category {id} not found")))
}

pub async fn create(
    ctx: &CatalogCtx,
    caller: &Caller,
    catalog_id: &str,
    parent_id: Option<&str>,
    name: &str,
) -> ApiResult<category::Model> {
    let p = require_writer(caller)?;
    let name = required_text("name", name, MAX_NAME)?;
    let txn = shop_kit::db::begin_write(&ctx.db).await?;
    writable_catalog(&txn, p, catalog_id).await?;
    if let Some(parent) = parent_id {
        let parent = must_get(&txn, parent).await?;
        if parent.catalog_id != catalog_id {
            return Err(ApiError::bad_input(
                "parentId: the parent belongs to another catalog",
            ));
        }
    }
    let siblings = children_query(catalog_id, parent_id).count(&txn).await?;
    let model = category::ActiveModel {
        id: Set(ids::new_id()),
        catalog_id: Set(catalog_id.to_string()),
        parent_id: Set(parent_id.map(str::to_string)),
        name: Set(name),
        position: Set(i32::try_from(siblings).unwrap_or(i32::MAX)),
        created_at: Set(Utc::now()),
    };
    let created = model.insert(&txn).await?;
    txn.commit().await?;
    Ok(created)
}

pub async fn rename(
    ctx: &CatalogCtx,
    caller: &Caller,
    id: &str,
    name: &str,
) -> ApiResult<category::Model> {
    let p = require_writer(caller)?;
    let name = required_text("name", name, MAX_NAME)?;
    let txn = shop_kit::db::begin_write(&ctx.db).await?;
    let cat = must_get(&txn, id).await?;
    changing_catalog(&txn, p, &cat.catalog_id).await?;
    let mut m: category::ActiveModel = cat.into();
    m.name = Set(name);
    let updated = m.update(&txn).await?;
    txn.commit().await?;
    Ok(updated)
}

/// Moves a category under `new_parent` (`None`: to the top level). A category cannot
/// move under itself or one of its descendants.
pub async fn move_to(
    ctx: &CatalogCtx,
    caller: &Caller,
    id: &str,
    new_parent: Option<&str>,
) -> ApiResult<category::Model> {
    let p = require_writer(caller)?;
    let txn = shop_kit::db::begin_write(&ctx.db).await?;
    let cat = must_get(&txn, id).await?;
    changing_catalog(&txn, p, &cat.catalog_id).await?;
    if let Some(parent_id) = new_parent {
        let parent = must_get(&txn, parent_id).await?;
        if parent.catalog_id != cat.catalog_id {
            return Err(ApiError::bad_input(
                "parentId: the parent belongs to another catalog",
            ));
        }
        let all = of_catalog(&txn, &cat.catalog_id).await?;
        if descendants(&all, &cat.id).contains(parent_id) {
            return Err(ApiError::bad_input(
                "parentId: a category cannot move under itself or its descendants",
            ));
        }
    }
    let siblings = children_query(&cat.catalog_id, new_parent)
        .count(&txn)
        .await?;
    let mut m: category::ActiveModel = cat.into();
    m.parent_id = Set(new_parent.map(str::to_string));
    m.position = Set(i32::try_from(siblings).unwrap_or(i32::MAX));
    let updated = m.update(&txn).await?;
    txn.commit().await?;
    Ok(updated)
}

/// Deletes a category. A category with products or children is refused with CONFLICT
/// unless `move_contents_to_parent`, which first moves them to its parent (products of
/// a top-level category become uncategorized).
pub async fn delete(
    ctx: &CatalogCtx,
    caller: &Caller,
    id: &str,
    move_contents_to_parent: bool,
) -> ApiResult<String> {
    let p = require_writer(caller)?;
    let txn = shop_kit::db::begin_write(&ctx.db).await?;
    let cat = must_get(&txn, id).await?;
    changing_catalog(&txn, p, &cat.catalog_id).await?;
    let children = category::Entity::find()
        .filter(category::Column::ParentId.eq(&cat.id))
        .count(&txn)
        .await?;
    let products = product::Entity::find()
        .filter(product::Column::CategoryId.eq(&cat.id))
        .count(&txn)
        .await?;
    if children + products > 0 {
        if !move_contents_to_parent {
            return Err(ApiError::conflict(format!(
                "category has {children} subcategories and {products} products; pass moveContentsToParent: true to move them to its parent"
            )));
        }
        category::Entity::update_many()
            .col_expr(
                category::Column::ParentId,
                Expr::value(cat.parent_id.clone()),
            )
            .filter(category::Column::ParentId.eq(&cat.id))
            .exec(&txn)
            .await?;
        product::Entity::update_many()
            .col_expr(
                product::Column::CategoryId,
                Expr::value(cat.parent_id.clone()),
            )
            .col_expr(product::Column::UpdatedAt, Expr::value(Utc::now()))
            .filter(product::Column::CategoryId.eq(&cat.id))
            .exec(&txn)
            .await?;
    }
    category::Entity::delete_by_id(cat.id.clone())
        .exec(&txn)
        .await?;
    txn.commit().await?;
    Ok(cat.id)
}

fn children_query(catalog_id: &str, parent_id: Option<&str>) -> sea_orm::Select<category::Entity> {
    let q = category::Entity::find().filter(category::Column::CatalogId.eq(catalog_id));
    match parent_id {
        Some(p) => q.filter(category::Column::ParentId.eq(p)),
        None => q.filter(category::Column::ParentId.is_null()),
    }
}

/// Direct children of `parent_id` (top-level categories when `None`), in position order.
pub async fn children<C: ConnectionTrait>(
    conn: &C,
    catalog_id: &str,
    parent_id: Option<&str>,
) -> ApiResult<Vec<category::Model>> {
    Ok(children_query(catalog_id, parent_id)
        .order_by_asc(category::Column::Position)
        .order_by_asc(category::Column::Name)
        .all(conn)
        .await?)
}

pub async fn of_catalog<C: ConnectionTrait>(
    conn: &C,
    catalog_id: &str,
) -> ApiResult<Vec<category::Model>> {
    Ok(category::Entity::find()
        .filter(category::Column::CatalogId.eq(catalog_id))
        .all(conn)
        .await?)
}

/// `root` and every category below it.
pub fn descendants(all: &[category::Model], root: &str) -> HashSet<String> {
    let mut by_parent: HashMap<&str, Vec<&str>> = HashMap::new();
    for c in all {
        if let Some(p) = c.parent_id.as_deref() {
            by_parent.entry(p).or_default().push(&c.id);
        }
    }
    let mut out = HashSet::from([root.to_string()]);
    let mut stack = vec![root];
    while let Some(id) = stack.pop() {
        for child in by_parent.get(id).into_iter().flatten() {
            if out.insert(child.to_string()) {
                stack.push(child);
            }
        }
    }
    out
}

/// Category ids ordered so every child comes before its parent.
pub fn bottom_up_order(all: &[category::Model]) -> Vec<String> {
    let parents: HashMap<&str, Option<&str>> = all
        .iter()
        .map(|c| (c.id.as_str(), c.parent_id.as_deref()))
        .collect();
    let depth_of = |c: &category::Model| {
        let mut d = 0usize;
        let mut cur = c.parent_id.as_deref();
        // Bounded by the number of categories, so a corrupt cycle cannot loop forever.
        while let Some(p) = cur {
            d += 1;
            if d > all.len() {
                break;
            }
            cur = parents.get(p).copied().flatten();
        }
        d
    };
    let mut with_depth: Vec<(usize, String)> =
        all.iter().map(|c| (depth_of(c), c.id.clone())).collect();
    with_depth.sort_by_key(|d| std::cmp::Reverse(d.0));
    with_depth.into_iter().map(|(_, id)| id).collect()
}

/// The chain from the top-level category down to `id` (inclusive).
pub async fn path<C: ConnectionTrait>(
    conn: &C,
    cat: &category::Model,
) -> ApiResult<Vec<category::Model>> {
    let all = of_catalog(conn, &cat.catalog_id).await?;
    let by_id: HashMap<&str, &category::Model> = all.iter().map(|c| (c.id.as_str(), c)).collect();
    let mut chain = vec![cat.clone()];
    let mut cur = cat.parent_id.as_deref();
    while let Some(p) = cur {
        let Some(parent) = by_id.get(p) else { break };
        if chain.len() > all.len() {
            break;
        }
        chain.push((*parent).clone());
        cur = parent.parent_id.as_deref();
    }
    chain.reverse();
    Ok(chain)
}

//! Products: validated, written with their attribute and search index rows and an
//! outbox event, all in one transaction.

use std::collections::BTreeMap;

use chrono::Utc;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DbBackend, EntityTrait, QueryFilter, Set, Value,
};
use serde_json::Value as Json;
use shop_kit::auth::Caller;
use shop_kit::money::MoneyInput;
use shop_kit::{ApiError, ApiResult, ids};

use super::access::{changing_catalog, require_writer};
use super::events::{
    PRODUCT_CREATED, PRODUCT_DELETED, PRODUCT_DESCRIBED, PRODUCT_RENAMED, ProductCreated,
    ProductDeleted, ProductFacts, ProductRenamed,
};
use super::search::{self, Searchable};
use super::sql::{delete_in, insert_rows};
use super::{CatalogCtx, check_id, optional_text, required_text};
use crate::entity::{catalog, category, product};

pub const MAX_SKU: usize = 64;
pub const MAX_NAME: usize = 300;
pub const MAX_DESCRIPTION: usize = 20_000;
pub const MAX_IMAGES: usize = 20;
pub const MAX_ATTRIBUTES: usize = 50;
/// Attribute values longer than this are stored but not filterable.
pub const MAX_INDEXED_VALUE: usize = 191;

/// A product's lifecycle: shoppers see and buy `Active` products only.
#[derive(Clone, Copy, Debug, PartialEq, Eq, async_graphql::Enum)]
#[graphql(name = "ProductStatus")]
pub enum Status {
    Active,
    /// Being prepared; not shown to shoppers.
    Draft,
    /// Withdrawn: not shown or sold, kept for orders and history.
    Archived,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Active => "active",
            Status::Draft => "draft",
            Status::Archived => "archived",
        }
    }

    pub fn parse(s: &str) -> Option<Status> {
        match s.trim().to_ascii_lowercase().as_str() {
            "active" => Some(Status::Active),
            "draft" => Some(Status::Draft),
            "archived" => Some(Status::Archived),
            _ => None,
        }
    }
}

/// Fields of a new product, as given by the client.
pub struct NewProduct {
    pub catalog_id: String,
    pub category_id: Option<String>,
    pub sku: String,
    pub name: String,
    pub description: Option<String>,
    pub price: MoneyInput,
    pub images: Vec<String>,
    pub attributes: Option<Json>,
    pub weight_grams: Option<i32>,
    pub dimensions: Option<Dimensions>,
    /// `None`: active.
    pub status: Option<Status>,
}

/// Outer size in millimetres: length, width, height.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Dimensions(pub i32, pub i32, pub i32);

/// The heaviest product weight accepted, in grams (one tonne).
pub const MAX_WEIGHT_GRAMS: i32 = 1_000_000;
/// The longest side accepted, in millimetres (ten metres).
pub const MAX_SIDE_MM: i32 = 10_000;

fn validate_weight(w: Option<i32>) -> ApiResult<Option<i64>> {
    match w {
        Some(g) if !(0..=MAX_WEIGHT_GRAMS).contains(&g) => Err(ApiError::bad_input(format!(
            "weightGrams must be 0 to {MAX_WEIGHT_GRAMS}"
        ))),
        w => Ok(w.map(i64::from)),
    }
}

type Sides = (Option<i64>, Option<i64>, Option<i64>);

fn validate_dimensions(d: Option<Dimensions>) -> ApiResult<Sides> {
    let Some(Dimensions(l, w, h)) = d else {
        return Ok((None, None, None));
    };
    for (name, v) in [("lengthMm", l), ("widthMm", w), ("heightMm", h)] {
        if !(1..=MAX_SIDE_MM).contains(&v) {
            return Err(ApiError::bad_input(format!(
                "dimensions.{name} must be 1 to {MAX_SIDE_MM}"
            )));
        }
    }
    Ok((Some(l.into()), Some(w.into()), Some(h.into())))
}

/// Changes to a product; `None` leaves a field as it is. `category_id: Some(None)`
/// makes the product uncategorized.
#[derive(Default)]
pub struct ProductChanges {
    pub category_id: Option<Option<String>>,
    pub sku: Option<String>,
    pub name: Option<String>,
    pub description: Option<String>,
    pub price: Option<MoneyInput>,
    pub images: Option<Vec<String>>,
    pub attributes: Option<Json>,
    /// `Some(None)` forgets the weight.
    pub weight_grams: Option<Option<i32>>,
    /// `Some(None)` forgets the size.
    pub dimensions: Option<Option<Dimensions>>,
    pub status: Option<Status>,
}

pub async fn get<C: ConnectionTrait>(conn: &C, id: &str) -> ApiResult<Option<product::Model>> {
    check_id("id", id)?;
    Ok(product::Entity::find_by_id(id.to_string())
        .one(conn)
        .await?)
}

/// By SKU: exact within `catalog_id`; without it the SKU must be unambiguous.
pub async fn get_by_sku<C: ConnectionTrait>(
    conn: &C,
    catalog_id: Option<&str>,
    sku: &str,
) -> ApiResult<Option<product::Model>> {
    let mut q = product::Entity::find().filter(product::Column::Sku.eq(sku.trim()));
    if let Some(c) = catalog_id {
        check_id("catalogId", c)?;
        q = q.filter(product::Column::CatalogId.eq(c));
    }
    let mut found = q.all(conn).await?;
    match found.len() {
        0 => Ok(None),
        1 => Ok(found.pop()),
        _ => Err(ApiError::bad_input(format!(
            "sku '{sku}' exists in several catalogs; pass catalogId to choose one"
        ))),
    }
}

fn validate_sku(sku: &str) -> ApiResult<String> {
    let sku = required_text("sku", sku, MAX_SKU)?;
    if sku.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(ApiError::bad_input(
            "sku must not contain spaces or control characters",
        ));
    }
    Ok(sku)
}

/// An image reference we store: an http(s) URL or an absolute path, without spaces.
pub fn is_image_url(url: &str) -> bool {
    (url.starts_with("https://") || url.starts_with("http://") || url.starts_with('/'))
        && url.len() <= 2000
        && !url.chars().any(char::is_whitespace)
}

fn validate_images(images: Vec<String>) -> ApiResult<Json> {
    if images.len() > MAX_IMAGES {
        return Err(ApiError::bad_input(format!(
            "images: at most {MAX_IMAGES} images"
        )));
    }
    for (i, url) in images.iter().enumerate() {
        if !is_image_url(url) {
            return Err(ApiError::bad_input(format!(
                "images[{i}]: expected an http(s) URL or an absolute path"
            )));
        }
    }
    Ok(Json::from(images))
}

fn validate_attributes(attrs: Option<Json>) -> ApiResult<Json> {
    let attrs = attrs.unwrap_or_else(|| Json::Object(Default::default()));
    let Json::Object(map) = &attrs else {
        return Err(ApiError::bad_input("attributes must be a JSON object"));
    };
    if map.len() > MAX_ATTRIBUTES {
        return Err(ApiError::bad_input(format!(
            "attributes: at most {MAX_ATTRIBUTES} keys"
        )));
    }
    for key in map.keys() {
        if key.trim().is_empty() || key.chars().count() > 100 {
            return Err(ApiError::bad_input(
                "attributes: keys must have 1 to 100 characters",
            ));
        }
    }
    Ok(attrs)
}

/// The filterable (name, value) pairs of an attribute document: top-level scalars and
/// lists of scalars, as strings.
pub fn attribute_pairs(attrs: &Json) -> Vec<(String, String)> {
    let mut out: BTreeMap<(String, String), ()> = BTreeMap::new();
    if let Json::Object(map) = attrs {
        for (k, v) in map {
            let values: Vec<&Json> = match v {
                Json::Array(items) => items.iter().collect(),
                other => vec![other],
            };
            for v in values {
                let s = match v {
                    Json::String(s) => s.clone(),
                    Json::Number(n) => n.to_string(),
                    Json::Bool(b) => b.to_string(),
                    _ => continue,
                };
                if s.chars().count() <= MAX_INDEXED_VALUE && k.chars().count() <= 100 {
                    out.insert((k.clone(), s), ());
                }
            }
        }
    }
    out.into_keys().collect()
}

async fn check_category<C: ConnectionTrait>(
    conn: &C,
    catalog_id: &str,
    category_id: Option<&str>,
) -> ApiResult<()> {
    if let Some(id) = category_id {
        check_id("categoryId", id)?;
        let cat = category::Entity::find_by_id(id.to_string())
            .one(conn)
            .await?
            .ok_or_else(|| ApiError::bad_input(format!("categoryId: category {id} not found")))?;
        if cat.catalog_id != catalog_id {
            return Err(ApiError::bad_input(
                "categoryId: the category belongs to another catalog",
            ));
        }
    }
    Ok(())
}

async fn check_sku_free<C: ConnectionTrait>(
    conn: &C,
    catalog_id: &str,
    sku: &str,
    except: Option<&str>,
) -> ApiResult<()> {
    let mut q = product::Entity::find()
        .filter(product::Column::CatalogId.eq(catalog_id))
        .filter(product::Column::Sku.eq(sku));
    if let Some(id) = except {
        q = q.filter(product::Column::Id.ne(id));
    }
    if q.one(conn).await?.is_some() {
        return Err(ApiError::conflict(format!(
            "sku '{sku}' already exists in this catalog"
        )));
    }
    Ok(())
}

/// Writes the attribute filters and search entries of these products, first removing
/// what they had when `replace` (an edit; new products have nothing to remove). SQLite
/// keeps attribute filters in the search index (see [`search::index`]); MySQL keeps a
/// row per (product, name, value).
pub async fn reindex<C: ConnectionTrait>(
    conn: &C,
    products: &[Searchable<'_>],
    replace: bool,
) -> ApiResult<()> {
    if conn.get_database_backend() != DbBackend::Sqlite {
        if replace {
            let ids: Vec<&str> = products.iter().map(|p| p.product_id).collect();
            delete_in(conn, "catalog_product_attributes", "product_id", &ids).await?;
        }
        let mut attrs: Vec<Value> = Vec::new();
        for p in products {
            for (name, value) in attribute_pairs(p.attributes) {
                attrs.push(Value::from(p.product_id.to_string()));
                attrs.push(Value::from(name));
                attrs.push(Value::from(value));
            }
        }
        insert_rows(
            conn,
            "catalog_product_attributes (product_id, name, value)",
            3,
            attrs,
        )
        .await?;
    }
    search::index(conn, products, replace).await
}

/// Inserts a validated product in an open transaction, with its index rows and event.
pub async fn insert<C: ConnectionTrait>(
    ctx: &CatalogCtx,
    conn: &C,
    cat: &catalog::Model,
    input: NewProduct,
) -> ApiResult<product::Model> {
    let sku = validate_sku(&input.sku)?;
    let price = input.price.validate("price")?;
    check_category(conn, &cat.id, input.category_id.as_deref()).await?;
    check_sku_free(conn, &cat.id, &sku, None).await?;
    let weight = validate_weight(input.weight_grams)?;
    let (length, width, height) = validate_dimensions(input.dimensions)?;
    let now = Utc::now();
    let model = product::ActiveModel {
        id: Set(ids::new_id()),
        catalog_id: Set(cat.id.clone()),
        category_id: Set(input.category_id),
        sku: Set(sku),
        name: Set(required_text("name", &input.name, MAX_NAME)?),
        description: Set(optional_text(
            "description",
            input.description.as_deref().unwrap_or(""),
            MAX_DESCRIPTION,
        )?),
        price_amount: Set(price.amount),
        price_currency: Set(price.currency),
        images: Set(validate_images(input.images)?),
        attributes: Set(validate_attributes(input.attributes)?),
        in_stock: Set(false),
        stock_version: Set(0),
        status: Set(input.status.unwrap_or(Status::Active).as_str().to_string()),
        stock_on_hand: Set(None),
        weight_grams: Set(weight),
        length_mm: Set(length),
        width_mm: Set(width),
        height_mm: Set(height),
        rating_count: Set(0),
        rating_hundredths: Set(0),
        rating_sequence: Set(0),
        created_at: Set(now),
        updated_at: Set(now),
    };
    let created = model.insert(conn).await?;
    reindex(conn, &[Searchable::of(&created)], false).await?;
    let event = ProductCreated {
        product_id: created.id.clone(),
        catalog_id: cat.id.clone(),
        supplier_id: cat.supplier_id.clone(),
        name: created.name.clone(),
    };
    ctx.outbox
        .write(
            conn,
            PRODUCT_CREATED,
            &created.id,
            serde_json::to_value(event).unwrap_or_default(),
        )
        .await?;
    describe(ctx, conn, &created).await?;
    Ok(created)
}

/// Tells recommendations what the product is like now ([`PRODUCT_DESCRIBED`]).
async fn describe<C: ConnectionTrait>(
    ctx: &CatalogCtx,
    conn: &C,
    p: &product::Model,
) -> ApiResult<()> {
    ctx.outbox
        .write(
            conn,
            PRODUCT_DESCRIBED,
            &p.id,
            serde_json::to_value(ProductFacts::of(p)).unwrap_or_default(),
        )
        .await?;
    Ok(())
}

pub async fn create(
    ctx: &CatalogCtx,
    caller: &Caller,
    input: NewProduct,
) -> ApiResult<product::Model> {
    let p = require_writer(caller)?;
    let txn = shop_kit::db::begin_write(&ctx.db).await?;
    let cat = changing_catalog(&txn, p, &input.catalog_id).await?;
    let created = insert(ctx, &txn, &cat, input).await?;
    txn.commit().await?;
    ctx.outbox.wake();
    Ok(created)
}

pub async fn update(
    ctx: &CatalogCtx,
    caller: &Caller,
    id: &str,
    changes: ProductChanges,
) -> ApiResult<product::Model> {
    let p = require_writer(caller)?;
    let txn = shop_kit::db::begin_write(&ctx.db).await?;
    let existing = get(&txn, id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("product {id} not found")))?;
    changing_catalog(&txn, p, &existing.catalog_id).await?;
    let catalog_id = existing.catalog_id.clone();
    let mut m: product::ActiveModel = existing.clone().into();
    if let Some(category_id) = changes.category_id {
        check_category(&txn, &catalog_id, category_id.as_deref()).await?;
        m.category_id = Set(category_id);
    }
    if let Some(sku) = changes.sku {
        let sku = validate_sku(&sku)?;
        check_sku_free(&txn, &catalog_id, &sku, Some(id)).await?;
        m.sku = Set(sku);
    }
    if let Some(name) = changes.name {
        m.name = Set(required_text("name", &name, MAX_NAME)?);
    }
    if let Some(d) = changes.description {
        m.description = Set(optional_text("description", &d, MAX_DESCRIPTION)?);
    }
    if let Some(price) = changes.price {
        let price = price.validate("price")?;
        m.price_amount = Set(price.amount);
        m.price_currency = Set(price.currency);
    }
    if let Some(images) = changes.images {
        m.images = Set(validate_images(images)?);
    }
    if let Some(attrs) = changes.attributes {
        m.attributes = Set(validate_attributes(Some(attrs))?);
    }
    if let Some(w) = changes.weight_grams {
        m.weight_grams = Set(validate_weight(w)?);
    }
    if let Some(d) = changes.dimensions {
        let (l, w, h) = validate_dimensions(d)?;
        m.length_mm = Set(l);
        m.width_mm = Set(w);
        m.height_mm = Set(h);
    }
    if let Some(status) = changes.status {
        m.status = Set(status.as_str().to_string());
    }
    m.updated_at = Set(Utc::now());
    let updated = m.update(&txn).await?;
    reindex(&txn, &[Searchable::of(&updated)], true).await?;
    if ProductFacts::of(&updated) != ProductFacts::of(&existing) {
        describe(ctx, &txn, &updated).await?;
    }
    if updated.name != existing.name {
        let event = ProductRenamed {
            product_id: updated.id.clone(),
            name: updated.name.clone(),
        };
        ctx.outbox
            .write(
                &txn,
                PRODUCT_RENAMED,
                &updated.id,
                serde_json::to_value(event).unwrap_or_default(),
            )
            .await?;
    }
    txn.commit().await?;
    ctx.outbox.wake();
    Ok(updated)
}

pub async fn delete(ctx: &CatalogCtx, caller: &Caller, id: &str) -> ApiResult<String> {
    let p = require_writer(caller)?;
    let txn = shop_kit::db::begin_write(&ctx.db).await?;
    let existing = get(&txn, id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("product {id} not found")))?;
    changing_catalog(&txn, p, &existing.catalog_id).await?;
    product::Entity::delete_by_id(existing.id.clone())
        .exec(&txn)
        .await?;
    let event = ProductDeleted {
        product_id: existing.id.clone(),
    };
    ctx.outbox
        .write(
            &txn,
            PRODUCT_DELETED,
            &existing.id,
            serde_json::to_value(event).unwrap_or_default(),
        )
        .await?;
    txn.commit().await?;
    ctx.outbox.wake();
    Ok(existing.id)
}

use async_graphql::dataloader::DataLoader;
use async_graphql::{Context, ID, Json, Object, Result, SimpleObject};
use chrono::{DateTime, Utc};
use shop_kit::db::ByIdLoader;
use shop_kit::money::Money;
use shop_kit::pagination::Paged;

use super::inputs::{ProductFilter, ProductSort, page};
use crate::entity::{catalog, category, product};
use crate::service::products::Status;
use crate::service::{CatalogCtx, categories, search};

/// A supplier's catalog of products.
pub struct Catalog(pub catalog::Model);

/// The users subgraph's account, referenced by id.
#[derive(async_graphql::SimpleObject)]
#[graphql(unresolvable = "id")]
pub struct User {
    pub id: ID,
}

#[Object]
impl Catalog {
    async fn id(&self) -> ID {
        ID(self.0.id.clone())
    }
    /// The user id of the supplier who owns the catalog.
    async fn supplier_id(&self) -> ID {
        ID(self.0.supplier_id.clone())
    }
    /// The supplier who sells from this catalog (`name` is public).
    async fn supplier(&self) -> Option<User> {
        Some(User {
            id: ID(self.0.supplier_id.clone()),
        })
    }
    async fn name(&self) -> &str {
        &self.0.name
    }
    async fn description(&self) -> &str {
        &self.0.description
    }
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }
    async fn updated_at(&self) -> DateTime<Utc> {
        self.0.updated_at
    }
    /// Top-level categories; walk `children` for the rest of the tree.
    async fn categories(&self, ctx: &Context<'_>) -> Result<Vec<Category>> {
        let db = &ctx.data::<CatalogCtx>()?.reads;
        Ok(categories::children(db, &self.0.id, None)
            .await?
            .into_iter()
            .map(Category)
            .collect())
    }
    /// This catalog's products; `filter.catalogId` is ignored here.
    #[allow(clippy::too_many_arguments)]
    async fn products(
        &self,
        ctx: &Context<'_>,
        filter: Option<ProductFilter>,
        search: Option<String>,
        sort: Option<ProductSort>,
        first: Option<i32>,
        after: Option<String>,
        last: Option<i32>,
        before: Option<String>,
    ) -> Result<Paged<Product>> {
        let mut q = filter.unwrap_or_default().into_query(search, sort);
        q.catalog_id = Some(self.0.id.clone());
        list_products(ctx, q, first, after, last, before).await
    }
}

/// A node of a catalog's category tree.
pub struct Category(pub category::Model);

#[Object]
impl Category {
    async fn id(&self) -> ID {
        ID(self.0.id.clone())
    }
    async fn catalog_id(&self) -> ID {
        ID(self.0.catalog_id.clone())
    }
    async fn name(&self) -> &str {
        &self.0.name
    }
    /// Order among its siblings.
    async fn position(&self) -> i32 {
        self.0.position
    }
    async fn catalog(&self, ctx: &Context<'_>) -> Result<Option<Catalog>> {
        let loader = ctx.data::<DataLoader<ByIdLoader<catalog::Entity>>>()?;
        Ok(loader
            .load_one(self.0.catalog_id.clone())
            .await?
            .map(Catalog))
    }
    async fn parent(&self, ctx: &Context<'_>) -> Result<Option<Category>> {
        let Some(parent) = &self.0.parent_id else {
            return Ok(None);
        };
        let loader = ctx.data::<DataLoader<ByIdLoader<category::Entity>>>()?;
        Ok(loader.load_one(parent.clone()).await?.map(Category))
    }
    async fn children(&self, ctx: &Context<'_>) -> Result<Vec<Category>> {
        let db = &ctx.data::<CatalogCtx>()?.reads;
        Ok(
            categories::children(db, &self.0.catalog_id, Some(&self.0.id))
                .await?
                .into_iter()
                .map(Category)
                .collect(),
        )
    }
    /// From the top-level category down to this one.
    async fn path(&self, ctx: &Context<'_>) -> Result<Vec<Category>> {
        let db = &ctx.data::<CatalogCtx>()?.reads;
        Ok(categories::path(db, &self.0)
            .await?
            .into_iter()
            .map(Category)
            .collect())
    }
    /// Products in this category and (unless `includeSubcategories: false`) below it.
    #[allow(clippy::too_many_arguments)]
    async fn products(
        &self,
        ctx: &Context<'_>,
        #[graphql(default = true)] include_subcategories: bool,
        filter: Option<ProductFilter>,
        search: Option<String>,
        sort: Option<ProductSort>,
        first: Option<i32>,
        after: Option<String>,
        last: Option<i32>,
        before: Option<String>,
    ) -> Result<Paged<Product>> {
        let mut q = filter.unwrap_or_default().into_query(search, sort);
        q.category_id = Some(self.0.id.clone());
        q.include_subcategories = include_subcategories;
        list_products(ctx, q, first, after, last, before).await
    }
}

/// A product of a catalog. Stock fields come from the inventory subgraph.
pub struct Product(pub product::Model);

#[Object]
impl Product {
    async fn id(&self) -> ID {
        ID(self.0.id.clone())
    }
    async fn catalog_id(&self) -> ID {
        ID(self.0.catalog_id.clone())
    }
    /// Unique within its catalog.
    async fn sku(&self) -> &str {
        &self.0.sku
    }
    async fn name(&self) -> &str {
        &self.0.name
    }
    async fn description(&self) -> &str {
        &self.0.description
    }
    async fn price(&self) -> Money {
        Money {
            amount: self.0.price_amount,
            currency: self.0.price_currency.clone(),
        }
    }
    async fn images(&self) -> Vec<String> {
        match &self.0.images {
            serde_json::Value::Array(items) => items
                .iter()
                .filter_map(|v| v.as_str().map(str::to_string))
                .collect(),
            _ => Vec::new(),
        }
    }
    /// The free-form attribute document.
    async fn attributes(&self) -> Json<serde_json::Value> {
        Json(self.0.attributes.clone())
    }
    /// Shipping weight in grams; null until the supplier gives it (shipping then rates
    /// the product as weightless).
    async fn weight_grams(&self) -> Option<i32> {
        self.0.weight_grams.and_then(|g| i32::try_from(g).ok())
    }
    /// Outer size of the packed product; null until given.
    async fn dimensions(&self) -> Option<Dimensions> {
        let side = |v: Option<i64>| v.and_then(|v| i32::try_from(v).ok());
        Some(Dimensions {
            length_mm: side(self.0.length_mm)?,
            width_mm: side(self.0.width_mm)?,
            height_mm: side(self.0.height_mm)?,
        })
    }
    /// ACTIVE products are shown and sold; DRAFT and ARCHIVED ones are not.
    async fn status(&self) -> Status {
        Status::parse(&self.0.status).unwrap_or(Status::Archived)
    }
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }
    async fn updated_at(&self) -> DateTime<Utc> {
        self.0.updated_at
    }
    async fn catalog(&self, ctx: &Context<'_>) -> Result<Option<Catalog>> {
        let loader = ctx.data::<DataLoader<ByIdLoader<catalog::Entity>>>()?;
        Ok(loader
            .load_one(self.0.catalog_id.clone())
            .await?
            .map(Catalog))
    }
    async fn category(&self, ctx: &Context<'_>) -> Result<Option<Category>> {
        let Some(id) = &self.0.category_id else {
            return Ok(None);
        };
        let loader = ctx.data::<DataLoader<ByIdLoader<category::Entity>>>()?;
        Ok(loader.load_one(id.clone()).await?.map(Category))
    }
}

pub(crate) async fn list_products(
    ctx: &Context<'_>,
    q: search::ProductQuery,
    first: Option<i32>,
    after: Option<String>,
    last: Option<i32>,
    before: Option<String>,
) -> Result<Paged<Product>> {
    let svc = ctx.data::<CatalogCtx>()?;
    check_statuses(ctx, svc, &q).await?;
    let (window, rows) = search::find(svc, &q, &page(first, after, last, before)).await?;
    Ok(window.connection(rows.into_iter().map(Product).collect()))
}

/// Drafts and archived products are the supplier's business only.
pub(crate) async fn check_statuses(
    ctx: &Context<'_>,
    svc: &CatalogCtx,
    q: &search::ProductQuery,
) -> Result<()> {
    if q.statuses.iter().any(|s| *s != Status::Active) {
        let Some(catalog_id) = &q.catalog_id else {
            return Err(shop_kit::ApiError::bad_input(
                "filter.status: statuses other than ACTIVE need a catalog (filter.catalogId)",
            )
            .into());
        };
        let who = shop_kit::auth::caller(ctx);
        let p = crate::service::access::require_writer(&who)?;
        crate::service::access::writable_catalog(&svc.db, p, catalog_id).await?;
    }
    Ok(())
}

/// A packed product's outer size in millimetres.
#[derive(SimpleObject)]
pub struct Dimensions {
    pub length_mm: i32,
    pub width_mm: i32,
    pub height_mm: i32,
}

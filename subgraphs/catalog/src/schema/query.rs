use async_graphql::dataloader::DataLoader;
use async_graphql::{Context, ID, Object, Result};
use shop_kit::db::ByIdLoader;
use shop_kit::pagination::Paged;

use super::facets::{ProductFacets, product_facets};
use super::imports::{CatalogImport, catalog_import};
use super::inputs::{ProductFilter, ProductSort, page};
use super::types::{Catalog, Category, Product, list_products};
use crate::entity::{catalog, category, product};
use crate::service::{CatalogCtx, catalogs, categories, products};

pub struct QueryRoot;

#[Object(name = "Query")]
impl QueryRoot {
    /// All catalogs (or one supplier's), by name.
    async fn catalogs(
        &self,
        ctx: &Context<'_>,
        supplier_id: Option<ID>,
        first: Option<i32>,
        after: Option<String>,
        last: Option<i32>,
        before: Option<String>,
    ) -> Result<Paged<Catalog>> {
        let svc = ctx.data::<CatalogCtx>()?;
        let (window, rows) = catalogs::list(
            svc,
            supplier_id.as_ref().map(|s| s.as_str()),
            &page(first, after, last, before),
        )
        .await?;
        Ok(window.connection(rows.into_iter().map(Catalog).collect()))
    }

    async fn catalog(&self, ctx: &Context<'_>, id: ID) -> Result<Option<Catalog>> {
        Ok(catalogs::get(&ctx.data::<CatalogCtx>()?.reads, &id)
            .await?
            .map(Catalog))
    }

    async fn category(&self, ctx: &Context<'_>, id: ID) -> Result<Option<Category>> {
        Ok(categories::get(&ctx.data::<CatalogCtx>()?.reads, &id)
            .await?
            .map(Category))
    }

    /// A product by `id`, or by `sku` (with `catalogId` when the SKU is used in several catalogs).
    /// Drafts only for their catalog's supplier and admins; archived products for
    /// everyone (with their `status`), as orders still show them.
    async fn product(
        &self,
        ctx: &Context<'_>,
        id: Option<ID>,
        sku: Option<String>,
        catalog_id: Option<ID>,
    ) -> Result<Option<Product>> {
        let db = &ctx.data::<CatalogCtx>()?.reads;
        let found = match (id, sku) {
            (Some(id), None) => products::get(db, &id).await?,
            (None, Some(sku)) => {
                products::get_by_sku(db, catalog_id.as_ref().map(|c| c.as_str()), &sku).await?
            }
            _ => return Err(shop_kit::ApiError::bad_input("pass exactly one of id or sku").into()),
        };
        // A draft is not out yet: only those who may change its catalog see it. (An
        // archived product stays visible: orders and links still point at it.)
        if let Some(p) = &found
            && p.status == crate::service::products::Status::Draft.as_str()
        {
            let who = shop_kit::auth::caller(ctx);
            let allowed = match crate::service::access::require_writer(&who) {
                Ok(principal) => {
                    crate::service::access::writable_catalog(db, principal, &p.catalog_id)
                        .await
                        .is_ok()
                }
                Err(_) => false,
            };
            if !allowed {
                return Ok(None);
            }
        }
        Ok(found.map(Product))
    }

    /// Search and filter products across catalogs.
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
        let q = filter.unwrap_or_default().into_query(search, sort);
        list_products(ctx, q, first, after, last, before).await
    }

    /// How the products that `products(filter:, search:)` lists divide by category,
    /// attribute value, price band and stock: the counts beside a storefront's filters.
    async fn product_facets(
        &self,
        ctx: &Context<'_>,
        filter: Option<ProductFilter>,
        search: Option<String>,
        #[graphql(
            desc = "Price band boundaries in minor units, increasing (at most 20); by default 2500, 5000, 10000, 25000, 50000."
        )]
        price_bands: Option<Vec<i64>>,
    ) -> Result<ProductFacets> {
        let q = filter.unwrap_or_default().into_query(search, None);
        product_facets(ctx, q, price_bands).await
    }

    /// An import job (its catalog's supplier or an admin).
    async fn catalog_import(&self, ctx: &Context<'_>, id: ID) -> Result<CatalogImport> {
        catalog_import(ctx, &id).await
    }

    /// Import jobs, newest first: a catalog's, or (without `catalogId`) every one of
    /// the caller's catalogs, and for an admin every import there is; `status` keeps
    /// the jobs in that state.
    #[allow(clippy::too_many_arguments)] // GraphQL arguments, one each.
    async fn catalog_imports(
        &self,
        ctx: &Context<'_>,
        catalog_id: Option<ID>,
        status: Option<crate::service::imports::JobStatus>,
        first: Option<i32>,
        after: Option<String>,
        last: Option<i32>,
        before: Option<String>,
    ) -> Result<Paged<CatalogImport>> {
        let svc = ctx.data::<CatalogCtx>()?;
        let (window, rows) = crate::service::imports::list(
            svc,
            &shop_kit::auth::caller(ctx),
            catalog_id.as_ref().map(|c| c.as_str()),
            status,
            &page(first, after, last, before),
        )
        .await?;
        Ok(window.connection(rows.into_iter().map(CatalogImport).collect()))
    }

    #[graphql(entity)]
    async fn find_catalog_by_id(&self, ctx: &Context<'_>, id: ID) -> Result<Option<Catalog>> {
        let loader = ctx.data::<DataLoader<ByIdLoader<catalog::Entity>>>()?;
        Ok(loader.load_one(id.0).await?.map(Catalog))
    }

    #[graphql(entity)]
    async fn find_category_by_id(&self, ctx: &Context<'_>, id: ID) -> Result<Option<Category>> {
        let loader = ctx.data::<DataLoader<ByIdLoader<category::Entity>>>()?;
        Ok(loader.load_one(id.0).await?.map(Category))
    }

    #[graphql(entity)]
    async fn find_product_by_id(&self, ctx: &Context<'_>, id: ID) -> Result<Option<Product>> {
        let loader = ctx.data::<DataLoader<ByIdLoader<product::Entity>>>()?;
        Ok(loader.load_one(id.0).await?.map(Product))
    }

    #[graphql(entity)]
    async fn find_product_by_catalog_id_and_sku(
        &self,
        ctx: &Context<'_>,
        catalog_id: ID,
        sku: String,
    ) -> Result<Option<Product>> {
        let db = &ctx.data::<CatalogCtx>()?.reads;
        Ok(products::get_by_sku(db, Some(&catalog_id), &sku)
            .await?
            .map(Product))
    }
}

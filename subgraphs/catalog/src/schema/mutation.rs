use async_graphql::{Context, ID, Object, Result};
use shop_kit::auth::caller;

use super::inputs::{
    CreateCatalogInput, CreateCategoryInput, CreateProductInput, UpdateCatalogInput,
    UpdateProductInput,
};
use super::types::{Catalog, Category, Product};
use crate::service::products::{NewProduct, ProductChanges};
use crate::service::{CatalogCtx, catalogs, categories, products};

pub struct MutationRoot;

#[Object(name = "Mutation")]
impl MutationRoot {
    /// Creates a catalog owned by the calling supplier (admins may name another supplier).
    #[graphql(requires_scopes = "catalog:write")]
    async fn create_catalog(
        &self,
        ctx: &Context<'_>,
        input: CreateCatalogInput,
    ) -> Result<Catalog> {
        let new = catalogs::NewCatalog {
            name: input.name,
            description: input.description,
            supplier_id: input.supplier_id.map(|s| s.0),
        };
        Ok(Catalog(
            catalogs::create(ctx.data::<CatalogCtx>()?, &caller(ctx), new).await?,
        ))
    }

    /// Renames a catalog or changes its description.
    #[graphql(requires_scopes = "catalog:write")]
    async fn update_catalog(
        &self,
        ctx: &Context<'_>,
        id: ID,
        input: UpdateCatalogInput,
    ) -> Result<Catalog> {
        let svc = ctx.data::<CatalogCtx>()?;
        Ok(Catalog(
            catalogs::update(svc, &caller(ctx), &id, input.name, input.description).await?,
        ))
    }

    /// Deletes a catalog with all its categories and products (and, through inventory, their stock).
    #[graphql(requires_scopes = "catalog:write")]
    async fn delete_catalog(&self, ctx: &Context<'_>, id: ID) -> Result<ID> {
        Ok(ID(catalogs::delete(
            ctx.data::<CatalogCtx>()?,
            &caller(ctx),
            &id,
        )
        .await?))
    }

    #[graphql(requires_scopes = "catalog:write")]
    async fn create_category(
        &self,
        ctx: &Context<'_>,
        input: CreateCategoryInput,
    ) -> Result<Category> {
        let svc = ctx.data::<CatalogCtx>()?;
        let created = categories::create(
            svc,
            &caller(ctx),
            &input.catalog_id,
            input.parent_id.as_ref().map(|p| p.as_str()),
            &input.name,
        )
        .await?;
        Ok(Category(created))
    }

    #[graphql(requires_scopes = "catalog:write")]
    async fn rename_category(&self, ctx: &Context<'_>, id: ID, name: String) -> Result<Category> {
        Ok(Category(
            categories::rename(ctx.data::<CatalogCtx>()?, &caller(ctx), &id, &name).await?,
        ))
    }

    /// Moves a category under another of the same catalog (`parentId: null` for the top level).
    #[graphql(requires_scopes = "catalog:write")]
    async fn move_category(
        &self,
        ctx: &Context<'_>,
        id: ID,
        parent_id: Option<ID>,
    ) -> Result<Category> {
        let svc = ctx.data::<CatalogCtx>()?;
        Ok(Category(
            categories::move_to(
                svc,
                &caller(ctx),
                &id,
                parent_id.as_ref().map(|p| p.as_str()),
            )
            .await?,
        ))
    }

    /// Deletes a category. A non-empty one is refused with CONFLICT unless
    /// `moveContentsToParent: true` moves its products and subcategories to its parent.
    #[graphql(requires_scopes = "catalog:write")]
    async fn delete_category(
        &self,
        ctx: &Context<'_>,
        id: ID,
        #[graphql(default = false)] move_contents_to_parent: bool,
    ) -> Result<ID> {
        let svc = ctx.data::<CatalogCtx>()?;
        Ok(ID(categories::delete(
            svc,
            &caller(ctx),
            &id,
            move_contents_to_parent,
        )
        .await?))
    }

    #[graphql(requires_scopes = "catalog:write")]
    async fn create_product(
        &self,
        ctx: &Context<'_>,
        input: CreateProductInput,
    ) -> Result<Product> {
        let new = NewProduct {
            catalog_id: input.catalog_id.0,
            category_id: input.category_id.map(|c| c.0),
            sku: input.sku,
            name: input.name,
            description: input.description,
            price: input.price,
            images: input.images,
            attributes: input.attributes.map(|a| a.0),
        };
        Ok(Product(
            products::create(ctx.data::<CatalogCtx>()?, &caller(ctx), new).await?,
        ))
    }

    #[graphql(requires_scopes = "catalog:write")]
    async fn update_product(
        &self,
        ctx: &Context<'_>,
        id: ID,
        input: UpdateProductInput,
    ) -> Result<Product> {
        let changes = ProductChanges {
            category_id: match input.category_id {
                async_graphql::MaybeUndefined::Undefined => None,
                async_graphql::MaybeUndefined::Null => Some(None),
                async_graphql::MaybeUndefined::Value(v) => Some(Some(v.0)),
            },
            sku: input.sku,
            name: input.name,
            description: input.description,
            price: input.price,
            images: input.images,
            attributes: input.attributes.map(|a| a.0),
        };
        Ok(Product(
            products::update(ctx.data::<CatalogCtx>()?, &caller(ctx), &id, changes).await?,
        ))
    }

    #[graphql(requires_scopes = "catalog:write")]
    async fn delete_product(&self, ctx: &Context<'_>, id: ID) -> Result<ID> {
        Ok(ID(products::delete(
            ctx.data::<CatalogCtx>()?,
            &caller(ctx),
            &id,
        )
        .await?))
    }
}

use async_graphql::{Context, ID, Object, Result};
use shop_kit::auth::caller;

use super::imports::{CatalogExport, CatalogImport, CatalogImportOptions, CatalogUpload};
use super::inputs::{
    CreateCatalogInput, CreateCategoryInput, CreateProductInput, DimensionsInput,
    UpdateCatalogInput, UpdateProductInput,
};
use super::types::{Catalog, Category, Product};
use crate::service::products::{NewProduct, ProductChanges};
use crate::service::{CatalogCtx, catalogs, categories, exports, imports, products, uploads};

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
            weight_grams: input.weight_grams,
            dimensions: input.dimensions.map(DimensionsInput::sides),
            status: input.status,
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
            category_id: maybe(input.category_id).map(|c| c.map(|id| id.0)),
            sku: input.sku,
            name: input.name,
            description: input.description,
            price: input.price,
            images: input.images,
            attributes: input.attributes.map(|a| a.0),
            weight_grams: maybe(input.weight_grams),
            dimensions: maybe(input.dimensions).map(|d| d.map(DimensionsInput::sides)),
            status: input.status,
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

    /// Starts importing a file into a catalog: `file` (a GraphQL multipart upload), or
    /// `uploadId` (a staged upload, see `createUpload`). The job runs in the background;
    /// follow it with `catalogImport(id)` or the `catalogImportProgress` subscription.
    /// Refused with CONFLICT while another import of the catalog is queued or running.
    #[graphql(requires_scopes = "catalog:write")]
    async fn start_catalog_import(
        &self,
        ctx: &Context<'_>,
        catalog_id: ID,
        file: Option<async_graphql::Upload>,
        upload_id: Option<ID>,
        options: Option<CatalogImportOptions>,
    ) -> Result<CatalogImport> {
        let svc = ctx.data::<CatalogCtx>()?;
        let who = caller(ctx);
        imports::authorize_start(svc, &who, &catalog_id).await?;
        let upload = match (file, upload_id) {
            (Some(file), None) => {
                let value = file.value(ctx).map_err(|e| {
                    shop_kit::ApiError::bad_input(format!("file: the upload is unreadable: {e}"))
                })?;
                let owner = who.require()?.user_id.clone();
                let content = tokio::fs::File::from_std(value.content);
                uploads::store(
                    &svc.db,
                    &owner,
                    &value.filename,
                    value
                        .content_type
                        .as_deref()
                        .unwrap_or("application/octet-stream"),
                    content,
                    svc.max_upload_bytes,
                )
                .await?
            }
            (None, Some(id)) => {
                shop_kit::input::check_id("uploadId", &id)?;
                uploads::get(&svc.db, &id).await?.ok_or_else(|| {
                    shop_kit::ApiError::not_found(format!("upload {} not found", id.as_str()))
                })?
            }
            _ => {
                return Err(
                    shop_kit::ApiError::bad_input("pass exactly one of file or uploadId").into(),
                );
            }
        };
        let options = options.unwrap_or_default().into_options();
        let started = imports::start(svc, &who, &catalog_id, &upload, options).await;
        if started.is_err() && upload_id_is_new(&upload) {
            uploads::discard(&svc.db, &upload.id).await;
        }
        Ok(CatalogImport(started?))
    }

    /// Reserves a staged upload of `size` bytes (for files too big for one request, or
    /// a flaky link): see `CatalogUpload`. Kept 24 hours.
    #[graphql(requires_scopes = "catalog:write")]
    async fn create_catalog_upload(
        &self,
        ctx: &Context<'_>,
        file_name: String,
        size: i64,
        content_type: Option<String>,
    ) -> Result<CatalogUpload> {
        let svc = ctx.data::<CatalogCtx>()?;
        let who = caller(ctx);
        let p = crate::service::access::require_writer(&who)?;
        let file_name = shop_kit::input::required_text("fileName", &file_name, 255)?;
        if size <= 0 {
            return Err(shop_kit::ApiError::bad_input(
                "size: the file's size in bytes, more than 0",
            )
            .into());
        }
        if size as u64 > svc.max_upload_bytes {
            return Err(shop_kit::ApiError::bad_input(format!(
                "size: files are at most {} bytes",
                svc.max_upload_bytes
            ))
            .into());
        }
        let up = uploads::create(
            &svc.db,
            &p.user_id,
            &file_name,
            content_type
                .as_deref()
                .unwrap_or("application/octet-stream"),
            Some(size),
        )
        .await?;
        Ok(up.into())
    }

    /// A download of the catalog's products in the import's own columns: importing it
    /// back changes nothing. The link works for an hour. A workbook (XLSX) holds at most
    /// 1,048,575 products; larger catalogs export as CSV or JSON Lines.
    #[graphql(requires_scopes = "catalog:write")]
    async fn export_catalog(
        &self,
        ctx: &Context<'_>,
        catalog_id: ID,
        #[graphql(default_with = "imports::Format::Csv")] format: imports::Format,
    ) -> Result<CatalogExport> {
        let link =
            exports::create(ctx.data::<CatalogCtx>()?, &caller(ctx), &catalog_id, format).await?;
        Ok(CatalogExport {
            url: link.url,
            file_name: link.file_name,
            expires_at: link.expires_at,
        })
    }

    /// Applies a dry run's changes, exactly those. CONFLICT if the catalog changed since
    /// the dry run, or another import of it runs.
    #[graphql(requires_scopes = "catalog:write")]
    async fn apply_catalog_import(&self, ctx: &Context<'_>, id: ID) -> Result<CatalogImport> {
        Ok(CatalogImport(
            imports::apply(ctx.data::<CatalogCtx>()?, &caller(ctx), &id).await?,
        ))
    }

    /// Stops an import: a queued or reviewed one at once, a running one at its next
    /// batch (what it applied is rolled back first).
    #[graphql(requires_scopes = "catalog:write")]
    async fn cancel_catalog_import(&self, ctx: &Context<'_>, id: ID) -> Result<CatalogImport> {
        Ok(CatalogImport(
            imports::cancel(ctx.data::<CatalogCtx>()?, &caller(ctx), &id).await?,
        ))
    }

    /// Undoes an applied import: every product it created, changed, archived or deleted
    /// goes back to its state before, except those changed since (listed as KEPT).
    #[graphql(requires_scopes = "catalog:write")]
    async fn rollback_catalog_import(&self, ctx: &Context<'_>, id: ID) -> Result<CatalogImport> {
        Ok(CatalogImport(
            imports::rollback(ctx.data::<CatalogCtx>()?, &caller(ctx), &id).await?,
        ))
    }
}

/// An upload stored by this request (a multipart file), as opposed to a staged one the
/// caller may still use.
fn upload_id_is_new(upload: &crate::entity::upload::Model) -> bool {
    upload.size.is_none()
}

/// An optional, nullable input as a change: absent leaves the field, `null` clears it.
fn maybe<T>(v: async_graphql::MaybeUndefined<T>) -> Option<Option<T>> {
    match v {
        async_graphql::MaybeUndefined::Undefined => None,
        async_graphql::MaybeUndefined::Null => Some(None),
        async_graphql::MaybeUndefined::Value(v) => Some(Some(v)),
    }
}

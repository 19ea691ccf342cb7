use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::DatabaseBackend;

use crate::util::*;

/// Catalog imports: products get a status (active, draft, archived) and catalogs a
/// revision (bumped by every product write, so an import reviewed at one revision can
/// tell that the catalog changed before it is applied); import jobs with their staged
/// changes and row errors; uploaded files, stored in chunks so any replica can read them.
#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        add_columns(
            manager,
            "catalog_products",
            vec![
                ColumnDef::new(Alias::new("status"))
                    .string_len(16)
                    .not_null()
                    .default("active")
                    .to_owned(),
                // Units on hand as inventory last told (or an import set): an import's
                // stock column equal to it is no change.
                ColumnDef::new(Alias::new("stock_on_hand"))
                    .big_integer()
                    .null()
                    .to_owned(),
            ],
        )
        .await?;
        manager
            .create_index(index(
                "catalog_products",
                "idx_catalog_products_catalog_status",
                &["catalog_id", "status"],
                false,
            ))
            .await?;
        add_columns(manager, "catalog_catalogs", vec![count("revision")]).await?;

        manager
            .create_table(
                Table::create()
                    .table(Alias::new("catalog_imports"))
                    .col(id("id"))
                    .col(string("catalog_id", 36))
                    .col(string("supplier_id", 64))
                    .col(string("created_by", 64))
                    .col(string("status", 16))
                    .col(flag("dry_run"))
                    .col(string("on_error", 16))
                    .col(string("missing", 16))
                    .col(string("format", 16))
                    .col(text("options"))
                    .col(string("file_name", 255))
                    .col(string_null("upload_id", 36))
                    .col(count("file_size"))
                    .col(
                        ColumnDef::new(Alias::new("catalog_revision"))
                            .big_integer()
                            .null()
                            .to_owned(),
                    )
                    .col(count("rows_total"))
                    .col(count("to_create"))
                    .col(count("to_update"))
                    .col(count("unchanged"))
                    .col(count("to_archive"))
                    .col(count("to_delete"))
                    .col(count("failed"))
                    .col(count("bytes_read"))
                    .col(count("applied"))
                    .col(count("rolled_back"))
                    .col(count("rollback_skipped"))
                    .col(text("unknown_columns"))
                    .col(text_null("failure"))
                    .col(flag("cancel_requested"))
                    .col(string_null("lease_owner", 64))
                    .col(timestamp_null("lease_until"))
                    .col(timestamp("created_at"))
                    .col(timestamp_null("started_at"))
                    .col(timestamp_null("validated_at"))
                    .col(timestamp_null("apply_started_at"))
                    .col(timestamp_null("finished_at"))
                    .col(timestamp("updated_at"))
                    .foreign_key(&mut fk(
                        "fk_imports_catalog",
                        ("catalog_imports", "catalog_id"),
                        ("catalog_catalogs", "id"),
                        ForeignKeyAction::Cascade,
                    ))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(index(
                "catalog_imports",
                "idx_catalog_imports_catalog",
                &["catalog_id", "created_at"],
                false,
            ))
            .await?;
        manager
            .create_index(index(
                "catalog_imports",
                "idx_catalog_imports_status",
                &["status"],
                false,
            ))
            .await?;

        // One staged change of an import: a product to create, update, archive or
        // delete, with the state it had before (for review and rollback).
        manager
            .create_table(
                Table::create()
                    .table(Alias::new("catalog_import_changes"))
                    .col(string("import_id", 36))
                    .col(big("seq"))
                    .col(
                        ColumnDef::new(Alias::new("row_no"))
                            .big_integer()
                            .null()
                            .to_owned(),
                    )
                    .col(string("sku", 64))
                    .col(string("kind", 16))
                    .col(string("product_id", 36))
                    .col(text_null("before_doc"))
                    .col(text_null("after_doc"))
                    .col(text("changed_fields"))
                    .col(string_null("written_hash", 16))
                    .col(string("state", 16))
                    .primary_key(
                        Index::create()
                            .col(Alias::new("import_id"))
                            .col(Alias::new("seq")),
                    )
                    .foreign_key(&mut fk(
                        "fk_import_changes_import",
                        ("catalog_import_changes", "import_id"),
                        ("catalog_imports", "id"),
                        ForeignKeyAction::Cascade,
                    ))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(index(
                "catalog_import_changes",
                "idx_catalog_import_changes_kind",
                &["import_id", "kind", "seq"],
                false,
            ))
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(Alias::new("catalog_import_errors"))
                    .col(string("import_id", 36))
                    .col(big("seq"))
                    .col(big("row_no"))
                    .col(string_null("column_name", 100))
                    .col(string("code", 32))
                    .col(text("message"))
                    .col(text_null("value"))
                    .primary_key(
                        Index::create()
                            .col(Alias::new("import_id"))
                            .col(Alias::new("seq")),
                    )
                    .foreign_key(&mut fk(
                        "fk_import_errors_import",
                        ("catalog_import_errors", "import_id"),
                        ("catalog_imports", "id"),
                        ForeignKeyAction::Cascade,
                    ))
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(Alias::new("catalog_uploads"))
                    .col(id("id"))
                    .col(string("owner_id", 64))
                    .col(string("file_name", 255))
                    .col(string("content_type", 100))
                    .col(
                        ColumnDef::new(Alias::new("size"))
                            .big_integer()
                            .null()
                            .to_owned(),
                    )
                    .col(count("received"))
                    .col(flag("complete"))
                    .col(timestamp("created_at"))
                    .col(timestamp("expires_at"))
                    .to_owned(),
            )
            .await?;
        // A link to an export: the token's hash, what it exports, until when.
        manager
            .create_table(
                Table::create()
                    .table(Alias::new("catalog_exports"))
                    .col(
                        ColumnDef::new(Alias::new("token_hash"))
                            .string_len(64)
                            .not_null()
                            .primary_key(),
                    )
                    .col(string("catalog_id", 36))
                    .col(string("format", 16))
                    .col(string("file_name", 255))
                    .col(string("created_by", 64))
                    .col(timestamp("created_at"))
                    .col(timestamp("expires_at"))
                    .foreign_key(&mut fk(
                        "fk_exports_catalog",
                        ("catalog_exports", "catalog_id"),
                        ("catalog_catalogs", "id"),
                        ForeignKeyAction::Cascade,
                    ))
                    .to_owned(),
            )
            .await?;
        // Chunks of at most 1 MiB: MEDIUMBLOB (16 MiB) on MySQL, whose BLOB stops at 64 KiB.
        let data = match manager.get_database_backend() {
            DatabaseBackend::MySql => ColumnDef::new(Alias::new("data"))
                .custom(Alias::new("MEDIUMBLOB"))
                .not_null()
                .to_owned(),
            _ => ColumnDef::new(Alias::new("data"))
                .blob()
                .not_null()
                .to_owned(),
        };
        manager
            .create_table(
                Table::create()
                    .table(Alias::new("catalog_upload_chunks"))
                    .col(string("upload_id", 36))
                    .col(big("byte_offset"))
                    .col(data)
                    .primary_key(
                        Index::create()
                            .col(Alias::new("upload_id"))
                            .col(Alias::new("byte_offset")),
                    )
                    .foreign_key(&mut fk(
                        "fk_upload_chunks_upload",
                        ("catalog_upload_chunks", "upload_id"),
                        ("catalog_uploads", "id"),
                        ForeignKeyAction::Cascade,
                    ))
                    .to_owned(),
            )
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        drop(
            manager,
            &[
                "catalog_exports",
                "catalog_upload_chunks",
                "catalog_uploads",
                "catalog_import_errors",
                "catalog_import_changes",
                "catalog_imports",
            ],
        )
        .await?;
        drop_columns(manager, "catalog_catalogs", &["revision"]).await?;
        drop_index(
            manager,
            "catalog_products",
            "idx_catalog_products_catalog_status",
        )
        .await?;
        drop_columns(manager, "catalog_products", &["stock_on_hand", "status"]).await
    }
}

use sea_orm_migration::prelude::*;

use crate::util::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Alias::new("catalog_catalogs"))
                    .col(id("id"))
                    .col(string("supplier_id", 64))
                    .col(string("name", 200))
                    .col(text("description"))
                    .col(timestamp("created_at"))
                    .col(timestamp("updated_at"))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(index(
                "catalog_catalogs",
                "idx_catalog_catalogs_supplier",
                &["supplier_id"],
                false,
            ))
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(Alias::new("catalog_categories"))
                    .col(id("id"))
                    .col(string("catalog_id", 36))
                    .col(string_null("parent_id", 36))
                    .col(string("name", 200))
                    .col(int("position", 0))
                    .col(timestamp("created_at"))
                    .foreign_key(&mut fk(
                        "fk_categories_catalog",
                        ("catalog_categories", "catalog_id"),
                        ("catalog_catalogs", "id"),
                        ForeignKeyAction::Cascade,
                    ))
                    .foreign_key(&mut fk(
                        "fk_categories_parent",
                        ("catalog_categories", "parent_id"),
                        ("catalog_categories", "id"),
                        ForeignKeyAction::Cascade,
                    ))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(index(
                "catalog_categories",
                "idx_catalog_categories_parent",
                &["catalog_id", "parent_id"],
                false,
            ))
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(Alias::new("catalog_products"))
                    .col(id("id"))
                    .col(string("catalog_id", 36))
                    .col(string_null("category_id", 36))
                    .col(string("sku", 64))
                    .col(string("name", 300))
                    .col(text("description"))
                    .col(big("price_amount"))
                    .col(string("price_currency", 3))
                    .col(ColumnDef::new(Alias::new("images")).json().not_null())
                    .col(ColumnDef::new(Alias::new("attributes")).json().not_null())
                    .col(
                        ColumnDef::new(Alias::new("in_stock"))
                            .boolean()
                            .not_null()
                            .default(false),
                    )
                    .col(
                        ColumnDef::new(Alias::new("stock_version"))
                            .big_integer()
                            .not_null()
                            .default(0),
                    )
                    .col(timestamp("created_at"))
                    .col(timestamp("updated_at"))
                    .foreign_key(&mut fk(
                        "fk_products_catalog",
                        ("catalog_products", "catalog_id"),
                        ("catalog_catalogs", "id"),
                        ForeignKeyAction::Cascade,
                    ))
                    .foreign_key(&mut fk(
                        "fk_products_category",
                        ("catalog_products", "category_id"),
                        ("catalog_categories", "id"),
                        ForeignKeyAction::SetNull,
                    ))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(index(
                "catalog_products",
                "uq_catalog_products_sku",
                &["catalog_id", "sku"],
                true,
            ))
            .await?;
        manager
            .create_index(index(
                "catalog_products",
                "idx_catalog_products_category",
                &["category_id"],
                false,
            ))
            .await?;
        manager
            .create_index(index(
                "catalog_products",
                "idx_catalog_products_price",
                &["price_amount"],
                false,
            ))
            .await?;
        manager
            .create_index(index(
                "catalog_products",
                "idx_catalog_products_name",
                &["name"],
                false,
            ))
            .await?;
        manager
            .create_index(index(
                "catalog_products",
                "idx_catalog_products_created",
                &["created_at"],
                false,
            ))
            .await?;
        manager
            .create_index(index(
                "catalog_products",
                "idx_catalog_products_sku",
                &["sku"],
                false,
            ))
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(Alias::new("catalog_product_attributes"))
                    .col(string("product_id", 36))
                    .col(string("name", 100))
                    .col(string("value", 191))
                    .primary_key(
                        Index::create()
                            .col(Alias::new("product_id"))
                            .col(Alias::new("name"))
                            .col(Alias::new("value")),
                    )
                    .foreign_key(&mut fk(
                        "fk_attributes_product",
                        ("catalog_product_attributes", "product_id"),
                        ("catalog_products", "id"),
                        ForeignKeyAction::Cascade,
                    ))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(index(
                "catalog_product_attributes",
                "idx_catalog_attributes_name_value",
                &["name", "value"],
                false,
            ))
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(Alias::new("catalog_search_terms"))
                    .col(string("term", 64))
                    .col(string("product_id", 36))
                    .col(int("weight", 1))
                    .primary_key(
                        Index::create()
                            .col(Alias::new("term"))
                            .col(Alias::new("product_id")),
                    )
                    .foreign_key(&mut fk(
                        "fk_search_terms_product",
                        ("catalog_search_terms", "product_id"),
                        ("catalog_products", "id"),
                        ForeignKeyAction::Cascade,
                    ))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(index(
                "catalog_search_terms",
                "idx_catalog_search_terms_product",
                &["product_id"],
                false,
            ))
            .await?;

        manager.create_table(outbox("catalog_outbox")).await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        drop(
            manager,
            &[
                "catalog_outbox",
                "catalog_search_terms",
                "catalog_product_attributes",
                "catalog_products",
                "catalog_categories",
                "catalog_catalogs",
            ],
        )
        .await
    }
}

use sea_orm_migration::prelude::*;

/// An import's progress through its changes is one number on the job, `applied_seq`:
/// the last change applied, in order. Marking each change applied rewrote a million
/// rows of staged documents (a tenth of an apply on MySQL); the number moves in the
/// transaction that applies the batch, so it cannot disagree with the catalog. Jobs
/// applied before it keep their changes marked one by one.
#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(Alias::new("catalog_imports"))
                    .add_column(
                        ColumnDef::new(Alias::new("applied_seq"))
                            .big_integer()
                            .null(),
                    )
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // What the column said, said again the old way, before it goes.
        manager
            .get_connection()
            .execute_unprepared(
                "UPDATE catalog_import_changes SET state = 'applied' WHERE state = 'staged' AND seq <= \
                 (SELECT i.applied_seq FROM catalog_imports i WHERE i.id = catalog_import_changes.import_id)",
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(Alias::new("catalog_imports"))
                    .drop_column(Alias::new("applied_seq"))
                    .to_owned(),
            )
            .await
    }
}

//! An import job (see `service::imports`).

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "catalog_imports")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    pub catalog_id: String,
    pub supplier_id: String,
    pub created_by: String,
    pub status: String,
    pub dry_run: bool,
    pub on_error: String,
    pub missing: String,
    pub format: String,
    /// The column mapping and default currency, as JSON.
    pub options: String,
    pub file_name: String,
    pub upload_id: Option<String>,
    pub file_size: i64,
    pub catalog_revision: Option<i64>,
    pub rows_total: i64,
    pub to_create: i64,
    pub to_update: i64,
    pub unchanged: i64,
    pub to_archive: i64,
    pub to_delete: i64,
    pub failed: i64,
    pub bytes_read: i64,
    pub applied: i64,
    /// The last change applied (changes apply in order); none before the first batch.
    /// Changes up to it stay `staged` in their rows: see [`Self::change_state`].
    pub applied_seq: Option<i64>,
    pub rolled_back: i64,
    pub rollback_skipped: i64,
    /// A JSON list of the file's columns we did not know.
    pub unknown_columns: String,
    pub failure: Option<String>,
    pub cancel_requested: bool,
    pub lease_owner: Option<String>,
    pub lease_until: Option<DateTimeUtc>,
    pub created_at: DateTimeUtc,
    pub started_at: Option<DateTimeUtc>,
    pub validated_at: Option<DateTimeUtc>,
    pub apply_started_at: Option<DateTimeUtc>,
    pub finished_at: Option<DateTimeUtc>,
    pub updated_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}

impl Model {
    /// What became of one of this job's changes: its stored state, except that a
    /// `staged` change the job has applied past is `applied`.
    pub fn change_state<'a>(&self, change: &'a super::import_change::Model) -> &'a str {
        if change.state == "staged" && self.applied_seq.is_some_and(|a| change.seq <= a) {
            "applied"
        } else {
            &change.state
        }
    }
}

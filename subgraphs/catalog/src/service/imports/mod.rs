//! Catalog imports: a supplier's file becomes a job that validates every row, stages
//! the difference to the catalog (creates, updates, archives, deletes; unchanged rows
//! write nothing), waits for review when asked to (`dryRun`), applies exactly the staged
//! changes, and can be rolled back. Jobs run in the background on whichever replica
//! holds their lease (see `runner`), survive crashes, and report their progress in
//! their row.
//!
//! One import per catalog runs at a time: starting, applying or rolling back while
//! another job of the catalog is queued or running is refused with CONFLICT. A job
//! waiting for review (`READY`) does not block others; applying it after the catalog
//! changed is refused with CONFLICT.

pub mod engine;
pub mod format;
pub mod rows;
pub mod runner;
mod skus;
pub mod xlsx;

use chrono::Utc;
use sea_orm::{
    ColumnTrait, ConnectionTrait, EntityTrait, PaginatorTrait, QueryFilter, QueryOrder,
    QuerySelect, Statement, Value,
};
use serde::{Deserialize, Serialize};
use shop_kit::auth::Caller;
use shop_kit::pagination::{PageArgs, Window};
use shop_kit::{ApiError, ApiResult, ids};

use super::CatalogCtx;
use super::access::{require_writer, writable_catalog};
use crate::entity::{catalog, import, import_change, import_error, upload};
pub use format::Format;
pub use rows::ColumnMapping;

#[derive(Clone, Copy, Debug, PartialEq, Eq, async_graphql::Enum)]
#[graphql(name = "CatalogImportStatus")]
pub enum JobStatus {
    /// Waiting for a worker.
    Queued,
    /// Reading the file and computing the changes.
    Validating,
    /// A dry run's changes, waiting for `applyCatalogImport`.
    Ready,
    Applying,
    /// Applied.
    Done,
    /// Stopped by a fault of the file (or of the platform); nothing of it is applied.
    Failed,
    Cancelled,
    /// Undoing applied changes (after `rollbackCatalogImport`, a cancel or a failure
    /// while applying).
    RollingBack,
    RolledBack,
}

impl JobStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            JobStatus::Queued => "queued",
            JobStatus::Validating => "validating",
            JobStatus::Ready => "ready",
            JobStatus::Applying => "applying",
            JobStatus::Done => "done",
            JobStatus::Failed => "failed",
            JobStatus::Cancelled => "cancelled",
            JobStatus::RollingBack => "rolling_back",
            JobStatus::RolledBack => "rolled_back",
        }
    }

    pub fn parse(s: &str) -> Option<JobStatus> {
        [
            JobStatus::Queued,
            JobStatus::Validating,
            JobStatus::Ready,
            JobStatus::Applying,
            JobStatus::Done,
            JobStatus::Failed,
            JobStatus::Cancelled,
            JobStatus::RollingBack,
            JobStatus::RolledBack,
        ]
        .into_iter()
        .find(|j| j.as_str() == s)
    }

    /// Statuses a worker has work in.
    pub const RUNNING: [JobStatus; 4] = [
        JobStatus::Queued,
        JobStatus::Validating,
        JobStatus::Applying,
        JobStatus::RollingBack,
    ];

    pub fn is_finished(self) -> bool {
        matches!(
            self,
            JobStatus::Done | JobStatus::Failed | JobStatus::Cancelled | JobStatus::RolledBack
        )
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, async_graphql::Enum)]
#[graphql(name = "ImportOnError")]
pub enum OnError {
    /// Nothing is applied if any row fails.
    Abort,
    /// Good rows go in; failed rows are listed.
    SkipRows,
}

impl OnError {
    pub fn as_str(self) -> &'static str {
        match self {
            OnError::Abort => "abort",
            OnError::SkipRows => "skip_rows",
        }
    }
    pub fn parse(s: &str) -> Option<OnError> {
        match s {
            "abort" => Some(OnError::Abort),
            "skip_rows" => Some(OnError::SkipRows),
            _ => None,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, async_graphql::Enum)]
#[graphql(name = "ImportMissing")]
pub enum Missing {
    /// Products absent from the file stay as they are.
    Keep,
    /// Products absent from the file are archived (kept for orders, off the storefront).
    Archive,
    /// Products absent from the file are deleted.
    Delete,
}

impl Missing {
    pub fn as_str(self) -> &'static str {
        match self {
            Missing::Keep => "keep",
            Missing::Archive => "archive",
            Missing::Delete => "delete",
        }
    }
    pub fn parse(s: &str) -> Option<Missing> {
        match s {
            "keep" => Some(Missing::Keep),
            "archive" => Some(Missing::Archive),
            "delete" => Some(Missing::Delete),
            _ => None,
        }
    }
}

/// What a staged change does.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, async_graphql::Enum)]
#[graphql(name = "ImportChangeKind")]
pub enum Kind {
    Create,
    Update,
    Archive,
    Delete,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Create => "create",
            Kind::Update => "update",
            Kind::Archive => "archive",
            Kind::Delete => "delete",
        }
    }
    pub fn parse(s: &str) -> Option<Kind> {
        match s {
            "create" => Some(Kind::Create),
            "update" => Some(Kind::Update),
            "archive" => Some(Kind::Archive),
            "delete" => Some(Kind::Delete),
            _ => None,
        }
    }
}

/// The options kept in the job's `options` column.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StoredOptions {
    #[serde(default)]
    pub columns: ColumnMapping,
    #[serde(default)]
    pub default_currency: Option<String>,
}

/// How to run an import.
#[derive(Clone, Debug)]
pub struct ImportOptions {
    pub dry_run: bool,
    pub on_error: OnError,
    pub missing: Missing,
    pub format: Option<Format>,
    pub columns: Vec<(String, String)>,
    pub default_currency: Option<String>,
}

impl Default for ImportOptions {
    fn default() -> Self {
        ImportOptions {
            dry_run: false,
            on_error: OnError::Abort,
            missing: Missing::Keep,
            format: None,
            columns: Vec::new(),
            default_currency: None,
        }
    }
}

/// Column mappings per job.
pub const MAX_MAPPINGS: usize = 200;

fn check_options(o: &ImportOptions) -> ApiResult<StoredOptions> {
    if o.columns.len() > MAX_MAPPINGS {
        return Err(ApiError::bad_input(format!(
            "options.columns: at most {MAX_MAPPINGS} mappings"
        )));
    }
    let mut columns = ColumnMapping::default();
    for (from, to) in &o.columns {
        if from.trim().is_empty() || from.chars().count() > 200 {
            return Err(ApiError::bad_input(
                "options.columns: `from` has 1 to 200 characters",
            ));
        }
        if let rows::Column::Unknown(u) = rows::Column::from_name(to) {
            return Err(ApiError::bad_input(format!(
                "options.columns: '{u}' is not one of our columns (sku, name, description, \
                 price, currency, category, images, attributes, attr:NAME, stock, status)"
            )));
        }
        columns.0.insert(from.clone(), to.clone());
    }
    let default_currency = o
        .default_currency
        .as_deref()
        .map(shop_kit::money::parse_currency)
        .transpose()
        .map_err(|_| {
            ApiError::bad_input("options.defaultCurrency: not an ISO 4217 code we know")
        })?;
    Ok(StoredOptions {
        columns,
        default_currency,
    })
}

/// The file's format: as given, else by its name, else by how it starts.
fn format_of(given: Option<Format>, file_name: &str, head: &[u8]) -> Format {
    given
        .or_else(|| Format::from_file_name(file_name))
        .unwrap_or_else(|| {
            // A zip's local file header: a workbook.
            if head.starts_with(b"PK\x03\x04") {
                return Format::Xlsx;
            }
            let first = head
                .iter()
                .copied()
                .find(|b| !(b.is_ascii_whitespace() || *b == 0xEF || *b == 0xBB || *b == 0xBF));
            if first == Some(b'{') {
                Format::JsonLines
            } else {
                Format::Csv
            }
        })
}

/// The first bytes of an upload.
async fn file_head(db: &sea_orm::DatabaseConnection, upload_id: &str) -> ApiResult<Vec<u8>> {
    let row = db
        .query_one_raw(Statement::from_sql_and_values(
            db.get_database_backend(),
            "SELECT data FROM catalog_upload_chunks WHERE upload_id = ? AND byte_offset = 0",
            [Value::from(upload_id.to_string())],
        ))
        .await?;
    let mut data: Vec<u8> = row
        .and_then(|r| r.try_get("", "data").ok())
        .unwrap_or_default();
    data.truncate(64);
    Ok(data)
}

/// Refuses when another job of the catalog is queued or running.
async fn check_catalog_free<C: ConnectionTrait>(
    conn: &C,
    catalog_id: &str,
    except: Option<&str>,
) -> ApiResult<()> {
    let mut q = import::Entity::find()
        .filter(import::Column::CatalogId.eq(catalog_id))
        .filter(import::Column::Status.is_in(JobStatus::RUNNING.map(JobStatus::as_str)));
    if let Some(id) = except {
        q = q.filter(import::Column::Id.ne(id));
    }
    if let Some(other) = q.one(conn).await? {
        return Err(ApiError::conflict(format!(
            "import {} of this catalog is {}; one import per catalog runs at a time",
            other.id,
            JobStatus::parse(&other.status)
                .map(|s| s.as_str())
                .unwrap_or("running")
        )));
    }
    Ok(())
}

/// Takes the catalog's row lock, so two starts cannot both see it free.
async fn lock_catalog<C: ConnectionTrait>(conn: &C, catalog_id: &str) -> ApiResult<()> {
    conn.execute_raw(Statement::from_sql_and_values(
        conn.get_database_backend(),
        "UPDATE catalog_catalogs SET revision = revision WHERE id = ?",
        [Value::from(catalog_id.to_string())],
    ))
    .await?;
    Ok(())
}

/// Checks that the caller may import into the catalog, before a file is read.
pub async fn authorize_start(
    ctx: &CatalogCtx,
    caller: &Caller,
    catalog_id: &str,
) -> ApiResult<catalog::Model> {
    let p = require_writer(caller)?;
    writable_catalog(&ctx.db, p, catalog_id).await
}

/// Starts an import of a stored, complete upload.
pub async fn start(
    ctx: &CatalogCtx,
    caller: &Caller,
    catalog_id: &str,
    upload: &upload::Model,
    options: ImportOptions,
) -> ApiResult<import::Model> {
    let p = require_writer(caller)?;
    let stored = check_options(&options)?;
    if upload.owner_id != p.user_id && !p.is_admin() {
        return Err(ApiError::forbidden("this upload belongs to someone else"));
    }
    if !upload.complete {
        return Err(ApiError::bad_input(format!(
            "the upload is incomplete: {} of {} bytes received",
            upload.received,
            upload
                .size
                .map(|s| s.to_string())
                .unwrap_or_else(|| "?".into())
        )));
    }
    let format = format_of(
        options.format,
        &upload.file_name,
        &file_head(&ctx.db, &upload.id).await?,
    );
    let txn = shop_kit::db::begin_write(&ctx.db).await?;
    let cat = writable_catalog(&txn, p, catalog_id).await?;
    lock_catalog(&txn, catalog_id).await?;
    check_catalog_free(&txn, catalog_id, None).await?;
    if import::Entity::find()
        .filter(import::Column::UploadId.eq(upload.id.clone()))
        .one(&txn)
        .await?
        .is_some()
    {
        return Err(ApiError::conflict(
            "this upload was imported already; upload the file again",
        ));
    }
    let now = shop_kit::db::now_as_stored(&txn);
    let job = import::Model {
        id: ids::new_id(),
        catalog_id: cat.id.clone(),
        supplier_id: cat.supplier_id.clone(),
        created_by: p.user_id.clone(),
        status: JobStatus::Queued.as_str().into(),
        dry_run: options.dry_run,
        on_error: options.on_error.as_str().into(),
        missing: options.missing.as_str().into(),
        format: format.as_str().into(),
        options: serde_json::to_string(&stored).unwrap_or_else(|_| "{}".into()),
        file_name: upload.file_name.clone(),
        upload_id: Some(upload.id.clone()),
        file_size: upload.received,
        catalog_revision: None,
        rows_total: 0,
        to_create: 0,
        to_update: 0,
        unchanged: 0,
        to_archive: 0,
        to_delete: 0,
        failed: 0,
        bytes_read: 0,
        applied: 0,
        applied_seq: None,
        rolled_back: 0,
        rollback_skipped: 0,
        unknown_columns: "[]".into(),
        failure: None,
        cancel_requested: false,
        lease_owner: None,
        lease_until: None,
        created_at: now,
        started_at: None,
        validated_at: None,
        apply_started_at: None,
        finished_at: None,
        updated_at: now,
    };
    shop_kit::db::insert_known(&txn, import::ActiveModel::from(job.clone())).await?;
    txn.commit().await?;
    ctx.imports.wake();
    Ok(job)
}

/// A job the caller may see: its catalog's supplier, or an admin.
pub async fn visible<C: ConnectionTrait>(
    conn: &C,
    caller: &Caller,
    id: &str,
) -> ApiResult<import::Model> {
    let p = require_writer(caller)?;
    super::check_id("id", id)?;
    let job = import::Entity::find_by_id(id.to_string())
        .one(conn)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("import {id} not found")))?;
    if !p.is_admin() && job.supplier_id != p.user_id {
        return Err(ApiError::not_found(format!("import {id} not found")));
    }
    Ok(job)
}

pub async fn list(
    ctx: &CatalogCtx,
    caller: &Caller,
    catalog_id: Option<&str>,
    status: Option<JobStatus>,
    page: &PageArgs,
) -> ApiResult<(Window, Vec<import::Model>)> {
    let p = require_writer(caller)?;
    page.validate()?;
    let mut q = import::Entity::find();
    if let Some(catalog_id) = catalog_id {
        writable_catalog(&ctx.db, p, catalog_id).await?;
        q = q.filter(import::Column::CatalogId.eq(catalog_id));
    } else if !p.is_admin() {
        // A supplier has a handful of catalogs: their ids make a short IN list.
        let own: Vec<String> = catalog::Entity::find()
            .select_only()
            .column(catalog::Column::Id)
            .filter(catalog::Column::SupplierId.eq(p.user_id.as_str()))
            .into_tuple()
            .all(&ctx.db)
            .await?;
        q = q.filter(import::Column::CatalogId.is_in(own));
    }
    if let Some(status) = status {
        q = q.filter(import::Column::Status.eq(status.as_str()));
    }
    let total = q.clone().count(&ctx.db).await?;
    let window = page.window(total)?;
    let rows = q
        .order_by_desc(import::Column::CreatedAt)
        .order_by_desc(import::Column::Id)
        .offset(window.offset)
        .limit(window.limit)
        .all(&ctx.db)
        .await?;
    Ok((window, rows))
}

/// Applies a dry run's changes, exactly those, if the catalog has not changed since.
pub async fn apply(ctx: &CatalogCtx, caller: &Caller, id: &str) -> ApiResult<import::Model> {
    let txn = shop_kit::db::begin_write(&ctx.db).await?;
    let job = visible(&txn, caller, id).await?;
    let status = JobStatus::parse(&job.status);
    if status != Some(JobStatus::Ready) {
        return Err(ApiError::conflict(format!(
            "import {id} is {}; only a dry run that is ready can be applied",
            job.status
        )));
    }
    lock_catalog(&txn, &job.catalog_id).await?;
    check_catalog_free(&txn, &job.catalog_id, Some(&job.id)).await?;
    let cat = catalog::Entity::find_by_id(job.catalog_id.clone())
        .one(&txn)
        .await?
        .ok_or_else(|| ApiError::not_found("the catalog was deleted"))?;
    if Some(cat.revision) != job.catalog_revision {
        return Err(ApiError::conflict(
            "the catalog changed since this dry run; start a new import to review the changes again",
        ));
    }
    set_status(&txn, &job.id, JobStatus::Applying, None).await?;
    txn.execute_raw(Statement::from_sql_and_values(
        txn.get_database_backend(),
        "UPDATE catalog_imports SET apply_started_at = ? WHERE id = ?",
        [Value::from(Utc::now()), Value::from(job.id.clone())],
    ))
    .await?;
    txn.commit().await?;
    ctx.imports.wake();
    reload(ctx, id).await
}

/// Stops a job: a queued or reviewed one at once, a running one at its next batch (an
/// import that was applying is rolled back, then cancelled).
pub async fn cancel(ctx: &CatalogCtx, caller: &Caller, id: &str) -> ApiResult<import::Model> {
    let txn = shop_kit::db::begin_write(&ctx.db).await?;
    let job = visible(&txn, caller, id).await?;
    let mut cancelled_now = false;
    match JobStatus::parse(&job.status) {
        Some(JobStatus::Queued | JobStatus::Ready) => {
            // A queued job a worker has claimed is running in all but its status: it
            // is stopped like a running one, at the worker's next check, so that the
            // worker does not find its file gone and call the job failed.
            let res = txn
                .execute_raw(Statement::from_sql_and_values(
                    txn.get_database_backend(),
                    "UPDATE catalog_imports SET status = ?, finished_at = ?, updated_at = ?, lease_owner = NULL, lease_until = NULL WHERE id = ? AND status = ? AND (lease_until IS NULL OR lease_until < ?)",
                    [
                        Value::from(JobStatus::Cancelled.as_str()),
                        Value::from(Utc::now()),
                        Value::from(Utc::now()),
                        Value::from(job.id.clone()),
                        Value::from(job.status.clone()),
                        Value::from(Utc::now()),
                    ],
                ))
                .await?;
            cancelled_now = res.rows_affected() == 1;
            if !cancelled_now {
                request_cancel(&txn, &job.id).await?;
            }
        }
        Some(JobStatus::Validating | JobStatus::Applying | JobStatus::RollingBack) => {
            request_cancel(&txn, &job.id).await?;
        }
        _ => {
            return Err(ApiError::conflict(format!(
                "import {id} is {}; there is nothing to cancel",
                job.status
            )));
        }
    }
    txn.commit().await?;
    if let Some(upload) = &job.upload_id
        && cancelled_now
        && JobStatus::parse(&job.status) == Some(JobStatus::Queued)
    {
        super::uploads::discard(&ctx.db, upload).await;
    }
    reload(ctx, id).await
}

async fn request_cancel<C: ConnectionTrait>(conn: &C, id: &str) -> ApiResult<()> {
    conn.execute_raw(Statement::from_sql_and_values(
        conn.get_database_backend(),
        "UPDATE catalog_imports SET cancel_requested = ? WHERE id = ?",
        [Value::from(true), Value::from(id.to_string())],
    ))
    .await?;
    Ok(())
}

/// Undoes an applied import (see [`engine::rollback`]).
pub async fn rollback(ctx: &CatalogCtx, caller: &Caller, id: &str) -> ApiResult<import::Model> {
    let txn = shop_kit::db::begin_write(&ctx.db).await?;
    let job = visible(&txn, caller, id).await?;
    if JobStatus::parse(&job.status) != Some(JobStatus::Done) {
        return Err(ApiError::conflict(format!(
            "import {id} is {}; only a finished import can be rolled back",
            job.status
        )));
    }
    lock_catalog(&txn, &job.catalog_id).await?;
    check_catalog_free(&txn, &job.catalog_id, Some(&job.id)).await?;
    set_status(&txn, &job.id, JobStatus::RollingBack, None).await?;
    txn.commit().await?;
    ctx.imports.wake();
    reload(ctx, id).await
}

async fn reload(ctx: &CatalogCtx, id: &str) -> ApiResult<import::Model> {
    import::Entity::find_by_id(id.to_string())
        .one(&ctx.db)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("import {id} not found")))
}

pub(crate) async fn set_status<C: ConnectionTrait>(
    conn: &C,
    id: &str,
    status: JobStatus,
    failure: Option<&str>,
) -> ApiResult<()> {
    conn.execute_raw(Statement::from_sql_and_values(
        conn.get_database_backend(),
        "UPDATE catalog_imports SET status = ?, failure = COALESCE(?, failure), updated_at = ? WHERE id = ?",
        [
            Value::from(status.as_str()),
            Value::from(failure.map(str::to_string)),
            Value::from(Utc::now()),
            Value::from(id.to_string()),
        ],
    ))
    .await?;
    Ok(())
}

/// A page of a job's row errors, by row.
pub async fn errors(
    ctx: &CatalogCtx,
    job: &import::Model,
    page: &PageArgs,
) -> ApiResult<(Window, Vec<import_error::Model>)> {
    page.validate()?;
    let q = import_error::Entity::find().filter(import_error::Column::ImportId.eq(job.id.clone()));
    let total = q.clone().count(&ctx.db).await?;
    let window = page.window(total)?;
    let rows = q
        .order_by_asc(import_error::Column::RowNo)
        .order_by_asc(import_error::Column::Seq)
        .offset(window.offset)
        .limit(window.limit)
        .all(&ctx.db)
        .await?;
    Ok((window, rows))
}

/// A page of a job's staged (or applied) changes, optionally of some kinds.
pub async fn changes(
    ctx: &CatalogCtx,
    job: &import::Model,
    kinds: Option<Vec<Kind>>,
    page: &PageArgs,
) -> ApiResult<(Window, Vec<import_change::Model>)> {
    page.validate()?;
    let mut q =
        import_change::Entity::find().filter(import_change::Column::ImportId.eq(job.id.clone()));
    if let Some(kinds) = kinds {
        q = q.filter(import_change::Column::Kind.is_in(kinds.into_iter().map(Kind::as_str)));
    }
    let total = q.clone().count(&ctx.db).await?;
    let window = page.window(total)?;
    let rows = q
        .order_by_asc(import_change::Column::Seq)
        .offset(window.offset)
        .limit(window.limit)
        .all(&ctx.db)
        .await?;
    Ok((window, rows))
}

//! The GraphQL face of catalog imports (see `service::imports`).

use async_graphql::dataloader::DataLoader;
use async_graphql::{Context, ID, InputObject, Json, Object, Result, SimpleObject};
use chrono::{DateTime, Utc};
use shop_kit::auth::caller;
use shop_kit::db::ByIdLoader;
use shop_kit::pagination::Paged;

use super::inputs::page;
use sea_orm::EntityTrait;

use crate::entity::{import, import_change, import_error};
use crate::service::CatalogCtx;
use crate::service::imports::{self, Format, ImportOptions, JobStatus, Kind, Missing, OnError};

/// How to run an import.
#[derive(InputObject, Default)]
pub struct CatalogImportOptions {
    /// Validate and compute the changes, write nothing; the job waits in READY for
    /// `applyCatalogImport`. Default false: apply when valid.
    pub dry_run: Option<bool>,
    /// ABORT (default): nothing is applied if any row fails. SKIP_ROWS: good rows go in.
    pub on_error: Option<OnError>,
    /// What happens to products of the catalog the file does not list. Default KEEP.
    pub missing: Option<Missing>,
    /// The file's format; by default from its name (`.csv`, `.tsv`, `.jsonl`, `.xlsx`),
    /// else from its first bytes.
    pub format: Option<Format>,
    /// The file's header names mapped onto ours.
    pub columns: Option<Vec<ColumnMappingInput>>,
    /// The currency of rows without a currency cell (ISO 4217).
    pub default_currency: Option<String>,
}

/// `{ from: "Artikelnummer", to: "sku" }`: the supplier's column `from` is our `to`
/// (`sku`, `name`, `description`, `price`, `currency`, `category`, `images`,
/// `attributes`, `attr:NAME`, `stock`, `status`).
#[derive(InputObject)]
pub struct ColumnMappingInput {
    pub from: String,
    pub to: String,
}

impl CatalogImportOptions {
    pub fn into_options(self) -> ImportOptions {
        ImportOptions {
            dry_run: self.dry_run.unwrap_or(false),
            on_error: self.on_error.unwrap_or(OnError::Abort),
            missing: self.missing.unwrap_or(Missing::Keep),
            format: self.format,
            columns: self
                .columns
                .unwrap_or_default()
                .into_iter()
                .map(|c| (c.from, c.to))
                .collect(),
            default_currency: self.default_currency,
        }
    }
}

/// A link to download an export.
#[derive(SimpleObject)]
pub struct CatalogExport {
    /// At the gateway's origin (`/files/catalog/exports/…`); the link itself is the
    /// credential, so treat it as a secret. It works for an hour.
    pub url: String,
    pub file_name: String,
    pub expires_at: DateTime<Utc>,
}

/// A staged upload: `PUT` the file to `url` (with your `Authorization` header), in one
/// request or in pieces with `Content-Range: bytes START-END/SIZE`; `HEAD` on `url`
/// answers how far it got (`Upload-Offset`), for resuming after a cut. Then start the
/// import with `uploadId`.
#[derive(SimpleObject)]
pub struct CatalogUpload {
    pub id: ID,
    pub url: String,
    pub file_name: String,
    pub size: i64,
    pub received: i64,
    pub complete: bool,
    pub expires_at: DateTime<Utc>,
}

impl From<crate::entity::upload::Model> for CatalogUpload {
    fn from(u: crate::entity::upload::Model) -> Self {
        CatalogUpload {
            url: format!("/files/catalog/uploads/{}", u.id),
            id: ID(u.id),
            file_name: u.file_name,
            size: u.size.unwrap_or(u.received),
            received: u.received,
            complete: u.complete,
            expires_at: u.expires_at,
        }
    }
}

/// The counts of an import: rows read and what they come to.
#[derive(SimpleObject)]
pub struct CatalogImportCounts {
    /// Data rows read so far (the header not counted).
    pub rows: i64,
    pub to_create: i64,
    pub to_update: i64,
    /// Rows equal to the stored product: nothing is written for them.
    pub unchanged: i64,
    /// Products absent from the file to archive (`missing: ARCHIVE`).
    pub to_archive: i64,
    /// Products absent from the file to delete (`missing: DELETE`).
    pub to_delete: i64,
    /// Rows with at least one error.
    pub failed: i64,
    /// Changes applied so far.
    pub applied: i64,
    /// Changes undone by a rollback.
    pub rolled_back: i64,
    /// Changes a rollback left alone because the product changed after the import.
    pub rollback_kept: i64,
}

/// How far a job is.
#[derive(SimpleObject)]
pub struct CatalogImportProgress {
    /// 0 to 100, over the current phase.
    pub percent: i32,
    /// Bytes of the file read (while validating).
    pub bytes_read: i64,
    pub bytes_total: i64,
}

/// One fault of one row.
pub struct ImportRowError(pub import_error::Model);

#[Object]
impl ImportRowError {
    /// The row in the file (the header is row 1; a JSON Lines file's first line is row 1).
    async fn row(&self) -> i64 {
        self.0.row_no
    }
    async fn column(&self) -> Option<&str> {
        self.0.column_name.as_deref()
    }
    /// Stable: REQUIRED, TOO_LONG, INVALID_PRICE, UNKNOWN_CURRENCY, INVALID_SKU,
    /// DUPLICATE_SKU, INVALID_CATEGORY, INVALID_IMAGES, INVALID_ATTRIBUTES,
    /// INVALID_STOCK, INVALID_STATUS, INVALID_WEIGHT, INVALID_DIMENSIONS, TOO_MANY_COLUMNS,
    /// INVALID_JSON.
    async fn code(&self) -> &str {
        &self.0.code
    }
    async fn message(&self) -> &str {
        &self.0.message
    }
    /// The offending value (cut at 200 bytes).
    async fn value(&self) -> Option<&str> {
        self.0.value.as_deref()
    }
}

/// One changed field of an update: before and after; null where the field has no
/// value (a weight cleared by a blank cell, a size never given).
#[derive(SimpleObject)]
pub struct ImportFieldChange {
    pub field: String,
    pub before: Option<Json<serde_json::Value>>,
    pub after: Option<Json<serde_json::Value>>,
}

fn present(v: serde_json::Value) -> Option<Json<serde_json::Value>> {
    (!v.is_null()).then_some(Json(v))
}

/// A change an import stages (and, once applied, made).
pub struct ImportChange {
    pub change: import_change::Model,
    /// What became of it, from the change and its job.
    pub state: String,
}

fn doc(text: Option<&str>) -> Option<serde_json::Value> {
    text.and_then(|t| serde_json::from_str(t).ok())
}

#[Object]
impl ImportChange {
    /// The file's row; null for products absent from the file.
    async fn row(&self) -> Option<i64> {
        self.change.row_no
    }
    async fn sku(&self) -> &str {
        &self.change.sku
    }
    async fn kind(&self) -> Option<Kind> {
        Kind::parse(&self.change.kind)
    }
    /// The product's id (for a create, the id it gets).
    async fn product_id(&self) -> ID {
        ID(self.change.product_id.clone())
    }
    /// STAGED, APPLIED, ROLLED_BACK, or KEPT (a rollback left a later edit alone).
    async fn state(&self) -> String {
        self.state.to_ascii_uppercase()
    }
    /// The fields an update changes, each with its value before and after.
    async fn fields(&self) -> Vec<ImportFieldChange> {
        let names: Vec<String> =
            serde_json::from_str(&self.change.changed_fields).unwrap_or_default();
        let before = doc(self.change.before_doc.as_deref());
        let after = doc(self.change.after_doc.as_deref());
        let value = |d: &Option<serde_json::Value>, f: &str| -> serde_json::Value {
            let Some(d) = d else {
                return serde_json::Value::Null;
            };
            match f {
                "price" => {
                    serde_json::json!({ "amount": d["priceAmount"], "currency": d["currency"] })
                }
                other => d[other].clone(),
            }
        };
        names
            .into_iter()
            .map(|f| {
                let after_value = if self.change.kind == Kind::Archive.as_str() && f == "status" {
                    serde_json::Value::from("archived")
                } else {
                    value(&after, &f)
                };
                ImportFieldChange {
                    before: present(value(&before, &f)),
                    after: present(after_value),
                    field: f,
                }
            })
            .collect()
    }
    /// The product as the file has it (creates and updates).
    async fn after(&self) -> Option<Json<serde_json::Value>> {
        doc(self.change.after_doc.as_deref()).map(Json)
    }
    /// The product as it was stored (updates, archives, deletes).
    async fn before(&self) -> Option<Json<serde_json::Value>> {
        doc(self.change.before_doc.as_deref()).map(Json)
    }
}

/// A catalog import job.
pub struct CatalogImport(pub import::Model);

#[Object]
impl CatalogImport {
    async fn id(&self) -> ID {
        ID(self.0.id.clone())
    }
    async fn catalog_id(&self) -> ID {
        ID(self.0.catalog_id.clone())
    }
    /// The catalog imported into; null once it was deleted.
    async fn catalog(&self, ctx: &Context<'_>) -> Result<Option<super::types::Catalog>> {
        let loader = ctx.data::<DataLoader<ByIdLoader<crate::entity::catalog::Entity>>>()?;
        Ok(loader
            .load_one(self.0.catalog_id.clone())
            .await?
            .map(super::types::Catalog))
    }
    async fn status(&self) -> JobStatus {
        JobStatus::parse(&self.0.status).unwrap_or(JobStatus::Failed)
    }
    async fn dry_run(&self) -> bool {
        self.0.dry_run
    }
    async fn on_error(&self) -> Option<OnError> {
        OnError::parse(&self.0.on_error)
    }
    async fn missing(&self) -> Option<Missing> {
        Missing::parse(&self.0.missing)
    }
    async fn format(&self) -> Option<Format> {
        Format::parse(&self.0.format)
    }
    async fn file_name(&self) -> &str {
        &self.0.file_name
    }
    async fn file_size(&self) -> i64 {
        self.0.file_size
    }
    async fn counts(&self) -> CatalogImportCounts {
        CatalogImportCounts {
            rows: self.0.rows_total,
            to_create: self.0.to_create,
            to_update: self.0.to_update,
            unchanged: self.0.unchanged,
            to_archive: self.0.to_archive,
            to_delete: self.0.to_delete,
            failed: self.0.failed,
            applied: self.0.applied,
            rolled_back: self.0.rolled_back,
            rollback_kept: self.0.rollback_skipped,
        }
    }
    async fn progress(&self) -> CatalogImportProgress {
        let j = &self.0;
        let changes = j.to_create + j.to_update + j.to_archive + j.to_delete;
        let percent = match JobStatus::parse(&j.status) {
            Some(JobStatus::Queued) => 0,
            Some(JobStatus::Validating) if j.file_size > 0 => j.bytes_read * 100 / j.file_size,
            Some(JobStatus::Applying) if changes > 0 => j.applied * 100 / changes,
            Some(JobStatus::RollingBack) if j.applied > 0 => {
                (j.rolled_back + j.rollback_skipped) * 100 / j.applied
            }
            Some(JobStatus::Validating | JobStatus::Applying | JobStatus::RollingBack) => 0,
            _ => 100,
        };
        CatalogImportProgress {
            percent: percent.clamp(0, 100) as i32,
            bytes_read: j.bytes_read,
            bytes_total: j.file_size,
        }
    }
    /// The file's columns we did not know: reported, their cells ignored.
    async fn unknown_columns(&self) -> Vec<String> {
        serde_json::from_str(&self.0.unknown_columns).unwrap_or_default()
    }
    /// Why the job failed (a fault of the whole file, ABORT with failed rows, a conflict).
    async fn failure(&self) -> Option<&str> {
        self.0.failure.as_deref()
    }
    /// Whether a cancel was asked for and not yet carried out.
    async fn cancel_requested(&self) -> bool {
        self.0.cancel_requested
    }
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }
    async fn started_at(&self) -> Option<DateTime<Utc>> {
        self.0.started_at
    }
    async fn validated_at(&self) -> Option<DateTime<Utc>> {
        self.0.validated_at
    }
    async fn apply_started_at(&self) -> Option<DateTime<Utc>> {
        self.0.apply_started_at
    }
    async fn finished_at(&self) -> Option<DateTime<Utc>> {
        self.0.finished_at
    }
    /// Row errors, by row.
    async fn errors(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
        last: Option<i32>,
        before: Option<String>,
    ) -> Result<Paged<ImportRowError>> {
        let svc = ctx.data::<CatalogCtx>()?;
        let (window, rows) =
            imports::errors(svc, &self.0, &page(first, after, last, before)).await?;
        Ok(window.connection(rows.into_iter().map(ImportRowError).collect()))
    }
    /// The changes, in file order (absent products last), optionally of some kinds.
    async fn changes(
        &self,
        ctx: &Context<'_>,
        kinds: Option<Vec<Kind>>,
        first: Option<i32>,
        after: Option<String>,
        last: Option<i32>,
        before: Option<String>,
    ) -> Result<Paged<ImportChange>> {
        let svc = ctx.data::<CatalogCtx>()?;
        let (window, rows) =
            imports::changes(svc, &self.0, kinds, &page(first, after, last, before)).await?;
        let job = &self.0;
        Ok(window.connection(
            rows.into_iter()
                .map(|change| ImportChange {
                    state: job.change_state(&change).to_string(),
                    change,
                })
                .collect(),
        ))
    }
}

/// How often a progress stream looks at its job, and how long it stays silent at most
/// while the job runs: a quarter second under the second a client is promised, so that
/// one slow read or a busy machine does not break the promise.
const PROGRESS_POLL: std::time::Duration = std::time::Duration::from_millis(250);
const PROGRESS_HEARTBEAT: std::time::Duration = std::time::Duration::from_millis(750);

pub struct ImportSubscription;

#[async_graphql::Subscription(name = "Subscription")]
impl ImportSubscription {
    /// An import job as it goes: its state now, then whenever it moves and at least
    /// once a second while it runs; the last event is the one in which it has finished
    /// (or is READY for review), after which the stream ends. The job is read from the
    /// database, so the stream follows it whichever replica runs it.
    #[graphql(directive = shop_kit::auth::authenticated::apply())]
    async fn catalog_import_progress(
        &self,
        ctx: &Context<'_>,
        id: ID,
    ) -> Result<futures::stream::BoxStream<'static, CatalogImport>> {
        use futures::StreamExt;
        let svc = ctx.data::<CatalogCtx>()?.clone();
        let who = caller(ctx);
        let first = imports::visible(&svc.db, &who, &id).await?;
        struct State {
            svc: CatalogCtx,
            last: Option<import::Model>,
            sent_at: std::time::Instant,
            next: Option<import::Model>,
            done: bool,
        }
        let state = State {
            svc,
            last: None,
            sent_at: std::time::Instant::now(),
            next: Some(first),
            done: false,
        };
        let stream = futures::stream::unfold(state, |mut st| async move {
            if st.done {
                return None;
            }
            loop {
                if let Some(job) = st.next.take() {
                    let ended = JobStatus::parse(&job.status)
                        .is_none_or(|s| s.is_finished() || s == JobStatus::Ready);
                    let moved = st.last.as_ref() != Some(&job);
                    if moved || ended || st.sent_at.elapsed() >= PROGRESS_HEARTBEAT {
                        st.done = ended;
                        st.sent_at = std::time::Instant::now();
                        st.last = Some(job.clone());
                        return Some((CatalogImport(job), st));
                    }
                }
                tokio::time::sleep(PROGRESS_POLL).await;
                let id = st.last.as_ref().map(|j| j.id.clone()).unwrap_or_default();
                match import::Entity::find_by_id(id).one(&st.svc.reads).await {
                    Ok(Some(job)) => st.next = Some(job),
                    // Deleted with its catalog: nothing more to report.
                    Ok(None) => return None,
                    Err(e) => {
                        tracing::warn!(error = %e, "reading an import's progress failed");
                    }
                }
            }
        });
        Ok(stream.boxed())
    }
}

pub async fn catalog_import(ctx: &Context<'_>, id: &str) -> Result<CatalogImport> {
    let svc = ctx.data::<CatalogCtx>()?;
    Ok(CatalogImport(
        imports::visible(&svc.db, &caller(ctx), id).await?,
    ))
}

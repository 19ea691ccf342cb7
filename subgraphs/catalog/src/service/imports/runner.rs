//! The background worker that runs import jobs. Any number of processes may run one:
//! a job is claimed with a lease (a conditional update of its row) that its worker
//! renews while it works; a job whose worker died is claimed again once the lease ran
//! out, and goes on from where it stopped (see `engine`).

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use sea_orm::{
    ColumnTrait, ConnectionTrait, DatabaseConnection, EntityTrait, QueryFilter, QueryOrder,
    QuerySelect, Statement, Value,
};
use tokio::sync::Notify;

use super::engine::{self, Lease, Stop, lease_seconds};
use super::{JobStatus, OnError};
use crate::entity::import;
use crate::service::CatalogCtx;
use crate::service::events::{IMPORT_FINISHED, ImportFinished};

/// Wakes this process's worker when a job is started here.
#[derive(Clone)]
pub struct Imports {
    notify: Arc<Notify>,
    owner: String,
}

impl Default for Imports {
    fn default() -> Self {
        Imports {
            notify: Arc::new(Notify::new()),
            owner: format!("worker-{}", shop_kit::ids::new_id()),
        }
    }
}

impl Imports {
    pub fn wake(&self) {
        self.notify.notify_one();
    }
}

/// How often an idle worker looks for jobs (others' starts, expired leases).
const POLL: Duration = Duration::from_secs(2);

/// How often a worker deletes uploads past their expiry (staged ones never imported,
/// files of jobs that never started).
const PURGE_EVERY: Duration = Duration::from_secs(600);

pub fn spawn(ctx: CatalogCtx) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut last_purge: Option<std::time::Instant> = None;
        loop {
            if last_purge.is_none_or(|t| t.elapsed() >= PURGE_EVERY) {
                last_purge = Some(std::time::Instant::now());
                match crate::service::uploads::purge_expired(&ctx.db).await {
                    Ok(0) => {}
                    Ok(n) => tracing::info!(uploads = n, "expired uploads deleted"),
                    Err(e) => tracing::warn!(error = ?e, "deleting expired uploads failed"),
                }
            }
            match claim(&ctx.db, &ctx.imports.owner).await {
                Ok(Some(job)) => {
                    let lease = Lease {
                        owner: ctx.imports.owner.clone(),
                        job_id: job.id.clone(),
                    };
                    run(&ctx, job, &lease).await;
                    continue;
                }
                Ok(None) => {}
                Err(e) => tracing::warn!(error = %e, "looking for import jobs failed"),
            }
            let _ = tokio::time::timeout(POLL, ctx.imports.notify.notified()).await;
        }
    })
}

/// Claims the oldest job that has work and no live lease.
pub async fn claim(
    db: &DatabaseConnection,
    owner: &str,
) -> Result<Option<import::Model>, sea_orm::DbErr> {
    let now = Utc::now();
    let candidates = import::Entity::find()
        .filter(import::Column::Status.is_in(JobStatus::RUNNING.map(JobStatus::as_str)))
        .filter(
            sea_orm::Condition::any()
                .add(import::Column::LeaseUntil.is_null())
                .add(import::Column::LeaseUntil.lt(now)),
        )
        .order_by_asc(import::Column::CreatedAt)
        .limit(4)
        .all(db)
        .await?;
    for job in candidates {
        let res = db
            .execute_raw(Statement::from_sql_and_values(
                db.get_database_backend(),
                "UPDATE catalog_imports SET lease_owner = ?, lease_until = ? WHERE id = ? AND status = ? AND (lease_until IS NULL OR lease_until < ?)",
                [
                    Value::from(owner.to_string()),
                    Value::from(now + chrono::Duration::seconds(lease_seconds())),
                    Value::from(job.id.clone()),
                    Value::from(job.status.clone()),
                    Value::from(now),
                ],
            ))
            .await?;
        if res.rows_affected() == 1 {
            return import::Entity::find_by_id(job.id).one(db).await;
        }
    }
    Ok(None)
}

/// Runs a claimed job as far as it goes.
pub async fn run(ctx: &CatalogCtx, mut job: import::Model, lease: &Lease) {
    loop {
        let status = JobStatus::parse(&job.status).unwrap_or(JobStatus::Failed);
        let next = match status {
            JobStatus::Queued | JobStatus::Validating => after_validation(ctx, &job, lease).await,
            JobStatus::Applying => match engine::apply(ctx, &job, lease).await {
                Ok(()) => end(ctx, &job, lease, JobStatus::Done, None).await,
                Err(Stop::Cancelled) => to_rollback(ctx, lease, None).await,
                Err(Stop::LostLease) => Err(Stop::LostLease),
                Err(Stop::Failed(m)) => to_rollback(ctx, lease, Some(m)).await,
                Err(Stop::Error(e)) => {
                    tracing::error!(job = %job.id, error = ?e, "applying an import failed");
                    to_rollback(
                        ctx,
                        lease,
                        Some(
                            "applying failed on our side; the applied part is being undone".into(),
                        ),
                    )
                    .await
                }
            },
            JobStatus::RollingBack => match engine::rollback(ctx, &job, lease).await {
                Ok(()) => {
                    let fresh = reread(ctx, &job).await;
                    let end_status = if fresh.failure.is_some() {
                        JobStatus::Failed
                    } else if fresh.cancel_requested {
                        JobStatus::Cancelled
                    } else {
                        JobStatus::RolledBack
                    };
                    end(ctx, &job, lease, end_status, None).await
                }
                Err(e) => Err(e),
            },
            _ => return,
        };
        match next {
            Ok(true) => job = reread(ctx, &job).await,
            Ok(false) => return,
            Err(Stop::LostLease) => {
                tracing::warn!(job = %job.id, "lost the lease of an import job");
                return;
            }
            Err(Stop::Error(e)) => {
                tracing::error!(job = %job.id, error = ?e, "an import job stopped; it is retried when its lease runs out");
                return;
            }
            Err(other) => {
                tracing::error!(job = %job.id, stop = ?other, "an import job stopped");
                return;
            }
        }
    }
}

async fn reread(ctx: &CatalogCtx, job: &import::Model) -> import::Model {
    import::Entity::find_by_id(job.id.clone())
        .one(&ctx.db)
        .await
        .ok()
        .flatten()
        .unwrap_or_else(|| job.clone())
}

/// Validates; then fails, waits for review, or goes on to apply. `Ok(true)`: go on.
async fn after_validation(
    ctx: &CatalogCtx,
    job: &import::Model,
    lease: &Lease,
) -> Result<bool, Stop> {
    match engine::validate(ctx, job, lease).await {
        Ok(()) => {}
        Err(Stop::Cancelled) => return end(ctx, job, lease, JobStatus::Cancelled, None).await,
        Err(Stop::Failed(m)) => return end(ctx, job, lease, JobStatus::Failed, Some(m)).await,
        Err(e) => return Err(e),
    }
    let job = reread(ctx, job).await;
    let db = &ctx.db;
    db.execute_raw(Statement::from_sql_and_values(
        db.get_database_backend(),
        "UPDATE catalog_imports SET validated_at = ? WHERE id = ?",
        [Value::from(Utc::now()), Value::from(job.id.clone())],
    ))
    .await?;
    // The file's part is done: the staged changes hold what apply needs.
    if let Some(upload) = &job.upload_id {
        crate::service::uploads::discard(db, upload).await;
    }
    let on_error = OnError::parse(&job.on_error).unwrap_or(OnError::Abort);
    if job.failed > 0 && on_error == OnError::Abort {
        let m = format!(
            "{} of {} rows failed; with onError ABORT nothing is applied",
            job.failed, job.rows_total
        );
        return end(ctx, &job, lease, JobStatus::Failed, Some(m)).await;
    }
    if job.dry_run {
        move_to(db, lease, JobStatus::Ready, None).await?;
        release(db, lease).await?;
        notify_finished(ctx, &job, JobStatus::Ready).await;
        return Ok(false);
    }
    let txn = shop_kit::db::begin_write(db).await?;
    let cat = crate::entity::catalog::Entity::find_by_id(job.catalog_id.clone())
        .one(&txn)
        .await?;
    if cat.map(|c| c.revision) != job.catalog_revision {
        drop(txn);
        return end(
            ctx,
            &job,
            lease,
            JobStatus::Failed,
            Some("the catalog changed while the file was being validated; nothing was applied, start the import again".into()),
        )
        .await;
    }
    move_to(&txn, lease, JobStatus::Applying, None).await?;
    txn.execute_raw(Statement::from_sql_and_values(
        txn.get_database_backend(),
        "UPDATE catalog_imports SET apply_started_at = ? WHERE id = ?",
        [Value::from(Utc::now()), Value::from(job.id.clone())],
    ))
    .await?;
    txn.commit().await?;
    Ok(true)
}

async fn to_rollback(
    ctx: &CatalogCtx,
    lease: &Lease,
    failure: Option<String>,
) -> Result<bool, Stop> {
    move_to(&ctx.db, lease, JobStatus::RollingBack, failure).await?;
    Ok(true)
}

/// Moves a job on while it is still this worker's (see [`end`]).
async fn move_to<C: ConnectionTrait>(
    conn: &C,
    lease: &Lease,
    status: JobStatus,
    failure: Option<String>,
) -> Result<(), Stop> {
    let res = conn
        .execute_raw(Statement::from_sql_and_values(
            conn.get_database_backend(),
            "UPDATE catalog_imports SET status = ?, failure = COALESCE(?, failure), updated_at = ? WHERE id = ? AND lease_owner = ?",
            [
                Value::from(status.as_str()),
                Value::from(failure),
                Value::from(Utc::now()),
                Value::from(lease.job_id.clone()),
                Value::from(lease.owner.clone()),
            ],
        ))
        .await?;
    if res.rows_affected() != 1 {
        return Err(Stop::LostLease);
    }
    Ok(())
}

async fn release(db: &DatabaseConnection, lease: &Lease) -> Result<(), Stop> {
    db.execute_raw(Statement::from_sql_and_values(
        db.get_database_backend(),
        "UPDATE catalog_imports SET lease_owner = NULL, lease_until = NULL WHERE id = ? AND lease_owner = ?",
        [Value::from(lease.job_id.clone()), Value::from(lease.owner.clone())],
    ))
    .await?;
    Ok(())
}

/// Ends a job in a final status. `Ok(false)`: nothing more to do.
async fn end(
    ctx: &CatalogCtx,
    job: &import::Model,
    lease: &Lease,
    status: JobStatus,
    failure: Option<String>,
) -> Result<bool, Stop> {
    // Only while the job is still this worker's: a cancel that ended a job whose
    // worker had stalled past its lease stands, and is announced once.
    let now = Utc::now();
    let res = ctx
        .db
        .execute_raw(Statement::from_sql_and_values(
            ctx.db.get_database_backend(),
            "UPDATE catalog_imports SET status = ?, failure = COALESCE(?, failure), updated_at = ?, finished_at = ?, lease_owner = NULL, lease_until = NULL WHERE id = ? AND lease_owner = ?",
            [
                Value::from(status.as_str()),
                Value::from(failure),
                Value::from(now),
                Value::from(now),
                Value::from(lease.job_id.clone()),
                Value::from(lease.owner.clone()),
            ],
        ))
        .await?;
    if res.rows_affected() != 1 {
        return Err(Stop::LostLease);
    }
    if let Some(upload) = &job.upload_id {
        crate::service::uploads::discard(&ctx.db, upload).await;
    }
    notify_finished(ctx, job, status).await;
    Ok(false)
}

/// Tells the supplier (through notifications) that a job finished or is ready.
async fn notify_finished(ctx: &CatalogCtx, job: &import::Model, status: JobStatus) {
    let job = reread(ctx, job).await;
    let event = ImportFinished {
        import_id: job.id.clone(),
        catalog_id: job.catalog_id.clone(),
        supplier_id: job.supplier_id.clone(),
        file_name: job.file_name.clone(),
        status: status.as_str().to_string(),
        rows: job.rows_total,
        created: job.to_create,
        updated: job.to_update,
        unchanged: job.unchanged,
        archived: job.to_archive,
        deleted: job.to_delete,
        failed: job.failed,
        failure: job.failure.clone(),
    };
    let res = async {
        let txn = shop_kit::db::begin_write(&ctx.db).await?;
        ctx.outbox
            .write(
                &txn,
                IMPORT_FINISHED,
                &job.id,
                serde_json::to_value(&event).unwrap_or_default(),
            )
            .await?;
        txn.commit().await
    }
    .await;
    match res {
        Ok(()) => ctx.outbox.wake(),
        Err(e) => tracing::warn!(job = %job.id, error = %e, "recording an import's end failed"),
    }
}

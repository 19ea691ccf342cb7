//! The work of an import job: validating the file into staged changes, applying them
//! in batches, and rolling them back. Each phase can stop at any point (a crash, a lost
//! lease, a cancel) and be started again: validation starts over (it wrote nothing to
//! products), apply and rollback go on from the first change not yet done, each batch
//! being one transaction that also records its progress.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;
use futures::TryStreamExt;
use sea_orm::{
    ColumnTrait, ConnectionTrait, DatabaseConnection, EntityTrait, PaginatorTrait, QueryFilter,
    QueryOrder, QuerySelect, Statement, Value,
};
use serde_json::Value as Json;
use shop_kit::{ApiError, ApiResult, ids};

use super::format::{self, Format, ParsedRow, Sink};
use super::rows::{ColumnMapping, FileError, Physical, ProductDoc, RowError, RowRules};
use super::skus::SkuTable;
use super::{JobStatus, Kind, Missing, StoredOptions};
use crate::entity::{category, import, import_change, product};
use crate::service::CatalogCtx;
use crate::service::events::{PRODUCTS_IMPORTED, ProductFacts, ProductsImported, traits};
use crate::service::products::{self, Status};
use crate::service::search::Searchable;
use crate::service::sql::{MAX_PARAMS, delete_in, insert_rows, placeholders, stmt};

/// Rows parsed per message to the validator, row errors written at once, and changes
/// rolled back per transaction.
pub const BATCH: usize = 2000;
/// Changes staged per write and applied per transaction. A commit writes every page
/// its batch dirtied, and a million products' price, category and name indexes take
/// their entries all over, so each commit rewrites pages the one before it wrote:
/// 500 changes a commit spent 12.0 s of a 200,000-row apply on commits, 2,000 spent
/// 6.8 s; 5,000 took the whole apply of a million from 111.7 to 87.8 s (with reading
/// ahead, below). 10,000 saved a little more and held 90 MB more at once.
pub const APPLY_BATCH: usize = 5_000;
/// Row errors kept per job (all are counted).
pub const MAX_STORED_ERRORS: i64 = 100_000;
/// How often a running job writes its progress and renews its lease.
const PROGRESS_EVERY: Duration = Duration::from_millis(500);

/// Why a phase stopped before its end.
#[derive(Debug)]
pub enum Stop {
    /// Another process holds the job now.
    LostLease,
    /// Cancelled by the supplier.
    Cancelled,
    Failed(String),
    Error(ApiError),
}

impl From<ApiError> for Stop {
    fn from(e: ApiError) -> Self {
        Stop::Error(e)
    }
}

impl From<sea_orm::DbErr> for Stop {
    fn from(e: sea_orm::DbErr) -> Self {
        Stop::Error(ApiError::from(e))
    }
}

/// The process's hold on a job: every write of progress checks it is still ours.
#[derive(Clone, Debug)]
pub struct Lease {
    pub owner: String,
    pub job_id: String,
}

/// How long a worker's claim on a job lasts without renewal (it renews twice a second
/// while it works): after a crash, the job is taken up again this long after its last
/// renewal. `SHOP_IMPORT_LEASE_SECONDS` changes it (crash drills shorten it).
pub fn lease_seconds() -> i64 {
    static LEASE: std::sync::OnceLock<i64> = std::sync::OnceLock::new();
    *LEASE.get_or_init(|| {
        std::env::var("SHOP_IMPORT_LEASE_SECONDS")
            .ok()
            .and_then(|v| v.parse().ok())
            .filter(|s| *s >= 2)
            .unwrap_or(30)
    })
}

impl Lease {
    /// Renews the lease and reads whether the job was cancelled.
    pub async fn renew(&self, db: &DatabaseConnection) -> Result<bool, Stop> {
        let until = Utc::now() + chrono::Duration::seconds(lease_seconds());
        let res = db
            .execute_raw(Statement::from_sql_and_values(
                db.get_database_backend(),
                "UPDATE catalog_imports SET lease_until = ? WHERE id = ? AND lease_owner = ?",
                [
                    Value::from(until),
                    Value::from(self.job_id.clone()),
                    Value::from(self.owner.clone()),
                ],
            ))
            .await?;
        if res.rows_affected() != 1 {
            return Err(Stop::LostLease);
        }
        let job = import::Entity::find_by_id(self.job_id.clone())
            .one(db)
            .await?
            .ok_or(Stop::LostLease)?;
        Ok(job.cancel_requested)
    }
}

/// Category paths of a catalog, both ways.
pub struct Categories {
    pub path_of: HashMap<String, String>,
    pub id_of: HashMap<String, String>,
}

pub async fn categories<C: ConnectionTrait>(conn: &C, catalog_id: &str) -> ApiResult<Categories> {
    let all = category::Entity::find()
        .filter(category::Column::CatalogId.eq(catalog_id))
        .all(conn)
        .await?;
    let by_id: HashMap<&str, &category::Model> = all.iter().map(|c| (c.id.as_str(), c)).collect();
    let mut path_of = HashMap::new();
    for c in &all {
        let mut names = vec![c.name.trim().to_string()];
        let mut cur = c.parent_id.as_deref();
        let mut depth = 0;
        while let Some(pid) = cur {
            let Some(p) = by_id.get(pid) else { break };
            names.push(p.name.trim().to_string());
            cur = p.parent_id.as_deref();
            depth += 1;
            if depth > 64 {
                break;
            }
        }
        names.reverse();
        path_of.insert(c.id.clone(), names.join(" > "));
    }
    let mut id_of = HashMap::new();
    // Same path twice (two sibling categories of one name): the oldest wins.
    let mut sorted: Vec<&category::Model> = all.iter().collect();
    sorted.sort_by(|a, b| a.created_at.cmp(&b.created_at).then(a.id.cmp(&b.id)));
    for c in sorted {
        if let Some(p) = path_of.get(&c.id) {
            id_of.entry(p.clone()).or_insert_with(|| c.id.clone());
        }
    }
    Ok(Categories { path_of, id_of })
}

/// A stored product as an import compares it.
pub fn doc_of(p: &product::Model, cats: &Categories) -> ProductDoc {
    let images = match &p.images {
        Json::Array(items) => items
            .iter()
            .filter_map(|i| i.as_str().map(str::to_string))
            .collect(),
        _ => Vec::new(),
    };
    let attributes = match &p.attributes {
        Json::Object(m) => m.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
        _ => Default::default(),
    };
    ProductDoc {
        sku: p.sku.clone(),
        name: p.name.clone(),
        description: p.description.clone(),
        price_amount: p.price_amount,
        currency: p.price_currency.clone(),
        category: p
            .category_id
            .as_ref()
            .and_then(|c| cats.path_of.get(c))
            .cloned()
            .unwrap_or_default(),
        images,
        attributes,
        status: p.status.clone(),
    }
}

/// What validation knows about one SKU, in a [`SkuTable`]. A million of these are held
/// at once: the first layout (the stored product inline, 88 bytes a slot of a
/// `HashMap`, its id on the heap) took 187 MB and 48 MB more of ids.
struct Known {
    /// The stored product with this SKU: its index in `existing`, or `NOT_STORED`.
    existing: u32,
    /// The first row that named it, or `NOT_SEEN`.
    seen: u32,
    /// Whether that first row failed (as a duplicate).
    seen_failed: bool,
    /// The change staged for it (its sequence number), if any.
    staged: Option<(u32, Kind)>,
}

const NOT_STORED: u32 = u32::MAX;
const NOT_SEEN: u32 = u32::MAX;

/// A stored product as validation compares it: 40 bytes, a million at once.
struct Existing {
    id: StoredId,
    hash: u64,
    /// Units on hand, or `NO_STOCK` (none recorded); `TOO_MUCH_STOCK` for a count
    /// beyond what a file may give, which no row matches.
    on_hand: i32,
    facts: Facts,
}

/// No units on hand recorded; stock is never negative, let alone this.
const NO_STOCK: i32 = i32::MIN;
/// More units than an import accepts (`MAX_STOCK`), as the API may have set.
const TOO_MUCH_STOCK: i32 = i32::MAX;

impl Existing {
    fn on_hand(&self) -> Option<i64> {
        (self.on_hand != NO_STOCK).then_some(i64::from(self.on_hand))
    }
}

/// A product's weight and sides as stored.
fn physical_of(p: &product::Model) -> Physical {
    Physical::stored(p.weight_grams, [p.length_mm, p.width_mm, p.height_mm])
}

/// A stored product's weight, sides and archived flag in one word, since a million
/// [`Existing`] are held at once: bits 0-19 the weight in grams plus one (0: none),
/// 20-61 the three sides at 14 bits each (0: none; a side is at least 1 mm), bit 62
/// whether it is archived. Weights and sides fit: at most 1,000,000 g and 10,000 mm.
#[derive(Clone, Copy)]
struct Facts(u64);

impl Facts {
    const WEIGHT: u64 = (1 << 20) - 1;
    const SIDE: u64 = (1 << 14) - 1;
    const ARCHIVED: u64 = 1 << 62;

    fn new(physical: &Physical, archived: bool) -> Facts {
        let weight = physical
            .weight_grams
            .flatten()
            .map_or(0, |w| (w.clamp(0, Self::WEIGHT as i64 - 1) as u64) + 1);
        let sides = physical.dimensions.flatten().map_or(0, |[l, w, h]| {
            let side = |v: i64| v.clamp(1, Self::SIDE as i64) as u64;
            side(l) << 28 | side(w) << 14 | side(h)
        });
        Facts(weight | sides << 20 | if archived { Self::ARCHIVED } else { 0 })
    }

    fn archived(self) -> bool {
        self.0 & Self::ARCHIVED != 0
    }

    fn physical(self) -> Physical {
        let weight = self.0 & Self::WEIGHT;
        let sides = (self.0 >> 20) & ((1 << 42) - 1);
        let side = |shift: u32| ((sides >> shift) & Self::SIDE) as i64;
        Physical {
            weight_grams: Some((weight != 0).then(|| weight as i64 - 1)),
            dimensions: Some((sides != 0).then(|| [side(28), side(14), side(0)])),
        }
    }
}

/// A product id held in 20 bytes: a UUID in its usual text (as every id the platform
/// makes is) as its 16 bytes, any other id as its place in a list kept beside.
enum StoredId {
    Uuid(uuid::Uuid),
    Other(u32),
}

impl StoredId {
    fn new(id: &str, others: &mut Vec<Box<str>>) -> Option<Self> {
        match uuid::Uuid::parse_str(id) {
            Ok(u) if u.hyphenated().to_string() == id => Some(StoredId::Uuid(u)),
            _ => {
                let at = u32::try_from(others.len()).ok()?;
                others.push(id.into());
                Some(StoredId::Other(at))
            }
        }
    }

    fn text(&self, others: &[Box<str>]) -> String {
        match self {
            StoredId::Uuid(u) => u.hyphenated().to_string(),
            StoredId::Other(at) => others
                .get(*at as usize)
                .map(|t| t.to_string())
                .unwrap_or_default(),
        }
    }
}

/// A change on its way to `catalog_import_changes`.
struct Pending {
    seq: i64,
    row_no: Option<i64>,
    sku: String,
    kind: Kind,
    product_id: String,
    after: Option<(ProductDoc, Option<i64>, Physical)>,
}

struct Counts {
    rows: i64,
    create: i64,
    update: i64,
    unchanged: i64,
    archive: i64,
    delete: i64,
    failed: i64,
    errors_stored: i64,
    bytes: i64,
}

impl Counts {
    fn bump(&mut self, kind: Kind, by: i64) {
        match kind {
            Kind::Create => self.create += by,
            Kind::Update => self.update += by,
            Kind::Archive => self.archive += by,
            Kind::Delete => self.delete += by,
        }
    }
}

/// Messages from the parsing thread.
enum Parsed {
    Unknown(Vec<String>),
    Rows(Vec<ParsedRow>, u64),
}

struct ChannelSink {
    tx: tokio::sync::mpsc::Sender<Parsed>,
    batch: Vec<ParsedRow>,
    stop: Arc<std::sync::atomic::AtomicBool>,
}

impl Sink for ChannelSink {
    fn header(&mut self, unknown: Vec<String>) {
        let _ = self.tx.blocking_send(Parsed::Unknown(unknown));
    }
    fn row(&mut self, row: ParsedRow, bytes: u64) -> bool {
        self.batch.push(row);
        if self.batch.len() >= BATCH {
            let rows = std::mem::take(&mut self.batch);
            if self.tx.blocking_send(Parsed::Rows(rows, bytes)).is_err() {
                return false;
            }
        }
        !self.stop.load(std::sync::atomic::Ordering::Relaxed)
    }
}

/// Validates the job's file into staged changes and row errors, and counts them. Starts
/// over when a previous attempt stopped half-way.
pub async fn validate(ctx: &CatalogCtx, job: &import::Model, lease: &Lease) -> Result<(), Stop> {
    let db = &ctx.db;
    let backend = db.get_database_backend();
    for sql in [
        "DELETE FROM catalog_import_changes WHERE import_id = ?",
        "DELETE FROM catalog_import_errors WHERE import_id = ?",
    ] {
        db.execute_raw(stmt(backend, sql, vec![Value::from(job.id.clone())]))
            .await?;
    }
    // A cancel that came while the job waited in the queue after this worker claimed
    // it is honoured here, before the file is read; a lease lost since is noticed too.
    if lease.renew(db).await? {
        return Err(Stop::Cancelled);
    }
    let started = Utc::now();
    // The revision first: an edit after this moment makes the review stale.
    let cat = crate::entity::catalog::Entity::find_by_id(job.catalog_id.clone())
        .one(db)
        .await?
        .ok_or_else(|| Stop::Failed("the catalog was deleted".into()))?;
    db.execute_raw(stmt(
        backend,
        "UPDATE catalog_imports SET status = ?, started_at = COALESCE(started_at, ?), catalog_revision = ?, updated_at = ? WHERE id = ? AND lease_owner = ?",
        vec![
            Value::from(JobStatus::Validating.as_str()),
            Value::from(started),
            Value::from(cat.revision),
            Value::from(started),
            Value::from(job.id.clone()),
            Value::from(lease.owner.clone()),
        ],
    ))
    .await?;

    let cats = categories(db, &job.catalog_id).await?;
    // Sized for the catalog up front: a map that grows by doubling holds its old and
    // its new table at once, which at a million products is the import's peak memory.
    let stored = product::Entity::find()
        .filter(product::Column::CatalogId.eq(job.catalog_id.clone()))
        .count(db)
        .await?;
    let mut known: SkuTable<Known> =
        SkuTable::with_capacity(usize::try_from(stored).unwrap_or(0), 16);
    let mut existing: Vec<Existing> = Vec::with_capacity(usize::try_from(stored).unwrap_or(0));
    let mut other_ids: Vec<Box<str>> = Vec::new();
    {
        let mut stream = product::Entity::find()
            .filter(product::Column::CatalogId.eq(job.catalog_id.clone()))
            .stream(db)
            .await?;
        while let Some(p) = stream.try_next().await? {
            let doc = doc_of(&p, &cats);
            let index = u32::try_from(existing.len())
                .map_err(|_| Stop::Failed("the catalog has too many products".into()))?;
            existing.push(Existing {
                id: StoredId::new(&p.id, &mut other_ids)
                    .ok_or_else(|| Stop::Failed("the catalog has too many products".into()))?,
                hash: doc.hash64(),
                on_hand: p
                    .stock_on_hand
                    .map_or(NO_STOCK, |n| i32::try_from(n).unwrap_or(TOO_MUCH_STOCK)),
                facts: Facts::new(&physical_of(&p), p.status == Status::Archived.as_str()),
            });
            // SKUs are unique in a catalog: each stored one is new to the table.
            known
                .get_or_insert_with(&p.sku, || Known {
                    existing: index,
                    seen: NOT_SEEN,
                    seen_failed: false,
                    staged: None,
                })
                .ok_or_else(|| Stop::Failed("the catalog has too many products".into()))?;
        }
    }

    let options: StoredOptions = serde_json::from_str(&job.options).unwrap_or_default();
    let format = Format::parse(&job.format).unwrap_or(Format::Csv);
    let upload_id = job
        .upload_id
        .clone()
        .ok_or_else(|| Stop::Failed("the job has no file".into()))?;
    let upload = crate::service::uploads::get(db, &upload_id)
        .await?
        .ok_or_else(|| Stop::Failed("the uploaded file is gone".into()))?;

    let (tx, mut rx) = tokio::sync::mpsc::channel::<Parsed>(4);
    let stop_flag = Arc::new(std::sync::atomic::AtomicBool::new(false));
    // Streamed formats read the chunks in order, ahead of the parser; a workbook seeks.
    enum Input {
        Stream(crate::service::uploads::ChunkReader),
        Seekable(crate::service::uploads::SeekableUpload),
    }
    let input = match format {
        Format::Xlsx => Input::Seekable(crate::service::uploads::seekable(
            db.clone(),
            &upload,
            tokio::runtime::Handle::current(),
        )),
        Format::Csv | Format::JsonLines => {
            Input::Stream(crate::service::uploads::reader(db.clone(), upload))
        }
    };
    let mapping: ColumnMapping = options.columns.clone();
    let rules = RowRules {
        default_currency: options.default_currency.clone(),
    };
    let sink_stop = stop_flag.clone();
    let parser = tokio::task::spawn_blocking(move || {
        let mut sink = ChannelSink {
            tx,
            batch: Vec::new(),
            stop: sink_stop,
        };
        let res = match input {
            Input::Stream(r) => format::parse(r, format, &mapping, &rules, &mut sink),
            Input::Seekable(r) => format::parse_seekable(r, format, &mapping, &rules, &mut sink),
        };
        let rows = std::mem::take(&mut sink.batch);
        if !rows.is_empty() {
            let _ = sink.tx.blocking_send(Parsed::Rows(rows, 0));
        }
        res
    });

    let mut counts = Counts {
        rows: 0,
        create: 0,
        update: 0,
        unchanged: 0,
        archive: 0,
        delete: 0,
        failed: 0,
        errors_stored: 0,
        bytes: 0,
    };
    let mut seq: i64 = 0;
    let mut pending: Vec<Pending> = Vec::new();
    let mut retract: Vec<i64> = Vec::new();
    let mut errors: Vec<(i64, RowError)> = Vec::new();
    let mut unknown: Vec<String> = Vec::new();
    let mut last_progress = Instant::now();
    let mut outcome: Result<(), Stop> = Ok(());

    while let Some(msg) = rx.recv().await {
        let (rows, bytes) = match msg {
            Parsed::Unknown(u) => {
                unknown = u;
                continue;
            }
            Parsed::Rows(rows, bytes) => (rows, bytes),
        };
        if bytes > 0 {
            counts.bytes = bytes as i64;
        }
        for (row_no, parsed) in rows {
            counts.rows += 1;
            let row = match parsed {
                Err(errs) => {
                    counts.failed += 1;
                    for e in errs {
                        errors.push((row_no as i64, e));
                    }
                    continue;
                }
                Ok(row) => row,
            };
            let entry = known
                .get_or_insert_with(&row.doc.sku, || Known {
                    existing: NOT_STORED,
                    seen: NOT_SEEN,
                    seen_failed: false,
                    staged: None,
                })
                .ok_or_else(|| Stop::Failed("the file has too many rows".into()))?;
            if entry.seen != NOT_SEEN {
                let first = entry.seen;
                counts.failed += 1;
                errors.push((
                    row_no as i64,
                    RowError::new(
                        Some(&super::rows::Column::Sku),
                        "DUPLICATE_SKU",
                        format!("SKU '{}' is also on row {first}", row.doc.sku),
                        Some(&row.doc.sku),
                    ),
                ));
                if !entry.seen_failed {
                    entry.seen_failed = true;
                    counts.failed += 1;
                    errors.push((
                        first as i64,
                        RowError::new(
                            Some(&super::rows::Column::Sku),
                            "DUPLICATE_SKU",
                            format!("SKU '{}' is also on row {row_no}", row.doc.sku),
                            Some(&row.doc.sku),
                        ),
                    ));
                    match entry.staged.take() {
                        Some((s, kind)) => {
                            let s = i64::from(s);
                            counts.bump(kind, -1);
                            if let Some(i) = pending.iter().position(|p| p.seq == s) {
                                pending.remove(i);
                            } else {
                                retract.push(s);
                            }
                        }
                        None => counts.unchanged -= 1,
                    }
                }
                continue;
            }
            entry.seen = u32::try_from(row_no).unwrap_or(NOT_SEEN - 1);
            let hash = row.doc.hash64();
            let change = match existing.get(entry.existing as usize) {
                None => Some((Kind::Create, ids::new_id())),
                Some(e)
                    if e.hash == hash
                        && row.stock.is_none_or(|s| Some(s) == e.on_hand())
                        && row.physical.matches(&e.facts.physical()) =>
                {
                    None
                }
                Some(e) => Some((Kind::Update, e.id.text(&other_ids))),
            };
            match change {
                None => counts.unchanged += 1,
                Some((kind, product_id)) => {
                    seq += 1;
                    counts.bump(kind, 1);
                    entry.staged = Some((
                        u32::try_from(seq)
                            .map_err(|_| Stop::Failed("the file has too many rows".into()))?,
                        kind,
                    ));
                    pending.push(Pending {
                        seq,
                        row_no: Some(row_no as i64),
                        sku: row.doc.sku.clone(),
                        kind,
                        product_id,
                        after: Some((row.doc, row.stock, row.physical)),
                    });
                }
            }
        }
        if pending.len() >= APPLY_BATCH || errors.len() >= BATCH {
            flush(
                ctx,
                job,
                &cats,
                &mut pending,
                &mut retract,
                &mut errors,
                &mut counts,
            )
            .await?;
            shop_kit::fault::point("imports.mid_validation");
        }
        if last_progress.elapsed() >= PROGRESS_EVERY {
            last_progress = Instant::now();
            flush(
                ctx,
                job,
                &cats,
                &mut pending,
                &mut retract,
                &mut errors,
                &mut counts,
            )
            .await?;
            write_counts(db, job, lease, &counts, &unknown).await?;
            if lease.renew(db).await? {
                outcome = Err(Stop::Cancelled);
                break;
            }
        }
    }
    if outcome.is_err() {
        stop_flag.store(true, std::sync::atomic::Ordering::Relaxed);
        drop(rx);
        let _ = parser.await;
        return outcome;
    }
    drop(rx);
    let parsed = parser
        .await
        .map_err(|e| Stop::Error(ApiError::Internal(format!("the parser panicked: {e}"))))?;
    if let Err(FileError { code, message }) = parsed {
        return Err(Stop::Failed(format!("{code}: {message}")));
    }

    // Products of the catalog the file does not name.
    let missing = Missing::parse(&job.missing).unwrap_or(Missing::Keep);
    if missing != Missing::Keep {
        let mut absent: Vec<(&str, &Existing)> = known
            .iter()
            .filter(|(_, k)| k.seen == NOT_SEEN)
            .filter_map(|(sku, k)| existing.get(k.existing as usize).map(|e| (sku, e)))
            .collect();
        absent.sort_by(|a, b| a.0.cmp(b.0));
        for (sku, e) in absent {
            let kind = match missing {
                Missing::Archive if e.facts.archived() => continue,
                Missing::Archive => Kind::Archive,
                _ => Kind::Delete,
            };
            seq += 1;
            counts.bump(kind, 1);
            pending.push(Pending {
                seq,
                row_no: None,
                sku: sku.to_string(),
                kind,
                product_id: e.id.text(&other_ids),
                after: None,
            });
            if pending.len() >= APPLY_BATCH {
                flush(
                    ctx,
                    job,
                    &cats,
                    &mut pending,
                    &mut retract,
                    &mut errors,
                    &mut counts,
                )
                .await?;
            }
        }
    }
    flush(
        ctx,
        job,
        &cats,
        &mut pending,
        &mut retract,
        &mut errors,
        &mut counts,
    )
    .await?;
    write_counts(db, job, lease, &counts, &unknown).await?;
    Ok(())
}

async fn write_counts(
    db: &DatabaseConnection,
    job: &import::Model,
    lease: &Lease,
    c: &Counts,
    unknown: &[String],
) -> Result<(), Stop> {
    let res = db
        .execute_raw(stmt(
            db.get_database_backend(),
            "UPDATE catalog_imports SET rows_total = ?, to_create = ?, to_update = ?, unchanged = ?, to_archive = ?, to_delete = ?, failed = ?, bytes_read = ?, unknown_columns = ?, updated_at = ? WHERE id = ? AND lease_owner = ?",
            vec![
                Value::from(c.rows),
                Value::from(c.create),
                Value::from(c.update),
                Value::from(c.unchanged),
                Value::from(c.archive),
                Value::from(c.delete),
                Value::from(c.failed),
                Value::from(c.bytes),
                Value::from(serde_json::to_string(unknown).unwrap_or_else(|_| "[]".into())),
                Value::from(Utc::now()),
                Value::from(job.id.clone()),
                Value::from(lease.owner.clone()),
            ],
        ))
        .await?;
    if res.rows_affected() != 1 {
        return Err(Stop::LostLease);
    }
    Ok(())
}

/// Writes pending changes (with the before state of updates) and row errors.
async fn flush(
    ctx: &CatalogCtx,
    job: &import::Model,
    cats: &Categories,
    pending: &mut Vec<Pending>,
    retract: &mut Vec<i64>,
    errors: &mut Vec<(i64, RowError)>,
    counts: &mut Counts,
) -> Result<(), Stop> {
    if pending.is_empty() && retract.is_empty() && errors.is_empty() {
        return Ok(());
    }
    let db = &ctx.db;
    let backend = db.get_database_backend();
    // The stored state of what is updated, archived or deleted: the review shows it
    // and a rollback restores it. Read before the write transaction: on SQLite a read
    // on the pool inside it would wait for the connection the transaction holds.
    let ids: Vec<String> = pending
        .iter()
        .filter(|p| p.kind != Kind::Create)
        .map(|p| p.product_id.clone())
        .collect();
    let mut before: HashMap<String, (ProductDoc, Option<i64>, Physical)> = HashMap::new();
    for chunk in ids.chunks(MAX_PARAMS) {
        let found = product::Entity::find()
            .filter(product::Column::Id.is_in(chunk.to_vec()))
            .all(db)
            .await?;
        for p in found {
            before.insert(
                p.id.clone(),
                (doc_of(&p, cats), p.stock_on_hand, physical_of(&p)),
            );
        }
    }
    // One commit for the whole flush, not one per statement.
    let txn = shop_kit::db::begin_write(db).await?;
    if !retract.is_empty() {
        for chunk in retract.chunks(MAX_PARAMS / 2) {
            let mut values = vec![Value::from(job.id.clone())];
            values.extend(chunk.iter().map(|s| Value::from(*s)));
            txn.execute_raw(stmt(
                backend,
                format!(
                    "DELETE FROM catalog_import_changes WHERE import_id = ? AND seq IN ({})",
                    placeholders(chunk.len())
                ),
                values,
            ))
            .await?;
        }
        retract.clear();
    }
    if !pending.is_empty() {
        let mut values = Vec::with_capacity(pending.len() * 11);
        for p in pending.iter() {
            let before_state = before.get(&p.product_id);
            let before_doc = before_state.map(|(d, _, _)| d);
            let changed: Vec<&str> = match (&p.after, before_state) {
                (Some((after, stock, physical)), Some((b, on_hand, stored))) => {
                    let mut fields = after.changed_fields(b);
                    if stock.is_some() && stock != on_hand {
                        fields.push("stock");
                    }
                    fields.extend(physical.changed(stored));
                    fields
                }
                (None, _) if p.kind == Kind::Archive => vec!["status"],
                _ => Vec::new(),
            };
            let after_json = p.after.as_ref().map(|(doc, stock, physical)| {
                let mut v = serde_json::to_value(doc).unwrap_or_default();
                if let Json::Object(m) = &mut v {
                    if let Some(s) = stock {
                        m.insert("stock".into(), Json::from(*s));
                    }
                    physical.write_into(m);
                }
                v.to_string()
            });
            values.push(Value::from(job.id.clone()));
            values.push(Value::from(p.seq));
            values.push(Value::from(p.row_no));
            values.push(Value::from(p.sku.clone()));
            values.push(Value::from(p.kind.as_str()));
            values.push(Value::from(p.product_id.clone()));
            values.push(Value::from(before_state.map(|(b, on_hand, stored)| {
                let mut v = serde_json::to_value(b).unwrap_or_default();
                if let Json::Object(m) = &mut v {
                    if let Some(s) = on_hand {
                        m.insert("stock".into(), Json::from(*s));
                    }
                    stored.write_into(m);
                }
                v.to_string()
            })));
            values.push(Value::from(after_json));
            values.push(Value::from(
                serde_json::to_string(&changed).unwrap_or_else(|_| "[]".into()),
            ));
            // What the product will hash to once this change is applied: a rollback
            // undoes the change only while the product still hashes so.
            let written = match (&p.after, p.kind) {
                (Some((after, _, _)), _) => Some(after.hash()),
                (None, Kind::Archive) => before_doc.map(|b| {
                    let mut archived = b.clone();
                    archived.status = Status::Archived.as_str().to_string();
                    archived.hash()
                }),
                _ => None,
            };
            values.push(Value::from(written));
            values.push(Value::from("staged"));
        }
        insert_rows(
            &txn,
            "catalog_import_changes (import_id, seq, row_no, sku, kind, product_id, before_doc, after_doc, changed_fields, written_hash, state)",
            11,
            values,
        )
        .await?;
        pending.clear();
    }
    if !errors.is_empty() {
        let room = (MAX_STORED_ERRORS - counts.errors_stored).max(0) as usize;
        let keep = errors.len().min(room);
        let mut values = Vec::with_capacity(keep * 7);
        for (row_no, e) in &errors[..keep] {
            counts.errors_stored += 1;
            values.push(Value::from(job.id.clone()));
            values.push(Value::from(counts.errors_stored));
            values.push(Value::from(*row_no));
            values.push(Value::from(e.column.clone()));
            values.push(Value::from(e.code.clone()));
            values.push(Value::from(e.message.clone()));
            values.push(Value::from(e.value.clone()));
        }
        insert_rows(
            &txn,
            "catalog_import_errors (import_id, seq, row_no, column_name, code, message, value)",
            7,
            values,
        )
        .await?;
        errors.clear();
    }
    txn.commit().await?;
    Ok(())
}

/// The path's category, created (with its missing parents) when absent.
async fn category_for<C: ConnectionTrait>(
    conn: &C,
    catalog_id: &str,
    cats: &mut Categories,
    path: &str,
) -> ApiResult<Option<String>> {
    if path.is_empty() {
        return Ok(None);
    }
    if let Some(id) = cats.id_of.get(path) {
        return Ok(Some(id.clone()));
    }
    let parts: Vec<&str> = path.split(" > ").collect();
    let mut parent: Option<String> = None;
    for depth in 1..=parts.len() {
        let prefix = parts[..depth].join(" > ");
        if let Some(id) = cats.id_of.get(&prefix) {
            parent = Some(id.clone());
            continue;
        }
        let id = ids::new_id();
        let position = cats.id_of.len() as i32;
        conn.execute_raw(stmt(
            conn.get_database_backend(),
            "INSERT INTO catalog_categories (id, catalog_id, parent_id, name, position, created_at) VALUES (?, ?, ?, ?, ?, ?)",
            vec![
                Value::from(id.clone()),
                Value::from(catalog_id.to_string()),
                Value::from(parent.clone()),
                Value::from(parts[depth - 1].to_string()),
                Value::from(position),
                Value::from(Utc::now()),
            ],
        ))
        .await?;
        cats.id_of.insert(prefix.clone(), id.clone());
        cats.path_of.insert(id.clone(), prefix);
        parent = Some(id);
    }
    Ok(parent)
}

/// Rewrites the attribute and search rows of these products from their documents.
async fn reindex_many<C: ConnectionTrait>(
    conn: &C,
    docs: &[(&str, &ProductDoc)],
    replace: bool,
) -> ApiResult<()> {
    let attributes: Vec<Json> = docs.iter().map(|(_, d)| d.attributes_json()).collect();
    let indexed: Vec<Searchable> = docs
        .iter()
        .zip(&attributes)
        .map(|((id, d), attributes)| Searchable {
            product_id: id,
            sku: &d.sku,
            name: &d.name,
            description: &d.description,
            attributes,
        })
        .collect();
    products::reindex(conn, &indexed, replace).await
}

fn after_doc(c: &import_change::Model) -> ApiResult<(ProductDoc, Option<i64>, Physical)> {
    let text = c
        .after_doc
        .as_deref()
        .ok_or_else(|| ApiError::Internal(format!("change {} has no product", c.seq)))?;
    let mut v: Json = serde_json::from_str(text)
        .map_err(|e| ApiError::Internal(format!("change {} is unreadable: {e}", c.seq)))?;
    let (stock, physical) = match v.as_object_mut() {
        Some(m) => (
            m.remove("stock").and_then(|s| s.as_i64()),
            Physical::take_from(m),
        ),
        None => (None, Physical::default()),
    };
    let doc = serde_json::from_value(v)
        .map_err(|e| ApiError::Internal(format!("change {} is unreadable: {e}", c.seq)))?;
    Ok((doc, stock, physical))
}

/// The product as a change found it, with its weight and size then (empty for
/// changes staged before imports knew them).
fn before_doc(c: &import_change::Model) -> ApiResult<Option<(ProductDoc, Physical)>> {
    c.before_doc
        .as_deref()
        .map(|t| {
            let mut v: Json = serde_json::from_str(t)
                .map_err(|e| ApiError::Internal(format!("change {} is unreadable: {e}", c.seq)))?;
            let physical = match &mut v {
                Json::Object(m) => {
                    m.remove("stock");
                    Physical::take_from(m)
                }
                _ => Physical::default(),
            };
            let doc = serde_json::from_value(v)
                .map_err(|e| ApiError::Internal(format!("change {} is unreadable: {e}", c.seq)))?;
            Ok((doc, physical))
        })
        .transpose()
}

/// Writes the given parts of `physical` over a stored product.
async fn write_physical<C: ConnectionTrait>(
    conn: &C,
    id: &str,
    physical: &Physical,
) -> ApiResult<()> {
    let mut sets = Vec::new();
    let mut values = Vec::new();
    if let Some(w) = physical.weight_grams {
        sets.push("weight_grams = ?");
        values.push(Value::from(w));
    }
    if let Some(d) = physical.dimensions {
        sets.push("length_mm = ?, width_mm = ?, height_mm = ?");
        for i in 0..3 {
            values.push(Value::from(d.map(|sides| sides[i])));
        }
    }
    if sets.is_empty() {
        return Ok(());
    }
    values.push(Value::from(id.to_string()));
    conn.execute_raw(stmt(
        conn.get_database_backend(),
        format!(
            "UPDATE catalog_products SET {} WHERE id = ?",
            sets.join(", ")
        ),
        values,
    ))
    .await?;
    Ok(())
}

/// Writes a document over a stored product (an update, or a rollback's restore).
async fn write_doc<C: ConnectionTrait>(
    conn: &C,
    id: &str,
    doc: &ProductDoc,
    category_id: Option<String>,
) -> ApiResult<()> {
    conn.execute_raw(stmt(
        conn.get_database_backend(),
        "UPDATE catalog_products SET sku = ?, name = ?, description = ?, price_amount = ?, price_currency = ?, category_id = ?, images = ?, attributes = ?, status = ?, updated_at = ? WHERE id = ?",
        vec![
            Value::from(doc.sku.clone()),
            Value::from(doc.name.clone()),
            Value::from(doc.description.clone()),
            Value::from(doc.price_amount),
            Value::from(doc.currency.clone()),
            Value::from(category_id),
            Value::from(Json::from(doc.images.clone())),
            Value::from(doc.attributes_json()),
            Value::from(doc.status.clone()),
            Value::from(Utc::now()),
            Value::from(id.to_string()),
        ],
    ))
    .await?;
    Ok(())
}

/// Inserts new products from their documents, with the file's stock column as their
/// units on hand and in-stock flag (inventory publishes no change for the records it
/// creates from the same column).
async fn insert_docs<C: ConnectionTrait>(
    conn: &C,
    catalog_id: &str,
    rows: &[NewProduct],
) -> ApiResult<()> {
    let now = Utc::now();
    let mut values = Vec::with_capacity(rows.len() * 20);
    for (id, doc, category_id, stock, physical) in rows {
        values.push(Value::from(id.clone()));
        values.push(Value::from(catalog_id.to_string()));
        values.push(Value::from(category_id.clone()));
        values.push(Value::from(doc.sku.clone()));
        values.push(Value::from(doc.name.clone()));
        values.push(Value::from(doc.description.clone()));
        values.push(Value::from(doc.price_amount));
        values.push(Value::from(doc.currency.clone()));
        values.push(Value::from(Json::from(doc.images.clone())));
        values.push(Value::from(doc.attributes_json()));
        values.push(Value::from(stock.unwrap_or(0) > 0));
        values.push(Value::from(0i64));
        values.push(Value::from(doc.status.clone()));
        values.push(Value::from(*stock));
        values.push(Value::from(physical.weight_grams.flatten()));
        let sides = physical.dimensions.flatten();
        for i in 0..3 {
            values.push(Value::from(sides.map(|d| d[i])));
        }
        values.push(Value::from(now));
        values.push(Value::from(now));
    }
    insert_rows(
        conn,
        "catalog_products (id, catalog_id, category_id, sku, name, description, price_amount, price_currency, images, attributes, in_stock, stock_version, status, stock_on_hand, weight_grams, length_mm, width_mm, height_mm, created_at, updated_at)",
        20,
        values,
    )
    .await
}

/// A product an import inserts: id, document, category, units on hand, weight and
/// size.
type NewProduct = (String, ProductDoc, Option<String>, Option<i64>, Physical);

async fn delete_products<C: ConnectionTrait>(conn: &C, ids: &[String]) -> ApiResult<()> {
    let ids: Vec<&str> = ids.iter().map(String::as_str).collect();
    delete_in(conn, "catalog_products", "id", &ids).await
}

/// Which of a job's changes a batch reads.
#[derive(Clone, Copy)]
enum Staged {
    /// Not applied yet, oldest first.
    ToApply,
    /// Applied and not yet undone, newest first: those up to the job's `applied_seq`
    /// still `staged` in their rows, and those of jobs applied before `applied_seq`
    /// existed, marked `applied`.
    ToUndo { applied_seq: Option<i64> },
}

/// The next batch of the job's changes past `after` (a sequence number) in the
/// direction `which` reads: a range of the primary key, not a scan over the changes
/// done.
async fn staged_batch(
    db: &DatabaseConnection,
    job_id: &str,
    which: Staged,
    after: Option<i64>,
    limit: usize,
) -> ApiResult<Vec<import_change::Model>> {
    use sea_orm::Condition;
    let mut q = import_change::Entity::find().filter(import_change::Column::ImportId.eq(job_id));
    q = match which {
        Staged::ToApply => {
            let q = q.filter(import_change::Column::State.eq("staged"));
            match after {
                Some(after) => q.filter(import_change::Column::Seq.gt(after)),
                None => q,
            }
            .order_by_asc(import_change::Column::Seq)
        }
        Staged::ToUndo { applied_seq } => {
            let mut undo = Condition::any().add(import_change::Column::State.eq("applied"));
            if let Some(through) = applied_seq {
                undo = undo.add(
                    Condition::all()
                        .add(import_change::Column::State.eq("staged"))
                        .add(import_change::Column::Seq.lte(through)),
                );
            }
            let q = q.filter(undo);
            match after {
                Some(after) => q.filter(import_change::Column::Seq.lt(after)),
                None => q,
            }
            .order_by_desc(import_change::Column::Seq)
        }
    };
    Ok(q.limit(limit as u64).all(db).await?)
}

/// How far the job has applied its changes, as stored now rather than when the job was
/// picked up: after a restart, this process may have applied part of it before.
async fn applied_seq(db: &DatabaseConnection, job_id: &str) -> ApiResult<Option<i64>> {
    Ok(import::Entity::find_by_id(job_id.to_string())
        .one(db)
        .await?
        .and_then(|j| j.applied_seq))
}

/// What a batch adds to its job, besides its counter.
enum Also {
    /// Adds to a second counter.
    Count(&'static str, i64),
    /// Sets `applied_seq`: an apply marks no change, it moves past them.
    AppliedThrough(i64),
}

/// Marks changes done and adds to one of the job's counters, checking the lease: the
/// batch commits only while this process holds the job.
async fn record_batch<C: ConnectionTrait>(
    conn: &C,
    lease: &Lease,
    marks: &[(i64, &'static str)],
    counter: &str,
    by: i64,
    also: Also,
) -> Result<(), Stop> {
    let backend = conn.get_database_backend();
    let (extra, extra_value) = match also {
        Also::Count(c, n) => (format!(", {c} = {c} + ?"), n),
        Also::AppliedThrough(seq) => (", applied_seq = ?".to_string(), seq),
    };
    let values = vec![
        Value::from(by),
        Value::from(extra_value),
        Value::from(Utc::now()),
        Value::from(lease.job_id.clone()),
        Value::from(lease.owner.clone()),
    ];
    let res = conn
        .execute_raw(stmt(
            backend,
            format!(
                "UPDATE catalog_imports SET {counter} = {counter} + ?{extra}, updated_at = ? WHERE id = ? AND lease_owner = ?"
            ),
            values,
        ))
        .await?;
    if res.rows_affected() != 1 {
        return Err(Stop::LostLease);
    }
    // One statement per state, not per change: a batch is hundreds of changes.
    let mut states: Vec<&str> = marks.iter().map(|(_, s)| *s).collect();
    states.sort_unstable();
    states.dedup();
    for state in states {
        let seqs: Vec<i64> = marks
            .iter()
            .filter(|(_, s)| *s == state)
            .map(|(q, _)| *q)
            .collect();
        for chunk in seqs.chunks(MAX_PARAMS) {
            let mut values = vec![Value::from(state), Value::from(lease.job_id.clone())];
            values.extend(chunk.iter().map(|q| Value::from(*q)));
            conn.execute_raw(stmt(
                backend,
                format!(
                    "UPDATE catalog_import_changes SET state = ? WHERE import_id = ? AND seq IN ({})",
                    placeholders(chunk.len())
                ),
                values,
            ))
            .await?;
        }
    }
    Ok(())
}

/// A staged change read and decoded ahead of the transaction that applies it.
struct Decoded {
    seq: i64,
    product_id: String,
    action: Action,
}

/// What applying a change does, with the documents it needs.
enum Action {
    /// A new product, with the file's stock, weight and size columns.
    Create(ProductDoc, Option<i64>, Physical),
    /// The product as the change leaves it (with the file's stock, weight and size
    /// columns), and as it was.
    Update(ProductDoc, Option<i64>, Physical, Option<ProductDoc>),
    Archive,
    Delete,
}

fn decode(c: import_change::Model) -> ApiResult<Decoded> {
    let action = match Kind::parse(&c.kind).unwrap_or(Kind::Update) {
        Kind::Create => {
            let (doc, stock, physical) = after_doc(&c)?;
            Action::Create(doc, stock, physical)
        }
        Kind::Update => {
            let (doc, stock, physical) = after_doc(&c)?;
            Action::Update(doc, stock, physical, before_doc(&c)?.map(|(b, _)| b))
        }
        Kind::Archive => Action::Archive,
        Kind::Delete => Action::Delete,
    };
    Ok(Decoded {
        seq: c.seq,
        product_id: c.product_id,
        action,
    })
}

/// Reads the job's staged changes in order on the read connections and decodes them,
/// one batch ahead of the writer: on SQLite the one writing connection then spends its
/// time writing (reading and decoding were a seventh of an apply). An empty batch is
/// the end. Stops when the receiver is dropped.
fn read_ahead(
    ctx: &CatalogCtx,
    job_id: &str,
    applied_seq: Option<i64>,
) -> (
    tokio::sync::mpsc::Receiver<ApiResult<Vec<Decoded>>>,
    AbortOnDrop,
) {
    let (tx, rx) = tokio::sync::mpsc::channel(1);
    let reads = ctx.reads.clone();
    let job_id = job_id.to_string();
    let task = tokio::spawn(async move {
        let mut cursor = applied_seq;
        loop {
            // A slot first, then the read: one batch waits decoded while the writer
            // applies another, never more (ten thousand documents are tens of MB).
            let Ok(slot) = tx.reserve().await else {
                return;
            };
            let batch =
                match staged_batch(&reads, &job_id, Staged::ToApply, cursor, APPLY_BATCH).await {
                    Ok(b) => b,
                    Err(e) => {
                        slot.send(Err(e));
                        return;
                    }
                };
            cursor = batch.last().map(|c| c.seq).or(cursor);
            let end = batch.is_empty();
            // Decoded here, a few hundred at a time between yields, rather than on a
            // blocking thread: the writer frees these documents, and memory a thread
            // frees for another that then sits idle stayed resident (+70 MB at 200,000
            // rows).
            let mut decoded = Vec::with_capacity(batch.len());
            let mut failure = None;
            for (i, c) in batch.into_iter().enumerate() {
                if i > 0 && i % 250 == 0 {
                    tokio::task::yield_now().await;
                }
                match decode(c) {
                    Ok(d) => decoded.push(d),
                    Err(e) => {
                        failure = Some(e);
                        break;
                    }
                }
            }
            let failed = failure.is_some();
            let decoded = failure.map_or(Ok(decoded), Err);
            slot.send(decoded);
            if end || failed {
                return;
            }
        }
    });
    (rx, AbortOnDrop(task))
}

/// Stops a task when its owner is done with it, however the owner returns.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Where an apply's time went, logged when it finishes: what `importbench` prints, and
/// what an operator wanting a faster import looks at first.
#[derive(Default)]
struct ApplyProfile {
    /// Waiting for the next batch to be read and decoded.
    reading: Duration,
    /// Writing new products' rows.
    products: Duration,
    /// Writing attribute filters and search entries.
    index: Duration,
    /// Everything else in the transaction: updates, archives, deletes, the event, the
    /// job's progress.
    other: Duration,
    commit: Duration,
}

impl ApplyProfile {
    /// Adds the time since `*since` to `bucket`, and restarts the clock.
    fn lap(bucket: &mut Duration, since: &mut Instant) {
        let now = Instant::now();
        *bucket += now - *since;
        *since = now;
    }

    fn log(&self, job: &import::Model, started: Instant) {
        tracing::info!(
            job = %job.id,
            total_s = started.elapsed().as_secs_f64(),
            reading_s = self.reading.as_secs_f64(),
            products_s = self.products.as_secs_f64(),
            index_s = self.index.as_secs_f64(),
            other_s = self.other.as_secs_f64(),
            commit_s = self.commit.as_secs_f64(),
            "import applied"
        );
    }
}

/// Applies the job's staged changes, a batch per transaction, from the first not yet
/// applied. Stock columns and the products' lifecycle reach other domains as one
/// `catalog.products_imported` event per batch.
pub async fn apply(ctx: &CatalogCtx, job: &import::Model, lease: &Lease) -> Result<(), Stop> {
    let db = &ctx.db;
    let started = Instant::now();
    let mut profile = ApplyProfile::default();
    let mut cats = categories(db, &job.catalog_id).await?;
    let mut last_progress = Instant::now();
    let (mut batches, _reader) = read_ahead(ctx, &job.id, applied_seq(db, &job.id).await?);
    loop {
        let mut clock = Instant::now();
        let batch = match batches.recv().await {
            Some(b) => b?,
            None => return Err(ApiError::Internal("the change reader stopped".into()).into()),
        };
        ApplyProfile::lap(&mut profile.reading, &mut clock);
        if batch.is_empty() {
            profile.log(job, started);
            return Ok(());
        }
        let txn = shop_kit::db::begin_write(db).await?;
        let mut creates: Vec<NewProduct> = Vec::new();
        let mut event = batch_event(job);
        let applied = batch.len() as i64;
        let last_seq = batch.last().map(|c| c.seq);
        let mut reindex: Vec<(String, ProductDoc)> = Vec::new();
        let mut archive: Vec<String> = Vec::new();
        let mut delete: Vec<String> = Vec::new();
        for c in batch {
            match c.action {
                Action::Create(doc, stock, physical) => {
                    let category_id =
                        category_for(&txn, &job.catalog_id, &mut cats, &doc.category).await?;
                    if let Some(s) = stock {
                        event.stock.push((c.product_id.clone(), s));
                    }
                    event.created.push((c.product_id.clone(), doc.name.clone()));
                    event
                        .described
                        .push(facts_of(&c.product_id, &doc, category_id.clone()));
                    creates.push((c.product_id, doc, category_id, stock, physical));
                }
                Action::Update(doc, stock, physical, before) => {
                    let category_id =
                        category_for(&txn, &job.catalog_id, &mut cats, &doc.category).await?;
                    if let Some(s) = stock {
                        event.stock.push((c.product_id.clone(), s));
                    }
                    if before.as_ref().is_none_or(|b| b.name != doc.name) {
                        event.renamed.push((c.product_id.clone(), doc.name.clone()));
                    }
                    if doc.status == Status::Archived.as_str()
                        && before.as_ref().is_some_and(|b| b.status != doc.status)
                    {
                        event.archived.push(c.product_id.clone());
                    }
                    if before.as_ref().is_none_or(|b| !alike(b, &doc)) {
                        event
                            .described
                            .push(facts_of(&c.product_id, &doc, category_id.clone()));
                    }
                    write_doc(&txn, &c.product_id, &doc, category_id).await?;
                    write_physical(&txn, &c.product_id, &physical).await?;
                    reindex.push((c.product_id, doc));
                }
                Action::Archive => {
                    archive.push(c.product_id.clone());
                    event.archived.push(c.product_id);
                }
                Action::Delete => {
                    delete.push(c.product_id.clone());
                    event.deleted.push(c.product_id);
                }
            }
        }
        ApplyProfile::lap(&mut profile.other, &mut clock);
        insert_docs(&txn, &job.catalog_id, &creates).await?;
        ApplyProfile::lap(&mut profile.products, &mut clock);
        let docs: Vec<(&str, &ProductDoc)> = creates
            .iter()
            .map(|(id, d, _, _, _)| (id.as_str(), d))
            .collect();
        reindex_many(&txn, &docs, false).await?;
        let docs: Vec<(&str, &ProductDoc)> =
            reindex.iter().map(|(id, d)| (id.as_str(), d)).collect();
        reindex_many(&txn, &docs, true).await?;
        ApplyProfile::lap(&mut profile.index, &mut clock);
        for chunk in archive.chunks(MAX_PARAMS) {
            let mut values = vec![
                Value::from(Status::Archived.as_str()),
                Value::from(Utc::now()),
            ];
            values.extend(chunk.iter().map(|i| Value::from(i.clone())));
            txn.execute_raw(stmt(
                txn.get_database_backend(),
                format!(
                    "UPDATE catalog_products SET status = ?, updated_at = ? WHERE id IN ({})",
                    placeholders(chunk.len())
                ),
                values,
            ))
            .await?;
        }
        delete_products(&txn, &delete).await?;
        bump_revision(&txn, &job.catalog_id).await?;
        ctx.outbox
            .write(
                &txn,
                PRODUCTS_IMPORTED,
                &job.catalog_id,
                serde_json::to_value(&event).unwrap_or_default(),
            )
            .await?;
        record_batch(
            &txn,
            lease,
            &[],
            "applied",
            applied,
            Also::AppliedThrough(last_seq.unwrap_or_default()),
        )
        .await?;
        ApplyProfile::lap(&mut profile.other, &mut clock);
        txn.commit().await?;
        ApplyProfile::lap(&mut profile.commit, &mut clock);
        ctx.outbox.wake();
        shop_kit::fault::point("imports.after_apply_batch");
        if last_progress.elapsed() >= PROGRESS_EVERY {
            last_progress = Instant::now();
            if lease.renew(db).await? {
                return Err(Stop::Cancelled);
            }
        }
    }
}

/// A product as recommendations compare products, from its document.
fn facts_of(id: &str, doc: &ProductDoc, category_id: Option<String>) -> ProductFacts {
    ProductFacts {
        product_id: id.to_string(),
        category_id,
        price_amount: doc.price_amount,
        currency: doc.currency.clone(),
        traits: traits(&doc.attributes),
        active: doc.status == Status::Active.as_str(),
    }
}

/// Whether two documents compare alike for recommendations (nothing in
/// [`ProductFacts`] differs).
fn alike(a: &ProductDoc, b: &ProductDoc) -> bool {
    a.price_amount == b.price_amount
        && a.currency == b.currency
        && a.category == b.category
        && a.attributes == b.attributes
        && a.status == b.status
}

/// The (empty) event of one batch of a job's changes.
fn batch_event(job: &import::Model) -> ProductsImported {
    ProductsImported {
        import_id: job.id.clone(),
        catalog_id: job.catalog_id.clone(),
        supplier_id: job.supplier_id.clone(),
        ..Default::default()
    }
}

/// Bumps the catalog's revision: reviews made before this write are stale.
pub async fn bump_revision<C: ConnectionTrait>(conn: &C, catalog_id: &str) -> ApiResult<()> {
    conn.execute_raw(stmt(
        conn.get_database_backend(),
        "UPDATE catalog_catalogs SET revision = revision + 1 WHERE id = ?",
        vec![Value::from(catalog_id.to_string())],
    ))
    .await?;
    Ok(())
}

/// Undoes the job's applied changes, newest first. A product changed since the import
/// wrote it is left as it is and its change marked `kept`.
pub async fn rollback(ctx: &CatalogCtx, job: &import::Model, lease: &Lease) -> Result<(), Stop> {
    let db = &ctx.db;
    let undo = Staged::ToUndo {
        applied_seq: applied_seq(db, &job.id).await?,
    };
    let mut cats = categories(db, &job.catalog_id).await?;
    let mut last_progress = Instant::now();
    let mut cursor: Option<i64> = None;
    loop {
        let batch = staged_batch(db, &job.id, undo, cursor, BATCH).await?;
        let Some(last) = batch.last() else {
            return Ok(());
        };
        cursor = Some(last.seq);
        let txn = shop_kit::db::begin_write(db).await?;
        let ids: Vec<String> = batch.iter().map(|c| c.product_id.clone()).collect();
        let mut current: HashMap<String, product::Model> = HashMap::new();
        for chunk in ids.chunks(MAX_PARAMS) {
            for p in product::Entity::find()
                .filter(product::Column::Id.is_in(chunk.to_vec()))
                .all(&txn)
                .await?
            {
                current.insert(p.id.clone(), p);
            }
        }
        let skus_taken: HashSet<String> = {
            let skus: Vec<String> = batch
                .iter()
                .filter(|c| c.kind == Kind::Delete.as_str())
                .map(|c| c.sku.clone())
                .collect();
            let mut taken = HashSet::new();
            for chunk in skus.chunks(MAX_PARAMS) {
                for p in product::Entity::find()
                    .filter(product::Column::CatalogId.eq(job.catalog_id.clone()))
                    .filter(product::Column::Sku.is_in(chunk.to_vec()))
                    .all(&txn)
                    .await?
                {
                    taken.insert(p.sku);
                }
            }
            taken
        };
        let mut event = batch_event(job);
        let mut marks: Vec<(i64, &'static str)> = Vec::new();
        let mut undone = 0i64;
        let mut kept = 0i64;
        let mut delete: Vec<String> = Vec::new();
        let mut reinsert: Vec<NewProduct> = Vec::new();
        let mut reindex: Vec<(String, ProductDoc)> = Vec::new();
        for c in &batch {
            let kind = Kind::parse(&c.kind).unwrap_or(Kind::Update);
            let untouched = current
                .get(&c.product_id)
                .map(|p| Some(doc_of(p, &cats).hash()) == c.written_hash);
            let ok = match kind {
                Kind::Create => match untouched {
                    Some(true) => {
                        delete.push(c.product_id.clone());
                        event.deleted.push(c.product_id.clone());
                        true
                    }
                    None => true, // already gone
                    Some(false) => false,
                },
                Kind::Update | Kind::Archive => match (untouched, before_doc(c)?) {
                    (Some(true), Some((before, stored))) => {
                        let category_id =
                            category_for(&txn, &job.catalog_id, &mut cats, &before.category)
                                .await?;
                        event
                            .described
                            .push(facts_of(&c.product_id, &before, category_id.clone()));
                        write_doc(&txn, &c.product_id, &before, category_id).await?;
                        // Back what the change wrote of weight and size, no more.
                        if kind == Kind::Update {
                            let (_, _, touched) = after_doc(c)?;
                            let restore = Physical {
                                weight_grams: touched.weight_grams.and(stored.weight_grams),
                                dimensions: touched.dimensions.and(stored.dimensions),
                            };
                            write_physical(&txn, &c.product_id, &restore).await?;
                        }
                        if let Some(p) = current.get(&c.product_id)
                            && p.name != before.name
                        {
                            event
                                .renamed
                                .push((c.product_id.clone(), before.name.clone()));
                        }
                        if before.status != Status::Archived.as_str() {
                            event.restored.push(c.product_id.clone());
                        }
                        reindex.push((c.product_id.clone(), before));
                        true
                    }
                    _ => false,
                },
                Kind::Delete => match before_doc(c)? {
                    Some((before, stored))
                        if untouched.is_none() && !skus_taken.contains(&c.sku) =>
                    {
                        let category_id =
                            category_for(&txn, &job.catalog_id, &mut cats, &before.category)
                                .await?;
                        event
                            .created
                            .push((c.product_id.clone(), before.name.clone()));
                        event
                            .described
                            .push(facts_of(&c.product_id, &before, category_id.clone()));
                        reinsert.push((c.product_id.clone(), before, category_id, None, stored));
                        true
                    }
                    _ => false,
                },
            };
            if ok {
                undone += 1;
                marks.push((c.seq, "rolled_back"));
            } else {
                kept += 1;
                marks.push((c.seq, "kept"));
            }
        }
        delete_products(&txn, &delete).await?;
        insert_docs(&txn, &job.catalog_id, &reinsert).await?;
        let docs: Vec<(&str, &ProductDoc)> = reinsert
            .iter()
            .map(|(id, d, _, _, _)| (id.as_str(), d))
            .collect();
        reindex_many(&txn, &docs, false).await?;
        let docs: Vec<(&str, &ProductDoc)> =
            reindex.iter().map(|(id, d)| (id.as_str(), d)).collect();
        reindex_many(&txn, &docs, true).await?;
        bump_revision(&txn, &job.catalog_id).await?;
        ctx.outbox
            .write(
                &txn,
                PRODUCTS_IMPORTED,
                &job.catalog_id,
                serde_json::to_value(&event).unwrap_or_default(),
            )
            .await?;
        record_batch(
            &txn,
            lease,
            &marks,
            "rolled_back",
            undone,
            Also::Count("rollback_skipped", kept),
        )
        .await?;
        txn.commit().await?;
        ctx.outbox.wake();
        if last_progress.elapsed() >= PROGRESS_EVERY {
            last_progress = Instant::now();
            lease.renew(db).await?;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stored_ids_come_back_exactly_as_they_were_written() {
        let mut others = Vec::new();
        let ids = [
            "0193a2b4-5c6d-7e8f-9a0b-1c2d3e4f5a6b",
            "0193A2B4-5C6D-7E8F-9A0B-1C2D3E4F5A6B",
            "0193a2b45c6d7e8f9a0b1c2d3e4f5a6b",
            "demo-product-1",
            "",
        ];
        let stored: Vec<StoredId> = ids
            .iter()
            .map(|id| StoredId::new(id, &mut others).unwrap())
            .collect();
        for (id, s) in ids.iter().zip(&stored) {
            assert_eq!(s.text(&others), *id);
        }
        assert!(matches!(stored[0], StoredId::Uuid(_)));
        assert_eq!(others.len(), 4);
        // Small enough that a million stay well under the import's memory budget.
        assert!(std::mem::size_of::<Known>() <= 20);
        assert!(std::mem::size_of::<Existing>() <= 40);
    }

    #[test]
    fn a_stored_weight_size_and_archived_flag_survive_packing() {
        for (weight, sides, archived) in [
            (None, None, false),
            (Some(0), None, true),
            (Some(1_000_000), Some([10_000, 1, 9_999]), false),
            (None, Some([220, 160, 240]), true),
        ] {
            let stored = Physical {
                weight_grams: Some(weight),
                dimensions: Some(sides),
            };
            let facts = Facts::new(&stored, archived);
            assert_eq!(facts.physical(), stored);
            assert_eq!(facts.archived(), archived);
        }
    }
}

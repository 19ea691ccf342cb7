//! Uploaded files, kept in the database in chunks: any replica can read a file another
//! received, a crash loses nothing that was acknowledged, and no process holds a whole
//! file in memory. A file is written from its start without gaps (`received` is how far
//! it got), which is what makes a staged upload resumable.

use chrono::{Duration, Utc};
use sea_orm::{ConnectionTrait, EntityTrait, Statement, Value};
use shop_kit::{ApiError, ApiResult, ids};

use crate::entity::upload;

/// The most a chunk row holds.
pub const CHUNK_BYTES: usize = 1024 * 1024;
/// How long an upload is kept unused.
pub const UPLOAD_TTL_HOURS: i64 = 24;

pub async fn create<C: ConnectionTrait>(
    conn: &C,
    owner: &str,
    file_name: &str,
    content_type: &str,
    size: Option<i64>,
) -> ApiResult<upload::Model> {
    let now = shop_kit::db::now_as_stored(conn);
    let model = upload::Model {
        id: ids::new_id(),
        owner_id: owner.to_string(),
        file_name: clip(file_name, 255),
        content_type: clip(content_type, 100),
        size,
        received: 0,
        complete: false,
        created_at: now,
        expires_at: now + Duration::hours(UPLOAD_TTL_HOURS),
    };
    shop_kit::db::insert_known(conn, upload::ActiveModel::from(model.clone())).await?;
    Ok(model)
}

fn clip(s: &str, max: usize) -> String {
    s.chars().take(max).collect()
}

pub async fn get<C: ConnectionTrait>(conn: &C, id: &str) -> ApiResult<Option<upload::Model>> {
    Ok(upload::Entity::find_by_id(id.to_string()).one(conn).await?)
}

/// Appends `data` at `offset`, which must be where the file ends now. Returns the new
/// end. Two writers racing for the same offset: one wins, the other gets CONFLICT.
pub async fn append(
    db: &sea_orm::DatabaseConnection,
    upload_id: &str,
    offset: i64,
    data: &[u8],
) -> ApiResult<i64> {
    if data.is_empty() {
        return Ok(offset);
    }
    let txn = shop_kit::db::begin_write(db).await?;
    let backend = txn.get_database_backend();
    let moved = txn
        .execute_raw(Statement::from_sql_and_values(
            backend,
            "UPDATE catalog_uploads SET received = received + ? WHERE id = ? AND received = ? AND complete = ?",
            [
                Value::from(data.len() as i64),
                Value::from(upload_id.to_string()),
                Value::from(offset),
                Value::from(false),
            ],
        ))
        .await?;
    if moved.rows_affected() != 1 {
        return Err(ApiError::conflict(format!(
            "the upload does not end at byte {offset} (or is complete)"
        )));
    }
    txn.execute_raw(Statement::from_sql_and_values(
        backend,
        "INSERT INTO catalog_upload_chunks (upload_id, byte_offset, data) VALUES (?, ?, ?)",
        [
            Value::from(upload_id.to_string()),
            Value::from(offset),
            Value::from(data.to_vec()),
        ],
    ))
    .await?;
    txn.commit().await?;
    Ok(offset + data.len() as i64)
}

pub async fn mark_complete<C: ConnectionTrait>(conn: &C, upload_id: &str) -> ApiResult<()> {
    conn.execute_raw(Statement::from_sql_and_values(
        conn.get_database_backend(),
        "UPDATE catalog_uploads SET complete = ? WHERE id = ?",
        [Value::from(true), Value::from(upload_id.to_string())],
    ))
    .await?;
    Ok(())
}

/// Stores what `input` yields as a new, complete upload; refuses past `limit` bytes.
pub async fn store(
    db: &sea_orm::DatabaseConnection,
    owner: &str,
    file_name: &str,
    content_type: &str,
    mut input: impl tokio::io::AsyncRead + Unpin,
    limit: u64,
) -> ApiResult<upload::Model> {
    use tokio::io::AsyncReadExt;
    let up = create(db, owner, file_name, content_type, None).await?;
    let mut buf = vec![0u8; CHUNK_BYTES];
    let mut offset = 0i64;
    loop {
        // Fill a whole chunk (reads come in smaller pieces) before writing it.
        let mut filled = 0;
        while filled < CHUNK_BYTES {
            let n = match input.read(&mut buf[filled..]).await {
                Ok(n) => n,
                Err(e) => {
                    discard(db, &up.id).await;
                    return Err(ApiError::bad_input(format!("the upload failed: {e}")));
                }
            };
            if n == 0 {
                break;
            }
            filled += n;
        }
        if offset as u64 + filled as u64 > limit {
            discard(db, &up.id).await;
            return Err(too_large(limit));
        }
        if filled == 0 {
            break;
        }
        offset = append(db, &up.id, offset, &buf[..filled]).await?;
        if filled < CHUNK_BYTES {
            break;
        }
    }
    mark_complete(db, &up.id).await?;
    Ok(upload::Model {
        received: offset,
        complete: true,
        ..up
    })
}

pub fn too_large(limit: u64) -> ApiError {
    ApiError::bad_input(format!(
        "the file is larger than the limit of {limit} bytes"
    ))
}

/// Deletes an upload and its chunks (best effort: a leftover expires).
pub async fn discard(db: &sea_orm::DatabaseConnection, upload_id: &str) {
    let backend = db.get_database_backend();
    for sql in [
        "DELETE FROM catalog_upload_chunks WHERE upload_id = ?",
        "DELETE FROM catalog_uploads WHERE id = ?",
    ] {
        if let Err(e) = db
            .execute_raw(Statement::from_sql_and_values(
                backend,
                sql,
                [Value::from(upload_id.to_string())],
            ))
            .await
        {
            tracing::warn!(upload = upload_id, error = %e, "discarding an upload failed");
        }
    }
}

/// A read that ran out of stored bytes: the parsers report it as a truncated file.
fn missing_bytes(why: &str) -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::UnexpectedEof, why.to_string())
}

/// A blocking reader of an upload's bytes, fed by a task that reads chunks in order:
/// the parsers are synchronous and run on a blocking thread.
pub fn reader(db: sea_orm::DatabaseConnection, upload: upload::Model) -> ChunkReader {
    let (tx, rx) = tokio::sync::mpsc::channel::<std::io::Result<Vec<u8>>>(4);
    tokio::spawn(async move {
        let backend = db.get_database_backend();
        let mut offset = 0i64;
        loop {
            let rows = db
                .query_all_raw(Statement::from_sql_and_values(
                    backend,
                    "SELECT byte_offset AS o, data FROM catalog_upload_chunks WHERE upload_id = ? AND byte_offset >= ? ORDER BY byte_offset LIMIT 4",
                    [Value::from(upload.id.clone()), Value::from(offset)],
                ))
                .await;
            let rows = match rows {
                Ok(r) => r,
                Err(e) => {
                    let _ = tx.send(Err(std::io::Error::other(e.to_string()))).await;
                    return;
                }
            };
            if rows.is_empty() {
                if offset < upload.size.unwrap_or(upload.received).max(upload.received)
                    || !upload.complete
                {
                    let _ = tx
                        .send(Err(missing_bytes("the upload is incomplete")))
                        .await;
                }
                return;
            }
            for row in rows {
                let at: i64 = row.try_get("", "o").unwrap_or(-1);
                let data: Vec<u8> = row.try_get("", "data").unwrap_or_default();
                if at != offset {
                    let _ = tx.send(Err(missing_bytes("the upload has a gap"))).await;
                    return;
                }
                offset += data.len() as i64;
                if tx.send(Ok(data)).await.is_err() {
                    return; // the parser stopped
                }
            }
        }
    });
    ChunkReader {
        rx,
        current: Vec::new(),
        pos: 0,
    }
}

pub struct ChunkReader {
    rx: tokio::sync::mpsc::Receiver<std::io::Result<Vec<u8>>>,
    current: Vec<u8>,
    pos: usize,
}

impl std::io::Read for ChunkReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        while self.pos == self.current.len() {
            // Called on a blocking thread (the parser's), never on the runtime.
            match self.rx.blocking_recv() {
                Some(Ok(next)) => {
                    self.current = next;
                    self.pos = 0;
                }
                Some(Err(e)) => return Err(e),
                None => return Ok(0),
            }
        }
        let n = buf.len().min(self.current.len() - self.pos);
        buf[..n].copy_from_slice(&self.current[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

/// A blocking reader of a complete upload that can seek, for formats read out of order
/// (an `.xlsx` is a zip: its directory is at the end). It holds one chunk at a time and
/// fetches the chunk covering the position it is asked for; call it on a blocking
/// thread, never on the runtime.
pub fn seekable(
    db: sea_orm::DatabaseConnection,
    upload: &upload::Model,
    runtime: tokio::runtime::Handle,
) -> SeekableUpload {
    SeekableUpload {
        db,
        runtime,
        upload_id: upload.id.clone(),
        len: upload.received.max(0) as u64,
        complete: upload.complete,
        pos: 0,
        chunk_at: 0,
        chunk: Vec::new(),
    }
}

pub struct SeekableUpload {
    db: sea_orm::DatabaseConnection,
    runtime: tokio::runtime::Handle,
    upload_id: String,
    len: u64,
    complete: bool,
    pos: u64,
    chunk_at: u64,
    chunk: Vec<u8>,
}

impl SeekableUpload {
    fn load(&mut self) -> std::io::Result<()> {
        if !self.complete {
            return Err(missing_bytes("the upload is incomplete"));
        }
        let db = self.db.clone();
        let sql = Statement::from_sql_and_values(
            db.get_database_backend(),
            "SELECT byte_offset AS o, data FROM catalog_upload_chunks WHERE upload_id = ? AND byte_offset <= ? ORDER BY byte_offset DESC LIMIT 1",
            [
                Value::from(self.upload_id.clone()),
                Value::from(self.pos as i64),
            ],
        );
        let row = self
            .runtime
            .block_on(async move { db.query_one_raw(sql).await })
            .map_err(|e| std::io::Error::other(e.to_string()))?;
        let (at, data) = match row {
            Some(r) => (
                r.try_get::<i64>("", "o").unwrap_or(-1),
                r.try_get::<Vec<u8>>("", "data").unwrap_or_default(),
            ),
            None => (-1, Vec::new()),
        };
        let at = u64::try_from(at).unwrap_or(u64::MAX);
        if at > self.pos || at + data.len() as u64 <= self.pos {
            return Err(missing_bytes("the upload has a gap"));
        }
        self.chunk_at = at;
        self.chunk = data;
        Ok(())
    }
}

impl std::io::Read for SeekableUpload {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.pos >= self.len || buf.is_empty() {
            return Ok(0);
        }
        let end = self.chunk_at + self.chunk.len() as u64;
        if self.pos < self.chunk_at || self.pos >= end {
            self.load()?;
        }
        let from = (self.pos - self.chunk_at) as usize;
        let n = buf.len().min(self.chunk.len() - from);
        buf[..n].copy_from_slice(&self.chunk[from..from + n]);
        self.pos += n as u64;
        Ok(n)
    }
}

impl std::io::Seek for SeekableUpload {
    fn seek(&mut self, to: std::io::SeekFrom) -> std::io::Result<u64> {
        let target = match to {
            std::io::SeekFrom::Start(n) => Some(n),
            std::io::SeekFrom::End(d) => self.len.checked_add_signed(d),
            std::io::SeekFrom::Current(d) => self.pos.checked_add_signed(d),
        };
        let target = target.ok_or_else(|| {
            std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                "seek before the start of the upload",
            )
        })?;
        self.pos = target;
        Ok(target)
    }
}

/// Deletes uploads past their expiry.
pub async fn purge_expired(db: &sea_orm::DatabaseConnection) -> ApiResult<u64> {
    let now = Utc::now();
    let expired = upload::Entity::find()
        .filter(sea_orm::ColumnTrait::lt(&upload::Column::ExpiresAt, now))
        .all(db)
        .await?;
    for up in &expired {
        discard(db, &up.id).await;
    }
    Ok(expired.len() as u64)
}

use sea_orm::QueryFilter;

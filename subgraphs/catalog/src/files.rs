//! The catalog's file routes, served at the gateway's origin under `/files/catalog/`:
//! staged uploads (`HEAD` and `PUT /files/uploads/{id}`, resumable by byte range) and
//! export downloads (`GET /files/exports/{token}`).

use axum::Router;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use futures::StreamExt;
use shop_kit::auth::Verifier;
use shop_kit::server::coded_error;

use crate::service::{CatalogCtx, exports, uploads};

#[derive(Clone)]
struct Files {
    ctx: CatalogCtx,
    verifier: Verifier,
}

pub fn router(ctx: CatalogCtx, verifier: Verifier) -> Router {
    Router::new()
        .route(
            "/files/uploads/{id}",
            axum::routing::put(put_upload).head(upload_state),
        )
        .route("/files/exports/{token}", get(download_export))
        .with_state(Files { ctx, verifier })
}

/// The upload, if it is the caller's.
async fn owned_upload(
    files: &Files,
    headers: &HeaderMap,
    id: &str,
) -> Result<crate::entity::upload::Model, Response> {
    let caller = shop_kit::server::caller_from_headers(&files.verifier, headers).await?;
    let Some(p) = caller.0 else {
        return Err(coded_error(
            StatusCode::UNAUTHORIZED,
            "UNAUTHENTICATED",
            "sign in to upload",
        ));
    };
    if !shop_kit::ids::is_valid_id(id) {
        return Err(coded_error(
            StatusCode::NOT_FOUND,
            "NOT_FOUND",
            "no such upload",
        ));
    }
    match uploads::get(&files.ctx.db, id).await {
        Ok(Some(up)) if up.owner_id == p.user_id || p.is_admin() => Ok(up),
        Ok(_) => Err(coded_error(
            StatusCode::NOT_FOUND,
            "NOT_FOUND",
            "no such upload",
        )),
        Err(_) => Err(coded_error(
            StatusCode::SERVICE_UNAVAILABLE,
            "SERVICE_UNAVAILABLE",
            "try again later",
        )),
    }
}

fn progress_headers(up: &crate::entity::upload::Model, status: StatusCode) -> Response {
    let mut resp = (
        status,
        axum::Json(serde_json::json!({
            "id": up.id,
            "received": up.received,
            "size": up.size,
            "complete": up.complete,
        })),
    )
        .into_response();
    let h = resp.headers_mut();
    if let Ok(v) = up.received.to_string().parse() {
        h.insert("upload-offset", v);
    }
    if up.received > 0
        && let Ok(v) = format!("bytes=0-{}", up.received - 1).parse()
    {
        h.insert(header::RANGE, v);
    }
    resp
}

/// How much of a staged upload has arrived: where to resume.
async fn upload_state(
    State(files): State<Files>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Response {
    match owned_upload(&files, &headers, &id).await {
        Ok(up) => progress_headers(&up, StatusCode::OK),
        Err(resp) => resp,
    }
}

/// `bytes START-END/TOTAL` → (START, END inclusive, TOTAL).
fn content_range(headers: &HeaderMap) -> Option<Result<(i64, i64, i64), ()>> {
    let v = headers.get(header::CONTENT_RANGE)?.to_str().ok();
    let parsed = v.and_then(|v| {
        let rest = v.trim().strip_prefix("bytes ")?;
        let (range, total) = rest.split_once('/')?;
        let (start, end) = range.split_once('-')?;
        Some((
            start.trim().parse().ok()?,
            end.trim().parse().ok()?,
            total.trim().parse().ok()?,
        ))
    });
    Some(parsed.ok_or(()))
}

/// Reads and drops up to 16 MiB of a refused request's body before answering, so the
/// answer reaches the client (and the gateway in between) instead of a connection
/// closed under a body still being sent. A larger body is cut off.
async fn drained(body: Body, resp: Response) -> Response {
    let mut stream = body.into_data_stream();
    let mut read = 0usize;
    while let Some(Ok(piece)) = stream.next().await {
        read += piece.len();
        if read > 16 * 1024 * 1024 {
            break;
        }
    }
    resp
}

/// Appends the body to a staged upload at the byte where it stopped. Without
/// `Content-Range` the body is the whole file from its start.
async fn put_upload(
    State(files): State<Files>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let up = match owned_upload(&files, &headers, &id).await {
        Ok(up) => up,
        Err(resp) => return drained(body, resp).await,
    };
    let size = up.size.unwrap_or(0);
    let start = match content_range(&headers) {
        None => 0,
        Some(Ok((start, end, total))) if total == size && start <= end && end < size => start,
        Some(_) => {
            let resp = coded_error(
                StatusCode::RANGE_NOT_SATISFIABLE,
                "BAD_REQUEST",
                &format!("Content-Range must be bytes START-END/{size}, within the announced size"),
            );
            return drained(body, resp).await;
        }
    };
    if up.complete {
        return drained(body, progress_headers(&up, StatusCode::OK)).await;
    }
    if start != up.received {
        let mut resp = progress_headers(&up, StatusCode::CONFLICT);
        *resp.body_mut() = Body::from(
            serde_json::json!({ "errors": [{ "message": format!("the upload continues at byte {}", up.received), "extensions": { "code": "CONFLICT", "offset": up.received } }] }).to_string(),
        );
        return drained(body, resp).await;
    }
    let mut offset = up.received;
    let mut buf: Vec<u8> = Vec::with_capacity(uploads::CHUNK_BYTES);
    let mut stream = body.into_data_stream();
    let mut failed = None;
    loop {
        let next = stream.next().await;
        let done = next.is_none();
        match next {
            Some(Ok(piece)) => buf.extend_from_slice(&piece),
            // A cut connection keeps what arrived whole: the client resumes from there.
            Some(Err(e)) => failed = Some(e.to_string()),
            None => {}
        }
        let flush_now = buf.len() >= uploads::CHUNK_BYTES || done || failed.is_some();
        if flush_now && !buf.is_empty() {
            if offset + buf.len() as i64 > size {
                return coded_error(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "PAYLOAD_TOO_LARGE",
                    &format!("the file is larger than the {size} bytes announced"),
                );
            }
            match uploads::append(&files.ctx.db, &up.id, offset, &buf).await {
                Ok(end) => offset = end,
                Err(_) => {
                    return coded_error(
                        StatusCode::CONFLICT,
                        "CONFLICT",
                        "another request is writing this upload",
                    );
                }
            }
            buf.clear();
        }
        if done || failed.is_some() {
            break;
        }
    }
    if offset == size
        && let Err(e) = uploads::mark_complete(&files.ctx.db, &up.id).await
    {
        tracing::warn!(upload = %up.id, error = ?e, "marking an upload complete failed");
    }
    match uploads::get(&files.ctx.db, &up.id).await {
        Ok(Some(now)) => {
            let status = if now.complete {
                StatusCode::CREATED
            } else {
                StatusCode::OK
            };
            progress_headers(&now, status)
        }
        _ => coded_error(
            StatusCode::SERVICE_UNAVAILABLE,
            "SERVICE_UNAVAILABLE",
            "try again later",
        ),
    }
}

/// An export, streamed as it is read from the database. The link is the credential:
/// random, kept hashed, expiring.
async fn download_export(State(files): State<Files>, Path(token): Path<String>) -> Response {
    match exports::open(&files.ctx, &token).await {
        Ok(Some((grant, stream))) => {
            let mut resp = Response::new(Body::from_stream(stream));
            let h = resp.headers_mut();
            if let Ok(v) = grant.content_type.parse() {
                h.insert(header::CONTENT_TYPE, v);
            }
            if let Ok(v) = format!("attachment; filename=\"{}\"", grant.file_name).parse() {
                h.insert(header::CONTENT_DISPOSITION, v);
            }
            if let Ok(v) = "no-store".parse() {
                h.insert(header::CACHE_CONTROL, v);
            }
            resp
        }
        Ok(None) => coded_error(
            StatusCode::NOT_FOUND,
            "NOT_FOUND",
            "this export link is unknown or expired; ask for a new one",
        ),
        Err(_) => coded_error(
            StatusCode::SERVICE_UNAVAILABLE,
            "SERVICE_UNAVAILABLE",
            "try again later",
        ),
    }
}

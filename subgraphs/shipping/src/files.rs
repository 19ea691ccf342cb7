//! Shipping's file routes, served at the gateway's origin under `/files/shipping/`:
//! label PDFs (`GET /files/labels/{parcel}?expires=…&signature=…`). The signed link is
//! the credential, so a label can be opened in a browser tab or sent to a printer.
//! The simulated carrier's public tracking page (`GET /files/tracking/{number}`: the
//! scans, never the address). Also carriers' tracking webhooks (`POST /webhooks/carriers/{carrier}`), on the
//! shipping service's own address.

use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use shop_kit::server::coded_error;

use crate::service::ShippingCtx;
use crate::service::labels::{self, LinkError};
use crate::service::tracking;

pub fn router(ctx: ShippingCtx) -> Router {
    Router::new()
        .route("/files/labels/{parcel}", get(label))
        .route("/files/tracking/{number}", get(tracking_page))
        .route(
            "/webhooks/carriers/{carrier}",
            axum::routing::post(carrier_webhook),
        )
        .with_state(ctx)
}

#[derive(serde::Deserialize)]
struct Signed {
    expires: Option<i64>,
    signature: Option<String>,
}

async fn label(
    State(ctx): State<ShippingCtx>,
    Path(parcel): Path<String>,
    Query(q): Query<Signed>,
) -> Response {
    let (Some(expires), Some(signature)) = (q.expires, q.signature) else {
        return coded_error(
            StatusCode::FORBIDDEN,
            "FORBIDDEN",
            "this link is not signed",
        );
    };
    match labels::check_link(ctx.label_secret.as_slice(), &parcel, expires, &signature) {
        Ok(()) => {}
        Err(LinkError::Forged) => {
            return coded_error(StatusCode::FORBIDDEN, "FORBIDDEN", "this link is not valid");
        }
        Err(LinkError::Expired) => {
            return coded_error(
                StatusCode::GONE,
                "FORBIDDEN",
                "this link has expired; ask for the label again",
            );
        }
    }
    let label = match labels::label_of(&ctx, &parcel).await {
        Ok(Some(l)) => l,
        Ok(None) => return coded_error(StatusCode::NOT_FOUND, "NOT_FOUND", "no such label"),
        Err(e) => {
            return coded_error(
                StatusCode::SERVICE_UNAVAILABLE,
                "SERVICE_UNAVAILABLE",
                e.public_message(),
            );
        }
    };
    match labels::pdf(&label) {
        Ok(bytes) => (
            [
                (header::CONTENT_TYPE, "application/pdf".to_string()),
                (
                    header::CONTENT_DISPOSITION,
                    format!("inline; filename=\"label-{}.pdf\"", label.tracking_number),
                ),
                (header::CACHE_CONTROL, "private, no-store".to_string()),
            ],
            bytes,
        )
            .into_response(),
        Err(e) => coded_error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "INTERNAL_SERVER_ERROR",
            e.public_message(),
        ),
    }
}

/// A parcel's scans as an HTML page, for whoever has its tracking number (as a
/// carrier's public page is): status, place and time, nothing about the recipient.
async fn tracking_page(State(ctx): State<ShippingCtx>, Path(number): Path<String>) -> Response {
    use shop_kit::input::escape_html as esc;
    let found = match tracking::by_number(&ctx, &number).await {
        Ok(f) => f,
        Err(e) => {
            return coded_error(
                StatusCode::SERVICE_UNAVAILABLE,
                e.code().as_str(),
                e.public_message(),
            );
        }
    };
    let Some((parcel, carrier, events)) = found else {
        return coded_error(
            StatusCode::NOT_FOUND,
            "NOT_FOUND",
            "no parcel has this tracking number",
        );
    };
    let name = ctx
        .carriers
        .get(&carrier)
        .map_or(carrier.as_str(), |c| c.name());
    let mut rows = String::new();
    for e in events.iter().rev() {
        rows.push_str(&format!(
            "<tr><td>{}</td><td>{}</td><td>{}</td></tr>",
            esc(&e.occurred_at.format("%Y-%m-%d %H:%M UTC").to_string()),
            esc(&e.status.replace('_', " ").to_lowercase()),
            esc(&e.location)
        ));
    }
    if rows.is_empty() {
        rows.push_str("<tr><td colspan=\"3\">The carrier has not scanned it yet.</td></tr>");
    }
    let html = format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width\">\
         <title>Parcel {number}</title></head><body>\
         <h1>Parcel {number}</h1><p>{name}: <strong data-status=\"{status}\">{label}</strong></p>\
         <table><thead><tr><th>When</th><th>What</th><th>Where</th></tr></thead>\
         <tbody>{rows}</tbody></table></body></html>",
        number = esc(parcel.tracking_number.as_deref().unwrap_or_default()),
        name = esc(name),
        status = esc(&parcel.status),
        label = esc(&parcel.status.replace('_', " ").to_lowercase()),
    );
    (
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CACHE_CONTROL, "no-store"),
        ],
        html,
    )
        .into_response()
}

/// `POST /webhooks/carriers/{carrier}`: a carrier's tracking event, HMAC-signed
/// (`Shop-Signature`), refused (401) when forged or replayed outside five minutes;
/// the same event id twice changes nothing (200, `duplicate`). 404 for a tracking
/// number we never gave, 400 for a body that is not an event.
async fn carrier_webhook(
    State(ctx): State<ShippingCtx>,
    Path(carrier): Path<String>,
    headers: axum::http::HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let Some(secret) = ctx.webhook_secret.clone() else {
        return coded_error(
            StatusCode::NOT_FOUND,
            "NOT_FOUND",
            "carrier webhooks are not configured (SHOP_CARRIER_WEBHOOK_SECRET)",
        );
    };
    if body.len() > tracking::WEBHOOK_MAX_BYTES {
        return coded_error(
            StatusCode::PAYLOAD_TOO_LARGE,
            "BAD_USER_INPUT",
            "body too large",
        );
    }
    let signature = headers.get("shop-signature").and_then(|v| v.to_str().ok());
    match tracking::check_webhook(&secret, signature, &body, chrono::Utc::now().timestamp()) {
        Ok(()) => {}
        Err(tracking::WebhookRefusal::BadSignature) => {
            return coded_error(StatusCode::UNAUTHORIZED, "UNAUTHENTICATED", "bad signature");
        }
        Err(tracking::WebhookRefusal::Stale) => {
            return coded_error(
                StatusCode::UNAUTHORIZED,
                "UNAUTHENTICATED",
                "the signature's timestamp is too old or in the future",
            );
        }
    }
    if ctx.carriers.get(&carrier).is_none() {
        return coded_error(
            StatusCode::NOT_FOUND,
            "NOT_FOUND",
            &format!(
                "unknown carrier {:?}",
                shop_kit::input::shortened(&carrier, 32)
            ),
        );
    }
    let event: tracking::WebhookEvent = match serde_json::from_slice(&body) {
        Ok(e) => e,
        Err(e) => {
            return coded_error(
                StatusCode::BAD_REQUEST,
                "BAD_USER_INPUT",
                &format!("not a tracking event: {e}"),
            );
        }
    };
    let scan = match event.scan(&carrier) {
        Ok(s) => s,
        Err(e) => {
            return coded_error(
                StatusCode::BAD_REQUEST,
                "BAD_USER_INPUT",
                e.public_message(),
            );
        }
    };
    match tracking::record(&ctx, &scan).await {
        Ok(recorded) => axum::Json(serde_json::json!({
            "duplicate": recorded == tracking::Recorded::Duplicate
        }))
        .into_response(),
        Err(shop_kit::ApiError::NotFound(m)) => coded_error(StatusCode::NOT_FOUND, "NOT_FOUND", &m),
        Err(e) => coded_error(
            StatusCode::SERVICE_UNAVAILABLE,
            e.code().as_str(),
            e.public_message(),
        ),
    }
}

//! Shipping's file routes, served at the gateway's origin under `/files/shipping/`:
//! label PDFs (`GET /files/labels/{parcel}?expires=…&signature=…`). The signed link is
//! the credential, so a label can be opened in a browser tab or sent to a printer.
//! Also carriers' tracking webhooks (`POST /webhooks/carriers/{carrier}`), on the
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
    let carrier = shop_kit::input::shortened(&carrier, 32);
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

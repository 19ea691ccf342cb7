//! Shipping's file routes, served at the gateway's origin under `/files/shipping/`:
//! label PDFs (`GET /files/labels/{parcel}?expires=…&signature=…`). The signed link is
//! the credential, so a label can be opened in a browser tab or sent to a printer.

use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use crate::service::ShippingCtx;
use crate::service::labels::{self, LinkError};

pub fn router(ctx: ShippingCtx) -> Router {
    Router::new()
        .route("/files/labels/{parcel}", get(label))
        .with_state(ctx)
}

#[derive(serde::Deserialize)]
struct Signed {
    expires: Option<i64>,
    signature: Option<String>,
}

fn refuse(status: StatusCode, code: &str, message: &str) -> Response {
    let body =
        serde_json::json!({ "errors": [{ "message": message, "extensions": { "code": code } }] });
    (status, axum::Json(body)).into_response()
}

async fn label(
    State(ctx): State<ShippingCtx>,
    Path(parcel): Path<String>,
    Query(q): Query<Signed>,
) -> Response {
    let (Some(expires), Some(signature)) = (q.expires, q.signature) else {
        return refuse(
            StatusCode::FORBIDDEN,
            "FORBIDDEN",
            "this link is not signed",
        );
    };
    match labels::check_link(ctx.label_secret.as_slice(), &parcel, expires, &signature) {
        Ok(()) => {}
        Err(LinkError::Forged) => {
            return refuse(StatusCode::FORBIDDEN, "FORBIDDEN", "this link is not valid");
        }
        Err(LinkError::Expired) => {
            return refuse(
                StatusCode::GONE,
                "FORBIDDEN",
                "this link has expired; ask for the label again",
            );
        }
    }
    let label = match labels::label_of(&ctx, &parcel).await {
        Ok(Some(l)) => l,
        Ok(None) => return refuse(StatusCode::NOT_FOUND, "NOT_FOUND", "no such label"),
        Err(e) => {
            return refuse(
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
        Err(e) => refuse(
            StatusCode::INTERNAL_SERVER_ERROR,
            "INTERNAL_SERVER_ERROR",
            e.public_message(),
        ),
    }
}

//! The one place where domain errors become GraphQL errors with stable codes.
//!
//! Services return [`ApiError`]; resolvers propagate it with `?`. Client-caused errors
//! keep their message; internal failures (database, I/O) are logged in full and the
//! client only sees "internal error" with the `INTERNAL_SERVER_ERROR` code.
//!
//! `ApiError` deliberately does not implement `Display`: async-graphql converts anything
//! displayable into an error message, and we never want a database error's text to
//! reach a client through a stray `?`.

use async_graphql::ErrorExtensions;
use sea_orm::{DbErr, SqlErr};

/// Stable `extensions.code` values shared by every subgraph and the gateway.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorCode {
    BadUserInput,
    Unauthenticated,
    Forbidden,
    NotFound,
    Conflict,
    TooManyRequests,
    Unavailable,
    OutOfStock,
    PaymentDeclined,
    PriceChanged,
    CartExpired,
    /// Nothing ships these goods to that address (see [`Unshippable`]).
    NotShippable,
    /// The request is not GraphQL (async-graphql's parser refused it).
    ParseFailed,
    /// The operation does not fit the schema.
    ValidationFailed,
    Internal,
}

impl ErrorCode {
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::BadUserInput => "BAD_USER_INPUT",
            ErrorCode::Unauthenticated => "UNAUTHENTICATED",
            ErrorCode::Forbidden => "FORBIDDEN",
            ErrorCode::NotFound => "NOT_FOUND",
            ErrorCode::Conflict => "CONFLICT",
            ErrorCode::TooManyRequests => "TOO_MANY_REQUESTS",
            ErrorCode::Unavailable => "SERVICE_UNAVAILABLE",
            ErrorCode::OutOfStock => "OUT_OF_STOCK",
            ErrorCode::PaymentDeclined => "PAYMENT_DECLINED",
            ErrorCode::PriceChanged => "PRICE_CHANGED",
            ErrorCode::CartExpired => "CART_EXPIRED",
            ErrorCode::NotShippable => "NOT_SHIPPABLE",
            ErrorCode::ParseFailed => "GRAPHQL_PARSE_FAILED",
            ErrorCode::ValidationFailed => "GRAPHQL_VALIDATION_FAILED",
            ErrorCode::Internal => "INTERNAL_SERVER_ERROR",
        }
    }
}

/// An error a service returns. See the module docs for how each variant reaches clients.
#[derive(Debug)]
pub enum ApiError {
    /// The input is invalid; the message says which field and why.
    BadUserInput(String),
    /// No valid credentials were presented for an operation that needs them.
    Unauthenticated(String),
    /// The caller is known but may not do this.
    Forbidden(String),
    /// The addressed record does not exist (or is not visible to the caller).
    NotFound(String),
    /// The write conflicts with stored state (duplicate key, non-empty container, ...).
    Conflict(String),
    /// An abuse limit was reached (login or reset attempts); retry later.
    TooManyRequests(String),
    /// Something we depend on outside our own stores (an identity provider) cannot be
    /// reached or answered badly; retry later. The message names it, not the details.
    Unavailable(String),
    /// Not enough units for these lines; `extensions.lines` lists each shortfall.
    OutOfStock(Vec<StockShortfall>),
    /// The card was refused; `decline_code` is stable (`card_declined`,
    /// `insufficient_funds`, `expired_card`, `processing_error`), the message is for
    /// the shopper. Both travel in `extensions` (`declineCode`, `reason`).
    PaymentDeclined {
        decline_code: String,
        reason: String,
    },
    /// Prices moved since the lines were added; `extensions.lines` lists them. The cart
    /// now shows the new prices.
    PriceChanged(Vec<PriceChange>),
    /// The cart is gone or already checked out.
    CartExpired(String),
    /// No shipping method takes these goods to that country; `extensions` name the
    /// country and, where known, the supplier and the parcel's weight.
    NotShippable(Unshippable),
    /// A database failure; logged, never shown.
    Database(DbErr),
    /// Any other internal failure; logged, never shown.
    Internal(String),
}

pub type ApiResult<T> = Result<T, ApiError>;

/// A line whose unit price moved from `was` to `now` (minor units).
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PriceChange {
    pub product_id: String,
    pub was: i64,
    pub now: i64,
}

/// Why a supplier's part of an order cannot be shipped.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Unshippable {
    pub message: String,
    /// ISO 3166-1 alpha-2.
    pub country: String,
    pub supplier_id: Option<String>,
    /// Set when the parcel is heavier than any rate band.
    pub weight_grams: Option<i64>,
}

/// One line that cannot be had: how many were asked for and how many are available.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StockShortfall {
    pub product_id: String,
    pub requested: i64,
    pub available: i64,
}

impl ApiError {
    pub fn bad_input(msg: impl Into<String>) -> Self {
        ApiError::BadUserInput(msg.into())
    }
    pub fn not_found(msg: impl Into<String>) -> Self {
        ApiError::NotFound(msg.into())
    }
    pub fn conflict(msg: impl Into<String>) -> Self {
        ApiError::Conflict(msg.into())
    }
    pub fn forbidden(msg: impl Into<String>) -> Self {
        ApiError::Forbidden(msg.into())
    }
    pub fn unauthenticated(msg: impl Into<String>) -> Self {
        ApiError::Unauthenticated(msg.into())
    }

    pub fn code(&self) -> ErrorCode {
        match self {
            ApiError::BadUserInput(_) => ErrorCode::BadUserInput,
            ApiError::Unauthenticated(_) => ErrorCode::Unauthenticated,
            ApiError::Forbidden(_) => ErrorCode::Forbidden,
            ApiError::NotFound(_) => ErrorCode::NotFound,
            ApiError::Conflict(_) => ErrorCode::Conflict,
            ApiError::TooManyRequests(_) => ErrorCode::TooManyRequests,
            ApiError::Unavailable(_) => ErrorCode::Unavailable,
            ApiError::OutOfStock(_) => ErrorCode::OutOfStock,
            ApiError::PaymentDeclined { .. } => ErrorCode::PaymentDeclined,
            ApiError::PriceChanged(_) => ErrorCode::PriceChanged,
            ApiError::CartExpired(_) => ErrorCode::CartExpired,
            ApiError::NotShippable(_) => ErrorCode::NotShippable,
            // Lost to other transactions even after retries: nothing was written, and
            // the same request a moment later will most likely pass.
            ApiError::Database(e) if crate::db::is_transient(e) => ErrorCode::Unavailable,
            ApiError::Database(_) | ApiError::Internal(_) => ErrorCode::Internal,
        }
    }

    /// The message a client may see.
    pub fn public_message(&self) -> &str {
        match self {
            ApiError::BadUserInput(m)
            | ApiError::Unauthenticated(m)
            | ApiError::Forbidden(m)
            | ApiError::NotFound(m)
            | ApiError::Conflict(m)
            | ApiError::TooManyRequests(m)
            | ApiError::Unavailable(m)
            | ApiError::CartExpired(m) => m,
            ApiError::NotShippable(u) => &u.message,
            ApiError::OutOfStock(_) => "not enough stock for some lines",
            ApiError::PaymentDeclined { reason, .. } => reason,
            ApiError::PriceChanged(_) => {
                "prices changed since these items were added; check the cart"
            }
            ApiError::Database(e) if crate::db::is_transient(e) => {
                "the service is busy; nothing was changed, please try again in a moment"
            }
            ApiError::Database(_) | ApiError::Internal(_) => "internal error",
        }
    }
}

impl From<DbErr> for ApiError {
    fn from(err: DbErr) -> Self {
        if let DbErr::ConnectionAcquire(sea_orm::error::ConnAcquireErr::Timeout) = err {
            // Every connection stayed busy for the whole wait: the caller may retry, and
            // nothing was written.
            tracing::warn!("database connection pool exhausted");
            return ApiError::Unavailable(
                "the service is busy; nothing was changed, please try again in a moment".into(),
            );
        }
        match err.sql_err() {
            Some(SqlErr::UniqueConstraintViolation(_)) => {
                ApiError::Conflict("a record with the same unique value already exists".into())
            }
            _ => ApiError::Database(err),
        }
    }
}

impl From<sea_orm::TransactionError<ApiError>> for ApiError {
    fn from(err: sea_orm::TransactionError<ApiError>) -> Self {
        match err {
            sea_orm::TransactionError::Connection(db) => db.into(),
            sea_orm::TransactionError::Transaction(api) => api,
        }
    }
}

impl ErrorExtensions for ApiError {
    fn extend(&self) -> async_graphql::Error {
        match self {
            ApiError::Database(e) => tracing::error!(error = %e, "database error"),
            ApiError::Internal(e) => tracing::error!(error = %e, "internal error"),
            _ => {}
        }
        let code = self.code().as_str();
        let lines = match self {
            ApiError::OutOfStock(lines) => async_graphql::to_value(lines).ok(),
            ApiError::PriceChanged(lines) => async_graphql::to_value(lines).ok(),
            _ => None,
        };
        let decline = match self {
            ApiError::PaymentDeclined {
                decline_code,
                reason,
            } => Some((decline_code.clone(), reason.clone())),
            _ => None,
        };
        let unshippable = match self {
            ApiError::NotShippable(u) => Some(u.clone()),
            _ => None,
        };
        async_graphql::Error::new(self.public_message()).extend_with(|_, ext| {
            ext.set("code", code);
            if let Some(u) = unshippable {
                ext.set("country", u.country);
                if let Some(s) = u.supplier_id {
                    ext.set("supplierId", s);
                }
                if let Some(w) = u.weight_grams {
                    ext.set("weightGrams", w);
                }
            }
            if let Some(lines) = lines {
                ext.set("lines", lines);
            }
            if let Some((decline_code, reason)) = decline {
                ext.set("declineCode", decline_code);
                ext.set("reason", reason);
            }
        })
    }
}

impl From<ApiError> for async_graphql::Error {
    fn from(err: ApiError) -> Self {
        err.extend()
    }
}

/// Gives async-graphql's own errors a code, so that no error leaves a subgraph without
/// one: parse errors, validation errors, and input values a resolver's argument could
/// not be read from (a malformed `DateTime`, an explicit null for a defaulted argument)
/// as `BAD_USER_INPUT`. Errors of ours already carry theirs. Every subgraph schema
/// registers it (`.extension(ErrorCodes)`).
pub struct ErrorCodes;

impl async_graphql::extensions::ExtensionFactory for ErrorCodes {
    fn create(&self) -> std::sync::Arc<dyn async_graphql::extensions::Extension> {
        std::sync::Arc::new(ErrorCodes)
    }
}

/// How async-graphql words a value it could not read as the argument's type.
fn is_input_error(message: &str) -> bool {
    [
        "Failed to parse \"",
        "Expected input type \"",
        "Invalid value for argument",
        "Variable \"",
    ]
    .iter()
    .any(|p| message.starts_with(p))
}

fn with_code(
    mut error: async_graphql::ServerError,
    fallback: ErrorCode,
) -> async_graphql::ServerError {
    let has_code = error
        .extensions
        .as_ref()
        .is_some_and(|e| e.get("code").is_some());
    if !has_code {
        let code = if is_input_error(&error.message) {
            ErrorCode::BadUserInput
        } else {
            fallback
        };
        error
            .extensions
            .get_or_insert_with(Default::default)
            .set("code", code.as_str());
    }
    error
}

fn response_with_codes(mut response: async_graphql::Response) -> async_graphql::Response {
    response.errors = std::mem::take(&mut response.errors)
        .into_iter()
        .map(|e| with_code(e, ErrorCode::Internal))
        .collect();
    response
}

#[async_trait::async_trait]
impl async_graphql::extensions::Extension for ErrorCodes {
    async fn parse_query(
        &self,
        ctx: &async_graphql::extensions::ExtensionContext<'_>,
        query: &str,
        variables: &async_graphql::Variables,
        next: async_graphql::extensions::NextParseQuery<'_>,
    ) -> async_graphql::ServerResult<async_graphql::parser::types::ExecutableDocument> {
        next.run(ctx, query, variables)
            .await
            .map_err(|e| with_code(e, ErrorCode::ParseFailed))
    }

    async fn validation(
        &self,
        ctx: &async_graphql::extensions::ExtensionContext<'_>,
        next: async_graphql::extensions::NextValidation<'_>,
    ) -> Result<async_graphql::ValidationResult, Vec<async_graphql::ServerError>> {
        next.run(ctx).await.map_err(|errors| {
            errors
                .into_iter()
                .map(|e| with_code(e, ErrorCode::ValidationFailed))
                .collect()
        })
    }

    async fn execute(
        &self,
        ctx: &async_graphql::extensions::ExtensionContext<'_>,
        operation_name: Option<&str>,
        next: async_graphql::extensions::NextExecute<'_>,
    ) -> async_graphql::Response {
        response_with_codes(next.run(ctx, operation_name).await)
    }

    fn subscribe<'s>(
        &self,
        ctx: &async_graphql::extensions::ExtensionContext<'_>,
        stream: futures::stream::BoxStream<'s, async_graphql::Response>,
        next: async_graphql::extensions::NextSubscribe<'_>,
    ) -> futures::stream::BoxStream<'s, async_graphql::Response> {
        use futures::StreamExt;
        next.run(ctx, stream).map(response_with_codes).boxed()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn database_errors_never_reach_the_client() {
        let err: async_graphql::Error =
            ApiError::Database(DbErr::Custom("secret table name".into())).into();
        assert_eq!(err.message, "internal error");
        let ext = err.extensions.expect("extensions");
        assert_eq!(
            ext.get("code"),
            Some(&async_graphql::Value::from("INTERNAL_SERVER_ERROR"))
        );
    }

    #[test]
    fn out_of_stock_lists_each_shortfall() {
        let err: async_graphql::Error = ApiError::OutOfStock(vec![StockShortfall {
            product_id: "p1".into(),
            requested: 3,
            available: 1,
        }])
        .into();
        let ext = err.extensions.expect("extensions");
        assert_eq!(
            ext.get("code"),
            Some(&async_graphql::Value::from("OUT_OF_STOCK"))
        );
        assert_eq!(
            ext.get("lines")
                .map(|v| v.clone().into_json().expect("json")),
            Some(serde_json::json!([{ "productId": "p1", "requested": 3, "available": 1 }]))
        );
    }

    #[test]
    fn an_exhausted_pool_is_service_unavailable() {
        let err = ApiError::from(DbErr::ConnectionAcquire(
            sea_orm::error::ConnAcquireErr::Timeout,
        ));
        assert_eq!(err.code(), ErrorCode::Unavailable);
    }

    #[test]
    fn client_errors_keep_their_message_and_code() {
        let err: async_graphql::Error = ApiError::conflict("sku taken").into();
        assert_eq!(err.message, "sku taken");
        assert_eq!(
            err.extensions.expect("extensions").get("code"),
            Some(&async_graphql::Value::from("CONFLICT"))
        );
    }
}

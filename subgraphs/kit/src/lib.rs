//! Plumbing every subgraph shares: configuration helpers, database connection, auth
//! context, error codes, pagination, money, the event bus and outbox, and serving.
//!
//! A subgraph crate should only hold its own domain: if two subgraphs need the same
//! helper, it belongs here.

pub mod auth;
pub mod config;
pub mod db;
pub mod error;
pub mod events;
pub mod fault;
pub mod ids;
pub mod input;
pub mod internal;
pub mod limits;
pub mod metrics;
pub mod money;
pub mod pagination;
pub mod secrets;
pub mod server;
pub mod telemetry;
pub mod testing;

pub use error::{ApiError, ApiResult, ErrorCode, PriceChange, StockShortfall, Unshippable};

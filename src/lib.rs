//! The `shop` binary's program: one binary, several roles.
//!
//! - `shop` (no role): everything in one process on the embedded defaults;
//! - `shop gateway`, `shop subgraph <name>`: one role per process (scaled out);
//! - `shop compose`, `shop migrate`, `shop seed`, `shop explain`, `shop token`, `shop bench`.
//!
//! [`platform::Platform`] starts the subgraphs and the gateway the same way for the
//! binary and for the end-to-end tests.

/// Every binary of the platform (and the benchmarks) allocates through mimalloc; see
/// the dependency's note in `Cargo.toml`.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

pub mod bench;
pub mod benchgraph;
pub mod cli;
pub mod config;
pub mod pages;
pub mod platform;
pub mod seed;
pub mod subgraphs;

//! The catalog subgraph's GraphQL surface: thin resolvers over `crate::service`.

mod facets;
mod imports;
mod inputs;
mod mutation;
mod query;
mod types;

pub use imports::*;
pub use inputs::*;
pub use mutation::MutationRoot;
pub use query::QueryRoot;
pub use types::*;

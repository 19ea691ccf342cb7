//! The catalog subgraph's GraphQL surface: thin resolvers over `crate::service`.

mod inputs;
mod mutation;
mod query;
mod types;

pub use inputs::*;
pub use mutation::MutationRoot;
pub use query::QueryRoot;
pub use types::*;

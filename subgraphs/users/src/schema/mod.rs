//! The users subgraph's GraphQL schema: thin resolvers over `service`.

pub mod inputs;
pub mod mutation;
pub mod query;
pub mod types;

pub use mutation::MutationRoot;
pub use query::QueryRoot;

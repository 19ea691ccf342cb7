//! Federation without I/O: compose subgraph SDL into a supergraph, load a supergraph
//! into a typed model with its API schema, normalize client operations and plan them
//! into plain-data query plans.
//!
//! Nothing here touches the network, a runtime or a clock, so everything is testable
//! with strings in and values out; the gateway crate executes the plans.

pub mod api_schema;
pub mod authz;
pub mod batch;
pub mod compose;
pub mod field_set;
pub mod operation;
pub mod plan;
pub mod planner;
pub mod query_graph;
pub mod supergraph;

pub use compose::{ComposeError, SubgraphSource, compose};
pub use operation::{Operation, OperationError, normalize};
pub use plan::{FetchNode, PathSegment, PlanNode, QueryPlan};
pub use planner::{PlanError, plan, plan_with_labels};
pub use query_graph::QueryGraph;
pub use supergraph::{Labels, Supergraph, SupergraphError};

//! Query plans: plain data the executor runs, tests snapshot and `shop explain` prints.

use std::fmt::{self, Write};

use serde::Serialize;

use crate::field_set::{self, FieldSetItem};

/// One step of a merge path: a field's response key, or `@` for "each list element".
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize)]
pub enum PathSegment {
    Field(String),
    List,
}

/// A request to one subgraph.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct FetchNode {
    /// The subgraph's name.
    pub service: String,
    /// The GraphQL document sent to the subgraph.
    pub operation: String,
    /// The client variables the operation uses (forwarded by name).
    pub variables: Vec<String>,
    /// For entity fetches: the entity type and the fields each representation carries
    /// (besides `__typename`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub entity: Option<EntityFetch>,
    /// More entity types fetched in the same request (members of a union or interface
    /// found at the same path and resolved by the same subgraph); each representation
    /// is built by the first of `entity` and these that accepts its runtime type.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub more_entities: Vec<EntityFetch>,
    /// Keys of the subgraph's answer to rename before merging it (for an entity fetch,
    /// inside each entity): fields the operation had to alias for the subgraph.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub renames: Vec<Rename>,
    /// For an entity fetch, the parts of `operation` a batch is built from (see
    /// [`BatchNode`]): the selection set under `_entities` (braces included) and the
    /// variable definitions besides `$representations`.
    #[serde(skip)]
    pub entities_selection: String,
    #[serde(skip)]
    pub variable_definitions: Vec<String>,
}

/// A field the subgraph operation selects under `from` (one response name cannot have
/// two types in one selection set) and the client knows as `to`. `from` is unique to
/// that field and type, so every object holding it is renamed, whatever its type.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Rename {
    /// The response keys from the answer's root (or an entity) to the objects holding
    /// the field, through lists.
    pub path: Vec<String>,
    pub from: String,
    pub to: String,
}

impl FetchNode {
    /// The entity fetch that takes objects of runtime type `typename`, if any.
    pub fn entity_for(&self, typename: &str) -> Option<&EntityFetch> {
        self.entity
            .iter()
            .chain(&self.more_entities)
            .find(|e| e.accepts(typename))
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct EntityFetch {
    pub type_name: String,
    pub key: Vec<FieldSetItem>,
    /// `@requires` inputs carried besides the key (may be null, unlike key fields).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub requires: Vec<Required>,
    /// Set when `type_name` is an `@interfaceObject` in the target subgraph: objects of
    /// these runtime types are sent as `type_name` (the target knows no concrete type),
    /// and the `__typename` it answers is not merged back over the concrete one.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub interface_object_of: Vec<String>,
    /// `@fromContext` values: each a variable of the operation, filled per
    /// representation from its nearest ancestor carrying the context. Representations
    /// with different values go in separate requests.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub contexts: Vec<ContextValue>,
}

/// A `@requires` input as the representation carries it, read from the object's data.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub enum Required {
    Field {
        /// The field's name: the representation's key.
        name: String,
        /// Where the data holds it when that is not `name`: a field with arguments is
        /// fetched under an alias, so it cannot clash with the client's own selection
        /// of the same field with other arguments.
        #[serde(skip_serializing_if = "Option::is_none")]
        alias: Option<String>,
        /// As written in the field set (shown by `shop explain`).
        #[serde(skip_serializing_if = "Vec::is_empty")]
        arguments: Vec<String>,
        #[serde(skip_serializing_if = "Vec::is_empty")]
        selections: Vec<Required>,
    },
    /// Selections that apply only to objects whose `__typename` is one of `types`.
    Fragment {
        on: String,
        types: Vec<String>,
        selections: Vec<Required>,
    },
}

impl Required {
    /// The plain form of a names-and-braces field set.
    pub fn from_items(items: &[FieldSetItem]) -> Vec<Required> {
        items
            .iter()
            .map(|i| Required::Field {
                name: i.name.clone(),
                alias: None,
                arguments: Vec::new(),
                selections: Required::from_items(&i.selections),
            })
            .collect()
    }
}

/// Prints required inputs as a selection set's inner text.
pub fn print_required(items: &[Required]) -> String {
    let mut parts = Vec::new();
    for item in items {
        let mut s = String::new();
        match item {
            Required::Field {
                name,
                alias,
                arguments,
                selections,
            } => {
                if let Some(a) = alias {
                    let _ = write!(s, "{a}: ");
                }
                s.push_str(name);
                if !arguments.is_empty() {
                    let _ = write!(s, "({})", arguments.join(", "));
                }
                if !selections.is_empty() {
                    let _ = write!(s, " {{ {} }}", print_required(selections));
                }
            }
            Required::Fragment { on, selections, .. } => {
                let _ = write!(s, "... on {on} {{ {} }}", print_required(selections));
            }
        }
        parts.push(s);
    }
    parts.join(" ")
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ContextValue {
    /// The operation variable (without `$`).
    pub variable: String,
    /// Its GraphQL type, as declared in the operation.
    pub ty: String,
    /// The types whose objects carry the context.
    pub types: Vec<String>,
    /// The field chain read from that object (`["prop"]`, `["a", "b"]`).
    pub path: Vec<String>,
}

impl EntityFetch {
    /// Whether an object of runtime type `typename` at the path is sent to this fetch.
    pub fn accepts(&self, typename: &str) -> bool {
        if self.interface_object_of.is_empty() {
            typename == self.type_name
        } else {
            self.interface_object_of.iter().any(|t| t == typename)
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "kind")]
pub enum PlanNode {
    Fetch(FetchNode),
    /// Runs the entity fetch once over every object found at `path`.
    Flatten {
        path: Vec<PathSegment>,
        node: Box<PlanNode>,
    },
    Sequence {
        nodes: Vec<PlanNode>,
    },
    Parallel {
        nodes: Vec<PlanNode>,
    },
    /// Runs `node` only when the boolean `$variable` is `true` (`skip: false`, from
    /// `@include`) or is not (`skip: true`, from `@skip`): every selection the fetch
    /// below would send carries that condition, so a request for nothing is not made.
    Condition {
        variable: String,
        skip: bool,
        node: Box<PlanNode>,
    },
    /// A subscription: `primary` streams from the subgraph owning the root field; `rest`
    /// runs once per event over that event's data, like a query plan below its root.
    Subscription {
        primary: FetchNode,
        #[serde(skip_serializing_if = "Option::is_none")]
        rest: Option<Box<PlanNode>>,
    },
    /// Entity fetches of one subgraph that run at the same time, sent as one request.
    Batch(BatchNode),
}

/// Entity fetches of one subgraph sent as one request (made by [`crate::batch`]): each
/// part is an `_entities` field of `operation`, aliased `_0`, `_1`, … and given its
/// representations in its own variable, which the objects at the part's paths fill.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct BatchNode {
    pub service: String,
    pub operation: String,
    /// The client variables the operation uses (forwarded by name).
    pub variables: Vec<String>,
    pub parts: Vec<BatchPart>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct BatchPart {
    /// The part's `_entities` field's alias in the operation.
    pub alias: String,
    /// The variable (without `$`) holding the part's representations.
    pub variable: String,
    /// Where its objects are; the same entity at several paths is sent once.
    pub paths: Vec<Vec<PathSegment>>,
    /// The entity fetch this part stands for (its `operation` is not sent).
    pub fetch: FetchNode,
}

/// Whether a [`PlanNode::Condition`]'s node runs with these variables: `$variable`
/// is `true` for an include, not `true` for a skip (absent or not a boolean counts as
/// `false`, as the response reads it).
pub fn condition_holds(
    variable: &str,
    skip: bool,
    variables: &serde_json::Map<String, serde_json::Value>,
) -> bool {
    let value = variables
        .get(variable)
        .and_then(serde_json::Value::as_bool)
        .unwrap_or(false);
    value != skip
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct QueryPlan {
    /// `None` when nothing needs a subgraph (e.g. only `__typename` or introspection).
    pub node: Option<PlanNode>,
}

impl QueryPlan {
    /// How many subgraph requests the plan makes (at most; empty entity fetches are skipped).
    pub fn fetch_count(&self) -> usize {
        self.node.as_ref().map_or(0, PlanNode::fetch_count)
    }

    /// The plan as it runs with these variables: each condition resolved, its node kept
    /// or left out (a `@skip`/`@include` variable that is absent or not a boolean counts
    /// as `false`, as the response does).
    pub fn for_variables(
        &self,
        variables: &serde_json::Map<String, serde_json::Value>,
    ) -> QueryPlan {
        fn resolve(
            n: &PlanNode,
            vars: &serde_json::Map<String, serde_json::Value>,
        ) -> Option<PlanNode> {
            Some(match n {
                PlanNode::Condition {
                    variable,
                    skip,
                    node,
                } => {
                    if !condition_holds(variable, *skip, vars) {
                        return None;
                    }
                    return resolve(node, vars);
                }
                PlanNode::Fetch(f) => PlanNode::Fetch(f.clone()),
                PlanNode::Batch(b) => PlanNode::Batch(b.clone()),
                PlanNode::Flatten { path, node } => PlanNode::Flatten {
                    path: path.clone(),
                    node: Box::new(resolve(node, vars)?),
                },
                PlanNode::Sequence { nodes } => PlanNode::Sequence {
                    nodes: nodes.iter().filter_map(|n| resolve(n, vars)).collect(),
                },
                PlanNode::Parallel { nodes } => PlanNode::Parallel {
                    nodes: nodes.iter().filter_map(|n| resolve(n, vars)).collect(),
                },
                PlanNode::Subscription { primary, rest } => PlanNode::Subscription {
                    primary: primary.clone(),
                    rest: rest.as_deref().and_then(|r| resolve(r, vars)).map(Box::new),
                },
            })
        }
        QueryPlan {
            node: self.node.as_ref().and_then(|n| resolve(n, variables)),
        }
    }

    /// How many subgraph requests run one after another on the plan's longest chain
    /// (each waiting for the one before): the latency a plan costs in round trips.
    pub fn depth(&self) -> usize {
        self.node.as_ref().map_or(0, PlanNode::depth)
    }
}

impl PlanNode {
    /// See [`QueryPlan::fetch_count`].
    pub fn fetch_count(&self) -> usize {
        match self {
            PlanNode::Fetch(_) | PlanNode::Batch(_) => 1,
            PlanNode::Flatten { node, .. } | PlanNode::Condition { node, .. } => node.fetch_count(),
            PlanNode::Sequence { nodes } | PlanNode::Parallel { nodes } => {
                nodes.iter().map(PlanNode::fetch_count).sum()
            }
            PlanNode::Subscription { rest, .. } => {
                1 + rest.as_deref().map_or(0, PlanNode::fetch_count)
            }
        }
    }

    /// See [`QueryPlan::depth`].
    pub fn depth(&self) -> usize {
        match self {
            PlanNode::Fetch(_) | PlanNode::Batch(_) => 1,
            PlanNode::Flatten { node, .. } | PlanNode::Condition { node, .. } => node.depth(),
            PlanNode::Sequence { nodes } => nodes.iter().map(PlanNode::depth).sum(),
            PlanNode::Parallel { nodes } => nodes.iter().map(PlanNode::depth).max().unwrap_or(0),
            PlanNode::Subscription { rest, .. } => 1 + rest.as_deref().map_or(0, PlanNode::depth),
        }
    }
}

pub fn path_text(path: &[PathSegment]) -> String {
    path.iter()
        .map(|s| match s {
            PathSegment::Field(f) => f.as_str(),
            PathSegment::List => "@",
        })
        .collect::<Vec<_>>()
        .join(".")
}

fn indent(out: &mut String, level: usize) {
    for _ in 0..level {
        out.push_str("  ");
    }
}

fn write_fetch(out: &mut String, f: &FetchNode, level: usize) {
    let _ = writeln!(out, "Fetch(service: \"{}\") {{", f.service);
    write_entities(out, f, level);
    indent(out, level + 1);
    out.push_str(&f.operation);
    out.push('\n');
    indent(out, level);
    out.push_str("},\n");
}

fn write_batch(out: &mut String, b: &BatchNode, level: usize) {
    let _ = writeln!(out, "Batch(service: \"{}\") {{", b.service);
    for part in &b.parts {
        indent(out, level + 1);
        let paths: Vec<String> = part
            .paths
            .iter()
            .map(|p| format!("\"{}\"", path_text(p)))
            .collect();
        let _ = writeln!(out, "{} at {} {{", part.alias, paths.join(", "));
        write_entities(out, &part.fetch, level + 1);
        indent(out, level + 1);
        out.push_str("},\n");
    }
    indent(out, level + 1);
    out.push_str(&b.operation);
    out.push('\n');
    indent(out, level);
    out.push_str("},\n");
}

/// An entity fetch's representations, contexts and renames, one line each.
fn write_entities(out: &mut String, f: &FetchNode, level: usize) {
    if let Some(e) = &f.entity {
        indent(out, level + 1);
        let shapes: Vec<String> = std::iter::once(e)
            .chain(&f.more_entities)
            .map(|e| {
                let mut shape = field_set::print(&e.key);
                if !e.requires.is_empty() {
                    shape.push(' ');
                    shape.push_str(&print_required(&e.requires));
                }
                format!("... on {} {{ __typename {shape} }}", e.type_name)
            })
            .collect();
        let _ = writeln!(out, "{{ {} }} =>", shapes.join(" "));
        for c in &e.contexts {
            indent(out, level + 1);
            let _ = writeln!(
                out,
                "# ${} from the nearest {} ({})",
                c.variable,
                c.types.join(" | "),
                c.path.join(".")
            );
        }
        if !e.interface_object_of.is_empty() {
            indent(out, level + 1);
            let _ = writeln!(
                out,
                "# as @interfaceObject, for {}",
                e.interface_object_of.join(", ")
            );
        }
    }
    for r in &f.renames {
        indent(out, level + 1);
        let _ = writeln!(
            out,
            "# renames {}{} to {}",
            r.path.iter().map(|p| format!("{p}.")).collect::<String>(),
            r.from,
            r.to
        );
    }
}

fn write_node(out: &mut String, node: &PlanNode, level: usize) {
    indent(out, level);
    match node {
        PlanNode::Subscription { primary, rest } => {
            out.push_str("Subscription {\n");
            indent(out, level + 1);
            out.push_str("Primary: ");
            write_fetch(out, primary, level + 1);
            if let Some(rest) = rest {
                indent(out, level + 1);
                out.push_str("Rest: {\n");
                write_node(out, rest, level + 2);
                indent(out, level + 1);
                out.push_str("},\n");
            }
            indent(out, level);
            out.push_str("},\n");
        }
        PlanNode::Fetch(f) => write_fetch(out, f, level),
        PlanNode::Batch(b) => write_batch(out, b, level),
        PlanNode::Condition {
            variable,
            skip,
            node,
        } => {
            let kind = if *skip { "Skip" } else { "Include" };
            let _ = writeln!(out, "{kind}(if: ${variable}) {{");
            write_node(out, node, level + 1);
            indent(out, level);
            out.push_str("},\n");
        }
        PlanNode::Flatten { path, node } => {
            let _ = writeln!(out, "Flatten(path: \"{}\") {{", path_text(path));
            write_node(out, node, level + 1);
            indent(out, level);
            out.push_str("},\n");
        }
        PlanNode::Sequence { nodes } | PlanNode::Parallel { nodes } => {
            out.push_str(if matches!(node, PlanNode::Sequence { .. }) {
                "Sequence {\n"
            } else {
                "Parallel {\n"
            });
            for n in nodes {
                write_node(out, n, level + 1);
            }
            indent(out, level);
            out.push_str("},\n");
        }
    }
}

impl fmt::Display for QueryPlan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut out = String::from("QueryPlan {\n");
        if let Some(node) = &self.node {
            write_node(&mut out, node, 1);
        }
        out.push('}');
        f.write_str(&out)
    }
}

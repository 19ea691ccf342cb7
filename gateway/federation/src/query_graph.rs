//! The query graph: what a planner may do with a supergraph, as a graph.
//!
//! A node is a composite type as one subgraph has it: `(Product, inventory)`. Edges:
//!
//! - `Field`: a field that subgraph resolves, to the node of the field's type in the
//!   same subgraph (a leaf field ends there). It notes a `@requires` (the field needs
//!   inputs first) and a `@provides` (below it the subgraph answers more).
//! - `Key`: an entity jump to the same type in another subgraph, by a key that
//!   subgraph resolves and this one can supply.
//! - `Downcast`: from an abstract type to each possible type this subgraph knows
//!   (`@join__implements`, `@join__unionMember`).
//! - `InterfaceObject`: from an implementation to its interface in a subgraph that
//!   has the interface as an `@interfaceObject`, by the interface's key.
//!
//! The planner asks it which subgraphs a selection can move between and how; the
//! graph depends on the progressive-override labels switched on (a field moves between
//! subgraphs with its label), so the planner builds one per label set (the supergraph
//! keeps the one without labels).

use std::collections::{HashMap, VecDeque};
use std::fmt::Write;

use apollo_compiler::schema::ExtendedType;

use crate::supergraph::{Labels, Supergraph};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Node {
    pub type_name: String,
    pub graph: usize,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EdgeKind {
    Field {
        name: String,
        requires: bool,
        provides: bool,
    },
    Key {
        key: String,
    },
    Downcast,
    InterfaceObject {
        key: String,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Edge {
    pub from: usize,
    /// `None` for a leaf field.
    pub to: Option<usize>,
    pub kind: EdgeKind,
}

#[derive(Debug, Default)]
pub struct QueryGraph {
    pub nodes: Vec<Node>,
    pub edges: Vec<Edge>,
    index: HashMap<(String, usize), usize>,
    /// How many subgraphs the supergraph has.
    graphs: usize,
    /// Edge indexes by source node.
    out: Vec<Vec<usize>>,
}

impl QueryGraph {
    pub fn build(sg: &Supergraph, labels: &Labels) -> QueryGraph {
        let mut g = QueryGraph {
            graphs: sg.graphs.len(),
            ..QueryGraph::default()
        };
        // Types in schema order, subgraphs in supergraph order: the graph (and what
        // `describe` prints) is the same on every load.
        let composite: Vec<&str> = sg
            .schema
            .types
            .iter()
            .filter(|(_, t)| {
                matches!(
                    t,
                    ExtendedType::Object(_) | ExtendedType::Interface(_) | ExtendedType::Union(_)
                )
            })
            .map(|(n, _)| n.as_str())
            .filter(|n| sg.types.contains_key(*n))
            .collect();
        for name in &composite {
            for graph in 0..sg.graphs.len() {
                if sg.defines(name, graph) {
                    g.add_node(name, graph);
                }
            }
        }
        for from in 0..g.nodes.len() {
            let Node { type_name, graph } = g.nodes[from].clone();
            g.add_fields(sg, labels, from, &type_name, graph);
            if sg.is_abstract(&type_name) {
                for t in sg.possible_types_in(&type_name, graph) {
                    if let Some(to) = g.node(&t, graph) {
                        g.add_edge(from, Some(to), EdgeKind::Downcast);
                    }
                }
            }
            for other in (0..sg.graphs.len()).filter(|o| *o != graph) {
                if let Some(key) = sg
                    .resolvable_keys(&type_name, other)
                    .into_iter()
                    .find(|k| sg.can_provide(&type_name, &k.fields, graph, labels))
                {
                    let to = g.node(&type_name, other);
                    g.add_edge(
                        from,
                        to,
                        EdgeKind::Key {
                            key: key.text.clone(),
                        },
                    );
                }
                if sg.is_abstract(&type_name) {
                    continue;
                }
                for iface in sg.interfaces_of(&type_name) {
                    if !sg.is_interface_object_in(&iface, other) {
                        continue;
                    }
                    if let Some(key) = sg
                        .resolvable_keys(&iface, other)
                        .into_iter()
                        .find(|k| sg.can_provide(&type_name, &k.fields, graph, labels))
                    {
                        let to = g.node(&iface, other);
                        g.add_edge(
                            from,
                            to,
                            EdgeKind::InterfaceObject {
                                key: key.text.clone(),
                            },
                        );
                    }
                }
            }
        }
        g
    }

    fn add_node(&mut self, type_name: &str, graph: usize) {
        self.index
            .insert((type_name.to_string(), graph), self.nodes.len());
        self.nodes.push(Node {
            type_name: type_name.to_string(),
            graph,
        });
        self.out.push(Vec::new());
    }

    fn add_edge(&mut self, from: usize, to: Option<usize>, kind: EdgeKind) {
        self.out[from].push(self.edges.len());
        self.edges.push(Edge { from, to, kind });
    }

    fn add_fields(
        &mut self,
        sg: &Supergraph,
        labels: &Labels,
        from: usize,
        type_name: &str,
        graph: usize,
    ) {
        let fields: Vec<(String, String)> = match sg.schema.types.get(type_name) {
            Some(ExtendedType::Object(o)) => o
                .fields
                .iter()
                .map(|(n, f)| (n.to_string(), f.ty.inner_named_type().to_string()))
                .collect(),
            Some(ExtendedType::Interface(i)) => i
                .fields
                .iter()
                .map(|(n, f)| (n.to_string(), f.ty.inner_named_type().to_string()))
                .collect(),
            _ => return,
        };
        for (name, returns) in fields {
            if !sg.can_resolve(type_name, &name, graph, labels) {
                continue;
            }
            let to = self.node(&returns, graph);
            let kind = EdgeKind::Field {
                requires: !sg.requires(type_name, &name, graph).is_empty(),
                provides: !sg.provides(type_name, &name, graph).is_empty(),
                name,
            };
            self.add_edge(from, to, kind);
        }
    }

    pub fn node(&self, type_name: &str, graph: usize) -> Option<usize> {
        self.index.get(&(type_name.to_string(), graph)).copied()
    }

    /// The edges leaving `(type_name, graph)`.
    pub fn edges_from(&self, type_name: &str, graph: usize) -> impl Iterator<Item = &Edge> {
        self.node(type_name, graph)
            .map(|n| self.out[n].as_slice())
            .unwrap_or_default()
            .iter()
            .map(|e| &self.edges[*e])
    }

    /// The subgraphs with a field edge `field` from `type_name`: those that resolve it.
    pub fn resolving_graphs(&self, type_name: &str, field: &str) -> Vec<usize> {
        (0..self.graphs)
            .filter(|g| {
                self.edges_from(type_name, *g)
                    .any(|e| matches!(&e.kind, EdgeKind::Field { name, .. } if name == field))
            })
            .collect()
    }

    /// The subgraphs `(type_name, from)` reaches by one key jump.
    pub fn key_targets(&self, type_name: &str, from: usize) -> Vec<usize> {
        self.edges_from(type_name, from)
            .filter(|e| matches!(e.kind, EdgeKind::Key { .. }))
            .filter_map(|e| e.to.map(|t| self.nodes[t].graph))
            .collect()
    }

    /// The shortest chain of key jumps for `type_name` from subgraph `from` to one of
    /// `targets`, as the subgraphs visited after `from` (the last is the target);
    /// `None` when no target is reachable. Ties go to the lower subgraph index.
    pub fn key_path(&self, type_name: &str, from: usize, targets: &[usize]) -> Option<Vec<usize>> {
        let mut came_from: HashMap<usize, usize> = HashMap::new();
        let mut queue = VecDeque::from([from]);
        while let Some(at) = queue.pop_front() {
            if at != from && targets.contains(&at) {
                let mut path = vec![at];
                let mut cur = at;
                while let Some(prev) = came_from.get(&cur).copied() {
                    if prev == from {
                        break;
                    }
                    path.push(prev);
                    cur = prev;
                }
                path.reverse();
                return Some(path);
            }
            let mut next = self.key_targets(type_name, at);
            next.sort_unstable();
            for n in next {
                if n != from && !came_from.contains_key(&n) {
                    came_from.insert(n, at);
                    queue.push_back(n);
                }
            }
        }
        None
    }

    /// One line per edge, for tests and debugging:
    /// `(Product, products) --field reviews--> (Review, products)`.
    pub fn describe(&self, sg: &Supergraph) -> String {
        let label = |n: usize| {
            let node = &self.nodes[n];
            format!("({}, {})", node.type_name, sg.graphs[node.graph].name)
        };
        let mut out = String::new();
        for e in &self.edges {
            let what = match &e.kind {
                EdgeKind::Field {
                    name,
                    requires,
                    provides,
                } => {
                    let mut s = format!("field {name}");
                    if *requires {
                        s.push_str(" @requires");
                    }
                    if *provides {
                        s.push_str(" @provides");
                    }
                    s
                }
                EdgeKind::Key { key } => format!("key {key}"),
                EdgeKind::Downcast => "downcast".into(),
                EdgeKind::InterfaceObject { key } => format!("interfaceObject key {key}"),
            };
            let to = e.to.map(label).unwrap_or_else(|| "leaf".into());
            let _ = writeln!(out, "{} --{what}--> {to}", label(e.from));
        }
        out
    }
}

//! Fewer subgraph requests for the same plan: entity fetches of one subgraph that can
//! run at the same time go out as one request.
//!
//! The planner builds a tree in which each branch of the operation waits only for its
//! own fetches, so the same subgraph is often asked several times at one step of the
//! answer (the products of a user's reviews, and those of a product's reviews, one
//! request each). This pass reads the tree as steps and their dependencies (a step of
//! a `Sequence` waits for everything before it), puts each step at its earliest level,
//! then:
//!
//! - moves an entity fetch nothing waits for to a later level where the same subgraph
//!   is asked anyway (it adds no round trip: the plan is as deep as before);
//! - sends the entity fetches of one subgraph at one level as one request: each
//!   distinct fetch an aliased `_entities` field with its own representations, and the
//!   same fetch at several paths one field fed from all of them.
//!
//! When nothing merges, the plan is returned unchanged. Only queries are batched (a
//! mutation's root fields run in order); a `@skip`/`@include` condition and what it
//! guards, root fetches and entity fetches with `@fromContext` values (sent per value)
//! are kept whole, as steps that never merge.

use std::collections::BTreeMap;

use crate::plan::{BatchNode, BatchPart, FetchNode, PathSegment, PlanNode};

/// A step of the plan: an entity fetch that may merge, or a part kept as it is.
enum Step {
    Entity {
        path: Vec<PathSegment>,
        fetch: FetchNode,
        /// The `@skip`/`@include` conditions it runs under (variable, skip), outermost
        /// first: only fetches under the same ones merge.
        guards: Vec<(String, bool)>,
    },
    Whole(PlanNode, Vec<(String, bool)>),
}

struct Steps {
    steps: Vec<Step>,
    deps: Vec<Vec<usize>>,
}

impl Steps {
    fn add(&mut self, step: Step, deps: &[usize]) -> usize {
        self.steps.push(step);
        self.deps.push(deps.to_vec());
        self.steps.len() - 1
    }

    /// Adds the steps of `node` (run under `guards`), each waiting for `deps`; returns
    /// the steps added.
    fn walk(&mut self, node: PlanNode, deps: &[usize], guards: &[(String, bool)]) -> Vec<usize> {
        match node {
            PlanNode::Flatten { path, node } => match *node {
                PlanNode::Fetch(fetch) if mergeable(&fetch) => vec![self.add(
                    Step::Entity {
                        path,
                        fetch,
                        guards: guards.to_vec(),
                    },
                    deps,
                )],
                other => vec![self.add(
                    Step::Whole(
                        PlanNode::Flatten {
                            path,
                            node: Box::new(other),
                        },
                        guards.to_vec(),
                    ),
                    deps,
                )],
            },
            PlanNode::Sequence { nodes } => {
                let mut waited = deps.to_vec();
                let mut all = Vec::new();
                for n in nodes {
                    let added = self.walk(n, &waited, guards);
                    waited.extend(&added);
                    all.extend(added);
                }
                all
            }
            PlanNode::Parallel { nodes } => nodes
                .into_iter()
                .flat_map(|n| self.walk(n, deps, guards))
                .collect(),
            // Each step below runs under the condition: the steps may then sit at
            // different levels, each under its own copy of it.
            PlanNode::Condition {
                variable,
                skip,
                node,
            } => {
                let mut inner = guards.to_vec();
                inner.push((variable, skip));
                self.walk(*node, deps, &inner)
            }
            other => vec![self.add(Step::Whole(other, guards.to_vec()), deps)],
        }
    }
}

/// An entity fetch that can share a request: its representations need no per-object
/// variables (`@fromContext`), and it reads only client variables.
fn mergeable(fetch: &FetchNode) -> bool {
    fetch.entity.is_some()
        && std::iter::once(fetch.entity.as_ref())
            .flatten()
            .chain(&fetch.more_entities)
            .all(|e| e.contexts.is_empty())
}

/// What makes two entity fetches the same fetch (one `_entities` field can serve both
/// paths): the same representations and the same selection.
fn same_fetch(a: &FetchNode, b: &FetchNode) -> bool {
    a.entity == b.entity
        && a.more_entities == b.more_entities
        && a.renames == b.renames
        && a.entities_selection == b.entities_selection
        && a.variables == b.variables
}

/// Batches `node`'s entity fetches (see the module's comment). `name` is the client's
/// operation name; `counter` numbers the operations as the planner does.
pub fn batch(node: PlanNode, name: Option<&str>, counter: &mut usize) -> PlanNode {
    let (depth, fetch_count) = (node.depth(), node.fetch_count());
    let original = node.clone();
    let mut steps = Steps {
        steps: Vec::new(),
        deps: Vec::new(),
    };
    steps.walk(node, &[], &[]);
    let n = steps.steps.len();
    // Dependencies always point to earlier steps, so one pass finds the levels.
    let mut level = vec![0usize; n];
    for i in 0..n {
        level[i] = steps.deps[i]
            .iter()
            .map(|d| level[*d] + 1)
            .max()
            .unwrap_or(0);
    }
    let mut waited_for = vec![false; n];
    for deps in &steps.deps {
        for d in deps {
            waited_for[*d] = true;
        }
    }
    // Fetches merge per subgraph and conditions.
    let service = |i: usize| match &steps.steps[i] {
        Step::Entity { fetch, guards, .. } => Some((fetch.service.as_str(), guards)),
        Step::Whole(..) => None,
    };
    let max_level = level.iter().copied().max().unwrap_or(0);
    // From the deepest level up, so a fetch moved later finds the levels after it
    // settled: the fetches of a subgraph at a level that nothing waits for move to the
    // next level that asks that subgraph anyway.
    let mut moved = false;
    for l in (0..max_level).rev() {
        let mut services: Vec<(&str, &Vec<(String, bool)>)> = Vec::new();
        for s in (0..n).filter(|i| level[*i] == l).filter_map(service) {
            if !services.contains(&s) {
                services.push(s);
            }
        }
        for s in services {
            let here: Vec<usize> = (0..n)
                .filter(|i| level[*i] == l && service(*i) == Some(s))
                .collect();
            if here.iter().any(|i| waited_for[*i]) {
                continue;
            }
            let later = (l + 1..=max_level)
                .find(|to| (0..n).any(|i| level[i] == *to && service(i) == Some(s)));
            if let Some(to) = later {
                for i in here {
                    level[i] = to;
                }
                moved = true;
            }
        }
    }
    // Entity fetches per level and subgraph; `Whole` steps stay alone.
    let mut merges = false;
    type Key = (String, Vec<(String, bool)>);
    let mut by_level: Vec<BTreeMap<Key, Vec<usize>>> = vec![BTreeMap::new(); max_level + 1];
    for i in 0..n {
        if let Some((s, guards)) = service(i) {
            let list = by_level[level[i]]
                .entry((s.to_string(), guards.clone()))
                .or_default();
            merges |= !list.is_empty();
            list.push(i);
        }
    }
    if !merges && !moved {
        return original;
    }
    let mut taken: Vec<Option<Step>> = steps.steps.into_iter().map(Some).collect();
    let mut levels: Vec<PlanNode> = Vec::new();
    for (l, services) in by_level.into_iter().enumerate() {
        let mut nodes: Vec<PlanNode> = Vec::new();
        for i in 0..n {
            // Checked before taking: an entity step must stay for its batch below.
            if level[i] == l
                && matches!(taken[i], Some(Step::Whole(..)))
                && let Some(Step::Whole(node, guards)) = taken[i].take()
            {
                nodes.push(guarded(node, guards));
            }
        }
        for ((service, guards), ids) in services {
            let fetches: Vec<(Vec<PathSegment>, FetchNode)> = ids
                .into_iter()
                .filter_map(|i| match taken[i].take() {
                    Some(Step::Entity { path, fetch, .. }) => Some((path, fetch)),
                    _ => None,
                })
                .collect();
            nodes.push(guarded(batch_node(service, fetches, name, counter), guards));
        }
        match nodes.len() {
            0 => {}
            1 => levels.extend(nodes),
            _ => levels.push(PlanNode::Parallel { nodes }),
        }
    }
    let batched = if levels.len() == 1 {
        levels.remove(0)
    } else {
        PlanNode::Sequence { nodes: levels }
    };
    // Levels wait for the slowest step of the level before; where that makes the
    // longest chain of requests longer than the planner's, the plan is kept.
    if batched.depth() > depth || batched.fetch_count() >= fetch_count {
        return original;
    }
    batched
}

/// `node` under the conditions `guards` (outermost first).
fn guarded(node: PlanNode, guards: Vec<(String, bool)>) -> PlanNode {
    guards
        .into_iter()
        .rev()
        .fold(node, |node, (variable, skip)| PlanNode::Condition {
            variable,
            skip,
            node: Box::new(node),
        })
}

/// One request for `fetches` (all to `service`, at one level): the plain fetch when
/// there is one, a [`BatchNode`] otherwise.
fn batch_node(
    service: String,
    fetches: Vec<(Vec<PathSegment>, FetchNode)>,
    name: Option<&str>,
    counter: &mut usize,
) -> PlanNode {
    let mut parts: Vec<BatchPart> = Vec::new();
    for (path, fetch) in fetches {
        match parts.iter_mut().find(|p| same_fetch(&p.fetch, &fetch)) {
            Some(p) => {
                if !p.paths.contains(&path) {
                    p.paths.push(path);
                }
            }
            None => parts.push(BatchPart {
                alias: String::new(),
                variable: String::new(),
                paths: vec![path],
                fetch,
            }),
        }
    }
    fold_same_places(&mut parts);
    if let [part] = &parts[..]
        && part.paths.len() == 1
        && let Some(part) = parts.pop()
        && let Some(path) = part.paths.into_iter().next()
    {
        return PlanNode::Flatten {
            path,
            node: Box::new(PlanNode::Fetch(part.fetch)),
        };
    }
    // Client variables keep their names; the representations' variables get names no
    // client variable has.
    let mut variables: Vec<String> = Vec::new();
    let mut definitions: Vec<String> = Vec::new();
    for p in &parts {
        add_variables(&mut variables, &mut definitions, &p.fetch);
    }
    let mut fields = Vec::new();
    let mut representation_defs = Vec::new();
    for (i, p) in parts.iter_mut().enumerate() {
        let mut variable = format!("representations{i}");
        while variables.contains(&variable) {
            variable.push('_');
        }
        p.alias = format!("_{i}");
        representation_defs.push(format!("${variable}: [_Any!]!"));
        fields.push(format!(
            "{}: _entities(representations: ${variable}) {}",
            p.alias, p.fetch.entities_selection
        ));
        p.variable = variable;
    }
    representation_defs.extend(definitions);
    let mut operation = String::from("query");
    if let Some(n) = name {
        operation.push_str(&format!(" {n}__{service}__{counter}"));
    }
    *counter += 1;
    operation.push_str(&format!(
        "({}) {{ {} }}",
        representation_defs.join(", "),
        fields.join(" ")
    ));
    PlanNode::Batch(BatchNode {
        service,
        operation,
        variables,
        parts,
    })
}

/// Two fetches of one entity type at exactly the same places, of which at most one
/// needs `@requires` inputs (or both the same): one `_entities` field can ask for both,
/// its representations carrying those inputs (fetched for every one of these objects
/// before this level). Each object is then sent, and merged back, once.
fn foldable(a: &BatchPart, b: &BatchPart) -> bool {
    let (Some(ea), Some(eb)) = (&a.fetch.entity, &b.fetch.entity) else {
        return false;
    };
    a.paths == b.paths
        && a.fetch.more_entities.is_empty()
        && b.fetch.more_entities.is_empty()
        && a.fetch.renames.is_empty()
        && b.fetch.renames.is_empty()
        && ea.type_name == eb.type_name
        && ea.key == eb.key
        && ea.interface_object_of == eb.interface_object_of
        && (ea.requires.is_empty() || eb.requires.is_empty() || ea.requires == eb.requires)
}

/// Folds each part into an earlier one it is [`foldable`] with: their selections side
/// by side (two fragments on the type), the representations of the one with inputs.
fn fold_same_places(parts: &mut Vec<BatchPart>) {
    // The planner prints a selection set as `{ items }`.
    let inner = |selection: &str| -> String {
        selection
            .strip_prefix("{ ")
            .and_then(|s| s.strip_suffix(" }"))
            .unwrap_or(selection)
            .to_string()
    };
    let mut i = 0;
    while i < parts.len() {
        let mut j = i + 1;
        while j < parts.len() {
            if !foldable(&parts[i], &parts[j]) {
                j += 1;
                continue;
            }
            let other = parts.remove(j).fetch;
            let into = &mut parts[i].fetch;
            into.entities_selection = format!(
                "{{ {} {} }}",
                inner(&into.entities_selection),
                inner(&other.entities_selection)
            );
            add_variables(&mut into.variables, &mut into.variable_definitions, &other);
            if into.entity.as_ref().is_some_and(|e| e.requires.is_empty()) {
                into.entity = other.entity;
            }
        }
        i += 1;
    }
}

/// Adds the client variables `fetch` forwards, and their definitions, to those of a
/// request, each once.
fn add_variables(variables: &mut Vec<String>, definitions: &mut Vec<String>, fetch: &FetchNode) {
    for (v, def) in fetch.variables.iter().zip(&fetch.variable_definitions) {
        if !variables.contains(v) {
            variables.push(v.clone());
            definitions.push(def.clone());
        }
    }
}

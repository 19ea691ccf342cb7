//! The query planner: a normalized operation and a supergraph in, a plan out.
//!
//! Root fields are grouped by the subgraph that resolves them (queries in parallel,
//! mutations in order). Inside a fetch, a field the current subgraph cannot resolve
//! becomes an entity fetch to a subgraph that can: the current fetch also selects
//! `__typename` and a key the target can resolve the entity by, and a dependent fetch
//! runs `_entities` over every object at that path. Fields for the same subgraph at the
//! same path share one dependent fetch.

use std::collections::HashMap;

use crate::field_set::{self, FieldSetItem};
use crate::operation::{
    Condition, ConditionValue, Field, InlineFragment, Operation, OperationKind, Selection,
    SelectionSet,
};
use crate::plan::{
    ContextValue, EntityFetch, FetchNode, PathSegment, PlanNode, QueryPlan, Rename, Required,
};
use crate::query_graph::QueryGraph;
use crate::supergraph::{Labels, Supergraph};

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PlanError {
    #[error("no subgraph can resolve {0}")]
    Unresolvable(String),
    #[error("cannot reach {coordinate}: {reason}")]
    NoKey { coordinate: String, reason: String },
    #[error("{0} operations are not supported by the planner yet")]
    Unsupported(&'static str),
    #[error("the schema has no {0} type")]
    NoRootType(&'static str),
    #[error("the @fromContext selection of {coordinate} is not supported: {reason}")]
    Context { coordinate: String, reason: String },
}

/// A selection as sent to one subgraph.
#[derive(Clone, Debug)]
enum Out {
    Field {
        key: String,
        head: String,
        sub: Option<Vec<Out>>,
        /// Its type as the subgraph declares it (when known): one response name with
        /// two types in one selection set must be aliased (see [`alias_conflicts`]).
        ty: Option<String>,
        /// The client's `@skip`/`@include` on it (also printed in `head`).
        conditions: Vec<Condition>,
    },
    Inline {
        head: String,
        sub: Vec<Out>,
        conditions: Vec<Condition>,
    },
}

#[derive(Debug)]
struct Group {
    graph: usize,
    path: Vec<PathSegment>,
    entity: Option<(String, Vec<FieldSetItem>)>,
    selections: Vec<Out>,
    variables: Vec<String>,
    children: Vec<Group>,
    /// `@requires` inputs the representations must carry besides the key.
    requires: Vec<Required>,
    /// Runtime types sent as the entity type to an `@interfaceObject` (empty otherwise).
    interface_object_of: Vec<String>,
    /// Runs after the siblings with a lower stage: its `@requires` inputs come from them.
    stage: usize,
    /// For a fetch that waits for its `@requires` inputs (stage > 0): the response keys
    /// of those inputs at its path, at any depth. The fetches that bring them are the
    /// ones it must wait for (see [`wait_only_for_inputs`]).
    inputs: Vec<String>,
    /// `@fromContext` values the fetch's operation takes as variables.
    contexts: Vec<ContextValue>,
    /// Entity groups of other types at the same path and subgraph, sent in the same
    /// request (their children live in this group's).
    also: Vec<Group>,
    /// The `@skip`/`@include` conditions on the way to every place this fetch's objects
    /// were asked for (fields and fragments of the fetches before it); `None` until the
    /// first jump to it is planned. Where one does not hold, no one needs the fetch.
    inherited: Option<Vec<Condition>>,
    /// Whether one of the ways it was asked for is not left out by a constant condition
    /// (`@skip(if: true)`, `@include(if: false)`) on the way: when none is, no one
    /// needs the fetch.
    live: bool,
}

impl Group {
    fn new(
        graph: usize,
        path: Vec<PathSegment>,
        entity: Option<(String, Vec<FieldSetItem>)>,
    ) -> Self {
        Group {
            graph,
            path,
            entity,
            selections: Vec::new(),
            variables: Vec::new(),
            children: Vec::new(),
            requires: Vec::new(),
            interface_object_of: Vec::new(),
            stage: 0,
            inputs: Vec::new(),
            contexts: Vec::new(),
            also: Vec::new(),
            inherited: None,
            live: false,
        }
    }

    /// Takes `other`'s selections, variables, inputs and following fetches into this
    /// one: the two are one fetch.
    fn absorb(&mut self, other: Group) {
        match other.inherited {
            // Its ways of being asked for become this fetch's.
            Some(conditions) => {
                self.keep_common(&conditions);
                self.live |= other.live;
            }
            None => self.asked_under(&[]),
        }
        merge_outs(&mut self.selections, other.selections);
        add_vars(&mut self.variables, &other.variables);
        merge_required(&mut self.requires, &other.requires);
        add_vars(&mut self.inputs, &other.inputs);
        self.children.extend(other.children);
    }

    /// Notes that this fetch is also asked for under `conditions`: only the conditions
    /// common to every way it is asked for can guard it.
    fn asked_under(&mut self, conditions: &[Condition]) {
        self.keep_common(conditions);
        self.live |= !conditions.iter().any(Condition::never_holds);
    }

    fn keep_common(&mut self, conditions: &[Condition]) {
        keep_common(&mut self.inherited, conditions);
    }

    /// Whether `other` can ride in this group's request: another entity type at the
    /// same path in the same subgraph and stage, neither needing per-representation
    /// variables (`@fromContext`) or `@interfaceObject` translation.
    fn can_share_request(&self, other: &Group) -> bool {
        let plain = |g: &Group| {
            g.entity.is_some() && g.contexts.is_empty() && g.interface_object_of.is_empty()
        };
        plain(self)
            && plain(other)
            && self.graph == other.graph
            && self.path == other.path
            && self.stage == other.stage
            && std::iter::once(self)
                .chain(&self.also)
                .all(|g| g.entity.as_ref().map(|e| &e.0) != other.entity.as_ref().map(|e| &e.0))
    }
}

/// The response keys of `wanted`, at any depth.
fn response_keys(set: &SelectionSet, out: &mut Vec<String>) {
    for item in &set.items {
        match item {
            Selection::Field(f) => add_vars(out, std::slice::from_ref(&f.response_key)),
            Selection::InlineFragment(i) => response_keys(&i.selection_set, out),
        }
    }
}

/// Whether `c`'s own fetch brings some of the fields `keys` names at `path`: it selects
/// one of them there, or fetches below one of them.
fn brings(c: &Group, path: &[PathSegment], keys: &[String]) -> bool {
    fn selects(items: &[Out], keys: &[String]) -> bool {
        items.iter().any(|o| match o {
            Out::Field { key, .. } => keys.contains(key),
            Out::Inline { sub, .. } => selects(sub, keys),
        })
    }
    if c.path == path {
        std::iter::once(c)
            .chain(&c.also)
            .any(|g| selects(&g.selections, keys))
    } else {
        c.path.len() > path.len()
            && c.path.starts_with(path)
            && matches!(&c.path[path.len()], PathSegment::Field(k) if keys.contains(k))
    }
}

/// Whether `c`'s fetch or one that follows from it brings some of `keys` at `path`.
fn brings_below(c: &Group, path: &[PathSegment], keys: &[String]) -> bool {
    brings(c, path, keys) || c.children.iter().any(|g| brings_below(g, path, keys))
}

/// The latest stage among `children` of the fetches that bring some of `keys` at
/// `path` (see [`brings`]). `None` when none does (the parent's own fetch brings it all).
fn providers_stage(children: &[Group], path: &[PathSegment], keys: &[String]) -> Option<usize> {
    children
        .iter()
        .filter(|c| brings(c, path, keys))
        .map(|c| c.stage)
        .max()
}

/// Moves each fetch that waits for its `@requires` inputs below the one sibling whose
/// fetches bring them, when one sibling brings them all: it then waits for that
/// sibling's fetch (and for those of its following fetches that bring inputs), not for
/// every fetch of the stages before it. The fetch dependency graph is kept as a tree:
/// a fetch whose inputs come from two siblings stays at its stage, after both.
fn wait_only_for_inputs(mut level: Vec<Group>) -> Vec<Group> {
    let mut stages: Vec<usize> = level.iter().map(|g| g.stage).filter(|s| *s > 0).collect();
    stages.sort_unstable();
    stages.dedup();
    for stage in stages {
        // Decided for the whole stage before any moves, against the fetches before it.
        let moves: Vec<(usize, usize, usize)> = level
            .iter()
            .enumerate()
            .filter(|(_, x)| x.stage == stage && !x.inputs.is_empty())
            .filter_map(|(i, x)| {
                let mut keys = x.inputs.clone();
                for a in &x.also {
                    add_vars(&mut keys, &a.inputs);
                }
                let holders: Vec<usize> = (0..level.len())
                    .filter(|h| level[*h].stage < stage && brings_below(&level[*h], &x.path, &keys))
                    .collect();
                let [h] = holders[..] else {
                    return None;
                };
                let within = level[h]
                    .children
                    .iter()
                    .filter(|c| brings_below(c, &x.path, &keys))
                    .map(|c| c.stage + 1)
                    .max()
                    .unwrap_or(0);
                Some((i, h, within))
            })
            .collect();
        let mut taken: Vec<Option<Group>> = level.into_iter().map(Some).collect();
        // A holder has a lower stage than the fetches moved in this round, so it is
        // never moved itself; each fetch moves at most once.
        for (i, h, within) in moves {
            let Some(mut x) = taken[i].take() else {
                continue;
            };
            x.stage = within;
            for a in &mut x.also {
                a.stage = within;
            }
            match taken[h].as_mut() {
                Some(host) => host.children.push(x),
                None => taken[i] = Some(x),
            }
        }
        level = taken.into_iter().flatten().collect();
    }
    level
}

/// An entity fetch with nothing but its key in its representations, no context or
/// `@interfaceObject` translation: one that can take another's selections.
fn foldable(g: &Group) -> bool {
    g.entity.is_some()
        && g.requires.is_empty()
        && g.contexts.is_empty()
        && g.interface_object_of.is_empty()
        && g.also.is_empty()
}

/// The first group in `groups` or below them that fetches the same entity by the same
/// key from the same subgraph at the same path as `like`.
fn same_fetch_below<'a>(groups: &'a mut [Group], like: &Group) -> Option<&'a mut Group> {
    for g in groups {
        if g.graph == like.graph && g.path == like.path && g.entity == like.entity && foldable(g) {
            return Some(g);
        }
        if let Some(found) = same_fetch_below(&mut g.children, like) {
            return Some(found);
        }
    }
    None
}

/// Where one path is reached two ways (a field of one type straight from the parent
/// fetch, of another type through a sibling's fetch), the entity fetch made straight
/// away is folded into the one made later at the same path, which finds the objects of
/// both there: one request instead of two (or instead of fetching the first objects
/// twice). Only a fetch nothing at its path waits for is moved later.
fn fold_into_later(children: &mut Vec<Group>) {
    for c in children.iter_mut() {
        fold_into_later(&mut c.children);
    }
    let mut i = 0;
    while i < children.len() {
        let x = &children[i];
        let waited_for = children
            .iter()
            .any(|c| c.stage > 0 && c.path.starts_with(&x.path));
        if x.stage != 0 || !foldable(x) || waited_for {
            i += 1;
            continue;
        }
        let x = children.remove(i);
        let target = children
            .iter_mut()
            .find_map(|s| same_fetch_below(&mut s.children, &x));
        match target {
            Some(y) => y.absorb(x),
            None => {
                children.insert(i, x);
                i += 1;
            }
        }
    }
}

/// Folds sibling entity groups that [`Group::can_share_request`] into one request each,
/// after merging those that are one fetch: the same entity by the same key from the
/// same subgraph at the same path and stage (met when the children of several entity
/// types sharing a request come together).
fn share_requests(groups: Vec<Group>) -> Vec<Group> {
    let mut merged: Vec<Group> = Vec::new();
    for g in groups {
        let same = merged.iter_mut().find(|m| {
            m.entity.is_some()
                && m.graph == g.graph
                && m.path == g.path
                && m.stage == g.stage
                && m.entity == g.entity
                && m.contexts.is_empty()
                && g.contexts.is_empty()
                && m.interface_object_of == g.interface_object_of
                && m.also.is_empty()
                && g.also.is_empty()
        });
        match same {
            Some(m) => m.absorb(g),
            None => merged.push(g),
        }
    }
    let mut out: Vec<Group> = Vec::new();
    for mut g in merged {
        match out.iter_mut().find(|o| o.can_share_request(&g)) {
            Some(host) => {
                host.children.append(&mut g.children);
                add_vars(&mut host.variables, &g.variables);
                host.also.push(g);
            }
            None => out.push(g),
        }
    }
    out
}

struct Planner<'a> {
    sg: &'a Supergraph,
    /// Which subgraphs each type can move between, and how (see [`QueryGraph`]).
    qg: &'a QueryGraph,
    op: &'a Operation,
    labels: &'a Labels,
    /// Contexts some field of the operation reads, with the fields each reads: objects
    /// of the context's types select them (and `__typename`) wherever they appear.
    used_contexts: Vec<(String, Vec<FieldSetItem>)>,
    /// Numbers the `@fromContext` variables of the plan.
    context_vars: std::cell::Cell<usize>,
    /// The fields and fragments entered on the way to the selection being planned,
    /// innermost last: a field of a value type that the current subgraph lacks is
    /// fetched again from the nearest entity among them (see [`Planner::reenter`]).
    frames: std::cell::RefCell<Vec<Frame>>,
    /// `(type, field, subgraph)` of the entity fetches being planned whose
    /// representations carry that field's `@requires` inputs.
    requires_met: std::cell::RefCell<Vec<(String, String, usize)>>,
    /// The `@skip`/`@include` conditions of the fields and fragments entered on the way
    /// to the selection being planned (see [`Group::inherited`]).
    conditions: std::cell::RefCell<Vec<Condition>>,
    /// The conditions the plan node being built already sits under.
    guarded: std::cell::RefCell<Vec<(String, bool)>>,
    /// Every field planned with an entity's selection below it.
    hops: std::cell::RefCell<Vec<Hop>>,
    /// Set while the selection of an entity fetch is about to be built (see
    /// [`Planner::build_provided`]).
    entity_root: std::cell::Cell<bool>,
    /// The entity fetches whose selections are being built, innermost last.
    entity_fetches: std::cell::RefCell<Vec<EntityFrame>>,
    /// The variable of each `@fromContext` argument per entity fetch (see
    /// [`Planner::with_context_arguments`]).
    context_names: std::cell::RefCell<HashMap<String, String>>,
}

/// An entity fetch whose selection is being built.
struct EntityFrame {
    type_name: String,
    graph: usize,
    path: Vec<PathSegment>,
    /// How many [`Frame`]s were open when it started: those after are inside it.
    frames_at: usize,
    /// `@fromContext` values read from its own objects (see
    /// [`Planner::inline_context_field`]).
    contexts: Vec<ContextValue>,
}

/// A field with an entity's selection below it, planned in some fetch: its place, and
/// enough to ask for it again in another fetch of the parent entity (see
/// [`Planner::ride_along`]).
#[derive(Clone, PartialEq)]
struct Hop {
    /// The parent object's path, and the path of the objects the field returns.
    at: Vec<PathSegment>,
    below: Vec<PathSegment>,
    parent_type: String,
    name: String,
    key: String,
    head: String,
    /// The head without directives.
    call: String,
    conditions: Vec<Condition>,
    variables: Vec<String>,
}

/// A field or inline fragment being planned, and what must be fetched through it.
struct Frame {
    selection: Selection,
    /// The object here is an entity of this type (it can be fetched by key).
    entity: Option<String>,
    /// Selections below it another subgraph must answer, each a chain of the fields
    /// and fragments between this entity and a field the current subgraph lacks.
    reentries: Vec<Selection>,
}

/// Where an entity jump goes and what it carries.
struct Jump {
    /// The entity type as the target knows it.
    type_name: String,
    /// Candidate subgraphs, best first.
    targets: Vec<usize>,
    /// The selections planned in the target (on `type_name`).
    items: Vec<Selection>,
    /// The field whose `@requires` the representations must satisfy.
    requires_of: Option<String>,
    /// Non-empty for a jump to an `@interfaceObject`: the runtime types sent.
    interface_object_of: Vec<String>,
    coordinate: String,
}

pub(crate) fn typename_field(parent: &str) -> Selection {
    Selection::Field(Field {
        response_key: "__typename".into(),
        name: "__typename".into(),
        alias: None,
        arguments: Vec::new(),
        directives: Vec::new(),
        conditions: Vec::new(),
        variables: Vec::new(),
        parent_type: parent.to_string(),
        type_name: "String".into(),
        output: None,
        selection_set: None,
    })
}

/// Narrows `common` to the conditions also in `conditions` (`None`: none seen yet).
fn keep_common(common: &mut Option<Vec<Condition>>, conditions: &[Condition]) {
    *common = Some(match common.take() {
        None => conditions.to_vec(),
        Some(mut before) => {
            before.retain(|c| conditions.contains(c));
            before
        }
    });
}

fn add_contexts(into: &mut Vec<ContextValue>, more: Vec<ContextValue>) {
    for c in more {
        if !into.iter().any(|i| i.variable == c.variable) {
            into.push(c);
        }
    }
}

fn add_vars(into: &mut Vec<String>, vars: &[String]) {
    for v in vars {
        if !into.contains(v) {
            into.push(v.clone());
        }
    }
}

fn field_head(f: &Field) -> String {
    let mut s = field_call(f);
    for d in &f.directives {
        s.push(' ');
        s.push_str(d);
    }
    s
}

/// Whether GraphQL `text` uses the variable `name` (`$name`, not a longer name).
fn uses_variable(text: &str, name: &str) -> bool {
    let needle = format!("${name}");
    text.match_indices(&needle).any(|(at, _)| {
        !text[at + needle.len()..]
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphanumeric() || c == '_')
    })
}

/// A field's alias, name and arguments, without its directives.
fn field_call(f: &Field) -> String {
    let mut s = String::new();
    if let Some(a) = &f.alias {
        s.push_str(a);
        s.push_str(": ");
    }
    s.push_str(&f.name);
    if !f.arguments.is_empty() {
        s.push('(');
        s.push_str(&f.arguments.join(", "));
        s.push(')');
    }
    s
}

fn inline_head(i: &InlineFragment) -> String {
    let mut s = String::from("...");
    if let Some(t) = &i.type_condition {
        s.push_str(" on ");
        s.push_str(t);
    }
    for d in &i.directives {
        s.push(' ');
        s.push_str(d);
    }
    s
}

/// A type as an alias suffix: `Int!` -> `Int_nn`, `[String]` -> `l_String`.
fn type_tag(ty: &str) -> String {
    ty.chars()
        .map(|c| match c {
            '!' => "_nn".to_string(),
            '[' => "l_".to_string(),
            ']' => String::new(),
            c if c.is_ascii_alphanumeric() || c == '_' => c.to_string(),
            _ => String::new(),
        })
        .collect()
}

fn print_out(items: &[Out], out: &mut String) {
    out.push_str("{ ");
    for (i, item) in items.iter().enumerate() {
        if i > 0 {
            out.push(' ');
        }
        match item {
            Out::Field { head, sub, .. } => {
                out.push_str(head);
                if let Some(sub) = sub {
                    out.push(' ');
                    print_out(sub, out);
                }
            }
            Out::Inline { head, sub, .. } => {
                out.push_str(head);
                out.push(' ');
                print_out(sub, out);
            }
        }
    }
    out.push_str(" }");
}

/// Adds the items of `more` to `into`, merging nested selections.
fn merge_field_sets(into: &mut Vec<FieldSetItem>, more: &[FieldSetItem]) {
    for item in more {
        match into.iter_mut().find(|i| i.name == item.name) {
            Some(existing) => merge_field_sets(&mut existing.selections, &item.selections),
            None => into.push(item.clone()),
        }
    }
}

/// Adds the items of `more` to `into`, merging the same field (name and arguments)
/// or fragment (type condition) into one.
fn merge_required(into: &mut Vec<Required>, more: &[Required]) {
    for item in more {
        let existing = into.iter_mut().find_map(|i| match (i, item) {
            (
                Required::Field {
                    name: a,
                    arguments: x,
                    selections,
                    ..
                },
                Required::Field {
                    name: b,
                    arguments: y,
                    ..
                },
            ) if a == b && x == y => Some(selections),
            (
                Required::Fragment {
                    on: a, selections, ..
                },
                Required::Fragment { on: b, .. },
            ) if a == b => Some(selections),
            _ => None,
        });
        let more_selections = match item {
            Required::Field { selections, .. } | Required::Fragment { selections, .. } => {
                selections
            }
        };
        match existing {
            Some(selections) => merge_required(selections, more_selections),
            None => into.push(item.clone()),
        }
    }
}

/// The alias a `@requires` input with arguments is fetched under: stable for the same
/// arguments, and unlike anything a client would name a field.
fn required_alias(name: &str, arguments: &[String]) -> Option<String> {
    if arguments.is_empty() {
        return None;
    }
    // FNV-1a: plans must not depend on a randomly seeded hasher.
    let mut hash: u32 = 0x811c_9dc5;
    for b in arguments.join(", ").bytes() {
        hash ^= u32::from(b);
        hash = hash.wrapping_mul(0x0100_0193);
    }
    Some(format!("{name}__requires_{hash:08x}"))
}

/// Makes sure `out` selects the fields of `key` (and `__typename`), merging into
/// existing selections of the same field.
fn ensure_fields(out: &mut Vec<Out>, key: &[FieldSetItem], with_typename: bool) {
    if with_typename
        && !out
            .iter()
            .any(|o| matches!(o, Out::Field { key, .. } if key == "__typename"))
    {
        out.push(Out::Field {
            key: "__typename".into(),
            head: "__typename".into(),
            sub: None,
            ty: None,
            conditions: Vec::new(),
        });
    }
    for item in key {
        let existing = out.iter_mut().find_map(|o| match o {
            Out::Field { key, head, sub, .. } if key == &item.name && head == &item.name => {
                Some(sub)
            }
            _ => None,
        });
        match existing {
            Some(sub) => {
                if !item.selections.is_empty() {
                    ensure_fields(sub.get_or_insert_with(Vec::new), &item.selections, false);
                }
            }
            None => {
                let sub = if item.selections.is_empty() {
                    None
                } else {
                    let mut s = Vec::new();
                    ensure_fields(&mut s, &item.selections, false);
                    Some(s)
                };
                out.push(Out::Field {
                    key: item.name.clone(),
                    head: item.name.clone(),
                    sub,
                    ty: None,
                    conditions: Vec::new(),
                });
            }
        }
    }
}

/// Selects `key` (and `__typename`) beside every selection of `hop`'s field found at
/// `rest` below `items` (a relative path, through fragments); whether there was one.
fn key_beside(items: &mut Vec<Out>, rest: &[PathSegment], hop: &Hop, key: &[FieldSetItem]) -> bool {
    let mut found = false;
    match rest.split_first() {
        None => {
            if items
                .iter()
                .any(|o| matches!(o, Out::Field { key, head, .. } if *key == hop.key && *head == hop.head))
            {
                ensure_fields(items, key, true);
                found = true;
            }
            for o in items.iter_mut() {
                if let Out::Inline { sub, .. } = o {
                    found |= key_beside(sub, rest, hop, key);
                }
            }
        }
        Some((PathSegment::List, below)) => found = key_beside(items, below, hop, key),
        Some((PathSegment::Field(k), below)) => {
            for o in items.iter_mut() {
                match o {
                    Out::Field {
                        key: name,
                        sub: Some(sub),
                        ..
                    } if name == k => found |= key_beside(sub, below, hop, key),
                    Out::Inline { sub, .. } => found |= key_beside(sub, rest, hop, key),
                    _ => {}
                }
            }
        }
    }
    found
}

/// Appends `more` to `into`, merging a field selected in both (same response key and
/// arguments) or a fragment in both (same type condition and directives) into one with
/// the union of their sub-selections.
fn merge_outs(into: &mut Vec<Out>, more: Vec<Out>) {
    for item in more {
        match item {
            Out::Field {
                key,
                head,
                sub,
                ty,
                conditions,
            } => {
                let existing = into.iter_mut().find_map(|o| match o {
                    Out::Field {
                        key: k,
                        head: h,
                        sub: s,
                        ..
                    } if *k == key && *h == head => Some(s),
                    _ => None,
                });
                match (existing, sub) {
                    (Some(Some(existing)), Some(sub)) => merge_outs(existing, sub),
                    (Some(_), _) => {}
                    (None, sub) => into.push(Out::Field {
                        key,
                        head,
                        sub: sub.map(merged),
                        ty,
                        conditions,
                    }),
                }
            }
            Out::Inline {
                head,
                sub,
                conditions,
            } => {
                let existing = into.iter_mut().find_map(|o| match o {
                    Out::Inline {
                        head: h, sub: s, ..
                    } if *h == head => Some(s),
                    _ => None,
                });
                match existing {
                    Some(existing) => merge_outs(existing, sub),
                    None => into.push(Out::Inline {
                        head,
                        sub: merged(sub),
                        conditions,
                    }),
                }
            }
        }
    }
}

/// `items` with each field and fragment selected twice at one level merged into one,
/// at every depth.
fn merged(items: Vec<Out>) -> Vec<Out> {
    let mut out = Vec::with_capacity(items.len());
    merge_outs(&mut out, items);
    out
}

impl Out {
    /// The client's `@skip`/`@include` on this selection.
    fn conditions(&self) -> &[Condition] {
        match self {
            Out::Field { conditions, .. } | Out::Inline { conditions, .. } => conditions,
        }
    }
}

impl Planner<'_> {
    /// Adds a field's or fragment's conditions to those in force; answers the depth to
    /// truncate back to when leaving it.
    fn enter_conditions(&self, conditions: &[Condition]) -> usize {
        let mut now = self.conditions.borrow_mut();
        let depth = now.len();
        now.extend(conditions.iter().cloned());
        depth
    }

    /// The merge path below a field: its response key, then `@` per list level.
    fn child_path(&self, path: &[PathSegment], f: &Field) -> Vec<PathSegment> {
        let mut p = path.to_vec();
        p.push(PathSegment::Field(f.response_key.clone()));
        if let Ok(def) = self.sg.schema.type_field(&f.parent_type, &f.name) {
            let mut ty = &def.ty;
            while let apollo_compiler::ast::Type::List(inner)
            | apollo_compiler::ast::Type::NonNullList(inner) = ty
            {
                p.push(PathSegment::List);
                ty = inner;
            }
        }
        p
    }

    fn build(
        &self,
        graph: usize,
        set: &SelectionSet,
        path: &[PathSegment],
        children: &mut Vec<Group>,
        vars: &mut Vec<String>,
    ) -> Result<Vec<Out>, PlanError> {
        self.build_provided(graph, set, path, children, vars, &[])
    }

    /// Like `build`, where `provided` lists fields the parent field's `@provides` makes
    /// available from `graph` even though they are `@external` there.
    fn build_provided(
        &self,
        graph: usize,
        set: &SelectionSet,
        path: &[PathSegment],
        children: &mut Vec<Group>,
        vars: &mut Vec<String>,
        provided: &[FieldSetItem],
    ) -> Result<Vec<Out>, PlanError> {
        // An entity fetch's objects were made by the fetch before it, from a selection
        // set of their type, which selected the contexts' fields already.
        let entity_root = self.entity_root.replace(false);
        let mut out = Vec::new();
        if self.sg.is_interface_object_in(&set.type_name, graph) {
            return self.build_interface_object(graph, set, path, children, vars, provided);
        }
        let with_context;
        let extra = if entity_root {
            None
        } else {
            self.context_selection(&set.type_name)
        };
        let set = match extra {
            Some(extra) => {
                let mut s = set.clone();
                s.items.extend(extra.items);
                with_context = s;
                &with_context
            }
            None => set,
        };
        for item in &set.items {
            match item {
                Selection::Field(f)
                    if f.name != "__typename"
                        && !self
                            .sg
                            .context_arguments(&set.type_name, &f.name, graph)
                            .is_empty()
                        && self
                            .sg
                            .can_resolve(&set.type_name, &f.name, graph, self.labels) =>
                {
                    match self.inline_context_field(graph, &set.type_name, f, path, children, vars)
                    {
                        Some(field) => out.push(field?),
                        None => self.context_field(
                            graph,
                            graph,
                            &set.type_name,
                            f,
                            path,
                            &mut out,
                            children,
                        )?,
                    }
                }
                Selection::Field(f) => {
                    if f.name == "__typename"
                        || provided.iter().any(|p| p.name == f.name)
                        || (self
                            .sg
                            .can_resolve(&set.type_name, &f.name, graph, self.labels)
                            && !self.needs_inputs(&set.type_name, &f.name, graph)
                            && self.resolves_for_every_type(graph, &set.type_name, &f.name))
                    {
                        out.push(self.local_field(
                            graph,
                            &set.type_name,
                            f,
                            path,
                            children,
                            vars,
                            provided,
                        )?);
                    } else if let Some(jump) = self.interface_object_jump(&set.type_name, f) {
                        self.attach(graph, jump, path, &mut out, children)?;
                    } else if self.sg.is_abstract(&set.type_name) {
                        // An interface field another subgraph resolves: ask for it per
                        // runtime type, each of which may be an entity elsewhere.
                        let exploded: Vec<Selection> = self
                            .sg
                            .possible_types(&set.type_name)
                            .into_iter()
                            .map(|t| {
                                Selection::InlineFragment(InlineFragment {
                                    type_condition: Some(t.clone()),
                                    directives: Vec::new(),
                                    conditions: Vec::new(),
                                    variables: Vec::new(),
                                    selection_set: SelectionSet {
                                        // The field's parent is now the member type:
                                        // merge paths below read its list levels
                                        // from there.
                                        items: vec![Selection::Field(Field {
                                            parent_type: t.clone(),
                                            output: None,
                                            ..f.clone()
                                        })],
                                        type_name: t,
                                    },
                                })
                            })
                            .collect();
                        let sub = self.build_provided(
                            graph,
                            &SelectionSet {
                                type_name: set.type_name.clone(),
                                items: exploded,
                            },
                            path,
                            children,
                            vars,
                            provided,
                        )?;
                        out.extend(sub);
                        ensure_fields(&mut out, &[], true);
                    } else if !self.reenter(graph, &set.type_name, f) {
                        self.jump(graph, &set.type_name, f, path, &mut out, children)?;
                    }
                }
                Selection::InlineFragment(frag)
                    if frag
                        .type_condition
                        .as_deref()
                        .is_some_and(|t| !self.sg.can_match_in(&set.type_name, t, graph)) =>
                {
                    // Nothing this subgraph returns here can be of that type: the
                    // fragment selects nothing from it (and it may not know the type).
                }
                Selection::InlineFragment(frag) => {
                    add_vars(vars, &frag.variables);
                    let entity = frag
                        .type_condition
                        .as_deref()
                        .filter(|t| self.is_entity_object(t));
                    self.enter_fragment(frag, entity);
                    let depth = self.enter_conditions(&frag.conditions);
                    let built = self.build(graph, &frag.selection_set, path, children, vars);
                    let left = self.leave(graph, built, path, children);
                    self.conditions.borrow_mut().truncate(depth);
                    let sub = left?;
                    if !sub.is_empty() {
                        out.push(Out::Inline {
                            head: inline_head(frag),
                            sub,
                            conditions: frag.conditions.clone(),
                        });
                    }
                }
            }
        }
        Ok(out)
    }

    /// A field `graph` resolves itself (or has provided by the parent's `@provides`),
    /// with its sub-selection planned from there.
    #[allow(clippy::too_many_arguments)]
    fn local_field(
        &self,
        graph: usize,
        type_name: &str,
        f: &Field,
        path: &[PathSegment],
        children: &mut Vec<Group>,
        vars: &mut Vec<String>,
        provided: &[FieldSetItem],
    ) -> Result<Out, PlanError> {
        add_vars(vars, &f.variables);
        let sub = match &f.selection_set {
            Some(ss) => {
                let mut child_provided: Vec<FieldSetItem> = provided
                    .iter()
                    .find(|p| p.name == f.name)
                    .map(|p| p.selections.clone())
                    .unwrap_or_default();
                child_provided.extend(self.sg.provides(type_name, &f.name, graph));
                let child_path = self.child_path(path, f);
                let entity = self
                    .is_entity_object(&ss.type_name)
                    .then_some(ss.type_name.as_str());
                if entity.is_some() {
                    let hop = Hop {
                        at: path.to_vec(),
                        below: child_path.clone(),
                        parent_type: type_name.to_string(),
                        name: f.name.clone(),
                        key: f.response_key.clone(),
                        head: field_head(f),
                        call: field_call(f),
                        conditions: f.conditions.clone(),
                        variables: f.variables.clone(),
                    };
                    let mut hops = self.hops.borrow_mut();
                    if !hops.contains(&hop) {
                        hops.push(hop);
                    }
                }
                self.enter_field(f, entity);
                let depth = self.enter_conditions(&f.conditions);
                let built =
                    self.build_provided(graph, ss, &child_path, children, vars, &child_provided);
                let left = self.leave(graph, built, &child_path, children);
                self.conditions.borrow_mut().truncate(depth);
                let mut sub = left?;
                // Fragments on an abstract type need the runtime type; a selection
                // fetched entirely from elsewhere still needs something to select here.
                if self.sg.is_abstract(&ss.type_name) || sub.is_empty() {
                    ensure_fields(&mut sub, &[], true);
                }
                Some(sub)
            }
            None => None,
        };
        Ok(Out::Field {
            key: f.response_key.clone(),
            head: field_head(f),
            sub,
            ty: self.sg.field_type_in(type_name, &f.name, graph),
            conditions: f.conditions.clone(),
        })
    }

    /// Whether `graph` resolves `field` of `type_name` for every runtime type it can
    /// return there. An interface field is decided per implementation: one may have it
    /// `@external`, overridden elsewhere, or behind a `@requires`, and is then asked
    /// for by a fragment on its type.
    fn resolves_for_every_type(&self, graph: usize, type_name: &str, field: &str) -> bool {
        if field == "__typename" || !self.sg.is_abstract(type_name) {
            return true;
        }
        self.sg.possible_types_in(type_name, graph).iter().all(|t| {
            self.sg.can_resolve(t, field, graph, self.labels) && !self.needs_inputs(t, field, graph)
        })
    }

    fn is_entity(&self, type_name: &str) -> bool {
        self.sg
            .types
            .get(type_name)
            .is_some_and(|t| t.graphs.iter().any(|g| g.keys.iter().any(|k| k.resolvable)))
    }

    /// An object type fetchable by key: a place re-entries can hang from.
    fn is_entity_object(&self, type_name: &str) -> bool {
        !self.sg.is_abstract(type_name) && self.is_entity(type_name)
    }

    /// Opens a frame for field `f`. Only its head is kept: `reenter` gives it the
    /// one child of a chain, so copying the whole subtree at every level is wasted.
    fn enter_field(&self, f: &Field, entity: Option<&str>) {
        let head = Field {
            response_key: f.response_key.clone(),
            name: f.name.clone(),
            alias: f.alias.clone(),
            arguments: f.arguments.clone(),
            directives: f.directives.clone(),
            conditions: f.conditions.clone(),
            variables: f.variables.clone(),
            parent_type: f.parent_type.clone(),
            type_name: f.type_name.clone(),
            output: None,
            selection_set: None,
        };
        self.push_frame(Selection::Field(head), entity);
    }

    /// Like [`Planner::enter_field`], for an inline fragment.
    fn enter_fragment(&self, frag: &InlineFragment, entity: Option<&str>) {
        let head = InlineFragment {
            type_condition: frag.type_condition.clone(),
            directives: frag.directives.clone(),
            conditions: frag.conditions.clone(),
            variables: frag.variables.clone(),
            selection_set: SelectionSet {
                type_name: frag.selection_set.type_name.clone(),
                items: Vec::new(),
            },
        };
        self.push_frame(Selection::InlineFragment(head), entity);
    }

    fn push_frame(&self, selection: Selection, entity: Option<&str>) {
        self.frames.borrow_mut().push(Frame {
            selection,
            entity: entity.map(str::to_string),
            reentries: Vec::new(),
        });
    }

    /// Closes the frame `enter` opened once its selection (`built`) is planned: what
    /// was left for this entity to fetch elsewhere becomes entity fetches from here.
    fn leave(
        &self,
        graph: usize,
        built: Result<Vec<Out>, PlanError>,
        path: &[PathSegment],
        children: &mut Vec<Group>,
    ) -> Result<Vec<Out>, PlanError> {
        let frame = self.frames.borrow_mut().pop();
        let mut sub = built?;
        let Some(Frame {
            entity: Some(type_name),
            reentries,
            ..
        }) = frame
        else {
            return Ok(sub);
        };
        for item in reentries {
            let targets: Vec<usize> = (0..self.sg.graphs.len())
                .filter(|g| *g != graph && self.resolves_chain(*g, &type_name, &item))
                .collect();
            let jump = Jump {
                type_name: type_name.clone(),
                targets,
                items: vec![item],
                requires_of: None,
                interface_object_of: Vec::new(),
                coordinate: format!("fields below {type_name}"),
            };
            self.attach(graph, jump, path, &mut sub, children)?;
        }
        Ok(sub)
    }

    /// Whether `graph` resolves every field of a re-entry chain (fragments and fields
    /// down to the one the current subgraph lacks; what is below that may jump on).
    fn resolves_chain(&self, graph: usize, type_name: &str, item: &Selection) -> bool {
        match item {
            Selection::Field(f) => {
                if !self.sg.can_resolve(type_name, &f.name, graph, self.labels) {
                    return false;
                }
                match &f.selection_set {
                    Some(ss) if ss.items.len() == 1 && !self.is_entity(&ss.type_name) => {
                        self.resolves_chain(graph, &ss.type_name, &ss.items[0])
                    }
                    _ => true,
                }
            }
            Selection::InlineFragment(frag) => {
                let on = frag.type_condition.as_deref().unwrap_or(type_name);
                self.sg.defines(on, graph)
                    && frag
                        .selection_set
                        .items
                        .iter()
                        .all(|i| self.resolves_chain(graph, on, i))
            }
        }
    }

    /// A field `graph` lacks on a value type (one no subgraph has a key for) is fetched
    /// through the nearest entity above it: the chain of fields and fragments from
    /// that entity down to the field is recorded on its frame, which fetches it from a
    /// subgraph that resolves the whole chain. `false` when there is no such entity.
    fn reenter(&self, graph: usize, type_name: &str, f: &Field) -> bool {
        if self.is_entity(type_name) {
            return false;
        }
        let mut frames = self.frames.borrow_mut();
        let Some(anchor) = frames.iter().rposition(|fr| fr.entity.is_some()) else {
            return false;
        };
        let mut item = Selection::Field(f.clone());
        for frame in frames[anchor + 1..].iter().rev() {
            item = match &frame.selection {
                Selection::Field(outer) => {
                    let mut outer = outer.clone();
                    outer.selection_set = Some(SelectionSet {
                        type_name: outer.type_name.clone(),
                        items: vec![item],
                    });
                    Selection::Field(outer)
                }
                Selection::InlineFragment(frag) => {
                    let mut frag = frag.clone();
                    frag.selection_set.items = vec![item];
                    Selection::InlineFragment(frag)
                }
            };
        }
        let anchor_type = frames[anchor].entity.clone().unwrap_or_default();
        if !(0..self.sg.graphs.len())
            .any(|g| g != graph && self.resolves_chain(g, &anchor_type, &item))
        {
            return false;
        }
        frames[anchor].reentries.push(item);
        true
    }

    /// Plans a selection on an interface that `graph` has as an `@interfaceObject`: it
    /// knows neither the concrete types nor their own fields, so `__typename`, type
    /// conditions and fields it lacks go to a subgraph that has the real interface.
    fn build_interface_object(
        &self,
        graph: usize,
        set: &SelectionSet,
        path: &[PathSegment],
        children: &mut Vec<Group>,
        vars: &mut Vec<String>,
        provided: &[FieldSetItem],
    ) -> Result<Vec<Out>, PlanError> {
        let iface = set.type_name.as_str();
        let io_targets = |f: &Field| -> Vec<usize> {
            if f.name == "__typename" {
                return Vec::new();
            }
            let mut targets = self.interface_object_graphs(iface, &f.name);
            targets.retain(|g| *g != graph);
            targets
        };
        // A response key naming one field (name and arguments) in every fragment here:
        // such a field of a fragment on a concrete type can be asked for every object,
        // as the interface's field, and the client's type condition applied to the
        // answer; one naming two fields cannot.
        let mut named: Vec<(&str, &str, &[String])> = Vec::new();
        fn collect_names<'s>(
            items: &'s [Selection],
            named: &mut Vec<(&'s str, &'s str, &'s [String])>,
        ) {
            for item in items {
                match item {
                    Selection::Field(f) => named.push((&f.response_key, &f.name, &f.arguments)),
                    Selection::InlineFragment(i) => collect_names(&i.selection_set.items, named),
                }
            }
        }
        collect_names(&set.items, &mut named);
        let one_field = |f: &Field| {
            named
                .iter()
                .filter(|(k, _, _)| *k == f.response_key)
                .all(|(_, n, a)| *n == f.name && *a == f.arguments.as_slice())
        };
        let mut local = Vec::new();
        // Fields another `@interfaceObject` of the interface resolves, each with the
        // conditions of the fragment it came from.
        let mut elsewhere: Vec<(Field, Vec<usize>, Vec<Condition>)> = Vec::new();
        let mut owner_items = Vec::new();
        let mut typed_fragments = false;
        // The conditions every fragment on a concrete type carries.
        let mut typed_conditions: Option<Vec<Condition>> = None;
        for item in &set.items {
            match item {
                Selection::Field(f)
                    if f.name != "__typename"
                        && (provided.iter().any(|p| p.name == f.name)
                            || self.sg.can_resolve(iface, &f.name, graph, self.labels)) =>
                {
                    local.push(item.clone());
                }
                Selection::Field(f) => {
                    let targets = io_targets(f);
                    if targets.is_empty() {
                        owner_items.push(item.clone());
                    } else {
                        elsewhere.push((f.clone(), targets, Vec::new()));
                    }
                }
                Selection::InlineFragment(frag)
                    if frag.type_condition.as_deref().is_none_or(|t| t == iface) =>
                {
                    local.push(item.clone());
                }
                Selection::InlineFragment(frag) => {
                    typed_fragments = true;
                    keep_common(&mut typed_conditions, &frag.conditions);
                    let mut kept = Vec::new();
                    for inner in &frag.selection_set.items {
                        let Selection::Field(f) = inner else {
                            kept.push(inner.clone());
                            continue;
                        };
                        let on_iface = self
                            .sg
                            .types
                            .get(iface)
                            .is_some_and(|t| t.fields.contains_key(&f.name));
                        if f.name == "__typename" || !on_iface || !one_field(f) {
                            kept.push(inner.clone());
                            continue;
                        }
                        // The fragment's @skip/@include move onto the field (unless it
                        // has its own of the same name: one directive cannot repeat).
                        let directive_name = |d: &String| -> String {
                            d.split('(').next().unwrap_or_default().trim().to_string()
                        };
                        if frag.directives.iter().any(|d| {
                            f.directives
                                .iter()
                                .any(|o| directive_name(o) == directive_name(d))
                        }) {
                            kept.push(inner.clone());
                            continue;
                        }
                        let mut as_iface = Field {
                            parent_type: iface.to_string(),
                            output: None,
                            ..f.clone()
                        };
                        as_iface.directives = frag.directives.clone();
                        as_iface.directives.extend(f.directives.iter().cloned());
                        as_iface.conditions = frag.conditions.clone();
                        as_iface.conditions.extend(f.conditions.iter().cloned());
                        add_vars(&mut as_iface.variables, &frag.variables);
                        if self.sg.can_resolve(iface, &f.name, graph, self.labels) {
                            local.push(Selection::Field(as_iface));
                            continue;
                        }
                        let targets = io_targets(f);
                        if targets.is_empty() {
                            kept.push(inner.clone());
                        } else {
                            elsewhere.push((as_iface, targets, Vec::new()));
                        }
                    }
                    if !kept.is_empty() {
                        owner_items.push(Selection::InlineFragment(InlineFragment {
                            selection_set: SelectionSet {
                                type_name: frag.selection_set.type_name.clone(),
                                items: kept,
                            },
                            ..frag.clone()
                        }));
                    }
                }
            }
        }
        let mut out = Vec::new();
        // Asked there straight away, by the interface's key: such a field needs no
        // concrete type, so it does not wait for the owner's answer.
        for (f, targets, fragment_conditions) in elsewhere {
            // The objects here are known by the interface's name until the owner's
            // answer (if asked for) gives their concrete type; either is sent as it.
            let mut sent_as = self.sg.possible_types(iface);
            sent_as.push(iface.to_string());
            let jump = Jump {
                type_name: iface.to_string(),
                targets,
                requires_of: Some(f.name.clone()),
                interface_object_of: sent_as,
                coordinate: format!("{iface}.{}", f.name),
                items: vec![Selection::Field(f.clone())],
            };
            let depth = self.enter_conditions(&fragment_conditions);
            self.enter_conditions(&f.conditions);
            let attached = self.attach(graph, jump, path, &mut out, children);
            self.conditions.borrow_mut().truncate(depth);
            attached?;
        }
        let mut remote = owner_items;
        // The owner is asked only where something it answers is not left out: the
        // conditions common to what it is asked for, and to every fragment on a
        // concrete type (each needs the concrete type it answers).
        let mut owner_conditions: Option<Vec<Condition>> = typed_conditions;
        for item in &remote {
            let conditions = match item {
                Selection::Field(f) => &f.conditions,
                Selection::InlineFragment(i) => &i.conditions,
            };
            keep_common(&mut owner_conditions, conditions);
        }
        if typed_fragments && remote.is_empty() {
            // Only the owner knows the concrete type the client's type conditions need,
            // and only where one of those fragments is not left out.
            remote.push(typename_field(iface));
        }
        let owner_conditions = owner_conditions.unwrap_or_default();
        if !remote.is_empty() {
            // The owner also answers the concrete `__typename`, which replaces the
            // interface name this subgraph returns, so type conditions apply later.
            remote.push(typename_field(iface));
            let targets: Vec<usize> = self
                .sg
                .types
                .get(iface)
                .map(|t| {
                    t.graphs
                        .iter()
                        .filter(|g| !g.is_interface_object && g.graph != graph)
                        .map(|g| g.graph)
                        .collect()
                })
                .unwrap_or_default();
            let jump = Jump {
                type_name: iface.to_string(),
                targets,
                items: remote,
                requires_of: None,
                interface_object_of: Vec::new(),
                coordinate: format!("the concrete types of {iface}"),
            };
            let depth = self.enter_conditions(&owner_conditions);
            let attached = self.attach(graph, jump, path, &mut out, children);
            self.conditions.borrow_mut().truncate(depth);
            attached?;
        }
        let mut here = SelectionSet {
            type_name: iface.to_string(),
            items: Vec::new(),
        };
        for item in local {
            match item {
                Selection::InlineFragment(frag) => here.items.extend(frag.selection_set.items),
                other => here.items.push(other),
            }
        }
        // Recursion sees only fields this subgraph resolves, so it cannot come back here
        // with anything left to send elsewhere.
        for item in &here.items {
            let Selection::Field(f) = item else { continue };
            out.push(self.local_field(graph, iface, f, path, children, vars, provided)?);
        }
        Ok(out)
    }

    /// The subgraphs where `iface` is an `@interfaceObject` resolving `field`.
    fn interface_object_graphs(&self, iface: &str, field: &str) -> Vec<usize> {
        (0..self.sg.graphs.len())
            .filter(|g| {
                self.sg.is_interface_object_in(iface, *g)
                    && self.sg.can_resolve(iface, field, *g, self.labels)
            })
            .collect()
    }

    /// A field no subgraph resolves on `type_name` itself but an `@interfaceObject` of
    /// the interface (or of an interface the type implements) does.
    fn interface_object_jump(&self, type_name: &str, f: &Field) -> Option<Jump> {
        let io_graphs = |iface: &str| self.interface_object_graphs(iface, &f.name);
        let (iface, runtime) = if self.sg.is_abstract(type_name) {
            (type_name.to_string(), self.sg.possible_types(type_name))
        } else {
            let field = self.sg.types.get(type_name)?.fields.get(&f.name)?;
            if !field.via_interface_object {
                return None;
            }
            let iface = self
                .sg
                .interfaces_of(type_name)
                .into_iter()
                .find(|i| !io_graphs(i).is_empty())?;
            (iface, vec![type_name.to_string()])
        };
        let targets = io_graphs(&iface);
        if targets.is_empty() {
            return None;
        }
        let mut field = f.clone();
        field.parent_type = iface.clone();
        Some(Jump {
            coordinate: format!("{iface}.{}", f.name),
            type_name: iface,
            targets,
            items: vec![Selection::Field(field)],
            requires_of: Some(f.name.clone()),
            interface_object_of: runtime,
        })
    }

    /// Plans `field` of `type_name`, which `from` cannot resolve, as an entity fetch.
    fn jump(
        &self,
        from: usize,
        type_name: &str,
        field: &Field,
        path: &[PathSegment],
        out: &mut Vec<Out>,
        children: &mut Vec<Group>,
    ) -> Result<(), PlanError> {
        let coordinate = format!("{type_name}.{}", field.name);
        let targets = self.qg.resolving_graphs(type_name, &field.name);
        if targets.is_empty() {
            return Err(PlanError::Unresolvable(coordinate));
        }
        if let Some(target) = targets.iter().copied().find(|t| {
            !self
                .sg
                .context_arguments(type_name, &field.name, *t)
                .is_empty()
        }) {
            return self.context_field(from, target, type_name, field, path, out, children);
        }
        let jump = Jump {
            type_name: type_name.to_string(),
            targets,
            items: vec![Selection::Field(field.clone())],
            requires_of: Some(field.name.clone()),
            interface_object_of: Vec::new(),
            coordinate,
        };
        // The field's own conditions guard the fetch it goes to and the fetches of its
        // `@requires` inputs alike: no one needs the inputs of a field left out.
        let depth = self.enter_conditions(&field.conditions);
        let attached = self.attach(from, jump, path, out, children);
        self.conditions.borrow_mut().truncate(depth);
        attached.map(|_| ())
    }

    /// Adds `jump.items` to an entity fetch from `from` at `path`: picks the target and
    /// a key `from` can supply, selects the key (and `@requires` inputs) in `out`, and
    /// plans the items in the (possibly shared) child fetch.
    fn attach(
        &self,
        from: usize,
        jump: Jump,
        path: &[PathSegment],
        out: &mut Vec<Out>,
        children: &mut Vec<Group>,
    ) -> Result<usize, PlanError> {
        let type_name = jump.type_name.as_str();
        // Prefer a subgraph this path already fetches from, so fields share one fetch.
        let mut ordered: Vec<usize> = jump
            .targets
            .iter()
            .copied()
            .filter(|t| children.iter().any(|c| c.graph == *t && c.path == path))
            .collect();
        let rest: Vec<usize> = jump
            .targets
            .iter()
            .copied()
            .filter(|t| !ordered.contains(t))
            .collect();
        ordered.extend(rest);
        let choice = ordered.iter().find_map(|t| {
            self.sg
                .resolvable_keys(type_name, *t)
                .into_iter()
                .find(|k| self.sg.can_provide(type_name, &k.fields, from, self.labels))
                .map(|k| (*t, k.fields.clone()))
        });
        let Some((target, key)) = choice else {
            if let Some(hop) = self.first_hop(type_name, from, &jump.targets) {
                // No target takes a key `from` has, but one is reachable through `hop`:
                // jump there first; planning the items from there jumps on (with a key
                // `hop` supplies), as often as the chain needs.
                let via = Jump {
                    type_name: jump.type_name.clone(),
                    targets: vec![hop],
                    items: jump.items,
                    requires_of: None,
                    interface_object_of: Vec::new(),
                    coordinate: jump.coordinate,
                };
                return self.attach(from, via, path, out, children);
            }
            let names: Vec<&str> = jump
                .targets
                .iter()
                .map(|t| self.sg.graphs[*t].name.as_str())
                .collect();
            return Err(PlanError::NoKey {
                coordinate: jump.coordinate,
                reason: format!(
                    "subgraph '{}' has no key of {type_name} that {} can resolve it by",
                    names.join("', '"),
                    self.sg.graphs[from].name
                ),
            });
        };
        ensure_fields(out, &key, true);
        let requires: Vec<field_set::Selection> = jump
            .requires_of
            .as_deref()
            .map(|f| self.sg.requires(type_name, f, target).to_vec())
            .unwrap_or_default();
        let mut stage = 0;
        let mut carried = Vec::new();
        let mut inputs = Vec::new();
        if !requires.is_empty() {
            match field_set::simple(&requires) {
                Some(items) if self.sg.can_provide(type_name, &items, from, self.labels) => {
                    // Inputs come from the subgraph we jump from, in the same fetch as
                    // the key.
                    ensure_fields(out, &items, false);
                    carried = Required::from_items(&items);
                }
                _ => {
                    // Inputs `from` lacks (or with arguments or type conditions) are
                    // fetched like client fields at this path (possibly from other
                    // subgraphs); this fetch then runs after them.
                    let wanted = self.required_selection(type_name, &requires);
                    let mut vars = Vec::new();
                    let sub = self.build(from, &wanted, path, children, &mut vars)?;
                    merge_outs(out, sub);
                    if !self.provides_all(from, type_name, &requires) {
                        // After the fetches that bring the inputs (an input may itself
                        // have needed inputs: a chain of @requires, each a stage
                        // later), and only those: a fetch that brings none of them
                        // neither delays this one nor is fetched again for it.
                        response_keys(&wanted, &mut inputs);
                        stage = 1 + providers_stage(children, path, &inputs).unwrap_or_else(|| {
                            children
                                .iter()
                                .filter(|c| c.path == path)
                                .map(|c| c.stage)
                                .max()
                                .unwrap_or(0)
                        });
                    }
                    carried = self.required_inputs(&wanted);
                }
            }
        }
        let idx = match children.iter().position(|c| {
            c.graph == target
                && c.path == path
                && c.stage == stage
                && c.entity.as_ref().is_some_and(|(t, _)| t == type_name)
        }) {
            Some(i) => i,
            None => {
                let mut g = Group::new(target, path.to_vec(), Some((type_name.to_string(), key)));
                g.stage = stage;
                children.push(g);
                children.len() - 1
            }
        };
        let child = &mut children[idx];
        child.asked_under(&self.conditions.borrow());
        merge_required(&mut child.requires, &carried);
        add_vars(&mut child.inputs, &inputs);
        for t in jump.interface_object_of {
            if !child.interface_object_of.contains(&t) {
                child.interface_object_of.push(t);
            }
        }
        let single = SelectionSet {
            type_name: type_name.to_string(),
            items: jump.items,
        };
        let Group {
            children: grand,
            variables,
            selections,
            ..
        } = child;
        // The representations carry the field's @requires inputs: planning it in this
        // fetch asks for it here, not by another entity fetch.
        let met = jump
            .requires_of
            .as_ref()
            .map(|f| (type_name.to_string(), f.clone(), target));
        if let Some(m) = &met {
            self.requires_met.borrow_mut().push(m.clone());
        }
        self.entity_root.set(true);
        self.entity_fetches.borrow_mut().push(EntityFrame {
            type_name: type_name.to_string(),
            graph: target,
            path: path.to_vec(),
            frames_at: self.frames.borrow().len(),
            contexts: Vec::new(),
        });
        let built = self.build(target, &single, path, grand, variables);
        let read_here = self
            .entity_fetches
            .borrow_mut()
            .pop()
            .map(|e| e.contexts)
            .unwrap_or_default();
        if met.is_some() {
            self.requires_met.borrow_mut().pop();
        }
        merge_outs(selections, built?);
        add_contexts(&mut children[idx].contexts, read_here);
        Ok(idx)
    }

    /// Whether `graph` resolves `type_name.field` only from `@requires` inputs that the
    /// fetch being planned does not carry: then the field must come by an entity fetch
    /// (to `graph` itself, if need be) whose representations carry them.
    fn needs_inputs(&self, type_name: &str, field: &str, graph: usize) -> bool {
        !self.sg.requires(type_name, field, graph).is_empty()
            && !self
                .requires_met
                .borrow()
                .iter()
                .any(|(t, f, g)| t == type_name && f == field && *g == graph)
    }

    /// The first subgraph on the shortest chain of entity jumps from `from` to one of
    /// `targets` for `type_name`, each jump by a key the subgraph before can supply
    /// (`None` when `from` reaches a target directly, or none at all): a path over the
    /// query graph's key edges.
    fn first_hop(&self, type_name: &str, from: usize, targets: &[usize]) -> Option<usize> {
        let path = self.qg.key_path(type_name, from, targets)?;
        (path.len() > 1).then(|| path[0])
    }

    /// The selection objects of `type_name` add because a field below reads one of
    /// the type's contexts: `__typename` (to find the object) and the context's fields.
    fn context_selection(&self, type_name: &str) -> Option<SelectionSet> {
        let mut extra: Option<SelectionSet> = None;
        for (ctx, fields) in &self.used_contexts {
            let carries = self
                .sg
                .contexts
                .get(ctx)
                .is_some_and(|types| types.iter().any(|t| t == type_name));
            if carries {
                let set = extra.get_or_insert_with(|| SelectionSet {
                    type_name: type_name.to_string(),
                    items: vec![typename_field(type_name)],
                });
                set.items.extend(
                    self.required_selection(type_name, &field_set::selections(fields))
                        .items,
                );
            }
        }
        extra
    }

    /// `f` with each `@fromContext` argument of `type_name.f` in `graph` passed as a
    /// variable, and where each variable's value is read. The entity fetch of
    /// `fetch_type` at `fetch_path` reads one value per representation for the field
    /// however often it is selected, so it has one variable for it (two would make
    /// the field's arguments conflict where the selections merge).
    fn with_context_arguments(
        &self,
        graph: usize,
        fetch_type: &str,
        fetch_path: &[PathSegment],
        type_name: &str,
        f: &Field,
    ) -> Result<(Field, Vec<ContextValue>), PlanError> {
        let coordinate = format!("{type_name}.{}", f.name);
        let mut field = f.clone();
        let mut uses = Vec::new();
        for arg in self.sg.context_arguments(type_name, &f.name, graph) {
            let selection = arg.selection.clone().map_err(|reason| PlanError::Context {
                coordinate: coordinate.clone(),
                reason,
            })?;
            let mut chain = Vec::new();
            let mut level = selection.as_slice();
            while let [only] = level {
                chain.push(only.name.clone());
                level = &only.selections;
            }
            if !level.is_empty() || chain.is_empty() {
                return Err(PlanError::Context {
                    coordinate,
                    reason: "it must select exactly one field (at each level)".into(),
                });
            }
            let fetch = format!(
                "{graph} {fetch_type} {fetch_path:?} {coordinate}({})",
                arg.name
            );
            let variable = self
                .context_names
                .borrow_mut()
                .entry(fetch)
                .or_insert_with(|| {
                    let n = self.context_vars.get();
                    self.context_vars.set(n + 1);
                    format!("contextualArgument_{n}")
                })
                .clone();
            field.arguments.push(format!("{}: ${variable}", arg.name));
            uses.push(ContextValue {
                variable,
                ty: arg.ty.clone(),
                types: self
                    .sg
                    .contexts
                    .get(&arg.context)
                    .cloned()
                    .unwrap_or_default(),
                path: chain,
            });
        }
        Ok((field, uses))
    }

    /// A field with `@fromContext` arguments planned in the entity fetch being built,
    /// when that fetch's own objects are the nearest carriers of every context it
    /// reads (no object between them and the field carries one): the values then
    /// come with each representation, and no second fetch is needed. `None` otherwise.
    fn inline_context_field(
        &self,
        graph: usize,
        type_name: &str,
        f: &Field,
        path: &[PathSegment],
        children: &mut Vec<Group>,
        vars: &mut Vec<String>,
    ) -> Option<Result<Out, PlanError>> {
        let carries = |ctx: &str, ty: &str| {
            self.sg.contexts.get(ctx).is_some_and(|types| {
                types.iter().any(|t| {
                    t == ty || (self.sg.is_abstract(ty) && self.sg.possible_types(ty).contains(t))
                })
            })
        };
        {
            let fetches = self.entity_fetches.borrow();
            let top = fetches.last()?;
            if top.graph != graph {
                return None;
            }
            let frames = self.frames.borrow();
            let between: Vec<&str> = frames
                .get(top.frames_at..)
                .unwrap_or_default()
                .iter()
                .filter_map(|fr| match &fr.selection {
                    Selection::Field(field) => Some(field.type_name.as_str()),
                    Selection::InlineFragment(i) => i.type_condition.as_deref(),
                })
                .chain((type_name != top.type_name).then_some(type_name))
                .collect();
            let args = self.sg.context_arguments(type_name, &f.name, graph);
            let nearest = args.iter().all(|a| {
                carries(&a.context, &top.type_name)
                    && !between.iter().any(|t| carries(&a.context, t))
            });
            if args.is_empty() || !nearest {
                return None;
            }
        }
        Some((|| {
            let (fetch_type, fetch_path) = {
                let fetches = self.entity_fetches.borrow();
                let top = fetches.last();
                (
                    top.map(|t| t.type_name.clone()).unwrap_or_default(),
                    top.map(|t| t.path.clone()).unwrap_or_default(),
                )
            };
            let (field, uses) =
                self.with_context_arguments(graph, &fetch_type, &fetch_path, type_name, f)?;
            if let Some(top) = self.entity_fetches.borrow_mut().last_mut() {
                add_contexts(&mut top.contexts, uses);
            }
            self.local_field(graph, type_name, &field, path, children, vars, &[])
        })())
    }

    /// A field with `@fromContext` arguments not planned inline (see
    /// [`Planner::inline_context_field`]): resolved through an entity fetch of its
    /// parent (even from the same subgraph), whose variables carry the context values.
    #[allow(clippy::too_many_arguments)]
    fn context_field(
        &self,
        from: usize,
        graph: usize,
        type_name: &str,
        f: &Field,
        path: &[PathSegment],
        out: &mut Vec<Out>,
        children: &mut Vec<Group>,
    ) -> Result<(), PlanError> {
        let coordinate = format!("{type_name}.{}", f.name);
        let jump = Jump {
            type_name: type_name.to_string(),
            targets: vec![graph],
            items: Vec::new(),
            requires_of: Some(f.name.clone()),
            interface_object_of: Vec::new(),
            coordinate: coordinate.clone(),
        };
        let idx = self.attach(from, jump, path, out, children)?;
        let (field, uses) = self.with_context_arguments(graph, type_name, path, type_name, f)?;
        let child = &mut children[idx];
        add_contexts(&mut child.contexts, uses);
        let Group {
            children: grand,
            variables,
            selections,
            ..
        } = child;
        let out_field = self.local_field(graph, type_name, &field, path, grand, variables, &[])?;
        selections.push(out_field);
        Ok(())
    }

    /// A `@requires` field set as a selection, as if the client had asked for it; a
    /// field with arguments under its [`required_alias`].
    fn required_selection(&self, type_name: &str, set: &[field_set::Selection]) -> SelectionSet {
        let items = set
            .iter()
            .map(|item| match item {
                field_set::Selection::Field {
                    name,
                    arguments,
                    selections,
                } => {
                    let inner = self.sg.field_type_name(type_name, name).unwrap_or_default();
                    let alias = required_alias(name, arguments);
                    Selection::Field(Field {
                        response_key: alias.clone().unwrap_or_else(|| name.clone()),
                        name: name.clone(),
                        alias,
                        arguments: arguments.clone(),
                        directives: Vec::new(),
                        conditions: Vec::new(),
                        variables: Vec::new(),
                        parent_type: type_name.to_string(),
                        type_name: inner.clone(),
                        output: None,
                        selection_set: (!selections.is_empty())
                            .then(|| self.required_selection(&inner, selections)),
                    })
                }
                field_set::Selection::InlineFragment {
                    type_condition,
                    selections,
                } => {
                    let on = type_condition
                        .clone()
                        .unwrap_or_else(|| type_name.to_string());
                    Selection::InlineFragment(InlineFragment {
                        type_condition: type_condition.clone(),
                        directives: Vec::new(),
                        conditions: Vec::new(),
                        variables: Vec::new(),
                        selection_set: self.required_selection(&on, selections),
                    })
                }
            })
            .collect();
        SelectionSet {
            type_name: type_name.to_string(),
            items,
        }
    }

    /// What the representations carry for a `@requires` selection as
    /// [`Planner::required_selection`] built it: each field under its name (read from
    /// its alias), a fragment's fields only for its possible types, and the runtime
    /// type of an abstract field that fragments look at.
    fn required_inputs(&self, set: &SelectionSet) -> Vec<Required> {
        set.items
            .iter()
            .map(|item| match item {
                Selection::Field(f) => {
                    let mut selections = Vec::new();
                    if let Some(ss) = &f.selection_set {
                        if self.sg.is_abstract(&ss.type_name) {
                            selections.push(Required::Field {
                                name: "__typename".into(),
                                alias: None,
                                arguments: Vec::new(),
                                selections: Vec::new(),
                            });
                        }
                        selections.extend(self.required_inputs(ss));
                    }
                    Required::Field {
                        name: f.name.clone(),
                        alias: f.alias.clone(),
                        arguments: f.arguments.clone(),
                        selections,
                    }
                }
                Selection::InlineFragment(frag) => {
                    let on = frag.selection_set.type_name.clone();
                    let types = if self.sg.is_abstract(&on) {
                        self.sg.possible_types(&on)
                    } else {
                        vec![on.clone()]
                    };
                    Required::Fragment {
                        selections: self.required_inputs(&frag.selection_set),
                        on,
                        types,
                    }
                }
            })
            .collect()
    }

    /// Whether `graph` itself resolves every field of a `@requires` field set.
    fn provides_all(&self, graph: usize, type_name: &str, set: &[field_set::Selection]) -> bool {
        set.iter().all(|item| match item {
            field_set::Selection::Field {
                name, selections, ..
            } => {
                self.sg.can_resolve(type_name, name, graph, self.labels)
                    && !self.needs_inputs(type_name, name, graph)
                    && (selections.is_empty()
                        || self
                            .sg
                            .field_type_name(type_name, name)
                            .is_some_and(|inner| self.provides_all(graph, &inner, selections)))
            }
            field_set::Selection::InlineFragment {
                type_condition,
                selections,
            } => {
                let on = type_condition.as_deref().unwrap_or(type_name);
                self.provides_all(graph, on, selections)
            }
        })
    }

    fn graph_for_root(
        &self,
        root: &str,
        f: &Field,
        preferred: &[usize],
    ) -> Result<usize, PlanError> {
        // Among the subgraphs resolving the field (several for a @shareable root field),
        // the one lacking the fewest fields of its selection (each lacking field costs
        // a fetch elsewhere), then one already fetched from, then supergraph order.
        let graphs = self.qg.resolving_graphs(root, &f.name);
        graphs
            .iter()
            .copied()
            .min_by_key(|g| {
                let missing = f
                    .selection_set
                    .as_ref()
                    .map(|ss| self.missing_in(*g, ss))
                    .unwrap_or(0);
                (missing, !preferred.contains(g))
            })
            .ok_or_else(|| PlanError::Unresolvable(format!("{root}.{}", f.name)))
    }

    /// How many fields of `set` (down through value types; an entity's own fields are
    /// fetched by key anyway) `graph` cannot resolve.
    fn missing_in(&self, graph: usize, set: &SelectionSet) -> usize {
        set.items
            .iter()
            .map(|item| match item {
                Selection::Field(f) if f.name.starts_with("__") => 0,
                Selection::Field(f) => {
                    if !self
                        .sg
                        .can_resolve(&set.type_name, &f.name, graph, self.labels)
                    {
                        return 1;
                    }
                    match &f.selection_set {
                        Some(ss) if !self.is_entity(&ss.type_name) => self.missing_in(graph, ss),
                        _ => 0,
                    }
                }
                Selection::InlineFragment(frag) => self.missing_in(graph, &frag.selection_set),
            })
            .sum()
    }

    /// A query's shared root field (several subgraphs resolve it) whose selection `best`
    /// lacks some fields, asked of several of those subgraphs at once, each for the
    /// fields it resolves whole: as many requests as `best` plus entity fetches for the
    /// rest, but side by side instead of one after the other (the subgraphs sharing a
    /// field answer it alike, which is what `@shareable` promises). `None` when `best`
    /// has it all, or when some field is resolved whole by none of them at the root.
    fn split_shared_root(
        &self,
        root: &str,
        f: &Field,
        best: usize,
        preferred: &[usize],
    ) -> Option<Vec<(usize, Field)>> {
        if self.op.kind != OperationKind::Query {
            return None;
        }
        let ss = f.selection_set.as_ref()?;
        let graphs = self.qg.resolving_graphs(root, &f.name);
        if graphs.len() < 2 || self.missing_in(best, ss) == 0 {
            return None;
        }
        // `best` first, then subgraphs fetched from anyway, then the rest.
        let mut order = vec![best];
        order.extend(
            graphs
                .iter()
                .copied()
                .filter(|g| *g != best && preferred.contains(g)),
        );
        order.extend(
            graphs
                .iter()
                .copied()
                .filter(|g| *g != best && !preferred.contains(g)),
        );
        let mut parts: Vec<(usize, Vec<Selection>)> = Vec::new();
        for item in &ss.items {
            let Selection::Field(sub) = item else {
                return None;
            };
            let whole_in = |g: usize| {
                sub.name.starts_with("__")
                    || (self
                        .sg
                        .can_resolve(&ss.type_name, &sub.name, g, self.labels)
                        && !self.needs_inputs(&ss.type_name, &sub.name, g)
                        && self.resolves_for_every_type(g, &ss.type_name, &sub.name)
                        && sub.selection_set.as_ref().is_none_or(|inner| {
                            self.is_entity(&inner.type_name) || self.missing_in(g, inner) == 0
                        }))
            };
            let g = order.iter().copied().find(|g| whole_in(*g))?;
            match parts.iter_mut().find(|(pg, _)| *pg == g) {
                Some((_, items)) => items.push(item.clone()),
                None => parts.push((g, vec![item.clone()])),
            }
        }
        parts.sort_by_key(|(g, _)| order.iter().position(|o| o == g));
        Some(
            parts
                .into_iter()
                .map(|(g, items)| {
                    let mut copy = f.clone();
                    copy.selection_set = Some(SelectionSet {
                        type_name: ss.type_name.clone(),
                        items,
                    });
                    (g, copy)
                })
                .collect(),
        )
    }

    /// Splits root selections by subgraph, keeping order; inline fragments are split
    /// into one copy per subgraph holding that subgraph's fields.
    fn split_root(
        &self,
        root: &str,
        items: &[Selection],
        preferred: &mut Vec<usize>,
    ) -> Result<Vec<(usize, Selection)>, PlanError> {
        let mut out = Vec::new();
        for item in items {
            match item {
                Selection::Field(f) if f.name.starts_with("__") => {}
                Selection::Field(f) => {
                    let g = self.graph_for_root(root, f, preferred)?;
                    let parts = match self.split_shared_root(root, f, g, preferred) {
                        Some(parts) => parts,
                        None => vec![(g, f.clone())],
                    };
                    for (g, f) in parts {
                        if !preferred.contains(&g) {
                            preferred.push(g);
                        }
                        out.push((g, Selection::Field(f)));
                    }
                }
                Selection::InlineFragment(frag) => {
                    let parts = self.split_root(root, &frag.selection_set.items, preferred)?;
                    let mut graphs: Vec<usize> = Vec::new();
                    for (g, _) in &parts {
                        if !graphs.contains(g) {
                            graphs.push(*g);
                        }
                    }
                    for g in graphs {
                        let mut copy = frag.clone();
                        copy.selection_set.items = parts
                            .iter()
                            .filter(|(pg, _)| *pg == g)
                            .map(|(_, s)| s.clone())
                            .collect();
                        out.push((g, Selection::InlineFragment(copy)));
                    }
                }
            }
        }
        Ok(out)
    }

    /// Subgraphs that some root field is best fetched from: the only one resolving it,
    /// or the only one lacking the fewest fields of its selection. A field several
    /// subgraphs resolve equally well (`@shareable`) then joins one of those fetches.
    fn required_root_graphs(&self, root: &str, items: &[Selection], out: &mut Vec<usize>) {
        for item in items {
            match item {
                Selection::Field(f) if !f.name.starts_with("__") => {
                    let graphs = self.qg.resolving_graphs(root, &f.name);
                    let missing: Vec<usize> = graphs
                        .iter()
                        .map(|g| {
                            f.selection_set
                                .as_ref()
                                .map(|ss| self.missing_in(*g, ss))
                                .unwrap_or(0)
                        })
                        .collect();
                    let fewest = missing.iter().copied().min().unwrap_or(0);
                    let best: Vec<usize> = graphs
                        .iter()
                        .zip(&missing)
                        .filter(|(_, m)| **m == fewest)
                        .map(|(g, _)| *g)
                        .collect();
                    if let [only] = best[..]
                        && !out.contains(&only)
                    {
                        out.push(only);
                    }
                }
                Selection::Field(_) => {}
                Selection::InlineFragment(frag) => {
                    self.required_root_graphs(root, &frag.selection_set.items, out)
                }
            }
        }
    }

    fn root_groups(&self, root: &str) -> Result<Vec<Group>, PlanError> {
        let mut preferred = Vec::new();
        if self.op.kind != OperationKind::Mutation {
            self.required_root_graphs(root, &self.op.selection_set.items, &mut preferred);
        }
        let parts = self.split_root(root, &self.op.selection_set.items, &mut preferred)?;
        // Queries: one fetch per subgraph. Mutations: consecutive fields of one subgraph
        // share a fetch, and the order of fields is kept across fetches.
        let mut batches: Vec<(usize, Vec<Selection>)> = Vec::new();
        for (g, sel) in parts {
            let reuse = match self.op.kind {
                OperationKind::Mutation => batches.last_mut().filter(|(bg, _)| *bg == g),
                _ => batches.iter_mut().find(|(bg, _)| *bg == g),
            };
            match reuse {
                Some((_, items)) => items.push(sel),
                None => batches.push((g, vec![sel])),
            }
        }
        // A query's root is where value-type fields a subgraph lacks below a root field
        // are fetched again from (as the same root field, from a subgraph that has
        // them); each round adds those to that subgraph's fetch and plans again.
        let reenter = self.op.kind == OperationKind::Query;
        for _round in 0..=self.sg.graphs.len() {
            let mut groups = Vec::new();
            let mut more: Vec<(usize, Selection)> = Vec::new();
            for (g, items) in &batches {
                let mut group = Group::new(*g, Vec::new(), None);
                let set = SelectionSet {
                    type_name: root.to_string(),
                    items: items.clone(),
                };
                if reenter {
                    // The root's frame only anchors chains; its field is never used.
                    self.push_frame(typename_field(root), Some(root));
                }
                let Group {
                    children,
                    variables,
                    selections,
                    ..
                } = &mut group;
                let built = self.build(*g, &set, &[], children, variables);
                let frame = if reenter {
                    self.frames.borrow_mut().pop()
                } else {
                    None
                };
                *selections = built?;
                for item in frame.map(|f| f.reentries).unwrap_or_default() {
                    let target = (0..self.sg.graphs.len())
                        .filter(|t| t != g && self.resolves_chain(*t, root, &item))
                        .min_by_key(|t| (!batches.iter().any(|(bg, _)| bg == t), *t));
                    match target {
                        Some(t) => more.push((t, item)),
                        None => {
                            return Err(PlanError::Unresolvable(format!(
                                "a field below {root} in subgraph '{}'",
                                self.sg.graphs[*g].name
                            )));
                        }
                    }
                }
                groups.push(group);
            }
            let mut added = false;
            for (t, item) in more {
                match batches.iter_mut().find(|(bg, _)| *bg == t) {
                    Some((_, items)) if items.contains(&item) => {}
                    Some((_, items)) => {
                        items.push(item);
                        added = true;
                    }
                    None => {
                        batches.push((t, vec![item]));
                        added = true;
                    }
                }
            }
            if !added {
                return Ok(groups);
            }
        }
        Err(PlanError::Unsupported(
            "root fields whose selections move between subgraphs without end",
        ))
    }

    /// The operation sent for `group`; for an entity fetch also the selection set under
    /// `_entities` and the variable definitions besides `$representations` (what a
    /// batch is built from).
    fn operation_text(
        &self,
        group: &Group,
        counter: &mut usize,
        renames: &mut Vec<Rename>,
    ) -> (String, String, Vec<String>) {
        let service = &self.sg.graphs[group.graph].name;
        let mut defs: Vec<String> = Vec::new();
        if group.entity.is_some() {
            defs.push("$representations: [_Any!]!".into());
        }
        for c in &group.contexts {
            defs.push(format!("${}: {}", c.variable, c.ty));
        }
        for v in &group.variables {
            if let Some(d) = self.op.variables.iter().find(|d| &d.name == v) {
                defs.push(d.text.clone());
            }
        }
        let keyword = match (&group.entity, self.op.kind) {
            (Some(_), _) => "query",
            (None, k) => k.keyword(),
        };
        let mut text = String::new();
        let name = self
            .op
            .name
            .as_ref()
            .map(|n| format!("{n}__{service}__{counter}"));
        *counter += 1;
        if name.is_some() || !defs.is_empty() || keyword != "query" {
            text.push_str(keyword);
            if let Some(n) = name {
                text.push(' ');
                text.push_str(&n);
            }
            if !defs.is_empty() {
                text.push('(');
                text.push_str(&defs.join(", "));
                text.push(')');
            }
            text.push(' ');
        }
        match &group.entity {
            Some(_) => {
                let mut inline: Vec<Out> = std::iter::once(group)
                    .chain(&group.also)
                    .filter_map(|g| {
                        let (type_name, _) = g.entity.as_ref()?;
                        // A field asked twice (by the client and as a key, say) is
                        // sent once.
                        Some(Out::Inline {
                            head: format!("... on {type_name}"),
                            sub: merged(g.selections.clone()),
                            conditions: Vec::new(),
                        })
                    })
                    .collect();
                self.alias_conflicts(&mut inline, &[], renames);
                let mut selection = String::new();
                print_out(&inline, &mut selection);
                text.push_str("{ _entities(representations: $representations) ");
                text.push_str(&selection);
                text.push_str(" }");
                let defs = defs.into_iter().skip(1).collect();
                (text, selection, defs)
            }
            None => {
                let mut items = merged(group.selections.clone());
                self.alias_conflicts(&mut items, &[], renames);
                print_out(&items, &mut text);
                (text, String::new(), Vec::new())
            }
        }
    }

    /// Aliases fields that share a response name but not a type within one selection
    /// set (across its fragments): valid for the client, whose supergraph types agree,
    /// such a selection is invalid for a subgraph whose types differ (`Int!` in one
    /// member, `Int` in another). Each alias is recorded as a rename of the answer.
    fn alias_conflicts(&self, items: &mut [Out], path: &[String], renames: &mut Vec<Rename>) {
        // The first type seen per response name, per merged selection set: fields of
        // one response key at one level merge, so their sub-selections are one set.
        let mut seen: HashMap<Vec<String>, Vec<(String, String)>> = HashMap::new();
        self.rename_level(items, path, &mut seen, renames);
    }

    fn rename_level(
        &self,
        items: &mut [Out],
        path: &[String],
        seen: &mut HashMap<Vec<String>, Vec<(String, String)>>,
        renames: &mut Vec<Rename>,
    ) {
        for item in items.iter_mut() {
            match item {
                Out::Field {
                    key, head, sub, ty, ..
                } => {
                    if let Some(t) = ty.as_deref() {
                        let first = seen.entry(path.to_vec()).or_default();
                        match first.iter().position(|(k, _)| k == key) {
                            None => first.push((key.clone(), t.to_string())),
                            Some(i) if first[i].1 != t => {
                                let alias = format!("{key}__{}", type_tag(t));
                                let prefix = format!("{key}: ");
                                *head = match head.strip_prefix(&prefix) {
                                    Some(rest) => format!("{alias}: {rest}"),
                                    None => format!("{alias}: {head}"),
                                };
                                let rename = Rename {
                                    path: path.to_vec(),
                                    from: alias.clone(),
                                    to: key.clone(),
                                };
                                if !renames.contains(&rename) {
                                    renames.push(rename);
                                }
                                *key = alias;
                            }
                            Some(_) => {}
                        }
                    }
                    if let Some(sub) = sub {
                        let mut below = path.to_vec();
                        below.push(key.clone());
                        self.rename_level(sub, &below, seen, renames);
                    }
                }
                Out::Inline { sub, .. } => self.rename_level(sub, path, seen, renames),
            }
        }
    }

    /// Where an entity fetch at the objects a field returns goes to a subgraph that is
    /// also asked, at the same level, for the parent entity holding that field, and that
    /// subgraph resolves the field too, the field rides in the parent's fetch with the
    /// child's selections below it: one request instead of two. (The field's `@provides`
    /// or ownership made the parent fetch reach the child objects; the other way there
    /// is cheaper once a request to the parent is made anyway.)
    ///
    /// `selections` and `path` are those of the fetch the level's fetches follow from:
    /// the parent entity's key is selected there beside the field, so that every
    /// object the child fetch would have found is found by the parent's fetch (the
    /// field may be asked for under other conditions than where the key was selected).
    fn ride_along(
        &self,
        graph: usize,
        selections: &mut Vec<Out>,
        path: &[PathSegment],
        children: &mut Vec<Group>,
    ) {
        let mut i = 0;
        while i < children.len() {
            let Some(hops) = self.ride_hops(children, i) else {
                i += 1;
                continue;
            };
            let hop = &hops[0];
            let host = children.iter().position(|k| {
                k.graph == children[i].graph
                    && k.path == hop.at
                    && k.stage == 0
                    && k.contexts.is_empty()
                    && k.interface_object_of.is_empty()
                    && k.entity
                        .as_ref()
                        .is_some_and(|(t, _)| *t == hop.parent_type)
            });
            let Some(k) = host else {
                i += 1;
                continue;
            };
            let key = children[k].entity.as_ref().map(|(_, key)| key.clone());
            if !key.is_some_and(|key| self.key_beside_all(selections, path, &hops, &key)) {
                i += 1;
                continue;
            }
            let j = self.wrapped(children.remove(i), &hops);
            let k = if k > i { k - 1 } else { k };
            children[k].absorb(j);
            // The parent's fetch may now take more: look at the level again.
            i = 0;
        }
        // Two or more such fetches below fields of one parent entity with no fetch of
        // it to their subgraph: one fetch of the parent (by a key this fetch has)
        // takes them all.
        'pairs: loop {
            let riders: Vec<(usize, Vec<Hop>)> = (0..children.len())
                .filter_map(|i| self.ride_hops(children, i).map(|h| (i, h)))
                .collect();
            for (n, (a, hops_a)) in riders.iter().enumerate() {
                let same: Vec<&(usize, Vec<Hop>)> = riders[n + 1..]
                    .iter()
                    .filter(|(b, hops_b)| {
                        children[*b].graph == children[*a].graph
                            && hops_b[0].at == hops_a[0].at
                            && hops_b[0].parent_type == hops_a[0].parent_type
                    })
                    .collect();
                if same.is_empty() {
                    continue;
                }
                let parent_type = hops_a[0].parent_type.clone();
                let target = children[*a].graph;
                let Some(key) = self
                    .sg
                    .resolvable_keys(&parent_type, target)
                    .into_iter()
                    .find(|k| {
                        self.sg
                            .can_provide(&parent_type, &k.fields, graph, self.labels)
                    })
                    .map(|k| k.fields.clone())
                else {
                    continue;
                };
                let all_hops: Vec<Hop> = std::iter::once(hops_a)
                    .chain(same.iter().map(|(_, h)| h))
                    .flatten()
                    .cloned()
                    .collect();
                if !self.key_beside_all(selections, path, &all_hops, &key) {
                    continue;
                }
                let mut take: Vec<usize> = std::iter::once(*a)
                    .chain(same.iter().map(|(b, _)| *b))
                    .collect();
                take.sort_unstable();
                let mut host = Group::new(target, hops_a[0].at.clone(), Some((parent_type, key)));
                for idx in take.into_iter().rev() {
                    let hops = self.ride_hops(children, idx).unwrap_or_default();
                    let j = self.wrapped(children.remove(idx), &hops);
                    host.absorb(j);
                }
                children.push(host);
                continue 'pairs;
            }
            break;
        }
        for c in children.iter_mut() {
            self.ride_along(c.graph, &mut c.selections, &c.path, &mut c.children);
        }
    }

    /// Selects `key` beside every selection of each of `hops`' fields in `selections`
    /// (of the fetch at `path`); whether each was found.
    fn key_beside_all(
        &self,
        selections: &mut Vec<Out>,
        path: &[PathSegment],
        hops: &[Hop],
        key: &[FieldSetItem],
    ) -> bool {
        hops.iter().all(|hop| {
            hop.at.starts_with(path) && key_beside(selections, &hop.at[path.len()..], hop, key)
        })
    }

    /// `j`'s fetch as a selection of the parent entity: its selections below the field
    /// of `hops`.
    fn wrapped(&self, mut j: Group, hops: &[Hop]) -> Group {
        let Some(hop) = hops.first() else {
            return j;
        };
        // Asked with different directives, it is asked once without them: the
        // response keeps only what the client's conditions let through.
        let (head, conditions) = if hops.iter().all(|h| h.head == hop.head) {
            (hop.head.clone(), hop.conditions.clone())
        } else {
            (hop.call.clone(), Vec::new())
        };
        // Only the variables the head sent uses (an unused one is invalid).
        let used: Vec<String> = hops
            .iter()
            .flat_map(|h| h.variables.iter())
            .filter(|v| uses_variable(&head, v))
            .cloned()
            .collect();
        add_vars(&mut j.variables, &used);
        let ty = self.sg.field_type_in(&hop.parent_type, &hop.name, j.graph);
        j.selections = vec![Out::Field {
            key: hop.key.clone(),
            head,
            sub: Some(std::mem::take(&mut j.selections)),
            ty,
            conditions,
        }];
        j
    }

    /// The fields `children[i]` is fetched below, when it can ride in a fetch of
    /// their parent entity (see [`Planner::ride_along`]): one field (however many
    /// directives it was asked with) that `children[i]`'s subgraph resolves, without
    /// inputs, returning the fetched entity type.
    fn ride_hops(&self, children: &[Group], i: usize) -> Option<Vec<Hop>> {
        let j = &children[i];
        let (entity, _) = j.entity.as_ref()?;
        if j.stage != 0 || !foldable(j) {
            return None;
        }
        let hops = self.hops.borrow();
        let at_j: Vec<Hop> = hops.iter().filter(|h| h.below == j.path).cloned().collect();
        let hop = at_j.first()?;
        // Two fields answering at one path (fragments on different types) are not one;
        // one field asked with different directives is.
        if at_j.iter().any(|h| {
            h.at != hop.at
                || h.parent_type != hop.parent_type
                || h.name != hop.name
                || h.call != hop.call
        }) {
            return None;
        }
        let resolves = self
            .sg
            .can_resolve(&hop.parent_type, &hop.name, j.graph, self.labels)
            && self
                .sg
                .requires(&hop.parent_type, &hop.name, j.graph)
                .is_empty()
            && self
                .sg
                .field_type_in(&hop.parent_type, &hop.name, j.graph)
                .is_some_and(|t| t.trim_matches(|c| matches!(c, '[' | ']' | '!')) == entity)
            && self.is_entity(&hop.parent_type);
        resolves.then_some(at_j)
    }

    fn node(&self, group: Group, counter: &mut usize) -> PlanNode {
        // A subscription's stream is opened whatever its variables say.
        let streamed = self.op.kind == OperationKind::Subscription && group.entity.is_none();
        let mut fresh: Vec<(String, bool)> = Vec::new();
        if !streamed {
            for g in guards(&group) {
                if !self.guarded.borrow().contains(&g) && !fresh.contains(&g) {
                    fresh.push(g);
                }
            }
        }
        self.guarded.borrow_mut().extend(fresh.iter().cloned());
        let mut node = self.unguarded_node(group, counter);
        for (variable, skip) in fresh.into_iter().rev() {
            self.guarded.borrow_mut().pop();
            node = PlanNode::Condition {
                variable,
                skip,
                node: Box::new(node),
            };
        }
        node
    }

    fn unguarded_node(&self, group: Group, counter: &mut usize) -> PlanNode {
        let mut renames = Vec::new();
        let (operation, entities_selection, variable_definitions) =
            self.operation_text(&group, counter, &mut renames);
        let fetch = FetchNode {
            service: self.sg.graphs[group.graph].name.clone(),
            operation,
            variables: group.variables.clone(),
            entity: entity_fetch(&group),
            more_entities: group.also.iter().filter_map(entity_fetch).collect(),
            renames,
            entities_selection,
            variable_definitions,
        };
        let own = if group.entity.is_some() {
            PlanNode::Flatten {
                path: group.path.clone(),
                node: Box::new(PlanNode::Fetch(fetch)),
            }
        } else {
            PlanNode::Fetch(fetch)
        };
        let children: Vec<Group> = group
            .children
            .into_iter()
            .filter(|c| !never_runs(c))
            .collect();
        if children.is_empty() {
            return own;
        }
        // Children run in parallel per stage; a later stage needs what earlier ones merged.
        let mut stages: Vec<(usize, Vec<PlanNode>)> = Vec::new();
        let mut pending = wait_only_for_inputs(share_requests(children));
        pending.sort_by_key(|c| c.stage);
        for c in pending {
            let stage = c.stage;
            let node = self.node(c, counter);
            match stages.last_mut() {
                Some((s, nodes)) if *s == stage => nodes.push(node),
                _ => stages.push((stage, vec![node])),
            }
        }
        let mut nodes = vec![own];
        for (_, stage) in stages {
            // A step that is itself a sequence is spliced in: the same order, one level.
            match parallel(stage) {
                PlanNode::Sequence { nodes: steps } => nodes.extend(steps),
                step => nodes.push(step),
            }
        }
        PlanNode::Sequence { nodes }
    }
}

/// The `@skip`/`@include` conditions on a variable that guard `group`'s fetch: those
/// on the way to every place it was asked for, then those every selection it sends
/// carries. Where one does not hold, the fetch would ask for nothing (or for what no
/// one reads), and what follows it would find nothing to fetch for.
fn guards(group: &Group) -> Vec<(String, bool)> {
    // A request shared by several entity types is needed where one of them is.
    let own = own_guards(group);
    own.into_iter()
        .filter(|g| group.also.iter().all(|a| own_guards(a).contains(g)))
        .collect()
}

fn own_guards(group: &Group) -> Vec<(String, bool)> {
    let common = group.selections.split_first().map(|(first, rest)| {
        first
            .conditions()
            .iter()
            .filter(|c| rest.iter().all(|o| o.conditions().contains(c)))
            .cloned()
            .collect::<Vec<_>>()
    });
    group
        .inherited
        .iter()
        .flatten()
        .chain(common.iter().flatten())
        .filter_map(|c| match &c.value {
            ConditionValue::Variable(v) => Some((v.clone(), c.skip)),
            ConditionValue::Const(_) => None,
        })
        .collect()
}

/// Whether every way `group`'s fetch was asked for, or every selection it sends, is
/// left out by a constant condition (`@include(if: false)`, `@skip(if: true)`): then
/// the fetch, and all that follows from its data, is never made. (A field whose
/// sub-selection alone is left out still answers whether its object is null, or how
/// long its list is: the fetch is needed.)
fn never_runs(group: &Group) -> bool {
    group.also.is_empty()
        && ((group.inherited.is_some() && !group.live)
            || (!group.selections.is_empty()
                && group
                    .selections
                    .iter()
                    .all(|o| o.conditions().iter().any(Condition::never_holds))))
}

fn entity_fetch(group: &Group) -> Option<EntityFetch> {
    group.entity.clone().map(|(type_name, key)| EntityFetch {
        type_name,
        key,
        requires: group.requires.clone(),
        interface_object_of: group.interface_object_of.clone(),
        contexts: group.contexts.clone(),
    })
}

fn parallel(mut nodes: Vec<PlanNode>) -> PlanNode {
    if nodes.len() == 1 {
        nodes.remove(0)
    } else {
        PlanNode::Parallel { nodes }
    }
}

/// Plans `op` against `sg`. The plan depends only on the operation, never on variable
/// values, so callers may cache it per operation.
pub fn plan(sg: &Supergraph, op: &Operation) -> Result<QueryPlan, PlanError> {
    plan_with_labels(sg, op, &Labels::new())
}

/// Plans `op` with the given progressive-override labels enabled (see [`Labels`]).
pub fn plan_with_labels(
    sg: &Supergraph,
    op: &Operation,
    labels: &Labels,
) -> Result<QueryPlan, PlanError> {
    let (root, kind_name) = match op.kind {
        OperationKind::Query => (sg.api.schema_definition.query.as_ref(), "Query"),
        OperationKind::Mutation => (sg.api.schema_definition.mutation.as_ref(), "Mutation"),
        OperationKind::Subscription => (
            sg.api.schema_definition.subscription.as_ref(),
            "Subscription",
        ),
    };
    let root = root.ok_or(PlanError::NoRootType(kind_name))?.to_string();
    let mut used_contexts = Vec::new();
    collect_contexts(sg, &op.selection_set, &mut used_contexts);
    // The supergraph keeps the query graph without override labels; with some on,
    // fields (and so keys) may sit elsewhere, and the graph is built for them.
    let labelled;
    let qg = if labels.is_empty() {
        sg.query_graph()
    } else {
        labelled = QueryGraph::build(sg, labels);
        &labelled
    };
    let planner = Planner {
        sg,
        qg,
        op,
        labels,
        used_contexts,
        context_vars: std::cell::Cell::new(0),
        frames: std::cell::RefCell::new(Vec::new()),
        requires_met: std::cell::RefCell::new(Vec::new()),
        conditions: std::cell::RefCell::new(Vec::new()),
        guarded: std::cell::RefCell::new(Vec::new()),
        hops: std::cell::RefCell::new(Vec::new()),
        entity_root: std::cell::Cell::new(false),
        entity_fetches: std::cell::RefCell::new(Vec::new()),
        context_names: std::cell::RefCell::new(HashMap::new()),
    };
    let mut groups = planner.root_groups(&root)?;
    for g in &mut groups {
        fold_into_later(&mut g.children);
        planner.ride_along(g.graph, &mut g.selections, &[], &mut g.children);
    }
    let mut counter = 0;
    let mut nodes: Vec<PlanNode> = groups
        .into_iter()
        .filter(|g| !never_runs(g) || op.kind == OperationKind::Subscription)
        .map(|g| planner.node(g, &mut counter))
        .collect();
    if op.kind == OperationKind::Subscription {
        return subscription_plan(nodes).map(|node| QueryPlan { node: Some(node) });
    }
    let node = match (op.kind, nodes.len()) {
        (_, 0) => None,
        (_, 1) => nodes.pop(),
        (OperationKind::Mutation, _) => Some(PlanNode::Sequence { nodes }),
        _ => Some(PlanNode::Parallel { nodes }),
    };
    // A mutation's root fields run one after another; only a query's fetches may move.
    let node = match op.kind {
        OperationKind::Query => {
            node.map(|n| crate::batch::batch(n, op.name.as_deref(), &mut counter))
        }
        _ => node,
    };
    Ok(QueryPlan { node })
}

/// A subscription has one root field (validation ensures it), hence one root fetch:
/// that fetch becomes the stream and whatever followed it runs per event.
fn subscription_plan(mut nodes: Vec<PlanNode>) -> Result<PlanNode, PlanError> {
    if nodes.len() != 1 {
        return Err(PlanError::Unsupported(
            "a subscription must select exactly one field of one subgraph",
        ));
    }
    match nodes.pop() {
        Some(PlanNode::Fetch(primary)) => Ok(PlanNode::Subscription {
            primary,
            rest: None,
        }),
        Some(PlanNode::Sequence { mut nodes }) if !nodes.is_empty() => {
            let PlanNode::Fetch(primary) = nodes.remove(0) else {
                return Err(PlanError::Unsupported("a subscription root fetch"));
            };
            let rest = if nodes.len() == 1 {
                nodes.pop()
            } else {
                Some(PlanNode::Sequence { nodes })
            };
            Ok(PlanNode::Subscription {
                primary,
                rest: rest.map(Box::new),
            })
        }
        _ => Err(PlanError::Unsupported("a subscription root fetch")),
    }
}

/// The contexts fields of `set` (at any depth) read through `@fromContext`, each with the
/// fields read from the context's object.
fn collect_contexts(
    sg: &Supergraph,
    set: &SelectionSet,
    out: &mut Vec<(String, Vec<FieldSetItem>)>,
) {
    for item in &set.items {
        match item {
            Selection::Field(f) => {
                for g in 0..sg.graphs.len() {
                    for arg in sg.context_arguments(&set.type_name, &f.name, g) {
                        let Ok(fields) = &arg.selection else { continue };
                        match out.iter_mut().find(|(c, _)| *c == arg.context) {
                            Some((_, existing)) => merge_field_sets(existing, fields),
                            None => out.push((arg.context.clone(), fields.clone())),
                        }
                    }
                }
                if let Some(ss) = &f.selection_set {
                    collect_contexts(sg, ss, out);
                }
            }
            Selection::InlineFragment(frag) => collect_contexts(sg, &frag.selection_set, out),
        }
    }
}

//! Runs a query plan: fetch nodes go to subgraphs over HTTP, `Parallel` children run
//! concurrently, `Flatten` sends every object found at its path as one de-duplicated
//! `_entities` call and merges the results back in place.
//!
//! The data gathered is a [`Node`] tree; representations are written straight into the
//! request body as JSON text (which is also what de-duplicates them), and positions are
//! kept as the list indices along a plan path, so nothing is cloned per position.

use std::hash::BuildHasher;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Instant;

use axum::body::Bytes;
use futures::future::{BoxFuture, join_all};
use hashbrown::HashTable;
use serde_json::{Map, Value};
use shop_federation::field_set::FieldSetItem;
use shop_federation::plan::{BatchNode, EntityFetch, FetchNode, PathSegment, PlanNode, Required};
use tracing::Instrument;

use super::data::{Node, Object, write_str};
use crate::Gateway;
use crate::resilience::{Outcome, Refusal};

/// A step of a concrete position in the response data.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Step {
    Key(String),
    Index(usize),
}

pub fn path_json(path: &[Step]) -> Value {
    Value::Array(
        path.iter()
            .map(|s| match s {
                Step::Key(k) => Value::String(k.clone()),
                Step::Index(i) => Value::from(*i),
            })
            .collect(),
    )
}

/// What one request's execution accumulates.
pub struct ExecState {
    pub data: Mutex<Node>,
    pub errors: Mutex<Vec<Value>>,
    /// Bytes of subgraph answers read so far; past the response limit no more are read
    /// or asked for, and the response becomes `RESPONSE_TOO_LARGE`.
    pub(crate) received: AtomicUsize,
    /// Set once the limit was passed.
    pub too_large: AtomicBool,
}

pub struct ExecContext<'a> {
    pub variables: &'a Map<String, Value>,
    pub authorization: Option<&'a str>,
    pub forwarded_for: Option<&'a str>,
    pub uploads: Option<&'a std::sync::Arc<crate::uploads::Uploads>>,
    /// Whether identical subgraph requests in flight may share one answer (reads only).
    pub dedupe: bool,
    /// The operation only reads: a fetch that failed without an answer may be retried.
    pub read_only: bool,
    /// The request's trace is recorded: plan nodes and fetches get spans of their own.
    pub traced: bool,
    /// What every fetch of an unrecorded request sends to carry its trace on: the
    /// request span's headers, worked out once (such a fetch has no span of its own).
    /// A recorded request's fetches each send their own span's.
    pub trace_headers: shop_kit::telemetry::TraceHeaders,
}

/// What makes two subgraph requests the same: the subgraph, the body, and the headers
/// forwarded with it.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct FetchKey {
    service: String,
    body: Bytes,
    authorization: Option<String>,
    forwarded_for: Option<String>,
}

/// A subgraph's answer as read: HTTP status and body, or why there is none.
pub type RawAnswer = Result<(u16, Bytes), Unanswered>;

/// Why a subgraph request left no answer to read.
#[derive(Clone, Debug)]
pub enum Unanswered {
    /// The answer would pass the response limit.
    TooLarge,
    /// The error that stands for the answer (unreachable, timed out, cut off).
    Failed(Value),
}

/// How long a fetch that streams a client's upload may take: as long as the client
/// takes to send it, within reason.
const UPLOAD_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30 * 60);

impl ExecState {
    pub fn new() -> Self {
        ExecState {
            data: Mutex::new(Node::Object(Object::new())),
            errors: Mutex::new(Vec::new()),
            received: AtomicUsize::new(0),
            too_large: AtomicBool::new(false),
        }
    }

    /// Merges a root fetch's (or an event's) data into what was gathered.
    pub fn merge_data(&self, data: Node) {
        if let Ok(mut d) = self.data.lock() {
            d.merge(data);
        }
    }

    /// The error for `service`'s unanswered request; past the response limit, the
    /// whole response is refused.
    fn unanswered(&self, service: &str, why: Unanswered) -> Value {
        match why {
            Unanswered::TooLarge => {
                self.too_large.store(true, Ordering::Relaxed);
                too_large_error(service)
            }
            Unanswered::Failed(e) => e,
        }
    }

    fn push_error(&self, e: Value) {
        if let Ok(mut errors) = self.errors.lock() {
            errors.push(e);
        }
    }
}

impl Default for ExecState {
    fn default() -> Self {
        Self::new()
    }
}

/// Every object at a merge path, in order (depth first), with the list indices that
/// lead to it: one walk from the root for all of them. The objects at one depth are
/// alike (items of lists of one selection), so each depth remembers where it found
/// its field and looks there first in the next object.
fn each_position<'v>(
    data: &'v Node,
    path: &[PathSegment],
    f: &mut impl FnMut(&[usize], &'v Object),
) {
    fn walk<'v>(
        v: &'v Node,
        path: &[PathSegment],
        cur: &mut Vec<usize>,
        hints: &mut [usize],
        f: &mut impl FnMut(&[usize], &'v Object),
    ) {
        match (path.split_first(), v) {
            (None, Node::Object(obj)) => f(cur, obj),
            (None, _) => {}
            (Some((PathSegment::Field(k), rest)), Node::Object(obj)) => {
                // One hint per step of the path, taken in step with it.
                let Some((hint, rest_hints)) = hints.split_first_mut() else {
                    return;
                };
                if let Some(i) = obj.position_from(k, *hint) {
                    *hint = i;
                    if let Some(child) = obj.value_at(i) {
                        walk(child, rest, cur, rest_hints, f);
                    }
                }
            }
            (Some((PathSegment::Field(_), _)), _) => {}
            (Some((PathSegment::List, rest)), Node::List(items)) => {
                for (i, item) in items.iter().enumerate() {
                    cur.push(i);
                    walk(item, rest, cur, hints.get_mut(1..).unwrap_or_default(), f);
                    cur.pop();
                }
            }
            (Some((PathSegment::List, _)), _) => {}
        }
    }
    let mut hints = vec![0; path.len()];
    walk(data, path, &mut Vec::new(), &mut hints, f);
}

/// As [`each_position`], with each object to change.
fn each_position_mut(
    data: &mut Node,
    path: &[PathSegment],
    f: &mut impl FnMut(&[usize], &mut Object),
) {
    fn walk(
        v: &mut Node,
        path: &[PathSegment],
        cur: &mut Vec<usize>,
        hints: &mut [usize],
        f: &mut impl FnMut(&[usize], &mut Object),
    ) {
        match (path.split_first(), v) {
            (None, Node::Object(obj)) => f(cur, obj),
            (None, _) => {}
            (Some((PathSegment::Field(k), rest)), Node::Object(obj)) => {
                // One hint per step of the path, taken in step with it.
                let Some((hint, rest_hints)) = hints.split_first_mut() else {
                    return;
                };
                if let Some(i) = obj.position_from(k, *hint) {
                    *hint = i;
                    if let Some(child) = obj.value_at_mut(i) {
                        walk(child, rest, cur, rest_hints, f);
                    }
                }
            }
            (Some((PathSegment::Field(_), _)), _) => {}
            (Some((PathSegment::List, rest)), Node::List(items)) => {
                for (i, item) in items.iter_mut().enumerate() {
                    cur.push(i);
                    walk(item, rest, cur, hints.get_mut(1..).unwrap_or_default(), f);
                    cur.pop();
                }
            }
            (Some((PathSegment::List, _)), _) => {}
        }
    }
    let mut hints = vec![0; path.len()];
    walk(data, path, &mut Vec::new(), &mut hints, f);
}

/// The concrete position a plan path and the list indices along it name.
fn steps(path: &[PathSegment], indices: &[usize]) -> Vec<Step> {
    let mut indices = indices.iter();
    path.iter()
        .map(|s| match s {
            PathSegment::Field(k) => Step::Key(k.clone()),
            PathSegment::List => Step::Index(indices.next().copied().unwrap_or(0)),
        })
        .collect()
}

fn at<'v>(data: &'v Node, pos: &[Step]) -> Option<&'v Node> {
    pos.iter().try_fold(data, |v, s| match (s, v) {
        (Step::Key(k), _) => v.get(k),
        (Step::Index(i), Node::List(items)) => items.get(*i),
        _ => None,
    })
}

fn at_mut<'v>(data: &'v mut Node, pos: &[Step]) -> Option<&'v mut Node> {
    pos.iter().try_fold(data, |v, s| match (s, v) {
        (Step::Key(k), v) => v.get_mut(k),
        (Step::Index(i), Node::List(items)) => items.get_mut(*i),
        _ => None,
    })
}

/// A `@requires` input: the value as the subgraph selected it (null when absent),
/// narrowed to the required sub-fields.
fn pick(value: Option<&Node>, selections: &[Required]) -> Node {
    match value {
        None => Node::Null,
        Some(v) if selections.is_empty() => v.clone(),
        Some(Node::List(items)) => {
            Node::List(items.iter().map(|i| pick(Some(i), selections)).collect())
        }
        Some(Node::Object(obj)) => {
            let mut out = Object::new();
            pick_into(obj, selections, &mut out);
            Node::Object(out)
        }
        Some(other) => other.clone(),
    }
}

/// Copies the required inputs of one object into `out`, each under its field name;
/// a fragment's only when the object's runtime type is one it applies to.
fn pick_into(obj: &Object, items: &[Required], out: &mut Object) {
    for item in items {
        match item {
            Required::Field {
                name,
                alias,
                selections,
                ..
            } => {
                let value = obj.get(alias.as_deref().unwrap_or(name));
                out.insert(name, pick(value, selections));
            }
            Required::Fragment {
                types, selections, ..
            } => {
                let typename = obj.get("__typename").and_then(Node::as_str);
                if typename.is_some_and(|t| types.iter().any(|x| x == t)) {
                    pick_into(obj, selections, out);
                }
            }
        }
    }
}

/// Where the representations of a batch came from, in walk order: for each, which of
/// the fetch's paths, the list indices along it, and which representation it sent.
#[derive(Default)]
struct Slots {
    list: Vec<Slot>,
    /// Every slot's list indices, one after another.
    indices: Vec<usize>,
}

#[derive(Clone, Copy)]
struct Slot {
    path: usize,
    rep: usize,
    start: usize,
    len: usize,
}

impl Slots {
    fn push(&mut self, path: usize, indices: &[usize], rep: usize) {
        self.list.push(Slot {
            path,
            rep,
            start: self.indices.len(),
            len: indices.len(),
        });
        self.indices.extend_from_slice(indices);
    }

    fn indices(&self, slot: &Slot) -> &[usize] {
        &self.indices[slot.start..slot.start + slot.len]
    }

    fn is_empty(&self) -> bool {
        self.list.is_empty()
    }

    /// The client-facing position of the first place representation `rep` came from.
    fn position_of(&self, rep: usize, paths: &[&[PathSegment]]) -> Option<Vec<Step>> {
        let slot = self.list.iter().find(|s| s.rep == rep)?;
        Some(steps(paths.get(slot.path)?, self.indices(slot)))
    }
}

/// Representations that go out in one `_entities` request.
#[derive(Default)]
struct Batch {
    /// The `@fromContext` variables shared by these representations.
    context: Map<String, Value>,
    /// The distinct representations as JSON text, comma-separated: the body's list.
    /// Each is written here straight from the data and cut off again when it repeats
    /// one already held, so a repeat costs neither an allocation nor a copy.
    reps: Vec<u8>,
    /// Where each distinct representation lies in `reps`.
    spans: Vec<(usize, usize)>,
    /// Representation numbers by the hash of their text.
    index: HashTable<usize>,
    hasher: foldhash::fast::RandomState,
    slots: Slots,
}

impl Batch {
    /// Starts a representation at the end of `reps`; returns where its text starts.
    fn open(&mut self) -> usize {
        if !self.spans.is_empty() {
            self.reps.push(b',');
        }
        self.reps.len()
    }

    /// Drops what was written since `open` returned `start`.
    fn abandon(&mut self, start: usize) {
        let separator = usize::from(!self.spans.is_empty());
        self.reps.truncate(start - separator);
    }

    /// Keeps the representation written since `open` returned `start`, unless the
    /// batch holds the same text already, and records the place it serves.
    fn close(&mut self, start: usize, path: usize, indices: &[usize]) {
        let text = &self.reps[start..];
        let hash = self.hasher.hash_one(text);
        let (reps, spans) = (&self.reps, &self.spans);
        let held = self
            .index
            .find(hash, |&i| &reps[spans[i].0..spans[i].1] == text)
            .copied();
        let rep = match held {
            Some(i) => {
                self.abandon(start);
                i
            }
            None => {
                let i = self.spans.len();
                self.spans.push((start, self.reps.len()));
                let (reps, spans, hasher) = (&self.reps, &self.spans, &self.hasher);
                self.index
                    .insert_unique(hash, i, |&j| hasher.hash_one(&reps[spans[j].0..spans[j].1]));
                i
            }
        };
        self.slots.push(path, indices, rep);
    }
}

/// The value of a `@fromContext` argument for the object at `pos`: read from the
/// nearest object on the way up (the object itself first) whose type carries the context.
fn context_value(data: &Node, pos: &[Step], c: &shop_federation::plan::ContextValue) -> Value {
    for depth in (0..=pos.len()).rev() {
        let Some(obj) = at(data, &pos[..depth]) else {
            continue;
        };
        let carries = obj
            .get("__typename")
            .and_then(Node::as_str)
            .is_some_and(|t| c.types.iter().any(|ct| ct == t));
        if carries {
            return c
                .path
                .iter()
                .try_fold(obj, |v, k| v.get(k))
                .map(Node::to_value)
                .unwrap_or(Value::Null);
        }
    }
    Value::Null
}

/// Copies the key fields out of an object; `None` when any is missing or null.
fn extract_key(obj: &Object, key: &[FieldSetItem], out: &mut Object) -> Option<()> {
    for item in key {
        let v = obj.get(&item.name)?;
        if v.is_null() {
            return None;
        }
        if item.selections.is_empty() {
            out.insert(&item.name, v.clone());
        } else {
            let mut inner = Object::new();
            extract_key(v.as_object()?, &item.selections, &mut inner)?;
            out.insert(&item.name, Node::Object(inner));
        }
    }
    Some(())
}

/// Whether `entity`'s key and `@requires` inputs name distinct fields, without type
/// conditions: then a representation can be written field by field as the data is read,
/// with nothing of one input to overwrite another's.
fn writes_plainly(entity: &EntityFetch) -> bool {
    fn distinct_key(items: &[FieldSetItem]) -> bool {
        items.iter().enumerate().all(|(i, item)| {
            !items[..i].iter().any(|o| o.name == item.name) && distinct_key(&item.selections)
        })
    }
    fn field_name(r: &Required) -> Option<&str> {
        match r {
            Required::Field { name, .. } => Some(name),
            Required::Fragment { .. } => None,
        }
    }
    fn plain_required(items: &[Required]) -> bool {
        items.iter().enumerate().all(|(i, item)| match item {
            Required::Field {
                name, selections, ..
            } => {
                !items[..i].iter().any(|o| field_name(o) == Some(name))
                    && plain_required(selections)
            }
            Required::Fragment { .. } => false,
        })
    }
    let top_level_apart = entity.requires.iter().all(|r| {
        field_name(r).is_some_and(|n| n != "__typename" && !entity.key.iter().any(|k| k.name == n))
    });
    distinct_key(&entity.key)
        && !entity.key.iter().any(|k| k.name == "__typename")
        && plain_required(&entity.requires)
        && top_level_apart
}

/// Starts a member of the JSON object being written in `out`.
fn write_member(out: &mut Vec<u8>, name: &str) {
    if out.last() != Some(&b'{') {
        out.push(b',');
    }
    write_str(out, name);
    out.push(b':');
}

/// Writes the key fields of `obj` as members; `false` when one is missing or null.
fn write_key(obj: &Object, key: &[FieldSetItem], out: &mut Vec<u8>) -> bool {
    for item in key {
        let Some(v) = obj.get(&item.name) else {
            return false;
        };
        write_member(out, &item.name);
        if item.selections.is_empty() {
            if v.is_null() {
                return false;
            }
            v.write_json(out);
        } else {
            let Some(inner) = v.as_object() else {
                return false;
            };
            out.push(b'{');
            if !write_key(inner, &item.selections, out) {
                return false;
            }
            out.push(b'}');
        }
    }
    true
}

/// Writes the `@requires` inputs of `obj` as members (see [`pick`]).
fn write_required(obj: &Object, items: &[Required], out: &mut Vec<u8>) {
    for item in items {
        if let Required::Field {
            name,
            alias,
            selections,
            ..
        } = item
        {
            write_member(out, name);
            write_picked(obj.get(alias.as_deref().unwrap_or(name)), selections, out);
        }
    }
}

fn write_picked(value: Option<&Node>, selections: &[Required], out: &mut Vec<u8>) {
    match value {
        None => out.extend_from_slice(b"null"),
        Some(v) if selections.is_empty() => v.write_json(out),
        Some(Node::List(items)) => {
            out.push(b'[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_picked(Some(item), selections, out);
            }
            out.push(b']');
        }
        Some(Node::Object(obj)) => {
            out.push(b'{');
            write_required(obj, selections, out);
            out.push(b'}');
        }
        Some(other) => other.write_json(out),
    }
}

/// Writes the representation of `obj` for `entity`: key fields, `@requires` inputs,
/// then `__typename`. `false` when a key field is missing or null.
fn write_representation(
    obj: &Object,
    entity: &EntityFetch,
    plainly: bool,
    typename: &str,
    out: &mut Vec<u8>,
) -> bool {
    if plainly {
        out.push(b'{');
        if !write_key(obj, &entity.key, out) {
            return false;
        }
        write_required(obj, &entity.requires, out);
        write_member(out, "__typename");
        write_str(out, typename);
        out.push(b'}');
        return true;
    }
    let mut rep = Object::with_capacity(entity.key.len() + entity.requires.len() + 1);
    if extract_key(obj, &entity.key, &mut rep).is_none() {
        return false;
    }
    pick_into(obj, &entity.requires, &mut rep);
    rep.insert("__typename", Node::Str(typename.into()));
    Node::Object(rep).write_json(out);
    true
}

/// The representations for `fetch` of the objects at `paths` (de-duplicated), and where
/// each came from: one batch per distinct set of `@fromContext` values (one batch
/// without contexts).
fn collect_representations(data: &Node, paths: &[&[PathSegment]], fetch: &FetchNode) -> Vec<Batch> {
    let Some(entity) = &fetch.entity else {
        return Vec::new();
    };
    let mut batches: Vec<Batch> = Vec::new();
    // Whether each of the fetch's entity types writes plainly, worked out once.
    let mut plain: Vec<(*const EntityFetch, bool)> = Vec::new();
    for (p, path) in paths.iter().enumerate() {
        each_position(data, path, &mut |indices, obj| {
            let typename = obj
                .get("__typename")
                .and_then(Node::as_str)
                .unwrap_or(&entity.type_name);
            // The type's own entity fetch when the request carries several.
            let Some(entity) = fetch.entity_for(typename) else {
                return;
            };
            let plainly = match plain.iter().find(|(e, _)| std::ptr::eq(*e, entity)) {
                Some(&(_, b)) => b,
                None => {
                    let b = writes_plainly(entity);
                    plain.push((entity, b));
                    b
                }
            };
            // An @interfaceObject subgraph knows the interface, not the concrete type.
            let typename = if entity.interface_object_of.is_empty() {
                typename
            } else {
                &entity.type_name
            };
            let context: Map<String, Value> = if entity.contexts.is_empty() {
                Map::new()
            } else {
                let pos = steps(path, indices);
                entity
                    .contexts
                    .iter()
                    .map(|c| (c.variable.clone(), context_value(data, &pos, c)))
                    .collect()
            };
            let batch = match batches.iter().position(|b| b.context == context) {
                Some(i) => &mut batches[i],
                None => {
                    batches.push(Batch {
                        context,
                        ..Batch::default()
                    });
                    let last = batches.len() - 1;
                    &mut batches[last]
                }
            };
            let start = batch.open();
            if write_representation(obj, entity, plainly, typename, &mut batch.reps) {
                batch.close(start, p, indices);
            } else {
                batch.abandon(start);
            }
        });
    }
    batches
}

/// The list answered under `key` (an `_entities` field or its alias), taken out of
/// the answer's data; empty when it is missing or not a list.
fn take_list(data: &mut Option<Node>, key: &str) -> Vec<Node> {
    match data.as_mut().and_then(|d| d.get_mut(key)).map(Node::take) {
        Some(Node::List(items)) => items,
        _ => Vec::new(),
    }
}

/// Merges the entities a fetch answered into the positions their representations came
/// from (`slots`, found at `paths` in this order).
fn merge_entities(
    fetch: &FetchNode,
    paths: &[&[PathSegment]],
    mut entities: Vec<Node>,
    slots: &Slots,
    state: &ExecState,
) {
    let interface_object = fetch
        .entity
        .as_ref()
        .is_some_and(|e| !e.interface_object_of.is_empty());
    for entity in entities.iter_mut() {
        entity.apply_renames(&fetch.renames);
        // The interface's name is not merged over the concrete type's.
        if interface_object && let Node::Object(obj) = entity {
            obj.remove("__typename");
        }
    }
    // Most representations serve one position: the last (usually only) one takes the
    // entity, earlier ones copy from it what their objects lack.
    let mut last_use = vec![usize::MAX; entities.len()];
    for (i, slot) in slots.list.iter().enumerate() {
        if let Some(last) = last_use.get_mut(slot.rep) {
            *last = i;
        }
    }
    let mut merge_into = |target: &mut Object, i: usize, rep: usize| match entities.get_mut(rep) {
        Some(Node::Object(found)) if last_use[rep] == i => target.merge(std::mem::take(found)),
        Some(Node::Object(found)) => target.merge_from(found),
        _ => {}
    };
    let Ok(mut data) = state.data.lock() else {
        return;
    };
    // The slots were found walking the same paths in the same order: one more walk
    // meets them again without going down from the root for each. An object that is
    // not the next slot's was left out (no key, another type) and is passed by.
    let mut next = 0;
    for (p, path) in paths.iter().enumerate() {
        each_position_mut(&mut data, path, &mut |indices, target| {
            if let Some(slot) = slots.list.get(next)
                && slot.path == p
                && slots.indices(slot) == indices
            {
                merge_into(target, next, slot.rep);
                next += 1;
            }
        });
    }
    // Only if the data moved under the slots since they were found (never in a plan
    // whose fetches at one level fill different places): each remaining one by path.
    for (i, slot) in slots.list.iter().enumerate().skip(next) {
        let Some(path) = paths.get(slot.path) else {
            continue;
        };
        let pos = steps(path, slots.indices(slot));
        if let Some(Node::Object(target)) = at_mut(&mut data, &pos) {
            merge_into(target, i, slot.rep);
        }
    }
}

/// The client-facing path of an entity fetch's error: `<field>.<n>.rest`, where
/// `field` is `_entities` or its alias in a batch, becomes the position of
/// representation n followed by the rest. `None` when it cannot be mapped.
fn entity_error_path(
    e: &Value,
    field: &str,
    slots: &Slots,
    paths: &[&[PathSegment]],
) -> Option<Vec<Step>> {
    let p = e.get("path").and_then(Value::as_array)?;
    if p.first().and_then(Value::as_str) != Some(field) {
        return None;
    }
    let n = usize::try_from(p.get(1)?.as_u64()?).ok()?;
    let mut full = slots.position_of(n, paths)?;
    for seg in &p[2..] {
        full.push(match seg {
            Value::Number(i) => Step::Index(
                i.as_u64()
                    .and_then(|i| usize::try_from(i).ok())
                    .unwrap_or(0),
            ),
            other => Step::Key(other.as_str().unwrap_or_default().to_string()),
        });
    }
    Some(full)
}

/// A failed entity request's error, placed at the first position it was for.
fn at_first_slot(mut e: Value, slots: &Slots, paths: &[&[PathSegment]]) -> Value {
    if let Some(p) = slots.position_of(0, paths) {
        e["path"] = path_json(&p);
    }
    e
}

/// Writes a subgraph request body, `{"query": ..., "variables": {...}}`, with the
/// operation's own variables, then `lists` (a variable name and its JSON list items).
fn request_body(
    operation: &str,
    variables: &Map<String, Value>,
    lists: &[(&str, &[u8])],
) -> Vec<u8> {
    let size: usize = lists.iter().map(|(_, items)| items.len() + 32).sum();
    let mut out = Vec::with_capacity(operation.len() + size + 64);
    out.extend_from_slice(b"{\"query\":");
    let _ = serde_json::to_writer(&mut out, operation);
    out.extend_from_slice(b",\"variables\":{");
    let mut first = true;
    for (name, value) in variables {
        if !first {
            out.push(b',');
        }
        first = false;
        let _ = serde_json::to_writer(&mut out, name);
        out.push(b':');
        let _ = serde_json::to_writer(&mut out, value);
    }
    for (name, items) in lists {
        if !first {
            out.push(b',');
        }
        first = false;
        let _ = serde_json::to_writer(&mut out, name);
        out.extend_from_slice(b":[");
        out.extend_from_slice(items);
        out.push(b']');
    }
    out.extend_from_slice(b"}}");
    out
}

impl Gateway {
    pub fn run<'a>(
        &'a self,
        node: &'a PlanNode,
        state: &'a ExecState,
        ctx: &'a ExecContext<'a>,
    ) -> BoxFuture<'a, ()> {
        Box::pin(async move {
            match node {
                PlanNode::Sequence { nodes } => {
                    for n in nodes {
                        self.run(n, state, ctx).await;
                    }
                }
                PlanNode::Parallel { nodes } => {
                    // Entity fetches of the same subgraph and selection at different paths
                    // (the same entity reached twice) go out as one `_entities` call.
                    let mut merged: Vec<(&FetchNode, Vec<&[PathSegment]>)> = Vec::new();
                    let mut others = Vec::new();
                    for n in nodes {
                        if let PlanNode::Flatten { path, node } = n
                            && let PlanNode::Fetch(f) = node.as_ref()
                            && f.entity.is_some()
                        {
                            match merged
                                .iter_mut()
                                .find(|(m, _)| m.service == f.service && m.operation == f.operation)
                            {
                                Some((_, paths)) => paths.push(path),
                                None => merged.push((f, vec![path])),
                            }
                        } else {
                            others.push(n);
                        }
                    }
                    let entity_calls = join_all(merged.iter().map(|(f, paths)| {
                        self.entity_fetch(paths, f, state, ctx)
                            .instrument(node_span(ctx, "plan.flatten", &f.service))
                    }));
                    let rest = join_all(others.into_iter().map(|n| self.run(n, state, ctx)));
                    futures::future::join(entity_calls, rest).await;
                }
                PlanNode::Fetch(fetch) => {
                    self.root_fetch(fetch, state, ctx)
                        .instrument(node_span(ctx, "plan.fetch", &fetch.service))
                        .await
                }
                PlanNode::Batch(batch) => {
                    self.batch_fetch(batch, state, ctx)
                        .instrument(node_span(ctx, "plan.batch", ""))
                        .await
                }
                PlanNode::Condition {
                    variable,
                    skip,
                    node,
                } => {
                    // As the response reads the same condition: what it leaves out is
                    // not asked for.
                    if shop_federation::plan::condition_holds(variable, *skip, ctx.variables) {
                        self.run(node, state, ctx).await;
                    }
                }
                // Streams are opened by `subscribe`; here only the per-event part runs.
                PlanNode::Subscription { rest, .. } => {
                    if let Some(rest) = rest {
                        self.run(rest, state, ctx).await;
                    }
                }
                PlanNode::Flatten { path, node } => match node.as_ref() {
                    PlanNode::Fetch(fetch) => {
                        self.entity_fetch(&[path.as_slice()], fetch, state, ctx)
                            .instrument(node_span(ctx, "plan.flatten", &fetch.service))
                            .await
                    }
                    other => self.run(other, state, ctx).await,
                },
            }
        })
    }

    /// The client's values of the operation variables `names` (those it gave).
    fn variables_named(names: &[String], ctx: &ExecContext<'_>) -> Map<String, Value> {
        names
            .iter()
            .filter_map(|v| ctx.variables.get(v).map(|val| (v.clone(), val.clone())))
            .collect()
    }

    async fn root_fetch(&self, fetch: &FetchNode, state: &ExecState, ctx: &ExecContext<'_>) {
        let files = ctx
            .uploads
            .map(|u| u.files_for(&fetch.variables))
            .unwrap_or_default();
        let sent = match ctx.uploads {
            Some(uploads) if !files.is_empty() => {
                let (content_type, body) = uploads.body(
                    &fetch.operation,
                    Self::variables_named(&fetch.variables, ctx),
                    files,
                );
                self.send_body(
                    &fetch.service,
                    &content_type,
                    FetchBody::Stream(body),
                    UPLOAD_TIMEOUT,
                    state,
                    ctx,
                )
                .await
            }
            _ => {
                let body = request_body(
                    &fetch.operation,
                    &Self::variables_named(&fetch.variables, ctx),
                    &[],
                );
                self.send(&fetch.service, body, state, ctx).await
            }
        };
        match sent {
            Ok(resp) => {
                if let Some(mut data) = resp.data {
                    data.apply_renames(&fetch.renames);
                    state.merge_data(data);
                }
                for e in resp.errors {
                    state.push_error(with_service(e, &fetch.service, None));
                }
            }
            Err(e) => state.push_error(e),
        }
    }

    async fn entity_fetch(
        &self,
        paths: &[&[PathSegment]],
        fetch: &FetchNode,
        state: &ExecState,
        ctx: &ExecContext<'_>,
    ) {
        let batches = {
            let Ok(data) = state.data.lock() else { return };
            collect_representations(&data, paths, fetch)
        };
        join_all(
            batches
                .into_iter()
                .map(|b| self.entity_batch(fetch, paths, b, state, ctx)),
        )
        .await;
    }

    /// Sends one batch of representations and merges the entities back in place.
    async fn entity_batch(
        &self,
        fetch: &FetchNode,
        paths: &[&[PathSegment]],
        batch: Batch,
        state: &ExecState,
        ctx: &ExecContext<'_>,
    ) {
        let Batch {
            context,
            reps,
            slots,
            ..
        } = batch;
        if slots.is_empty() {
            return;
        }
        let mut variables = Self::variables_named(&fetch.variables, ctx);
        variables.extend(context);
        let body = request_body(&fetch.operation, &variables, &[("representations", &reps)]);
        match self.send(&fetch.service, body, state, ctx).await {
            Ok(resp) => {
                let mut data = resp.data;
                merge_entities(
                    fetch,
                    paths,
                    take_list(&mut data, "_entities"),
                    &slots,
                    state,
                );
                for e in resp.errors {
                    let path = entity_error_path(&e, "_entities", &slots, paths);
                    state.push_error(with_service(e, &fetch.service, Some(path)));
                }
            }
            Err(e) => state.push_error(at_first_slot(e, &slots, paths)),
        }
    }

    /// Sends the parts of a batch (entity fetches of one subgraph) as one request and
    /// merges each part's entities back at its own positions.
    async fn batch_fetch(&self, batch: &BatchNode, state: &ExecState, ctx: &ExecContext<'_>) {
        let paths: Vec<Vec<&[PathSegment]>> = batch
            .parts
            .iter()
            .map(|part| part.paths.iter().map(Vec::as_slice).collect())
            .collect();
        let collected: Vec<Batch> = {
            let Ok(data) = state.data.lock() else { return };
            batch
                .parts
                .iter()
                .zip(&paths)
                .map(|(part, paths)| {
                    // Parts never carry contexts, so there is at most one batch each.
                    collect_representations(&data, paths, &part.fetch)
                        .into_iter()
                        .next()
                        .unwrap_or_default()
                })
                .collect()
        };
        if collected.iter().all(|c| c.slots.is_empty()) {
            return;
        }
        let variables = Self::variables_named(&batch.variables, ctx);
        let lists: Vec<(&str, &[u8])> = batch
            .parts
            .iter()
            .zip(&collected)
            .map(|(part, c)| (part.variable.as_str(), c.reps.as_slice()))
            .collect();
        let body = request_body(&batch.operation, &variables, &lists);
        let slots: Vec<Slots> = collected.into_iter().map(|c| c.slots).collect();
        match self.send(&batch.service, body, state, ctx).await {
            Ok(resp) => {
                let mut data = resp.data;
                for ((part, paths), slots) in batch.parts.iter().zip(&paths).zip(&slots) {
                    let entities = take_list(&mut data, &part.alias);
                    merge_entities(&part.fetch, paths, entities, slots, state);
                }
                for e in resp.errors {
                    let alias = e.get("path").and_then(|p| p.get(0)).and_then(Value::as_str);
                    let path = match batch
                        .parts
                        .iter()
                        .position(|p| Some(p.alias.as_str()) == alias)
                    {
                        Some(i) => {
                            entity_error_path(&e, &batch.parts[i].alias, &slots[i], &paths[i])
                        }
                        None => None,
                    };
                    state.push_error(with_service(e, &batch.service, Some(path)));
                }
            }
            Err(e) => {
                if let Some(i) = slots.iter().position(|s| !s.is_empty()) {
                    state.push_error(at_first_slot(e, &slots[i], &paths[i]));
                } else {
                    state.push_error(e);
                }
            }
        }
    }

    /// Posts one operation to a subgraph. Transport failures come back as a ready error.
    /// With `ctx.dedupe`, an identical request already in flight answers this one too.
    async fn send(
        &self,
        service: &str,
        body: Vec<u8>,
        state: &ExecState,
        ctx: &ExecContext<'_>,
    ) -> Result<SubgraphResponse, Value> {
        let body = Bytes::from(body);
        if !ctx.dedupe {
            return self
                .send_body(
                    service,
                    "application/json",
                    FetchBody::Bytes(body),
                    self.timeout_for(service),
                    state,
                    ctx,
                )
                .await;
        }
        if state.too_large.load(Ordering::Relaxed) {
            return Err(too_large_error(service));
        }
        let key = FetchKey {
            service: service.to_string(),
            body: body.clone(),
            authorization: ctx.authorization.map(str::to_string),
            forwarded_for: ctx.forwarded_for.map(str::to_string),
        };
        let (answer, shared) = self
            .fetches_in_flight
            .run(key, || {
                self.read_answer(
                    service,
                    "application/json",
                    FetchBody::Bytes(body),
                    self.timeout_for(service),
                    ctx,
                    None,
                )
            })
            .await;
        if shared {
            self.metrics.shared(true);
        }
        let (status, bytes) = answer.map_err(|why| state.unanswered(service, why))?;
        // Each request counts what it was answered against its own limit.
        let total = state.received.fetch_add(bytes.len(), Ordering::Relaxed) + bytes.len();
        if total > self.options.limits.max_response_bytes {
            return Err(state.unanswered(service, Unanswered::TooLarge));
        }
        parse_answer(service, status, &bytes)
    }

    /// Posts a request body (JSON, or a multipart upload) to a subgraph.
    async fn send_body(
        &self,
        service: &str,
        content_type: &str,
        body: FetchBody,
        timeout: std::time::Duration,
        state: &ExecState,
        ctx: &ExecContext<'_>,
    ) -> Result<SubgraphResponse, Value> {
        if state.too_large.load(Ordering::Relaxed) {
            return Err(too_large_error(service));
        }
        let (status, bytes) = self
            .read_answer(service, content_type, body, timeout, ctx, Some(state))
            .await
            .map_err(|why| state.unanswered(service, why))?;
        parse_answer(service, status, &bytes)
    }

    /// Posts `body` to a subgraph through its guard (breaker, slots, retries: see
    /// [`crate::resilience`]) and reads its answer, stopping at the response limit: the
    /// request's running total (`state`) or, for a shared request, the limit alone.
    /// A JSON body of a read is sent again when the attempt failed without an answer
    /// and the retry budget allows; a streamed upload is sent once.
    async fn read_answer(
        &self,
        service: &str,
        content_type: &str,
        body: FetchBody,
        timeout: std::time::Duration,
        ctx: &ExecContext<'_>,
        state: Option<&ExecState>,
    ) -> RawAnswer {
        let (Some(graph), Some(guard)) = (
            self.supergraph.graphs.iter().find(|g| g.name == service),
            self.guards.get(service),
        ) else {
            return Err(Unanswered::Failed(transport_error(
                service,
                "unknown subgraph",
            )));
        };
        let span = if ctx.traced {
            tracing::info_span!("subgraph.fetch", otel.kind = "client", subgraph = service)
        } else {
            tracing::Span::none()
        };
        let deadline = Instant::now() + timeout;
        let (again, mut body) = match body {
            FetchBody::Bytes(bytes) => (Some(bytes), None),
            FetchBody::Stream(stream) => (None, Some(stream)),
        };
        let mut retries = 0;
        guard.deposit();
        async {
            loop {
                let left = deadline.saturating_duration_since(Instant::now());
                let pass = guard.enter(left).await.map_err(|refusal| {
                    Unanswered::Failed(match refusal {
                        Refusal::Open(_) => unavailable_error(service),
                        Refusal::NoSlot => transport_error(
                            service,
                            "timed out waiting for a free request slot (max in flight)",
                        ),
                    })
                })?;
                let this_body = match body.take() {
                    Some(b) => b,
                    None => match &again {
                        Some(bytes) => reqwest::Body::from(bytes.clone()),
                        None => {
                            return Err(Unanswered::Failed(transport_error(service, "no body")));
                        }
                    },
                };
                let left = deadline.saturating_duration_since(Instant::now());
                let started = Instant::now();
                let (answer, outcome, read) = self
                    .attempt(
                        service,
                        &graph.url,
                        content_type,
                        this_body,
                        left,
                        ctx,
                        state,
                    )
                    .await;
                self.metrics
                    .fetch(service, outcome, started.elapsed().as_secs_f64());
                guard.record(pass, outcome);
                let may_retry = outcome == Outcome::Retryable
                    && ctx.read_only
                    && again.is_some()
                    && retries < guard.max_retries()
                    && deadline.saturating_duration_since(Instant::now()) > RETRY_MIN_TIME
                    && guard.withdraw();
                if !may_retry {
                    return answer;
                }
                retries += 1;
                if let Some(state) = state {
                    // What the failed attempt read does not count against the limit.
                    state.received.fetch_sub(read, Ordering::Relaxed);
                }
                tracing::debug!(
                    retries,
                    "retrying a subgraph read that failed without an answer"
                );
                // A short, jittered pause: a subgraph restarting or a load balancer
                // moving traffic needs a moment, and retries should not arrive together.
                let jitter = getrandom::u64().unwrap_or(0) % 40;
                tokio::time::sleep(std::time::Duration::from_millis(10 + jitter)).await;
            }
        }
        .instrument(span)
        .await
    }

    /// One attempt of a subgraph request: the answer, how it ended for the breaker,
    /// and how many bytes it added to `state`'s running total.
    #[allow(clippy::too_many_arguments)]
    async fn attempt(
        &self,
        service: &str,
        url: &str,
        content_type: &str,
        body: reqwest::Body,
        timeout: std::time::Duration,
        ctx: &ExecContext<'_>,
        state: Option<&ExecState>,
    ) -> (RawAnswer, Outcome, usize) {
        let started = Instant::now();
        let mut req = self
            .client_for(service)
            .post(url)
            .timeout(timeout)
            .header("content-type", content_type)
            .header("accept", "application/json")
            .body(body);
        if let Some(auth) = ctx.authorization {
            req = req.header("authorization", auth);
        }
        if let Some(ff) = ctx.forwarded_for {
            req = req.header("x-forwarded-for", ff);
        }
        // The subgraph continues this fetch's trace.
        let own_span;
        let trace = if ctx.traced {
            own_span = shop_kit::telemetry::trace_headers();
            &own_span
        } else {
            &ctx.trace_headers
        };
        for (name, value) in trace {
            req = req.header(name.clone(), value.clone());
        }
        let mut resp = match req.send().await {
            Ok(resp) => resp,
            Err(e) => {
                let (reason, outcome) = if e.is_timeout() {
                    ("timed out".to_string(), Outcome::Failed)
                } else {
                    (
                        format!("request failed: {}", root_cause(&e)),
                        Outcome::Retryable,
                    )
                };
                let error = Unanswered::Failed(transport_error(service, &reason));
                return (Err(error), outcome, 0);
            }
        };
        let status = resp.status().as_u16();
        let max = self.options.limits.max_response_bytes;
        // Sized once when the subgraph says how much is coming (within reason: the
        // header is the subgraph's word, the limit still applies as bytes arrive).
        let announced = resp.content_length().unwrap_or(0);
        let mut bytes = Vec::with_capacity(
            usize::try_from(announced)
                .unwrap_or(max)
                .min(max)
                .min(16 << 20),
        );
        loop {
            let chunk = match resp.chunk().await {
                Ok(Some(chunk)) => chunk,
                Ok(None) => break,
                Err(e) => {
                    let outcome = if e.is_timeout() {
                        Outcome::Failed
                    } else {
                        Outcome::Retryable
                    };
                    let reason = format!("reading the response failed: {e}");
                    let error = Unanswered::Failed(transport_error(service, &reason));
                    return (Err(error), outcome, bytes.len());
                }
            };
            let total = match state {
                Some(state) => {
                    state.received.fetch_add(chunk.len(), Ordering::Relaxed) + chunk.len()
                }
                None => bytes.len() + chunk.len(),
            };
            if total > max {
                // The subgraph answered; the answer is too large for this request.
                return (Err(Unanswered::TooLarge), Outcome::Answered, 0);
            }
            bytes.extend_from_slice(&chunk);
        }
        tracing::debug!(
            elapsed_ms = started.elapsed().as_millis() as u64,
            status,
            "subgraph answered"
        );
        let outcome = match status {
            502..=504 => Outcome::Retryable,
            500.. => Outcome::Failed,
            _ => Outcome::Answered,
        };
        let read = bytes.len();
        (Ok((status, bytes.into())), outcome, read)
    }
}

/// The span of one plan node that fetches from `service`; none when the request's
/// trace is not recorded (see `shop_kit::telemetry::sampled`).
fn node_span(ctx: &ExecContext<'_>, name: &'static str, service: &str) -> tracing::Span {
    if !ctx.traced {
        return tracing::Span::none();
    }
    match name {
        "plan.flatten" => tracing::info_span!("plan.flatten", subgraph = service),
        "plan.batch" => tracing::info_span!("plan.batch"),
        _ => tracing::info_span!("plan.fetch", subgraph = service),
    }
}

/// What a fetch sends: JSON text, which can be sent again, or a client's upload
/// streaming through, which cannot.
pub(crate) enum FetchBody {
    Bytes(Bytes),
    Stream(reqwest::Body),
}

/// Below this much time left, a failed read is not tried again.
const RETRY_MIN_TIME: std::time::Duration = std::time::Duration::from_millis(50);

/// The error for a request not sent because the subgraph's breaker is open.
fn unavailable_error(service: &str) -> Value {
    serde_json::json!({
        "message": format!(
            "subgraph '{service}' is failing; requests to it are paused for a few seconds"
        ),
        "extensions": { "code": "SUBGRAPH_UNAVAILABLE", "service": service }
    })
}

/// A subgraph's answer read as GraphQL: taken when it parses and is a success, or
/// carries data or errors whatever its status; a transport error otherwise.
fn parse_answer(service: &str, status: u16, bytes: &[u8]) -> Result<SubgraphResponse, Value> {
    match SubgraphResponse::read(bytes) {
        Some(r) if (200..300).contains(&status) || r.data.is_some() || !r.errors.is_empty() => {
            Ok(r)
        }
        _ => {
            let status = reqwest::StatusCode::from_u16(status)
                .map_or_else(|_| status.to_string(), |s| s.to_string());
            Err(transport_error(service, &format!("HTTP {status}")))
        }
    }
}

fn root_cause(e: &(dyn std::error::Error + 'static)) -> String {
    let mut cur = e;
    while let Some(next) = cur.source() {
        cur = next;
    }
    cur.to_string()
}

/// A subgraph's GraphQL response: `data` (absent or null: `None`) and `errors`.
struct SubgraphResponse {
    data: Option<Node>,
    errors: Vec<Value>,
}

impl SubgraphResponse {
    /// `None` when the body is not JSON, not an object, or its `errors` not a list.
    fn read(bytes: &[u8]) -> Option<SubgraphResponse> {
        let Node::Object(mut body) = super::parse::parse(bytes).ok()? else {
            return None;
        };
        let data = body.remove("data").filter(|d| !d.is_null());
        let errors = match body.remove("errors") {
            None | Some(Node::Null) => Vec::new(),
            Some(Node::List(items)) => items.iter().map(Node::to_value).collect(),
            Some(_) => return None,
        };
        Some(SubgraphResponse { data, errors })
    }
}

/// A subgraph answer not read because the response had grown past its limit.
fn too_large_error(service: &str) -> Value {
    serde_json::json!({
        "message": "the response grew past its size limit; ask for fewer items or fields",
        "extensions": { "code": "RESPONSE_TOO_LARGE", "limit": "max_response_bytes", "service": service }
    })
}

pub(crate) fn transport_error(service: &str, reason: &str) -> Value {
    serde_json::json!({
        "message": format!("subgraph '{service}' could not be reached: {reason}"),
        "extensions": { "code": "SUBREQUEST_HTTP_ERROR", "service": service }
    })
}

/// Adds `extensions.service` to a subgraph error and, for entity fetches, replaces its
/// path with the client-facing one (dropping it when it cannot be mapped).
pub(crate) fn with_service(mut e: Value, service: &str, path: Option<Option<Vec<Step>>>) -> Value {
    if !e.is_object() {
        e = serde_json::json!({ "message": e.to_string() });
    }
    if let Some(p) = path {
        match p {
            Some(p) => e["path"] = path_json(&p),
            None => {
                if let Some(obj) = e.as_object_mut() {
                    obj.remove("path");
                }
            }
        }
    }
    // Locations refer to the subgraph's operation text, which the client never saw.
    if let Some(obj) = e.as_object_mut() {
        obj.remove("locations");
        let ext = obj
            .entry("extensions")
            .or_insert_with(|| Value::Object(Map::new()));
        if let Some(ext) = ext.as_object_mut() {
            ext.insert("service".into(), Value::String(service.to_string()));
        }
    }
    e
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(v: Value) -> Node {
        Node::from_value(v)
    }

    fn fetch() -> FetchNode {
        FetchNode {
            service: "s".into(),
            operation: String::new(),
            variables: Vec::new(),
            entity: None,
            more_entities: Vec::new(),
            renames: Vec::new(),
            entities_selection: String::new(),
            variable_definitions: Vec::new(),
        }
    }

    #[test]
    fn entities_merge_at_their_slots_in_walk_order_or_by_path_when_out_of_order() {
        let path = [PathSegment::Field("a".into()), PathSegment::List];
        let paths: [&[PathSegment]; 1] = [&path];
        let fetch = fetch();
        let slots = |order: &[(usize, usize)]| {
            let mut s = Slots::default();
            for (index, rep) in order {
                s.push(0, &[*index], *rep);
            }
            s
        };
        let data = node(serde_json::json!({"a": [{"id": 0}, {"id": 1}, {"id": 2}]}));
        // In walk order, the middle object left out (no slot): merged in one walk.
        let state = ExecState::new();
        *state.data.lock().unwrap() = data.clone();
        let entities = vec![
            node(serde_json::json!({"x": "zero"})),
            node(serde_json::json!({"x": "two"})),
        ];
        merge_entities(&fetch, &paths, entities, &slots(&[(0, 0), (2, 1)]), &state);
        assert_eq!(
            state.data.lock().unwrap().to_value(),
            serde_json::json!({"a": [{"id": 0, "x": "zero"}, {"id": 1}, {"id": 2, "x": "two"}]})
        );
        // Out of walk order (as if the data had moved): the rest are found by path.
        let state = ExecState::new();
        *state.data.lock().unwrap() = data;
        let entities = vec![
            node(serde_json::json!({"x": "two"})),
            node(serde_json::json!({"x": "zero"})),
        ];
        merge_entities(&fetch, &paths, entities, &slots(&[(2, 0), (0, 1)]), &state);
        assert_eq!(
            state.data.lock().unwrap().to_value(),
            serde_json::json!({"a": [{"id": 0, "x": "zero"}, {"id": 1}, {"id": 2, "x": "two"}]})
        );
    }

    #[test]
    fn positions_walk_lists_and_name_their_indices() {
        let d = node(serde_json::json!({"a": {"b": [{"x": 1}, null, {"x": 2}]}}));
        let path = [
            PathSegment::Field("a".into()),
            PathSegment::Field("b".into()),
            PathSegment::List,
        ];
        let mut found = Vec::new();
        each_position(&d, &path, &mut |indices, _| {
            found.push(steps(&path, indices))
        });
        assert_eq!(found.len(), 2);
        assert_eq!(
            found[1],
            vec![Step::Key("a".into()), Step::Key("b".into()), Step::Index(2)]
        );
    }

    #[test]
    fn representations_written_field_by_field_match_the_general_writer() {
        let key = |text: &str| shop_federation::field_set::parse(text).unwrap();
        let field = |name: &str, alias: Option<&str>, selections: Vec<Required>| Required::Field {
            name: name.into(),
            alias: alias.map(Into::into),
            arguments: Vec::new(),
            selections,
        };
        let entity = |key_text: &str, requires: Vec<Required>| EntityFetch {
            type_name: "P".into(),
            key: key(key_text),
            requires,
            interface_object_of: Vec::new(),
            contexts: Vec::new(),
        };
        let cases = [
            entity(
                "upc",
                vec![field("price", None, vec![]), field("weight", None, vec![])],
            ),
            entity(
                "id owner { id org { name } }",
                vec![field(
                    "dims",
                    Some("_r0"),
                    vec![field("w", None, vec![]), field("h", None, vec![])],
                )],
            ),
            entity(
                "sku",
                vec![field("parts", None, vec![field("n", None, vec![])])],
            ),
        ];
        let objects = [
            serde_json::json!({"__typename": "P", "upc": "u1", "price": 3, "weight": null, "x": 1}),
            serde_json::json!({"upc": "u\"q", "price": 1.5}),
            serde_json::json!({"upc": null, "price": 1}),
            serde_json::json!({"id": 7, "owner": {"id": "o", "org": {"name": "n", "k": 1}}, "_r0": {"h": 2, "w": 1, "d": 9}}),
            serde_json::json!({"id": 7, "owner": {"id": "o", "org": null}, "_r0": null}),
            serde_json::json!({"id": 7, "owner": {"id": "o"}, "dims": {"w": 1}}),
            serde_json::json!({"sku": "s", "parts": [{"n": 1, "m": 2}, null, {"m": 3}]}),
            serde_json::json!({"sku": ["a", "b"], "parts": "none"}),
        ];
        let mut written = 0;
        for e in &cases {
            assert!(writes_plainly(e));
            for o in &objects {
                let Node::Object(obj) = node(o.clone()) else {
                    unreachable!()
                };
                let (mut plain, mut general) = (b"[".to_vec(), b"[".to_vec());
                let a = write_representation(&obj, e, true, "P", &mut plain);
                let b = write_representation(&obj, e, false, "P", &mut general);
                assert_eq!(a, b, "{o} for {:?}", e.key);
                if a {
                    written += 1;
                    assert_eq!(String::from_utf8(plain), String::from_utf8(general));
                }
            }
        }
        assert_eq!(written, 5);
        // Inputs that overlap, or depend on the runtime type, take the general path.
        assert!(!writes_plainly(&entity(
            "upc",
            vec![field("upc", None, vec![])]
        )));
        assert!(!writes_plainly(&entity(
            "upc",
            vec![field("a", None, vec![]), field("a", Some("_r1"), vec![])]
        )));
        assert!(!writes_plainly(&entity(
            "upc",
            vec![Required::Fragment {
                on: "P".into(),
                types: vec!["P".into()],
                selections: vec![field("a", None, vec![])],
            }]
        )));
    }

    #[test]
    fn representations_are_deduplicated_by_their_text_and_written_into_the_body() {
        let mut batch = Batch::default();
        let mut add = |text: &[u8], index: usize| {
            let start = batch.open();
            batch.reps.extend_from_slice(text);
            batch.close(start, 0, &[index]);
        };
        add(br#"{"id":"1","__typename":"P"}"#, 0);
        add(br#"{"id":"2","__typename":"P"}"#, 1);
        add(br#"{"id":"1","__typename":"P"}"#, 2);
        // An object without a usable key leaves nothing behind.
        let start = batch.open();
        batch.reps.extend_from_slice(br#"{"id":"#);
        batch.abandon(start);
        assert_eq!(batch.spans.len(), 2);
        assert_eq!(
            batch.slots.list.iter().map(|s| s.rep).collect::<Vec<_>>(),
            [0, 1, 0]
        );
        let mut vars = Map::new();
        vars.insert("first".into(), Value::from(3));
        let body = request_body("query($r:[_Any!]!){x}", &vars, &[("r", &batch.reps)]);
        let parsed: Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(
            parsed,
            serde_json::json!({
                "query": "query($r:[_Any!]!){x}",
                "variables": {"first": 3, "r": [{"id": "1", "__typename": "P"}, {"id": "2", "__typename": "P"}]}
            })
        );
    }
}

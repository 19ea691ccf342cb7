//! Shapes the merged subgraph data into the client's response: fields in requested
//! order under their aliases, `@skip`/`@include` applied, helper fields the planner
//! added dropped, `__typename` filled in, and nulls in non-null positions bubbled to
//! the nearest nullable parent with an error (GraphQL spec, "Handling Field Errors").
//!
//! The response is written as JSON text while the data is walked, with no second tree:
//! where a null bubbles, what was written for the position it reaches is cut off and
//! `null` written instead.

use std::collections::HashMap;
use std::rc::Rc;

use apollo_compiler::Schema;
use apollo_compiler::ast::Type;
use serde_json::{Map, Value};
use shop_federation::operation::{Condition, ConditionValue, Field, Selection, SelectionSet};

use super::data::{Node, Object, write_str};
use super::execute::{Step, path_json};
use super::request::DATA_PREFIX;

/// A null reached a non-null position; the parent must become null.
struct Bubble;

/// What was written for one position.
enum Written {
    Value,
    /// `null`, where the data had none (the caller decides whether that is an error).
    Null,
    /// Not usable: an error explaining it was recorded, and the position must be null.
    Bubbled,
}

/// A step of the path to the position being written (response keys borrowed from
/// the operation).
#[derive(Clone, Copy)]
enum At<'s> {
    Key(&'s str),
    Index(usize),
}

/// The fields selected on one object, grouped by response key (the spec's
/// CollectFields): `next[i]` links a field to the next one with its key.
#[derive(Default)]
struct Collected<'s> {
    fields: Vec<&'s Field>,
    /// Whether field i is the first with its key.
    first: Vec<bool>,
    next: Vec<usize>,
}

/// Above this many fields, keys are matched with a hash map rather than by scanning.
const SCAN_LIMIT: usize = 16;

pub struct Shaper<'a, 's> {
    pub schema: &'a Schema,
    pub variables: &'a Map<String, Value>,
    pub errors: &'a mut Vec<Value>,
    out: Vec<u8>,
    path: Vec<At<'s>>,
    /// The fields of a selection set on a runtime type, collected once per request: a
    /// list of a thousand products does not collect its selection a thousand times.
    seen: Vec<(&'s SelectionSet, String, Rc<Collected<'s>>)>,
}

/// How many (selection set, type) pairs a request keeps collected; past it, objects
/// collect their fields each time (a search here stays short).
const SEEN_LIMIT: usize = 64;

pub fn included(conditions: &[Condition], variables: &Map<String, Value>) -> bool {
    conditions.iter().all(|c| {
        let v = match &c.value {
            ConditionValue::Const(b) => *b,
            ConditionValue::Variable(name) => variables
                .get(name)
                .and_then(Value::as_bool)
                .unwrap_or(false),
        };
        if c.skip { !v } else { v }
    })
}

impl<'a, 's> Shaper<'a, 's> {
    pub fn new(
        schema: &'a Schema,
        variables: &'a Map<String, Value>,
        errors: &'a mut Vec<Value>,
    ) -> Self {
        Shaper {
            schema,
            variables,
            errors,
            out: Vec::new(),
            path: Vec::new(),
            seen: Vec::new(),
        }
    }

    /// Shapes the root into JSON text after [`DATA_PREFIX`]; `None` when a null
    /// bubbled all the way up. `expected` is about how long the text will be (what the
    /// subgraphs sent): one buffer of that size instead of one that doubles its way
    /// up, copying what it holds each time (an 87 KB answer was copied five times).
    pub fn root(
        mut self,
        set: &'s SelectionSet,
        data: &Node,
        root_type: &str,
        expected: usize,
    ) -> Option<Vec<u8>> {
        let empty = Object::new();
        let source = data.as_object().unwrap_or(&empty);
        self.out.reserve(expected.max(4096));
        self.out.extend_from_slice(DATA_PREFIX);
        match self.object(std::slice::from_ref(&set), source, root_type, true) {
            Ok(()) => Some(self.out),
            Err(Bubble) => None,
        }
    }

    fn applies(&self, condition: Option<&str>, runtime: &str) -> bool {
        match condition {
            None => true,
            Some(c) => c == runtime || self.schema.is_subtype(c, runtime),
        }
    }

    /// Adds the fields `set` selects on an object of type `runtime` (fragments that
    /// apply included, `@skip`/`@include` applied).
    fn collect(&self, set: &'s SelectionSet, runtime: &str, into: &mut Vec<&'s Field>) {
        for item in &set.items {
            match item {
                Selection::Field(f) => {
                    if included(&f.conditions, self.variables) {
                        into.push(f);
                    }
                }
                Selection::InlineFragment(frag) => {
                    if included(&frag.conditions, self.variables)
                        && self.applies(frag.type_condition.as_deref(), runtime)
                    {
                        self.collect(&frag.selection_set, runtime, into);
                    }
                }
            }
        }
    }

    /// The fields `sets` select on an object of type `runtime`, grouped by key.
    fn collected(&self, sets: &[&'s SelectionSet], runtime: &str) -> Collected<'s> {
        let mut c = Collected::default();
        for set in sets {
            self.collect(set, runtime, &mut c.fields);
        }
        group(&mut c);
        c
    }

    fn object(
        &mut self,
        sets: &[&'s SelectionSet],
        source: &Object,
        runtime: &str,
        root: bool,
    ) -> Result<(), Bubble> {
        // Several sets only where one key is selected in several places (their
        // selections merged): rare enough to collect each time.
        let [set] = sets else {
            let c = self.collected(sets, runtime);
            return self.fields(&c, source, runtime, root);
        };
        let found = self
            .seen
            .iter()
            .find(|(s, t, _)| std::ptr::eq(*s, *set) && t == runtime)
            .map(|(_, _, c)| Rc::clone(c));
        let c = match found {
            Some(c) => c,
            None => {
                let c = Rc::new(self.collected(sets, runtime));
                if self.seen.len() < SEEN_LIMIT {
                    self.seen.push((set, runtime.to_string(), Rc::clone(&c)));
                }
                c
            }
        };
        self.fields(&c, source, runtime, root)
    }

    fn fields(
        &mut self,
        c: &Collected<'s>,
        source: &Object,
        runtime: &str,
        root: bool,
    ) -> Result<(), Bubble> {
        let schema = self.schema;
        self.out.push(b'{');
        let mut comma = false;
        let mut merged: Vec<&'s SelectionSet> = Vec::new();
        // The data's fields are mostly in the selection's order: each search starts
        // after the field found last.
        let mut at = 0;
        for (i, &f) in c.fields.iter().enumerate() {
            if !c.first[i] {
                continue;
            }
            if comma {
                self.out.push(b',');
            }
            comma = true;
            // Response keys are GraphQL names: nothing in them needs escaping.
            self.out.push(b'"');
            self.out.extend_from_slice(f.response_key.as_bytes());
            self.out.extend_from_slice(b"\":");
            if f.name == "__typename" {
                match source.get("__typename") {
                    Some(name) => name.write_json(&mut self.out),
                    None => write_str(&mut self.out, runtime),
                }
                continue;
            }
            if root && (f.name == "__schema" || f.name == "__type") {
                match source.get(&f.response_key) {
                    Some(v) => v.write_json(&mut self.out),
                    None => self.out.extend_from_slice(b"null"),
                }
                continue;
            }
            // Known from the operation when the object is of the selection's own type
            // (always, below an object type); looked up otherwise.
            let (ty, check_enum): (&Type, bool) = match &f.output {
                Some(out) if f.parent_type == runtime => (&out.ty, out.is_enum),
                _ => match schema.type_field(runtime, &f.name) {
                    Ok(def) => (&def.ty, true),
                    Err(_) => {
                        self.out.extend_from_slice(b"null");
                        continue;
                    }
                },
            };
            // The selections of every field with this key apply to its value.
            let own: Option<&'s SelectionSet> = f.selection_set.as_ref();
            let sets: &[&'s SelectionSet] = if c.next[i] == usize::MAX {
                own.as_slice()
            } else {
                merged.clear();
                let mut j = i;
                while j != usize::MAX {
                    merged.extend(c.fields[j].selection_set.as_ref());
                    j = c.next[j];
                }
                &merged
            };
            self.path.push(At::Key(&f.response_key));
            let found = source.position_from(&f.response_key, at);
            if let Some(p) = found {
                at = p + 1;
            }
            let shaped = self.value(
                found.and_then(|p| source.value_at(p)),
                ty,
                sets,
                check_enum,
                (runtime, &f.name),
            );
            self.path.pop();
            shaped?;
        }
        self.out.push(b'}');
        Ok(())
    }

    /// Writes the value of a position of type `ty`; a null there that the type does not
    /// allow is passed to the parent.
    fn value(
        &mut self,
        value: Option<&Node>,
        ty: &Type,
        sets: &[&'s SelectionSet],
        check_enum: bool,
        field: (&str, &str),
    ) -> Result<(), Bubble> {
        let mark = self.out.len();
        match self.write_value(value, ty, sets, check_enum, field) {
            Written::Value => Ok(()),
            Written::Null if ty.is_non_null() => {
                self.null_error(field, ty);
                Err(Bubble)
            }
            Written::Null => Ok(()),
            // The error was recorded where the null appeared; a nullable position
            // absorbs the bubble, a non-null one passes it on.
            Written::Bubbled if ty.is_non_null() => Err(Bubble),
            Written::Bubbled => {
                self.out.truncate(mark);
                self.out.extend_from_slice(b"null");
                Ok(())
            }
        }
    }

    fn write_value(
        &mut self,
        value: Option<&Node>,
        ty: &Type,
        sets: &[&'s SelectionSet],
        check_enum: bool,
        field: (&str, &str),
    ) -> Written {
        match ty {
            Type::NonNullNamed(n) | Type::Named(n) => match value {
                None | Some(Node::Null) => {
                    self.out.extend_from_slice(b"null");
                    Written::Null
                }
                Some(Node::Object(obj)) if !sets.is_empty() => {
                    let runtime = obj
                        .get("__typename")
                        .and_then(Node::as_str)
                        .unwrap_or(n.as_str());
                    // The field's own type is in the API schema (the operation was
                    // validated against it); another one may be hidden.
                    if runtime != n.as_str() && !self.schema.types.contains_key(runtime) {
                        // A type the API schema hides (`@inaccessible`): the object must
                        // not reach the client, nor its type's name.
                        self.invalid_value();
                        return Written::Bubbled;
                    }
                    match self.object(sets, obj, runtime, false) {
                        Ok(()) => Written::Value,
                        Err(Bubble) => Written::Bubbled,
                    }
                }
                Some(v) if sets.is_empty() => {
                    if check_enum
                        && let Some(apollo_compiler::schema::ExtendedType::Enum(e)) =
                            self.schema.types.get(n.as_str())
                        && !v.as_str().is_some_and(|name| e.values.contains_key(name))
                    {
                        // A value the API schema does not have (`@inaccessible`, or one
                        // the subgraph made up).
                        self.invalid_value();
                        return Written::Bubbled;
                    }
                    v.write_json(&mut self.out);
                    Written::Value
                }
                Some(_) => {
                    self.out.extend_from_slice(b"null");
                    Written::Null
                }
            },
            Type::NonNullList(inner) | Type::List(inner) => match value {
                Some(Node::List(items)) => {
                    self.out.push(b'[');
                    let mut bubbled = false;
                    for (i, item) in items.iter().enumerate() {
                        if i > 0 {
                            self.out.push(b',');
                        }
                        self.path.push(At::Index(i));
                        // Only a non-null item type passes a bubble to the list. The
                        // list is then null, but every item is still completed, so each
                        // null item gets its error (as graphql-js reports them).
                        if self
                            .value(Some(item), inner, sets, check_enum, field)
                            .is_err()
                        {
                            bubbled = true;
                        }
                        self.path.pop();
                    }
                    self.out.push(b']');
                    if bubbled {
                        Written::Bubbled
                    } else {
                        Written::Value
                    }
                }
                _ => {
                    self.out.extend_from_slice(b"null");
                    Written::Null
                }
            },
        }
    }

    fn here(&self) -> Vec<Step> {
        self.path
            .iter()
            .map(|s| match s {
                At::Key(k) => Step::Key((*k).to_string()),
                At::Index(i) => Step::Index(*i),
            })
            .collect()
    }

    /// Records that the value here is not one of its type in the API schema.
    fn invalid_value(&mut self) {
        let path = self.here();
        self.errors.push(serde_json::json!({
            "message": "Invalid value found for this field",
            "path": path_json(&path),
            "extensions": { "code": "INVALID_GRAPHQL" }
        }));
    }

    /// Records a non-null violation unless an error already explains this position.
    /// `field` is the (object type, field name) whose value this is, `ty` the position's
    /// type; the message names the field (`Type.field`) or the list item, as graphql-js
    /// does.
    fn null_error(&mut self, field: (&str, &str), ty: &Type) {
        let path = self.here();
        let here = path_json(&path);
        let here = here.as_array().cloned().unwrap_or_default();
        // Authorization errors name fields by their path in the operation, without
        // list indices; they explain every item's null.
        let fields_only: Vec<Value> = here.iter().filter(|s| s.is_string()).cloned().collect();
        let explained = self
            .errors
            .iter()
            .any(|e| match e.get("path").and_then(Value::as_array) {
                Some(p) => {
                    (p.len() <= here.len() && here[..p.len()] == p[..])
                        || (p.len() <= fields_only.len() && fields_only[..p.len()] == p[..])
                }
                None => false,
            })
            || self.errors.iter().any(|e| {
                e.get("path").is_none()
                    && e.pointer("/extensions/code").and_then(Value::as_str)
                        == Some("SUBREQUEST_HTTP_ERROR")
            });
        if !explained {
            let position = match path.last() {
                Some(Step::Index(i)) => {
                    format!(
                        "array element of type {} at index {i}",
                        ty.clone().nullable()
                    )
                }
                _ => format!("field {}.{}", field.0, field.1),
            };
            self.errors.push(serde_json::json!({
                "message": format!("Cannot return null for non-nullable {position}."),
                "path": Value::Array(here),
                "extensions": { "code": "NULL_IN_NON_NULL_FIELD" }
            }));
        }
    }
}

/// Groups `c.fields` by response key: marks the first of each key and links each to
/// the next with the same key.
fn group(c: &mut Collected<'_>) {
    let n = c.fields.len();
    c.first.clear();
    c.first.resize(n, true);
    c.next.clear();
    c.next.resize(n, usize::MAX);
    if n <= SCAN_LIMIT {
        for i in 1..n {
            let key = &c.fields[i].response_key;
            // The last earlier field with this key, if any, links to this one.
            if let Some(prev) = (0..i).rev().find(|&j| c.fields[j].response_key == *key) {
                c.first[i] = false;
                c.next[prev] = i;
            }
        }
        return;
    }
    let mut last: HashMap<&str, usize> = HashMap::with_capacity(n);
    for i in 0..n {
        if let Some(prev) = last.insert(&c.fields[i].response_key, i) {
            c.first[i] = false;
            c.next[prev] = i;
        }
    }
}

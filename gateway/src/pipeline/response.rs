//! Shapes the merged subgraph data into the client's response: fields in requested
//! order under their aliases, `@skip`/`@include` applied, helper fields the planner
//! added dropped, `__typename` filled in, and nulls in non-null positions bubbled to
//! the nearest nullable parent with an error (GraphQL spec, "Handling Field Errors").

use apollo_compiler::Schema;
use apollo_compiler::ast::Type;
use serde_json::{Map, Value};
use shop_federation::operation::{Condition, ConditionValue, Selection, SelectionSet};

use super::execute::{Step, path_json};

/// A null reached a non-null position; the parent must become null.
struct Bubble;

pub struct Shaper<'a> {
    pub schema: &'a Schema,
    pub variables: &'a Map<String, Value>,
    pub errors: &'a mut Vec<Value>,
}

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

impl Shaper<'_> {
    /// Shapes the root; `None` when a null bubbled all the way up.
    pub fn root(&mut self, set: &SelectionSet, data: &Value, root_type: &str) -> Option<Value> {
        let empty = Map::new();
        let source = data.as_object().unwrap_or(&empty);
        let mut path = Vec::new();
        self.object(set, source, root_type, &mut path, true)
            .ok()
            .map(Value::Object)
    }

    fn applies(&self, condition: Option<&str>, runtime: &str) -> bool {
        match condition {
            None => true,
            Some(c) => c == runtime || self.schema.is_subtype(c, runtime),
        }
    }

    fn object(
        &mut self,
        set: &SelectionSet,
        source: &Map<String, Value>,
        runtime: &str,
        path: &mut Vec<Step>,
        root: bool,
    ) -> Result<Map<String, Value>, Bubble> {
        let mut out = Map::new();
        self.fill(set, source, runtime, path, root, &mut out)?;
        Ok(out)
    }

    fn fill(
        &mut self,
        set: &SelectionSet,
        source: &Map<String, Value>,
        runtime: &str,
        path: &mut Vec<Step>,
        root: bool,
        out: &mut Map<String, Value>,
    ) -> Result<(), Bubble> {
        for item in &set.items {
            match item {
                Selection::Field(f) => {
                    if !included(&f.conditions, self.variables) {
                        continue;
                    }
                    if f.name == "__typename" {
                        let name = source
                            .get("__typename")
                            .cloned()
                            .unwrap_or_else(|| Value::String(runtime.to_string()));
                        out.insert(f.response_key.clone(), name);
                        continue;
                    }
                    if root && (f.name == "__schema" || f.name == "__type") {
                        out.insert(
                            f.response_key.clone(),
                            source.get(&f.response_key).cloned().unwrap_or(Value::Null),
                        );
                        continue;
                    }
                    let Ok(def) = self.schema.type_field(runtime, &f.name) else {
                        out.insert(f.response_key.clone(), Value::Null);
                        continue;
                    };
                    let ty = def.ty.clone();
                    path.push(Step::Key(f.response_key.clone()));
                    let shaped = self.value(
                        source.get(&f.response_key),
                        &ty,
                        f.selection_set.as_ref(),
                        (runtime, &f.name),
                        path,
                    );
                    path.pop();
                    match shaped {
                        Ok(v) => match out.get_mut(&f.response_key) {
                            // The same response key selected twice (e.g. through fragments).
                            Some(existing) => super::execute::merge(existing, v),
                            None => {
                                out.insert(f.response_key.clone(), v);
                            }
                        },
                        Err(Bubble) => {
                            if ty.is_non_null() {
                                return Err(Bubble);
                            }
                            out.insert(f.response_key.clone(), Value::Null);
                        }
                    }
                }
                Selection::InlineFragment(frag) => {
                    if !included(&frag.conditions, self.variables)
                        || !self.applies(frag.type_condition.as_deref(), runtime)
                    {
                        continue;
                    }
                    self.fill(&frag.selection_set, source, runtime, path, root, out)?;
                }
            }
        }
        Ok(())
    }

    fn value(
        &mut self,
        value: Option<&Value>,
        ty: &Type,
        set: Option<&SelectionSet>,
        field: (&str, &str),
        path: &mut Vec<Step>,
    ) -> Result<Value, Bubble> {
        let shaped = match ty {
            Type::NonNullNamed(n) | Type::Named(n) => match value {
                None | Some(Value::Null) => Value::Null,
                Some(Value::Object(obj)) if set.is_some() => {
                    let runtime = obj
                        .get("__typename")
                        .and_then(Value::as_str)
                        .unwrap_or(n.as_str())
                        .to_string();
                    if !self.schema.types.contains_key(runtime.as_str()) {
                        // A type the API schema hides (`@inaccessible`): the object must
                        // not reach the client, nor its type's name.
                        self.invalid_value(path);
                        return Self::null_at(ty);
                    }
                    let shaped = match set {
                        Some(set) => self.object(set, obj, &runtime, path, false),
                        None => Ok(Map::new()),
                    };
                    match shaped {
                        Ok(m) => Value::Object(m),
                        // The error was recorded where the null appeared; a nullable
                        // position absorbs the bubble, a non-null one passes it on.
                        Err(Bubble) if ty.is_non_null() => return Err(Bubble),
                        Err(Bubble) => Value::Null,
                    }
                }
                Some(v) if set.is_none() => {
                    if let Some(apollo_compiler::schema::ExtendedType::Enum(e)) =
                        self.schema.types.get(n.as_str())
                        && !v.as_str().is_some_and(|name| e.values.contains_key(name))
                    {
                        // A value the API schema does not have (`@inaccessible`, or one
                        // the subgraph made up).
                        self.invalid_value(path);
                        return Self::null_at(ty);
                    }
                    v.clone()
                }
                Some(_) => Value::Null,
            },
            Type::NonNullList(inner) | Type::List(inner) => match value {
                Some(Value::Array(items)) => {
                    let mut out = Vec::with_capacity(items.len());
                    let mut bubbled = false;
                    for (i, item) in items.iter().enumerate() {
                        path.push(Step::Index(i));
                        // Only a non-null item type passes a bubble to the list.
                        let r = self.value(Some(item), inner, set, field, path);
                        path.pop();
                        match r {
                            Ok(v) => out.push(v),
                            // The list is null, but every item is still completed, so
                            // each null item gets its error (as graphql-js reports them).
                            Err(Bubble) => bubbled = true,
                        }
                    }
                    match (bubbled, ty.is_non_null()) {
                        (false, _) => Value::Array(out),
                        (true, true) => return Err(Bubble),
                        (true, false) => Value::Null,
                    }
                }
                _ => Value::Null,
            },
        };
        if shaped.is_null() && ty.is_non_null() {
            self.null_error(path, field, ty);
            return Err(Bubble);
        }
        Ok(shaped)
    }

    /// Records that the value at `path` is not one of its type in the API schema.
    fn invalid_value(&mut self, path: &[Step]) {
        self.errors.push(serde_json::json!({
            "message": "Invalid value found for this field",
            "path": path_json(path),
            "extensions": { "code": "INVALID_GRAPHQL" }
        }));
    }

    /// A null where a value was, passed on when the position is non-null (the error
    /// that explains it was recorded).
    fn null_at(ty: &Type) -> Result<Value, Bubble> {
        if ty.is_non_null() {
            Err(Bubble)
        } else {
            Ok(Value::Null)
        }
    }

    /// Records a non-null violation unless an error already explains this position.
    /// `field` is the (object type, field name) whose value this is, `ty` the position's
    /// type; the message names the field (`Type.field`) or the list item, as graphql-js
    /// does.
    fn null_error(&mut self, path: &[Step], field: (&str, &str), ty: &Type) {
        let here = path_json(path);
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

//! A fixture subgraph: executes the operations the gateway sends against JSON data, the
//! way a real subgraph would, so conformance cases pin behaviour, not request text.
//!
//! Data layout: `{"Query": {...root fields...}, "Mutation": {...}, "entities": {"Type":
//! [objects]}}`. A field value is looked up as `name`, or `name(arg: <json>, ...)` when
//! the field has arguments. `{"$error": "msg"}` as a value raises a field error there.
//! `_entities` finds, per representation, the object of its `__typename` whose fields
//! equal the representation's (the representation's own fields are visible to the
//! object's resolvers, as `@requires` inputs are).

use apollo_compiler::ast::{Definition, Document, OperationType, Selection, Value as Ast};
use serde_json::{Map, Value, json};

pub struct Fixture {
    pub data: Value,
    /// Declared field types (`Type.field` -> named type), for `__typename` defaults.
    pub types: std::collections::HashMap<String, String>,
    pub abstract_types: Vec<String>,
    /// `(type, interface)` pairs declared in the SDL.
    pub implements: Vec<(String, String)>,
    /// The schema the subgraph serves (its SDL plus `_entities`), for validating each
    /// operation by the spec's rules before executing it, as a strict subgraph does.
    strict: apollo_compiler::validation::Valid<apollo_compiler::Schema>,
}

/// The subgraph's schema as a server would build it: the SDL plus `_Any`, `_Entity`
/// (its `@key` types) and `Query._entities`, read as the synthetic subgraphs read theirs.
fn strict_schema(
    sdl: &str,
    entities: &[String],
) -> apollo_compiler::validation::Valid<apollo_compiler::Schema> {
    let mut text = sdl.to_string();
    if !entities.is_empty() {
        text.push_str("\nscalar _Any\n");
        text.push_str(&format!("union _Entity = {}\n", entities.join(" | ")));
        let has_query = sdl.contains("type Query");
        text.push_str(if has_query {
            "extend type Query"
        } else {
            "type Query"
        });
        text.push_str(" { _entities(representations: [_Any!]!): [_Entity]! }\n");
    }
    crate::synthetic::strict_schema(&text)
}

impl Fixture {
    pub fn new(sdl: &str, data: Value) -> Fixture {
        let mut types = std::collections::HashMap::new();
        let mut abstract_types = Vec::new();
        let mut implements = Vec::new();
        let mut entities = Vec::new();
        if let Ok(doc) = Document::parse(sdl, "fixture.graphql") {
            for def in &doc.definitions {
                let (name, fields) = match def {
                    Definition::ObjectTypeDefinition(t) => {
                        if t.directives.iter().any(|d| d.name == "key")
                            && !entities.contains(&t.name.to_string())
                        {
                            entities.push(t.name.to_string());
                        }
                        for i in &t.implements_interfaces {
                            implements.push((t.name.to_string(), i.to_string()));
                        }
                        (t.name.to_string(), &t.fields)
                    }
                    Definition::ObjectTypeExtension(t) => (t.name.to_string(), &t.fields),
                    Definition::InterfaceTypeDefinition(t) => {
                        abstract_types.push(t.name.to_string());
                        (t.name.to_string(), &t.fields)
                    }
                    Definition::UnionTypeDefinition(t) => {
                        abstract_types.push(t.name.to_string());
                        continue;
                    }
                    _ => continue,
                };
                for f in fields {
                    types.insert(
                        format!("{name}.{}", f.name),
                        f.ty.inner_named_type().to_string(),
                    );
                }
            }
        }
        Fixture {
            data,
            types,
            abstract_types,
            implements,
            strict: strict_schema(sdl, &entities),
        }
    }

    pub fn execute(&self, body: &Value) -> Value {
        let query = body["query"].as_str().unwrap_or_default();
        if let Err(e) = apollo_compiler::ExecutableDocument::parse_and_validate(
            &self.strict,
            query,
            "subgraph-op.graphql",
        ) {
            return json!({ "errors": [{ "message": format!("invalid subgraph operation: {}", e.errors) }] });
        }
        let vars = body["variables"].as_object().cloned().unwrap_or_default();
        let doc = match Document::parse(query, "op.graphql") {
            Ok(d) => d,
            Err(e) => {
                return json!({ "errors": [{ "message": format!("fixture cannot parse: {}", e.errors) }] });
            }
        };
        let Some(op) = doc.definitions.iter().find_map(|d| match d {
            Definition::OperationDefinition(op) => Some(op),
            _ => None,
        }) else {
            return json!({ "errors": [{ "message": "no operation" }] });
        };
        let root_type = match op.operation_type {
            OperationType::Mutation => "Mutation",
            _ => "Query",
        };
        let mut errors = Vec::new();
        let root = self.data.get(root_type).cloned().unwrap_or(json!({}));
        let mut ex = Exec {
            fx: self,
            vars: &vars,
            errors: &mut errors,
        };
        let data = ex.object(&root, root_type, &op.selection_set, &mut Vec::new(), true);
        let mut out = Map::new();
        if !errors.is_empty() {
            out.insert("errors".into(), Value::Array(errors));
        }
        out.insert("data".into(), data);
        Value::Object(out)
    }
}

struct Exec<'a> {
    fx: &'a Fixture,
    vars: &'a Map<String, Value>,
    errors: &'a mut Vec<Value>,
}

fn to_json(v: &Ast, vars: &Map<String, Value>) -> Value {
    match v {
        Ast::Null => Value::Null,
        Ast::Variable(n) => vars.get(n.as_str()).cloned().unwrap_or(Value::Null),
        Ast::Enum(n) => Value::String(n.to_string()),
        Ast::String(s) => Value::String(s.clone()),
        Ast::Boolean(b) => Value::Bool(*b),
        Ast::Int(i) => i
            .as_str()
            .parse::<i64>()
            .map(Value::from)
            .unwrap_or(Value::Null),
        Ast::Float(f) => f
            .as_str()
            .parse::<f64>()
            .ok()
            .and_then(serde_json::Number::from_f64)
            .map(Value::Number)
            .unwrap_or(Value::Null),
        Ast::List(items) => Value::Array(items.iter().map(|i| to_json(i, vars)).collect()),
        Ast::Object(fields) => Value::Object(
            fields
                .iter()
                .map(|(k, v)| (k.to_string(), to_json(v, vars)))
                .collect(),
        ),
    }
}

impl Exec<'_> {
    fn included(&self, directives: &apollo_compiler::ast::DirectiveList) -> bool {
        directives.iter().all(|d| {
            let cond = d
                .specified_argument_by_name("if")
                .map(|v| to_json(v, self.vars))
                .and_then(|v| v.as_bool());
            !matches!(
                (d.name.as_str(), cond),
                ("skip", Some(true)) | ("include", Some(false))
            )
        })
    }

    fn runtime_type(&self, obj: &Value, static_type: &str) -> String {
        obj.get("__typename")
            .and_then(Value::as_str)
            .unwrap_or(static_type)
            .to_string()
    }

    fn object(
        &mut self,
        obj: &Value,
        type_name: &str,
        set: &[Selection],
        path: &mut Vec<Value>,
        root: bool,
    ) -> Value {
        let mut out = Map::new();
        self.fill(obj, type_name, set, path, root, &mut out);
        Value::Object(out)
    }

    fn fill(
        &mut self,
        obj: &Value,
        type_name: &str,
        set: &[Selection],
        path: &mut Vec<Value>,
        root: bool,
        out: &mut Map<String, Value>,
    ) {
        for sel in set {
            match sel {
                Selection::Field(f) => {
                    if !self.included(&f.directives) {
                        continue;
                    }
                    let key = f.alias.as_ref().unwrap_or(&f.name).to_string();
                    path.push(Value::String(key.clone()));
                    let value = if f.name == "__typename" {
                        Value::String(self.runtime_type(obj, type_name))
                    } else if root && f.name == "_entities" {
                        self.entities(f, path)
                    } else {
                        let args: Vec<String> = f
                            .arguments
                            .iter()
                            .map(|a| format!("{}: {}", a.name, to_json(&a.value, self.vars)))
                            .collect();
                        let lookup = if args.is_empty() {
                            f.name.to_string()
                        } else {
                            format!("{}({})", f.name, args.join(", "))
                        };
                        let mut raw = obj
                            .get(&lookup)
                            .or_else(|| obj.get(f.name.as_str()))
                            .cloned()
                            .unwrap_or(Value::Null);
                        // `{"$rep": "field"}` (or `"field.sub"`): echo what the
                        // representation carried, so a case proves the gateway sent a
                        // @requires input.
                        if let Some(from) = raw.get("$rep").and_then(Value::as_str) {
                            let carried = from
                                .split('.')
                                .try_fold(obj.get("$representation"), |v, k| v.map(|v| v.get(k)))
                                .flatten();
                            raw = match carried {
                                Some(v) => v.clone(),
                                None => {
                                    json!({ "$error": format!("the representation has no {from}") })
                                }
                            };
                        }
                        let field_type = self
                            .fx
                            .types
                            .get(&format!("{type_name}.{}", f.name))
                            .cloned()
                            .unwrap_or_default();
                        self.value(&raw, &field_type, &f.selection_set, path)
                    };
                    path.pop();
                    out.insert(key, value);
                }
                Selection::InlineFragment(frag) => {
                    if !self.included(&frag.directives) {
                        continue;
                    }
                    let runtime = self.runtime_type(obj, type_name);
                    let applies = match &frag.type_condition {
                        None => true,
                        Some(c) => {
                            c.as_str() == runtime
                                || c.as_str() == type_name
                                || self.implements(obj, c.as_str())
                        }
                    };
                    if applies {
                        let inner = frag
                            .type_condition
                            .as_ref()
                            .map(|c| c.to_string())
                            .unwrap_or_else(|| type_name.to_string());
                        let inner = if self.fx.abstract_types.contains(&inner) {
                            runtime
                        } else {
                            inner
                        };
                        self.fill(obj, &inner, &frag.selection_set, path, root, out);
                    }
                }
                Selection::FragmentSpread(_) => {}
            }
        }
    }

    fn implements(&self, obj: &Value, interface: &str) -> bool {
        let runtime = obj.get("__typename").and_then(Value::as_str);
        obj.get("__implements")
            .and_then(Value::as_array)
            .is_some_and(|a| a.iter().any(|i| i == interface))
            || self
                .fx
                .implements
                .iter()
                .any(|(t, i)| Some(t.as_str()) == runtime && i == interface)
    }

    fn value(
        &mut self,
        raw: &Value,
        type_name: &str,
        set: &[Selection],
        path: &mut Vec<Value>,
    ) -> Value {
        if let Some(msg) = raw.get("$error").and_then(Value::as_str) {
            let mut e = json!({ "message": msg, "path": path.clone() });
            if let Some(code) = raw.get("code") {
                e["extensions"] = json!({ "code": code });
            }
            self.errors.push(e);
            return Value::Null;
        }
        match raw {
            Value::Array(items) => Value::Array(
                items
                    .iter()
                    .enumerate()
                    .map(|(i, item)| {
                        path.push(Value::from(i));
                        let v = self.value(item, type_name, set, path);
                        path.pop();
                        v
                    })
                    .collect(),
            ),
            Value::Object(_) if !set.is_empty() => {
                let runtime = self.runtime_type(raw, type_name);
                // An entity reference in the data resolves to the full object when the
                // fixture has it, as a subgraph that owns the entity would.
                let resolved = self
                    .find_entity(&runtime, raw)
                    .unwrap_or_else(|| raw.clone());
                self.object(&resolved, &runtime, set, path, false)
            }
            other => other.clone(),
        }
    }

    fn find_entity(&self, type_name: &str, rep: &Value) -> Option<Value> {
        let list = self
            .fx
            .data
            .pointer(&format!("/entities/{type_name}"))?
            .as_array()?;
        let rep_obj = rep.as_object()?;
        let found = list.iter().find(|candidate| {
            rep_obj
                .iter()
                .filter(|(k, _)| *k != "__typename")
                .all(|(k, v)| match candidate.get(k) {
                    Some(c) => c == v,
                    None => true,
                })
                && rep_obj
                    .keys()
                    .any(|k| k != "__typename" && candidate.get(k).is_some())
        })?;
        // The representation stays visible (for `$rep`), as @requires inputs are to a
        // real subgraph's resolvers.
        let mut merged = found.clone();
        if let Some(m) = merged.as_object_mut() {
            // An interface entity resolves to its concrete type when the data says so.
            m.entry("__typename")
                .or_insert_with(|| Value::String(type_name.to_string()));
            m.insert("$representation".into(), rep.clone());
        }
        Some(merged)
    }

    fn entities(&mut self, f: &apollo_compiler::ast::Field, path: &mut Vec<Value>) -> Value {
        let reps = f
            .arguments
            .iter()
            .find(|a| a.name == "representations")
            .map(|a| to_json(&a.value, self.vars))
            .and_then(|v| v.as_array().cloned())
            .unwrap_or_default();
        let mut out = Vec::new();
        for (i, rep) in reps.iter().enumerate() {
            path.push(Value::from(i));
            let type_name = rep["__typename"].as_str().unwrap_or_default().to_string();
            let v = match self.find_entity(&type_name, rep) {
                Some(obj) => self.object(&obj, &type_name, &f.selection_set, path, false),
                None => Value::Null,
            };
            path.pop();
            out.push(v);
        }
        Value::Array(out)
    }
}

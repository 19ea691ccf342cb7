//! Operations generated from an API schema: random but reproducible (a seed), valid
//! (each is validated and dropped when it is not), and shaped to reach what planners
//! get wrong: fragments on abstract types and their members, aliases, nested
//! entities, arguments (literal and variables), `@skip`/`@include`, named fragments.

use apollo_compiler::schema::ExtendedType;
use apollo_compiler::validation::Valid;
use apollo_compiler::{ExecutableDocument, Schema};
use serde_json::{Value, json};

pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed.wrapping_mul(0x9E3779B97F4A7C15) | 1)
    }
    pub fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }
    pub fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            0
        } else {
            (self.next() % n as u64) as usize
        }
    }
    pub fn chance(&mut self, percent: u64) -> bool {
        self.next() % 100 < percent
    }
}

pub struct Generated {
    pub query: String,
    pub variables: Value,
}

struct Gen<'a> {
    schema: &'a Schema,
    rng: Rng,
    vars: Vec<(String, String, Value)>,
    fragments: Vec<String>,
    aliases: usize,
}

fn is_leaf(schema: &Schema, name: &str) -> bool {
    matches!(
        schema.types.get(name),
        Some(ExtendedType::Scalar(_) | ExtendedType::Enum(_)) | None
    )
}

impl Gen<'_> {
    fn value(&mut self, ty: &apollo_compiler::ast::Type, depth: usize) -> Option<String> {
        use apollo_compiler::ast::Type;
        match ty {
            Type::List(inner) | Type::NonNullList(inner) => {
                let n = self.rng.below(3);
                let items: Option<Vec<String>> =
                    (0..n).map(|_| self.value(inner, depth + 1)).collect();
                Some(format!("[{}]", items?.join(", ")))
            }
            Type::Named(n) | Type::NonNullNamed(n) => {
                let name = n.as_str();
                Some(match name {
                    "Int" => (self.rng.below(20) as i64 - 3).to_string(),
                    "Float" => format!("{}.5", self.rng.below(10)),
                    "Boolean" => (self.rng.below(2) == 0).to_string(),
                    "String" | "ID" => format!("\"v{}\"", self.rng.below(5)),
                    _ => match self.schema.types.get(name)? {
                        ExtendedType::Enum(e) => {
                            let vals: Vec<_> = e.values.keys().collect();
                            vals.get(self.rng.below(vals.len()))?.to_string()
                        }
                        ExtendedType::InputObject(io) => {
                            if depth > 3 {
                                return None;
                            }
                            let mut parts = Vec::new();
                            for (fname, f) in &io.fields {
                                if f.ty.is_non_null() && f.default_value.is_none()
                                    || self.rng.chance(40)
                                {
                                    parts.push(format!(
                                        "{fname}: {}",
                                        self.value(&f.ty, depth + 1)?
                                    ));
                                }
                            }
                            format!("{{{}}}", parts.join(", "))
                        }
                        _ => format!("\"v{}\"", self.rng.below(5)),
                    },
                })
            }
        }
    }

    fn arguments(&mut self, def: &apollo_compiler::schema::FieldDefinition) -> Option<String> {
        let mut parts = Vec::new();
        for a in &def.arguments {
            let required = a.ty.is_non_null() && a.default_value.is_none();
            if !required && !self.rng.chance(50) {
                continue;
            }
            let literal = self.value(&a.ty, 0)?;
            if self.rng.chance(30) {
                let name = format!("v{}", self.vars.len());
                let parsed: Value = literal_to_json(&literal);
                self.vars.push((name.clone(), a.ty.to_string(), parsed));
                parts.push(format!("{}: ${name}", a.name));
            } else {
                parts.push(format!("{}: {literal}", a.name));
            }
        }
        Some(if parts.is_empty() {
            String::new()
        } else {
            format!("({})", parts.join(", "))
        })
    }

    fn condition(&mut self) -> String {
        if !self.rng.chance(8) {
            return String::new();
        }
        let which = if self.rng.chance(50) {
            "skip"
        } else {
            "include"
        };
        if self.rng.chance(50) {
            let name = format!("v{}", self.vars.len());
            let v = self.rng.chance(50);
            self.vars.push((name.clone(), "Boolean!".into(), json!(v)));
            format!(" @{which}(if: ${name})")
        } else {
            format!(" @{which}(if: {})", self.rng.chance(50))
        }
    }

    fn selection(&mut self, type_name: &str, depth: usize) -> String {
        let mut items: Vec<String> = Vec::new();
        let (fields, possible): (
            Vec<(String, apollo_compiler::schema::FieldDefinition)>,
            Vec<String>,
        ) = match self.schema.types.get(type_name) {
            Some(ExtendedType::Object(o)) => (
                o.fields
                    .iter()
                    .map(|(n, f)| (n.to_string(), (***f).clone()))
                    .collect(),
                Vec::new(),
            ),
            Some(ExtendedType::Interface(i)) => (
                i.fields
                    .iter()
                    .map(|(n, f)| (n.to_string(), (***f).clone()))
                    .collect(),
                self.schema
                    .implementers_map()
                    .get(type_name)
                    .map(|imp| {
                        imp.objects
                            .iter()
                            .map(|o| o.to_string())
                            .chain(imp.interfaces.iter().map(|i| i.to_string()))
                            .collect()
                    })
                    .unwrap_or_default(),
            ),
            Some(ExtendedType::Union(u)) => (
                Vec::new(),
                u.members.iter().map(|m| m.to_string()).collect(),
            ),
            _ => (Vec::new(), Vec::new()),
        };
        let count = 1 + self.rng.below(if depth == 0 { 3 } else { 4 });
        for _ in 0..count {
            if fields.is_empty() {
                break;
            }
            let (name, def) = &fields[self.rng.below(fields.len())];
            let inner = def.ty.inner_named_type().to_string();
            if !is_leaf(self.schema, &inner) && depth >= 4 {
                continue;
            }
            let Some(args) = self.arguments(def) else {
                continue;
            };
            let alias = if self.rng.chance(15) {
                self.aliases += 1;
                format!("a{}: ", self.aliases)
            } else {
                String::new()
            };
            let cond = self.condition();
            if is_leaf(self.schema, &inner) {
                items.push(format!("{alias}{name}{args}{cond}"));
            } else {
                let sub = self.selection(&inner, depth + 1);
                items.push(format!("{alias}{name}{args}{cond} {sub}"));
            }
        }
        if !possible.is_empty() {
            let n = 1 + self.rng.below(possible.len().min(3));
            for _ in 0..n {
                let on = possible[self.rng.below(possible.len())].clone();
                let sub = self.selection(&on, depth + 1);
                let cond = self.condition();
                if self.rng.chance(25) {
                    let fname = format!("F{}", self.fragments.len());
                    self.fragments
                        .push(format!("fragment {fname} on {on} {sub}"));
                    items.push(format!("...{fname}{cond}"));
                } else {
                    items.push(format!("... on {on}{cond} {sub}"));
                }
            }
        }
        if items.is_empty() || self.rng.chance(20) {
            items.push("__typename".into());
        }
        format!("{{ {} }}", items.join(" "))
    }
}

fn literal_to_json(text: &str) -> Value {
    // Literals here are JSON but for enum names and unquoted object keys.
    let doc = format!("query($x: Boolean) {{ f(a: {text}) }}");
    match apollo_compiler::ast::Document::parse(doc, "v.graphql") {
        Ok(d) => {
            let op = d.definitions.iter().find_map(|d| match d {
                apollo_compiler::ast::Definition::OperationDefinition(o) => Some(o),
                _ => None,
            });
            let v = op.and_then(|o| match &o.selection_set[0] {
                apollo_compiler::ast::Selection::Field(f) => {
                    f.arguments.first().map(|a| a.value.clone())
                }
                _ => None,
            });
            v.map(|v| ast_to_json(&v)).unwrap_or(Value::Null)
        }
        Err(_) => Value::Null,
    }
}

fn ast_to_json(v: &apollo_compiler::ast::Value) -> Value {
    use apollo_compiler::ast::Value as V;
    match v {
        V::Null | V::Variable(_) => Value::Null,
        V::Enum(n) => json!(n.as_str()),
        V::String(s) => json!(s),
        V::Float(f) => json!(f.try_to_f64().unwrap_or(0.0)),
        V::Int(i) => json!(i.try_to_i32().unwrap_or(0)),
        V::Boolean(b) => json!(b),
        V::List(items) => Value::Array(items.iter().map(|i| ast_to_json(i)).collect()),
        V::Object(fields) => Value::Object(
            fields
                .iter()
                .map(|(n, v)| (n.to_string(), ast_to_json(v)))
                .collect(),
        ),
    }
}

/// `count` valid query operations on `schema`, the same for the same seed.
pub fn operations(schema: &Valid<Schema>, seed: u64, count: usize) -> Vec<Generated> {
    let mut out = Vec::new();
    let mut rng = Rng::new(seed);
    let mut tries = 0;
    while out.len() < count && tries < count * 20 {
        tries += 1;
        let mut g = Gen {
            schema,
            rng: Rng::new(rng.next()),
            vars: Vec::new(),
            fragments: Vec::new(),
            aliases: 0,
        };
        let sel = g.selection("Query", 0);
        let decl = if g.vars.is_empty() {
            String::new()
        } else {
            format!(
                "({})",
                g.vars
                    .iter()
                    .map(|(n, t, _)| format!("${n}: {t}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        };
        let mut query = format!("query Q{decl} {sel}");
        for f in &g.fragments {
            query.push('\n');
            query.push_str(f);
        }
        if ExecutableDocument::parse_and_validate(schema, &query, "op.graphql").is_err() {
            continue;
        }
        let variables: serde_json::Map<String, Value> =
            g.vars.into_iter().map(|(n, _, v)| (n, v)).collect();
        out.push(Generated {
            query,
            variables: Value::Object(variables),
        });
    }
    out
}

//! A synthetic subgraph: serves any subgraph SDL and answers every field with a value
//! derived from where it is asked, so two gateways calling the same subgraphs must
//! produce the same response, and a planning mistake shows as a different one.
//!
//! - Every object has an identity. An entity's is `E<n>` for a number `n` carried in
//!   its key fields (`"id-7"`, or `7` for an `Int`), so every subgraph that resolves
//!   it by any key agrees on it; a value type's is its parent's plus the field path.
//! - A field's value is a hash of the identity, the field, its arguments and, for a
//!   `@requires` field, the inputs the representation carried (a missing input is an
//!   error, as a real subgraph would fail). A field that several subgraphs resolve
//!   answers the same everywhere, unless it is overridden: then the subgraph's name
//!   is hashed in too, so routing to the wrong side shows.
//! - Lists have 0 to 3 items, nullable fields are null now and then (only where every
//!   subgraph declares them nullable; nullable key fields too, for entity numbers
//!   3 mod 7), fields named `boom…` fail.
//! - An `@external` field is answered only under a `@provides` that names it, or as a
//!   key; asking for it elsewhere is an error, as a planner must never do that.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

use apollo_compiler::ast::{self, Definition};
use async_graphql::dynamic::{
    Enum, Field, FieldFuture, FieldValue, InputObject, InputValue, Interface, InterfaceField,
    Object, ResolverContext, Scalar, Schema, TypeRef, Union,
};
use async_graphql::{Name, Value};

/// Field-set items as `@key`, `@requires` and `@provides` name them: names, nested
/// braces, and (for the synthetic server's purposes) inline fragments flattened.
#[derive(Clone, Debug, Default)]
pub struct Sel(pub BTreeMap<String, Sel>);

impl Sel {
    pub fn parse(text: &str) -> Sel {
        let tokens: Vec<String> = {
            let mut out = Vec::new();
            let mut cur = String::new();
            let mut depth_paren = 0;
            for c in text.chars() {
                if depth_paren > 0 {
                    if c == '(' {
                        depth_paren += 1;
                    } else if c == ')' {
                        depth_paren -= 1;
                    }
                    continue;
                }
                match c {
                    '(' => {
                        depth_paren = 1;
                    }
                    '{' | '}' => {
                        if !cur.is_empty() {
                            out.push(std::mem::take(&mut cur));
                        }
                        out.push(c.to_string());
                    }
                    c if c.is_whitespace() || c == ',' => {
                        if !cur.is_empty() {
                            out.push(std::mem::take(&mut cur));
                        }
                    }
                    c => cur.push(c),
                }
            }
            if !cur.is_empty() {
                out.push(cur);
            }
            out
        };
        let mut pos = 0;
        Sel::items(&tokens, &mut pos)
    }

    fn items(tokens: &[String], pos: &mut usize) -> Sel {
        let mut sel = Sel::default();
        while *pos < tokens.len() {
            let t = tokens[*pos].clone();
            *pos += 1;
            match t.as_str() {
                "}" => break,
                "..." => {}
                "on" => {
                    // The type condition's name; its selection is flattened below.
                    *pos += 1;
                }
                "{" => {
                    // An inline fragment's selection: flattened into this level.
                    let inner = Sel::items(tokens, pos);
                    sel.merge(&inner);
                }
                name => {
                    let mut sub = Sel::default();
                    if tokens.get(*pos).map(String::as_str) == Some("{") {
                        *pos += 1;
                        sub = Sel::items(tokens, pos);
                    }
                    sel.0.entry(name.to_string()).or_default().merge(&sub);
                }
            }
        }
        sel
    }

    pub fn merge(&mut self, other: &Sel) {
        for (k, v) in &other.0 {
            self.0.entry(k.clone()).or_default().merge(v);
        }
    }
}

/// What every synthetic subgraph of one supergraph knows of all of them.
#[derive(Clone, Default)]
pub struct World {
    /// Per type (and per interface, for entity interfaces): every field any subgraph's
    /// `@key` names, nested.
    pub keys: HashMap<String, Sel>,
    /// `(type, field)` nullable in some subgraph but non-null in another: never null.
    pub sometimes_non_null: BTreeSet<(String, String)>,
    /// `(type, field)` that some subgraph `@override`s.
    pub overridden: BTreeSet<(String, String)>,
}

struct FieldDef {
    name: String,
    ty: ast::Type,
    args: Vec<(String, ast::Type, Option<Value>)>,
    external: bool,
    requires: Option<Sel>,
    provides: Option<Sel>,
}

#[derive(Default)]
struct TypeDef {
    kind: Kind,
    fields: Vec<FieldDef>,
    implements: Vec<String>,
    members: Vec<String>,
    values: Vec<String>,
    keys: Vec<(String, bool)>,
}

#[derive(Default, PartialEq, Clone, Copy)]
enum Kind {
    #[default]
    Object,
    Interface,
    Union,
    Enum,
    Scalar,
    Input,
}

/// One subgraph's types, as read from its SDL (extensions merged).
pub struct Subgraph {
    name: String,
    types: BTreeMap<String, TypeDef>,
}

fn directive_str(d: &ast::Directive, arg: &str) -> Option<String> {
    d.arguments
        .iter()
        .find(|a| a.name.as_str() == arg)
        .and_then(|a| a.value.as_str().map(str::to_string))
}

fn const_value(v: &ast::Value) -> Value {
    match v {
        ast::Value::Null | ast::Value::Variable(_) => Value::Null,
        ast::Value::Enum(n) => Value::Enum(Name::new(n.as_str())),
        ast::Value::String(s) => Value::String(s.clone()),
        ast::Value::Float(f) => f
            .try_to_f64()
            .ok()
            .and_then(|f| serde_json::Number::from_f64(f).map(Value::Number))
            .unwrap_or(Value::Null),
        ast::Value::Int(i) => i
            .try_to_i32()
            .map(|i| Value::Number(i.into()))
            .unwrap_or(Value::Null),
        ast::Value::Boolean(b) => Value::Boolean(*b),
        ast::Value::List(items) => Value::List(items.iter().map(|i| const_value(i)).collect()),
        ast::Value::Object(fields) => Value::Object(
            fields
                .iter()
                .map(|(n, v)| (Name::new(n.as_str()), const_value(v)))
                .collect(),
        ),
    }
}

fn add<'t>(types: &'t mut BTreeMap<String, TypeDef>, name: &str, kind: Kind) -> &'t mut TypeDef {
    let t = types.entry(name.to_string()).or_default();
    t.kind = kind;
    t
}

fn names(list: &[apollo_compiler::Name]) -> impl Iterator<Item = String> + '_ {
    list.iter().map(|n| n.to_string())
}

impl Subgraph {
    pub fn parse(name: &str, sdl: &str) -> Subgraph {
        let doc = ast::Document::parse(sdl, format!("{name}.graphql"))
            .unwrap_or_else(|e| panic!("subgraph {name}: {e}"));
        let mut types: BTreeMap<String, TypeDef> = BTreeMap::new();
        let fields_of = |fields: &[apollo_compiler::Node<ast::FieldDefinition>],
                         external_type: bool| {
            fields
                .iter()
                .map(|f| FieldDef {
                    name: f.name.to_string(),
                    ty: f.ty.clone(),
                    args: f
                        .arguments
                        .iter()
                        .map(|a| {
                            (
                                a.name.to_string(),
                                (*a.ty).clone(),
                                a.default_value.as_ref().map(|v| const_value(v)),
                            )
                        })
                        .collect(),
                    external: external_type || f.directives.get("external").is_some(),
                    requires: f
                        .directives
                        .get("requires")
                        .and_then(|d| directive_str(d, "fields"))
                        .map(|t| Sel::parse(&t)),
                    provides: f
                        .directives
                        .get("provides")
                        .and_then(|d| directive_str(d, "fields"))
                        .map(|t| Sel::parse(&t)),
                })
                .collect::<Vec<_>>()
        };
        let keys_of = |dirs: &ast::DirectiveList| -> Vec<(String, bool)> {
            dirs.get_all("key")
                .filter_map(|d| {
                    let fields = directive_str(d, "fields")?;
                    let resolvable = d
                        .arguments
                        .iter()
                        .find(|a| a.name.as_str() == "resolvable")
                        .and_then(|a| a.value.to_bool())
                        .unwrap_or(true);
                    Some((fields, resolvable))
                })
                .collect()
        };
        for def in &doc.definitions {
            match def {
                Definition::ObjectTypeDefinition(t) => {
                    let ext = t.directives.get("external").is_some();
                    let e = add(&mut types, &t.name, Kind::Object);
                    e.fields.extend(fields_of(&t.fields, ext));
                    e.implements.extend(names(&t.implements_interfaces));
                    e.keys.extend(keys_of(&t.directives));
                }
                Definition::ObjectTypeExtension(t) => {
                    let ext = t.directives.get("external").is_some();
                    let e = add(&mut types, &t.name, Kind::Object);
                    e.fields.extend(fields_of(&t.fields, ext));
                    e.implements.extend(names(&t.implements_interfaces));
                    e.keys.extend(keys_of(&t.directives));
                }
                Definition::InterfaceTypeDefinition(t) => {
                    let e = add(&mut types, &t.name, Kind::Interface);
                    e.fields.extend(fields_of(&t.fields, false));
                    e.implements.extend(names(&t.implements_interfaces));
                    e.keys.extend(keys_of(&t.directives));
                }
                Definition::InterfaceTypeExtension(t) => {
                    let e = add(&mut types, &t.name, Kind::Interface);
                    e.fields.extend(fields_of(&t.fields, false));
                    e.keys.extend(keys_of(&t.directives));
                }
                Definition::UnionTypeDefinition(t) => {
                    add(&mut types, &t.name, Kind::Union)
                        .members
                        .extend(names(&t.members));
                }
                Definition::UnionTypeExtension(t) => {
                    add(&mut types, &t.name, Kind::Union)
                        .members
                        .extend(names(&t.members));
                }
                Definition::EnumTypeDefinition(t) => {
                    let values = t.values.iter().map(|v| v.value.to_string());
                    add(&mut types, &t.name, Kind::Enum).values.extend(values);
                }
                Definition::EnumTypeExtension(t) => {
                    let values = t.values.iter().map(|v| v.value.to_string());
                    add(&mut types, &t.name, Kind::Enum).values.extend(values);
                }
                Definition::ScalarTypeDefinition(t) => {
                    add(&mut types, &t.name, Kind::Scalar);
                }
                Definition::InputObjectTypeDefinition(t) => {
                    let e = add(&mut types, &t.name, Kind::Input);
                    for f in &t.fields {
                        e.fields.push(FieldDef {
                            name: f.name.to_string(),
                            ty: (*f.ty).clone(),
                            args: Vec::new(),
                            external: false,
                            requires: None,
                            provides: None,
                        });
                    }
                }
                _ => {}
            }
        }
        Subgraph {
            name: name.to_string(),
            types,
        }
    }

    /// The object types `name` may be here: itself, or the members or implementations
    /// this subgraph declares.
    fn possible(&self, name: &str) -> Vec<String> {
        match self.types.get(name).map(|t| t.kind) {
            Some(Kind::Union) => self.types[name].members.clone(),
            Some(Kind::Interface) => self
                .types
                .iter()
                .filter(|(_, t)| t.kind == Kind::Object && t.implements.iter().any(|i| i == name))
                .map(|(n, _)| n.clone())
                .collect(),
            _ => vec![name.to_string()],
        }
    }
}

/// Reads every subgraph once to learn what they must agree on.
pub fn world(subgraphs: &[Subgraph]) -> World {
    let mut w = World::default();
    let mut nullable: BTreeMap<(String, String), (bool, bool)> = BTreeMap::new();
    for sg in subgraphs {
        for (tname, t) in &sg.types {
            for (k, _) in &t.keys {
                w.keys
                    .entry(tname.clone())
                    .or_default()
                    .merge(&Sel::parse(k));
            }
            for f in &t.fields {
                let e = nullable.entry((tname.clone(), f.name.clone())).or_default();
                if f.ty.is_non_null() {
                    e.0 = true;
                } else {
                    e.1 = true;
                }
            }
        }
    }
    for ((t, f), (nn, n)) in nullable {
        if nn && n {
            w.sometimes_non_null.insert((t, f));
        }
    }
    w
}

/// Marks overridden fields (`@override(from:)`) in the world; done from the SDL so the
/// parse above stays about shapes.
pub fn note_overrides(w: &mut World, name: &str, sdl: &str) {
    let Ok(doc) = ast::Document::parse(sdl, format!("{name}.graphql")) else {
        return;
    };
    for def in &doc.definitions {
        let (tname, fields) = match def {
            Definition::ObjectTypeDefinition(t) => (t.name.to_string(), &t.fields),
            Definition::ObjectTypeExtension(t) => (t.name.to_string(), &t.fields),
            _ => continue,
        };
        for f in fields {
            if f.directives.get("override").is_some() {
                w.overridden.insert((tname.clone(), f.name.to_string()));
            }
        }
    }
}

fn fnv(parts: &[&str]) -> u64 {
    let mut h: u64 = 0xcbf29ce484222325;
    for p in parts {
        for b in p.bytes().chain(std::iter::once(0xff)) {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x100000001b3);
        }
    }
    h
}

/// An object being resolved.
#[derive(Clone, Debug)]
struct Obj {
    ty: String,
    ident: String,
    /// The entity number, for an entity and for objects inside its key.
    n: Option<u64>,
    /// The key fields at this level (scalars here carry `n`).
    key: Sel,
    /// The representation an `_entities` call brought (its `@requires` inputs).
    given: Option<serde_json::Value>,
    /// Fields a parent's `@provides` lets this subgraph answer although external.
    provided: Sel,
}

fn type_ref(t: &ast::Type) -> TypeRef {
    match t {
        ast::Type::Named(n) => TypeRef::Named(n.to_string().into()),
        ast::Type::NonNullNamed(n) => {
            TypeRef::NonNull(Box::new(TypeRef::Named(n.to_string().into())))
        }
        ast::Type::List(i) => TypeRef::List(Box::new(type_ref(i))),
        ast::Type::NonNullList(i) => {
            TypeRef::NonNull(Box::new(TypeRef::List(Box::new(type_ref(i)))))
        }
    }
}

/// `v` cut down to the fields `sel` names (all of it when `sel` names none).
fn narrow(v: &serde_json::Value, sel: &Sel) -> serde_json::Value {
    if sel.0.is_empty() {
        return v.clone();
    }
    match v {
        serde_json::Value::Object(m) => serde_json::Value::Object(
            m.iter()
                .filter_map(|(k, v)| sel.0.get(k).map(|s| (k.clone(), narrow(v, s))))
                .collect(),
        ),
        serde_json::Value::Array(items) => {
            serde_json::Value::Array(items.iter().map(|i| narrow(i, sel)).collect())
        }
        other => other.clone(),
    }
}

fn canonical(v: &serde_json::Value) -> serde_json::Value {
    match v {
        serde_json::Value::Object(m) => serde_json::Value::Object(
            m.iter()
                // The references differ here: Hive's sends the runtime type of an
                // abstract input, Apollo's does not (ours does, as Hive's).
                .filter(|(k, _)| k.as_str() != "__typename")
                .map(|(k, v)| (k.clone(), canonical(v)))
                .collect::<BTreeMap<_, _>>()
                .into_iter()
                .collect(),
        ),
        serde_json::Value::Array(a) => serde_json::Value::Array(a.iter().map(canonical).collect()),
        other => other.clone(),
    }
}

/// The entity number a representation carries in its key fields (`key`; other fields
/// are `@requires` inputs).
fn number_in(v: &serde_json::Value, key: &Sel) -> Option<u64> {
    match v {
        serde_json::Value::Object(m) => m
            .iter()
            .filter_map(|(k, v)| key.0.get(k).map(|sub| (sub, v)))
            .find_map(|(sub, v)| number_in(v, sub)),
        serde_json::Value::String(s) => s.rsplit_once('-').and_then(|(_, n)| n.parse().ok()),
        serde_json::Value::Number(n) => n.as_u64(),
        _ => None,
    }
}

struct Ctx {
    sg: Subgraph,
    world: World,
}

impl Ctx {
    fn field(&self, ty: &str, name: &str) -> Option<&FieldDef> {
        self.sg
            .types
            .get(ty)?
            .fields
            .iter()
            .find(|f| f.name == name)
    }

    fn is_entity(&self, ty: &str) -> bool {
        self.world.keys.contains_key(ty)
            || self
                .sg
                .types
                .get(ty)
                .is_some_and(|t| t.implements.iter().any(|i| self.world.keys.contains_key(i)))
    }

    fn key_of(&self, ty: &str) -> Sel {
        let mut k = self.world.keys.get(ty).cloned().unwrap_or_default();
        if let Some(t) = self.sg.types.get(ty) {
            for i in &t.implements {
                if let Some(ik) = self.world.keys.get(i) {
                    k.merge(ik);
                }
            }
        }
        k
    }

    /// The concrete type for an entity number among `candidates` (stable per number,
    /// so every subgraph that knows the same types picks the same one).
    fn pick(&self, candidates: &[String], n: u64) -> Option<String> {
        if candidates.is_empty() {
            return None;
        }
        Some(
            candidates[(fnv(&[&n.to_string(), "type"]) % candidates.len() as u64) as usize].clone(),
        )
    }

    fn entity(&self, typename: &str, rep: serde_json::Value) -> Option<(Obj, String)> {
        let n = number_in(&rep, &self.key_of(typename))?;
        let concrete = match self.sg.types.get(typename).map(|t| t.kind) {
            Some(Kind::Interface) => self.pick(&self.sg.possible(typename), n)?,
            Some(_) => typename.to_string(),
            None => return None,
        };
        Some((
            Obj {
                ty: concrete.clone(),
                ident: format!("E{n}"),
                n: Some(n),
                key: self.key_of(&concrete),
                given: Some(rep),
                provided: Sel::default(),
            },
            concrete,
        ))
    }

    fn resolve<'a>(
        &self,
        parent: &Obj,
        f: &FieldDef,
        args: &BTreeMap<String, serde_json::Value>,
    ) -> async_graphql::Result<Option<FieldValue<'a>>> {
        if f.name.starts_with("boom") {
            return Err(async_graphql::Error::new(format!("{} failed", f.name)));
        }
        let in_key = parent.key.0.get(&f.name).cloned();
        // A nullable key field is null for some entities (class 12 of the gateway issue):
        // no subgraph can fetch those by it, and their siblings must not suffer. Only
        // where the object is made here, and every subgraph declares the field nullable.
        if in_key.is_some()
            && !f.ty.is_non_null()
            && parent.given.is_none()
            && parent.n.is_some_and(|n| n % 7 == 3)
            && !self
                .world
                .sometimes_non_null
                .contains(&(parent.ty.clone(), f.name.clone()))
        {
            return Ok(None);
        }
        if f.external && in_key.is_none() && !parent.provided.0.contains_key(&f.name) {
            return Err(async_graphql::Error::new(format!(
                "{}.{} is external here and was not provided",
                parent.ty, f.name
            )));
        }
        let mut salt = String::new();
        if let Some(req) = &f.requires {
            let Some(given) = &parent.given else {
                return Err(async_graphql::Error::new(format!(
                    "{}.{} needs its @requires inputs from a representation",
                    parent.ty, f.name
                )));
            };
            let mut inputs = serde_json::Map::new();
            for (name, sub) in &req.0 {
                match given.get(name) {
                    // Only what this field requires: a representation may carry more
                    // for another field of the same fetch, which must not change it.
                    Some(v) => {
                        inputs.insert(name.clone(), canonical(&narrow(v, sub)));
                    }
                    None => {
                        return Err(async_graphql::Error::new(format!(
                            "{}.{} is missing its required input {name}",
                            parent.ty, f.name
                        )));
                    }
                }
            }
            salt.push_str(&serde_json::Value::Object(inputs).to_string());
        }
        if self
            .world
            .overridden
            .contains(&(parent.ty.clone(), f.name.clone()))
        {
            salt.push_str(&self.sg.name);
        }
        let args_text = serde_json::to_string(args).unwrap_or_default();
        let provided = parent.provided.0.get(&f.name).cloned().unwrap_or_default();
        let mut provided = provided;
        if let Some(p) = &f.provides {
            provided.merge(p);
        }
        let may_null = !self
            .world
            .sometimes_non_null
            .contains(&(parent.ty.clone(), f.name.clone()))
            && in_key.is_none();
        let here = Place {
            parent,
            field: &f.name,
            args: &args_text,
            salt: &salt,
            key: in_key,
            provided,
            may_null,
        };
        self.value(&here, &f.ty, "", false)
    }

    /// `None` is null. List items are never null: the dynamic executor has no null for
    /// an object inside a list.
    fn value<'a>(
        &self,
        p: &Place<'_>,
        ty: &ast::Type,
        index: &str,
        in_list: bool,
    ) -> async_graphql::Result<Option<FieldValue<'a>>> {
        let h = fnv(&[&p.parent.ident, p.field, p.args, p.salt, index]);
        if !ty.is_non_null() && !in_list && p.may_null && h.is_multiple_of(9) {
            return Ok(None);
        }
        match ty {
            ast::Type::List(inner) | ast::Type::NonNullList(inner) => {
                // Root lists are never empty: a supergraph whose data is all empty
                // would agree with any gateway and test nothing.
                let len = if p.key.is_some() {
                    1
                } else if p.parent.ty == "Query" && index.is_empty() {
                    1 + (h >> 8) % 3
                } else {
                    (h >> 8) % 4
                };
                let mut items = Vec::new();
                for i in 0..len {
                    if let Some(v) = self.value(p, inner, &format!("{index}[{i}]"), true)? {
                        items.push(v);
                    }
                }
                Ok(Some(FieldValue::list(items)))
            }
            ast::Type::Named(n) | ast::Type::NonNullNamed(n) => {
                self.named(p, n.as_str(), h, index).map(Some)
            }
        }
    }

    fn named<'a>(
        &self,
        p: &Place<'_>,
        name: &str,
        h: u64,
        index: &str,
    ) -> async_graphql::Result<FieldValue<'a>> {
        let scalar = |v: Value| Ok(FieldValue::value(v));
        if let (Some(n), Some(_)) = (p.parent.n, &p.key) {
            match name {
                "Int" => return scalar(Value::Number((n as i64).into())),
                "String" | "ID" => return scalar(Value::String(format!("{}-{n}", p.field))),
                _ => {}
            }
        }
        match name {
            "Int" => return scalar(Value::Number(((h % 1000) as i64).into())),
            "Float" => {
                return scalar(Value::Number(
                    serde_json::Number::from_f64((h % 1000) as f64 / 4.0).unwrap_or(0.into()),
                ));
            }
            "Boolean" => return scalar(Value::Boolean(h.is_multiple_of(2))),
            "String" | "ID" => {
                return scalar(Value::String(format!("{}:{:06x}", p.field, h % 0xffffff)));
            }
            _ => {}
        }
        let Some(t) = self.sg.types.get(name) else {
            return scalar(Value::String(format!("{}:{:06x}", p.field, h % 0xffffff)));
        };
        match t.kind {
            Kind::Scalar => scalar(Value::String(format!("{}:{:06x}", p.field, h % 0xffffff))),
            Kind::Enum => scalar(Value::Enum(Name::new(
                t.values
                    .get((h % t.values.len().max(1) as u64) as usize)
                    .cloned()
                    .unwrap_or_default(),
            ))),
            Kind::Object | Kind::Interface | Kind::Union => {
                let candidates = self.sg.possible(name);
                if let (Some(n), Some(key)) = (p.parent.n, &p.key) {
                    // Inside a key: the same entity number, one level down.
                    let ty = self
                        .pick(&candidates, n)
                        .unwrap_or_else(|| name.to_string());
                    let obj = Obj {
                        ty: ty.clone(),
                        ident: format!("{}.{}", p.parent.ident, p.field),
                        n: Some(n),
                        key: key.clone(),
                        given: None,
                        provided: p.provided.clone(),
                    };
                    return Ok(typed(obj, ty, t.kind));
                }
                let n = (h >> 16) % 40;
                let entity_like = candidates.iter().any(|c| self.is_entity(c));
                let ty = if entity_like {
                    self.pick(&candidates, n)
                } else {
                    self.pick(&candidates, h >> 24)
                }
                .ok_or_else(|| {
                    async_graphql::Error::new(format!("{name} has no possible type here"))
                })?;
                let obj = if self.is_entity(&ty) {
                    Obj {
                        ty: ty.clone(),
                        ident: format!("E{n}"),
                        n: Some(n),
                        key: self.key_of(&ty),
                        given: None,
                        provided: p.provided.clone(),
                    }
                } else {
                    Obj {
                        ty: ty.clone(),
                        ident: format!("{}.{}({}){index}", p.parent.ident, p.field, p.args),
                        n: None,
                        key: Sel::default(),
                        given: None,
                        provided: p.provided.clone(),
                    }
                };
                Ok(typed(obj, ty, t.kind))
            }
            Kind::Input => Err(async_graphql::Error::new("input type as output")),
        }
    }
}

/// An object as the executor takes it: with its runtime type where the declared one
/// is abstract (and bare otherwise, so resolvers can read it back).
fn typed<'a>(obj: Obj, ty: String, declared: Kind) -> FieldValue<'a> {
    if declared == Kind::Object {
        FieldValue::owned_any(obj)
    } else {
        FieldValue::owned_any(obj).with_type(ty)
    }
}

struct Place<'p> {
    parent: &'p Obj,
    field: &'p str,
    args: &'p str,
    salt: &'p str,
    key: Option<Sel>,
    provided: Sel,
    may_null: bool,
}

fn args_json(
    ctx: &ResolverContext<'_>,
    defaults: &[(String, ast::Type, Option<Value>)],
) -> BTreeMap<String, serde_json::Value> {
    let mut out = BTreeMap::new();
    for (name, value) in ctx.args.as_index_map() {
        out.insert(
            name.to_string(),
            value.clone().into_json().unwrap_or(serde_json::Value::Null),
        );
    }
    for (name, _, default) in defaults {
        if let (false, Some(d)) = (out.contains_key(name), default) {
            out.insert(
                name.clone(),
                d.clone().into_json().unwrap_or(serde_json::Value::Null),
            );
        }
    }
    out
}

fn arguments(f: &FieldDef) -> impl Iterator<Item = InputValue> + '_ {
    f.args.iter().map(|(name, ty, default)| {
        let iv = InputValue::new(name.as_str(), type_ref(ty));
        match default {
            Some(d) => iv.default_value(d.clone()),
            None => iv,
        }
    })
}

/// The executable schema of one synthetic subgraph.
/// Whether this subgraph finds the entity a representation names: not when its key
/// fields are null (a real subgraph answers such an entity as null). The dynamic
/// executor cannot put a null into the `_entities` list, so the server takes these out
/// before executing and puts nulls back after.
pub fn finds(sg: Subgraph, world: World) -> impl Fn(&serde_json::Value) -> bool + Send + Sync {
    let ctx = Ctx { sg, world };
    move |rep| {
        let typename = rep
            .get("__typename")
            .and_then(|t| t.as_str())
            .unwrap_or_default();
        ctx.entity(typename, rep.clone()).is_some()
    }
}

pub fn schema(sg: Subgraph, world: World) -> Schema {
    let ctx = Arc::new(Ctx { sg, world });
    let query = "Query";
    let has_mutation = ctx.sg.types.contains_key("Mutation");
    let mut builder =
        Schema::build(query, has_mutation.then_some("Mutation"), None).enable_federation();
    if !ctx.sg.types.contains_key("Query") {
        builder = builder.register(Object::new("Query"));
    }
    for (tname, t) in &ctx.sg.types {
        match t.kind {
            Kind::Object => {
                let mut o = Object::new(tname.as_str());
                for f in &t.fields {
                    let (c, tn, fname) = (ctx.clone(), tname.clone(), f.name.clone());
                    let mut field = Field::new(f.name.as_str(), type_ref(&f.ty), move |rc| {
                        let (c, tn, fname) = (c.clone(), tn.clone(), fname.clone());
                        FieldFuture::new(async move {
                            let root = Obj {
                                ty: tn.clone(),
                                ident: tn.clone(),
                                n: None,
                                key: Sel::default(),
                                given: None,
                                provided: Sel::default(),
                            };
                            let parent = rc.parent_value.downcast_ref::<Obj>().unwrap_or(&root);
                            let Some(def) =
                                c.field(&parent.ty, &fname).or_else(|| c.field(&tn, &fname))
                            else {
                                return Err(async_graphql::Error::new("unknown field"));
                            };
                            let args = args_json(&rc, &def.args);
                            c.resolve(parent, def, &args)
                        })
                    });
                    for iv in arguments(f) {
                        field = field.argument(iv);
                    }
                    o = o.field(field);
                }
                for i in &t.implements {
                    o = o.implement(i.as_str());
                }
                for (k, resolvable) in &t.keys {
                    o = if *resolvable {
                        o.key(k.as_str())
                    } else {
                        o.unresolvable(k.as_str())
                    };
                }
                builder = builder.register(o);
            }
            Kind::Interface => {
                let mut i = Interface::new(tname.as_str());
                for f in &t.fields {
                    let mut field = InterfaceField::new(f.name.as_str(), type_ref(&f.ty));
                    for iv in arguments(f) {
                        field = field.argument(iv);
                    }
                    i = i.field(field);
                }
                for imp in &t.implements {
                    i = i.implement(imp.as_str());
                }
                // An entity interface's key is not declared to the executor: it would
                // put the interface into the `_Entity` union; the entity resolver
                // answers `__typename: "<interface>"` with a concrete type itself.
                builder = builder.register(i);
            }
            Kind::Union => {
                let mut u = Union::new(tname.as_str());
                for m in &t.members {
                    u = u.possible_type(m.as_str());
                }
                builder = builder.register(u);
            }
            Kind::Enum => {
                builder = builder
                    .register(Enum::new(tname.as_str()).items(t.values.iter().map(String::as_str)));
            }
            Kind::Scalar => {
                builder = builder.register(Scalar::new(tname.as_str()));
            }
            Kind::Input => {
                let mut io = InputObject::new(tname.as_str());
                for f in &t.fields {
                    io = io.field(InputValue::new(f.name.as_str(), type_ref(&f.ty)));
                }
                builder = builder.register(io);
            }
        }
    }
    let c = ctx.clone();
    builder = builder.entity_resolver(move |rc| {
        let c = c.clone();
        FieldFuture::new(async move {
            let reps = rc.args.try_get("representations")?.list()?;
            let mut out = Vec::new();
            for rep in reps.iter() {
                let json = rep.as_value().clone().into_json().unwrap_or_default();
                let typename = json
                    .get("__typename")
                    .and_then(|t| t.as_str())
                    .unwrap_or_default()
                    .to_string();
                match c.entity(&typename, json) {
                    Some((obj, ty)) => out.push(FieldValue::owned_any(obj).with_type(ty)),
                    None => out.push(FieldValue::NULL),
                }
            }
            Ok(Some(FieldValue::list(out)))
        })
    });
    builder
        .finish()
        .unwrap_or_else(|e| panic!("synthetic subgraph schema: {e}"))
}

const LINK: &str = "extend schema @link(url: \"https://specs.apollo.dev/federation/v2.8\", import: [\"@key\", \"@shareable\", \"@external\", \"@requires\", \"@provides\", \"@inaccessible\", \"@override\", \"@tag\", \"@interfaceObject\", \"@context\", \"@fromContext\"])\n";

/// The subgraphs of a supergraph directory: `(name, sdl)` per `<name>.graphql`, in
/// name order, the federation `@link` added where the file has none.
pub fn read_dir(dir: &std::path::Path) -> Vec<(String, String)> {
    let mut files: Vec<std::path::PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "graphql"))
        .collect();
    files.sort();
    files
        .iter()
        .map(|f| {
            let sub = f
                .file_stem()
                .map(|s| s.to_string_lossy().to_string())
                .unwrap_or_default();
            let text = std::fs::read_to_string(f).unwrap_or_default();
            let sdl = if text.contains("@link") {
                text
            } else {
                format!("{LINK}{text}")
            };
            (sub, sdl)
        })
        .collect()
}

/// The schema a subgraph serves, for validating operations: federation directives
/// the SDL uses without defining are tolerated.
pub fn strict_schema(sdl: &str) -> apollo_compiler::validation::Valid<apollo_compiler::Schema> {
    let schema = match apollo_compiler::Schema::parse(sdl, "subgraph.graphql") {
        Ok(s) => s,
        Err(with_errors) => with_errors.partial,
    };
    apollo_compiler::validation::Valid::assume_valid(schema)
}

/// Serves the subgraphs `(name, sdl)` of one supergraph, each as a synthetic subgraph
/// on a free port; returns their URLs in the same order.
pub async fn start(sources: &[(String, String)]) -> Vec<String> {
    start_counting(sources)
        .await
        .into_iter()
        .map(|(url, _)| url)
        .collect()
}

/// Like [`start`], with each subgraph's count of the requests it answered.
pub async fn start_counting(
    sources: &[(String, String)],
) -> Vec<(String, Arc<std::sync::Mutex<usize>>)> {
    let parsed: Vec<Subgraph> = sources.iter().map(|(n, s)| Subgraph::parse(n, s)).collect();
    let mut world = world(&parsed);
    for (n, s) in sources {
        note_overrides(&mut world, n, s);
    }
    let mut urls = Vec::new();
    for (n, s) in sources {
        let found = finds(Subgraph::parse(n, s), world.clone());
        let schema = schema(Subgraph::parse(n, s), world.clone());
        let count = Arc::new(std::sync::Mutex::new(0));
        urls.push((serve(schema, found, count.clone()).await, count));
    }
    urls
}

pub async fn serve(
    schema: async_graphql::dynamic::Schema,
    finds: impl Fn(&serde_json::Value) -> bool + Send + Sync + 'static,
    count: Arc<std::sync::Mutex<usize>>,
) -> String {
    let finds = Arc::new(finds);
    use axum::routing::post;
    use axum::{Json, Router};
    // Operations are validated by the spec's rules first (async-graphql's own checks
    // let through e.g. one response name with two shapes in sibling fragments, which a
    // stricter subgraph refuses); a gateway must only send what any subgraph accepts.
    let strict = Arc::new(strict_schema(&schema.sdl()));
    let app = Router::new().route(
        "/graphql",
        post(move |Json(req): Json<async_graphql::Request>| {
            let schema = schema.clone();
            let finds = finds.clone();
            let strict = strict.clone();
            if let Ok(mut n) = count.lock() {
                *n += 1;
            }
            async move {
                if let Err(e) = apollo_compiler::ExecutableDocument::parse_and_validate(
                    &strict,
                    &req.query,
                    "subgraph-op.graphql",
                ) {
                    let resp = async_graphql::Response::from_errors(vec![
                        async_graphql::ServerError::new(
                            format!("invalid subgraph operation: {}", e.errors),
                            None,
                        ),
                    ]);
                    return Json(resp);
                }
                let mut req = req;
                req.query = never_empty(&req.query);
                let trace = std::env::var("SHOP_DIFF_TRACE").is_ok();
                let text = trace.then(|| format!("{} {:?}", req.query, req.variables));
                // Representations this subgraph cannot find answer null in place.
                let mut missing = Vec::new();
                if let Some(async_graphql::Value::List(reps)) =
                    req.variables.get_mut("representations")
                {
                    let mut i = 0;
                    reps.retain(|r| {
                        let keep = finds(&r.clone().into_json().unwrap_or_default());
                        if !keep {
                            missing.push(i);
                        }
                        i += 1;
                        keep
                    });
                }
                let mut resp = schema.execute(req).await;
                if !missing.is_empty()
                    && let async_graphql::Value::Object(data) = &mut resp.data
                    && let Some(async_graphql::Value::List(items)) = data.get_mut("_entities")
                {
                    for i in missing {
                        items.insert(i.min(items.len()), async_graphql::Value::Null);
                    }
                }
                if let Some(text) = text {
                    eprintln!(">>> {text}\n<<< {}", serde_json::to_string(&resp).unwrap());
                }
                Json(resp)
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/graphql", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    url
}

/// Adds `__synthetic: __typename` to every selection set of a subgraph operation.
/// async-graphql answers an object whose fields were all skipped (`@skip`/`@include`)
/// as null where the spec (and graphql-js) answers `{}`; gateways then merge that null
/// differently. The extra field keeps every object an object; no client asks for it.
pub fn never_empty(query: &str) -> String {
    use apollo_compiler::ast::{Definition, Document, Field, Selection};
    use apollo_compiler::{Name, Node};
    fn fill(set: &mut Vec<Selection>) {
        for sel in set.iter_mut() {
            match sel {
                Selection::Field(f) if !f.selection_set.is_empty() => {
                    fill(&mut f.make_mut().selection_set)
                }
                Selection::Field(_) => {}
                Selection::InlineFragment(i) => fill(&mut i.make_mut().selection_set),
                Selection::FragmentSpread(_) => {}
            }
        }
        set.push(Selection::Field(Node::new(Field {
            alias: Some(Name::new_static_unchecked("__synthetic")),
            name: Name::new_static_unchecked("__typename"),
            arguments: Vec::new(),
            directives: Default::default(),
            selection_set: Vec::new(),
        })));
    }
    let Ok(mut doc) = Document::parse(query, "subgraph-op.graphql") else {
        return query.to_string();
    };
    for def in &mut doc.definitions {
        match def {
            Definition::OperationDefinition(op) => fill(&mut op.make_mut().selection_set),
            Definition::FragmentDefinition(f) => fill(&mut f.make_mut().selection_set),
            _ => {}
        }
    }
    doc.to_string()
}

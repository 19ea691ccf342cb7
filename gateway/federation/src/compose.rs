//! Composition: subgraph SDL in, a standard Federation v2 supergraph out (`@link` and
//! the join spec v0.3), which other federation gateways accept too.
//!
//! Rules checked, each failing with a message naming the subgraphs involved:
//! a type has one kind everywhere; a field has one type shape everywhere; a field of
//! an object resolved by several subgraphs is `@shareable` (key fields are implicitly);
//! `@external` fields are resolved by some other subgraph; keys, `@requires` and
//! `@provides` parse and name fields of their type; every referenced type exists;
//! input types keep only the fields all subgraphs have, and drop none that is required.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use apollo_compiler::ast::{
    Definition, Directive, DirectiveList, Document, EnumTypeDefinition, EnumValueDefinition,
    FieldDefinition, InputObjectTypeDefinition, InputValueDefinition, InterfaceTypeDefinition,
    ObjectTypeDefinition, ScalarTypeDefinition, Type, UnionTypeDefinition, Value,
};
use apollo_compiler::{Name, Node};

use crate::field_set;

/// One subgraph to compose.
#[derive(Clone, Debug)]
pub struct SubgraphSource {
    pub name: String,
    pub url: String,
    pub sdl: String,
}

#[derive(Debug, thiserror::Error)]
pub enum ComposeError {
    #[error("subgraph '{subgraph}' has invalid SDL:\n{message}")]
    Parse { subgraph: String, message: String },
    #[error("composition failed:\n- {}", .0.join("\n- "))]
    Incompatible(Vec<String>),
}

const BUILT_IN_SCALARS: &[&str] = &["String", "Int", "Float", "Boolean", "ID"];
const ROOTS: &[&str] = &["Query", "Mutation", "Subscription"];

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Object,
    Interface,
    Union,
    Enum,
    Input,
    Scalar,
}

impl Kind {
    fn word(self) -> &'static str {
        match self {
            Kind::Object => "an object type",
            Kind::Interface => "an interface",
            Kind::Union => "a union",
            Kind::Enum => "an enum",
            Kind::Input => "an input type",
            Kind::Scalar => "a scalar",
        }
    }
}

#[derive(Default, Clone)]
struct GType {
    keys: Vec<(String, bool)>,
    extension: bool,
    shareable: bool,
    interface_object: bool,
}

#[derive(Clone)]
struct GField {
    graph: usize,
    ty: Type,
    external: bool,
    requires: Option<String>,
    provides: Option<String>,
    override_from: Option<String>,
    override_label: Option<String>,
    /// Overridden away, but still needed here for a key or `@requires`.
    used_overridden: bool,
    shareable: bool,
    /// `@fromContext` arguments: (supergraph context, argument, type, selection).
    context_arguments: Vec<(String, String, String, String)>,
}

struct MField {
    def: Node<FieldDefinition>,
    /// Empty for a field an implementation gets only through an `@interfaceObject`.
    graphs: Vec<GField>,
    inaccessible: bool,
    tags: Vec<String>,
    auth: Auth,
    cost: Cost,
}

/// `@cost` and `@listSize` of a field (or `@cost` of a type), merged across subgraphs:
/// the highest weight, the largest assumed size, every slicing argument and sized
/// field any subgraph names (the estimate errs high, never low).
#[derive(Clone, Debug, Default, PartialEq)]
struct Cost {
    weight: Option<i32>,
    list_size: Option<ListSize>,
    /// `@cost` of the field's arguments, by argument name.
    arguments: BTreeMap<String, i32>,
}

#[derive(Clone, Debug, Default, PartialEq)]
struct ListSize {
    assumed_size: Option<i32>,
    slicing_arguments: Vec<String>,
    sized_fields: Vec<String>,
    require_one_slicing_argument: bool,
}

impl Cost {
    fn read(names: &FedNames, directives: &DirectiveList) -> Cost {
        let weight = names
            .all(directives, "cost")
            .filter_map(|d| int_arg(d, "weight"))
            .max();
        let list_size = names
            .all(directives, "listSize")
            .fold(None, |acc: Option<ListSize>, d| {
                let this = ListSize {
                    assumed_size: int_arg(d, "assumedSize"),
                    slicing_arguments: strings_arg(d, "slicingArguments"),
                    sized_fields: strings_arg(d, "sizedFields"),
                    require_one_slicing_argument: d
                        .specified_argument_by_name("requireOneSlicingArgument")
                        .and_then(|v| v.to_bool())
                        .unwrap_or(true),
                };
                Some(match acc {
                    None => this,
                    Some(prev) => prev.merged(this),
                })
            });
        Cost {
            weight,
            list_size,
            arguments: BTreeMap::new(),
        }
    }

    fn merge(&mut self, other: Cost) {
        self.weight = self.weight.max(other.weight);
        self.list_size = match (self.list_size.take(), other.list_size) {
            (Some(a), Some(b)) => Some(a.merged(b)),
            (a, b) => a.or(b),
        };
        for (arg, w) in other.arguments {
            let e = self.arguments.entry(arg).or_insert(w);
            *e = (*e).max(w);
        }
    }

    fn is_empty(&self) -> bool {
        *self == Cost::default()
    }

    /// `@cost` and `@listSize` as supergraph directives.
    fn marks(&self, directives: &mut DirectiveList) {
        if let Some(w) = self.weight {
            directives.push(directive(
                "cost",
                vec![(name("weight"), Node::new(Value::Int(w.into())))],
            ));
        }
        if let Some(l) = &self.list_size {
            let strings = |v: &[String]| {
                Node::new(Value::List(
                    v.iter()
                        .map(|s| Node::new(Value::String(s.clone())))
                        .collect(),
                ))
            };
            let mut args = Vec::new();
            if let Some(n) = l.assumed_size {
                args.push((name("assumedSize"), Node::new(Value::Int(n.into()))));
            }
            if !l.slicing_arguments.is_empty() {
                args.push((name("slicingArguments"), strings(&l.slicing_arguments)));
            }
            if !l.sized_fields.is_empty() {
                args.push((name("sizedFields"), strings(&l.sized_fields)));
            }
            if !l.require_one_slicing_argument {
                args.push((
                    name("requireOneSlicingArgument"),
                    Node::new(Value::Boolean(false)),
                ));
            }
            directives.push(directive("listSize", args));
        }
    }
}

impl ListSize {
    fn merged(mut self, other: ListSize) -> ListSize {
        self.assumed_size = self.assumed_size.max(other.assumed_size);
        for a in other.slicing_arguments {
            if !self.slicing_arguments.contains(&a) {
                self.slicing_arguments.push(a);
            }
        }
        for f in other.sized_fields {
            if !self.sized_fields.contains(&f) {
                self.sized_fields.push(f);
            }
        }
        self.require_one_slicing_argument &= other.require_one_slicing_argument;
        self
    }
}

fn int_arg(d: &Directive, name: &str) -> Option<i32> {
    d.specified_argument_by_name(name)?.to_i32()
}

fn strings_arg(d: &Directive, name: &str) -> Vec<String> {
    match d.specified_argument_by_name(name).map(|v| v.as_ref()) {
        Some(Value::List(items)) => items
            .iter()
            .filter_map(|v| v.as_str().map(str::to_string))
            .collect(),
        Some(Value::String(s)) => vec![s.to_string()],
        _ => Vec::new(),
    }
}

impl MField {
    /// Arguments filled from a context are not part of the supergraph field.
    fn context_argument_names(&self) -> Vec<&str> {
        self.graphs
            .iter()
            .flat_map(|gf| gf.context_arguments.iter().map(|(_, n, _, _)| n.as_str()))
            .collect()
    }
}

struct MType {
    kind: Kind,
    description: Option<Node<str>>,
    graphs: BTreeMap<usize, GType>,
    fields: Vec<(String, MField)>,
    interfaces: Vec<(String, Vec<usize>)>,
    members: Vec<(String, Vec<usize>)>,
    values: Vec<(Node<EnumValueDefinition>, Vec<usize>)>,
    /// Enum values some subgraph marks `@inaccessible`.
    inaccessible_values: BTreeSet<String>,
    inputs: Vec<(Node<InputValueDefinition>, Vec<usize>)>,
    inaccessible: bool,
    tags: Vec<String>,
    auth: Auth,
    /// `@context` names, qualified by subgraph (`subgraph__name`) as in the supergraph.
    contexts: Vec<String>,
    /// `@cost` of the type (objects, scalars, enums).
    cost: Option<i32>,
}

impl MType {
    fn new(kind: Kind) -> Self {
        MType {
            kind,
            description: None,
            graphs: BTreeMap::new(),
            fields: Vec::new(),
            interfaces: Vec::new(),
            members: Vec::new(),
            values: Vec::new(),
            inaccessible_values: BTreeSet::new(),
            inputs: Vec::new(),
            inaccessible: false,
            tags: Vec::new(),
            auth: Auth::default(),
            contexts: Vec::new(),
            cost: None,
        }
    }
}

/// `@authenticated`, `@requiresScopes` and `@policy` of one element, merged across
/// subgraphs: every subgraph's requirement must hold, so scope and policy sets are
/// combined by AND (the product of their any-of lists).
#[derive(Clone, Debug, Default)]
struct Auth {
    authenticated: bool,
    scopes: Option<Vec<Vec<String>>>,
    policies: Option<Vec<Vec<String>>>,
}

impl Auth {
    fn read(names: &FedNames, directives: &DirectiveList) -> Auth {
        let sets = |dname: &str, arg: &str| -> Option<Vec<Vec<String>>> {
            let mut out: Option<Vec<Vec<String>>> = None;
            for d in names.all(directives, dname) {
                if let Some(v) = d.specified_argument_by_name(arg) {
                    out = Some(and_sets(out, crate::authz::nested_strings(v)));
                }
            }
            out
        };
        Auth {
            authenticated: names.has(directives, "authenticated"),
            scopes: sets("requiresScopes", "scopes"),
            policies: sets("policy", "policies"),
        }
    }

    fn merge(&mut self, other: &Auth) {
        self.authenticated |= other.authenticated;
        if let Some(s) = &other.scopes {
            self.scopes = Some(and_sets(self.scopes.take(), s.clone()));
        }
        if let Some(p) = &other.policies {
            self.policies = Some(and_sets(self.policies.take(), p.clone()));
        }
    }
}

/// `a AND b` for any-of-all-of sets: every pair's union, duplicates dropped.
fn and_sets(a: Option<Vec<Vec<String>>>, b: Vec<Vec<String>>) -> Vec<Vec<String>> {
    let Some(a) = a else {
        return b;
    };
    let mut out: Vec<Vec<String>> = Vec::new();
    for x in &a {
        for y in &b {
            let mut all: Vec<String> = x.iter().chain(y.iter()).cloned().collect();
            all.sort();
            all.dedup();
            if !out.contains(&all) {
                out.push(all);
            }
        }
    }
    out
}

/// Maps the directive names a subgraph uses to federation's canonical names, honouring
/// `@link(import:)` renames and the `federation__` prefix.
struct FedNames {
    map: HashMap<String, String>,
}

const FED_DIRECTIVES: &[&str] = &[
    "key",
    "shareable",
    "external",
    "requires",
    "provides",
    "override",
    "inaccessible",
    "tag",
    "extends",
    "interfaceObject",
    "composeDirective",
    "authenticated",
    "requiresScopes",
    "policy",
    "context",
    "fromContext",
    "cost",
    "listSize",
];

impl FedNames {
    fn from_document(doc: &Document) -> FedNames {
        let mut map: HashMap<String, String> = HashMap::new();
        for d in FED_DIRECTIVES {
            map.insert(format!("federation__{d}"), d.to_string());
        }
        let mut imported_any = false;
        for def in &doc.definitions {
            let directives = match def {
                Definition::SchemaDefinition(s) => &s.directives,
                Definition::SchemaExtension(s) => &s.directives,
                _ => continue,
            };
            for link in directives.get_all("link") {
                let is_fed = link
                    .specified_argument_by_name("url")
                    .and_then(|v| v.as_str())
                    .is_some_and(|u| u.contains("specs.apollo.dev/federation/"));
                if !is_fed {
                    continue;
                }
                imported_any = true;
                if let Some(Value::List(items)) = link
                    .specified_argument_by_name("import")
                    .map(|v| v.as_ref())
                {
                    for item in items {
                        match item.as_ref() {
                            Value::String(s) => {
                                let n = s.trim_start_matches('@').to_string();
                                map.insert(n.clone(), n);
                            }
                            Value::Object(fields) => {
                                let get = |k: &str| {
                                    fields
                                        .iter()
                                        .find(|(n, _)| n.as_str() == k)
                                        .and_then(|(_, v)| v.as_str())
                                        .map(|s| s.trim_start_matches('@').to_string())
                                };
                                if let (Some(name), alias) = (get("name"), get("as")) {
                                    map.insert(alias.unwrap_or_else(|| name.clone()), name);
                                }
                            }
                            _ => {}
                        }
                    }
                }
            }
        }
        if !imported_any {
            // Federation 1 style subgraphs use the plain names.
            for d in FED_DIRECTIVES {
                map.insert(d.to_string(), d.to_string());
            }
        }
        FedNames { map }
    }

    fn canonical<'a>(&'a self, name: &str) -> Option<&'a str> {
        self.map.get(name).map(String::as_str)
    }

    fn has(&self, directives: &DirectiveList, canonical: &str) -> bool {
        directives
            .iter()
            .any(|d| self.canonical(&d.name) == Some(canonical))
    }

    fn all<'d>(
        &'d self,
        directives: &'d DirectiveList,
        canonical: &'d str,
    ) -> impl Iterator<Item = &'d Node<Directive>> + 'd {
        directives
            .iter()
            .filter(move |d| self.canonical(&d.name) == Some(canonical))
    }
}

fn str_arg(d: &Directive, name: &str) -> Option<String> {
    d.specified_argument_by_name(name)
        .and_then(|v| v.as_str())
        .map(str::to_string)
}

fn graph_enum_value(name: &str) -> String {
    let mut s: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_uppercase()
            } else {
                '_'
            }
        })
        .collect();
    if s.chars().next().is_none_or(|c| c.is_ascii_digit()) {
        s.insert(0, '_');
    }
    s
}

/// Shape of a type ignoring nullability: `[Int]!` and `[Int!]` share `[Int]`.
fn shape(ty: &Type) -> String {
    match ty {
        Type::Named(n) | Type::NonNullNamed(n) => n.to_string(),
        Type::List(inner) | Type::NonNullList(inner) => format!("[{}]", shape(inner)),
    }
}

struct Composer<'a> {
    sources: &'a [SubgraphSource],
    types: BTreeMap<String, MType>,
    errors: Vec<String>,
    root_names: Vec<HashMap<String, String>>,
}

/// Composes subgraphs into supergraph SDL.
pub fn compose(sources: &[SubgraphSource]) -> Result<String, ComposeError> {
    let mut docs = Vec::new();
    for s in sources {
        let doc = Document::parse(s.sdl.as_str(), format!("{}.graphql", s.name)).map_err(|e| {
            ComposeError::Parse {
                subgraph: s.name.clone(),
                message: e.errors.to_string(),
            }
        })?;
        docs.push(doc);
    }
    let mut c = Composer {
        sources,
        types: BTreeMap::new(),
        errors: Vec::new(),
        root_names: Vec::new(),
    };
    for (g, doc) in docs.iter().enumerate() {
        c.collect(g, doc);
    }
    c.resolve_overrides();
    c.add_interface_object_fields();
    c.validate();
    if !c.errors.is_empty() {
        c.errors.sort();
        c.errors.dedup();
        return Err(ComposeError::Incompatible(c.errors));
    }
    Ok(c.print())
}

impl<'a> Composer<'a> {
    fn graph_name(&self, g: usize) -> &str {
        &self.sources[g].name
    }

    fn type_entry(
        &mut self,
        g: usize,
        name: &str,
        kind: Kind,
        description: &Option<Node<str>>,
    ) -> Option<&mut MType> {
        let name = self.root_names[g]
            .get(name)
            .cloned()
            .unwrap_or_else(|| name.to_string());
        let gname = self.sources[g].name.clone();
        let entry = self
            .types
            .entry(name.clone())
            .or_insert_with(|| MType::new(kind));
        if entry.kind != kind {
            let first = entry
                .graphs
                .keys()
                .next()
                .map(|g0| self.sources[*g0].name.clone())
                .unwrap_or_default();
            self.errors.push(format!(
                "type {name} is {} in subgraph '{first}' but {} in subgraph '{gname}'",
                entry.kind.word(),
                kind.word()
            ));
            return None;
        }
        if entry.description.is_none() {
            entry.description = description.clone();
        }
        entry.graphs.entry(g).or_default();
        Some(entry)
    }

    fn collect(&mut self, g: usize, doc: &Document) {
        let names = FedNames::from_document(doc);
        // Root types under custom names map to the standard ones.
        let mut roots = HashMap::new();
        for def in &doc.definitions {
            if let Definition::SchemaDefinition(s) = def {
                for op in &s.root_operations {
                    let (kind, named) = &**op;
                    let canonical = match kind {
                        apollo_compiler::ast::OperationType::Query => "Query",
                        apollo_compiler::ast::OperationType::Mutation => "Mutation",
                        apollo_compiler::ast::OperationType::Subscription => "Subscription",
                    };
                    roots.insert(named.to_string(), canonical.to_string());
                }
            }
        }
        self.root_names.push(roots);

        for def in &doc.definitions {
            match def {
                Definition::ObjectTypeDefinition(t) => self.collect_fields_type(
                    g,
                    &names,
                    Kind::Object,
                    &t.name,
                    &t.description,
                    &t.directives,
                    &t.implements_interfaces,
                    &t.fields,
                    false,
                ),
                Definition::ObjectTypeExtension(t) => self.collect_fields_type(
                    g,
                    &names,
                    Kind::Object,
                    &t.name,
                    &None,
                    &t.directives,
                    &t.implements_interfaces,
                    &t.fields,
                    true,
                ),
                Definition::InterfaceTypeDefinition(t) => self.collect_fields_type(
                    g,
                    &names,
                    Kind::Interface,
                    &t.name,
                    &t.description,
                    &t.directives,
                    &t.implements_interfaces,
                    &t.fields,
                    false,
                ),
                Definition::InterfaceTypeExtension(t) => self.collect_fields_type(
                    g,
                    &names,
                    Kind::Interface,
                    &t.name,
                    &None,
                    &t.directives,
                    &t.implements_interfaces,
                    &t.fields,
                    true,
                ),
                Definition::UnionTypeDefinition(t) => self.collect_union(
                    g,
                    &names,
                    &t.name,
                    &t.description,
                    &t.directives,
                    &t.members,
                ),
                Definition::UnionTypeExtension(t) => {
                    self.collect_union(g, &names, &t.name, &None, &t.directives, &t.members)
                }
                Definition::EnumTypeDefinition(t) => {
                    self.collect_enum(g, &names, &t.name, &t.description, &t.directives, &t.values)
                }
                Definition::EnumTypeExtension(t) => {
                    self.collect_enum(g, &names, &t.name, &None, &t.directives, &t.values)
                }
                Definition::InputObjectTypeDefinition(t) => {
                    self.collect_input(g, &names, &t.name, &t.description, &t.directives, &t.fields)
                }
                Definition::InputObjectTypeExtension(t) => {
                    self.collect_input(g, &names, &t.name, &None, &t.directives, &t.fields)
                }
                Definition::ScalarTypeDefinition(t) => {
                    self.collect_scalar(g, &names, &t.name, &t.description, &t.directives)
                }
                Definition::ScalarTypeExtension(t) => {
                    self.collect_scalar(g, &names, &t.name, &None, &t.directives)
                }
                _ => {}
            }
        }
    }

    /// `@override(from: X)`: X no longer resolves the field. Without a label its entry
    /// goes (or stays as `usedOverridden` when X needs the field for a key or
    /// `@requires`); with a label both stay, switched by the label at request time.
    fn resolve_overrides(&mut self) {
        let names: Vec<String> = self.sources.iter().map(|s| s.name.clone()).collect();
        for t in self.types.values_mut() {
            let needed: Vec<(usize, String)> = t
                .graphs
                .iter()
                .flat_map(|(g, gt)| {
                    let keys = gt.keys.iter().map(|(k, _)| k.clone());
                    let requires = t
                        .fields
                        .iter()
                        .flat_map(|(_, mf)| mf.graphs.iter())
                        .filter(|gf| gf.graph == *g)
                        .filter_map(|gf| gf.requires.clone());
                    keys.chain(requires)
                        .flat_map(|fs| {
                            field_set::parse_syntax(&fs)
                                .map(|set| field_set::top_level_names(&set))
                                .unwrap_or_default()
                        })
                        .map(|name| (*g, name))
                        .collect::<Vec<_>>()
                })
                .collect();
            for (fname, mf) in t.fields.iter_mut() {
                let overrides: Vec<(usize, Option<String>)> = mf
                    .graphs
                    .iter()
                    .filter_map(|gf| {
                        let from = gf.override_from.as_ref()?;
                        let g = names.iter().position(|n| n == from)?;
                        Some((g, gf.override_label.clone()))
                    })
                    .collect();
                for (from, label) in overrides {
                    match label {
                        Some(label) => {
                            for gf in mf.graphs.iter_mut().filter(|gf| gf.graph == from) {
                                gf.override_label = Some(label.clone());
                            }
                        }
                        None if needed.iter().any(|(g, n)| *g == from && n == fname) => {
                            for gf in mf.graphs.iter_mut().filter(|gf| gf.graph == from) {
                                gf.used_overridden = true;
                            }
                        }
                        None => mf.graphs.retain(|gf| gf.graph != from || gf.external),
                    }
                }
            }
        }
    }

    /// Fields an `@interfaceObject` adds to an interface exist on every implementation,
    /// resolved by no subgraph on the implementation itself (a bare `@join__field`).
    fn add_interface_object_fields(&mut self) {
        let mut additions: Vec<(String, String, Node<FieldDefinition>)> = Vec::new();
        for (iname, iface) in &self.types {
            let io_graphs: Vec<usize> = iface
                .graphs
                .iter()
                .filter(|(_, gt)| gt.interface_object)
                .map(|(g, _)| *g)
                .collect();
            if io_graphs.is_empty() {
                continue;
            }
            for (tname, t) in &self.types {
                if !t.interfaces.iter().any(|(i, _)| i == iname) {
                    continue;
                }
                for (fname, mf) in &iface.fields {
                    if !t.fields.iter().any(|(n, _)| n == fname)
                        && mf.graphs.iter().all(|gf| io_graphs.contains(&gf.graph))
                    {
                        additions.push((tname.clone(), fname.clone(), mf.def.clone()));
                    }
                }
            }
        }
        for (tname, fname, def) in additions {
            if let Some(t) = self.types.get_mut(&tname) {
                t.fields.push((
                    fname,
                    MField {
                        def,
                        graphs: Vec::new(),
                        inaccessible: false,
                        tags: Vec::new(),
                        auth: Auth::default(),
                        cost: Cost::default(),
                    },
                ));
            }
        }
    }

    fn skip_type(name: &str) -> bool {
        name.starts_with('_')
            || name.starts_with("link__")
            || name.starts_with("federation__")
            || name.starts_with("join__")
    }

    fn type_marks(names: &FedNames, directives: &DirectiveList, t: &mut MType) {
        if names.has(directives, "inaccessible") {
            t.inaccessible = true;
        }
        t.cost = t.cost.max(Cost::read(names, directives).weight);
        t.auth.merge(&Auth::read(names, directives));
        for d in names.all(directives, "tag") {
            if let Some(tag) = str_arg(d, "name")
                && !t.tags.contains(&tag)
            {
                t.tags.push(tag);
            }
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn collect_fields_type(
        &mut self,
        g: usize,
        names: &FedNames,
        kind: Kind,
        name: &Name,
        description: &Option<Node<str>>,
        directives: &DirectiveList,
        interfaces: &[Name],
        fields: &[Node<FieldDefinition>],
        is_extension: bool,
    ) {
        if Self::skip_type(name) {
            return;
        }
        // An @interfaceObject is the supergraph interface, seen as an object type here.
        let kind = if kind == Kind::Object && names.has(directives, "interfaceObject") {
            Kind::Interface
        } else {
            kind
        };
        let graph_name = self.sources[g].name.clone();
        let Some(t) = self.type_entry(g, name, kind, description) else {
            return;
        };
        Self::type_marks(names, directives, t);
        for d in names.all(directives, "context") {
            if let Some(ctx) = str_arg(d, "name") {
                let qualified = format!("{graph_name}__{ctx}");
                if !t.contexts.contains(&qualified) {
                    t.contexts.push(qualified);
                }
            }
        }
        let gt = t.graphs.entry(g).or_default();
        gt.extension |= is_extension || names.has(directives, "extends");
        gt.shareable |= names.has(directives, "shareable");
        gt.interface_object |= names.has(directives, "interfaceObject");
        for key in names.all(directives, "key") {
            let fields = str_arg(key, "fields").unwrap_or_default();
            let resolvable = key
                .specified_argument_by_name("resolvable")
                .and_then(|v| v.to_bool())
                .unwrap_or(true);
            gt.keys.push((fields, resolvable));
        }
        let type_shareable = gt.shareable;
        for i in interfaces {
            add_in_graph(&mut t.interfaces, i.to_string(), g, |a, b| a == b);
        }
        for f in fields {
            if f.name.starts_with("__")
                || (ROOTS.contains(&name.as_str())
                    && matches!(f.name.as_str(), "_service" | "_entities"))
            {
                continue;
            }
            let gf = GField {
                graph: g,
                ty: f.ty.clone(),
                external: names.has(&f.directives, "external"),
                requires: names
                    .all(&f.directives, "requires")
                    .next()
                    .and_then(|d| str_arg(d, "fields")),
                provides: names
                    .all(&f.directives, "provides")
                    .next()
                    .and_then(|d| str_arg(d, "fields")),
                override_from: names
                    .all(&f.directives, "override")
                    .next()
                    .and_then(|d| str_arg(d, "from")),
                override_label: names
                    .all(&f.directives, "override")
                    .next()
                    .and_then(|d| str_arg(d, "label")),
                used_overridden: false,
                context_arguments: f
                    .arguments
                    .iter()
                    .filter_map(|a| {
                        let d = names.all(&a.directives, "fromContext").next()?;
                        let text = str_arg(d, "field")?;
                        // "$ctx { prop }": the context's name, then the selection.
                        let rest = text.trim().strip_prefix('$')?;
                        let end = rest
                            .find(|c: char| c.is_whitespace() || c == '{' || c == '.')
                            .unwrap_or(rest.len());
                        Some((
                            format!("{graph_name}__{}", &rest[..end]),
                            a.name.to_string(),
                            a.ty.to_string(),
                            format!(" {}", rest[end..].trim()),
                        ))
                    })
                    .collect(),
                shareable: type_shareable || names.has(&f.directives, "shareable"),
            };
            let inaccessible = names.has(&f.directives, "inaccessible");
            let auth = Auth::read(names, &f.directives);
            let mut cost = Cost::read(names, &f.directives);
            for a in &f.arguments {
                if let Some(w) = Cost::read(names, &a.directives).weight {
                    cost.arguments.insert(a.name.to_string(), w);
                }
            }
            let tags: Vec<String> = names
                .all(&f.directives, "tag")
                .filter_map(|d| str_arg(d, "name"))
                .collect();
            match t.fields.iter_mut().find(|(n, _)| n == f.name.as_str()) {
                Some((_, mf)) => {
                    mf.graphs.push(gf);
                    mf.inaccessible |= inaccessible;
                    mf.auth.merge(&auth);
                    mf.cost.merge(cost);
                    for tag in tags {
                        if !mf.tags.contains(&tag) {
                            mf.tags.push(tag);
                        }
                    }
                    // Prefer the definition with a description for the supergraph.
                    if mf.def.description.is_none() && f.description.is_some() {
                        mf.def = f.clone();
                    }
                }
                None => t.fields.push((
                    f.name.to_string(),
                    MField {
                        def: f.clone(),
                        graphs: vec![gf],
                        inaccessible,
                        tags,
                        auth,
                        cost,
                    },
                )),
            }
        }
    }

    /// The merged type for a definition of `name` in subgraph `g`, with its
    /// `@inaccessible`/`@tag` marks applied; `None` for federation machinery and kind clashes.
    #[allow(clippy::too_many_arguments)]
    fn entry_for(
        &mut self,
        g: usize,
        names: &FedNames,
        name: &Name,
        kind: Kind,
        description: &Option<Node<str>>,
        directives: &DirectiveList,
    ) -> Option<&mut MType> {
        if Self::skip_type(name)
            || (kind == Kind::Scalar && BUILT_IN_SCALARS.contains(&name.as_str()))
        {
            return None;
        }
        let t = self.type_entry(g, name, kind, description)?;
        Self::type_marks(names, directives, t);
        Some(t)
    }

    fn collect_union(
        &mut self,
        g: usize,
        names: &FedNames,
        name: &Name,
        description: &Option<Node<str>>,
        directives: &DirectiveList,
        members: &[Name],
    ) {
        if let Some(t) = self.entry_for(g, names, name, Kind::Union, description, directives) {
            for m in members {
                add_in_graph(&mut t.members, m.to_string(), g, |a, b| a == b);
            }
        }
    }

    fn collect_enum(
        &mut self,
        g: usize,
        names: &FedNames,
        name: &Name,
        description: &Option<Node<str>>,
        directives: &DirectiveList,
        values: &[Node<EnumValueDefinition>],
    ) {
        if let Some(t) = self.entry_for(g, names, name, Kind::Enum, description, directives) {
            for v in values {
                if names.has(&v.directives, "inaccessible") {
                    t.inaccessible_values.insert(v.value.to_string());
                }
                add_in_graph(&mut t.values, v.clone(), g, |a, b| a.value == b.value);
            }
        }
    }

    fn collect_input(
        &mut self,
        g: usize,
        names: &FedNames,
        name: &Name,
        description: &Option<Node<str>>,
        directives: &DirectiveList,
        fields: &[Node<InputValueDefinition>],
    ) {
        if let Some(t) = self.entry_for(g, names, name, Kind::Input, description, directives) {
            for f in fields {
                add_in_graph(&mut t.inputs, f.clone(), g, |a, b| a.name == b.name);
            }
        }
    }

    fn collect_scalar(
        &mut self,
        g: usize,
        names: &FedNames,
        name: &Name,
        description: &Option<Node<str>>,
        directives: &DirectiveList,
    ) {
        self.entry_for(g, names, name, Kind::Scalar, description, directives);
    }

    fn validate(&mut self) {
        let mut errors = Vec::new();
        let known: Vec<String> = self.types.keys().cloned().collect();
        let exists = |n: &str| BUILT_IN_SCALARS.contains(&n) || known.iter().any(|k| k == n);
        for (tname, t) in &self.types {
            let is_entity = t.graphs.values().any(|g| !g.keys.is_empty());
            // Key fields per graph, which are implicitly shareable.
            let key_fields: HashMap<usize, Vec<String>> = t
                .graphs
                .iter()
                .map(|(g, gt)| {
                    let mut names = Vec::new();
                    for (k, _) in &gt.keys {
                        match field_set::parse(k) {
                            Ok(items) => {
                                for i in &items {
                                    if !t.fields.iter().any(|(n, mf)| n == &i.name && mf.graphs.iter().any(|gf| gf.graph == *g)) {
                                        errors.push(format!(
                                            "@key(fields: \"{k}\") on {tname} in subgraph '{}' names field '{}' the subgraph does not define",
                                            self.graph_name(*g),
                                            i.name
                                        ));
                                    }
                                    names.push(i.name.clone());
                                }
                            }
                            Err(e) => errors.push(format!("@key on {tname} in subgraph '{}': {e}", self.graph_name(*g))),
                        }
                    }
                    (*g, names)
                })
                .collect();
            for (fname, mf) in t.fields.iter().filter(|(_, mf)| !mf.graphs.is_empty()) {
                let coordinate = format!("{tname}.{fname}");
                let named = mf.def.ty.inner_named_type();
                if !exists(named.as_str()) {
                    errors.push(format!(
                        "field {coordinate} has type {named}, which no subgraph defines"
                    ));
                }
                let first_shape = shape(&mf.graphs[0].ty);
                for gf in &mf.graphs[1..] {
                    if shape(&gf.ty) != first_shape {
                        errors.push(format!(
                            "field {coordinate} has type {} in subgraph '{}' but {} in subgraph '{}'",
                            mf.graphs[0].ty,
                            self.graph_name(mf.graphs[0].graph),
                            gf.ty,
                            self.graph_name(gf.graph)
                        ));
                    }
                }
                for gf in &mf.graphs {
                    for (what, fs) in [("@requires", &gf.requires), ("@provides", &gf.provides)] {
                        if let Some(fs) = fs
                            && let Err(e) = field_set::parse_syntax(fs)
                        {
                            errors.push(format!(
                                "{what} on {coordinate} in subgraph '{}': {e}",
                                self.graph_name(gf.graph)
                            ));
                        }
                    }
                }
                let resolvers: Vec<&GField> = mf.graphs.iter().filter(|gf| !gf.external).collect();
                if resolvers.is_empty() {
                    let externals: Vec<&str> = mf
                        .graphs
                        .iter()
                        .map(|gf| self.graph_name(gf.graph))
                        .collect();
                    errors.push(format!(
                        "field {coordinate} is @external in subgraph(s) {} but no subgraph resolves it",
                        externals.join(", ")
                    ));
                }
                if t.kind == Kind::Object && resolvers.len() > 1 {
                    let unshared: Vec<&str> = resolvers
                        .iter()
                        .filter(|gf| {
                            let is_key = is_entity
                                && key_fields
                                    .get(&gf.graph)
                                    .is_some_and(|k| k.iter().any(|n| n == fname));
                            !gf.shareable && !is_key && gf.override_from.is_none()
                        })
                        .map(|gf| self.graph_name(gf.graph))
                        .collect();
                    let overridden = resolvers.iter().any(|gf| gf.override_from.is_some());
                    if !unshared.is_empty() && !overridden {
                        let all: Vec<&str> = resolvers
                            .iter()
                            .map(|gf| self.graph_name(gf.graph))
                            .collect();
                        errors.push(format!(
                            "field {coordinate} is resolved by subgraphs {} but is not @shareable in {}",
                            all.join(", "),
                            unshared.join(", ")
                        ));
                    }
                }
            }
            for (iface, _) in &t.interfaces {
                if !exists(iface) {
                    errors.push(format!(
                        "type {tname} implements {iface}, which no subgraph defines"
                    ));
                }
            }
            for (member, _) in &t.members {
                if !exists(member) {
                    errors.push(format!(
                        "union {tname} has member {member}, which no subgraph defines"
                    ));
                }
            }
            if t.kind == Kind::Input {
                let all_graphs = t.graphs.len();
                for (f, gs) in &t.inputs {
                    if gs.len() < all_graphs && f.ty.is_non_null() {
                        errors.push(format!(
                            "input field {tname}.{} is required but missing from some subgraphs defining {tname}",
                            f.name
                        ));
                    }
                }
            }
        }
        self.errors.extend(errors);
    }

    fn graph_arg(&self, g: usize) -> (Name, Node<Value>) {
        (
            name("graph"),
            Node::new(Value::Enum(name(&graph_enum_value(self.graph_name(g))))),
        )
    }

    fn print(&self) -> String {
        let mut out = String::new();
        let uses_inaccessible = self.types.values().any(|t| {
            t.inaccessible
                || !t.inaccessible_values.is_empty()
                || t.fields.iter().any(|(_, f)| f.inaccessible)
        });
        let uses_tag = self
            .types
            .values()
            .any(|t| !t.tags.is_empty() || t.fields.iter().any(|(_, f)| !f.tags.is_empty()));
        out.push_str("schema\n  @link(url: \"https://specs.apollo.dev/link/v1.0\")\n  @link(url: \"https://specs.apollo.dev/join/v0.5\", for: EXECUTION)\n");
        if uses_inaccessible {
            out.push_str(
                "  @link(url: \"https://specs.apollo.dev/inaccessible/v0.2\", for: SECURITY)\n",
            );
        }
        if uses_tag {
            out.push_str("  @link(url: \"https://specs.apollo.dev/tag/v0.3\")\n");
        }
        let uses_context = self.types.values().any(|t| !t.contexts.is_empty());
        if uses_context {
            out.push_str(
                "  @link(url: \"https://specs.apollo.dev/context/v0.1\", for: SECURITY)\n",
            );
        }
        let auth_used = |pick: fn(&Auth) -> bool| {
            self.types
                .values()
                .any(|t| pick(&t.auth) || t.fields.iter().any(|(_, f)| pick(&f.auth)))
        };
        let uses_authenticated = auth_used(|a| a.authenticated);
        let uses_scopes = auth_used(|a| a.scopes.is_some());
        let uses_policy = auth_used(|a| a.policies.is_some());
        for (used, spec) in [
            (uses_authenticated, "authenticated"),
            (uses_scopes, "requiresScopes"),
            (uses_policy, "policy"),
        ] {
            if used {
                out.push_str(&format!(
                    "  @link(url: \"https://specs.apollo.dev/{spec}/v0.1\", for: SECURITY)\n"
                ));
            }
        }
        let uses_cost = self
            .types
            .values()
            .any(|t| t.cost.is_some() || t.fields.iter().any(|(_, f)| !f.cost.is_empty()));
        if uses_cost {
            out.push_str("  @link(url: \"https://specs.apollo.dev/cost/v0.1\", import: [\"@cost\", \"@listSize\"])\n");
        }
        out.push_str("{\n");
        for (root, op) in [
            ("Query", "query"),
            ("Mutation", "mutation"),
            ("Subscription", "subscription"),
        ] {
            if self.types.contains_key(root) {
                out.push_str(&format!("  {op}: {root}\n"));
            }
        }
        out.push_str("}\n\n");
        if uses_inaccessible {
            out.push_str("directive @inaccessible on FIELD_DEFINITION | OBJECT | INTERFACE | UNION | ARGUMENT_DEFINITION | SCALAR | ENUM | ENUM_VALUE | INPUT_OBJECT | INPUT_FIELD_DEFINITION\n\n");
        }
        if uses_context {
            out.push_str(
                "directive @context(name: String!) repeatable on INTERFACE | OBJECT | UNION\n\n",
            );
        }
        const AUTH_ON: &str = "FIELD_DEFINITION | OBJECT | INTERFACE | SCALAR | ENUM";
        if uses_authenticated {
            out.push_str(&format!("directive @authenticated on {AUTH_ON}\n\n"));
        }
        if uses_scopes {
            out.push_str(&format!(
                "directive @requiresScopes(scopes: [[requiresScopes__Scope!]!]!) on {AUTH_ON}\n\nscalar requiresScopes__Scope\n\n"
            ));
        }
        if uses_policy {
            out.push_str(&format!(
                "directive @policy(policies: [[policy__Policy!]!]!) on {AUTH_ON}\n\nscalar policy__Policy\n\n"
            ));
        }
        if uses_cost {
            out.push_str("directive @cost(weight: Int!) on ARGUMENT_DEFINITION | ENUM | FIELD_DEFINITION | INPUT_FIELD_DEFINITION | OBJECT | SCALAR\n\n");
            out.push_str("directive @listSize(assumedSize: Int, slicingArguments: [String!], sizedFields: [String!], requireOneSlicingArgument: Boolean = true) on FIELD_DEFINITION\n\n");
        }
        out.push_str(JOIN_HEADER);
        if uses_tag {
            out.push_str("directive @tag(name: String!) repeatable on FIELD_DEFINITION | OBJECT | INTERFACE | UNION | ARGUMENT_DEFINITION | SCALAR | ENUM | ENUM_VALUE | INPUT_OBJECT | INPUT_FIELD_DEFINITION | SCHEMA\n\n");
        }
        out.push_str("enum join__Graph {\n");
        for s in self.sources {
            out.push_str(&format!(
                "  {} @join__graph(name: {}, url: {})\n",
                graph_enum_value(&s.name),
                Value::String(s.name.clone()),
                Value::String(s.url.clone())
            ));
        }
        out.push_str("}\n\n");
        out.push_str(LINK_TYPES);
        if uses_context {
            out.push_str("scalar context__ContextFieldValue\n\n");
        }

        let mut doc = Document::new();
        for (tname, t) in &self.types {
            doc.definitions.push(self.print_type(tname, t));
        }
        out.push_str(&doc.to_string());
        out
    }

    fn context_marks(directives: &mut DirectiveList, t: &MType) {
        for ctx in &t.contexts {
            directives.push(directive(
                "context",
                vec![(name("name"), Node::new(Value::String(ctx.clone())))],
            ));
        }
    }

    fn security_marks(
        &self,
        directives: &mut DirectiveList,
        inaccessible: bool,
        tags: &[String],
        auth: &Auth,
    ) {
        if auth.authenticated {
            directives.push(directive("authenticated", vec![]));
        }
        for (dname, arg, sets) in [
            ("requiresScopes", "scopes", &auth.scopes),
            ("policy", "policies", &auth.policies),
        ] {
            if let Some(sets) = sets {
                let value = Value::List(
                    sets.iter()
                        .map(|all| {
                            Node::new(Value::List(
                                all.iter()
                                    .map(|s| Node::new(Value::String(s.clone())))
                                    .collect(),
                            ))
                        })
                        .collect(),
                );
                directives.push(directive(dname, vec![(name(arg), Node::new(value))]));
            }
        }
        if inaccessible {
            directives.push(Node::new(Directive {
                name: name("inaccessible"),
                arguments: vec![],
            }));
        }
        for tag in tags {
            directives.push(directive(
                "tag",
                vec![(name("name"), Node::new(Value::String(tag.clone())))],
            ));
        }
    }

    fn join_types(&self, t: &MType) -> DirectiveList {
        let mut dl = DirectiveList::new();
        for (g, gt) in &t.graphs {
            let extras = |args: &mut Vec<(Name, Node<Value>)>| {
                if gt.extension {
                    args.push((name("extension"), Node::new(Value::Boolean(true))));
                }
                if gt.interface_object {
                    args.push((name("isInterfaceObject"), Node::new(Value::Boolean(true))));
                }
            };
            if gt.keys.is_empty() {
                let mut args = vec![self.graph_arg(*g)];
                extras(&mut args);
                dl.push(directive("join__type", args));
            }
            for (key, resolvable) in &gt.keys {
                let mut args = vec![
                    self.graph_arg(*g),
                    (name("key"), Node::new(Value::String(key.clone()))),
                ];
                extras(&mut args);
                if !resolvable {
                    args.push((name("resolvable"), Node::new(Value::Boolean(false))));
                }
                dl.push(directive("join__type", args));
            }
        }
        dl
    }

    fn print_type(&self, tname: &str, t: &MType) -> Definition {
        let mut directives = self.join_types(t);
        match t.kind {
            Kind::Object | Kind::Interface => {
                let mut implements = Vec::new();
                for (iface, gs) in &t.interfaces {
                    implements.push(name(iface));
                    // Always, as other composers write it: the planner reads from these
                    // which implementations each subgraph can return.
                    for g in gs {
                        directives.push(directive(
                            "join__implements",
                            vec![
                                self.graph_arg(*g),
                                (name("interface"), Node::new(Value::String(iface.clone()))),
                            ],
                        ));
                    }
                }
                self.security_marks(&mut directives, t.inaccessible, &t.tags, &t.auth);
                if let Some(w) = t.cost {
                    directives.push(directive(
                        "cost",
                        vec![(name("weight"), Node::new(Value::Int(w.into())))],
                    ));
                }
                Self::context_marks(&mut directives, t);
                let fields = t
                    .fields
                    .iter()
                    .map(|(_, mf)| self.print_field(t, mf))
                    .collect();
                if t.kind == Kind::Object {
                    Definition::ObjectTypeDefinition(Node::new(ObjectTypeDefinition {
                        description: t.description.clone(),
                        name: name(tname),
                        implements_interfaces: implements,
                        directives,
                        fields,
                    }))
                } else {
                    Definition::InterfaceTypeDefinition(Node::new(InterfaceTypeDefinition {
                        description: t.description.clone(),
                        name: name(tname),
                        implements_interfaces: implements,
                        directives,
                        fields,
                    }))
                }
            }
            Kind::Union => {
                for (member, gs) in &t.members {
                    for g in gs {
                        directives.push(directive(
                            "join__unionMember",
                            vec![
                                self.graph_arg(*g),
                                (name("member"), Node::new(Value::String(member.clone()))),
                            ],
                        ));
                    }
                }
                self.security_marks(&mut directives, t.inaccessible, &t.tags, &t.auth);
                if let Some(w) = t.cost {
                    directives.push(directive(
                        "cost",
                        vec![(name("weight"), Node::new(Value::Int(w.into())))],
                    ));
                }
                Definition::UnionTypeDefinition(Node::new(UnionTypeDefinition {
                    description: t.description.clone(),
                    name: name(tname),
                    directives,
                    members: t.members.iter().map(|(m, _)| name(m)).collect(),
                }))
            }
            Kind::Enum => {
                self.security_marks(&mut directives, t.inaccessible, &t.tags, &t.auth);
                if let Some(w) = t.cost {
                    directives.push(directive(
                        "cost",
                        vec![(name("weight"), Node::new(Value::Int(w.into())))],
                    ));
                }
                let values = t
                    .values
                    .iter()
                    .map(|(v, gs)| {
                        let mut v = (**v).clone();
                        let kept = keep_deprecated(&v.directives);
                        v.directives = kept;
                        if t.inaccessible_values.contains(v.value.as_str()) {
                            v.directives.push(directive("inaccessible", vec![]));
                        }
                        for g in gs {
                            v.directives
                                .push(directive("join__enumValue", vec![self.graph_arg(*g)]));
                        }
                        Node::new(v)
                    })
                    .collect();
                Definition::EnumTypeDefinition(Node::new(EnumTypeDefinition {
                    description: t.description.clone(),
                    name: name(tname),
                    directives,
                    values,
                }))
            }
            Kind::Input => {
                self.security_marks(&mut directives, t.inaccessible, &t.tags, &t.auth);
                if let Some(w) = t.cost {
                    directives.push(directive(
                        "cost",
                        vec![(name("weight"), Node::new(Value::Int(w.into())))],
                    ));
                }
                let all = t.graphs.len();
                let fields = t
                    .inputs
                    .iter()
                    .filter(|(_, gs)| gs.len() == all)
                    .map(|(f, _)| {
                        let mut f = (**f).clone();
                        f.directives = keep_deprecated(&f.directives);
                        Node::new(f)
                    })
                    .collect();
                Definition::InputObjectTypeDefinition(Node::new(InputObjectTypeDefinition {
                    description: t.description.clone(),
                    name: name(tname),
                    directives,
                    fields,
                }))
            }
            Kind::Scalar => {
                self.security_marks(&mut directives, t.inaccessible, &t.tags, &t.auth);
                if let Some(w) = t.cost {
                    directives.push(directive(
                        "cost",
                        vec![(name("weight"), Node::new(Value::Int(w.into())))],
                    ));
                }
                Definition::ScalarTypeDefinition(Node::new(ScalarTypeDefinition {
                    description: t.description.clone(),
                    name: name(tname),
                    directives,
                }))
            }
        }
    }

    fn print_field(&self, t: &MType, mf: &MField) -> Node<FieldDefinition> {
        let mut def = (*mf.def).clone();
        def.directives = keep_deprecated(&mf.def.directives);
        let from_context = mf.context_argument_names();
        def.arguments
            .retain(|a| !from_context.contains(&a.name.as_str()));
        for a in def.arguments.iter_mut() {
            let a = a.make_mut();
            a.directives = keep_deprecated(&a.directives);
            if let Some(w) = mf.cost.arguments.get(a.name.as_str()) {
                a.directives.push(directive(
                    "cost",
                    vec![(name("weight"), Node::new(Value::Int((*w).into())))],
                ));
            }
        }
        mf.cost.marks(&mut def.directives);
        if mf.graphs.is_empty() {
            def.directives.push(directive("join__field", Vec::new()));
            return Node::new(def);
        }
        // Any nullable variant makes the supergraph field nullable.
        if let Some(nullable) = mf.graphs.iter().find(|gf| !gf.ty.is_non_null()) {
            def.ty = nullable.ty.clone();
        }
        let in_all = t
            .graphs
            .keys()
            .all(|g| mf.graphs.iter().any(|gf| gf.graph == *g));
        let special = mf.graphs.iter().any(|gf| {
            gf.external
                || gf.requires.is_some()
                || gf.provides.is_some()
                || gf.override_from.is_some()
                || gf.override_label.is_some()
                || gf.used_overridden
                || !gf.context_arguments.is_empty()
                || gf.ty != def.ty
        });
        // Directive arguments (provides, requires, ...) must survive even for a type in one
        // subgraph; otherwise the graphs only need naming when not all of them resolve it.
        if special || (t.graphs.len() > 1 && !in_all) {
            for gf in &mf.graphs {
                let mut args = vec![self.graph_arg(gf.graph)];
                if let Some(r) = &gf.requires {
                    args.push((name("requires"), Node::new(Value::String(r.clone()))));
                }
                if let Some(p) = &gf.provides {
                    args.push((name("provides"), Node::new(Value::String(p.clone()))));
                }
                if gf.ty != def.ty {
                    args.push((name("type"), Node::new(Value::String(gf.ty.to_string()))));
                }
                if gf.external {
                    args.push((name("external"), Node::new(Value::Boolean(true))));
                }
                if let Some(o) = &gf.override_from {
                    args.push((name("override"), Node::new(Value::String(o.clone()))));
                }
                if gf.used_overridden {
                    args.push((name("usedOverridden"), Node::new(Value::Boolean(true))));
                }
                if let Some(l) = &gf.override_label {
                    args.push((name("overrideLabel"), Node::new(Value::String(l.clone()))));
                }
                if !gf.context_arguments.is_empty() {
                    let list = gf
                        .context_arguments
                        .iter()
                        .map(|(ctx, arg, ty, selection)| {
                            let s = |v: &str| Node::new(Value::String(v.to_string()));
                            Node::new(Value::Object(vec![
                                (name("context"), s(ctx)),
                                (name("name"), s(arg)),
                                (name("type"), s(ty)),
                                (name("selection"), s(selection)),
                            ]))
                        })
                        .collect();
                    args.push((name("contextArguments"), Node::new(Value::List(list))));
                }
                def.directives.push(directive("join__field", args));
            }
        }
        self.security_marks(&mut def.directives, mf.inaccessible, &mf.tags, &mf.auth);
        Node::new(def)
    }
}

/// Records that subgraph `g` has `item` (a union member, enum value, input field, ...).
fn add_in_graph<T>(
    list: &mut Vec<(T, Vec<usize>)>,
    item: T,
    g: usize,
    same: impl Fn(&T, &T) -> bool,
) {
    match list.iter_mut().find(|(existing, _)| same(existing, &item)) {
        Some((_, graphs)) => graphs.push(g),
        None => list.push((item, vec![g])),
    }
}

fn keep_deprecated(directives: &DirectiveList) -> DirectiveList {
    let mut out = DirectiveList::new();
    for d in directives
        .iter()
        .filter(|d| d.name == "deprecated" || d.name == "specifiedBy")
    {
        out.push(d.clone());
    }
    out
}

/// A GraphQL name from text we produced or read from a parsed document. Names that are
/// not valid (impossible for parsed input) degrade to a placeholder instead of panicking.
fn name(s: &str) -> Name {
    Name::new(s).unwrap_or_else(|_| apollo_compiler::name!("_invalid"))
}

fn directive(n: &str, args: Vec<(Name, Node<Value>)>) -> Node<Directive> {
    Node::new(Directive {
        name: name(n),
        arguments: args
            .into_iter()
            .map(|(name, value)| Node::new(apollo_compiler::ast::Argument { name, value }))
            .collect(),
    })
}

const JOIN_HEADER: &str = r#"directive @join__enumValue(graph: join__Graph!) repeatable on ENUM_VALUE

directive @join__directive(graphs: [join__Graph!], name: String!, args: join__DirectiveArguments) repeatable on SCHEMA | OBJECT | INTERFACE | FIELD_DEFINITION

directive @join__field(graph: join__Graph, requires: join__FieldSet, provides: join__FieldSet, type: String, external: Boolean, override: String, usedOverridden: Boolean, overrideLabel: String, contextArguments: [join__ContextArgument!]) repeatable on FIELD_DEFINITION | INPUT_FIELD_DEFINITION

directive @join__graph(name: String!, url: String!) on ENUM_VALUE

directive @join__implements(graph: join__Graph!, interface: String!) repeatable on OBJECT | INTERFACE

directive @join__type(graph: join__Graph!, key: join__FieldSet, extension: Boolean! = false, resolvable: Boolean! = true, isInterfaceObject: Boolean! = false) repeatable on OBJECT | INTERFACE | UNION | ENUM | INPUT_OBJECT | SCALAR

directive @join__unionMember(graph: join__Graph!, member: String!) repeatable on UNION

directive @link(url: String, as: String, for: link__Purpose, import: [link__Import]) repeatable on SCHEMA

input join__ContextArgument {
  name: String!
  type: String!
  context: String!
  selection: join__FieldValue!
}

scalar join__DirectiveArguments

scalar join__FieldSet

scalar join__FieldValue

"#;

const LINK_TYPES: &str = r#"scalar link__Import

enum link__Purpose {
  """
  `SECURITY` features provide metadata necessary to securely resolve fields.
  """
  SECURITY

  """
  `EXECUTION` features provide metadata necessary for operation execution.
  """
  EXECUTION
}

"#;

//! A supergraph loaded into what planning needs: the subgraphs, which subgraph can
//! resolve which type and field, the keys per subgraph, and the API schema clients see.
//!
//! Reads the join spec (v0.2 to v0.5) as produced by standard composition tools.

use std::collections::{BTreeSet, HashMap};

use apollo_compiler::ast::Value;
use apollo_compiler::schema::{Directive, ExtendedType};
use apollo_compiler::validation::Valid;
use apollo_compiler::{Node, Schema};

use crate::field_set::{self, FieldSetItem};

#[derive(Debug, thiserror::Error)]
pub enum SupergraphError {
    #[error("the supergraph is not a valid schema:\n{0}")]
    Invalid(String),
    #[error("the supergraph has no join__Graph enum: is it a Federation v2 supergraph?")]
    NoGraphs,
    #[error("invalid field set on {coordinate}: {reason}")]
    FieldSet { coordinate: String, reason: String },
    #[error("the API schema derived from the supergraph is invalid:\n{0}")]
    ApiSchema(String),
    #[error("the supergraph uses what this gateway cannot serve: {0}")]
    Unsupported(String),
}

/// One subgraph.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Graph {
    /// The subgraph's name (`catalog`).
    pub name: String,
    /// Its value in the `join__Graph` enum (`CATALOG`).
    pub enum_value: String,
    pub url: String,
}

/// A `@key` of a type in one subgraph.
#[derive(Clone, Debug)]
pub struct Key {
    pub text: String,
    pub fields: Vec<FieldSetItem>,
    /// The key as parsed with the GraphQL grammar (arguments and type conditions kept).
    pub set: Vec<field_set::Selection>,
    /// `false` for a reference-only key: the subgraph cannot resolve the entity by it.
    pub resolvable: bool,
}

/// A type as one subgraph has it.
#[derive(Clone, Debug)]
pub struct TypeInGraph {
    pub graph: usize,
    pub keys: Vec<Key>,
    pub extension: bool,
    pub is_interface_object: bool,
}

/// A field as one subgraph has it.
#[derive(Clone, Debug, Default)]
pub struct FieldInGraph {
    pub graph: usize,
    pub external: bool,
    pub requires: Option<String>,
    pub provides: Option<String>,
    /// `requires`, parsed and validated against the field's type at load.
    pub requires_set: Option<Vec<field_set::Selection>>,
    /// `provides`, parsed and validated against the field's return type at load.
    pub provides_set: Option<Vec<field_set::Selection>>,
    pub override_from: Option<String>,
    /// Progressive override: the label that switches resolution between this subgraph
    /// and the other side of the override.
    pub override_label: Option<String>,
    /// The field was overridden away from this subgraph, which still has it only for
    /// keys or `@requires`: never fetch it from here for the client.
    pub used_overridden: bool,
    /// `@fromContext` arguments: filled from the nearest ancestor carrying a context.
    pub context_arguments: Vec<ContextArgument>,
    /// The field's type in this subgraph when it differs from the supergraph's
    /// (`join__field(type:)`, e.g. `Int!` where the supergraph has `Int`).
    pub ty: Option<String>,
}

/// One `@fromContext` argument of a field in one subgraph (join v0.5 `contextArguments`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ContextArgument {
    /// The context, as the supergraph names it (`subgraph__name`).
    pub context: String,
    /// The argument of the subgraph's field it fills.
    pub name: String,
    /// The argument's GraphQL type, as written (`String!`).
    pub ty: String,
    /// The fields read from the context's object: a single chain, `prop` or `a { b }`.
    /// `Err` holds a selection the planner cannot follow (type conditions), which fails
    /// only the operations that use it.
    pub selection: Result<Vec<FieldSetItem>, String>,
}

impl FieldInGraph {
    /// Whether this entry resolves the field under the given enabled override labels.
    /// The overriding side (`override` + label) is live when the label is enabled,
    /// the overridden side (label only) when it is not.
    fn live(&self, labels: &Labels) -> bool {
        match (&self.override_from, &self.override_label) {
            (Some(_), Some(label)) => labels.contains(label),
            (None, Some(label)) => !labels.contains(label),
            _ => true,
        }
    }
}

/// Enabled progressive-override labels for one request (`percent(n)` labels already
/// decided). An empty set routes every labelled field to the subgraph it overrides.
pub type Labels = BTreeSet<String>;

#[derive(Clone, Debug, Default)]
pub struct FieldMeta {
    /// Empty: the field is in every subgraph that has the type.
    pub graphs: Vec<FieldInGraph>,
    /// A bare `@join__field` (no graph): no subgraph resolves the field on this type;
    /// it comes through an `@interfaceObject` of one of the type's interfaces.
    pub via_interface_object: bool,
}

#[derive(Clone, Debug, Default)]
pub struct TypeMeta {
    pub graphs: Vec<TypeInGraph>,
    pub fields: HashMap<String, FieldMeta>,
}

/// The loaded supergraph.
pub struct Supergraph {
    pub graphs: Vec<Graph>,
    pub types: HashMap<String, TypeMeta>,
    /// The schema clients see: join and link machinery and `@inaccessible` elements removed.
    pub api: Valid<Schema>,
    /// The full supergraph schema, including `@inaccessible` elements planning may use.
    pub schema: Valid<Schema>,
    /// The supergraph SDL as given.
    pub sdl: String,
    /// Every progressive-override label in the supergraph, sorted.
    pub override_labels: Vec<String>,
    /// The types carrying each `@context`, by context name.
    pub contexts: HashMap<String, Vec<String>>,
    /// Per abstract type, the `(subgraph, object type)` pairs each subgraph declares
    /// (`@join__unionMember`, `@join__implements`, followed through interfaces that
    /// implement interfaces). `None` for a supergraph without those directives (join
    /// before v0.2 for interfaces, v0.3 for unions): then every subgraph is taken to
    /// know every possible type it defines.
    members_in: Option<HashMap<String, BTreeSet<(usize, String)>>>,
    /// Built on first use, without override labels (see [`Supergraph::query_graph`]).
    query_graph: std::sync::OnceLock<crate::query_graph::QueryGraph>,
}

/// The join spec's directives this gateway reads (v0.2 to v0.5).
const JOIN_DIRECTIVES: &[&str] = &[
    "join__graph",
    "join__type",
    "join__field",
    "join__implements",
    "join__unionMember",
    "join__enumValue",
];

/// Refuses a supergraph that relies on join directives this gateway does not read, so
/// that nothing they say is silently dropped: a Federation 1 supergraph (join v0.1,
/// where `@join__owner` decides which subgraph resolves a field), connectors (a
/// `@join__directive` for `@connect`/`@source` or a `@link` to their spec: such a
/// field is answered by a REST call), and join directives of a later spec version.
fn refuse_unknown_join_directives(schema: &Schema) -> Result<(), SupergraphError> {
    let mut applied: Vec<(String, &Directive)> = Vec::new();
    for d in schema.schema_definition.directives.iter() {
        applied.push(("the schema".into(), d));
    }
    for (name, ty) in &schema.types {
        for d in ty.directives().iter() {
            applied.push((name.to_string(), d));
        }
        let fields: Vec<(String, &apollo_compiler::schema::FieldDefinition)> = match ty {
            ExtendedType::Object(o) => o
                .fields
                .iter()
                .map(|(f, def)| (f.to_string(), def.as_ref()))
                .collect(),
            ExtendedType::Interface(i) => i
                .fields
                .iter()
                .map(|(f, def)| (f.to_string(), def.as_ref()))
                .collect(),
            _ => Vec::new(),
        };
        for (field, def) in fields {
            for d in def.directives.iter() {
                applied.push((format!("{name}.{field}"), d));
            }
        }
        if let ExtendedType::Enum(e) = ty {
            for (value, def) in &e.values {
                for d in def.directives.iter() {
                    applied.push((format!("{name}.{value}"), d));
                }
            }
        }
    }
    for (at, d) in applied {
        let name = d.name.as_str();
        let spec = str_arg(d, "feature").or_else(|| str_arg(d, "url"));
        let federation_1 = name == "join__owner"
            || (matches!(name, "core" | "link")
                && spec.as_deref().is_some_and(|u| u.contains("/join/v0.1")));
        if federation_1 {
            return Err(SupergraphError::Unsupported(format!(
                "it is a Federation 1 supergraph (join v0.1, at {at}); compose it with Federation 2"
            )));
        }
        if name == "join__directive" {
            let applied_name = str_arg(d, "name").unwrap_or_default();
            let link_url = d
                .specified_argument_by_name("args")
                .and_then(|a| a.as_object())
                .and_then(|fields| fields.iter().find(|(k, _)| k.as_str() == "url"))
                .and_then(|(_, v)| v.as_str())
                .map(str::to_string)
                .unwrap_or_default();
            // Other composed directives are metadata for the subgraph's own directive
            // (cache hints and the like): how the field is answered does not change.
            if matches!(applied_name.as_str(), "connect" | "source")
                || link_url.contains("/connect/")
            {
                return Err(SupergraphError::Unsupported(format!(
                    "@join__directive(name: \"{applied_name}\"{}) at {at}",
                    if link_url.is_empty() {
                        String::new()
                    } else {
                        format!(", url: \"{link_url}\"")
                    }
                )));
            }
            continue;
        }
        if name.starts_with("join__") && !JOIN_DIRECTIVES.contains(&name) {
            return Err(SupergraphError::Unsupported(format!(
                "@{name} at {at} (a join spec directive this gateway does not know)"
            )));
        }
    }
    Ok(())
}

fn str_arg(d: &Directive, name: &str) -> Option<String> {
    d.specified_argument_by_name(name)
        .and_then(|v| v.as_str())
        .map(str::to_string)
}

fn bool_arg(d: &Directive, name: &str) -> Option<bool> {
    d.specified_argument_by_name(name).and_then(|v| v.to_bool())
}

fn enum_arg(d: &Directive, name: &str) -> Option<String> {
    d.specified_argument_by_name(name)
        .and_then(|v| match v.as_ref() {
            Value::Enum(n) => Some(n.to_string()),
            _ => None,
        })
}

/// Reads `contextArguments: [{context, name, type, selection}]` of a `@join__field`.
fn context_arguments(
    d: &Directive,
    type_name: &str,
    field: &str,
) -> Result<Vec<ContextArgument>, SupergraphError> {
    let Some(list) = d.specified_argument_by_name("contextArguments") else {
        return Ok(Vec::new());
    };
    let items: Vec<&Node<Value>> = match list.as_ref() {
        Value::List(items) => items.iter().collect(),
        _ => vec![list],
    };
    let bad = |reason: String| SupergraphError::FieldSet {
        coordinate: format!("{type_name}.{field}"),
        reason,
    };
    let mut out = Vec::new();
    for item in items {
        let Value::Object(fields) = item.as_ref() else {
            return Err(bad("contextArguments entries must be objects".into()));
        };
        let get = |k: &str| {
            fields
                .iter()
                .find(|(n, _)| n.as_str() == k)
                .and_then(|(_, v)| v.as_str())
                .map(str::to_string)
                .ok_or_else(|| bad(format!("a contextArguments entry has no {k}")))
        };
        let selection_text = get("selection")?;
        let inner = selection_text.trim();
        let inner = inner
            .strip_prefix('{')
            .and_then(|s| s.strip_suffix('}'))
            .unwrap_or(inner);
        let selection = field_set::parse(inner);
        out.push(ContextArgument {
            context: get("context")?,
            name: get("name")?,
            ty: get("type")?,
            selection,
        });
    }
    Ok(out)
}

/// Reads `@join__unionMember` and `@join__implements` (see `Supergraph::members_in`).
fn members_in(
    schema: &Schema,
    graph_of: &dyn Fn(&Directive) -> Option<usize>,
) -> Option<HashMap<String, BTreeSet<(usize, String)>>> {
    let mut direct: HashMap<String, BTreeSet<(usize, String)>> = HashMap::new();
    let mut seen = false;
    for (name, ty) in &schema.types {
        for d in ty.directives().get_all("join__unionMember") {
            seen = true;
            if let (Some(g), Some(m)) = (graph_of(d), str_arg(d, "member")) {
                direct.entry(name.to_string()).or_default().insert((g, m));
            }
        }
        for d in ty.directives().get_all("join__implements") {
            seen = true;
            if let (Some(g), Some(i)) = (graph_of(d), str_arg(d, "interface")) {
                direct.entry(i).or_default().insert((g, name.to_string()));
            }
        }
    }
    // A type with no `@join__implements` at all (a composer may leave them out for a
    // type of one subgraph) implements its interfaces in every subgraph that has both.
    let graphs_of = |ty: &ExtendedType| -> BTreeSet<usize> {
        ty.directives()
            .get_all("join__type")
            .filter_map(|d| graph_of(d))
            .collect()
    };
    for (name, ty) in &schema.types {
        let interfaces = match ty {
            ExtendedType::Object(o) => &o.implements_interfaces,
            ExtendedType::Interface(i) => &i.implements_interfaces,
            _ => continue,
        };
        if interfaces.is_empty() || ty.directives().get("join__implements").is_some() {
            continue;
        }
        let own = graphs_of(ty);
        for iface in interfaces {
            let Some(iface_ty) = schema.types.get(iface.name.as_str()) else {
                continue;
            };
            let shared: Vec<usize> = own.intersection(&graphs_of(iface_ty)).copied().collect();
            for g in shared {
                direct
                    .entry(iface.name.to_string())
                    .or_default()
                    .insert((g, name.to_string()));
            }
        }
    }
    if !seen {
        return None;
    }
    // An interface implementing an interface passes its implementations on, per
    // subgraph; only object types are kept.
    let mut out: HashMap<String, BTreeSet<(usize, String)>> = HashMap::new();
    for abstract_name in direct.keys() {
        let mut found = BTreeSet::new();
        let mut todo: Vec<(usize, String)> = direct[abstract_name].iter().cloned().collect();
        while let Some((g, t)) = todo.pop() {
            match schema.types.get(t.as_str()) {
                Some(ExtendedType::Object(_)) => {
                    found.insert((g, t));
                }
                Some(ExtendedType::Interface(_)) => {
                    if let Some(next) = direct.get(&t) {
                        todo.extend(next.iter().filter(|(ng, _)| *ng == g).cloned());
                    }
                }
                _ => {}
            }
        }
        out.insert(abstract_name.clone(), found);
    }
    Some(out)
}

impl Supergraph {
    pub fn parse(sdl: &str) -> Result<Supergraph, SupergraphError> {
        let schema = Schema::parse_and_validate(sdl, "supergraph.graphql")
            .map_err(|e| SupergraphError::Invalid(e.errors.to_string()))?;

        refuse_unknown_join_directives(&schema)?;
        let graph_enum = schema
            .types
            .iter()
            .find_map(|(name, t)| match t {
                ExtendedType::Enum(e) if name.as_str() == "join__Graph" => Some(e),
                _ => None,
            })
            .ok_or(SupergraphError::NoGraphs)?;
        let mut graphs = Vec::new();
        for (value_name, value) in &graph_enum.values {
            let d = value.directives.get("join__graph");
            graphs.push(Graph {
                enum_value: value_name.to_string(),
                name: d
                    .and_then(|d| str_arg(d, "name"))
                    .unwrap_or_else(|| value_name.to_ascii_lowercase()),
                url: d.and_then(|d| str_arg(d, "url")).unwrap_or_default(),
            });
        }
        let graph_of = |d: &Directive| -> Option<usize> {
            let value = enum_arg(d, "graph")?;
            graphs.iter().position(|g| g.enum_value == value)
        };

        let mut types = HashMap::new();
        let mut override_labels = BTreeSet::new();
        let mut contexts: HashMap<String, Vec<String>> = HashMap::new();
        for (name, ty) in &schema.types {
            for d in ty.directives().get_all("context") {
                if let Some(ctx) = str_arg(d, "name") {
                    contexts.entry(ctx).or_default().push(name.to_string());
                }
            }
            if name.starts_with("join__") || name.starts_with("link__") || ty.is_built_in() {
                continue;
            }
            let mut meta = TypeMeta::default();
            for d in ty.directives().get_all("join__type") {
                let Some(graph) = graph_of(d) else { continue };
                let entry = match meta.graphs.iter().position(|t| t.graph == graph) {
                    Some(i) => i,
                    None => {
                        meta.graphs.push(TypeInGraph {
                            graph,
                            keys: Vec::new(),
                            extension: bool_arg(d, "extension").unwrap_or(false),
                            is_interface_object: bool_arg(d, "isInterfaceObject").unwrap_or(false),
                        });
                        meta.graphs.len() - 1
                    }
                };
                if let Some(key) = str_arg(d, "key") {
                    let bad = |reason: String| SupergraphError::FieldSet {
                        coordinate: format!("@key of {name}"),
                        reason,
                    };
                    let set =
                        field_set::parse_checked(&schema, name.as_str(), &key).map_err(bad)?;
                    let fields = field_set::simple(&set).ok_or_else(|| {
                        bad(format!(
                            "\"{key}\": a key selects fields without arguments or type conditions"
                        ))
                    })?;
                    meta.graphs[entry].keys.push(Key {
                        text: key,
                        fields,
                        set,
                        resolvable: bool_arg(d, "resolvable").unwrap_or(true),
                    });
                }
            }
            let fields: Vec<(
                &apollo_compiler::Name,
                &Node<apollo_compiler::schema::FieldDefinition>,
            )> = match ty {
                ExtendedType::Object(o) => o.fields.iter().map(|(n, f)| (n, &f.node)).collect(),
                ExtendedType::Interface(i) => i.fields.iter().map(|(n, f)| (n, &f.node)).collect(),
                _ => Vec::new(),
            };
            for (fname, fdef) in fields {
                let mut fm = FieldMeta::default();
                for d in fdef.directives.get_all("join__field") {
                    let Some(graph) = graph_of(d) else {
                        fm.via_interface_object = true;
                        continue;
                    };
                    let override_label = str_arg(d, "overrideLabel");
                    if let Some(l) = &override_label {
                        override_labels.insert(l.clone());
                    }
                    let checked = |directive: &str, on: &str| -> Result<_, SupergraphError> {
                        str_arg(d, directive)
                            .map(|text| {
                                field_set::parse_checked(&schema, on, &text).map_err(|reason| {
                                    SupergraphError::FieldSet {
                                        coordinate: format!("@{directive} of {name}.{fname}"),
                                        reason,
                                    }
                                })
                            })
                            .transpose()
                    };
                    let returns = fdef.ty.inner_named_type().to_string();
                    fm.graphs.push(FieldInGraph {
                        graph,
                        external: bool_arg(d, "external").unwrap_or(false),
                        requires: str_arg(d, "requires"),
                        provides: str_arg(d, "provides"),
                        requires_set: checked("requires", name.as_str())?,
                        provides_set: checked("provides", &returns)?,
                        override_from: str_arg(d, "override"),
                        override_label,
                        used_overridden: bool_arg(d, "usedOverridden").unwrap_or(false),
                        context_arguments: context_arguments(d, name.as_str(), fname.as_str())?,
                        ty: str_arg(d, "type"),
                    });
                }
                meta.fields.insert(fname.to_string(), fm);
            }
            types.insert(name.to_string(), meta);
        }

        let members_in = members_in(&schema, &graph_of);
        let api = crate::api_schema::build(sdl).map_err(SupergraphError::ApiSchema)?;
        Ok(Supergraph {
            members_in,
            graphs,
            types,
            api,
            schema,
            sdl: sdl.to_string(),
            override_labels: override_labels.into_iter().collect(),
            contexts,
            query_graph: std::sync::OnceLock::new(),
        })
    }

    /// The query graph with no progressive-override label on.
    pub fn query_graph(&self) -> &crate::query_graph::QueryGraph {
        self.query_graph
            .get_or_init(|| crate::query_graph::QueryGraph::build(self, &Labels::new()))
    }

    /// Replaces subgraph URLs (deployment overrides).
    pub fn set_url(&mut self, graph_name: &str, url: &str) -> bool {
        match self.graphs.iter_mut().find(|g| g.name == graph_name) {
            Some(g) => {
                g.url = url.to_string();
                true
            }
            None => false,
        }
    }

    pub fn graph_index(&self, name: &str) -> Option<usize> {
        self.graphs.iter().position(|g| g.name == name)
    }

    /// Whether `graph` can resolve `type_name.field` for the client: not only as
    /// `@external`, not overridden away, and live under the enabled override `labels`.
    pub fn can_resolve(&self, type_name: &str, field: &str, graph: usize, labels: &Labels) -> bool {
        self.available(type_name, field, graph, labels, false)
    }

    /// Like `can_resolve`, but a field overridden away still counts: the subgraph keeps
    /// it for keys and `@requires` inputs, which is what the planner asks it for.
    fn can_supply(&self, type_name: &str, field: &str, graph: usize, labels: &Labels) -> bool {
        self.available(type_name, field, graph, labels, true)
    }

    fn available(
        &self,
        type_name: &str,
        field: &str,
        graph: usize,
        labels: &Labels,
        for_inputs: bool,
    ) -> bool {
        if field == "__typename" {
            return true;
        }
        let Some(t) = self.types.get(type_name) else {
            return false;
        };
        match t.fields.get(field) {
            Some(fm) if !fm.graphs.is_empty() => fm.graphs.iter().any(|g| {
                g.graph == graph
                    && !g.external
                    && (for_inputs || (!g.used_overridden && g.live(labels)))
            }),
            Some(fm) if fm.via_interface_object => false,
            _ => t.graphs.iter().any(|g| g.graph == graph),
        }
    }

    /// The keys by which `graph` can resolve `type_name` as an entity.
    pub fn resolvable_keys(&self, type_name: &str, graph: usize) -> Vec<&Key> {
        self.types
            .get(type_name)
            .and_then(|t| t.graphs.iter().find(|g| g.graph == graph))
            .map(|g| g.keys.iter().filter(|k| k.resolvable).collect())
            .unwrap_or_default()
    }

    /// Whether `graph` can produce every field of `fields` on `type_name` (a key or
    /// `@requires` inputs).
    pub fn can_provide(
        &self,
        type_name: &str,
        fields: &[FieldSetItem],
        graph: usize,
        labels: &Labels,
    ) -> bool {
        fields.iter().all(|f| {
            if !self.can_supply(type_name, &f.name, graph, labels) {
                return false;
            }
            if f.selections.is_empty() {
                return true;
            }
            match self.field_type_name(type_name, &f.name) {
                Some(inner) => self.can_provide(&inner, &f.selections, graph, labels),
                None => false,
            }
        })
    }

    /// Whether `graph` has `type_name` as an `@interfaceObject` (an object type there
    /// standing for the supergraph interface).
    pub fn is_interface_object_in(&self, type_name: &str, graph: usize) -> bool {
        self.types.get(type_name).is_some_and(|t| {
            t.graphs
                .iter()
                .any(|g| g.graph == graph && g.is_interface_object)
        })
    }

    /// The interfaces `type_name` implements in the supergraph.
    pub fn interfaces_of(&self, type_name: &str) -> Vec<String> {
        match self.schema.types.get(type_name) {
            Some(ExtendedType::Object(o)) => o
                .implements_interfaces
                .iter()
                .map(|i| i.to_string())
                .collect(),
            _ => Vec::new(),
        }
    }

    fn field_in_graph(&self, type_name: &str, field: &str, graph: usize) -> Option<&FieldInGraph> {
        self.types
            .get(type_name)?
            .fields
            .get(field)?
            .graphs
            .iter()
            .find(|g| g.graph == graph)
    }

    /// The `@requires` field set of `type_name.field` in `graph` (empty when none),
    /// with its arguments and type conditions.
    pub fn requires(&self, type_name: &str, field: &str, graph: usize) -> &[field_set::Selection] {
        self.field_in_graph(type_name, field, graph)
            .and_then(|f| f.requires_set.as_deref())
            .unwrap_or_default()
    }

    /// The type of `type_name.field` as `graph` declares it (GraphQL text): what its
    /// `join__field(type:)` says, else the supergraph's.
    pub fn field_type_in(&self, type_name: &str, field: &str, graph: usize) -> Option<String> {
        if let Some(ty) = self
            .field_in_graph(type_name, field, graph)
            .and_then(|f| f.ty.clone())
        {
            return Some(ty);
        }
        self.schema
            .type_field(type_name, field)
            .ok()
            .map(|def| def.ty.to_string())
    }

    /// The `@fromContext` arguments of `type_name.field` in `graph`.
    pub fn context_arguments(
        &self,
        type_name: &str,
        field: &str,
        graph: usize,
    ) -> &[ContextArgument] {
        self.field_in_graph(type_name, field, graph)
            .map(|f| f.context_arguments.as_slice())
            .unwrap_or_default()
    }

    /// The `@provides` field set of `type_name.field` in `graph` (empty when none), in
    /// the names-and-braces form. A provides with type conditions counts as providing
    /// nothing: the fields are then fetched from their owner, which is slower but right.
    pub fn provides(&self, type_name: &str, field: &str, graph: usize) -> Vec<FieldSetItem> {
        self.field_in_graph(type_name, field, graph)
            .and_then(|f| f.provides_set.as_deref())
            .and_then(field_set::simple)
            .unwrap_or_default()
    }

    /// Whether `name` is an interface or a union.
    pub fn is_abstract(&self, name: &str) -> bool {
        matches!(
            self.schema.types.get(name),
            Some(ExtendedType::Interface(_) | ExtendedType::Union(_))
        )
    }

    /// The object types an abstract type may be at runtime, in schema order.
    pub fn possible_types(&self, name: &str) -> Vec<String> {
        match self.schema.types.get(name) {
            Some(ExtendedType::Union(u)) => u.members.iter().map(|m| m.to_string()).collect(),
            Some(ExtendedType::Interface(_)) => self
                .schema
                .types
                .iter()
                .filter(|(_, t)| matches!(t, ExtendedType::Object(o) if o.implements_interfaces.iter().any(|i| i.as_str() == name)))
                .map(|(n, _)| n.to_string())
                .collect(),
            _ => Vec::new(),
        }
    }

    /// Whether `graph` defines `type_name` at all (`@join__type`).
    pub fn defines(&self, type_name: &str, graph: usize) -> bool {
        self.types
            .get(type_name)
            .is_some_and(|t| t.graphs.iter().any(|g| g.graph == graph))
    }

    /// The object types `graph` may return where `type_name` is expected: itself for an
    /// object type it defines, else the members or implementations `graph` declares.
    pub fn possible_types_in(&self, type_name: &str, graph: usize) -> Vec<String> {
        if !self.is_abstract(type_name) {
            return if self.defines(type_name, graph) {
                vec![type_name.to_string()]
            } else {
                Vec::new()
            };
        }
        match &self.members_in {
            Some(members) => {
                let declared = members.get(type_name);
                self.possible_types(type_name)
                    .into_iter()
                    .filter(|t| declared.is_some_and(|d| d.contains(&(graph, t.clone()))))
                    .collect()
            }
            None => self
                .possible_types(type_name)
                .into_iter()
                .filter(|t| self.defines(t, graph))
                .collect(),
        }
    }

    /// Whether a fragment on `condition` can match anything `graph` returns where
    /// `parent` is expected: some type possible for both there.
    pub fn can_match_in(&self, parent: &str, condition: &str, graph: usize) -> bool {
        if parent == condition {
            return true;
        }
        let here = self.possible_types_in(parent, graph);
        let wanted = if self.is_abstract(condition) {
            self.possible_types(condition)
        } else {
            vec![condition.to_string()]
        };
        here.iter().any(|t| wanted.contains(t))
    }

    /// The named (innermost) output type of a field.
    pub fn field_type_name(&self, type_name: &str, field: &str) -> Option<String> {
        let def = self.schema.type_field(type_name, field).ok()?;
        Some(def.ty.inner_named_type().to_string())
    }
}

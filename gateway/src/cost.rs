//! Demand control: what an operation may cost, estimated from the schema before it
//! runs, and what it did cost, counted in its answer.
//!
//! Weights follow the GraphQL cost directives specification (IBM) as Apollo's router
//! applies it: a field returning an object, interface or union weighs 1, a scalar or
//! enum 0, unless `@cost(weight:)` on the field (or on its type) says otherwise; an
//! argument's `@cost` adds its weight when the argument is given; a mutation adds 10.
//! A field returning a list multiplies its own weight and its selection's cost by the
//! list's size: the value of its `@listSize(slicingArguments:)` argument as the
//! request gives it (the largest, if it gives several), else its `assumedSize`, else
//! the configured default. `sizedFields` hands the slicing value down to the named
//! child fields instead (a connection's `edges`). Where the type is abstract, the
//! costliest of the type conditions counts.
//!
//! The estimate is checked against a budget (per client name, or the default) after
//! variables are known and before anything is planned or sent; over it, the request
//! is refused with `COST_ESTIMATED_TOO_EXPENSIVE`. Asked for (`extensions.cost` in the
//! request, or always by configuration), the response's `extensions.cost` says the
//! estimate, the actual cost (lists counted at their real lengths), and the budget.

use std::collections::HashMap;

use apollo_compiler::schema::ExtendedType;
use serde_json::{Map, Value};
use shop_federation::Supergraph;
use shop_federation::operation::{
    Condition, ConditionValue, Field, Operation, OperationKind, Selection, SelectionSet,
};

use crate::pipeline::data::{Node, Object};

/// Settings of demand control.
#[derive(Clone, Debug, PartialEq)]
pub struct CostOptions {
    /// The most an operation may cost; `None` refuses nothing (and estimates only for
    /// a request that asks for its cost). Default `None`: an estimate multiplies the
    /// assumed size of every nested list, and without `@listSize` on a schema's lists
    /// ordinary queries three lists deep (the federation benchmark's query) estimate
    /// above 20,000 while answering a few hundred objects; a budget is a decision
    /// about a schema's own numbers.
    pub max_cost: Option<u64>,
    /// Budgets per client name (`apollographql-client-name`, `graphql-client-name`),
    /// instead of `max_cost`.
    pub client_max_cost: HashMap<String, u64>,
    /// The size assumed for a list whose field says nothing. Default 10.
    pub default_list_size: u64,
    /// Every response carries `extensions.cost`, not only those that ask. Default off.
    pub always_report: bool,
}

impl Default for CostOptions {
    fn default() -> Self {
        CostOptions {
            max_cost: None,
            client_max_cost: HashMap::new(),
            default_list_size: 10,
            always_report: false,
        }
    }
}

impl CostOptions {
    /// The budget of a request from `client`.
    pub fn budget_for(&self, client: Option<&str>) -> Option<u64> {
        client
            .and_then(|c| self.client_max_cost.get(c).copied())
            .or(self.max_cost)
    }
}

/// What a mutation costs before any of its fields.
const MUTATION_BASE: u64 = 10;

#[derive(Clone, Debug, Default)]
struct ListSize {
    assumed_size: Option<u64>,
    slicing_arguments: Vec<String>,
    sized_fields: Vec<String>,
}

#[derive(Clone, Debug, Default)]
struct FieldCost {
    weight: Option<u64>,
    list_size: Option<ListSize>,
    arguments: Vec<(String, u64)>,
}

/// The weights a supergraph declares, read once per supergraph.
#[derive(Debug, Default)]
pub struct CostModel {
    fields: HashMap<(String, String), FieldCost>,
    /// `@cost` on types.
    types: HashMap<String, u64>,
    /// Scalars and enums: weight 0 unless they say otherwise.
    leaves: std::collections::HashSet<String>,
    default_list_size: u64,
}

fn int_arg(d: &apollo_compiler::ast::Directive, name: &str) -> Option<u64> {
    d.specified_argument_by_name(name)?
        .to_i32()
        .and_then(|n| u64::try_from(n).ok())
}

fn strings_arg(d: &apollo_compiler::ast::Directive, name: &str) -> Vec<String> {
    match d.specified_argument_by_name(name).map(|v| v.as_ref()) {
        Some(apollo_compiler::ast::Value::List(items)) => items
            .iter()
            .filter_map(|v| v.as_str().map(str::to_string))
            .collect(),
        _ => Vec::new(),
    }
}

impl CostModel {
    pub fn new(supergraph: &Supergraph, default_list_size: u64) -> CostModel {
        let mut model = CostModel {
            default_list_size,
            ..Default::default()
        };
        // Our composition imports both names; Apollo's may leave `listSize` prefixed.
        let type_cost_of = |d: &apollo_compiler::schema::DirectiveList| {
            d.get("cost")
                .or_else(|| d.get("cost__cost"))
                .and_then(|d| int_arg(d, "weight"))
        };
        let cost_of = |d: &apollo_compiler::ast::DirectiveList| {
            d.get("cost")
                .or_else(|| d.get("cost__cost"))
                .and_then(|d| int_arg(d, "weight"))
        };
        let list_size_of = |d: &apollo_compiler::ast::DirectiveList| {
            d.get("listSize")
                .or_else(|| d.get("cost__listSize"))
                .map(|d| ListSize {
                    assumed_size: int_arg(d, "assumedSize"),
                    slicing_arguments: strings_arg(d, "slicingArguments"),
                    sized_fields: strings_arg(d, "sizedFields"),
                })
        };
        for (name, ty) in &supergraph.schema.types {
            let weight = type_cost_of(ty.directives());
            if let Some(w) = weight {
                model.types.insert(name.to_string(), w);
            }
            let fields = match ty {
                ExtendedType::Scalar(_) | ExtendedType::Enum(_) => {
                    model.leaves.insert(name.to_string());
                    continue;
                }
                ExtendedType::Object(o) => &o.fields,
                ExtendedType::Interface(i) => &i.fields,
                _ => continue,
            };
            for (fname, f) in fields {
                let cost = FieldCost {
                    weight: cost_of(&f.directives),
                    list_size: list_size_of(&f.directives),
                    arguments: f
                        .arguments
                        .iter()
                        .filter_map(|a| Some((a.name.to_string(), cost_of(&a.directives)?)))
                        .collect(),
                };
                if cost.weight.is_some() || cost.list_size.is_some() || !cost.arguments.is_empty() {
                    model
                        .fields
                        .insert((name.to_string(), fname.to_string()), cost);
                }
            }
        }
        for builtin in ["String", "Int", "Float", "Boolean", "ID"] {
            model.leaves.insert(builtin.to_string());
        }
        model
    }

    fn field(&self, f: &Field) -> Option<&FieldCost> {
        if self.fields.is_empty() {
            return None;
        }
        self.fields.get(&(f.parent_type.clone(), f.name.clone()))
    }

    /// The weight of one `f` value: the field's `@cost`, else its type's, else 1 for
    /// objects and 0 for leaves.
    fn weight(&self, f: &Field, cost: Option<&FieldCost>) -> u64 {
        if let Some(w) = cost.and_then(|c| c.weight) {
            return w;
        }
        if let Some(w) = self.types.get(&f.type_name) {
            return *w;
        }
        if f.name.starts_with("__") || self.leaves.contains(&f.type_name) {
            0
        } else {
            1
        }
    }

    fn arguments_weight(cost: Option<&FieldCost>, f: &Field) -> u64 {
        let Some(cost) = cost else { return 0 };
        cost.arguments
            .iter()
            .filter(|(name, _)| argument(f, name).is_some())
            .map(|(_, w)| *w)
            .sum()
    }

    /// The estimated cost of `op` with `variables`.
    pub fn estimate(&self, op: &Operation, variables: &Map<String, Value>) -> u64 {
        let base = if op.kind == OperationKind::Mutation {
            MUTATION_BASE
        } else {
            0
        };
        base.saturating_add(self.set_cost(&op.selection_set, variables, None))
    }

    /// `sized`: the list size a parent's `sizedFields` hands to these fields.
    fn set_cost(
        &self,
        set: &SelectionSet,
        vars: &Map<String, Value>,
        sized: Option<(&[String], u64)>,
    ) -> u64 {
        let mut total: u64 = 0;
        // Fragments on other types than the set's: only one of them applies to any
        // one object, so the costliest counts.
        let mut alternatives: Vec<(&str, u64)> = Vec::new();
        for item in &set.items {
            match item {
                Selection::Field(f) => {
                    if skipped(&f.conditions, vars) {
                        continue;
                    }
                    total = total.saturating_add(self.field_cost(f, vars, sized));
                }
                Selection::InlineFragment(frag) => {
                    if skipped(&frag.conditions, vars) {
                        continue;
                    }
                    let cost = self.set_cost(&frag.selection_set, vars, sized);
                    match frag.type_condition.as_deref() {
                        Some(t) if t != set.type_name => {
                            match alternatives.iter_mut().find(|(n, _)| *n == t) {
                                Some((_, c)) => *c = c.saturating_add(cost),
                                None => alternatives.push((t, cost)),
                            }
                        }
                        _ => total = total.saturating_add(cost),
                    }
                }
            }
        }
        let costliest = alternatives.iter().map(|(_, c)| *c).max().unwrap_or(0);
        total.saturating_add(costliest)
    }

    fn field_cost(
        &self,
        f: &Field,
        vars: &Map<String, Value>,
        sized: Option<(&[String], u64)>,
    ) -> u64 {
        let cost = self.field(f);
        let weight = self.weight(f, cost);
        let arguments = Self::arguments_weight(cost, f);
        let list_size = cost.and_then(|c| c.list_size.as_ref());
        let slicing = list_size.and_then(|l| slicing_value(f, &l.slicing_arguments, vars));
        // The size this field's items come in, and what it hands down.
        let handed = sized
            .filter(|(fields, _)| fields.contains(&f.name))
            .map(|(_, n)| n);
        let is_list = f.output.as_ref().is_some_and(|o| o.ty.is_list());
        let size = if is_list {
            handed
                .or(list_size.filter(|l| l.sized_fields.is_empty()).and(slicing))
                .or(list_size.and_then(|l| l.assumed_size))
                .unwrap_or(self.default_list_size)
        } else {
            1
        };
        let hand_down = list_size.filter(|l| !l.sized_fields.is_empty()).map(|l| {
            let n = slicing.or(l.assumed_size).unwrap_or(self.default_list_size);
            (l.sized_fields.as_slice(), n)
        });
        let children = f
            .selection_set
            .as_ref()
            .map_or(0, |s| self.set_cost(s, vars, hand_down));
        arguments.saturating_add(size.saturating_mul(weight.saturating_add(children)))
    }

    /// What `op` cost as answered: the same weights, lists at their real lengths,
    /// nothing for what came back null or missing.
    pub fn actual(&self, op: &Operation, data: &Node) -> u64 {
        let base = if op.kind == OperationKind::Mutation {
            MUTATION_BASE
        } else {
            0
        };
        match data {
            Node::Object(o) => base.saturating_add(self.actual_set(&op.selection_set, o)),
            _ => base,
        }
    }

    fn actual_set(&self, set: &SelectionSet, obj: &Object) -> u64 {
        let typename = match obj.get("__typename") {
            Some(Node::Str(s)) => Some(s.as_str()),
            _ => None,
        };
        let mut total: u64 = 0;
        for item in &set.items {
            match item {
                Selection::Field(f) => {
                    if let Some(value) = obj.get(&f.response_key) {
                        total = total.saturating_add(self.actual_field(f, value));
                    }
                }
                Selection::InlineFragment(frag) => {
                    let applies = match (frag.type_condition.as_deref(), typename) {
                        (Some(t), Some(actual)) => t == actual || t == set.type_name,
                        _ => true,
                    };
                    if applies {
                        total = total.saturating_add(self.actual_set(&frag.selection_set, obj));
                    }
                }
            }
        }
        total
    }

    fn actual_field(&self, f: &Field, value: &Node) -> u64 {
        let cost = self.field(f);
        let weight = self.weight(f, cost);
        let arguments = Self::arguments_weight(cost, f);
        arguments.saturating_add(self.actual_value(f, weight, value))
    }

    fn actual_value(&self, f: &Field, weight: u64, value: &Node) -> u64 {
        match value {
            Node::Null => 0,
            Node::List(items) => items
                .iter()
                .map(|item| self.actual_value(f, weight, item))
                .fold(0, u64::saturating_add),
            Node::Object(o) => weight.saturating_add(
                f.selection_set
                    .as_ref()
                    .map_or(0, |s| self.actual_set(s, o)),
            ),
            _ => weight,
        }
    }
}

/// Whether `@skip`/`@include` leave the selection out with these variables.
fn skipped(conditions: &[Condition], vars: &Map<String, Value>) -> bool {
    conditions.iter().any(|c| {
        let value = match &c.value {
            ConditionValue::Const(b) => *b,
            ConditionValue::Variable(v) => vars.get(v).and_then(Value::as_bool).unwrap_or(!c.skip),
        };
        value == c.skip
    })
}

/// The text of argument `name` as the field gives it (`first: 10`, `first: $n`).
fn argument<'a>(f: &'a Field, name: &str) -> Option<&'a str> {
    f.arguments.iter().find_map(|a| {
        let (n, v) = a.split_once(':')?;
        (n.trim() == name).then(|| v.trim())
    })
}

/// The largest value the request gives the slicing arguments of `f`.
fn slicing_value(f: &Field, names: &[String], vars: &Map<String, Value>) -> Option<u64> {
    names
        .iter()
        .filter_map(|name| {
            let text = argument(f, name)?;
            match text.strip_prefix('$') {
                Some(var) => vars.get(var).and_then(Value::as_u64),
                None => text.parse::<u64>().ok(),
            }
        })
        .max()
}

/// The refusal of an operation over its budget.
pub fn too_expensive(estimated: u64, max: u64) -> Value {
    serde_json::json!({
        "message": format!(
            "the operation is estimated to cost {estimated}, more than the {max} allowed; \
             ask for fewer items (smaller `first`/`limit`) or fewer nested lists"
        ),
        "extensions": {
            "code": "COST_ESTIMATED_TOO_EXPENSIVE",
            "cost": { "estimated": estimated, "max": max }
        }
    })
}

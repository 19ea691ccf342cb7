//! Client operations, normalized for planning: fragment spreads inlined, type
//! conditions that always hold flattened, arguments and directives kept as GraphQL
//! text, and the variables each field uses recorded.
//!
//! `@skip`/`@include` stay in the operation (and go to subgraphs as written), so a
//! plan does not depend on variable values and can be cached per operation.

use apollo_compiler::ast::{OperationType, Value};
use apollo_compiler::executable::{self, DirectiveList};
use apollo_compiler::validation::Valid;
use apollo_compiler::{ExecutableDocument, Node, Schema};
use serde::Serialize;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum OperationError {
    #[error("{0}")]
    NotFound(String),
    #[error("fragment {0} is not defined")]
    UnknownFragment(String),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub enum OperationKind {
    Query,
    Mutation,
    Subscription,
}

impl OperationKind {
    pub fn keyword(self) -> &'static str {
        match self {
            OperationKind::Query => "query",
            OperationKind::Mutation => "mutation",
            OperationKind::Subscription => "subscription",
        }
    }
}

/// A `@skip(if:)` or `@include(if:)` on a selection.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Condition {
    /// `true` for `@skip`, `false` for `@include`.
    pub skip: bool,
    pub value: ConditionValue,
}

impl Condition {
    /// Whether it leaves its selection out whatever the variables: `@skip(if: true)`,
    /// `@include(if: false)`.
    pub fn never_holds(&self) -> bool {
        self.value == ConditionValue::Const(self.skip)
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub enum ConditionValue {
    Const(bool),
    Variable(String),
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Field {
    pub response_key: String,
    pub name: String,
    pub alias: Option<String>,
    /// Arguments as GraphQL text, `name: value`.
    pub arguments: Vec<String>,
    /// Directives as GraphQL text (only `@skip`/`@include` pass validation).
    pub directives: Vec<String>,
    pub conditions: Vec<Condition>,
    /// Variables used by the arguments and directives of this field (not its children).
    pub variables: Vec<String>,
    /// The type that declares the field.
    pub parent_type: String,
    /// The innermost named output type.
    pub type_name: String,
    /// The output type as declared on `parent_type`, when known: the response shaper
    /// uses it instead of looking the field up for every object it writes.
    #[serde(skip)]
    pub output: Option<FieldOutput>,
    pub selection_set: Option<SelectionSet>,
}

/// A field's output type on its parent type.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FieldOutput {
    pub ty: apollo_compiler::ast::Type,
    /// Whether the named type is an enum (whose values the response checks).
    pub is_enum: bool,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct InlineFragment {
    pub type_condition: Option<String>,
    pub directives: Vec<String>,
    pub conditions: Vec<Condition>,
    pub variables: Vec<String>,
    pub selection_set: SelectionSet,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub enum Selection {
    Field(Field),
    InlineFragment(InlineFragment),
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct SelectionSet {
    pub type_name: String,
    pub items: Vec<Selection>,
}

#[derive(Clone, Debug, Serialize)]
pub struct VariableDefinition {
    pub name: String,
    /// `$name: Type = default` as GraphQL text.
    pub text: String,
}

/// A client operation ready for planning.
#[derive(Clone, Debug, Serialize)]
pub struct Operation {
    pub kind: OperationKind,
    pub name: Option<String>,
    pub variables: Vec<VariableDefinition>,
    pub selection_set: SelectionSet,
}

fn conditions_of(directives: &DirectiveList) -> (Vec<String>, Vec<Condition>, Vec<String>) {
    let mut texts = Vec::new();
    let mut conds = Vec::new();
    let mut vars = Vec::new();
    for d in directives.iter() {
        texts.push(d.to_string());
        for a in &d.arguments {
            collect_variables(&a.value, &mut vars);
        }
        let skip = match d.name.as_str() {
            "skip" => true,
            "include" => false,
            _ => continue,
        };
        let value = match d.specified_argument_by_name("if").map(|v| v.as_ref()) {
            Some(Value::Boolean(b)) => ConditionValue::Const(*b),
            Some(Value::Variable(v)) => ConditionValue::Variable(v.to_string()),
            _ => continue,
        };
        conds.push(Condition { skip, value });
    }
    (texts, conds, vars)
}

/// Appends the variables a value refers to.
pub fn collect_variables(value: &Value, out: &mut Vec<String>) {
    match value {
        Value::Variable(v) if !out.iter().any(|x| x == v.as_str()) => out.push(v.to_string()),
        Value::List(items) => items.iter().for_each(|i| collect_variables(i, out)),
        Value::Object(fields) => fields.iter().for_each(|(_, v)| collect_variables(v, out)),
        _ => {}
    }
}

/// Adds `field` to `items`, merging it into an earlier field with the same response
/// key and directives: both are one field of the response (spec: CollectFields merges
/// their selection sets), so later stages see it once.
fn push_field(items: &mut Vec<Selection>, field: Field) {
    let existing = items.iter_mut().find_map(|s| match s {
        Selection::Field(e)
            if e.response_key == field.response_key && e.directives == field.directives =>
        {
            Some(e)
        }
        _ => None,
    });
    match existing {
        Some(e) => {
            if let (Some(into), Some(more)) = (&mut e.selection_set, field.selection_set) {
                for item in more.items {
                    match item {
                        Selection::Field(f) => push_field(&mut into.items, f),
                        other => into.items.push(other),
                    }
                }
            }
        }
        None => items.push(Selection::Field(field)),
    }
}

struct Normalizer<'a> {
    doc: &'a ExecutableDocument,
    schema: &'a Schema,
}

impl Normalizer<'_> {
    fn selection_set(
        &self,
        set: &executable::SelectionSet,
    ) -> Result<SelectionSet, OperationError> {
        let mut items = Vec::new();
        self.append(set, &set.ty, &mut items)?;
        Ok(SelectionSet {
            type_name: set.ty.to_string(),
            items,
        })
    }

    /// Whether a fragment on `condition` applies to every object of `parent` type.
    fn always_applies(&self, parent: &str, condition: &str) -> bool {
        parent == condition || self.schema.is_subtype(condition, parent)
    }

    fn append(
        &self,
        set: &executable::SelectionSet,
        parent: &str,
        items: &mut Vec<Selection>,
    ) -> Result<(), OperationError> {
        for sel in &set.selections {
            match sel {
                executable::Selection::Field(f) => push_field(items, self.field(f, parent)?),
                executable::Selection::InlineFragment(frag) => self.fragment(
                    frag.type_condition.as_ref().map(|t| t.as_str()),
                    &frag.directives,
                    &frag.selection_set,
                    parent,
                    items,
                )?,
                executable::Selection::FragmentSpread(spread) => {
                    let fragment =
                        self.doc
                            .fragments
                            .get(&spread.fragment_name)
                            .ok_or_else(|| {
                                OperationError::UnknownFragment(spread.fragment_name.to_string())
                            })?;
                    self.fragment(
                        Some(fragment.type_condition().as_str()),
                        &spread.directives,
                        &fragment.selection_set,
                        parent,
                        items,
                    )?
                }
            }
        }
        Ok(())
    }

    fn fragment(
        &self,
        type_condition: Option<&str>,
        directives: &DirectiveList,
        set: &executable::SelectionSet,
        parent: &str,
        items: &mut Vec<Selection>,
    ) -> Result<(), OperationError> {
        let (texts, conditions, variables) = conditions_of(directives);
        let applies = type_condition.is_none_or(|t| self.always_applies(parent, t));
        if applies && texts.is_empty() {
            return self.append(set, parent, items);
        }
        let inner = type_condition.unwrap_or(parent);
        let mut inner_items = Vec::new();
        self.append(set, inner, &mut inner_items)?;
        items.push(Selection::InlineFragment(InlineFragment {
            type_condition: if applies {
                None
            } else {
                type_condition.map(str::to_string)
            },
            directives: texts,
            conditions,
            variables,
            selection_set: SelectionSet {
                type_name: inner.to_string(),
                items: inner_items,
            },
        }));
        Ok(())
    }

    fn field(&self, f: &Node<executable::Field>, parent: &str) -> Result<Field, OperationError> {
        let (directives, conditions, mut variables) = conditions_of(&f.directives);
        let arguments = f
            .arguments
            .iter()
            .map(|a| format!("{}: {}", a.name, a.value))
            .collect();
        for a in &f.arguments {
            collect_variables(&a.value, &mut variables);
        }
        let selection_set = if f.selection_set.selections.is_empty() {
            None
        } else {
            Some(self.selection_set(&f.selection_set)?)
        };
        Ok(Field {
            response_key: f.response_key().to_string(),
            name: f.name.to_string(),
            alias: f.alias.as_ref().map(|a| a.to_string()),
            arguments,
            directives,
            conditions,
            variables,
            parent_type: parent.to_string(),
            type_name: f.definition.ty.inner_named_type().to_string(),
            output: Some(FieldOutput {
                ty: f.definition.ty.clone(),
                is_enum: matches!(
                    self.schema.types.get(f.definition.ty.inner_named_type()),
                    Some(apollo_compiler::schema::ExtendedType::Enum(_))
                ),
            }),
            selection_set,
        })
    }
}

/// Normalizes the chosen operation of a validated document.
pub fn normalize(
    schema: &Valid<Schema>,
    doc: &Valid<ExecutableDocument>,
    operation_name: Option<&str>,
) -> Result<Operation, OperationError> {
    let op = doc
        .operations
        .get(operation_name)
        .map_err(|e| OperationError::NotFound(e.message().to_string()))?;
    let kind = match op.operation_type {
        OperationType::Query => OperationKind::Query,
        OperationType::Mutation => OperationKind::Mutation,
        OperationType::Subscription => OperationKind::Subscription,
    };
    let n = Normalizer { doc, schema };
    let selection_set = n.selection_set(&op.selection_set)?;
    let variables = op
        .variables
        .iter()
        .map(|v| VariableDefinition {
            name: v.name.to_string(),
            text: v.to_string(),
        })
        .collect();
    Ok(Operation {
        kind,
        name: op.name.as_ref().map(|n| n.to_string()),
        variables,
        selection_set,
    })
}

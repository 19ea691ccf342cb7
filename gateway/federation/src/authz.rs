//! `@authenticated`, `@requiresScopes` and `@policy` from the supergraph, applied to a
//! client operation before planning (Apollo's documented semantics): fields the caller
//! may not see are removed, each reported with its path (code `UNAUTHENTICATED` for
//! an anonymous caller, else `FORBIDDEN`; Apollo's `UNAUTHORIZED_FIELD_OR_TYPE` as
//! `reason`), and the rest of the operation still runs. A field is
//! guarded by its own directives and by those of the type it returns.
//!
//! `@policy` needs a policy evaluator we do not have, so it fails closed: such fields
//! are always removed.

use std::collections::HashMap;

use apollo_compiler::Schema;
use apollo_compiler::ast::{DirectiveList, Value};
use apollo_compiler::schema::ExtendedType;

use crate::operation::{Field, Operation, Selection, SelectionSet};

/// What one element requires; every part must hold.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Requirement {
    pub authenticated: bool,
    /// Each entry is one `@requiresScopes(scopes:)`: any inner list whose scopes the
    /// caller all has satisfies it.
    pub scopes: Vec<Vec<Vec<String>>>,
    pub policy: bool,
}

impl Requirement {
    fn is_empty(&self) -> bool {
        !self.authenticated && self.scopes.is_empty() && !self.policy
    }

    fn add(&mut self, other: &Requirement) {
        self.authenticated |= other.authenticated;
        self.scopes.extend(other.scopes.iter().cloned());
        self.policy |= other.policy;
    }

    fn allows(&self, viewer: &Viewer<'_>) -> bool {
        if self.policy {
            return false;
        }
        // Scopes imply a token, so they imply authentication too.
        if (self.authenticated || !self.scopes.is_empty()) && !viewer.authenticated {
            return false;
        }
        self.scopes.iter().all(|any_of| {
            any_of
                .iter()
                .any(|all_of| all_of.iter().all(|s| viewer.scopes.contains(s)))
        })
    }
}

/// A field removed from an operation for the caller: where it was in the response,
/// which field it is and what it needed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Removal {
    pub path: Vec<String>,
    /// `Type.field`.
    pub field: String,
    pub requirement: Requirement,
}

/// Who is asking.
#[derive(Clone, Copy, Debug)]
pub struct Viewer<'a> {
    pub authenticated: bool,
    pub scopes: &'a [String],
}

/// The requirements of a supergraph, by type and by field.
#[derive(Clone, Debug, Default)]
pub struct Requirements {
    types: HashMap<String, Requirement>,
    fields: HashMap<(String, String), Requirement>,
}

fn requirement_of(directives: &DirectiveList) -> Requirement {
    let mut r = Requirement::default();
    for d in directives.iter() {
        match d.name.as_str() {
            "authenticated" => r.authenticated = true,
            "requiresScopes" => {
                if let Some(v) = d.specified_argument_by_name("scopes") {
                    r.scopes.push(nested_strings(v));
                }
            }
            "policy" => r.policy = true,
            _ => {}
        }
    }
    r
}

/// A `[[String]]` argument (`scopes`, `policies`): any-of lists of all-of names. A bare
/// string where a list is expected counts as a list of one, as input coercion has it.
pub(crate) fn nested_strings(v: &Value) -> Vec<Vec<String>> {
    match v {
        Value::List(outer) => outer
            .iter()
            .map(|inner| match inner.as_ref() {
                Value::List(items) => items
                    .iter()
                    .filter_map(|i| i.as_str().map(str::to_string))
                    .collect(),
                Value::String(s) => vec![s.clone()],
                _ => Vec::new(),
            })
            .collect(),
        _ => Vec::new(),
    }
}

impl Requirements {
    pub fn from_schema(schema: &Schema) -> Requirements {
        let mut out = Requirements::default();
        for (name, ty) in &schema.types {
            let (directives, fields) = match ty {
                ExtendedType::Object(o) => (&o.directives, Some(&o.fields)),
                ExtendedType::Interface(i) => (&i.directives, Some(&i.fields)),
                ExtendedType::Union(u) => (&u.directives, None),
                ExtendedType::Scalar(s) => (&s.directives, None),
                ExtendedType::Enum(e) => (&e.directives, None),
                ExtendedType::InputObject(_) => continue,
            };
            let list: DirectiveList = directives.iter().map(|c| c.node.clone()).collect();
            let r = requirement_of(&list);
            if !r.is_empty() {
                out.types.insert(name.to_string(), r);
            }
            for (fname, f) in fields.into_iter().flatten() {
                let r = requirement_of(&f.directives);
                if !r.is_empty() {
                    out.fields.insert((name.to_string(), fname.to_string()), r);
                }
            }
        }
        out
    }

    pub fn is_empty(&self) -> bool {
        self.types.is_empty() && self.fields.is_empty()
    }

    fn of_field(&self, f: &Field) -> Requirement {
        let mut r = Requirement::default();
        if let Some(own) = self.fields.get(&(f.parent_type.clone(), f.name.clone())) {
            r.add(own);
        }
        if let Some(ty) = self.types.get(&f.type_name) {
            r.add(ty);
        }
        r
    }

    /// Whether anything in the operation is guarded (so it must be checked per request).
    pub fn guards(&self, op: &Operation) -> bool {
        !self.is_empty() && self.guards_set(&op.selection_set)
    }

    fn guards_set(&self, set: &SelectionSet) -> bool {
        set.items.iter().any(|s| match s {
            Selection::Field(f) => {
                !self.of_field(f).is_empty()
                    || f.selection_set.as_ref().is_some_and(|s| self.guards_set(s))
            }
            Selection::InlineFragment(i) => self.guards_set(&i.selection_set),
        })
    }

    /// The operation without the fields `viewer` may not see, and the response paths
    /// of those fields; `None` when nothing is removed.
    pub fn filter(&self, op: &Operation, viewer: Viewer<'_>) -> Option<(Operation, Vec<Removal>)> {
        let mut removed = Vec::new();
        let mut path = Vec::new();
        let selection_set = self.filter_set(&op.selection_set, viewer, &mut path, &mut removed);
        if removed.is_empty() {
            return None;
        }
        Some((
            Operation {
                selection_set,
                ..op.clone()
            },
            removed,
        ))
    }

    fn filter_set(
        &self,
        set: &SelectionSet,
        viewer: Viewer<'_>,
        path: &mut Vec<String>,
        removed: &mut Vec<Removal>,
    ) -> SelectionSet {
        let mut items = Vec::new();
        for s in &set.items {
            match s {
                Selection::Field(f) => {
                    path.push(f.response_key.clone());
                    let requirement = self.of_field(f);
                    if !requirement.allows(&viewer) {
                        removed.push(Removal {
                            path: path.clone(),
                            field: format!("{}.{}", f.parent_type, f.name),
                            requirement,
                        });
                    } else {
                        let mut f = f.clone();
                        if let Some(sub) = &f.selection_set {
                            f.selection_set = Some(self.filter_set(sub, viewer, path, removed));
                        }
                        items.push(Selection::Field(f));
                    }
                    path.pop();
                }
                Selection::InlineFragment(i) => {
                    let sub = self.filter_set(&i.selection_set, viewer, path, removed);
                    if !sub.items.is_empty() {
                        let mut i = i.clone();
                        i.selection_set = sub;
                        items.push(Selection::InlineFragment(i));
                    }
                }
            }
        }
        // A selection set may not be empty: keep the object itself with `__typename`.
        if items.is_empty() {
            items.push(crate::planner::typename_field(&set.type_name));
        }
        SelectionSet {
            type_name: set.type_name.clone(),
            items,
        }
    }
}

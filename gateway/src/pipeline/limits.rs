//! Operation limits: checked on the document as parsed and validated, before it is
//! normalized, planned or sent anywhere.
//!
//! Fragments are measured once each (dependencies first) and their measures reused at
//! every spread, so a document whose fragments spread one another twice, which inlines
//! to 2^n fields, is measured in time linear in its length and refused before anything
//! inlines it.

use std::collections::HashMap;

use apollo_compiler::executable::{self, DirectiveList, ExecutableDocument, Fragment};
use apollo_compiler::{Name, Node};

/// Bounds on what one operation may ask for. Every limit answers with
/// `extensions.code` naming it (see [`LimitExceeded::code`]).
#[derive(Clone, Debug)]
pub struct OperationLimits {
    /// Bytes of operation text; a longer document is refused before it is parsed.
    /// Default 64 KiB.
    pub max_document_bytes: usize,
    /// Lexical tokens the parser reads before it gives up. Default 15,000.
    pub max_tokens: usize,
    /// Nesting the parser follows (selection sets, lists, objects). Default 128.
    pub max_parser_recursion: usize,
    /// Fields nested in fields, with fragments inlined. Default 20 (the standard
    /// introspection query needs 15).
    pub max_depth: usize,
    /// Fields with fragments inlined, counted at every spread. Default 4,000.
    pub max_fields: u64,
    /// Aliased fields with fragments inlined. Default 256.
    pub max_aliases: u64,
    /// Fields at the operation's root, with fragments inlined. Default 32.
    pub max_root_fields: u64,
    /// Directives on one field, fragment or operation. Default 16.
    pub max_directives: usize,
    /// Bytes of one response, and of all subgraph answers gathered for it. Default 8 MiB.
    pub max_response_bytes: usize,
    /// Errors in one response; the rest are summed up in one last error. Default 100.
    pub max_errors: usize,
    /// Bytes of one file of a multipart upload (streamed through, never held); a larger
    /// file gets 413 `PAYLOAD_TOO_LARGE`. Default 512 MiB.
    pub max_upload_bytes: u64,
    /// Bytes of a request body (JSON), and of one WebSocket message; larger gets 413
    /// `PAYLOAD_TOO_LARGE` (a message: close code 1009) before it is read whole.
    /// Default 2 MiB: room for variables beside the document's own limit.
    pub max_request_bytes: usize,
    /// Lists and objects nested in one another in a request's variables. Default 32
    /// (no input type of the API nests deeper than a few levels).
    pub max_variables_depth: usize,
    /// Values (scalars, lists, objects, each counted) in all of a request's variables:
    /// coercing them against their types costs time per value. Default 20,000.
    pub max_variable_values: usize,
}

impl Default for OperationLimits {
    fn default() -> Self {
        OperationLimits {
            max_document_bytes: 64 * 1024,
            max_tokens: 15_000,
            max_parser_recursion: 128,
            max_depth: 20,
            max_fields: 4_000,
            max_aliases: 256,
            max_root_fields: 32,
            max_directives: 16,
            max_response_bytes: 8 * 1024 * 1024,
            max_errors: 100,
            max_upload_bytes: 512 * 1024 * 1024,
            max_request_bytes: crate::transport::REQUEST_BODY_LIMIT,
            max_variables_depth: 32,
            max_variable_values: 20_000,
        }
    }
}

/// Which limit an operation went over, and by how much.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LimitExceeded {
    #[error("the operation is {actual} bytes; at most {max} are accepted")]
    DocumentBytes { actual: usize, max: usize },
    #[error("the operation nests fields {actual} deep; at most {max} are allowed")]
    Depth { actual: u64, max: usize },
    #[error(
        "the operation selects {actual} fields once fragments are inlined; at most {max} are allowed"
    )]
    Fields { actual: u64, max: u64 },
    #[error(
        "the operation uses {actual} aliases once fragments are inlined; at most {max} are allowed"
    )]
    Aliases { actual: u64, max: u64 },
    #[error("the operation selects {actual} root fields; at most {max} are allowed")]
    RootFields { actual: u64, max: u64 },
    #[error("a selection carries {actual} directives; at most {max} are allowed")]
    Directives { actual: usize, max: usize },
    #[error("the response would exceed {max} bytes; ask for fewer items or fields")]
    ResponseBytes { max: usize },
    #[error("the variables nest lists and objects more than {max} deep")]
    VariablesDepth { max: usize },
    #[error("the variables hold more than {max} values; send fewer items per request")]
    VariableValues { max: usize },
}

impl LimitExceeded {
    /// The stable `extensions.code`.
    pub fn code(&self) -> &'static str {
        match self {
            LimitExceeded::DocumentBytes { .. } => "MAX_DOCUMENT_BYTES_EXCEEDED",
            LimitExceeded::Depth { .. } => "MAX_DEPTH_EXCEEDED",
            LimitExceeded::Fields { .. } => "MAX_FIELDS_EXCEEDED",
            LimitExceeded::Aliases { .. } => "MAX_ALIASES_EXCEEDED",
            LimitExceeded::RootFields { .. } => "MAX_ROOT_FIELDS_EXCEEDED",
            LimitExceeded::Directives { .. } => "MAX_DIRECTIVES_EXCEEDED",
            LimitExceeded::ResponseBytes { .. } => "RESPONSE_TOO_LARGE",
            LimitExceeded::VariablesDepth { .. } => "MAX_VARIABLES_DEPTH_EXCEEDED",
            LimitExceeded::VariableValues { .. } => "MAX_VARIABLE_VALUES_EXCEEDED",
        }
    }

    /// The limit's name as configured (`extensions.limit`).
    pub fn limit(&self) -> &'static str {
        match self {
            LimitExceeded::DocumentBytes { .. } => "max_document_bytes",
            LimitExceeded::Depth { .. } => "max_depth",
            LimitExceeded::Fields { .. } => "max_fields",
            LimitExceeded::Aliases { .. } => "max_aliases",
            LimitExceeded::RootFields { .. } => "max_root_fields",
            LimitExceeded::Directives { .. } => "max_directives",
            LimitExceeded::ResponseBytes { .. } => "max_response_bytes",
            LimitExceeded::VariablesDepth { .. } => "max_variables_depth",
            LimitExceeded::VariableValues { .. } => "max_variable_values",
        }
    }

    /// The error object a client gets.
    pub fn to_error(&self) -> serde_json::Value {
        serde_json::json!({
            "message": self.to_string(),
            "extensions": { "code": self.code(), "limit": self.limit() }
        })
    }
}

/// What a selection set (or a fragment) amounts to once fragments are inlined.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Measure {
    /// Fields, counted at every place they would appear.
    pub fields: u64,
    pub aliases: u64,
    /// The deepest chain of nested fields.
    pub depth: u64,
}

impl Measure {
    fn add(&mut self, other: Measure) {
        self.fields = self.fields.saturating_add(other.fields);
        self.aliases = self.aliases.saturating_add(other.aliases);
        self.depth = self.depth.max(other.depth);
    }
}

struct Measurer<'a> {
    limits: &'a OperationLimits,
    fragments: HashMap<&'a Name, Measure>,
}

impl<'a> Measurer<'a> {
    fn directives(&self, list: &DirectiveList) -> Result<(), LimitExceeded> {
        if list.len() > self.limits.max_directives {
            return Err(LimitExceeded::Directives {
                actual: list.len(),
                max: self.limits.max_directives,
            });
        }
        Ok(())
    }

    /// Measures `set`; every fragment it spreads must be measured already. Field
    /// nesting recursion is bounded by the parser's recursion limit.
    fn set(&self, set: &executable::SelectionSet) -> Result<Measure, LimitExceeded> {
        let mut m = Measure::default();
        for sel in &set.selections {
            match sel {
                executable::Selection::Field(f) => {
                    self.directives(&f.directives)?;
                    let child = self.set(&f.selection_set)?;
                    m.add(Measure {
                        fields: child.fields.saturating_add(1),
                        aliases: child.aliases + u64::from(f.alias.is_some()),
                        depth: child.depth + 1,
                    });
                }
                executable::Selection::InlineFragment(i) => {
                    self.directives(&i.directives)?;
                    m.add(self.set(&i.selection_set)?);
                }
                executable::Selection::FragmentSpread(s) => {
                    self.directives(&s.directives)?;
                    // Validation refuses unknown fragments; measure one as empty anyway.
                    if let Some(f) = self.fragments.get(&s.fragment_name) {
                        m.add(*f);
                    }
                }
            }
        }
        Ok(m)
    }

    fn check(&self, m: Measure) -> Result<(), LimitExceeded> {
        let l = self.limits;
        if m.depth > l.max_depth as u64 {
            return Err(LimitExceeded::Depth {
                actual: m.depth,
                max: l.max_depth,
            });
        }
        if m.fields > l.max_fields {
            return Err(LimitExceeded::Fields {
                actual: m.fields,
                max: l.max_fields,
            });
        }
        if m.aliases > l.max_aliases {
            return Err(LimitExceeded::Aliases {
                actual: m.aliases,
                max: l.max_aliases,
            });
        }
        Ok(())
    }
}

/// The fragments in an order where each comes after every fragment it spreads
/// (iteratively: a chain of thousands of fragments must not exhaust the stack).
/// Fragments in a cycle (which validation refuses) are left out.
fn dependency_order(doc: &ExecutableDocument) -> Vec<&Node<Fragment>> {
    fn spreads(set: &executable::SelectionSet, out: &mut Vec<Name>) {
        for sel in &set.selections {
            match sel {
                executable::Selection::Field(f) => spreads(&f.selection_set, out),
                executable::Selection::InlineFragment(i) => spreads(&i.selection_set, out),
                executable::Selection::FragmentSpread(s) => out.push(s.fragment_name.clone()),
            }
        }
    }
    #[derive(Clone, Copy, PartialEq)]
    enum Mark {
        Open,
        Done,
    }
    let mut marks: HashMap<&Name, Mark> = HashMap::new();
    let mut order = Vec::with_capacity(doc.fragments.len());
    for (name, _) in doc.fragments.iter() {
        if marks.contains_key(name) {
            continue;
        }
        // (fragment, its spreads, how many of them were visited)
        let mut stack: Vec<(&Name, Vec<Name>, usize)> = Vec::new();
        let push = |name: &'_ Name, stack: &mut Vec<_>, marks: &mut HashMap<_, _>| {
            let Some((key, frag)) = doc.fragments.get_key_value(name) else {
                return;
            };
            let mut deps = Vec::new();
            spreads(&frag.selection_set, &mut deps);
            marks.insert(key, Mark::Open);
            stack.push((key, deps, 0));
        };
        push(name, &mut stack, &mut marks);
        while let Some((name, deps, next)) = stack.last_mut() {
            if let Some(dep) = deps.get(*next).cloned() {
                *next += 1;
                if !marks.contains_key(&dep) {
                    push(&dep, &mut stack, &mut marks);
                }
                continue;
            }
            let name: &Name = name;
            marks.insert(name, Mark::Done);
            if let Some(f) = doc.fragments.get(name) {
                order.push(f);
            }
            stack.pop();
        }
    }
    debug_assert!(marks.values().all(|m| *m == Mark::Done));
    order
}

/// Measures the operation `operation_name` of a validated document and checks it
/// against `limits`.
pub fn check(
    doc: &ExecutableDocument,
    operation: &executable::Operation,
    limits: &OperationLimits,
) -> Result<Measure, LimitExceeded> {
    let mut measurer = Measurer {
        limits,
        fragments: HashMap::new(),
    };
    for frag in dependency_order(doc) {
        measurer.directives(&frag.directives)?;
        let m = measurer.set(&frag.selection_set)?;
        // A fragment over a limit makes every operation spreading it too big as well.
        measurer.check(m)?;
        measurer.fragments.insert(&frag.name, m);
    }
    measurer.directives(&operation.directives)?;
    let m = measurer.set(&operation.selection_set)?;
    measurer.check(m)?;
    let mut keys = std::collections::HashSet::new();
    root_keys(doc, &operation.selection_set, &mut Vec::new(), &mut keys);
    if keys.len() as u64 > limits.max_root_fields {
        return Err(LimitExceeded::RootFields {
            actual: keys.len() as u64,
            max: limits.max_root_fields,
        });
    }
    Ok(m)
}

/// The distinct response keys at the root (what the response's `data` will hold), each
/// fragment looked into once.
fn root_keys<'d>(
    doc: &'d ExecutableDocument,
    set: &'d executable::SelectionSet,
    seen: &mut Vec<&'d Name>,
    keys: &mut std::collections::HashSet<&'d Name>,
) {
    for sel in &set.selections {
        match sel {
            executable::Selection::Field(f) => {
                keys.insert(f.response_key());
            }
            executable::Selection::InlineFragment(i) => {
                root_keys(doc, &i.selection_set, seen, keys)
            }
            executable::Selection::FragmentSpread(s) => {
                if seen.contains(&&s.fragment_name) {
                    continue;
                }
                seen.push(&s.fragment_name);
                if let Some(f) = doc.fragments.get(&s.fragment_name) {
                    root_keys(doc, &f.selection_set, seen, keys);
                }
            }
        }
    }
}

/// Checks a request's variables against their bounds before anything coerces them.
/// The walk stops at the first bound passed, so a hostile request costs at most the
/// bound's worth of steps (its nesting is bounded by the JSON reader already).
pub fn check_variables(
    variables: &serde_json::Map<String, serde_json::Value>,
    limits: &OperationLimits,
) -> Result<(), LimitExceeded> {
    use serde_json::Value;
    let too_many = LimitExceeded::VariableValues {
        max: limits.max_variable_values,
    };
    // Values are counted as they are found, before they are walked: a list of a
    // million numbers is refused on its length, not after a million steps.
    let mut values = variables.len();
    if values > limits.max_variable_values {
        return Err(too_many);
    }
    let mut stack: Vec<(&Value, usize)> = variables.values().map(|v| (v, 1)).collect();
    while let Some((v, depth)) = stack.pop() {
        let found = match v {
            Value::Array(items) => items.len(),
            Value::Object(fields) => fields.len(),
            _ => continue,
        };
        if depth > limits.max_variables_depth {
            return Err(LimitExceeded::VariablesDepth {
                max: limits.max_variables_depth,
            });
        }
        values = values.saturating_add(found);
        if values > limits.max_variable_values {
            return Err(too_many);
        }
        match v {
            Value::Array(items) => stack.extend(items.iter().map(|c| (c, depth + 1))),
            Value::Object(fields) => stack.extend(fields.values().map(|c| (c, depth + 1))),
            _ => {}
        }
    }
    Ok(())
}

/// Keeps at most `max` errors; the rest are counted in one last error.
pub fn cap_errors(errors: &mut Vec<serde_json::Value>, max: usize) {
    if errors.len() <= max {
        return;
    }
    let n = errors.len() - max;
    errors.truncate(max);
    errors.push(left_out(n));
}

/// The error that stands for `n` errors left out of a response.
pub fn left_out(n: usize) -> serde_json::Value {
    serde_json::json!({
        "message": format!("{n} more errors were left out of this response"),
        "extensions": { "code": "TOO_MANY_ERRORS", "limit": "max_errors" }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use apollo_compiler::Schema;

    fn doc(schema: &str, query: &str) -> (ExecutableDocument, Schema) {
        let schema = Schema::parse_and_validate(schema, "s.graphql").unwrap();
        let doc = ExecutableDocument::parse_and_validate(&schema, query, "q.graphql").unwrap();
        (doc.into_inner(), schema.into_inner())
    }

    const SCHEMA: &str = "type Query { a: Int b: Int q: Query }";

    fn measure(query: &str) -> Result<Measure, LimitExceeded> {
        let (d, _) = doc(SCHEMA, query);
        let op = d.operations.get(None).unwrap();
        check(&d, op, &OperationLimits::default())
    }

    fn vars(v: serde_json::Value) -> serde_json::Map<String, serde_json::Value> {
        v.as_object().unwrap().clone()
    }

    #[test]
    fn variables_are_bounded_in_depth_and_in_values() {
        let limits = OperationLimits {
            max_variables_depth: 3,
            max_variable_values: 10,
            ..Default::default()
        };
        let ok = vars(serde_json::json!({ "a": [[1, 2]], "b": { "c": { "d": 1 } } }));
        assert_eq!(check_variables(&ok, &limits), Ok(()));
        let deep = vars(serde_json::json!({ "a": [[[[1]]]] }));
        assert_eq!(
            check_variables(&deep, &limits),
            Err(LimitExceeded::VariablesDepth { max: 3 })
        );
        let deep = vars(serde_json::json!({ "a": { "b": { "c": { "d": {} } } } }));
        assert_eq!(
            check_variables(&deep, &limits).unwrap_err().code(),
            "MAX_VARIABLES_DEPTH_EXCEEDED"
        );
        // Ten values pass (the list counts as one, its items as nine); eleven do not.
        let ten = vars(serde_json::json!({ "a": [1, 2, 3, 4, 5, 6, 7, 8, 9] }));
        assert_eq!(check_variables(&ten, &limits), Ok(()));
        let eleven = vars(serde_json::json!({ "a": [1, 2, 3, 4, 5, 6, 7, 8, 9], "b": null }));
        assert_eq!(
            check_variables(&eleven, &limits),
            Err(LimitExceeded::VariableValues { max: 10 })
        );
        let wide = vars(serde_json::json!({ "a": vec![0; 1_000_000] }));
        assert_eq!(
            check_variables(&wide, &OperationLimits::default())
                .unwrap_err()
                .limit(),
            "max_variable_values"
        );
    }

    #[test]
    fn fragments_are_counted_at_every_spread() {
        let m = measure("{ ...F ...F x: a } fragment F on Query { a q { b } }").unwrap();
        // F is three fields; spread twice, plus the alias.
        assert_eq!(m.fields, 7);
        assert_eq!(m.aliases, 1);
        assert_eq!(m.depth, 2);
    }

    #[test]
    fn doubling_fragments_are_refused_without_inlining_them() {
        let mut q = String::from("{ ...F1 }\n");
        for i in 1..40 {
            q.push_str(&format!(
                "fragment F{i} on Query {{ ...F{} ...F{} }}\n",
                i + 1,
                i + 1
            ));
        }
        q.push_str("fragment F40 on Query { a }\n");
        let err = measure(&q).unwrap_err();
        assert_eq!(err.code(), "MAX_FIELDS_EXCEEDED");
    }

    #[test]
    fn depth_counts_through_fragments() {
        let q = "{ q { ...D } } fragment D on Query { q { q { q { a } } } }";
        assert_eq!(measure(q).unwrap().depth, 5);
        let deep = format!("{{ {} a {} }}", "q {".repeat(25), "}".repeat(25));
        assert_eq!(measure(&deep).unwrap_err().code(), "MAX_DEPTH_EXCEEDED");
    }

    #[test]
    fn too_many_aliases_and_root_fields_are_refused() {
        let aliases: String = (0..300).map(|i| format!("q{i}: q {{ a }} ")).collect();
        assert_eq!(
            measure(&format!("{{ {aliases} }}")).unwrap_err().code(),
            "MAX_ALIASES_EXCEEDED"
        );
        let roots: String = (0..40).map(|i| format!("r{i}: a ")).collect();
        assert_eq!(
            measure(&format!("{{ {roots} }}")).unwrap_err().code(),
            "MAX_ROOT_FIELDS_EXCEEDED"
        );
        // The same root field selected many times is one field of the response.
        let same: String = (0..40).map(|_| "... on Query { a } ").collect();
        assert!(
            measure(&format!(
                "{{ {same} ...F ...F }} fragment F on Query {{ a b }}"
            ))
            .is_ok()
        );
    }

    #[test]
    fn errors_beyond_the_cap_are_summed_up() {
        let mut errors: Vec<serde_json::Value> = (0..250)
            .map(|i| serde_json::json!({ "message": i }))
            .collect();
        cap_errors(&mut errors, 100);
        assert_eq!(errors.len(), 101);
        assert_eq!(errors[100]["extensions"]["code"], "TOO_MANY_ERRORS");
        assert!(errors[100]["message"].as_str().unwrap().starts_with("150 "));
    }
}

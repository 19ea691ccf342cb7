//! The API schema: what clients see of a supergraph. Join and link machinery and every
//! `@inaccessible` element are removed, and so are applications of directives that only
//! matter to composition and planning.

use apollo_compiler::Schema;
use apollo_compiler::ast::{Definition, Directive, DirectiveList, Document, FieldDefinition, Type};
use apollo_compiler::validation::Valid;

/// Directive applications clients may see in introspection.
const KEPT_DIRECTIVES: &[&str] = &["deprecated", "specifiedBy", "oneOf"];

/// The namespaces of the specs a supergraph `@link`s (`join`, `policy`, a custom
/// `cache`, ...): their types (`policy__Policy`) are machinery, never API.
fn linked_namespaces(doc: &Document) -> Vec<String> {
    let mut out = vec!["join".to_string(), "link".to_string()];
    for def in &doc.definitions {
        let directives = match def {
            Definition::SchemaDefinition(s) => &s.directives,
            Definition::SchemaExtension(s) => &s.directives,
            _ => continue,
        };
        for d in directives.iter().filter(|d| d.name == "link") {
            let arg = |n: &str| {
                d.arguments
                    .iter()
                    .find(|a| a.name == n)
                    .and_then(|a| a.value.as_str())
                    .map(str::to_string)
            };
            // `https://specs.apollo.dev/policy/v0.1` is the `policy` spec unless `as:` renames it.
            let name = arg("as").or_else(|| {
                let url = arg("url")?;
                let mut parts = url.trim_end_matches('/').rsplit('/');
                let last = parts.next()?;
                let is_version = last.starts_with('v') && last[1..].contains('.');
                if is_version { parts.next() } else { Some(last) }.map(str::to_string)
            });
            if let Some(n) = name
                && !out.contains(&n)
            {
                out.push(n);
            }
        }
    }
    out
}

fn inaccessible(directives: &DirectiveList) -> bool {
    directives.iter().any(|d| d.name == "inaccessible")
}

fn keep_public(directives: &mut DirectiveList) {
    directives
        .0
        .retain(|d: &apollo_compiler::Node<Directive>| KEPT_DIRECTIVES.contains(&d.name.as_str()));
}

/// Drops inaccessible fields and arguments (and those of inaccessible types) and
/// composition-only directive applications.
fn clean_fields(
    fields: &mut Vec<apollo_compiler::Node<FieldDefinition>>,
    hidden: &impl Fn(&Type) -> bool,
) {
    fields.retain(|f| !inaccessible(&f.directives) && !hidden(&f.ty));
    for f in fields.iter_mut() {
        let f = f.make_mut();
        keep_public(&mut f.directives);
        f.arguments
            .retain(|a| !inaccessible(&a.directives) && !hidden(&a.ty));
        for a in f.arguments.iter_mut() {
            keep_public(&mut a.make_mut().directives);
        }
    }
}

/// Derives the API schema from supergraph SDL.
pub fn build(supergraph_sdl: &str) -> Result<Valid<Schema>, String> {
    let doc =
        Document::parse(supergraph_sdl, "supergraph.graphql").map_err(|e| e.errors.to_string())?;
    let namespaces = linked_namespaces(&doc);
    let is_machinery = |name: &str| {
        name.split_once("__")
            .is_some_and(|(ns, _)| namespaces.iter().any(|n| n == ns))
    };
    let mut out = Document::new();
    let inaccessible_types: Vec<String> = doc
        .definitions
        .iter()
        .filter_map(|d| match d {
            Definition::ObjectTypeDefinition(t) if inaccessible(&t.directives) => {
                Some(t.name.to_string())
            }
            Definition::InterfaceTypeDefinition(t) if inaccessible(&t.directives) => {
                Some(t.name.to_string())
            }
            Definition::UnionTypeDefinition(t) if inaccessible(&t.directives) => {
                Some(t.name.to_string())
            }
            Definition::EnumTypeDefinition(t) if inaccessible(&t.directives) => {
                Some(t.name.to_string())
            }
            Definition::InputObjectTypeDefinition(t) if inaccessible(&t.directives) => {
                Some(t.name.to_string())
            }
            Definition::ScalarTypeDefinition(t) if inaccessible(&t.directives) => {
                Some(t.name.to_string())
            }
            _ => None,
        })
        .collect();
    let hidden_name = |name: &str| inaccessible_types.iter().any(|n| n == name);
    let hidden = |ty: &Type| hidden_name(ty.inner_named_type().as_str());

    for def in doc.definitions {
        match def {
            // Only the built-in directives remain; custom definitions went with their uses.
            Definition::DirectiveDefinition(_) => {}
            Definition::SchemaDefinition(mut s) => {
                let s = s.make_mut();
                keep_public(&mut s.directives);
                out.definitions
                    .push(Definition::SchemaDefinition(apollo_compiler::Node::new(
                        s.clone(),
                    )));
            }
            Definition::ObjectTypeDefinition(mut t) => {
                if is_machinery(&t.name) || inaccessible(&t.directives) {
                    continue;
                }
                let t_mut = t.make_mut();
                keep_public(&mut t_mut.directives);
                t_mut
                    .implements_interfaces
                    .retain(|i| !hidden_name(i.as_str()));
                clean_fields(&mut t_mut.fields, &hidden);
                out.definitions.push(Definition::ObjectTypeDefinition(t));
            }
            Definition::InterfaceTypeDefinition(mut t) => {
                if is_machinery(&t.name) || inaccessible(&t.directives) {
                    continue;
                }
                let t_mut = t.make_mut();
                keep_public(&mut t_mut.directives);
                t_mut
                    .implements_interfaces
                    .retain(|i| !hidden_name(i.as_str()));
                clean_fields(&mut t_mut.fields, &hidden);
                out.definitions.push(Definition::InterfaceTypeDefinition(t));
            }
            Definition::UnionTypeDefinition(mut t) => {
                if is_machinery(&t.name) || inaccessible(&t.directives) {
                    continue;
                }
                let t_mut = t.make_mut();
                keep_public(&mut t_mut.directives);
                t_mut.members.retain(|m| !hidden_name(m.as_str()));
                out.definitions.push(Definition::UnionTypeDefinition(t));
            }
            Definition::EnumTypeDefinition(mut t) => {
                if is_machinery(&t.name) || inaccessible(&t.directives) {
                    continue;
                }
                let t_mut = t.make_mut();
                keep_public(&mut t_mut.directives);
                t_mut.values.retain(|v| !inaccessible(&v.directives));
                for v in t_mut.values.iter_mut() {
                    keep_public(&mut v.make_mut().directives);
                }
                out.definitions.push(Definition::EnumTypeDefinition(t));
            }
            Definition::InputObjectTypeDefinition(mut t) => {
                if is_machinery(&t.name) || inaccessible(&t.directives) {
                    continue;
                }
                let t_mut = t.make_mut();
                keep_public(&mut t_mut.directives);
                t_mut
                    .fields
                    .retain(|f| !inaccessible(&f.directives) && !hidden(&f.ty));
                for f in t_mut.fields.iter_mut() {
                    keep_public(&mut f.make_mut().directives);
                }
                out.definitions
                    .push(Definition::InputObjectTypeDefinition(t));
            }
            Definition::ScalarTypeDefinition(mut t) => {
                if is_machinery(&t.name) || inaccessible(&t.directives) {
                    continue;
                }
                keep_public(&mut t.make_mut().directives);
                out.definitions.push(Definition::ScalarTypeDefinition(t));
            }
            // Extensions do not appear in a composed supergraph; executable definitions never.
            _ => {}
        }
    }
    Schema::parse_and_validate(out.to_string(), "api.graphql").map_err(|e| e.errors.to_string())
}

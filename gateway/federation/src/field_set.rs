//! Field sets as used by `@key`, `@requires` and `@provides`: `"id"`,
//! `"catalogId sku"`, `"owner { id }"`, `"price(currency: \"USD\")"`,
//! `"kind { ... on Bulky { volume } }"`.
//!
//! [`parse_checked`] reads them with the GraphQL grammar and validates them against
//! the type they select from (apollo-compiler's `FieldSet`), so arguments and type
//! conditions are kept; [`parse`] is the older reader of names and braces only.

use apollo_compiler::executable;
use apollo_compiler::validation::Valid;
use apollo_compiler::{Name, Schema};
use serde::Serialize;

/// One selection of a field set.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub enum Selection {
    Field {
        name: String,
        /// Arguments as written, each `name: value` (values printed in GraphQL syntax).
        #[serde(skip_serializing_if = "Vec::is_empty")]
        arguments: Vec<String>,
        #[serde(skip_serializing_if = "Vec::is_empty")]
        selections: Vec<Selection>,
    },
    InlineFragment {
        type_condition: Option<String>,
        selections: Vec<Selection>,
    },
}

/// Parses `text` as a field set on `type_name` and validates it against `schema`.
/// Aliases and directives are refused: no composed supergraph carries them, and a
/// planner that ignored one would plan something else than what was written.
pub fn parse_checked(
    schema: &Valid<Schema>,
    type_name: &str,
    text: &str,
) -> Result<Vec<Selection>, String> {
    let name = Name::new(type_name).map_err(|e| e.to_string())?;
    executable::FieldSet::parse_and_validate(schema, name, text, "field_set.graphql").map_err(
        |e| {
            let mut reason = format!("\"{text}\" on {type_name}: ");
            reason.push_str(e.errors.to_string().trim());
            reason
        },
    )?;
    // Valid against the type: its structure is what the grammar reads.
    parse_syntax(text)
}

/// Parses `text` with the GraphQL grammar alone, for where no schema is at hand yet (the
/// composer checks syntax; the composed supergraph is then checked with
/// [`parse_checked`]). Aliases, directives and named fragments are refused as there.
pub fn parse_syntax(text: &str) -> Result<Vec<Selection>, String> {
    use apollo_compiler::ast;
    let doc = ast::Document::parse(format!("{{ {text} }}"), "field_set.graphql")
        .map_err(|e| format!("\"{text}\": {}", e.errors.to_string().trim()))?;
    let Some(ast::Definition::OperationDefinition(op)) = doc.definitions.first() else {
        return Err(format!("\"{text}\" is not a field set"));
    };
    if doc.definitions.len() != 1 {
        return Err(format!("\"{text}\" is not a field set"));
    }
    fn convert_ast(set: &[ast::Selection], text: &str) -> Result<Vec<Selection>, String> {
        set.iter()
            .map(|sel| match sel {
                ast::Selection::Field(f) if f.alias.is_none() && f.directives.is_empty() => {
                    Ok(Selection::Field {
                        name: f.name.to_string(),
                        arguments: f
                            .arguments
                            .iter()
                            .map(|a| format!("{}: {}", a.name, a.value))
                            .collect(),
                        selections: convert_ast(&f.selection_set, text)?,
                    })
                }
                ast::Selection::InlineFragment(i) if i.directives.is_empty() => {
                    Ok(Selection::InlineFragment {
                        type_condition: i.type_condition.as_ref().map(|t| t.to_string()),
                        selections: convert_ast(&i.selection_set, text)?,
                    })
                }
                _ => Err(format!(
                    "aliases, directives and named fragments are not allowed in field set \"{text}\""
                )),
            })
            .collect()
    }
    let out = convert_ast(&op.selection_set, text)?;
    if out.is_empty() {
        return Err(format!("empty field set \"{text}\""));
    }
    Ok(out)
}

/// The names of the fields a field set selects at its top level (not inside fragments).
pub fn top_level_names(set: &[Selection]) -> Vec<String> {
    set.iter()
        .filter_map(|s| match s {
            Selection::Field { name, .. } => Some(name.clone()),
            Selection::InlineFragment { .. } => None,
        })
        .collect()
}

/// The names-and-braces form of a field set, when it has one: `None` when it has
/// arguments or type conditions, which [`FieldSetItem`] cannot say.
pub fn simple(set: &[Selection]) -> Option<Vec<FieldSetItem>> {
    set.iter()
        .map(|s| match s {
            Selection::Field {
                name,
                arguments,
                selections,
            } if arguments.is_empty() => Some(FieldSetItem {
                name: name.clone(),
                selections: simple(selections)?,
            }),
            _ => None,
        })
        .collect()
}

/// The [`Selection`] form of a names-and-braces field set.
pub fn selections(items: &[FieldSetItem]) -> Vec<Selection> {
    items
        .iter()
        .map(|i| Selection::Field {
            name: i.name.clone(),
            arguments: Vec::new(),
            selections: selections(&i.selections),
        })
        .collect()
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct FieldSetItem {
    pub name: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub selections: Vec<FieldSetItem>,
}

/// Parses a field set of names and nested braces.
pub fn parse(text: &str) -> Result<Vec<FieldSetItem>, String> {
    let tokens = tokenize(text)?;
    let mut pos = 0;
    let items = parse_items(&tokens, &mut pos, 0)?;
    if pos != tokens.len() {
        return Err(format!("unexpected '}}' in field set \"{text}\""));
    }
    if items.is_empty() {
        return Err(format!("empty field set \"{text}\""));
    }
    Ok(items)
}

#[derive(Debug, PartialEq)]
enum Tok {
    Name(String),
    Open,
    Close,
}

fn tokenize(text: &str) -> Result<Vec<Tok>, String> {
    let mut out = Vec::new();
    let mut chars = text.chars().peekable();
    while let Some(&c) = chars.peek() {
        match c {
            '{' => {
                out.push(Tok::Open);
                chars.next();
            }
            '}' => {
                out.push(Tok::Close);
                chars.next();
            }
            c if c.is_whitespace() || c == ',' => {
                chars.next();
            }
            c if c == '_' || c.is_ascii_alphabetic() => {
                let mut name = String::new();
                while let Some(&c) = chars.peek() {
                    if c == '_' || c.is_ascii_alphanumeric() {
                        name.push(c);
                        chars.next();
                    } else {
                        break;
                    }
                }
                out.push(Tok::Name(name));
            }
            other => {
                return Err(format!(
                    "unsupported character '{other}' in field set \"{text}\""
                ));
            }
        }
    }
    Ok(out)
}

fn parse_items(tokens: &[Tok], pos: &mut usize, depth: usize) -> Result<Vec<FieldSetItem>, String> {
    let mut items: Vec<FieldSetItem> = Vec::new();
    while *pos < tokens.len() {
        match &tokens[*pos] {
            Tok::Name(n) => {
                *pos += 1;
                let mut item = FieldSetItem {
                    name: n.clone(),
                    selections: Vec::new(),
                };
                if matches!(tokens.get(*pos), Some(Tok::Open)) {
                    *pos += 1;
                    item.selections = parse_items(tokens, pos, depth + 1)?;
                    if !matches!(tokens.get(*pos), Some(Tok::Close)) {
                        return Err("unclosed '{' in field set".into());
                    }
                    *pos += 1;
                    if item.selections.is_empty() {
                        return Err(format!("empty selection under '{n}' in field set"));
                    }
                }
                items.push(item);
            }
            Tok::Close if depth > 0 => return Ok(items),
            Tok::Close => return Ok(items),
            Tok::Open => return Err("'{' without a field before it in field set".into()),
        }
    }
    Ok(items)
}

/// Prints a field set back in its canonical form.
pub fn print(items: &[FieldSetItem]) -> String {
    items
        .iter()
        .map(|i| {
            if i.selections.is_empty() {
                i.name.clone()
            } else {
                format!("{} {{ {} }}", i.name, print(&i.selections))
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn schema() -> Valid<Schema> {
        Schema::parse_and_validate(
            "type Query { item: Item } type Item { id: ID! price(currency: String!): Int kind: Kind owner: Owner } \
             type Owner { id: ID! org: Org } type Org { id: ID! } \
             interface Kind { label: String } type Bulky implements Kind { label: String volume: Int } \
             type Small implements Kind { label: String grams: Int }",
            "s.graphql",
        )
        .unwrap()
    }

    #[test]
    fn checked_field_sets_keep_arguments_and_type_conditions() {
        let s = schema();
        let set = parse_checked(&s, "Item", "price(currency: \"USD\")").unwrap();
        assert_eq!(
            set,
            vec![Selection::Field {
                name: "price".into(),
                arguments: vec!["currency: \"USD\"".into()],
                selections: vec![],
            }]
        );
        assert_eq!(simple(&set), None);
        let set = parse_checked(
            &s,
            "Item",
            "kind { ... on Bulky { volume } ... on Small { grams } }",
        )
        .unwrap();
        let Selection::Field { selections, .. } = &set[0] else {
            panic!("a field")
        };
        assert_eq!(
            selections[1],
            Selection::InlineFragment {
                type_condition: Some("Small".into()),
                selections: vec![Selection::Field {
                    name: "grams".into(),
                    arguments: vec![],
                    selections: vec![],
                }],
            }
        );
        let nested = parse_checked(&s, "Item", "id owner { id org { id } }").unwrap();
        assert_eq!(
            simple(&nested).map(|s| print(&s)),
            Some("id owner { id org { id } }".to_string())
        );
    }

    #[test]
    fn checked_field_sets_refuse_what_the_type_does_not_have() {
        let s = schema();
        for bad in [
            "",
            "nope",
            "price",
            "price(currency: 1)",
            "owner",
            "kind { ... on Owner { id } }",
            "a: id",
            "id @skip(if: true)",
            "id {",
        ] {
            assert!(parse_checked(&s, "Item", bad).is_err(), "accepted {bad:?}");
        }
    }

    #[test]
    fn syntax_only_parsing_keeps_arguments_and_fragments_and_refuses_aliases() {
        let set =
            parse_syntax("price(currency: \"USD\") kind { ... on Bulky { volume } }").unwrap();
        assert_eq!(top_level_names(&set), vec!["price", "kind"]);
        assert_eq!(
            set[0],
            Selection::Field {
                name: "price".into(),
                arguments: vec!["currency: \"USD\"".into()],
                selections: Vec::new(),
            }
        );
        assert!(matches!(
            &set[1],
            Selection::Field { selections, .. }
                if matches!(&selections[0], Selection::InlineFragment { type_condition: Some(t), .. } if t == "Bulky")
        ));
        assert!(parse_syntax("a: price").is_err());
        assert!(parse_syntax("price @skip(if: true)").is_err());
        assert!(parse_syntax("...F").is_err());
        assert!(parse_syntax("price {").is_err());
        assert!(parse_syntax("").is_err());
    }

    #[test]
    fn parses_flat_compound_and_nested_keys() {
        assert_eq!(print(&parse("id").unwrap()), "id");
        assert_eq!(print(&parse("catalogId  sku").unwrap()), "catalogId sku");
        assert_eq!(
            print(&parse("sku owner{id  org { id }}").unwrap()),
            "sku owner { id org { id } }"
        );
    }

    #[test]
    fn rejects_malformed_field_sets() {
        assert!(parse("").is_err());
        assert!(parse("owner {").is_err());
        assert!(parse("{ id }").is_err());
        assert!(parse("id }").is_err());
        assert!(parse("a(x: 1)").is_err());
    }
}

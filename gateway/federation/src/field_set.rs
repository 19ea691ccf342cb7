//! Field sets as used by `@key`, `@requires` and `@provides`: `"id"`,
//! `"catalogId sku"`, `"owner { id }"`.

use serde::Serialize;

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

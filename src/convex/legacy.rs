//! Legacy generated schemas: the shape grammar old Convex exports wrote on
//! the first line of `generated_schema.jsonl` (any string but `"uniform"`),
//! and the per-document override lines that follow it.
//!
//! Parsing follows Convex's own parser rule for rule, so a shape Convex
//! accepts parses here and one it rejects does not (with one addition: a
//! nesting limit, so hostile input cannot exhaust the stack).

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use super::id::DocumentId;
use super::names::{check_field_name, check_identifier};
use super::value::{decode_base64, RowError};
use crate::report::Code;

/// Deepest shape nesting accepted (Convex has no limit; its stack does).
const MAX_SHAPE_DEPTH: usize = 128;

/// A table's inferred shape, as written by legacy exports.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Shape {
    /// `never`: no value (an empty table).
    Never,
    /// `null`.
    Null,
    /// `int64`.
    Int64,
    /// `float64`: any float.
    Float64,
    /// `-inf`.
    NegativeInf,
    /// `inf`.
    PositiveInf,
    /// `-0`.
    NegativeZero,
    /// `NaN`.
    NaN,
    /// `normalfloat64`: a finite float other than -0.
    NormalFloat64,
    /// `boolean`.
    Boolean,
    /// `field_name`: a string that is a valid field name.
    FieldName,
    /// `string`.
    String,
    /// `bytes`.
    Bytes,
    /// `unknown`: any value.
    Unknown,
    /// `"lit"`: one string that is a valid identifier.
    Literal(String),
    /// `id<N>`: an id of table number N.
    Id(u32),
    /// `array<S>`.
    Array(Box<Shape>),
    /// `record<K, V>`.
    Record(Box<Shape>, Box<Shape>),
    /// `{"f": S, "g"?: S}`.
    Object(BTreeMap<String, Field>),
    /// `S | T | ...` (two or more distinct options).
    Union(BTreeSet<Shape>),
}

/// One field of an object shape.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Field {
    /// The field's value shape.
    pub shape: Shape,
    /// True when the field may be absent (`"f"?:`).
    pub optional: bool,
}

/// How one exported value is to be read back (an override line's value).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExportContext {
    /// Decide from the shape; a string stays a string when ambiguous.
    Infer,
    /// The string is a decimal Int64.
    Int64,
    /// The string is `"Infinity"` or `"-Infinity"`.
    Float64Inf,
    /// The string is standard base64 bytes.
    Bytes,
    /// The string is `"NaN"`, with these little-endian NaN bits.
    Float64NaN([u8; 8]),
    /// One context per array element.
    Array(Vec<ExportContext>),
    /// Contexts of some object fields.
    Object(BTreeMap<String, ExportContext>),
}

const UNITS: [(&str, Shape); 14] = [
    ("never", Shape::Never),
    ("null", Shape::Null),
    ("int64", Shape::Int64),
    ("float64", Shape::Float64),
    ("-inf", Shape::NegativeInf),
    ("inf", Shape::PositiveInf),
    ("-0", Shape::NegativeZero),
    ("NaN", Shape::NaN),
    ("normalfloat64", Shape::NormalFloat64),
    ("boolean", Shape::Boolean),
    ("field_name", Shape::FieldName),
    ("string", Shape::String),
    ("bytes", Shape::Bytes),
    ("unknown", Shape::Unknown),
];

/// Parses a legacy shape; the error is the reason Convex's parser gives.
pub fn parse_shape(text: &str) -> Result<Shape, String> {
    let (shape, rest) = union(text, 0)?;
    if !rest.is_empty() {
        return Err(format!("unexpected token at '{rest}'"));
    }
    Ok(shape)
}

/// Parses one override line (line `row` of `generated_schema.jsonl`, 2 or
/// later): a JSON object with one key, a document id, whose value is an
/// export context. Errors carry Convex's code and message.
pub fn parse_override_line(line: &str, row: u64) -> Result<(DocumentId, ExportContext), RowError> {
    let invalid = |reason: String| {
        RowError::new(
            Code::InvalidConvexValue,
            format!("Row {row} wasn't a valid Convex value: {reason}"),
        )
    };
    let value: serde_json::Value = serde_json::from_str(line).map_err(|e| {
        RowError::new(
            Code::JsonInvalidRow,
            format!("Row {row} wasn't valid JSON: {e}"),
        )
    })?;
    let serde_json::Value::Object(object) = value else {
        return Err(invalid("overrides should be object".into()));
    };
    if object.len() != 1 {
        return Err(invalid("override object should have one item".into()));
    }
    let (key, value) = object.into_iter().next().expect("one item");
    let context = ExportContext::from_json(value).map_err(invalid)?;
    let id = DocumentId::decode(&key).map_err(|e| invalid(e.to_string()))?;
    Ok((id, context))
}

impl ExportContext {
    /// Reads a context from its JSON form.
    pub fn from_json(value: serde_json::Value) -> Result<Self, String> {
        use serde_json::Value;
        Ok(match value {
            Value::String(s) => match s.as_str() {
                "infer" => Self::Infer,
                "int64" => Self::Int64,
                "float64inf" => Self::Float64Inf,
                "bytes" => Self::Bytes,
                _ => return Err(format!("invalid export context {s}")),
            },
            Value::Array(items) => Self::Array(
                items
                    .into_iter()
                    .map(Self::from_json)
                    .collect::<Result<_, _>>()?,
            ),
            Value::Object(mut fields) => match fields.remove("$float64NaN") {
                // Like Convex: a non-string `$float64NaN` is dropped and the rest read as fields.
                Some(Value::String(b64)) => Self::Float64NaN(
                    decode_base64(&b64)?
                        .try_into()
                        .map_err(|_| "Float64 must be exactly eight bytes".to_string())?,
                ),
                _ => Self::Object(
                    fields
                        .into_iter()
                        .map(|(k, v)| {
                            check_field_name(&k)?;
                            Ok((k, Self::from_json(v)?))
                        })
                        .collect::<Result<_, String>>()?,
                ),
            },
            other => return Err(format!("invalid export context {other}")),
        })
    }
}

/// Options joined by ` | `; one option is the shape itself.
fn union(text: &str, depth: usize) -> Result<(Shape, &str), String> {
    let mut options = BTreeSet::new();
    let mut rest = text;
    loop {
        let (option, end) = prefix(rest, depth)?;
        options.insert(option);
        match end.strip_prefix(" | ") {
            Some(next) => rest = next,
            None => {
                rest = end;
                break;
            }
        }
    }
    let shape = if options.len() == 1 {
        options.pop_first().expect("one option")
    } else {
        Shape::Union(options)
    };
    Ok((shape, rest))
}

/// A union followed by `terminator`.
fn terminated(rest: &mut &str, terminator: &str, depth: usize) -> Result<Shape, String> {
    let (shape, end) = union(rest, depth)?;
    *rest = end
        .strip_prefix(terminator)
        .ok_or_else(|| format!("unexpected token at '{end}'. expected '{terminator}'"))?;
    Ok(shape)
}

/// The text up to `terminator` (which is consumed).
fn until<'a>(rest: &mut &'a str, terminator: &str) -> Result<&'a str, String> {
    let Some(at) = rest.find(terminator) else {
        return Err(format!(
            "unexpected token at '{rest}'. expected '{terminator}'"
        ));
    };
    let token = &rest[..at];
    *rest = &rest[at + terminator.len()..];
    Ok(token)
}

/// One shape that is not a union.
fn prefix(text: &str, depth: usize) -> Result<(Shape, &str), String> {
    if depth > MAX_SHAPE_DEPTH {
        return Err(format!("shape is nested deeper than {MAX_SHAPE_DEPTH}"));
    }
    let depth = depth + 1;
    for (unit, shape) in &UNITS {
        if let Some(rest) = text.strip_prefix(unit) {
            return Ok((shape.clone(), rest));
        }
    }
    if let Some(mut rest) = text.strip_prefix('{') {
        let mut fields = BTreeMap::new();
        while !rest.starts_with('}') {
            let key = until(&mut rest, ": ")?;
            let (key, optional) = match key.strip_suffix('?') {
                Some(key) => (key, true),
                None => (key, false),
            };
            let name = key
                .strip_prefix('"')
                .and_then(|k| k.strip_suffix('"'))
                .ok_or_else(|| format!("cannot parse object key '{key}'"))?;
            check_field_name(name)?;
            let shape = terminated(&mut rest, "", depth)?;
            fields.insert(name.to_owned(), Field { shape, optional });
            if let Some(next) = rest.strip_prefix(", ") {
                rest = next;
            } else if !rest.starts_with('}') {
                return Err(format!("unexpected token at '{rest}'"));
            }
        }
        Ok((Shape::Object(fields), &rest[1..]))
    } else if let Some(mut rest) = text.strip_prefix("id<") {
        let number = until(&mut rest, ">")?;
        let number: u32 = number.parse().map_err(|e| format!("{e}"))?;
        if number == 0 {
            return Err("table number 0 is invalid".into());
        }
        Ok((Shape::Id(number), rest))
    } else if let Some(mut rest) = text.strip_prefix("array<") {
        let element = terminated(&mut rest, ">", depth)?;
        Ok((Shape::Array(Box::new(element)), rest))
    } else if let Some(mut rest) = text.strip_prefix("record<") {
        let key = terminated(&mut rest, ", ", depth)?;
        let value = terminated(&mut rest, ">", depth)?;
        Ok((Shape::Record(Box::new(key), Box::new(value)), rest))
    } else if let Some(mut rest) = text.strip_prefix('"') {
        let literal = until(&mut rest, "\"")?;
        Ok((literal_shape(literal), rest))
    } else {
        Err(format!("unexpected token at '{text}'"))
    }
}

/// Convex keeps a literal only when it is an identifier; otherwise the
/// string's most specific shape: an id, a field name, or any string.
fn literal_shape(literal: &str) -> Shape {
    if check_identifier(literal).is_ok() {
        Shape::Literal(literal.to_owned())
    } else if let Ok(id) = DocumentId::decode(literal) {
        Shape::Id(id.table)
    } else if check_field_name(literal).is_ok() {
        Shape::FieldName
    } else {
        Shape::String
    }
}

/// Writes the shape as Convex prints it (the inverse of [`parse_shape`]).
impl fmt::Display for Shape {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some((unit, _)) = UNITS.iter().find(|(_, s)| s == self) {
            return f.write_str(unit);
        }
        match self {
            Shape::Literal(s) => write!(f, "{s:?}"),
            Shape::Id(n) => write!(f, "id<{n}>"),
            Shape::Array(e) => write!(f, "array<{e}>"),
            Shape::Record(k, v) => write!(f, "record<{k}, {v}>"),
            Shape::Object(fields) => {
                f.write_str("{")?;
                for (i, (name, field)) in fields.iter().enumerate() {
                    let sep = if i == 0 { "" } else { ", " };
                    let opt = if field.optional { "?" } else { "" };
                    write!(f, "{sep}{name:?}{opt}: {}", field.shape)?;
                }
                f.write_str("}")
            }
            Shape::Union(options) => {
                for (i, option) in options.iter().enumerate() {
                    let sep = if i == 0 { "" } else { " | " };
                    write!(f, "{sep}{option}")?;
                }
                Ok(())
            }
            _ => unreachable!("units are written above"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ID_10001: &str = "j571sbvz5zj1ps44j9f433pf1n6s7egs";

    #[test]
    fn never_from_the_real_export() {
        assert_eq!(parse_shape("never"), Ok(Shape::Never));
    }

    #[test]
    fn units_and_compound_shapes() {
        for (unit, shape) in &UNITS {
            assert_eq!(parse_shape(unit).as_ref(), Ok(shape), "{unit}");
        }
        let text = r#"{"_creationTime": float64, "_id": id<10001>, "n": int64 | string}"#;
        let Shape::Object(fields) = parse_shape(text).unwrap() else {
            panic!("not an object")
        };
        assert_eq!(fields["_id"].shape, Shape::Id(10001));
        assert_eq!(
            fields["n"].shape,
            Shape::Union([Shape::Int64, Shape::String].into())
        );
        let text = r#"array<record<field_name, "a" | null>> | {"x"?: bytes, "y": {}}"#;
        let shape = parse_shape(text).unwrap();
        let Shape::Union(options) = &shape else {
            panic!("not a union")
        };
        assert!(options.contains(&Shape::Array(Box::new(Shape::Record(
            Box::new(Shape::FieldName),
            Box::new(Shape::Union(
                [Shape::Literal("a".into()), Shape::Null].into()
            ))
        )))));
        // Printing and parsing again gives the same shape.
        assert_eq!(parse_shape(&shape.to_string()), Ok(shape));
    }

    #[test]
    fn literals_take_their_most_specific_shape() {
        assert_eq!(parse_shape(r#""abc""#), Ok(Shape::Literal("abc".into())));
        // An id that is also an identifier stays a literal, as in Convex.
        assert_eq!(
            parse_shape(&format!("\"{ID_10001}\"")),
            Ok(Shape::Literal(ID_10001.into()))
        );
        assert_eq!(
            parse_shape("\"4d9wy5r5x7rmjdjqnx45ct829fff4ar\""),
            Ok(Shape::Id(35))
        );
        assert_eq!(parse_shape(r#""a b""#), Ok(Shape::FieldName));
        assert_eq!(parse_shape(r#""$x""#), Ok(Shape::String));
    }

    #[test]
    fn bad_shapes_give_convex_reasons() {
        let cases = [
            ("", "unexpected token at ''"),
            ("int64 |", "unexpected token at ' |'"),
            ("nullx", "unexpected token at 'x'"),
            ("array<int64", "unexpected token at ''. expected '>'"),
            ("id<0>", "table number 0 is invalid"),
            ("id<x>", "invalid digit found in string"),
            ("{a: int64}", "cannot parse object key 'a'"),
            (
                r#"{"$a": int64}"#,
                "Field name $a starts with '$', which is reserved.",
            ),
            (r#"{"a": int64 "#, "unexpected token at ' '"),
            (r#"{"": null}"#, ""),
            (r#"{"": null}}"#, "unexpected token at '}'"),
        ];
        for (text, reason) in cases {
            match parse_shape(text) {
                Ok(shape) => assert_eq!(reason, "", "{text} parsed as {shape}"),
                Err(e) => assert_eq!(e, reason, "{text}"),
            }
        }
        let deep = "array<".repeat(10_000);
        assert!(parse_shape(&deep).unwrap_err().contains("nested deeper"));
        assert!(parse_shape("{\"").is_err());
    }

    #[test]
    fn override_lines() {
        let id = DocumentId::decode(ID_10001).unwrap();
        let line = format!("{{\"{ID_10001}\": {{\"n\": \"int64\"}}}}\n");
        assert_eq!(
            parse_override_line(&line, 2),
            Ok((
                id,
                ExportContext::Object([("n".to_owned(), ExportContext::Int64)].into())
            ))
        );
        let line = format!(
            r#"{{"{ID_10001}": ["float64inf", "infer", "bytes", {{"$float64NaN": "AAAAAAAA+H8="}}]}}"#
        );
        let (_, context) = parse_override_line(&line, 2).unwrap();
        assert_eq!(
            context,
            ExportContext::Array(vec![
                ExportContext::Float64Inf,
                ExportContext::Infer,
                ExportContext::Bytes,
                ExportContext::Float64NaN(f64::NAN.to_le_bytes()),
            ])
        );
        let cases = [
            (
                "[1]",
                Code::InvalidConvexValue,
                "Row 3 wasn't a valid Convex value: overrides should be object",
            ),
            (
                "{}",
                Code::InvalidConvexValue,
                "Row 3 wasn't a valid Convex value: override object should have one item",
            ),
            (
                r#"{"a": "infer", "b": "infer"}"#,
                Code::InvalidConvexValue,
                "Row 3 wasn't a valid Convex value: override object should have one item",
            ),
            (
                r#"{"a": "float"}"#,
                Code::InvalidConvexValue,
                "Row 3 wasn't a valid Convex value: invalid export context float",
            ),
            (
                r#"{"a": 1}"#,
                Code::InvalidConvexValue,
                "Row 3 wasn't a valid Convex value: invalid export context 1",
            ),
            (
                r#"{"a": {"$float64NaN": "AAAA"}}"#,
                Code::InvalidConvexValue,
                "Row 3 wasn't a valid Convex value: Float64 must be exactly eight bytes",
            ),
            (
                r#"{"a": "infer"}"#,
                Code::InvalidConvexValue,
                "Row 3 wasn't a valid Convex value: Unable to decode ID: Invalid ID length 1",
            ),
        ];
        for (line, code, message) in cases {
            let e = parse_override_line(line, 3).unwrap_err();
            assert_eq!((e.code, e.message.as_str()), (code, message), "{line}");
        }
        let e = parse_override_line("{", 4).unwrap_err();
        assert_eq!(e.code, Code::JsonInvalidRow);
        assert!(
            e.message.starts_with("Row 4 wasn't valid JSON: EOF"),
            "{}",
            e.message
        );
    }

    /// The constructed example of the reference: one shape, one override.
    #[test]
    fn constructed_example() {
        let schema = "\"{\\\"_creationTime\\\": float64, \\\"_id\\\": id<10001>, \\\"n\\\": int64 | string}\"\n";
        let first: String = serde_json::from_str(schema.lines().next().unwrap()).unwrap();
        let Shape::Object(fields) = parse_shape(&first).unwrap() else {
            panic!("not an object")
        };
        assert_eq!(fields.len(), 3);
        assert!(!fields["n"].optional);
        let (id, context) =
            parse_override_line(&format!(r#"{{"{ID_10001}": {{"n": "int64"}}}}"#), 2).unwrap();
        assert_eq!(id.table, 10001);
        assert!(matches!(context, ExportContext::Object(f) if f["n"] == ExportContext::Int64));
    }
}

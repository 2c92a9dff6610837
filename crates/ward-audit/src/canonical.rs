//! RFC 8785 (JSON Canonicalization Scheme) for the JSON Ward's audit events use:
//! objects, arrays, strings, booleans, null and integers. Object members are
//! sorted by their names' UTF-16 code units; no insignificant whitespace; strings
//! escaped as RFC 8785 §3.2.2.2 prescribes. Non-integer numbers are refused rather
//! than risk an encoding that differs from another implementation's.

use serde_json::Value;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CanonicalError {
    #[error("non-integer numbers are not part of Ward's canonical encoding")]
    NonIntegerNumber,
}

/// The canonical bytes of `value`.
pub fn canonical_json(value: &Value) -> Result<Vec<u8>, CanonicalError> {
    let mut out = Vec::new();
    write(value, &mut out)?;
    Ok(out)
}

/// Appends the canonical bytes of `value` (for encoders that write fixed objects
/// member by member, in canonical order, without building a `Value`).
pub fn write_canonical(value: &Value, out: &mut Vec<u8>) -> Result<(), CanonicalError> {
    write(value, out)
}

/// Appends `s` as a canonical JSON string.
pub fn write_canonical_string(s: &str, out: &mut Vec<u8>) {
    write_string(s, out)
}

fn write(value: &Value, out: &mut Vec<u8>) -> Result<(), CanonicalError> {
    match value {
        Value::Null => out.extend_from_slice(b"null"),
        Value::Bool(true) => out.extend_from_slice(b"true"),
        Value::Bool(false) => out.extend_from_slice(b"false"),
        Value::Number(n) => {
            if let Some(i) = n.as_i64() {
                out.extend_from_slice(i.to_string().as_bytes());
            } else if let Some(u) = n.as_u64() {
                out.extend_from_slice(u.to_string().as_bytes());
            } else {
                return Err(CanonicalError::NonIntegerNumber);
            }
        }
        Value::String(s) => write_string(s, out),
        Value::Array(items) => {
            out.push(b'[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write(item, out)?;
            }
            out.push(b']');
        }
        Value::Object(map) => {
            let mut members: Vec<(&String, &Value)> = map.iter().collect();
            members.sort_by(|a, b| a.0.encode_utf16().cmp(b.0.encode_utf16()));
            out.push(b'{');
            for (i, (k, v)) in members.into_iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_string(k, out);
                out.push(b':');
                write(v, out)?;
            }
            out.push(b'}');
        }
    }
    Ok(())
}

fn write_string(s: &str, out: &mut Vec<u8>) {
    out.push(b'"');
    // Fast path: nothing to escape (the common case for ids, emails, actions).
    if !s.bytes().any(|b| b < 0x20 || b == b'"' || b == b'\\') {
        out.extend_from_slice(s.as_bytes());
        out.push(b'"');
        return;
    }
    for c in s.chars() {
        match c {
            '"' => out.extend_from_slice(b"\\\""),
            '\\' => out.extend_from_slice(b"\\\\"),
            '\u{08}' => out.extend_from_slice(b"\\b"),
            '\u{0c}' => out.extend_from_slice(b"\\f"),
            '\n' => out.extend_from_slice(b"\\n"),
            '\r' => out.extend_from_slice(b"\\r"),
            '\t' => out.extend_from_slice(b"\\t"),
            c if (c as u32) < 0x20 => {
                out.extend_from_slice(format!("\\u{:04x}", c as u32).as_bytes())
            }
            c => {
                let mut buf = [0u8; 4];
                out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
            }
        }
    }
    out.push(b'"');
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn check(v: Value, want: &str) {
        assert_eq!(
            String::from_utf8(canonical_json(&v).expect("canonical")).expect("utf8"),
            want
        );
    }

    #[test]
    fn rfc8785_examples_for_the_supported_subset() {
        check(
            json!({"b": 1, "a": [true, null, "x"]}),
            r#"{"a":[true,null,"x"],"b":1}"#,
        );
        check(
            json!("\u{0}\u{1f}\"\\\n\t€"),
            "\"\\u0000\\u001f\\\"\\\\\\n\\t€\"",
        );
        // Sorting is by UTF-16 code units (RFC 8785 §3.2.3): U+1F600 (surrogates
        // D83D DE00) sorts before U+FB33 but after U+00E9.
        check(
            json!({"\u{fb33}": 1, "\u{1f600}": 2, "\u{e9}": 3}),
            "{\"\u{e9}\":3,\"\u{1f600}\":2,\"\u{fb33}\":1}",
        );
        check(
            json!({"n": -9007199254740991i64, "m": 0}),
            r#"{"m":0,"n":-9007199254740991}"#,
        );
        assert_eq!(
            canonical_json(&json!(1.5)),
            Err(CanonicalError::NonIntegerNumber)
        );
    }
}

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
    write_string(s.as_bytes(), out)
}

/// Appends the text `s`, given as its bytes, as a canonical JSON string: for
/// valid UTF-8 exactly what `write_canonical_string` writes, because every escape
/// is of an ASCII byte and every other byte is copied. For bytes that are not
/// UTF-8 it still writes something, and distinct inputs always give distinct
/// outputs (each byte maps to a fixed sequence and none of them is a prefix of
/// another), which is what lets the verifier hash columns without checking them
/// first: a column that is not the one committed cannot hash the same.
pub fn write_canonical_text(s: &[u8], out: &mut Vec<u8>) {
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
        Value::String(s) => write_string(s.as_bytes(), out),
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
                write_string(k.as_bytes(), out);
                out.push(b':');
                write(v, out)?;
            }
            out.push(b'}');
        }
    }
    Ok(())
}

/// Whether any byte of `s` needs an escape. Written as a fold over every byte,
/// not a search that stops early, so the compiler checks 32 bytes at a time:
/// escapes are rare and the strings short. (An eight-bytes-at-a-time version
/// ran more instructions.)
fn needs_escape(s: &[u8]) -> bool {
    s.iter().fold(false, |any, &b| {
        any | (b < 0x20) | (b == b'"') | (b == b'\\')
    })
}

fn write_string(s: &[u8], out: &mut Vec<u8>) {
    out.push(b'"');
    // Fast path: nothing to escape (the common case for ids, emails, actions).
    if !needs_escape(s) {
        out.extend_from_slice(s);
        out.push(b'"');
        return;
    }
    for &b in s {
        match b {
            b'"' => out.extend_from_slice(b"\\\""),
            b'\\' => out.extend_from_slice(b"\\\\"),
            0x08 => out.extend_from_slice(b"\\b"),
            0x0c => out.extend_from_slice(b"\\f"),
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\r' => out.extend_from_slice(b"\\r"),
            b'\t' => out.extend_from_slice(b"\\t"),
            b if b < 0x20 => {
                const HEX: &[u8; 16] = b"0123456789abcdef";
                out.extend_from_slice(b"\\u00");
                out.push(HEX[usize::from(b >> 4)]);
                out.push(HEX[usize::from(b & 0xf)]);
            }
            // Every other byte, ASCII or part of a UTF-8 sequence, as it is.
            b => out.push(b),
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

    /// The byte-wise writer escapes text exactly as serde_json (whose escaping
    /// is RFC 8785's: short escapes, other controls as lowercase `\u00xx`,
    /// everything else as UTF-8) does, character by character.
    #[test]
    fn text_as_bytes_is_escaped_as_its_characters() {
        let mut chars: Vec<char> = (0u32..0x100).filter_map(char::from_u32).collect();
        chars.extend([
            '\u{7ff}', '\u{800}', '\u{2028}', '\u{2029}', '\u{fffd}', '\u{ffff}',
        ]);
        chars.extend(['\u{10000}', '\u{1f600}', '\u{10ffff}']);
        // At every offset in and around a 32-byte vector.
        for c in chars {
            for pad in 0..34 {
                let text = format!("{}{c}b{c}", "a".repeat(pad));
                let mut out = Vec::new();
                write_canonical_text(text.as_bytes(), &mut out);
                let want = serde_json::to_string(&text).expect("json");
                assert_eq!(
                    String::from_utf8(out).expect("utf8"),
                    want,
                    "U+{:04X}",
                    c as u32
                );
            }
        }
    }

    /// Distinct byte strings, UTF-8 or not, never encode alike: the fast
    /// verifier relies on it to hash columns it has not checked.
    #[test]
    fn text_as_bytes_is_injective() {
        let alphabet = [
            0x00, 0x08, 0x1f, b'"', b'\\', b'u', b'0', b'b', 0x7f, 0x80, 0xc3, 0xff,
        ];
        let mut inputs: Vec<Vec<u8>> = vec![Vec::new()];
        for _ in 0..3 {
            let longer: Vec<Vec<u8>> = inputs
                .iter()
                .filter(|s| s.len() == inputs.last().map_or(0, Vec::len))
                .flat_map(|s| {
                    alphabet.iter().map(move |&b| {
                        let mut t = s.clone();
                        t.push(b);
                        t
                    })
                })
                .collect();
            inputs.extend(longer);
        }
        let mut seen = std::collections::HashMap::new();
        for input in &inputs {
            let mut out = Vec::new();
            write_canonical_text(input, &mut out);
            if let Some(other) = seen.insert(out, input) {
                panic!("{other:?} and {input:?} encode alike");
            }
        }
        assert_eq!(seen.len(), 1 + 12 + 144 + 1728);
    }
}

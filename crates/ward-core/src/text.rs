//! Text that people read as a name: a display name, an email address, a token,
//! connection or rule-test name. Such text must show what it is: no invisible or
//! direction-changing characters (a U+202E turns `exe.txt` into `txt.exe` on
//! screen), one normal form (NFC, so two spellings of `é` are one name), and no
//! word that mixes scripts the way a spoof does (Cyrillic `а` in `аlpha`).
//!
//! Mixed scripts follow the restriction levels of Unicode Technical Standard
//! #39 §5.2, at **Moderately Restrictive**: a word (an address's local part, a
//! domain label, a whitespace-separated word of a name) may be in one script, or
//! Latin with Han, Hiragana/Katakana or Hangul (Highly Restrictive), or Latin
//! with one other Recommended script that is neither Cyrillic nor Greek — the
//! two whose letters copy Latin ones. Characters of the Common and Inherited
//! scripts (digits, punctuation, combining marks) go with any script. On top of
//! that an address part in one script other than Latin whose UTS #39 skeleton is
//! plain ASCII (Cyrillic `аре`, which reads as `ape`) is a whole-script
//! confusable of an ASCII name, and is refused too.

use unicode_normalization::UnicodeNormalization;
use unicode_script::Script;
use unicode_security::mixed_script::AugmentedScriptSet;

use crate::InvalidField;

/// Invisible and bidirectional formatting characters, refused wherever text
/// is shown to people. The ranges of issue 15 (zero-width and directional
/// marks U+200B–U+200F, embeddings and overrides U+202A–U+202E, isolates
/// U+2066–U+2069) and the others that hide or reorder text the same way: the
/// soft hyphen (U+00AD), the Arabic letter mark (U+061C), the Mongolian vowel
/// separator (U+180E), the line and paragraph separators (U+2028, U+2029),
/// the word joiner and invisible operators (U+2060–U+2064), and the byte-order
/// mark (U+FEFF). Zero-width joiners are among them, so emoji joined into one
/// picture (family emoji) are refused in names too.
pub fn is_invisible_or_bidi(c: char) -> bool {
    matches!(c,
        '\u{00AD}'
        | '\u{061C}'
        | '\u{180E}'
        | '\u{200B}'..='\u{200F}'
        | '\u{2028}'..='\u{202E}'
        | '\u{2060}'..='\u{2064}'
        | '\u{2066}'..='\u{2069}'
        | '\u{FEFF}')
}

/// The first invisible, bidirectional or control character in `text`, named
/// as `U+XXXX` for an error message (the character itself would not show).
pub fn hidden_character(text: &str) -> Option<String> {
    text.chars()
        .find(|&c| c.is_control() || is_invisible_or_bidi(c))
        .map(|c| format!("U+{:04X}", u32::from(c)))
}

/// A name shown to people: trimmed, NFC, non-empty, at most `max` characters,
/// no control, invisible or bidirectional character, no word that mixes
/// scripts beyond Moderately Restrictive.
pub fn checked_name(field: &'static str, value: &str, max: usize) -> Result<String, InvalidField> {
    let text = crate::checked_text(field, value, max)?;
    let text: String = text.nfc().collect();
    for word in text.split_whitespace() {
        if !within_moderately_restrictive(word) {
            return Err(InvalidField::new(
                field,
                format!("mixes scripts in one word (\"{word}\"), as look-alike names do"),
            ));
        }
    }
    Ok(text)
}

/// Checks one part of an email address (the local part or one domain label),
/// already NFC and lower case.
pub(crate) fn check_address_part(
    field: &'static str,
    part: &str,
    what: &str,
) -> Result<(), InvalidField> {
    if let Some(c) = hidden_character(part) {
        return Err(InvalidField::new(
            field,
            format!("the {what} holds an invisible or control character ({c})"),
        ));
    }
    if !within_moderately_restrictive(part) {
        return Err(InvalidField::new(
            field,
            format!("the {what} mixes scripts, as look-alike addresses do"),
        ));
    }
    if is_whole_script_confusable_with_ascii(part) {
        return Err(InvalidField::new(
            field,
            format!("the {what} is written in another script to look like an ASCII name"),
        ));
    }
    Ok(())
}

/// UTS #39 §5.2, Moderately Restrictive or stricter, over the letters of
/// `word` (Common and Inherited characters take any script). The level is
/// computed as in §5.2 without its first condition (that every character be
/// in the identifier profile), since names hold punctuation and symbols.
pub fn within_moderately_restrictive(word: &str) -> bool {
    let mut all = AugmentedScriptSet::default();
    let mut without_latin = AugmentedScriptSet::default();
    for c in word.chars() {
        let set = AugmentedScriptSet::for_char(c);
        if set.is_all() {
            continue;
        }
        all.intersect_with(set);
        if !set.base.contains_script(Script::Latin) {
            without_latin.intersect_with(set);
        }
    }
    if !all.is_empty() {
        // Single script (or ASCII only).
        return true;
    }
    // Latin plus CJK: Highly Restrictive.
    if without_latin.hanb || without_latin.jpan || without_latin.kore {
        return true;
    }
    // Latin plus exactly one other Recommended script, not Cyrillic or Greek.
    let mut others = without_latin.base.iter();
    match (others.next(), others.next()) {
        (Some(script), None) => {
            script.is_recommended() && script != Script::Cyrillic && script != Script::Greek
        }
        _ => false,
    }
}

/// A part in a single script other than Latin that reads as plain ASCII: its
/// UTS #39 skeleton (§4) is all ASCII although the part is not.
fn is_whole_script_confusable_with_ascii(part: &str) -> bool {
    if part.is_ascii() {
        return false;
    }
    let set = AugmentedScriptSet::for_str(part);
    if set.is_all() || set.base.contains_script(Script::Latin) {
        return false;
    }
    unicode_security::skeleton(part).all(|c| c.is_ascii())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        let ok = |s: &str, want: &str| {
            assert_eq!(checked_name("name", s, 100), Ok(want.to_owned()), "{s:?}")
        };
        let bad = |s: &str| {
            let e = checked_name("name", s, 100).expect_err(s);
            assert_eq!(e.field, "name");
        };
        ok("Alice Martin", "Alice Martin");
        // NFC: `e` + COMBINING ACUTE becomes one `é`.
        ok("Rene\u{301}e", "Ren\u{e9}e");
        ok("Иван Петров", "Иван Петров");
        ok("Ivan (Иван)", "Ivan (Иван)");
        ok("山田 Taro", "山田 Taro");
        ok("Tokyo東京", "Tokyo東京");
        ok("O'Brien-Smith 2nd", "O'Brien-Smith 2nd");
        ok("CI token 🚀", "CI token 🚀");
        // U+202E, U+200B, U+2066, U+FEFF, soft hyphen, line separator.
        for c in [
            '\u{202E}', '\u{200B}', '\u{200D}', '\u{2066}', '\u{FEFF}', '\u{AD}', '\u{2028}',
        ] {
            bad(&format!("Mallory{c}gnp.exe"));
        }
        // Cyrillic а inside a Latin word; Greek ο inside a Latin word.
        bad("\u{430}dmin");
        bad("g\u{3bf}\u{3bf}gle");
        bad("Admin \u{430}lpha");
    }

    #[test]
    fn levels() {
        for (word, within) in [
            ("alpha", true),
            ("пример", true),
            ("\u{430}lpha", false),
            ("abcλ", false),
            ("Latinहिन्दी", true),
            ("日本語とLatin", true),
            ("한국어Latin", true),
            ("Latinहिन्दीবাংলা", false),
            ("1-2_3.", true),
        ] {
            assert_eq!(within_moderately_restrictive(word), within, "{word}");
        }
    }

    #[test]
    fn address_parts() {
        let check = |p: &str| check_address_part("email", p, "domain");
        assert!(check("alpha").is_ok());
        assert!(check("пример").is_ok());
        assert!(check("müller").is_ok());
        assert!(check("\u{430}lpha").is_err());
        // All Cyrillic, but reads as the ASCII "ape".
        assert!(check("\u{430}\u{440}\u{435}").is_err());
        assert!(check("a\u{200B}b").is_err());
    }
}

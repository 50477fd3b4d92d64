//! Spoof-proof names: invisible and direction-changing characters are shown, not obeyed.
//!
//! A user named `ann`, U+202E (right-to-left override), `nimda` renders as `annadmin`, and `ann`
//! followed by U+200B (zero-width space) looks exactly like `ann`. Names are recorded with every bidirectional control and zero-width or
//! otherwise invisible character replaced by a visible `<U+XXXX>` escape, so the dashboard, the
//! JSON routes, the stream and the CSV export all show the same, unambiguous text. Filters escape
//! their value the same way, so filtering by the original name still finds it.

use std::borrow::Cow;

/// True for characters that change text direction or take no visible space.
fn is_deceptive(c: char) -> bool {
    matches!(
        c,
        // Bidirectional controls: ALM, LRM, RLM, LRE..RLO, LRI..PDI.
        '\u{061C}' | '\u{200E}' | '\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}'
        // Zero-width and invisible: soft hyphen, CGJ, Mongolian vowel separator, ZWSP, ZWNJ,
        // ZWJ, word joiner and invisible operators, BOM / ZWNBSP, Hangul fillers.
        | '\u{00AD}' | '\u{034F}' | '\u{180E}' | '\u{200B}'..='\u{200D}' | '\u{2060}'..='\u{2064}'
        | '\u{FEFF}' | '\u{115F}' | '\u{1160}' | '\u{3164}' | '\u{FFA0}'
    )
}

/// `name` with each deceptive character replaced by `<U+XXXX>`; borrowed when there is none.
pub(crate) fn visible(name: &str) -> Cow<'_, str> {
    // Every deceptive character is outside ASCII: plain names cost one scan.
    if name.is_ascii() || !name.chars().any(is_deceptive) {
        return Cow::Borrowed(name);
    }
    let mut out = String::with_capacity(name.len() + 16);
    for c in name.chars() {
        if is_deceptive(c) {
            out.push_str(&format!("<U+{:04X}>", c as u32));
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::visible;

    #[test]
    fn escapes_bidi_and_invisible_characters_only() {
        assert_eq!(visible("ann"), "ann");
        assert_eq!(visible("Ünïcødé ☃ 工具"), "Ünïcødé ☃ 工具");
        assert_eq!(visible("ann\u{202E}nimda"), "ann<U+202E>nimda");
        assert_eq!(visible("\u{200B}ann\u{2066}"), "<U+200B>ann<U+2066>");
        assert_eq!(visible("a\u{FEFF}b\u{00AD}"), "a<U+FEFF>b<U+00AD>");
    }
}

//! open_clip's text cleaning (`_clean_lower`): ftfy's default `fix_text`, `html.unescape` twice,
//! whitespace collapsed (Python's `str.isspace`), stripped, lowercased.
//!
//! The ftfy part covers the fixes that occur in real captions: HTML entities (ftfy's own rules,
//! including all-caps names), UTF-8 mojibake read as Windows-1252/Latin-1, C1 controls, Latin
//! ligatures, full/half-width forms, curly quotes, line breaks, terminal escapes, control
//! characters and NFC. Like ftfy, each line is fixed separately and the fixes repeat until
//! nothing changes.

use std::sync::LazyLock;

use regex::{Captures, Regex};
use unicode_normalization::UnicodeNormalization;

pub fn clean(text: &str) -> String {
    let text = fix_text(text);
    let text = html_unescape(&html_unescape(&text));
    let collapsed: String = text
        .split(is_python_space)
        .filter(|w| !w.is_empty())
        .collect::<Vec<_>>()
        .join(" ");
    collapsed.to_lowercase()
}

/// Python's `str.isspace()`, which `re`'s `\s` follows: wider than Unicode White_Space
/// (it includes the information separators U+1C..U+1F).
fn is_python_space(c: char) -> bool {
    matches!(c, '\t'..='\r' | '\x1c'..='\x1f' | ' ' | '\u{85}' | '\u{a0}' | '\u{1680}' | '\u{2000}'..='\u{200a}'
        | '\u{2028}' | '\u{2029}' | '\u{202f}' | '\u{205f}' | '\u{3000}')
}

/// ftfy `fix_text` with its default configuration.
pub fn fix_text(text: &str) -> String {
    text.split_inclusive('\n').map(fix_segment).collect()
}

fn fix_segment(segment: &str) -> String {
    let unescape = !segment.contains('<');
    let mut text = segment.to_string();
    loop {
        let orig = text.clone();
        if unescape {
            text = unescape_html(&text);
        }
        text = fix_encoding(&text);
        text = fix_c1_controls(&text);
        text = text.chars().map(fix_char).collect();
        text = fix_line_breaks(&text);
        text = ANSI.replace_all(&text, "").into_owned();
        text = text.chars().filter(|c| !is_control(*c)).collect();
        text = text.nfc().collect();
        if text == orig {
            return text;
        }
    }
}

static PY_REFERENCE: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"&(#[0-9]+;?|#[xX][0-9a-fA-F]+;?|[^\t\n\x0c <&#;]{1,32};?)").unwrap());

/// Python's `html.unescape`: named references (HTML5 table, legacy ones without `;`) and
/// numeric ones with Python's repairs (Windows-1252 for 0x80..0x9F, U+FFFD for surrogates and
/// out-of-range values, invalid code points removed).
fn html_unescape(text: &str) -> String {
    if !text.contains('&') {
        return text.to_string();
    }
    PY_REFERENCE
        .replace_all(text, |c: &Captures| {
            let body = &c[1];
            let Some(num) = body.strip_prefix('#') else {
                return htmlize::unescape(c[0].to_string()).into_owned();
            };
            let num = num.trim_end_matches(';');
            let value = match num.strip_prefix(['x', 'X']) {
                Some(hex) => u32::from_str_radix(hex, 16),
                None => num.parse::<u32>(),
            }
            .unwrap_or(u32::MAX);
            python_charref(value)
        })
        .into_owned()
}

fn python_charref(num: u32) -> String {
    match num {
        0 => "\u{fffd}".into(),
        0x0d => "\r".into(),
        0x80..=0x9f => CP1252_HIGH[(num - 0x80) as usize].to_string(),
        0xd800..=0xdfff | 0x110000.. => "\u{fffd}".into(),
        0x1..=0x8 | 0xb | 0xe..=0x1f | 0x7f | 0xfdd0..=0xfdef => String::new(),
        n if n & 0xfffe == 0xfffe => String::new(),
        n => char::from_u32(n).map(String::from).unwrap_or_default(),
    }
}

static ENTITY: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"&#?[0-9A-Za-z]{1,24};").unwrap());
static ANSI: LazyLock<Regex> = LazyLock::new(|| Regex::new("\x1b\\[((?:\\d|;)*)([a-zA-Z])").unwrap());

/// ftfy `unescape_html`: only complete, semicolon-terminated references; all-caps names of
/// lowercase entities decode to the uppercased character.
fn unescape_html(text: &str) -> String {
    ENTITY
        .replace_all(text, |c: &Captures| {
            let entity = &c[0];
            let decoded = html_unescape(entity);
            if decoded != entity && !decoded.contains(';') {
                return decoded;
            }
            if !entity.starts_with("&#") && entity == entity.to_uppercase() {
                let lower = entity.to_lowercase();
                let decoded = html_unescape(&lower);
                if decoded != lower && !decoded.contains(';') {
                    return decoded.to_uppercase();
                }
            }
            entity.to_string()
        })
        .into_owned()
}

/// Windows-1252 bytes 0x80..0x9F; the five undefined ones map to the C1 control of the same
/// value ("sloppy-windows-1252", as ftfy and browsers do).
const CP1252_HIGH: [char; 32] = [
    '€', '\u{81}', '‚', 'ƒ', '„', '…', '†', '‡', 'ˆ', '‰', 'Š', '‹', 'Œ', '\u{8d}', 'Ž', '\u{8f}',
    '\u{90}', '‘', '’', '“', '”', '•', '–', '—', '˜', '™', 'š', '›', 'œ', '\u{9d}', 'ž', 'Ÿ',
];

/// The byte a character stands for in sloppy Windows-1252, if any.
fn cp1252_byte(c: char) -> Option<u8> {
    let cp = c as u32;
    if cp < 0x80 || (0xa0..=0xff).contains(&cp) {
        return Some(cp as u8);
    }
    CP1252_HIGH.iter().position(|&h| h == c).map(|i| 0x80 + i as u8)
}

/// Decodes runs of characters that are UTF-8 bytes shown as Windows-1252 / Latin-1 text
/// ("cafÃ©", "donâ€™t"): each run is re-encoded and decoded as UTF-8 when that is valid.
fn fix_encoding(text: &str) -> String {
    if text.is_ascii() {
        return text.to_string();
    }
    let chars: Vec<char> = text.chars().collect();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    while i < chars.len() {
        if let Some((decoded, len)) = utf8_sequence_at(&chars[i..]) {
            out.push(decoded);
            i += len;
        } else {
            out.push(chars[i]);
            i += 1;
        }
    }
    out
}

/// A multi-byte UTF-8 sequence spelled in Windows-1252 characters at the start of `chars`.
fn utf8_sequence_at(chars: &[char]) -> Option<(char, usize)> {
    let lead = cp1252_byte(chars[0])?;
    let len = match lead {
        0xc2..=0xdf => 2,
        0xe0..=0xef => 3,
        0xf0..=0xf4 => 4,
        _ => return None,
    };
    if chars.len() < len {
        return None;
    }
    let mut bytes = vec![lead];
    for &c in &chars[1..len] {
        let b = cp1252_byte(c)?;
        if !(0x80..=0xbf).contains(&b) {
            return None;
        }
        bytes.push(b);
    }
    let s = std::str::from_utf8(&bytes).ok()?;
    Some((s.chars().next()?, len))
}

fn fix_c1_controls(text: &str) -> String {
    text.chars()
        .map(|c| match c as u32 {
            cp @ 0x80..=0x9f => CP1252_HIGH[(cp - 0x80) as usize],
            _ => c,
        })
        .collect()
}

/// Latin ligatures, full/half-width forms and curly quotes, one character at a time.
fn fix_char(c: char) -> String {
    match c {
        'Ĳ' => "IJ".into(),
        'ĳ' => "ij".into(),
        'ŉ' => "ʼn".into(),
        'Ǳ' => "DZ".into(),
        'ǲ' => "Dz".into(),
        'ǳ' => "dz".into(),
        'Ǆ' => "DŽ".into(),
        'ǅ' => "Dž".into(),
        'ǆ' => "dž".into(),
        'Ǉ' => "LJ".into(),
        'ǈ' => "Lj".into(),
        'ǉ' => "lj".into(),
        'Ǌ' => "NJ".into(),
        'ǋ' => "Nj".into(),
        'ǌ' => "nj".into(),
        'ﬀ' => "ff".into(),
        'ﬁ' => "fi".into(),
        'ﬂ' => "fl".into(),
        'ﬃ' => "ffi".into(),
        'ﬄ' => "ffl".into(),
        'ﬅ' => "ſt".into(),
        'ﬆ' => "st".into(),
        '\u{3000}' => " ".into(),
        '\u{ff01}'..='\u{ffef}' => std::iter::once(c).nfkc().collect(),
        '\u{2bc}' | '\u{2018}'..='\u{201b}' => "'".into(),
        '\u{201c}'..='\u{201f}' => "\"".into(),
        _ => c.into(),
    }
}

fn fix_line_breaks(text: &str) -> String {
    text.replace("\r\n", "\n").replace(['\r', '\u{2028}', '\u{2029}', '\u{85}'], "\n")
}

fn is_control(c: char) -> bool {
    matches!(c, '\0'..='\x08' | '\x0b' | '\x0e'..='\x1f' | '\x7f' | '\u{206a}'..='\u{206f}' | '\u{feff}' | '\u{fff9}'..='\u{fffc}')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ftfy_examples() {
        assert_eq!(fix_text("sÃ³"), "só");
        assert_eq!(fix_text("donâ€™t"), "don't");
        assert_eq!(fix_text("ﬂuﬃeﬆ"), "fluffiest");
        assert_eq!(fix_text("ＬＯＵＤ　ＮＯＩＳＥＳ"), "LOUD NOISES");
        assert_eq!(fix_text("\u{201c}here\u{2019}s a test\u{201d}"), "\"here's a test\"");
        assert_eq!(fix_text("P&EACUTE;REZ"), "PÉREZ");
        assert_eq!(fix_text("&ntilde; &Ntilde; &NTILDE; &nTILDE;"), "ñ Ñ Ñ &nTILDE;");
        assert_eq!(fix_text("<b>&amp;</b>"), "<b>&amp;</b>");
        assert_eq!(fix_text("\x1b[36;44mblue\x1b[0m"), "blue");
    }

    #[test]
    fn clean_collapses_and_lowercases() {
        assert_eq!(clean("  A\tDOG\u{2003}on &amp;amp; the\n\nBEACH  "), "a dog on & the beach");
        // ftfy removes U+1F before whitespace could be collapsed; U+1C..U+1E likewise.
        assert_eq!(clean("dog\u{1f}on"), "dogon");
        assert_eq!(clean("caf\u{e9}"), "café");
        assert_eq!(clean("cafe\u{301}"), "café");
    }
}

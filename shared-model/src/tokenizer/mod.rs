//! open_clip's `SimpleTokenizer`: clean (see [`clean`]), split with CLIP's pattern, GPT-2 byte
//! to unicode mapping, BPE with `</w>` word ends (Hugging Face `tokenizers`), then
//! `<start_of_text> ... <end_of_text>` padded with 0 or cut to the context length with the end
//! token last.

pub mod clean;

use std::io::Read;
use std::sync::LazyLock;

use burn::prelude::*;
use regex::Regex;
use tokenizers::models::bpe::{Vocab, BPE};
use tokenizers::Model;

use crate::Error;

/// `bpe_simple_vocab_16e6.txt.gz` from the open-clip-torch wheel (MIT licence).
const VOCAB_GZ: &[u8] = include_bytes!("../../assets/bpe_simple_vocab_16e6.txt.gz");
/// Merges used by CLIP: lines 1..=48894 of the vocab file (49152 - 256 - 2).
const MERGES: usize = 49152 - 256 - 2;

pub const START_OF_TEXT: u32 = 49406;
pub const END_OF_TEXT: u32 = 49407;
pub const VOCAB_SIZE: usize = 49408;

static PATTERN: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?i)<start_of_text>|<end_of_text>|'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+").unwrap()
});

pub struct Tokenizer {
    bpe: BPE,
    byte_encoder: [char; 256],
}

/// Token ids of a batch, `[batch, context_length]`, row-major.
#[derive(Debug, Clone, PartialEq)]
pub struct TokenIds {
    pub ids: Vec<u32>,
    pub batch: usize,
    pub context_length: usize,
}

impl TokenIds {
    pub fn row(&self, i: usize) -> &[u32] {
        &self.ids[i * self.context_length..(i + 1) * self.context_length]
    }

    /// The first `n` ids of every row.
    pub fn columns(&self, n: usize) -> TokenIds {
        let n = n.min(self.context_length);
        let ids = (0..self.batch).flat_map(|i| self.row(i)[..n].iter().copied()).collect();
        TokenIds { ids, batch: self.batch, context_length: n }
    }

    pub fn to_tensor(&self, device: &Device) -> Tensor<2, Int> {
        let data: Vec<i64> = self.ids.iter().map(|&i| i as i64).collect();
        Tensor::from_data(TensorData::new(data, [self.batch, self.context_length]), device)
    }
}

/// GPT-2's reversible map from bytes to printable characters.
fn bytes_to_unicode() -> [char; 256] {
    let printable = |b: u32| (b'!' as u32..=b'~' as u32).contains(&b) || (0xa1..=0xac).contains(&b) || (0xae..=0xff).contains(&b);
    let mut map = ['\0'; 256];
    let mut n = 0;
    for b in 0..256u32 {
        map[b as usize] = if printable(b) {
            char::from_u32(b).unwrap()
        } else {
            n += 1;
            char::from_u32(255 + n).unwrap()
        };
    }
    map
}

impl Tokenizer {
    pub fn new() -> Result<Self, Error> {
        let mut text = String::new();
        flate2::read::GzDecoder::new(VOCAB_GZ)
            .read_to_string(&mut text)
            .map_err(|e| Error::Tokenizer(format!("vocab file: {e}")))?;
        let merges: Vec<(String, String)> = text
            .lines()
            .skip(1)
            .take(MERGES)
            .map(|l| {
                let (a, b) = l.split_once(' ').unwrap_or((l, ""));
                (a.to_string(), b.to_string())
            })
            .collect();
        let byte_encoder = bytes_to_unicode();
        // Vocab order as open_clip builds it: the byte characters in the order of the GPT-2
        // table (printable bytes first, i.e. sorted by character), the same with </w>, the
        // merges, the two specials.
        let mut chars = byte_encoder.to_vec();
        chars.sort_unstable();
        let mut order: Vec<String> = chars.iter().map(|c| c.to_string()).collect();
        order.extend(chars.iter().map(|c| format!("{c}</w>")));
        order.extend(merges.iter().map(|(a, b)| format!("{a}{b}")));
        order.push("<start_of_text>".into());
        order.push("<end_of_text>".into());
        let mut vocab = Vocab::default();
        for (i, token) in order.into_iter().enumerate() {
            vocab.insert(token, i as u32);
        }
        let bpe = BPE::builder()
            .vocab_and_merges(vocab, merges)
            .end_of_word_suffix("</w>".into())
            .build()
            .map_err(|e| Error::Tokenizer(e.to_string()))?;
        Ok(Self { bpe, byte_encoder })
    }

    /// The BPE ids of `text`, without start/end tokens.
    pub fn encode(&self, text: &str) -> Vec<u32> {
        let text = clean::clean(text);
        let mut ids = Vec::new();
        for word in PATTERN.find_iter(&text).map(|m| m.as_str()) {
            match word {
                "<start_of_text>" => ids.push(START_OF_TEXT),
                "<end_of_text>" => ids.push(END_OF_TEXT),
                _ => {
                    let mapped: String = word.bytes().map(|b| self.byte_encoder[b as usize]).collect();
                    // Every byte has a token, so BPE over the mapped word cannot fail.
                    let tokens = self.bpe.tokenize(&mapped).unwrap_or_default();
                    ids.extend(tokens.iter().map(|t| t.id));
                }
            }
        }
        ids
    }

    /// `[start] + encode(text) + [end]`, cut to `context_length` (end token kept last) or padded with 0.
    pub fn encode_padded(&self, text: &str, context_length: usize) -> Vec<u32> {
        let mut ids = vec![START_OF_TEXT];
        ids.extend(self.encode(text));
        ids.push(END_OF_TEXT);
        if ids.len() > context_length {
            ids.truncate(context_length);
            if let Some(last) = ids.last_mut() {
                *last = END_OF_TEXT;
            }
        }
        ids.resize(context_length, 0);
        ids
    }

    pub fn encode_batch<S: AsRef<str>>(&self, texts: &[S], context_length: usize) -> TokenIds {
        let ids = texts.iter().flat_map(|t| self.encode_padded(t.as_ref(), context_length)).collect();
        TokenIds { ids, batch: texts.len(), context_length }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_ids() {
        let tok = Tokenizer::new().unwrap();
        // open_clip.tokenize("a diagram")
        assert_eq!(&tok.encode_padded("a diagram", 77)[..4], &[49406, 320, 22697, 49407]);
        assert_eq!(tok.encode_padded("", 5), vec![49406, 49407, 0, 0, 0]);
        let long = tok.encode_padded(&"word ".repeat(100), 77);
        assert_eq!((long.len(), long[76]), (77, 49407));
    }
}

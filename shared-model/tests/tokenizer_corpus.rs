//! The tokenizer equals open_clip's on the whole committed corpus (`tests/fixtures/tokenizer_corpus.json`:
//! scripts, accents, emoji, entities, curly quotes, mojibake, whitespace runs, long texts).

use clip_model::tokenizer::Tokenizer;

#[derive(serde::Deserialize)]
struct Case {
    text: String,
    ids: Vec<u32>,
}

#[test]
fn tokenizer_matches_open_clip_on_corpus() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/fixtures/tokenizer_corpus.json");
    let cases: Vec<Case> = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    assert!(cases.len() >= 300, "corpus has {} strings", cases.len());
    let tok = Tokenizer::new().unwrap();
    let failures: Vec<String> = cases
        .iter()
        .filter_map(|c| {
            let got = tok.encode_padded(&c.text, 77);
            (got != c.ids).then(|| format!("{:?}\n  clean: {:?}\n  ours:  {:?}\n  open_clip: {:?}", c.text, clip_model::tokenizer::clean::clean(&c.text), trim(&got), trim(&c.ids)))
        })
        .collect();
    assert!(failures.is_empty(), "{} of {} differ:\n{}", failures.len(), cases.len(), failures.join("\n"));
}

fn trim(ids: &[u32]) -> &[u32] {
    let end = ids.iter().rposition(|&i| i != 0).map_or(0, |p| p + 1);
    &ids[..end]
}

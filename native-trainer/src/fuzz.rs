//! Entry points from arbitrary bytes to the data pipeline's parsers, as `train` and `eval
//! retrieval` use them (clip-model's `fuzz` module has the weight, image, text and config ones):
//! the fuzz targets (`fuzz/fuzz_targets/`) run them under libFuzzer and `tests/fuzz_corpus.rs`
//! replays the committed corpus through them.

use anyhow::Result;
use clip_model::fuzz::Scratch;

use crate::data::source::{expand_braces, Source, TableFormat};
use crate::output::sanitised;

/// Opens `bytes` as a data source of the kind `extension` names (`tar`, `tsv`) and reads every
/// sample of one pass; returns (usable, skipped). Reports are made printable as the commands
/// print them. A table's image files are not read (a fuzzed row may name any path).
fn drain(extension: &str, bytes: &[u8]) -> Result<(usize, usize)> {
    let file = Scratch::new(extension, bytes)?;
    let source = Source::open(&file.0.display().to_string(), &TableFormat::default())?;
    let (mut usable, mut skipped) = (0, 0);
    source.pass(0, 0, &mut |sample| {
        match &sample.problem {
            Some(problem) => {
                skipped += 1;
                sanitised(&format!("{}: {problem}", sample.key));
            }
            None => usable += 1,
        }
        true
    });
    Ok((usable, skipped))
}

/// A webdataset tar shard.
pub fn shard(bytes: &[u8]) -> Result<(usize, usize)> {
    drain("tar", bytes)
}

/// A TSV table (open_clip's default columns `filepath` and `title`).
pub fn table(bytes: &[u8]) -> Result<(usize, usize)> {
    drain("tsv", bytes)
}

/// A shard pattern (`dir/shard-{0000..0099}.tar`), expanded to at most 10,000 paths.
pub fn pattern(bytes: &[u8]) -> Result<usize> {
    Ok(expand_braces(&String::from_utf8_lossy(bytes), 10_000)?.len())
}

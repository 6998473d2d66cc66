//! Entry points from arbitrary bytes to the data pipeline's parsers, as `train` and `eval
//! retrieval` use them (clip-model's `fuzz` module has the weight, image, text and config ones):
//! the fuzz targets (`fuzz/fuzz_targets/`) run them under libFuzzer and `tests/fuzz_corpus.rs`
//! replays the committed corpus through them.

use std::path::PathBuf;

use anyhow::Result;

use crate::data::source::{expand_braces, Source, TableFormat};
use crate::output::sanitised;

/// A scratch file holding `bytes`, removed when dropped.
struct Scratch(PathBuf);

impl Scratch {
    fn new(extension: &str, bytes: &[u8]) -> Result<Self> {
        static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let path = std::env::temp_dir().join(format!("clip-burn-fuzz-{}-{n}.{extension}", std::process::id()));
        std::fs::write(&path, bytes)?;
        Ok(Self(path))
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// Reads every sample of one pass; returns (usable, skipped). Reports are made printable as the
/// commands print them. A table's image files are not read (a fuzzed row may name any path).
fn drain(source: &Source) -> (usize, usize) {
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
    (usable, skipped)
}

/// A webdataset tar shard.
pub fn shard(bytes: &[u8]) -> Result<(usize, usize)> {
    let file = Scratch::new("tar", bytes)?;
    let source = Source::open(&file.0.display().to_string(), &TableFormat::default())?;
    Ok(drain(&source))
}

/// A TSV table (open_clip's default columns `filepath` and `title`).
pub fn table(bytes: &[u8]) -> Result<(usize, usize)> {
    let file = Scratch::new("tsv", bytes)?;
    let source = Source::open(&file.0.display().to_string(), &TableFormat::default())?;
    Ok(drain(&source))
}

/// A shard pattern (`dir/shard-{0000..0099}.tar`), expanded to at most 10,000 paths.
pub fn pattern(bytes: &[u8]) -> Result<usize> {
    Ok(expand_braces(&String::from_utf8_lossy(bytes), 10_000)?.len())
}

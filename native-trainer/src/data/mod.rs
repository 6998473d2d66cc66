//! The training data pipeline: a reader thread streams raw samples from the [`Source`] through
//! a seeded shuffle buffer; worker threads decode, augment (random resized crop) and tokenize;
//! a batcher restores the reader's order and assembles batches ahead of the training loop.
//!
//! Everything random is a function of (seed, pass, position in pass), so the batches do not
//! depend on the number of workers, and a run resumed at a saved [`Position`] sees exactly the
//! batches the uninterrupted run would have seen. Samples that cannot be read, decoded or have
//! no caption are skipped and reported with each batch; they never stop training.

pub mod source;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::thread::JoinHandle;

use anyhow::Result;
use clip_model::preprocess::{self, Pixels};
use clip_model::tokenizer::{TokenIds, Tokenizer};
use crossbeam_channel::{bounded, Receiver, Sender};
use serde::{Deserialize, Serialize};

use crate::rng::Rng;
pub use source::{Source, TableFormat};

/// Where the stream stands: pass number and samples consumed (used or skipped) in that pass.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Position {
    pub pass: u64,
    pub offset: u64,
}

/// A training batch, in the stream's order.
pub struct Batch {
    pub images: Vec<Pixels>,
    pub ids: TokenIds,
    /// The stream position just after this batch's last sample: resume here.
    pub end: Position,
    /// Samples skipped since the previous batch: `key: reason`.
    pub skipped: Vec<String>,
}

#[derive(Debug, Clone)]
pub struct LoaderConfig {
    pub batch_size: usize,
    pub image_size: usize,
    pub context_length: usize,
    pub workers: usize,
    /// Batches prepared ahead of the training loop.
    pub prefetch: usize,
    /// Samples in the shuffle buffer (0: stream order).
    pub shuffle_buffer: usize,
    pub seed: u64,
    /// Random resized crop (scale 0.9-1); otherwise the evaluation transform.
    pub augment: bool,
    /// Data parallelism: (rank, world). Rank r takes the samples at stream positions r, r + world,
    /// ... of the shuffled stream every rank reads alike, so the ranks' samples are disjoint and
    /// together are the single-process stream (each with the crop it would have had there).
    pub shard: (usize, usize),
}

enum Work {
    Sample { seq: u64, raw: source::RawSample, end: Position },
    Fatal { seq: u64, message: String },
}

enum Done {
    Sample { end: Position, result: std::result::Result<(Pixels, Vec<u32>), String> },
    Fatal(String),
}

/// Batches from background threads; dropping it stops them.
pub struct Loader {
    batches: Receiver<Result<Batch, String>>,
    threads: Vec<JoinHandle<()>>,
}

impl Loader {
    pub fn new(source: Arc<Source>, config: LoaderConfig, start: Position) -> Result<Self> {
        let tokenizer = Arc::new(Tokenizer::new()?);
        let workers = config.workers.max(1);
        let (work_tx, work_rx) = bounded::<Work>(config.batch_size.max(16) * 2);
        let (done_tx, done_rx) = bounded::<(u64, Done)>(config.batch_size.max(16) * 2);
        let (batch_tx, batch_rx) = bounded(config.prefetch.max(1));
        let mut threads = Vec::new();
        {
            let (source, config) = (source.clone(), config.clone());
            threads.push(std::thread::spawn(move || read(&source, &config, start, &work_tx)));
        }
        for _ in 0..workers {
            let (work_rx, done_tx, tokenizer, config) = (work_rx.clone(), done_tx.clone(), tokenizer.clone(), config.clone());
            threads.push(std::thread::spawn(move || {
                for work in work_rx {
                    let (seq, done) = match work {
                        Work::Sample { seq, raw, end } => (seq, Done::Sample { end, result: prepare(raw, end, &config, &tokenizer) }),
                        Work::Fatal { seq, message } => (seq, Done::Fatal(message)),
                    };
                    if done_tx.send((seq, done)).is_err() {
                        return;
                    }
                }
            }));
        }
        drop(done_tx);
        threads.push(std::thread::spawn(move || assemble(done_rx, &config, &batch_tx)));
        Ok(Self { batches: batch_rx, threads })
    }

    /// The next batch (blocks while the workers prepare it).
    pub fn next_batch(&mut self) -> Result<Batch> {
        match self.batches.recv() {
            Ok(Ok(batch)) => Ok(batch),
            Ok(Err(message)) => Err(anyhow::anyhow!(message)),
            Err(_) => Err(anyhow::anyhow!("the data loader stopped unexpectedly")),
        }
    }
}

impl Drop for Loader {
    fn drop(&mut self) {
        // Closing the batch channel makes every thread's next send fail, so they all return.
        let (_, closed) = bounded(0);
        self.batches = closed;
        for handle in self.threads.drain(..) {
            let _ = handle.join();
        }
    }
}

/// Reader thread: passes from `start` on, through the shuffle buffer, numbered.
fn read(source: &Source, config: &LoaderConfig, start: Position, tx: &Sender<Work>) {
    let mut seq = 0u64;
    let mut pass = start.pass;
    let mut skip = start.offset;
    loop {
        let mut buffer = ShuffleBuffer::new(config.shuffle_buffer, Rng::stream(config.seed, &[pass, 0x5348_5546]));
        let mut offset = 0u64;
        let mut seen = 0u64;
        let send = |raw: source::RawSample, offset: &mut u64, seq: &mut u64| -> bool {
            *offset += 1;
            if *offset <= skip || (*offset - 1) % config.shard.1 as u64 != config.shard.0 as u64 {
                return true;
            }
            *seq += 1;
            tx.send(Work::Sample { seq: *seq - 1, raw, end: Position { pass, offset: *offset } }).is_ok()
        };
        let completed = source.pass(config.seed, pass, &mut |raw| {
            seen += 1;
            match buffer.push(raw) {
                Some(out) => send(out, &mut offset, &mut seq),
                None => true,
            }
        });
        if !completed {
            return;
        }
        for raw in buffer.drain() {
            if !send(raw, &mut offset, &mut seq) {
                return;
            }
        }
        if seen == 0 {
            let _ = tx.send(Work::Fatal { seq, message: "the training data has no samples".into() });
            return;
        }
        pass += 1;
        skip = 0;
    }
}

/// Worker: bytes -> pixels (augmented) and caption -> token ids.
fn prepare(
    raw: source::RawSample,
    end: Position,
    config: &LoaderConfig,
    tokenizer: &Tokenizer,
) -> std::result::Result<(Pixels, Vec<u32>), String> {
    let fail = |reason: String| format!("{}: {reason}", raw.key);
    if let Some(problem) = &raw.problem {
        return Err(fail(problem.clone()));
    }
    let bytes = raw.image.as_ref().ok_or_else(|| fail("no image".into()))?.read().map_err(|e| fail(e.to_string()))?;
    let decoded = preprocess::decode(&bytes).map_err(|e| fail(e.to_string()))?;
    let pixels = if config.augment {
        let mut rng = Rng::stream(config.seed, &[0x4155_4755, end.pass, end.offset]);
        let (w, h) = (decoded.image.width, decoded.image.height);
        let crop = preprocess::random_crop_box(w, h, (0.9, 1.0), &mut || rng.uniform());
        preprocess::resized_crop(&decoded, crop, config.image_size)
    } else {
        preprocess::preprocess(&decoded, config.image_size)
    }
    .map_err(|e| fail(e.to_string()))?;
    let caption = raw.caption.as_deref().unwrap_or_default();
    Ok((pixels, tokenizer.encode_padded(caption, config.context_length)))
}

/// Consecutive unusable samples after which the data is declared unusable.
const UNUSABLE_LIMIT: usize = 1000;

/// Batcher: puts worker results back in stream order and groups them.
fn assemble(done: Receiver<(u64, Done)>, config: &LoaderConfig, tx: &Sender<Result<Batch, String>>) {
    let mut waiting = BTreeMap::new();
    let mut next = 0u64;
    let (mut images, mut ids, mut skipped) = (Vec::new(), Vec::new(), Vec::new());
    let mut failures_in_a_row = 0usize;
    for (seq, item) in done {
        waiting.insert(seq, item);
        while let Some(item) = waiting.remove(&next) {
            next += 1;
            match item {
                Done::Fatal(message) => {
                    let _ = tx.send(Err(message));
                    return;
                }
                Done::Sample { end, result } => {
                    match result {
                        Ok((pixels, tokens)) => {
                            images.push(pixels);
                            ids.extend(tokens);
                            failures_in_a_row = 0;
                        }
                        Err(reason) => {
                            failures_in_a_row += 1;
                            if failures_in_a_row >= UNUSABLE_LIMIT {
                                let _ = tx.send(Err(format!("the last {UNUSABLE_LIMIT} training samples were all unusable, e.g. {reason}")));
                                return;
                            }
                            skipped.push(reason);
                        }
                    }
                    if images.len() == config.batch_size {
                        let batch = Batch {
                            ids: TokenIds { ids: std::mem::take(&mut ids), batch: images.len(), context_length: config.context_length },
                            images: std::mem::take(&mut images),
                            end,
                            skipped: std::mem::take(&mut skipped),
                        };
                        if tx.send(Ok(batch)).is_err() {
                            return;
                        }
                    }
                }
            }
        }
    }
}

/// webdataset-style shuffle buffer: each new sample swaps out a random one once full.
struct ShuffleBuffer<T> {
    items: Vec<T>,
    capacity: usize,
    rng: Rng,
}

impl<T> ShuffleBuffer<T> {
    fn new(capacity: usize, rng: Rng) -> Self {
        Self { items: Vec::with_capacity(capacity), capacity, rng }
    }

    fn push(&mut self, item: T) -> Option<T> {
        if self.capacity <= 1 {
            return Some(item);
        }
        if self.items.len() < self.capacity {
            self.items.push(item);
            return None;
        }
        let i = self.rng.below(self.capacity);
        Some(std::mem::replace(&mut self.items[i], item))
    }

    fn drain(mut self) -> Vec<T> {
        self.rng.shuffle(&mut self.items);
        self.items
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::synth::{Pairs, Spec};

    /// A shard of `n` synth samples, plus a corrupt image, a sample without caption, and a
    /// caption given as JSON.
    fn shard(dir: &std::path::Path, name: &str, n: usize, seed: u64) -> std::path::PathBuf {
        let mut builder = tar::Builder::new(Vec::new());
        let mut add = |name: String, bytes: &[u8]| {
            let mut header = tar::Header::new_gnu();
            header.set_size(bytes.len() as u64);
            header.set_mode(0o644);
            header.set_cksum();
            builder.append_data(&mut header, name, bytes).unwrap();
        };
        for i in 0..n {
            let mut rng = Rng::stream(seed, &[i as u64]);
            let spec = Spec::sample(&mut rng, Pairs::Seen);
            let png = crate::commands::synth::png(&spec.render(16), 16).unwrap();
            add(format!("s{i:04}.png"), &png);
            add(format!("s{i:04}.txt"), spec.caption(&mut rng).as_bytes());
        }
        add("bad.jpg".into(), b"not a jpeg");
        add("bad.txt".into(), b"a broken picture");
        let png = crate::commands::synth::png(&[128u8; 16 * 16 * 3], 16).unwrap();
        add("nocap.png".into(), &png);
        add("json.png".into(), &png);
        add("json.json".into(), br#"{"caption": "a gray square", "width": 16}"#);
        let path = dir.join(name);
        std::fs::write(&path, builder.into_inner().unwrap()).unwrap();
        path
    }

    fn config(workers: usize) -> LoaderConfig {
        LoaderConfig {
            batch_size: 8,
            image_size: 16,
            context_length: 16,
            workers,
            prefetch: 2,
            shuffle_buffer: 16,
            seed: 3,
            augment: true,
            shard: (0, 1),
        }
    }

    fn fingerprint(batch: &Batch) -> (Vec<u32>, u64) {
        let sum: f64 = batch.images.iter().flat_map(|p| p.data.iter()).map(|&v| v as f64).sum();
        (batch.ids.ids.clone(), sum.to_bits())
    }

    #[test]
    fn batches_are_independent_of_workers_and_resume_exactly() {
        let dir = std::env::temp_dir().join(format!("clip-burn-loader-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        shard(&dir, "a-0.tar", 20, 1);
        shard(&dir, "a-1.tar", 20, 2);
        let pattern = format!("{}/a-{{0..1}}.tar", dir.display());
        let table = TableFormat { img_key: "filepath".into(), caption_key: "title".into(), separator: b'\t' };
        let source = Arc::new(Source::open(&pattern, &table).unwrap());

        let mut one = Loader::new(source.clone(), config(1), Position::default()).unwrap();
        let mut three = Loader::new(source.clone(), config(3), Position::default()).unwrap();
        let mut batches = Vec::new();
        let mut skipped = Vec::new();
        for _ in 0..12 {
            let (a, b) = (one.next_batch().unwrap(), three.next_batch().unwrap());
            assert_eq!(fingerprint(&a), fingerprint(&b));
            assert_eq!(a.end, b.end);
            skipped.extend(a.skipped.clone());
            batches.push(a);
        }
        // 42 usable samples per pass (40 + the JSON caption), 4 broken ones reported per pass.
        assert!(batches.iter().any(|b| b.end.pass >= 1), "12 batches of 8 span two passes");
        assert!(skipped.iter().any(|s| s.contains("bad") && s.contains("decode")), "{skipped:?}");
        assert!(skipped.iter().any(|s| s.contains("nocap") && s.contains("no caption")), "{skipped:?}");
        assert_eq!(skipped.len() % 2, 0);

        // Resuming at a batch's end position gives the batches that followed it.
        let mut resumed = Loader::new(source, config(2), batches[4].end).unwrap();
        for expected in &batches[5..] {
            assert_eq!(fingerprint(&resumed.next_batch().unwrap()), fingerprint(expected));
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// Two ranks' streams are disjoint and together are the single-process stream.
    #[test]
    fn ranks_split_the_stream() {
        let dir = std::env::temp_dir().join(format!("clip-burn-loader-ranks-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        shard(&dir, "r-0.tar", 20, 1);
        let table = TableFormat { img_key: "filepath".into(), caption_key: "title".into(), separator: b'\t' };
        let source = Arc::new(Source::open(&format!("{}/r-0.tar", dir.display()), &table).unwrap());
        let first_pass = |shard: (usize, usize)| {
            let mut loader = Loader::new(source.clone(), LoaderConfig { batch_size: 1, shard, ..config(2) }, Position::default()).unwrap();
            let mut samples = Vec::new();
            loop {
                let b = loader.next_batch().unwrap();
                if b.end.pass > 0 {
                    break;
                }
                samples.push((b.end.offset, fingerprint(&b)));
            }
            samples
        };
        let all = first_pass((0, 1));
        let (even, odd) = (first_pass((0, 2)), first_pass((1, 2)));
        assert!(even.iter().all(|(o, _)| o % 2 == 1) && odd.iter().all(|(o, _)| o % 2 == 0), "rank r takes offsets r, r + 2, ...");
        let mut union: Vec<_> = even.into_iter().chain(odd).collect();
        union.sort_by_key(|(o, _)| *o);
        assert_eq!(union, all);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_missing_shard_is_reported_and_an_empty_source_is_an_error() {
        let dir = std::env::temp_dir().join(format!("clip-burn-loader-missing-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        shard(&dir, "b-0.tar", 10, 1);
        let pattern = format!("{}/b-{{0..1}}.tar", dir.display());
        let table = TableFormat { img_key: "filepath".into(), caption_key: "title".into(), separator: b'\t' };
        let source = Arc::new(Source::open(&pattern, &table).unwrap());
        let mut loader = Loader::new(source, config(2), Position::default()).unwrap();
        let mut skipped = Vec::new();
        for _ in 0..3 {
            skipped.extend(loader.next_batch().unwrap().skipped);
        }
        assert!(skipped.iter().any(|s| s.contains("b-1.tar") && s.contains("missing shard")), "{skipped:?}");

        let empty = dir.join("empty.tar");
        std::fs::write(&empty, tar::Builder::new(Vec::new()).into_inner().unwrap()).unwrap();
        let source = Arc::new(Source::open(empty.to_str().unwrap(), &table).unwrap());
        let err = Loader::new(source, config(1), Position::default()).unwrap().next_batch().err().unwrap();
        assert!(err.to_string().contains("no samples"), "{err}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn shuffle_buffer_keeps_every_item_once() {
        let mut buffer = ShuffleBuffer::new(10, Rng::new(1));
        let mut out: Vec<u32> = (0..100).filter_map(|i| buffer.push(i)).collect();
        out.extend(buffer.drain());
        assert_ne!(out, (0..100).collect::<Vec<_>>());
        out.sort();
        assert_eq!(out, (0..100).collect::<Vec<_>>());
    }
}

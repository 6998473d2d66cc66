//! `clip-burn synth`: writes the synthetic data set (see `crate::synth`) in the formats the
//! trainer reads: webdataset tar shards, CSV + image files, an image folder for zero-shot
//! evaluation (with `classnames.txt` and `templates.txt`) and a captioned split for retrieval.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use crate::rng::Rng;
use crate::synth::{self, Pairs, Spec};
use crate::usage::between;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Output directory.
    #[arg(long)]
    out: PathBuf,
    /// Training image-caption pairs (seen colour-shape pairs only).
    #[arg(long, default_value_t = 40_000, value_parser = between(0usize, 1_000_000_000))]
    train_samples: usize,
    /// Captioned validation pairs for retrieval (seen pairs, new pictures; held in memory while written).
    #[arg(long, default_value_t = 1_000, value_parser = between(0usize, 100_000))]
    val_samples: usize,
    /// Zero-shot evaluation images per held-out class (16 classes).
    #[arg(long, default_value_t = 25, value_parser = between(0usize, 100_000))]
    eval_per_class: usize,
    /// Side of the square pictures, in pixels.
    #[arg(long, default_value_t = 64, value_parser = between(8usize, 1024))]
    image_size: usize,
    /// Samples per webdataset shard (each shard is held in memory while written).
    #[arg(long, default_value_t = 5_000, value_parser = between(1usize, 100_000))]
    shard_size: usize,
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Training set formats: wds (tar shards), csv (CSV + image files), or both.
    #[arg(long, value_delimiter = ',', default_value = "wds,csv", value_parser = ["wds", "csv"])]
    formats: Vec<String>,
}

/// One generated training or validation pair.
struct Item {
    key: String,
    png: Vec<u8>,
    caption: String,
    json: String,
}

const TRAIN: u64 = 0;
const VAL: u64 = 1;
const ZERO_SHOT: u64 = 2;

pub fn run(args: Args) -> Result<()> {
    std::fs::create_dir_all(&args.out).with_context(|| format!("--out {}", args.out.display()))?;
    let bar = crate::model_args::progress((args.train_samples + args.val_samples + 16 * args.eval_per_class) as u64, "pictures");

    // Training pairs, in shards.
    let wds = args.formats.iter().any(|f| f == "wds");
    let csv = args.formats.iter().any(|f| f == "csv");
    let mut csv_rows = Vec::new();
    if csv {
        std::fs::create_dir_all(args.out.join("csv/images"))?;
    }
    if wds {
        std::fs::create_dir_all(args.out.join("wds"))?;
    }
    let shards = args.train_samples.div_ceil(args.shard_size);
    for shard in 0..shards {
        let range = shard * args.shard_size..((shard + 1) * args.shard_size).min(args.train_samples);
        let items = generate(range, &args, TRAIN, Pairs::Seen, &bar)?;
        if wds {
            write_tar(&args.out.join(format!("wds/train-{shard:04}.tar")), &items)?;
        }
        if csv {
            for item in &items {
                let rel = format!("images/{}.png", item.key);
                write(&args.out.join("csv").join(&rel), &item.png)?;
                csv_rows.push((rel, item.caption.clone()));
            }
        }
    }
    if csv {
        write_csv(&args.out.join("csv/train.csv"), &csv_rows)?;
    }

    // Retrieval validation pairs: CSV + images.
    let items = generate(0..args.val_samples, &args, VAL, Pairs::Seen, &bar)?;
    std::fs::create_dir_all(args.out.join("val/images"))?;
    let mut rows = Vec::new();
    for item in &items {
        let rel = format!("images/{}.png", item.key);
        write(&args.out.join("val").join(&rel), &item.png)?;
        rows.push((rel, item.caption.clone()));
    }
    write_csv(&args.out.join("val/val.csv"), &rows)?;

    // Zero-shot: an image folder of the held-out pairs, one folder per class.
    let zs = args.out.join("zero-shot");
    let classes = synth::held_out_classes();
    for (ci, &(colour, shape)) in classes.iter().enumerate() {
        let name = synth::class_name(colour, shape);
        let dir = zs.join(format!("{ci:02}_{}", name.replace(' ', "_")));
        std::fs::create_dir_all(&dir)?;
        for i in 0..args.eval_per_class {
            let mut rng = Rng::stream(args.seed, &[ZERO_SHOT, ci as u64, i as u64]);
            let spec = Spec::with(colour, shape, &mut rng);
            write(&dir.join(format!("{i:04}.png")), &png(&spec.render(args.image_size), args.image_size)?)?;
            bar.inc(1);
        }
    }
    let names: Vec<String> = classes.iter().map(|&(c, s)| synth::class_name(c, s)).collect();
    write(&zs.join("classnames.txt"), (names.join("\n") + "\n").as_bytes())?;
    write(&zs.join("templates.txt"), (synth::ZERO_SHOT_TEMPLATES.join("\n") + "\n").as_bytes())?;
    bar.finish_and_clear();

    let info = serde_json::json!({
        "seed": args.seed,
        "image_size": args.image_size,
        "train_samples": args.train_samples,
        "val_samples": args.val_samples,
        "zero_shot_classes": names,
        "zero_shot_per_class": args.eval_per_class,
        "train_shards": if wds { format!("wds/train-{{0000..{:04}}}.tar", shards.saturating_sub(1)) } else { String::new() },
    });
    write(&args.out.join("info.json"), serde_json::to_string_pretty(&info)?.as_bytes())?;
    eprintln!(
        "wrote {} training pairs{}{}, {} validation pairs and {} zero-shot images of {} held-out classes to {}",
        args.train_samples,
        if wds { format!(" ({shards} shards in wds/)") } else { String::new() },
        if csv { " (csv/train.csv)" } else { "" },
        args.val_samples,
        16 * args.eval_per_class,
        classes.len(),
        args.out.display()
    );
    Ok(())
}

/// Renders samples `range` of `split` on all cores, in order.
fn generate(range: std::ops::Range<usize>, args: &Args, split: u64, pairs: Pairs, bar: &indicatif::ProgressBar) -> Result<Vec<Item>> {
    let indices: Vec<usize> = range.collect();
    let threads = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
    let chunk = indices.len().div_ceil(threads).max(1);
    let prefix = if split == TRAIN { "train" } else { "val" };
    std::thread::scope(|scope| {
        let handles: Vec<_> = indices
            .chunks(chunk)
            .map(|part| {
                scope.spawn(move || -> Result<Vec<Item>> {
                    part.iter()
                        .map(|&i| {
                            let mut rng = Rng::stream(args.seed, &[split, i as u64]);
                            let spec = Spec::sample(&mut rng, pairs);
                            let caption = spec.caption(&mut rng);
                            let png = png(&spec.render(args.image_size), args.image_size)?;
                            bar.inc(1);
                            Ok(Item { key: format!("{prefix}{i:07}"), png, caption, json: serde_json::to_string(&spec)? })
                        })
                        .collect()
                })
            })
            .collect();
        let mut out = Vec::with_capacity(indices.len());
        for h in handles {
            out.extend(h.join().map_err(|_| anyhow::anyhow!("a rendering thread panicked"))??);
        }
        Ok(out)
    })
}

pub fn png(rgb: &[u8], size: usize) -> Result<Vec<u8>> {
    let img = image::RgbImage::from_raw(size as u32, size as u32, rgb.to_vec()).context("picture buffer size")?;
    let mut out = std::io::Cursor::new(Vec::new());
    img.write_to(&mut out, image::ImageFormat::Png)?;
    Ok(out.into_inner())
}

/// A webdataset shard: `key.png`, `key.txt` (caption), `key.json` (attributes) per sample.
fn write_tar(path: &Path, items: &[Item]) -> Result<()> {
    let mut builder = tar::Builder::new(Vec::new());
    for item in items {
        for (ext, bytes) in [("png", &item.png[..]), ("txt", item.caption.as_bytes()), ("json", item.json.as_bytes())] {
            let mut header = tar::Header::new_gnu();
            header.set_size(bytes.len() as u64);
            header.set_mode(0o644);
            header.set_mtime(0);
            header.set_cksum();
            builder.append_data(&mut header, format!("{}.{ext}", item.key), bytes)?;
        }
    }
    write(path, &builder.into_inner()?)
}

/// open_clip's CSV defaults: tab-separated, columns `filepath` and `title`.
fn write_csv(path: &Path, rows: &[(String, String)]) -> Result<()> {
    let mut writer = csv::WriterBuilder::new().delimiter(b'\t').from_writer(Vec::new());
    writer.write_record(["filepath", "title"])?;
    for (file, caption) in rows {
        writer.write_record([file, caption])?;
    }
    write(path, &writer.into_inner().map_err(|e| anyhow::anyhow!("{e}"))?)
}

fn write(path: &Path, bytes: &[u8]) -> Result<()> {
    std::fs::write(path, bytes).with_context(|| format!("{}", path.display()))
}

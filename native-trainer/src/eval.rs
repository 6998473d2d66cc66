//! Evaluation: zero-shot classification on an image folder (top-1, top-5) and image-text
//! retrieval (recall at 1, 5, 10 in both directions), as open_clip reports them.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use burn::prelude::*;
use clip_model::preprocess::{self, Pixels};
use clip_model::tokenizer::Tokenizer;
use clip_model::{normalize, zero_shot, Clip};
use serde::Serialize;

use crate::commands::{load_image, rows};
use crate::output::Skipped;
use crate::data::source::{RawSample, Source, IMAGE_EXTENSIONS};

/// A torchvision `ImageFolder`: one sub-directory per class, sorted by name. Class names come
/// from `classnames.txt` (one per line, in folder order) when present, else from the folder
/// names with `_` as spaces.
pub struct ImageFolder {
    pub classes: Vec<String>,
    pub images: Vec<(PathBuf, usize)>,
}

impl ImageFolder {
    pub fn open(dir: &Path) -> Result<Self> {
        let mut folders: Vec<PathBuf> = std::fs::read_dir(dir)
            .with_context(|| format!("{}", dir.display()))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.is_dir())
            .collect();
        folders.sort();
        if folders.is_empty() {
            bail!("{}: no class folders", dir.display());
        }
        let names_file = dir.join("classnames.txt");
        let classes: Vec<String> = if names_file.is_file() {
            let text = std::fs::read_to_string(&names_file).with_context(|| format!("{}", names_file.display()))?;
            let names: Vec<String> = text.lines().map(str::trim).filter(|l| !l.is_empty()).map(String::from).collect();
            if names.len() != folders.len() {
                bail!("{}: {} names for {} class folders", names_file.display(), names.len(), folders.len());
            }
            match_by_name(names, &folders, &names_file)
        } else {
            folders.iter().map(|f| f.file_name().unwrap_or_default().to_string_lossy().replace('_', " ")).collect()
        };
        let mut images = Vec::new();
        for (class, folder) in folders.iter().enumerate() {
            let mut files: Vec<PathBuf> = std::fs::read_dir(folder)?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| {
                    p.extension().and_then(|e| e.to_str()).is_some_and(|e| IMAGE_EXTENSIONS.contains(&e.to_ascii_lowercase().as_str()))
                })
                .collect();
            files.sort();
            images.extend(files.into_iter().map(|f| (f, class)));
        }
        if images.is_empty() {
            bail!("{}: no images in the class folders", dir.display());
        }
        Ok(Self { classes, images })
    }
}

/// torchvision's convention: line i of classnames.txt names the i-th folder in sorted order.
/// When the file holds exactly the folders' names (or them with `_` as spaces) in another
/// order, that convention would pair each folder with another class's name: each folder keeps
/// its own name instead, and a note says so.
fn match_by_name(names: Vec<String>, folders: &[PathBuf], file: &Path) -> Vec<String> {
    let folder_names: Vec<String> = folders.iter().map(|f| f.file_name().unwrap_or_default().to_string_lossy().into_owned()).collect();
    let spellings: [fn(&String) -> String; 2] = [|n| n.clone(), |n| n.replace('_', " ")];
    for spelling in spellings {
        let own: Vec<String> = folder_names.iter().map(spelling).collect();
        if own == names {
            return names;
        }
        let (mut a, mut b) = (own.clone(), names.clone());
        a.sort();
        b.sort();
        if a == b {
            eprintln!(
                "note: {} lists the class folders' own names in another order than the folders' sorted one; each folder is paired with its own name",
                crate::output::sanitised(&file.display().to_string())
            );
            return own;
        }
    }
    names
}

/// Templates from a file (one per line, each with `{}`), or the folder's `templates.txt`, or
/// OpenAI's 80 ImageNet templates.
pub fn templates(file: Option<&Path>, folder: &Path) -> Result<Vec<String>> {
    let file = file.map(Path::to_path_buf).or_else(|| Some(folder.join("templates.txt")).filter(|p| p.is_file()));
    match file {
        Some(path) => {
            let text = std::fs::read_to_string(&path).with_context(|| format!("{}", path.display()))?;
            let list: Vec<String> = text.lines().map(str::trim).filter(|l| !l.is_empty()).map(String::from).collect();
            if list.is_empty() {
                bail!("{}: no templates", path.display());
            }
            Ok(list)
        }
        None => Ok(zero_shot::openai_imagenet_templates().into_iter().map(String::from).collect()),
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct ZeroShot {
    pub top1: f64,
    pub top5: f64,
    /// Images scored (unreadable ones are skipped and reported, not counted).
    pub images: usize,
    pub classes: usize,
    pub skipped: usize,
}

/// Zero-shot accuracy of `model` on `folder` with prompt ensembling over `templates`. An image
/// that cannot be read or decoded is skipped and reported on stderr.
pub fn zero_shot(model: &Clip, folder: &ImageFolder, templates: &[String], batch: usize, device: &Device) -> Result<ZeroShot> {
    let tokenizer = Tokenizer::new()?;
    let classifier = zero_shot::classifier(model, &tokenizer, &folder.classes, templates, 256, device)?;
    let (mut top1, mut top5, mut scored) = (0usize, 0usize, 0usize);
    let mut skipped = Skipped::new("zero-shot evaluation", "images");
    for chunk in folder.images.chunks(batch.max(1)) {
        let (pixels, kept) = decodable(chunk, |(path, _)| load_image(path, model), &mut skipped, |_, e| format!("{e:#}"));
        if pixels.is_empty() {
            continue;
        }
        let features = model.encode_image(Pixels::batch(&pixels, device)?);
        let scores = normalize(features).matmul(classifier.clone().transpose());
        for (row, (_, label)) in rows(scores)?.iter().zip(kept) {
            let rank = row.iter().filter(|&&s| s > row[*label]).count();
            top1 += (rank == 0) as usize;
            top5 += (rank < 5) as usize;
        }
        scored += pixels.len();
    }
    skipped.report();
    if scored == 0 {
        bail!("zero-shot evaluation: none of the {} images could be read", folder.images.len());
    }
    let f = |x: usize| x as f64 / scored as f64;
    Ok(ZeroShot { top1: f(top1), top5: f(top5), images: scored, classes: folder.classes.len(), skipped: skipped.count() })
}

/// The images of `chunk` that decode, each with its item; each other one goes to `skipped`, its
/// reason made by `reason` from its index in the chunk and the error.
fn decodable<'a, T>(
    chunk: &'a [T],
    decode: impl Fn(&T) -> Result<Pixels>,
    skipped: &mut Skipped,
    reason: impl Fn(usize, anyhow::Error) -> String,
) -> (Vec<Pixels>, Vec<&'a T>) {
    let (mut pixels, mut kept) = (Vec::with_capacity(chunk.len()), Vec::with_capacity(chunk.len()));
    for (i, item) in chunk.iter().enumerate() {
        match decode(item) {
            Ok(p) => {
                pixels.push(p);
                kept.push(item);
            }
            Err(e) => skipped.add(reason(i, e)),
        }
    }
    (pixels, kept)
}

#[derive(Debug, Clone, Serialize)]
pub struct Retrieval {
    pub image_to_text_r1: f64,
    pub image_to_text_r5: f64,
    pub image_to_text_r10: f64,
    pub text_to_image_r1: f64,
    pub text_to_image_r5: f64,
    pub text_to_image_r10: f64,
    pub pairs: usize,
}

/// Reads up to `limit` usable pairs of `source` (one pass, seed 0 order); broken ones are
/// skipped and reported on stderr.
pub fn read_pairs(source: &Source, limit: usize) -> Vec<(Vec<u8>, String)> {
    let mut pairs = Vec::new();
    let mut skipped = Skipped::new("retrieval data", "pairs");
    source.pass(0, 0, &mut |raw: RawSample| {
        let bytes = match (&raw.problem, &raw.image) {
            (Some(problem), _) => Err(problem.clone()),
            (None, Some(image)) => image.read().map(|b| b.into_owned()).map_err(|e| e.to_string()),
            (None, None) => Err("no image".into()),
        };
        match (bytes, raw.caption) {
            (Ok(bytes), Some(caption)) => pairs.push((bytes, caption)),
            (Err(problem), _) => skipped.add(format!("{}: {problem}", raw.key)),
            (Ok(_), None) => skipped.add(format!("{}: no caption", raw.key)),
        }
        pairs.len() < limit
    });
    skipped.report();
    pairs
}

/// Recall@K of image->text and text->image retrieval over `pairs` (pair i is the only match
/// of image i and of caption i).
pub fn retrieval(model: &Clip, pairs: &[(Vec<u8>, String)], batch: usize, device: &Device) -> Result<Retrieval> {
    if pairs.is_empty() {
        bail!("no image-caption pairs to evaluate retrieval on");
    }
    let tokenizer = Tokenizer::new()?;
    let size = model.config.vision_cfg.image_size;
    let mut image_features = Vec::new();
    let mut text_features = Vec::new();
    let mut skipped = Skipped::new("retrieval evaluation", "pairs");
    let mut n = 0;
    let batch = batch.max(1);
    for (c, chunk) in pairs.chunks(batch).enumerate() {
        let decode = |(bytes, _): &(Vec<u8>, String)| Ok(preprocess::preprocess_bytes(bytes, size)?);
        let (pixels, kept) = decodable(chunk, decode, &mut skipped, |i, e| format!("pair {}: {e}", c * batch + i + 1));
        if pixels.is_empty() {
            continue;
        }
        let captions: Vec<&str> = kept.iter().map(|(_, caption)| caption.as_str()).collect();
        n += pixels.len();
        image_features.push(normalize(model.encode_image(Pixels::batch(&pixels, device)?)));
        text_features.push(normalize(zero_shot::encode_texts(model, &tokenizer, &captions, batch, device)?));
    }
    skipped.report();
    if n == 0 {
        bail!("retrieval evaluation: none of the {} images could be decoded", pairs.len());
    }
    let images = Tensor::cat(image_features, 0);
    let texts = Tensor::cat(text_features, 0);
    let sims = rows(images.matmul(texts.transpose()))?;
    let rank_of = |scores: &dyn Fn(usize) -> f32, positive: usize| (0..n).filter(|&j| scores(j) > scores(positive)).count();
    let (mut i2t, mut t2i) = ([0usize; 3], [0usize; 3]);
    for i in 0..n {
        let r = rank_of(&|j| sims[i][j], i);
        let c = rank_of(&|j| sims[j][i], i);
        for (k, cut) in [1, 5, 10].iter().enumerate() {
            i2t[k] += (r < *cut) as usize;
            t2i[k] += (c < *cut) as usize;
        }
    }
    let f = |x: usize| x as f64 / n as f64;
    Ok(Retrieval {
        image_to_text_r1: f(i2t[0]),
        image_to_text_r5: f(i2t[1]),
        image_to_text_r10: f(i2t[2]),
        text_to_image_r1: f(t2i[0]),
        text_to_image_r5: f(t2i[1]),
        text_to_image_r10: f(t2i[2]),
        pairs: n,
    })
}

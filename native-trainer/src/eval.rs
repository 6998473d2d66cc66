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
            names
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
    pub images: usize,
    pub classes: usize,
}

/// Zero-shot accuracy of `model` on `folder` with prompt ensembling over `templates`.
pub fn zero_shot(model: &Clip, folder: &ImageFolder, templates: &[String], batch: usize, device: &Device) -> Result<ZeroShot> {
    let tokenizer = Tokenizer::new()?;
    let classifier = zero_shot::classifier(model, &tokenizer, &folder.classes, templates, 256, device)?;
    let (mut top1, mut top5) = (0usize, 0usize);
    for chunk in folder.images.chunks(batch.max(1)) {
        let pixels: Vec<Pixels> = chunk.iter().map(|(p, _)| load_image(p, model)).collect::<Result<_>>()?;
        let features = model.encode_image(Pixels::batch(&pixels, device)?);
        let scores = normalize(features).matmul(classifier.clone().transpose());
        for (row, (_, label)) in rows(scores)?.iter().zip(chunk) {
            let rank = row.iter().filter(|&&s| s > row[*label]).count();
            top1 += (rank == 0) as usize;
            top5 += (rank < 5) as usize;
        }
    }
    let n = folder.images.len();
    Ok(ZeroShot { top1: top1 as f64 / n as f64, top5: top5 as f64 / n as f64, images: n, classes: folder.classes.len() })
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

/// Reads up to `limit` usable pairs of `source` (one pass, seed 0 order), skipping broken ones.
pub fn read_pairs(source: &Source, limit: usize) -> Vec<(Vec<u8>, String)> {
    let mut pairs = Vec::new();
    source.pass(0, 0, &mut |raw: RawSample| {
        let bytes = raw.image.as_ref().and_then(|image| image.read().ok()).map(|b| b.into_owned());
        if let (Some(bytes), Some(caption)) = (bytes, raw.caption) {
            pairs.push((bytes, caption));
        }
        pairs.len() < limit
    });
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
    for chunk in pairs.chunks(batch.max(1)) {
        let pixels: Vec<Pixels> = chunk
            .iter()
            .map(|(bytes, _)| preprocess::preprocess_bytes(bytes, size).map_err(anyhow::Error::from))
            .collect::<Result<_>>()?;
        image_features.push(normalize(model.encode_image(Pixels::batch(&pixels, device)?)));
        let captions: Vec<&str> = chunk.iter().map(|(_, c)| c.as_str()).collect();
        text_features.push(normalize(zero_shot::encode_texts(model, &tokenizer, &captions, batch, device)?));
    }
    let images = Tensor::cat(image_features, 0);
    let texts = Tensor::cat(text_features, 0);
    let n = pairs.len();
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

pub mod bench;
pub mod classify;
pub mod convert;
pub mod embed;
pub mod eval;
pub mod launch;
pub mod plot;
pub mod synth;
pub mod tokenize;
pub mod train;

use std::path::Path;

use anyhow::{Context, Result};
use burn::prelude::*;
use clip_model::preprocess::{self, Pixels};
use clip_model::Clip;

/// Reads a tensor back to the host as f32 values, row-major.
pub fn host<const D: usize>(t: Tensor<D>) -> Result<Vec<f32>> {
    t.cast(burn::tensor::FloatDType::F32).into_data().try_into_vec::<f32>().map_err(|e| anyhow::anyhow!("reading a tensor back: {e:?}"))
}

/// Reads a `[N, E]` tensor back to the host, row by row.
pub fn rows(t: Tensor<2>) -> Result<Vec<Vec<f32>>> {
    let [_, e] = t.dims();
    Ok(host(t)?.chunks(e.max(1)).map(|r| r.to_vec()).collect())
}

/// Decodes and preprocesses an image file for `model`.
pub fn load_image(path: &Path, model: &Clip) -> Result<Pixels> {
    let bytes = std::fs::read(path).with_context(|| format!("{}", path.display()))?;
    preprocess::preprocess_bytes(&bytes, model.config.vision_cfg.image_size).with_context(|| format!("{}", path.display()))
}

/// Image features `[N, E]` for image files, encoded in batches with a progress bar.
pub fn encode_images(model: &Clip, paths: &[std::path::PathBuf], batch: usize, device: &Device) -> Result<Vec<Vec<f32>>> {
    let bar = crate::model_args::progress(paths.len() as u64, "images");
    let mut out = Vec::with_capacity(paths.len());
    for chunk in paths.chunks(batch.max(1)) {
        let pixels: Vec<Pixels> = chunk.iter().map(|p| load_image(p, model)).collect::<Result<_>>()?;
        out.extend(rows(model.encode_image(Pixels::batch(&pixels, device)?))?);
        bar.inc(chunk.len() as u64);
    }
    bar.finish_and_clear();
    Ok(out)
}

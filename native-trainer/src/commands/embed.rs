use std::path::PathBuf;

use anyhow::{Context, Result};
use clip_model::tokenizer::Tokenizer;
use clip_model::zero_shot;
use serde::Serialize;

use super::{encode_images, rows};
use crate::model_args::{device, ModelArgs};

#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(flatten)]
    model: ModelArgs,
    /// An image file (JPEG, PNG, WebP); repeat for several.
    #[arg(long = "image")]
    images: Vec<PathBuf>,
    /// A text; repeat for several.
    #[arg(long = "text")]
    texts: Vec<String>,
    /// Write the JSON here instead of stdout.
    #[arg(long)]
    out: Option<PathBuf>,
    /// Images or texts per forward pass.
    #[arg(long, default_value_t = 16, value_parser = crate::usage::at_least(1usize))]
    batch: usize,
}

#[derive(Serialize)]
struct Output {
    image_features: Vec<Vec<f32>>,
    text_features: Vec<Vec<f32>>,
    logit_scale: f32,
}

pub fn run(args: Args, device_name: &str) -> Result<()> {
    if args.images.is_empty() && args.texts.is_empty() {
        return Err(crate::usage::usage("nothing to embed: give at least one --image or --text"));
    }
    let device = device(device_name)?;
    let model = args.model.load(&device)?;
    let image_features = encode_images(&model, &args.images, args.batch, &device)?;
    let text_features = if args.texts.is_empty() {
        Vec::new()
    } else {
        rows(zero_shot::encode_texts(&model, &Tokenizer::new()?, &args.texts, args.batch, &device)?)?
    };
    let logit_scale = model.temperature().into_scalar::<f32>();
    let json = serde_json::to_string(&Output { image_features, text_features, logit_scale })?;
    match &args.out {
        Some(path) => std::fs::write(path, json).with_context(|| format!("writing {}", path.display()))?,
        None => crate::output::print(json)?,
    }
    Ok(())
}


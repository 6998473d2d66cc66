use std::path::PathBuf;

use anyhow::{Context, Result};
use burn::prelude::*;
use clip_model::tokenizer::Tokenizer;
use clip_model::zero_shot;
use serde::Serialize;

use super::{encode_images, rows};
use crate::model_args::{device, spinner, ModelArgs};

#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(flatten)]
    model: ModelArgs,
    /// Image files to classify.
    #[arg(long = "image", required = true)]
    images: Vec<PathBuf>,
    /// Class names, comma-separated.
    #[arg(long, value_delimiter = ',', required_unless_present = "labels_file", conflicts_with = "labels_file")]
    labels: Vec<String>,
    /// A file of class names, one per line.
    #[arg(long)]
    labels_file: Option<PathBuf>,
    /// A prompt template with `{}` for the class name; repeat to ensemble several.
    #[arg(long = "template")]
    templates: Vec<String>,
    /// A built-in template set: `imagenet` (OpenAI's 80 ImageNet templates).
    #[arg(long = "templates", value_parser = ["imagenet"], conflicts_with = "templates")]
    template_set: Option<String>,
    /// How many labels to print per image.
    #[arg(long, default_value_t = 5)]
    top: usize,
    /// Print JSON instead of a table.
    #[arg(long)]
    json: bool,
    /// Images per forward pass.
    #[arg(long, default_value_t = 16, value_parser = crate::usage::at_least(1usize))]
    batch: usize,
}

#[derive(Serialize)]
struct Ranked {
    label: String,
    score: f32,
}

#[derive(Serialize)]
struct ImageResult {
    image: String,
    labels: Vec<Ranked>,
}

pub fn run(args: Args, device_name: &str) -> Result<()> {
    let labels: Vec<String> = match &args.labels_file {
        Some(path) => std::fs::read_to_string(path)
            .with_context(|| format!("--labels-file {}", path.display()))?
            .lines()
            .map(|l| l.trim().to_string())
            .filter(|l| !l.is_empty())
            .collect(),
        None => args.labels.iter().map(|l| l.trim().to_string()).filter(|l| !l.is_empty()).collect(),
    };
    if labels.is_empty() {
        return Err(crate::usage::usage("no labels given: use --labels a,b,c or --labels-file FILE"));
    }
    let templates: Vec<String> = match (&args.template_set, args.templates.is_empty()) {
        (Some(_), _) => zero_shot::openai_imagenet_templates().into_iter().map(String::from).collect(),
        (None, true) => vec!["a photo of a {}.".into()],
        (None, false) => args.templates.clone(),
    };
    let device = device(device_name)?;
    let model = args.model.load(&device)?;
    let tok = Tokenizer::new()?;
    let bar = spinner(format!("encoding {} prompts", labels.len() * templates.len()));
    let classifier = zero_shot::classifier(&model, &tok, &labels, &templates, 64, &device).context("--template")?;
    bar.finish_and_clear();
    let features = encode_images(&model, &args.images, args.batch, &device)?;
    let e = model.config.embed_dim;
    let flat: Vec<f32> = features.into_iter().flatten().collect();
    let image_features = Tensor::<2>::from_data(TensorData::new(flat, [args.images.len(), e]), &device);
    let probs = rows(zero_shot::probabilities(image_features, classifier, model.temperature()))?;
    let results: Vec<ImageResult> = args
        .images
        .iter()
        .zip(probs)
        .map(|(path, p)| ImageResult {
            image: path.display().to_string(),
            labels: zero_shot::top_k(&p, args.top).into_iter().map(|(i, score)| Ranked { label: labels[i].clone(), score }).collect(),
        })
        .collect();
    if args.json {
        return crate::output::print(serde_json::to_string_pretty(&results)?);
    }
    let mut text = String::new();
    for r in &results {
        text += &r.image;
        for l in &r.labels {
            text += &format!("\n  {:6.2}%  {}", l.score * 100.0, l.label);
        }
        text.push('\n');
    }
    crate::output::print(text.trim_end())
}

//! `clip-burn bench embed`: one tower's forward pass on a batch of real inputs, timed in the
//! process (the model's load reported apart), for the CPU race against ONNX Runtime and PyTorch
//! (`tests/fullsize/race.sh`).

use std::path::PathBuf;
use std::time::Instant;

use anyhow::Result;
use burn::prelude::*;
use clip_model::preprocess::Pixels;
use clip_model::text;
use clip_model::tokenizer::Tokenizer;
use serde::Serialize;

use crate::commands::{host, load_image};
use crate::model_args::{device, ModelArgs};
use crate::usage::at_least;

#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Tower {
    Image,
    Text,
}

#[derive(clap::Args, Debug)]
pub struct EmbedArgs {
    #[command(flatten)]
    model: ModelArgs,
    /// Which tower runs.
    #[arg(long, value_enum)]
    tower: Tower,
    /// Image files (image tower) repeated in turn to fill the batch.
    #[arg(long = "image")]
    images: Vec<PathBuf>,
    /// Texts (text tower) repeated in turn to fill the batch.
    #[arg(long = "text")]
    texts: Vec<String>,
    /// Inputs per forward pass.
    #[arg(long, default_value_t = 1, value_parser = at_least(1usize))]
    batch: usize,
    /// Timed forward passes.
    #[arg(long, default_value_t = 10, value_parser = at_least(1usize))]
    iters: usize,
    /// Untimed forward passes first (their times are reported as `warmup_ms`).
    #[arg(long, default_value_t = 1)]
    warmup: usize,
    /// Print one JSON object instead of text.
    #[arg(long)]
    json: bool,
}

#[derive(Serialize)]
struct Report {
    model: String,
    device: String,
    tower: String,
    batch: usize,
    threads: usize,
    load_s: f64,
    warmup_ms: Vec<f64>,
    times_ms: Vec<f64>,
    median_ms: f64,
    items_per_s: f64,
}

pub fn run(args: EmbedArgs, device_name: &str) -> Result<()> {
    let inputs = match args.tower {
        Tower::Image => args.images.len(),
        Tower::Text => args.texts.len(),
    };
    if inputs == 0 {
        let flag = if args.tower == Tower::Image { "--image" } else { "--text" };
        return Err(crate::usage::usage(format!("bench embed --tower {:?}: give at least one {flag}", args.tower).to_lowercase()));
    }
    let device = device(device_name)?;
    let t0 = Instant::now();
    let model = args.model.load(&device)?;
    let load_s = t0.elapsed().as_secs_f64();
    let forward: Box<dyn Fn() -> Result<Vec<f32>>> = match args.tower {
        Tower::Image => {
            let pixels: Vec<Pixels> = args.images.iter().map(|p| load_image(p, &model)).collect::<Result<_>>()?;
            let batch: Vec<Pixels> = pixels.iter().cycle().take(args.batch).cloned().collect();
            let batch = Pixels::batch(&batch, &device)?;
            Box::new(move || host(model.encode_image(batch.clone())))
        }
        Tower::Text => {
            model.check_tokenizer()?;
            let texts: Vec<&String> = args.texts.iter().cycle().take(args.batch).collect();
            let ids: Tensor<2, Int> = text::input(&Tokenizer::new()?.encode_batch(&texts, model.config.text_cfg.context_length), &device);
            Box::new(move || host(model.encode_text(ids.clone())))
        }
    };
    let time = || -> Result<f64> {
        let t = Instant::now();
        forward()?;
        Ok(t.elapsed().as_secs_f64() * 1e3)
    };
    let warmup_ms = (0..args.warmup).map(|_| time()).collect::<Result<Vec<_>>>()?;
    let times_ms = (0..args.iters).map(|_| time()).collect::<Result<Vec<_>>>()?;
    let mut sorted = times_ms.clone();
    sorted.sort_by(f64::total_cmp);
    let median_ms = (sorted[(sorted.len() - 1) / 2] + sorted[sorted.len() / 2]) / 2.0;
    let report = Report {
        model: args.model.model.clone().unwrap_or_else(|| args.model.weights.display().to_string()),
        device: format!("{device:?}"),
        tower: format!("{:?}", args.tower).to_lowercase(),
        batch: args.batch,
        threads: threads(),
        load_s,
        warmup_ms,
        times_ms,
        median_ms,
        items_per_s: args.batch as f64 * 1e3 / median_ms,
    };
    if args.json {
        crate::output::print(serde_json::to_string(&report)?)?;
    } else {
        crate::output::print(format!(
            "{} {} tower, batch {} on {} ({} threads): median {:.2} ms ({:.2} per s), load {:.2} s",
            report.model, report.tower, report.batch, report.device, report.threads, report.median_ms, report.items_per_s, report.load_s
        ))?;
    }
    Ok(())
}

/// The CPU backend's thread pool size: rayon's (`RAYON_NUM_THREADS`, else every core).
fn threads() -> usize {
    std::env::var("RAYON_NUM_THREADS")
        .ok()
        .and_then(|v| v.parse().ok())
        .filter(|&n| n > 0)
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
}

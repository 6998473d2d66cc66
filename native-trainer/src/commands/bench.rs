//! `clip-burn bench train`: training throughput on synthetic data — samples/s, step time and
//! peak memory — for comparison with open_clip at the same settings
//! (`tests/bench/train_open_clip.py`). `clip-burn bench matmul`: the matmul alone (`matmul.rs`).
//! `clip-burn bench allreduce`: data parallel's gradient all-reduce alone (`allreduce.rs`).
//! `clip-burn bench embed`: one tower's inference alone (`embed.rs`).

mod allreduce;
mod embed;
mod matmul;

use std::time::Instant;

use anyhow::{bail, Result};
use burn::prelude::{Int, Tensor};
use clip_model::preprocess::Pixels;
use clip_model::tokenizer::TokenIds;
use clip_model::Clip;
use serde::Serialize;

use crate::commands::train::{step_on, StepOptions};
use crate::precision::{store_towers, LossScaler, Precision};
use crate::model_args::{device, parse_model};
use crate::optim::{AdamW, AdamWConfig, CLIP_BOUNDS};
use crate::rng::Rng;
use crate::usage::{at_least, float, Bound};

#[derive(clap::Subcommand, Debug)]
pub enum Args {
    /// Optimiser steps on random pictures and token ids (forward, backward, AdamW).
    Train(TrainArgs),
    /// The device's matmul: every layout of a training step checked against the CPU, then timed.
    Matmul(matmul::MatmulArgs),
    /// Data parallel's gradient all-reduce in a one-rank job: the transport's path (NCCL on the
    /// device) against the host-staged one, each checked exactly, then timed.
    Allreduce(allreduce::AllReduceArgs),
    /// One tower's forward pass (inference) on a batch of image files or texts, timed in the
    /// process; the model's load reported apart.
    Embed(embed::EmbedArgs),
}

#[derive(clap::Args, Debug)]
pub struct TrainArgs {
    /// An open_clip model name or a model-config JSON path.
    #[arg(long)]
    model: String,
    /// Micro-batch size.
    #[arg(long, default_value_t = 64, value_parser = at_least(2usize))]
    batch: usize,
    #[arg(long, default_value_t = 1, value_parser = at_least(1usize))]
    accum_freq: usize,
    /// Timed steps.
    #[arg(long, default_value_t = 20, value_parser = at_least(1usize))]
    steps: usize,
    /// Untimed steps first (kernel compilation, autotune, allocator warm-up).
    #[arg(long, default_value_t = 3)]
    warmup_steps: usize,
    /// Random tensors instead of a data set (the only input this benchmark takes).
    #[arg(long, required = true)]
    synthetic: bool,
    /// AdamW's learning rate (constant; the step's cost does not depend on it).
    #[arg(long, allow_negative_numbers = true, default_value_t = 5e-4, value_parser = float(Bound::Open(0.0), Bound::None))]
    lr: f64,
    /// Numeric precision of the step (as `train --precision`).
    #[arg(long, value_enum, default_value_t = Precision::Fp32)]
    precision: Precision,
    /// Recompute each residual block in the backward pass (as `train --grad-checkpointing`).
    #[arg(long)]
    grad_checkpointing: bool,
    /// Print one JSON object instead of text.
    #[arg(long)]
    json: bool,
}

#[derive(Serialize)]
struct Report {
    model: String,
    device: String,
    precision: String,
    grad_checkpointing: bool,
    batch: usize,
    accum_freq: usize,
    steps: usize,
    samples_per_s: f64,
    step_ms: f64,
    first_step_s: Option<f64>,
    /// The loss of every step, warm-up steps first (the same batch each step, so it falls as the
    /// model fits it; equal seeds give equal first losses across precisions).
    losses: Vec<f64>,
    /// Bytes the device allocator reserved after the run (GPU backends), or the process's peak
    /// resident memory (CPU).
    peak_memory_bytes: Option<u64>,
}

pub fn run(args: Args, device_name: &str) -> Result<()> {
    match args {
        Args::Train(args) => train(args, device_name),
        Args::Matmul(args) => matmul::run(args, device_name),
        Args::Allreduce(args) => allreduce::run(args, device_name),
        Args::Embed(args) => embed::run(args, device_name),
    }
}

fn train(args: TrainArgs, device_name: &str) -> Result<()> {
    let config = parse_model(&args.model)?;
    let base = device(device_name)?;
    let device = base.clone().autodiff();
    base.seed(0);
    let mut model = Clip::new(&config, &device);
    if let Some(dtype) = args.precision.storage_dtype() {
        model = store_towers(&model, dtype);
    }
    let options = StepOptions { precision: args.precision, grad_checkpointing: args.grad_checkpointing, max_norm: None };
    let mut scaler = LossScaler::new(args.precision);
    let mut optim = AdamW::new(AdamWConfig::for_model(&config, 0.2), &CLIP_BOUNDS);
    let mut rng = Rng::new(0);
    // On the device once, as open_clip's benchmark keeps its random tensors there.
    let inputs = (0..args.accum_freq.max(1))
        .map(|_| synthetic_batch(&config, args.batch, &mut rng, &device))
        .collect::<Result<Vec<(Tensor<4>, Tensor<2, Int>)>, _>>()?;

    // Untimed warm-up; the first step includes kernel compilation and autotuning on GPUs.
    let mut first_step_s = None;
    let mut losses = Vec::with_capacity(args.warmup_steps + args.steps);
    for i in 0..args.warmup_steps {
        let started = Instant::now();
        let (updated, outcome) = step_on(model, &mut optim, &mut scaler, &inputs, args.lr, &options, None)?;
        model = updated;
        let loss = outcome.loss;
        if !loss.is_finite() {
            bail!("the loss is {loss} at warm-up step {i}");
        }
        let seconds = started.elapsed().as_secs_f64();
        first_step_s.get_or_insert(seconds);
        losses.push(loss);
        eprintln!("warm-up step {}/{}: {seconds:.2} s (loss {loss:.4})", i + 1, args.warmup_steps);
    }
    let timed = Instant::now();
    for _ in 0..args.steps {
        // `step` reads the loss back, so each step has finished when it returns.
        let (updated, outcome) = step_on(model, &mut optim, &mut scaler, &inputs, args.lr, &options, None)?;
        model = updated;
        losses.push(outcome.loss);
    }
    let elapsed = timed.elapsed().as_secs_f64();
    let samples = (args.steps * args.batch * args.accum_freq.max(1)) as f64;
    let report = Report {
        model: args.model.clone(),
        device: device_name.to_string(),
        precision: args.precision.name().to_string(),
        grad_checkpointing: args.grad_checkpointing,
        batch: args.batch,
        accum_freq: args.accum_freq.max(1),
        steps: args.steps,
        samples_per_s: samples / elapsed,
        step_ms: elapsed * 1000.0 / args.steps as f64,
        first_step_s,
        losses,
        peak_memory_bytes: base.memory_pool_usage().map(|u| u.bytes_reserved).or_else(peak_resident_bytes),
    };
    if args.json {
        crate::output::print(serde_json::to_string(&report)?)?;
    } else {
        crate::output::print(format!(
            "{} batch {} x{} {}{} on {}: {:.1} samples/s, {:.1} ms/step (first step {}), peak memory {}",
            report.model,
            report.batch,
            report.accum_freq,
            report.precision,
            if report.grad_checkpointing { " grad-checkpointing" } else { "" },
            report.device,
            report.samples_per_s,
            report.step_ms,
            report.first_step_s.map(|s| format!("{s:.1} s")).unwrap_or_else(|| "not measured".into()),
            report.peak_memory_bytes.map(|b| format!("{:.2} GiB", b as f64 / (1u64 << 30) as f64)).unwrap_or_else(|| "unknown".into())
        ))?;
    }
    Ok(())
}

/// Random normalised-range pictures and captions of 12 random tokens between start and end.
fn synthetic_batch(
    config: &clip_model::ClipConfig,
    batch: usize,
    rng: &mut Rng,
    device: &burn::tensor::Device,
) -> Result<(Tensor<4>, Tensor<2, Int>), clip_model::Error> {
    let size = config.vision_cfg.image_size;
    let context = config.text_cfg.context_length;
    let images: Vec<Pixels> = (0..batch).map(|_| Pixels { data: (0..3 * size * size).map(|_| rng.range(-2.0, 2.0) as f32).collect(), size }).collect();
    let mut ids = vec![0u32; batch * context];
    for row in ids.chunks_mut(context) {
        let len = 12.min(context.saturating_sub(2));
        row[0] = clip_model::tokenizer::START_OF_TEXT;
        for id in row.iter_mut().skip(1).take(len) {
            *id = 1 + rng.below(49_000) as u32;
        }
        row[len + 1] = clip_model::tokenizer::END_OF_TEXT;
    }
    Ok((Pixels::batch(&images, device)?, TokenIds { ids, batch, context_length: context }.to_tensor(device)))
}

/// The process's peak resident set (Linux `VmHWM`).
fn peak_resident_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

//! `clip-burn train`: contrastive training from scratch or from `--pretrained` weights, with
//! open_clip's flag names. Settings come from flags or a TOML file (`--config run.toml`, keys
//! are the flag names with `_` or `-`); flags given on the command line win.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use anyhow::{bail, Context, Result};
use burn::module::Module;
use burn::optim::{GradientsAccumulator, GradientsParams};
use burn::prelude::*;
use clip_model::preprocess::Pixels;
use clip_model::{import, Clip};
use indicatif::{ProgressBar, ProgressStyle};
use serde::Serialize;

use crate::checkpoint::{self, TrainState};
use crate::data::{Batch, Loader, LoaderConfig, Position, Source, TableFormat};
use crate::contrast::{self, ContrastFn};
use crate::dist::{DataParallel, Transport};
use crate::eval::{self, ImageFolder};
use crate::model_args::{device, parse_model};
use crate::optim::{clip_scale, cosine_lr, AdamW, AdamWConfig, CLIP_BOUNDS};
use crate::precision::{compute_model, store_towers, widened, LossScaler, Precision};
use crate::recompute;
use crate::usage::{at_least, float, usage, Bound};

#[derive(clap::Args, Debug, Clone, Serialize)]
#[command(args_override_self = true)]
pub struct Args {
    /// A TOML file of settings (keys = these flags' names); flags on the command line override it.
    #[arg(long)]
    #[serde(skip)]
    pub config: Option<PathBuf>,
    /// Model: an open_clip name or a model-config JSON path.
    #[arg(long)]
    pub model: String,
    /// Start from these weights (any format `--weights` takes elsewhere) instead of random init.
    #[arg(long)]
    pub pretrained: Option<PathBuf>,
    /// Training data: tar shards (`dir/shard-{0000..0099}.tar`, several joined by `::`) or a CSV/TSV.
    #[arg(long)]
    pub train_data: String,
    /// Samples per epoch (needed for tar shards, whose size is unknown; a CSV's default is its row count).
    #[arg(long, value_parser = at_least(1u64))]
    pub train_num_samples: Option<u64>,
    #[arg(long, default_value = "filepath")]
    pub csv_img_key: String,
    #[arg(long, default_value = "title")]
    pub csv_caption_key: String,
    /// CSV column separator (default tab, as open_clip).
    #[arg(long, default_value = "\t")]
    pub csv_separator: String,
    /// Retrieval validation pairs (tar shards or CSV), evaluated every `--val-frequency` steps.
    #[arg(long)]
    pub val_data: Option<String>,
    #[arg(long, default_value_t = 1000, value_parser = at_least(1usize))]
    pub val_num_samples: usize,
    /// Zero-shot evaluation image folder (class sub-folders, optional classnames.txt / templates.txt).
    #[arg(long)]
    pub zeroshot_data: Option<PathBuf>,
    /// Zero-shot prompt templates file (one per line with `{}`); default the folder's templates.txt or ImageNet's 80.
    #[arg(long)]
    pub zeroshot_templates: Option<PathBuf>,
    /// Evaluate every N steps (0: only at the end).
    #[arg(long, default_value_t = 0)]
    pub val_frequency: u64,
    /// Output directory: checkpoints/, metrics.jsonl, final weights.
    #[arg(long, default_value = "logs/run")]
    pub logs: PathBuf,
    /// Micro-batch size (per step without accumulation; at least 2: the loss contrasts the samples of a batch).
    #[arg(long, default_value_t = 64, value_parser = at_least(2usize))]
    pub batch_size: usize,
    /// Gradient accumulation over N micro-batches, every micro-batch against the features of all.
    #[arg(long, default_value_t = 1, value_parser = at_least(1usize))]
    pub accum_freq: usize,
    #[arg(long, default_value_t = 1, value_parser = at_least(1u64))]
    pub epochs: u64,
    /// Total optimiser steps (overrides --epochs).
    #[arg(long, value_parser = at_least(1u64))]
    pub steps: Option<u64>,
    #[arg(long, allow_negative_numbers = true, default_value_t = 5e-4, value_parser = float(Bound::Open(0.0), Bound::None))]
    pub lr: f64,
    /// Default: 0.9.
    #[arg(long, allow_negative_numbers = true, value_parser = float(Bound::Closed(0.0), Bound::Open(1.0)))]
    pub beta1: Option<f64>,
    /// Default: 0.98 for ViT, 0.999 for ResNet.
    #[arg(long, allow_negative_numbers = true, value_parser = float(Bound::Closed(0.0), Bound::Open(1.0)))]
    pub beta2: Option<f64>,
    /// Default: 1e-6 for ViT, 1e-8 for ResNet.
    #[arg(long, allow_negative_numbers = true, value_parser = float(Bound::Open(0.0), Bound::None))]
    pub eps: Option<f64>,
    #[arg(long, allow_negative_numbers = true, default_value_t = 0.2, value_parser = float(Bound::Closed(0.0), Bound::None))]
    pub wd: f64,
    /// Linear warmup steps.
    #[arg(long, default_value_t = 2000)]
    pub warmup: u64,
    /// Clip the global gradient norm to this.
    #[arg(long, allow_negative_numbers = true, value_parser = float(Bound::Open(0.0), Bound::None))]
    pub grad_clip_norm: Option<f64>,
    /// Numeric precision: fp32, amp_bf16 / amp (mixed: f32 master weights, bf16 / f16 compute),
    /// bf16 / f16 (pure: weights and optimiser state in low precision).
    #[arg(long, value_enum, default_value_t = Precision::Fp32)]
    pub precision: Precision,
    /// Recompute each residual block in the backward pass instead of keeping its activations.
    #[arg(long)]
    pub grad_checkpointing: bool,
    /// Freeze the image tower.
    #[arg(long)]
    pub lock_image: bool,
    /// Decode/augment threads.
    #[arg(long, default_value_t = 2, value_parser = at_least(1usize))]
    pub workers: usize,
    #[arg(long, default_value_t = 2000)]
    pub shuffle_buffer: usize,
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Save a checkpoint every N steps (and at the end).
    #[arg(long, default_value_t = 500, value_parser = at_least(1u64))]
    pub save_frequency: u64,
    /// Checkpoints kept on disk.
    #[arg(long, default_value_t = 3, value_parser = at_least(1usize))]
    pub keep_checkpoints: usize,
    /// `latest` (the newest checkpoint in <logs>/checkpoints) or a checkpoint file.
    #[arg(long)]
    pub resume: Option<String>,
    /// Transport between processes when launched with WORLD_SIZE > 1 (`clip-burn launch`,
    /// torchrun): NCCL on CUDA devices, TCP otherwise.
    #[arg(long, value_enum, default_value_t = Transport::Auto)]
    pub dist_backend: Transport,
    /// With several processes, BatchNorm (ResNet image towers) normalises with the statistics of
    /// the global batch, summed over ranks in both passes (PyTorch's SyncBatchNorm), instead of
    /// each rank's own.
    #[arg(long)]
    pub use_bn_sync: bool,
}

/// Expands `train --config FILE` into flags placed before the command line's own, so that
/// flags given explicitly override the file.
pub fn expand_config(argv: Vec<String>) -> Result<Vec<String>> {
    let Some(train) = argv.iter().position(|a| a == "train") else { return Ok(argv) };
    let Some(at) = argv[train..].iter().position(|a| a == "--config" || a.starts_with("--config=")).map(|i| i + train) else {
        return Ok(argv);
    };
    let path = match argv[at].strip_prefix("--config=") {
        Some(p) => p.to_string(),
        None => argv.get(at + 1).cloned().ok_or_else(|| usage("--config needs a file"))?,
    };
    let text = std::fs::read_to_string(&path).map_err(|e| usage(format!("--config {path}: {e}")))?;
    let table: toml::Table = toml::from_str(&text).map_err(|e| {
        let at = e.span().map_or(String::new(), |span| {
            let before = &text[..span.start.min(text.len())];
            format!("line {}, column {}: ", before.matches('\n').count() + 1, before.chars().rev().take_while(|&c| c != '\n').count() + 1)
        });
        usage(format!("--config {path}: {at}{}", e.message().trim()))
    })?;
    let mut flags = Vec::new();
    for (key, value) in table {
        let flag = format!("--{}", key.replace('_', "-"));
        match value {
            toml::Value::Boolean(true) => flags.push(flag),
            toml::Value::Boolean(false) => {}
            toml::Value::String(s) => flags.extend([flag, s]),
            toml::Value::Integer(i) => flags.extend([flag, i.to_string()]),
            toml::Value::Float(f) => flags.extend([flag, f.to_string()]),
            other => return Err(usage(format!("--config {path}: {key} = {other}: use a string, number or boolean"))),
        }
    }
    let mut out = argv[..=train].to_vec();
    out.extend(flags);
    out.extend(argv[train + 1..].iter().cloned());
    Ok(out)
}

/// `--csv-separator`: one character (`\t` spelt out is a tab).
pub fn separator(text: &str) -> Result<u8> {
    match text.as_bytes() {
        [b] => Ok(*b),
        _ if text == "\\t" => Ok(b'\t'),
        _ => Err(usage(format!("--csv-separator must be one character, got {text:?}"))),
    }
}

/// One line of metrics.jsonl.
#[derive(Serialize)]
struct StepMetrics {
    step: u64,
    epoch: f64,
    samples: u64,
    loss: f64,
    lr: f64,
    logit_scale: f64,
    grad_norm: f64,
    samples_per_s: f64,
    data_wait_s: f64,
    skipped: usize,
}

pub fn run(args: Args, device_name: &str) -> Result<()> {
    let config = parse_model(&args.model)?;
    let separator = separator(&args.csv_separator)?;
    let table = TableFormat { img_key: args.csv_img_key.clone(), caption_key: args.csv_caption_key.clone(), separator };
    let source = Arc::new(Source::open(&args.train_data, &table).context("--train-data")?);
    let mut dp = DataParallel::from_env(args.dist_backend, device_name, args.use_bn_sync)?;
    let (rank, world) = dp.as_ref().map_or((0, 1), |d| (d.rank(), d.world()));
    let device_name = &dp.as_ref().map_or(device_name.to_string(), |d| d.device_name(device_name));
    // Rank 0 logs, evaluates and writes checkpoints; every rank trains.
    let leader = rank == 0;
    // Samples per optimiser step, over all ranks.
    let per_step = (args.batch_size * args.accum_freq.max(1) * world) as u64;
    let epoch_samples = match (args.train_num_samples, source.known_len()) {
        (Some(n), _) => n,
        (None, Some(n)) => n as u64,
        (None, None) => return Err(usage("--train-num-samples is needed with tar shards (their size is not known in advance)")),
    };
    let steps_per_epoch = (epoch_samples / per_step).max(1);
    let total_steps = args.steps.unwrap_or(args.epochs * steps_per_epoch);
    let defaults = AdamWConfig::for_model(&config, args.wd);
    let adamw = AdamWConfig {
        beta1: args.beta1.unwrap_or(defaults.beta1),
        beta2: args.beta2.unwrap_or(defaults.beta2),
        eps: args.eps.unwrap_or(defaults.eps),
        weight_decay: args.wd,
    };

    let base = device(device_name)?;
    let device = base.clone().autodiff();
    let ckpt_dir = args.logs.join("checkpoints");
    std::fs::create_dir_all(&args.logs).with_context(|| format!("--logs {}", args.logs.display()))?;
    let settings = serde_json::to_value(&args)?;
    let mut optim = AdamW::new(adamw, &CLIP_BOUNDS);
    let (mut model, mut state) = match &args.resume {
        Some(spec) => {
            let path = checkpoint::resolve(spec, &ckpt_dir)?;
            let (model, state) = checkpoint::load(&path, &mut optim, &device).context("--resume")?;
            if model.config != config {
                bail!("--resume {}: the checkpoint holds a different model than --model {}", path.display(), args.model);
            }
            if state.positions.len().max(1) != world {
                bail!(
                    "--resume {}: the checkpoint was written by {} processes, this run has {world} (the data positions are per process)",
                    path.display(),
                    state.positions.len().max(1)
                );
            }
            if leader {
                eprintln!("resuming from {} (step {}, {} samples seen)", path.display(), state.step, state.samples_seen);
            }
            (model, state)
        }
        None => {
            base.seed(args.seed);
            let model = match &args.pretrained {
                Some(path) => import::load_file(Some(&config), path, &device).with_context(|| format!("--pretrained {}", path.display()))?,
                None => Clip::new(&config, &device),
            };
            let state = TrainState {
                step: 0,
                samples_seen: 0,
                position: Position::default(),
                seed: args.seed,
                settings: settings.clone(),
                loss_scaler: None,
                positions: Vec::new(),
            };
            (model, state)
        }
    };
    if args.lock_image {
        model.visual = model.visual.freeze();
    }
    if let Some(dtype) = args.precision.storage_dtype() {
        model = store_towers(&model, dtype);
    }
    let mut scaler = state.loss_scaler.unwrap_or_else(|| LossScaler::new(args.precision));
    let options = StepOptions { precision: args.precision, grad_checkpointing: args.grad_checkpointing, max_norm: args.grad_clip_norm };
    if let Some(dp) = dp.as_mut() {
        dp.check_same_weights(&model)?;
    }
    let metrics_path = args.logs.join("metrics.jsonl");
    let mut metrics = if leader {
        truncate_metrics(&metrics_path, state.step)?;
        Some(std::fs::OpenOptions::new().create(true).append(true).open(&metrics_path).with_context(|| format!("{}", metrics_path.display()))?)
    } else {
        None
    };

    let evals = Evals::new(&args)?;
    let loader_config = LoaderConfig {
        batch_size: args.batch_size,
        image_size: config.vision_cfg.image_size,
        context_length: config.text_cfg.context_length,
        workers: args.workers,
        prefetch: 2 * args.accum_freq.max(1),
        shuffle_buffer: args.shuffle_buffer,
        seed: state.seed,
        augment: true,
        shard: (rank, world),
    };
    let start = state.positions.get(rank).copied().unwrap_or(state.position);
    let mut loader = Loader::new(source, loader_config, start)?;
    let processes = if world > 1 { format!(" x {world} processes") } else { String::new() };
    if leader {
        eprintln!(
            "training {} ({:.2}M parameters) on {}{processes} for {total_steps} steps of {per_step} samples ({steps_per_epoch} steps per epoch), logs in {}",
            args.model,
            model.num_params() as f64 / 1e6,
            device_name,
            args.logs.display()
        );
    }

    let bar = if leader { ProgressBar::new(total_steps) } else { ProgressBar::hidden() };
    bar.set_style(
        ProgressStyle::with_template("{bar:30} {pos}/{len} steps [{elapsed_precise} < {eta_precise}] {msg}").expect("valid template"),
    );
    bar.set_position(state.step);
    let started = Instant::now();
    let mut window = (Instant::now(), 0u64);
    while state.step < total_steps {
        let step_start = Instant::now();
        let mut batches = Vec::with_capacity(args.accum_freq.max(1));
        let mut skipped = 0;
        for _ in 0..args.accum_freq.max(1) {
            let batch = loader.next_batch()?;
            skipped += batch.skipped.len();
            for reason in &batch.skipped {
                bar.suspend(|| eprintln!("skipped sample {}", crate::output::sanitised(reason)));
            }
            batches.push(batch);
        }
        let data_wait = step_start.elapsed().as_secs_f64();
        let lr = cosine_lr(args.lr, args.warmup, total_steps, state.step);
        let (updated, outcome) = step(model, &mut optim, &mut scaler, &batches, lr, &options, dp.as_mut(), &device)?;
        model = updated;
        let (loss, norm) = (outcome.loss, outcome.grad_norm);
        if !outcome.applied {
            if !scaler.enabled {
                bail!("the gradients are not finite at step {} (loss {loss}): lower --lr or set --grad-clip-norm", state.step + 1);
            }
            bar.suspend(|| eprintln!("gradients overflowed f16 at loss scale {}: step skipped, scale halved", scaler.scale * 2.0));
        }
        state.loss_scaler = scaler.enabled.then_some(scaler);

        state.step += 1;
        state.samples_seen += per_step;
        state.position = batches.last().expect("at least one batch").end;
        window.1 += per_step;
        let rate = window.1 as f64 / window.0.elapsed().as_secs_f64().max(1e-9);
        if window.0.elapsed().as_secs_f64() > 30.0 {
            window = (Instant::now(), 0);
        }
        if !loss.is_finite() {
            bail!("the loss is {loss} at step {}: lower --lr or set --grad-clip-norm", state.step);
        }
        let line = StepMetrics {
            step: state.step,
            epoch: state.step as f64 / steps_per_epoch as f64,
            samples: state.samples_seen,
            loss,
            lr,
            logit_scale: model.temperature().into_scalar::<f32>() as f64,
            grad_norm: norm,
            samples_per_s: rate,
            data_wait_s: data_wait,
            skipped,
        };
        if let Some(metrics) = metrics.as_mut() {
            append_line(metrics, &line)?;
        }
        bar.set_message(format!("loss {loss:.4}  {rate:.0} samples/s  lr {lr:.2e}"));
        bar.set_position(state.step);

        let last = state.step == total_steps;
        // The checkpoint first: an evaluation never costs the run its weights.
        if last || state.step % args.save_frequency == 0 {
            if let Some(dp) = dp.as_mut() {
                state.positions = gather_positions(dp, state.position)?;
            }
            if let Some(metrics) = metrics.as_mut() {
                metrics.flush()?;
                checkpoint::save(&ckpt_dir, &model, &optim, &state, args.keep_checkpoints)?;
            }
        }
        if let Some(metrics) = metrics.as_mut().filter(|_| last || (args.val_frequency > 0 && state.step % args.val_frequency == 0)) {
            match bar.suspend(|| evals.run(&model.valid(), &base)) {
                Ok(Some(mut report)) => {
                    report.insert("step".into(), state.step.into());
                    append_line(metrics, &report)?;
                    bar.suspend(|| eprintln!("step {}: {}", state.step, summary(&report)));
                }
                Ok(None) => {}
                // Training goes on; the evaluation's inputs are the user's to fix.
                Err(e) => bar.suspend(|| eprintln!("step {}: evaluation failed: {}", state.step, crate::output::sanitised(&format!("{e:#}")))),
            }
        }
    }
    bar.finish_and_clear();
    let Some(mut metrics) = metrics else { return Ok(()) };
    metrics.flush()?;
    let final_path = args.logs.join("final.bpk");
    checkpoint::write_atomic(&final_path, &import::to_burnpack(&model.valid(), import::StoreDType::F32)?)?;
    eprintln!(
        "done: {} steps in {:.1} min; weights {} (convert to f16 with `clip-burn convert --weights {} --out model.bpk --dtype f16`)",
        state.step,
        started.elapsed().as_secs_f64() / 60.0,
        final_path.display(),
        final_path.display()
    );
    Ok(())
}

/// Every rank's data position, in rank order.
fn gather_positions(dp: &mut DataParallel, mine: Position) -> Result<Vec<Position>> {
    let bytes = [mine.pass.to_le_bytes(), mine.offset.to_le_bytes()].concat();
    Ok(dp
        .gather_bytes(&bytes)?
        .iter()
        .map(|b| Position {
            pass: u64::from_le_bytes(b[..8].try_into().expect("8 bytes")),
            offset: u64::from_le_bytes(b[8..16].try_into().expect("8 bytes")),
        })
        .collect())
}

/// How each optimiser step computes.
#[derive(Debug, Clone, Copy, Default)]
pub struct StepOptions {
    pub precision: Precision,
    pub grad_checkpointing: bool,
    /// Clip the global gradient norm to this.
    pub max_norm: Option<f64>,
}

/// What one optimiser step did.
#[derive(Debug, Clone, Copy)]
pub struct StepOutcome {
    pub loss: f64,
    /// The global gradient norm (unscaled).
    pub grad_norm: f64,
    /// False when the gradients were not finite and the update was skipped.
    pub applied: bool,
}

/// One optimiser step: loss and gradients (accumulated over `batches`), global-norm clipping,
/// AdamW, the logit-scale clamp. A step whose gradients are not finite is not applied (with
/// loss scaling, the scaler backs off).
pub fn step(
    model: Clip,
    optim: &mut AdamW,
    scaler: &mut LossScaler,
    batches: &[Batch],
    lr: f64,
    options: &StepOptions,
    dp: Option<&mut DataParallel>,
    device: &Device,
) -> Result<(Clip, StepOutcome)> {
    let inputs = batches
        .iter()
        .map(|b| Ok((Pixels::batch(&b.images, device)?, b.ids.to_tensor(device))))
        .collect::<Result<Vec<(Tensor<4>, Tensor<2, Int>)>>>()?;
    step_on(model, optim, scaler, &inputs, lr, options, dp)
}

/// [`step`] on micro-batches already on the device (pictures, token ids).
pub fn step_on(
    mut model: Clip,
    optim: &mut AdamW,
    scaler: &mut LossScaler,
    inputs: &[(Tensor<4>, Tensor<2, Int>)],
    lr: f64,
    options: &StepOptions,
    mut dp: Option<&mut DataParallel>,
) -> Result<(Clip, StepOutcome)> {
    let loss_scale = scaler.scale;
    // The compute copy lives only through the passes.
    let (loss, grads) = {
        let compute = compute_model(&model, options.precision.amp_dtype(), optim);
        let run = |contrast: &mut ContrastFn| {
            if options.grad_checkpointing { recompute::gradients(&compute, inputs, contrast) } else { gradients(&compute, inputs, contrast) }
        };
        match dp.as_deref_mut() {
            Some(dp) => dp.passes(|dp| run(&mut |m, image, text| dp.contrast(m, image, text, loss_scale)))?,
            None => run(&mut |m, image, text| Ok(contrast::local(m, image, text, loss_scale)))?,
        }
    };
    let mut grads = optim.gather(&model, grads)?;
    if let Some(dp) = dp {
        grads = dp.sum_gradients(grads)?;
    }
    // The step's one read-back: the loss with the gradient norm (clipping and the finite check
    // need the norm before the update).
    let (loss, norm) = grads.norm_and(loss)?;
    let grad_norm = norm / scaler.scale;
    let applied = scaler.update(grad_norm.is_finite());
    if applied {
        model = optim.step(model, grads, lr, clip_scale(grad_norm, options.max_norm) / scaler.scale);
    }
    Ok((model, StepOutcome { loss, grad_norm, applied }))
}

/// Loss and gradients of one optimiser step on this process's micro-batches, computed through
/// `model` (mixed precision: the towers' low-precision copy of [`compute_model`], whose
/// gradients arrive in its dtype); the loss on the towers' features comes from `contrast` (one
/// process, or sharded over ranks), which also returns its gradients for them, back-propagated
/// here through the towers. With several micro-batches, open_clip's `--accum-freq`: features of
/// all micro-batches are computed first without gradients (in training mode), then each
/// micro-batch is recomputed with gradients and its loss taken against the cached features of
/// the others, so every micro-batch sees all negatives; gradients are summed (in f32).
fn gradients(model: &Clip, inputs: &[(Tensor<4>, Tensor<2, Int>)], contrast: &mut ContrastFn) -> Result<(Tensor<1>, GradientsParams)> {
    let cached: Vec<(Tensor<2>, Tensor<2>)> = if inputs.len() > 1 {
        let untracked = recompute::untracked(model);
        inputs.iter().map(|(images, ids)| (untracked.encode_image(images.clone()), untracked.encode_text(ids.clone()))).collect()
    } else {
        Vec::new()
    };
    let mut accumulator = GradientsAccumulator::<Clip>::new();
    let mut losses = Vec::with_capacity(inputs.len());
    for (j, (images, ids)) in inputs.iter().enumerate() {
        let (image, text) = (model.encode_image(images.clone()), model.encode_text(ids.clone()));
        let c = contrast::micro_batch(model, &cached, j, image.clone(), text.clone(), contrast)?;
        losses.push(c.loss);
        let mut micro = GradientsAccumulator::<Clip>::new();
        micro.accumulate(model, c.grads);
        let towers = recompute::vjp(image, c.image_grad) + recompute::vjp(text, c.text_grad);
        micro.accumulate(model, GradientsParams::from_grads(towers.backward(), model));
        let grads = micro.grads();
        accumulator.accumulate(model, if inputs.len() > 1 { widened(grads, model) } else { grads });
    }
    Ok((contrast::mean_loss(losses)?, accumulator.grads()))
}

/// Appends `value` to metrics.jsonl as one line, in one write: a reader (or a kill) never sees
/// a line without its newline.
fn append_line(metrics: &mut std::fs::File, value: &impl serde::Serialize) -> Result<()> {
    metrics.write_all(format!("{}\n", serde_json::to_string(value)?).as_bytes())?;
    Ok(())
}

/// Keeps the lines of an earlier run up to `step` (a resumed run rewrites what follows).
fn truncate_metrics(path: &Path, step: u64) -> Result<()> {
    if !path.is_file() {
        return Ok(());
    }
    let text = std::fs::read_to_string(path).with_context(|| format!("{}", path.display()))?;
    let kept: String = text
        .lines()
        .filter(|line| {
            step > 0
                && serde_json::from_str::<serde_json::Value>(line)
                    .ok()
                    .and_then(|v| v.get("step").and_then(|s| s.as_u64()))
                    .is_some_and(|s| s <= step)
        })
        .map(|l| format!("{l}\n"))
        .collect();
    checkpoint::write_atomic(path, kept.as_bytes())
}

/// The evaluations configured for the run.
struct Evals {
    zero_shot: Option<(ImageFolder, Vec<String>)>,
    retrieval: Option<Vec<(Vec<u8>, String)>>,
    batch: usize,
}

impl Evals {
    fn new(args: &Args) -> Result<Self> {
        let zero_shot = match &args.zeroshot_data {
            Some(dir) => {
                let folder = ImageFolder::open(dir).context("--zeroshot-data")?;
                let templates = eval::templates(args.zeroshot_templates.as_deref(), dir).context("--zeroshot-templates")?;
                Some((folder, templates))
            }
            None => None,
        };
        let retrieval = match &args.val_data {
            Some(spec) => {
                let table =
                    TableFormat { img_key: args.csv_img_key.clone(), caption_key: args.csv_caption_key.clone(), separator: separator(&args.csv_separator)? };
                let source = Source::open(spec, &table).context("--val-data")?;
                Some(eval::read_pairs(&source, args.val_num_samples))
            }
            None => None,
        };
        Ok(Self { zero_shot, retrieval, batch: args.batch_size.max(32) })
    }

    fn run(&self, model: &Clip, device: &Device) -> Result<Option<serde_json::Map<String, serde_json::Value>>> {
        let mut out = serde_json::Map::new();
        if let Some((folder, templates)) = &self.zero_shot {
            let r = eval::zero_shot(model, folder, templates, self.batch, device)?;
            out.insert("zero_shot_top1".into(), r.top1.into());
            out.insert("zero_shot_top5".into(), r.top5.into());
        }
        if let Some(pairs) = &self.retrieval {
            let r = eval::retrieval(model, pairs, self.batch, device)?;
            for (k, v) in serde_json::to_value(&r)?.as_object().expect("struct").iter().filter(|(k, _)| *k != "pairs") {
                out.insert(k.clone(), v.clone());
            }
        }
        Ok((!out.is_empty()).then_some(out))
    }
}

fn summary(report: &serde_json::Map<String, serde_json::Value>) -> String {
    report
        .iter()
        .filter(|(k, _)| *k != "step")
        .map(|(k, v)| format!("{k} {:.3}", v.as_f64().unwrap_or(f64::NAN)))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Shared by this file's tests and `dist`'s.
#[cfg(test)]
pub mod tests_support {
    use super::*;
    use burn::tensor::FloatDType;
    use burn::module::Param;
    use clip_model::tokenizer::TokenIds;
    use clip_model::ClipConfig;

    pub fn tiny() -> ClipConfig {
        ClipConfig::from_open_clip_json(
            r#"{"embed_dim": 16, "vision_cfg": {"image_size": 16, "layers": 1, "width": 32, "head_width": 16, "patch_size": 8},
                "text_cfg": {"context_length": 8, "width": 16, "heads": 2, "layers": 1}}"#,
        )
        .unwrap()
    }

    pub fn batch(range: std::ops::Range<usize>) -> Batch {
        let images = range
            .clone()
            .map(|i| Pixels { data: (0..3 * 16 * 16).map(|j| ((i * 7919 + j * 104729) % 1000) as f32 / 500.0 - 1.0).collect(), size: 16 })
            .collect::<Vec<_>>();
        let ids: Vec<u32> = range.clone().flat_map(|i| [49406, 320 + i as u32, 1000 + 3 * i as u32, 49407, 0, 0, 0, 0]).collect();
        Batch { ids: TokenIds { ids, batch: range.len(), context_length: 8 }, images, end: Position::default(), skipped: Vec::new() }
    }

    /// [`batch`]'s samples with pictures of `config`'s image size (pixels derived from
    /// [`batch`]'s, so they differ between samples).
    pub fn sized_batch(config: &ClipConfig, range: std::ops::Range<usize>) -> Batch {
        let size = config.vision_cfg.image_size;
        let mut b = batch(range);
        for p in &mut b.images {
            p.data = (0..3 * size * size).map(|j| ((j * 7919 + p.data.len()) % 997) as f32 / 500.0 - 1.0 + p.data[j % p.data.len()]).collect();
            p.size = size;
        }
        b
    }

    pub fn inputs(batches: &[Batch], device: &Device) -> Vec<(Tensor<4>, Tensor<2, Int>)> {
        batches.iter().map(|b| (Pixels::batch(&b.images, device).unwrap(), b.ids.to_tensor(device))).collect()
    }

    pub fn resnet() -> ClipConfig {
        ClipConfig::from_open_clip_json(
            r#"{"embed_dim": 16, "vision_cfg": {"image_size": 64, "layers": [1,2,1,1], "width": 8, "head_width": 8},
                "text_cfg": {"context_length": 8, "width": 16, "heads": 2, "layers": 2}}"#,
        )
        .unwrap()
    }

    /// Every parameter's gradient in `a` and `b`: (path, a, b).
    pub fn paired(model: &Clip, a: &GradientsParams, b: &GradientsParams) -> Vec<(String, Vec<f32>, Vec<f32>)> {
        struct Pairs<'a>(&'a GradientsParams, &'a GradientsParams, Vec<String>, Vec<(String, Vec<f32>, Vec<f32>)>);
        impl burn::module::ModuleVisitor for Pairs<'_> {
            fn enter_module(&mut self, name: &str, _: &str) {
                self.2.push(name.to_string());
            }
            fn exit_module(&mut self, _: &str, _: &str) {
                self.2.pop();
            }
            fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
                let values = |g: &GradientsParams| {
                    g.get::<D>(param.id).map(|t| t.cast(FloatDType::F32).into_data().try_to_vec::<f32>().unwrap())
                };
                let path = self.2.join(".");
                match (values(self.0), values(self.1)) {
                    (Some(x), Some(y)) => self.3.push((path, x, y)),
                    (None, None) => {}
                    (x, y) => panic!("{path}: gradient in one run only ({} vs {})", x.is_some(), y.is_some()),
                }
            }
        }
        let mut pairs = Pairs(a, b, Vec::new(), Vec::new());
        model.visit(&mut pairs);
        pairs.3
    }

    pub fn tensors(model: &Clip) -> usize {
        struct Count(usize);
        impl burn::module::ModuleVisitor for Count {
            fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
                // Not BatchNorm's running statistics.
                self.0 += param.val().is_require_grad() as usize;
            }
        }
        let mut c = Count(0);
        model.visit(&mut c);
        c.0
    }

    /// Largest difference relative to the gradient's own scale, over all parameters. The scale
    /// is at least 1e-3 of the largest gradient in the model: a gradient that is zero in exact
    /// arithmetic is rounding noise on both sides (the attention pool's key bias: softmax ignores
    /// a shift shared by all keys, so its gradient is a sum of terms that cancel).
    pub fn max_relative_difference(model: &Clip, a: &GradientsParams, b: &GradientsParams) -> (f32, String, usize) {
        relative_difference(model, a, b, |x| x.iter().fold(0f32, |m, v| m.max(v.abs())))
    }

    /// As [`max_relative_difference`], each gradient measured by its L2 norm instead of its
    /// largest element.
    pub fn max_norm_difference(model: &Clip, a: &GradientsParams, b: &GradientsParams) -> (f32, String) {
        let (diff, path, _) = relative_difference(model, a, b, |x| x.iter().map(|v| v * v).sum::<f32>().sqrt());
        (diff, path)
    }

    /// The largest `size(a - b) / size(a)` over all parameters, `size(a)` at least 1e-3 of the
    /// largest in the model; with the parameter's path and the number of parameters compared.
    fn relative_difference(model: &Clip, a: &GradientsParams, b: &GradientsParams, size: impl Fn(&[f32]) -> f32) -> (f32, String, usize) {
        let pairs = paired(model, a, b);
        let count = pairs.len();
        let floor = pairs.iter().fold(1e-6f32, |m, (_, x, _)| m.max(1e-3 * size(x)));
        let (diff, path) = pairs
            .into_iter()
            .map(|(path, x, y)| {
                let delta: Vec<f32> = x.iter().zip(&y).map(|(p, q)| p - q).collect();
                (size(&delta) / size(&x).max(floor), path)
            })
            .fold((0f32, String::new()), |best, cur| if cur.0 > best.0 { cur } else { best });
        (diff, path, count)
    }

    /// A model from `seed`, its parameters drawn while no other test draws from the device's
    /// generator (tests run in parallel and share it; burn initialises parameters lazily, so
    /// they are materialised here).
    pub fn seeded(config: &ClipConfig, seed: u64, device: &Device) -> Clip {
        alone_with_the_generator(|| {
            device.seed(seed);
            let model = Clip::new(config, device);
            recompute::materialise(&model);
            model
        })
    }

    /// Runs `f` while no other test draws from the device's random generator.
    pub fn alone_with_the_generator<T>(f: impl FnOnce() -> T) -> T {
        static RNG: std::sync::Mutex<()> = std::sync::Mutex::new(());
        let _guard = RNG.lock().unwrap_or_else(|e| e.into_inner());
        f()
    }

    /// An optimiser with nothing laid out: [`compute_model`] casts each parameter.
    pub fn fresh_optimiser() -> AdamW {
        AdamW::new(AdamWConfig { beta1: 0.9, beta2: 0.98, eps: 1e-6, weight_decay: 0.2 }, &CLIP_BOUNDS)
    }

    /// One process's loss and gradients (the loss multiplied by `loss_scale` for the backward
    /// pass), computed in `dtype` (mixed precision) or the model's own.
    pub fn plain(model: &Clip, inputs: &[(Tensor<4>, Tensor<2, Int>)], dtype: Option<FloatDType>, loss_scale: f64) -> (f64, GradientsParams) {
        read_loss(gradients(&compute_model(model, dtype, &fresh_optimiser()), inputs, &mut |m, i, t| Ok(contrast::local(m, i, t, loss_scale))).unwrap())
    }

    /// A step's loss, read back.
    fn read_loss((loss, grads): (Tensor<1>, GradientsParams)) -> (f64, GradientsParams) {
        (loss.into_scalar::<f32>() as f64, grads)
    }

    /// As [`plain`], with per-block recomputation.
    pub fn checkpointed(model: &Clip, inputs: &[(Tensor<4>, Tensor<2, Int>)], dtype: Option<FloatDType>, loss_scale: f64) -> (f64, GradientsParams) {
        read_loss(recompute::gradients(&compute_model(model, dtype, &fresh_optimiser()), inputs, &mut |m, i, t| Ok(contrast::local(m, i, t, loss_scale))).unwrap())
    }

    /// One rank's loss and the gradients summed over ranks, with and without recomputation
    /// (asserted equal); `inputs` are its micro-batches.
    pub fn sharded(model: &Clip, inputs: &[(Tensor<4>, Tensor<2, Int>)], dp: &mut DataParallel) -> (f64, GradientsParams) {
        // Summed over ranks as training sums them: in the optimiser's flat layout.
        let mut optim = fresh_optimiser();
        let mut summed = |dp: &mut DataParallel, grads| {
            let flat = dp.sum_gradients(optim.gather(model, grads).unwrap()).unwrap();
            optim.scatter(model, &flat)
        };
        let (loss, grads) = read_loss(dp.passes(|dp| gradients(model, inputs, &mut |m, i, t| dp.contrast(m, i, t, 1.0))).unwrap());
        let grads = summed(dp, grads);
        let (loss2, grads2) = read_loss(dp.passes(|dp| recompute::gradients(model, inputs, &mut |m, i, t| dp.contrast(m, i, t, 1.0))).unwrap());
        let grads2 = summed(dp, grads2);
        assert!((loss - loss2).abs() < 1e-6);
        // Recomputation runs the same sums; its backward pass accumulates in another order,
        // which a ResNet's BatchNorm amplifies to ~2e-5.
        let (diff, path, _) = max_relative_difference(model, &grads, &grads2);
        assert!(diff < 1e-4, "checkpointed sharded gradients differ at {path}: {diff}");
        (loss, grads)
    }
}

#[cfg(test)]
mod tests {
    use super::tests_support::*;
    use super::*;
    use burn::tensor::FloatDType;

    /// open_clip's `--accum-freq` semantics: the towers get the full-batch gradient; the logit
    /// scale's gradient is summed over the micro-batches (each computes the full loss).
    #[test]
    fn accumulation_gives_the_full_batch_gradient() {
        let device = Device::flex().autodiff();
        let model = seeded(&tiny(), 1, &device);
        let (full_loss, full) = plain(&model, &inputs(&[batch(0..8)], &device), None, 1.0);
        let (accum_loss, accum) = plain(&model, &inputs(&[batch(0..4), batch(4..8)], &device), None, 1.0);
        assert!((full_loss - accum_loss).abs() < 1e-5, "{full_loss} vs {accum_loss}");
        let values = |g: Option<Tensor<2>>| g.expect("gradient").into_data().try_to_vec::<f32>().unwrap();
        for id in [model.text.text_projection.id, model.text.positional_embedding.id] {
            let (a, b) = (values(full.get::<2>(id)), values(accum.get::<2>(id)));
            let diff = a.iter().zip(&b).map(|(x, y)| (x - y).abs()).fold(0.0f32, f32::max);
            let scale = a.iter().map(|x| x.abs()).fold(0.0f32, f32::max);
            assert!(scale > 0.0 && diff < 1e-5 * scale.max(1.0), "max diff {diff} (scale {scale})");
        }
        for (path, a, b) in paired(&model, &full, &accum).into_iter().filter(|(p, ..)| p != "logit_scale") {
            let diff = a.iter().zip(&b).map(|(x, y)| (x - y).abs()).fold(0.0f32, f32::max);
            let scale = a.iter().map(|x| x.abs()).fold(0.0f32, f32::max);
            assert!(diff <= 1e-5 * scale.max(1e-3), "{path}: max diff {diff} (scale {scale})");
        }
        let scale = |g: &GradientsParams| g.get::<1>(model.logit_scale.id).unwrap().into_data().try_to_vec::<f32>().unwrap()[0];
        assert!((scale(&accum) - 2.0 * scale(&full)).abs() < 1e-5, "{} vs {}", scale(&accum), scale(&full));
    }

    /// A fresh model's first step takes an untracked copy (cached features, the checkpointed
    /// forward pass) before its lazily initialised parameters exist: every parameter must still
    /// get a gradient, and the step must equal the one of a model already materialised.
    #[test]
    fn a_fresh_models_first_accumulated_or_checkpointed_step_trains_every_parameter() {
        let device = Device::flex().autodiff();
        let x = inputs(&[batch(0..4), batch(4..8)], &device);
        // Parameter ids differ between two models of one seed: gradients are compared by path.
        let by_path = |model: &Clip, g: &GradientsParams| -> Vec<(String, Vec<f32>)> { paired(model, g, g).into_iter().map(|(p, v, _)| (p, v)).collect() };
        let reference = seeded(&tiny(), 21, &device);
        let expected = by_path(&reference, &plain(&reference, &x, None, 1.0).1);
        assert_eq!(expected.len(), tensors(&reference));
        for checkpointing in [false, true] {
            // Not `seeded`: its parameters must still be unmaterialised when the step starts.
            let (fresh, grads) = alone_with_the_generator(|| {
                device.seed(21);
                let fresh = Clip::new(&tiny(), &device);
                let (_, grads) = if checkpointing { checkpointed(&fresh, &x, None, 1.0) } else { plain(&fresh, &x, None, 1.0) };
                (fresh, grads)
            });
            let got = by_path(&fresh, &grads);
            assert_eq!(got.len(), tensors(&fresh), "checkpointing {checkpointing}: parameters without gradients");
            for ((path, a), (_, b)) in expected.iter().zip(&got) {
                let diff = a.iter().zip(b).map(|(x, y)| (x - y).abs()).fold(0.0f32, f32::max);
                let scale = a.iter().map(|x| x.abs()).fold(1e-6f32, f32::max);
                assert!(diff < 1e-4 * scale, "checkpointing {checkpointing}, {path}: {diff} (scale {scale})");
            }
        }
    }

    /// Per-block recomputation gives the gradients of the plain backward pass, for both image
    /// towers, with and without accumulation, and with a locked image tower.
    #[test]
    fn grad_checkpointing_gives_the_same_gradients() {
        let device = Device::flex().autodiff();
        for config in [tiny(), resnet()] {
            let model = seeded(&config, 3, &device);
            let mk = |r: std::ops::Range<usize>| sized_batch(&config, r);
            for batches in [vec![mk(0..6)], vec![mk(0..3), mk(3..6)]] {
                let x = inputs(&batches, &device);
                let (plain_loss, plain_grads) = plain(&model, &x, None, 1.0);
                let (loss, checkpointed_grads) = checkpointed(&model, &x, None, 1.0);
                assert!((plain_loss - loss).abs() < 1e-5, "{plain_loss} vs {loss}");
                let (diff, path, count) = max_relative_difference(&model, &plain_grads, &checkpointed_grads);
                assert_eq!(count, tensors(&model), "every parameter has a gradient");
                assert!(diff < 1e-4, "{path}: relative difference {diff}");
            }
            let locked = Clip { visual: model.visual.clone().freeze(), ..model.clone() };
            let x = inputs(&[mk(0..4)], &device);
            let (_, plain_grads) = plain(&locked, &x, None, 1.0);
            let (_, checkpointed_grads) = checkpointed(&locked, &x, None, 1.0);
            let (diff, path, _) = max_relative_difference(&locked, &plain_grads, &checkpointed_grads);
            assert!(diff < 1e-4, "locked image tower, {path}: {diff}");
            assert!(paired(&locked, &plain_grads, &checkpointed_grads).iter().all(|(p, ..)| !p.starts_with("visual")));
        }
    }

    /// Mixed precision: the gradients arrive on the f32 master weights, in f32, close to the
    /// fp32 ones (bf16 keeps 8 significant bits); with and without checkpointing.
    #[test]
    fn amp_gradients_are_f32_and_close_to_fp32() {
        let device = Device::flex().autodiff();
        // (config, least cosine of a matrix's gradient, least cosine of the whole gradient). The
        // toy ResNet (4-channel stem, BatchNorm over few values) loses more: BatchNorm's backward
        // subtracts means from the bf16-rounded incoming gradient, and what is left is small.
        for (config, matrix_min, whole_min) in [(tiny(), 0.98, 0.99), (resnet(), 0.75, 0.85)] {
            let model = seeded(&config, 5, &device);
            let size = config.vision_cfg.image_size;
            let mut rng = crate::rng::Rng::new(1);
            let mut b = batch(0..6);
            for p in &mut b.images {
                p.data = (0..3 * size * size).map(|_| rng.range(-2.0, 2.0) as f32).collect();
                p.size = size;
            }
            let x = inputs(&[b], &device);
            let (loss32, g32) = plain(&model, &x, None, 1.0);
            for checkpointing in [false, true] {
                let (loss, g) = if checkpointing {
                    checkpointed(&model, &x, Some(FloatDType::BF16), 1024.0)
                } else {
                    plain(&model, &x, Some(FloatDType::BF16), 1024.0)
                };
                assert!((loss - loss32).abs() < 0.05 * loss32, "loss {loss} vs {loss32}");
                // Per parameter: sums with cancellation (biases, norms' gains, BatchNorm over the
                // few values of this toy ResNet) lose most to 8-bit mantissas, so vectors are not
                // checked one by one; every matrix and the whole gradient must point the same way.
                let (mut dot, mut na, mut nb) = (0f64, 0f64, 0f64);
                for (path, a, b) in paired(&model, &g32, &g) {
                    let b: Vec<f64> = b.iter().map(|y| *y as f64 / 1024.0).collect();
                    let (d, x, y) = a.iter().zip(&b).fold((0f64, 0f64, 0f64), |(d, x, y), (p, q)| (d + *p as f64 * q, x + (*p as f64).powi(2), y + q * q));
                    let matrix = !(path.ends_with("bias") || path.ends_with("beta") || path.ends_with("gamma") || path == "logit_scale");
                    if x > 1e-12 && matrix {
                        let cosine = d / (x * y).sqrt();
                        assert!(cosine > matrix_min, "{path}: cosine {cosine} (checkpointing {checkpointing})");
                    }
                    (dot, na, nb) = (dot + d, na + x, nb + y);
                }
                let cosine = dot / (na * nb).sqrt();
                assert!(cosine > whole_min, "whole gradient: cosine {cosine} (checkpointing {checkpointing})");
                assert!(((nb / na).sqrt() - 1.0).abs() < 0.1, "gradient norm ratio {}", (nb / na).sqrt());
            }
        }
    }

    /// Mixed precision's compute copy from a laid-out optimiser (its parameter buffers cast
    /// whole, gradients on low-precision leaves, gathered per dtype and cast once per buffer)
    /// gives the gradients of casts recorded per parameter (autodiff back to the f32 master
    /// weights), bit for bit, and so does the copy cast parameter by parameter (also with
    /// checkpointing); for a ViT and a ResNet (BatchNorm stays f32).
    #[test]
    fn a_laid_out_optimiser_casts_the_same_values() {
        use clip_model::precision::{cast_tower_ids, cast_towers};
        let device = Device::flex().autodiff();
        let dtype = FloatDType::BF16;
        for config in [tiny(), resnet()] {
            let model = seeded(&config, 3, &device);
            let x = inputs(&[sized_batch(&config, 0..4)], &device);
            // Recorded casts: the gradients arrive on the master weights.
            let cast = cast_towers(&model, dtype);
            let (image, text) = (cast.encode_image(x[0].0.clone()), cast.encode_text(x[0].1.clone()));
            let c = contrast::local(&cast, image.clone(), text.clone(), 1.0);
            let mut reference = GradientsAccumulator::<Clip>::new();
            reference.accumulate(&model, c.grads);
            let towers = recompute::vjp(image, c.image_grad) + recompute::vjp(text, c.text_grad);
            reference.accumulate(&model, GradientsParams::from_grads(towers.backward(), &model));
            let reference = reference.grads();

            let mut optim = fresh_optimiser();
            // Lays the parameters out: the buffers hold the model's values.
            optim.gather(&model, plain(&model, &x, None, 1.0).1).unwrap();
            let ids = cast_tower_ids(&model);
            assert_eq!(optim.cast_views(dtype, &ids).len(), ids.len(), "the optimiser holds every cast parameter");
            let run = |optimiser: &AdamW, checkpointing: bool| {
                let compute = compute_model(&model, Some(dtype), optimiser);
                let local = &mut |m: &Clip, i, t| Ok(contrast::local(m, i, t, 1.0));
                if checkpointing { recompute::gradients(&compute, &x, local) } else { gradients(&compute, &x, local) }.unwrap().1
            };
            for (what, optimiser) in [("laid out", &optim), ("one by one", &fresh_optimiser())] {
                for (path, a, b) in paired(&model, &reference, &run(optimiser, false)) {
                    assert_eq!(a, b, "{path}: {what}");
                }
            }
            // Recomputation adds a block's incoming gradients in another order (bf16 roundings
            // differ from the plain pass's): laid out against one by one there.
            let one_by_one = run(&fresh_optimiser(), true);
            for (path, a, b) in paired(&model, &one_by_one, &run(&optim, true)) {
                assert_eq!(a, b, "{path}: laid out, checkpointing");
            }
            // Gathered per dtype and cast once per buffer: the same f32 gradients.
            let compute = compute_model(&model, Some(dtype), &optim);
            let (_, grads) = gradients(&compute, &x, &mut |m, i, t| Ok(contrast::local(m, i, t, 1.0))).unwrap();
            let flat = optim.gather(&model, grads).unwrap();
            let gathered = optim.scatter(&model, &flat);
            for (path, a, b) in paired(&model, &reference, &gathered) {
                assert_eq!(a, b, "{path}: gathered");
            }
        }
    }

    /// f16 steps: loss scaling skips an overflowing step and halves the scale; pure f16 keeps
    /// its weights in f16 and still learns.
    #[test]
    fn f16_loss_scaling_and_pure_low_precision_steps() {
        let device = Device::flex().autodiff();
        let config = tiny();
        for precision in [Precision::Amp, Precision::F16, Precision::Bf16, Precision::AmpBf16] {
            let mut model = seeded(&config, 9, &device);
            if let Some(dtype) = precision.storage_dtype() {
                model = store_towers(&model, dtype);
                assert_eq!(model.text.text_projection.val().dtype(), burn::tensor::DType::from(dtype));
                assert!(model.text.text_projection.val().is_require_grad());
            }
            let mut optim = AdamW::new(AdamWConfig::for_model(&config, 0.1), &CLIP_BOUNDS);
            let mut scaler = LossScaler::new(precision);
            let options = StepOptions { precision, grad_checkpointing: false, max_norm: Some(1.0) };
            let batches = [batch(0..8)];
            if scaler.enabled {
                // A scale that overflows f16 (max 65504) in the backward pass: skipped, halved.
                scaler.scale = 1e30;
                let (m, outcome) = step(model, &mut optim, &mut scaler, &batches, 1e-3, &options, None, &device).unwrap();
                model = m;
                assert!(!outcome.applied && scaler.scale == 5e29, "{outcome:?} {scaler:?}");
                scaler = LossScaler::new(precision);
            }
            // At the initial 2^16 the first f16 steps may overflow (as with PyTorch's GradScaler).
            let mut losses = Vec::new();
            for _ in 0..24 {
                let (m, outcome) = step(model, &mut optim, &mut scaler, &batches, 3e-3, &options, None, &device).unwrap();
                model = m;
                assert!(outcome.loss.is_finite(), "{precision:?}: {outcome:?}");
                assert!(outcome.applied || scaler.enabled, "{precision:?}: {outcome:?}");
                if outcome.applied {
                    losses.push(outcome.loss);
                }
            }
            assert!(losses.len() >= 10, "{precision:?}: {} steps applied", losses.len());
            assert!(losses[losses.len() - 1] < 0.8 * losses[0], "{precision:?} does not learn: {losses:?}");
        }
    }

    /// open_clip's clamp of the temperature, now the optimiser's bound on the model's own path:
    /// a logit scale above ln 100 comes back clamped after a step, still trainable.
    #[test]
    fn a_step_clamps_the_logit_scale() {
        let device = Device::flex().autodiff();
        let config = tiny();
        let mut model = seeded(&config, 4, &device);
        model.logit_scale = model.logit_scale.map(|t| Tensor::from_inner(t.inner().ones_like() * 7.0).require_grad());
        let mut optim = AdamW::new(AdamWConfig::for_model(&config, 0.1), &CLIP_BOUNDS);
        let mut scaler = LossScaler::new(Precision::Fp32);
        let options = StepOptions { precision: Precision::Fp32, grad_checkpointing: false, max_norm: None };
        let (model, outcome) = step(model, &mut optim, &mut scaler, &[batch(0..4)], 1e-3, &options, None, &device).unwrap();
        assert!(outcome.applied);
        assert!((model.logit_scale.val().into_scalar::<f32>() - 100f32.ln()).abs() < 1e-6);
        assert!(model.logit_scale.val().is_require_grad());
    }

    #[test]
    fn a_toml_config_becomes_flags_that_the_command_line_overrides() {
        let dir = std::env::temp_dir().join(format!("clip-burn-toml-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("run.toml");
        std::fs::write(&file, "model = \"ViT-B-32\"\nbatch_size = 32\nlock_image = true\nlr = 0.001\n").unwrap();
        let argv: Vec<String> =
            ["clip-burn", "train", "--config", file.to_str().unwrap(), "--batch-size", "8"].iter().map(|s| s.to_string()).collect();
        let out = expand_config(argv).unwrap();
        let pos = |flag: &str| out.iter().position(|a| a == flag).unwrap();
        assert_eq!(out[pos("--model") + 1], "ViT-B-32");
        assert!(out.contains(&"--lock-image".to_string()));
        // The file's --batch-size comes first; the command line's, later, wins in clap.
        let last = out.iter().rposition(|a| a == "--batch-size").unwrap();
        assert_eq!(out[last + 1], "8");
        std::fs::write(&file, "model = [1, 2]\n").unwrap();
        let argv: Vec<String> = ["clip-burn", "train", "--config", file.to_str().unwrap()].iter().map(|s| s.to_string()).collect();
        assert!(expand_config(argv).unwrap_err().to_string().contains("model"));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}

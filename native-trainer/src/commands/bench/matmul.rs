//! `clip-burn bench matmul`: the device's matmul, checked and timed on its own. First every
//! layout a CLIP training step hands the matmul (transposed views, batches, a broadcast rhs,
//! attention heads permuted out of one projection, a slice at an offset) against the same
//! product on the CPU; then the time of each `--shape` in TFLOP/s. Whichever routine the build
//! and `CUBEK_MATMUL` choose is what runs (cuBLAS under `CUBEK_MATMUL=cublas` on CUDA), so two
//! runs compare two routines on the same GPU (tests/gpu/race-matmul.sh).

use std::time::Instant;

use anyhow::{bail, Context, Result};
use burn::tensor::{Device, FloatDType, Tensor, TensorData};
use serde::Serialize;

use crate::model_args::device;
use crate::rng::Rng;

#[derive(clap::Args, Debug)]
pub struct MatmulArgs {
    /// Element type of the checked and timed matmuls (f32 runs on TF32 tensor cores on CUDA).
    #[arg(long, value_enum, default_value_t = Dtype::Bf16)]
    dtype: Dtype,
    /// Timed repetitions of each shape, after two untimed ones.
    #[arg(long, default_value_t = 20, value_parser = crate::usage::at_least(1usize))]
    steps: usize,
    /// A shape to time, `MxKxN` or `BxMxKxN` (repeatable). Default: a 4096 cube and ViT-B-32's
    /// GEMMs at batch 256 (the QKV and MLP projections over 12800 tokens, the attention scores
    /// of 3072 heads).
    #[arg(long = "shape")]
    shapes: Vec<String>,
    /// Print one JSON object instead of text.
    #[arg(long)]
    json: bool,
}

#[derive(clap::ValueEnum, Clone, Copy, Debug)]
enum Dtype {
    F32,
    F16,
    Bf16,
}

impl Dtype {
    fn float(self) -> FloatDType {
        match self {
            Dtype::F32 => FloatDType::F32,
            Dtype::F16 => FloatDType::F16,
            Dtype::Bf16 => FloatDType::BF16,
        }
    }

    /// Largest error allowed relative to the largest reference value: the output's rounding
    /// (the inputs are small integers, exact in every dtype, and their products sum exactly in
    /// an f32 accumulator).
    fn tolerance(self) -> f32 {
        match self {
            Dtype::F32 => 1e-5,
            Dtype::F16 => 1e-3,
            Dtype::Bf16 => 8e-3,
        }
    }
}

#[derive(Serialize)]
struct Check {
    layout: &'static str,
    max_abs_error: f32,
    max_abs_reference: f32,
    ok: bool,
}

#[derive(Serialize)]
struct Timing {
    shape: [usize; 4],
    ms: f64,
    tflops: f64,
}

#[derive(Serialize)]
struct Report {
    device: String,
    dtype: String,
    routine: String,
    checks: Vec<Check>,
    timings: Vec<Timing>,
}

const DEFAULT_SHAPES: [[usize; 4]; 4] = [[1, 4096, 4096, 4096], [1, 12800, 768, 2304], [1, 12800, 3072, 768], [3072, 50, 64, 50]];

pub fn run(args: MatmulArgs, device_name: &str) -> Result<()> {
    let shapes = match args.shapes.is_empty() {
        true => DEFAULT_SHAPES.to_vec(),
        false => args.shapes.iter().map(|s| parse_shape(s).map_err(|e| crate::usage::usage(format!("{e:#}")))).collect::<Result<_>>()?,
    };
    let target = device(device_name)?;
    let cpu = Device::flex();
    let checks: Vec<Check> = LAYOUTS
        .iter()
        .map(|&(layout, build)| {
            let expected = build(&cpu, None);
            let got = build(&target, Some(args.dtype.float()));
            compare(layout, &expected, &got, args.dtype.tolerance())
        })
        .collect();
    let timings = shapes.iter().map(|&shape| time(shape, args.dtype.float(), args.steps, &target)).collect::<Result<Vec<_>>>()?;
    let report = Report {
        device: device_name.to_string(),
        dtype: format!("{:?}", args.dtype).to_lowercase(),
        routine: std::env::var("CUBEK_MATMUL").unwrap_or_else(|_| "shipped".into()),
        checks,
        timings,
    };
    let failed: Vec<&str> = report.checks.iter().filter(|c| !c.ok).map(|c| c.layout).collect();
    if args.json {
        crate::output::print(serde_json::to_string(&report)?)?;
    } else {
        let mut text = format!("matmul on {} ({}, routine {}):", report.device, report.dtype, report.routine);
        for c in &report.checks {
            text += &format!("\n  {:<18} max error {:.3e} of {:.3e}  {}", c.layout, c.max_abs_error, c.max_abs_reference, if c.ok { "ok" } else { "WRONG" });
        }
        for t in &report.timings {
            let [b, m, k, n] = t.shape;
            text += &format!("\n  {b}x{m}x{k}x{n}: {:.3} ms, {:.3} TFLOP/s", t.ms, t.tflops);
        }
        crate::output::print(text)?;
    }
    if !failed.is_empty() {
        bail!("the matmul on {device_name} differs from the CPU's for: {}", failed.join(", "));
    }
    Ok(())
}

fn parse_shape(text: &str) -> Result<[usize; 4]> {
    let dims = text.split('x').map(|d| d.trim().parse::<usize>()).collect::<Result<Vec<_>, _>>();
    let dims = dims.with_context(|| format!("--shape {text}: expected MxKxN or BxMxKxN"))?;
    let shape = match dims[..] {
        [m, k, n] => [1, m, k, n],
        [b, m, k, n] => [b, m, k, n],
        _ => bail!("--shape {text}: expected MxKxN or BxMxKxN"),
    };
    if shape.contains(&0) {
        bail!("--shape {text}: every size must be positive");
    }
    // Each operand and the product must be a tensor a device can index with 32 bits.
    let [b, m, k, n] = shape;
    let elements = |x: usize, y: usize| b.checked_mul(x).and_then(|v| v.checked_mul(y)).filter(|&v| v <= i32::MAX as usize);
    if elements(m, k).is_none() || elements(k, n).is_none() || elements(m, n).is_none() {
        bail!("--shape {text}: an operand over 2^31 elements");
    }
    Ok(shape)
}

/// Small integers (-8..=8) drawn from `seed`: exact in f16, bf16 and TF32.
fn ints(shape: &[usize], seed: u64) -> TensorData {
    let mut rng = Rng::new(seed);
    let values = (0..shape.iter().product()).map(|_| rng.below(17) as f32 - 8.0).collect::<Vec<_>>();
    TensorData::new(values, shape.to_vec())
}

/// A tensor of `ints` on `device`, in `dtype` (None: f32, the reference).
fn input<const D: usize>(shape: [usize; D], seed: u64, device: &Device, dtype: Option<FloatDType>) -> Tensor<D> {
    let t = Tensor::<D>::from_data(ints(&shape, seed), device);
    match dtype {
        Some(dtype) => t.cast(dtype),
        None => t,
    }
}

/// The product's values in f32, row-major (empty if they cannot be read: the check fails).
fn values<const D: usize>(t: Tensor<D>) -> Vec<f32> {
    t.cast(FloatDType::F32).into_data().try_to_vec::<f32>().unwrap_or_default()
}

type Layout = fn(&Device, Option<FloatDType>) -> Vec<f32>;

/// The layouts checked, each built the same way on the device and on the CPU.
const LAYOUTS: [(&str, Layout); 9] = [
    ("plain", |d, t| values(input([96, 64], 1, d, t).matmul(input([64, 80], 2, d, t)))),
    ("lhs transposed", |d, t| values(input([64, 96], 1, d, t).transpose().matmul(input([64, 80], 2, d, t)))),
    ("rhs transposed", |d, t| values(input([96, 64], 1, d, t).matmul(input([80, 64], 2, d, t).transpose()))),
    ("both transposed", |d, t| values(input([64, 96], 1, d, t).transpose().matmul(input([80, 64], 2, d, t).transpose()))),
    ("batched", |d, t| values(input([3, 96, 64], 1, d, t).matmul(input([3, 64, 80], 2, d, t)))),
    ("rhs broadcast", |d, t| values(input([3, 96, 64], 1, d, t).matmul(input([1, 64, 80], 2, d, t)))),
    // Heads split from one [B, T, H, D] projection: q [B, H, T, D] @ k^T [B, H, D, T].
    ("attention heads", |d, t| {
        let q = input([2, 50, 4, 32], 1, d, t).permute([0, 2, 1, 3]);
        let k = input([2, 50, 4, 32], 2, d, t).permute([0, 2, 3, 1]);
        values(q.matmul(k))
    }),
    ("slice at offset", |d, t| values(input([128, 64], 1, d, t).narrow(0, 16, 96).matmul(input([64, 80], 2, d, t)))),
    ("one row", |d, t| values(input([1, 64], 1, d, t).matmul(input([64, 80], 2, d, t)))),
];

fn compare(layout: &'static str, expected: &[f32], got: &[f32], tolerance: f32) -> Check {
    let max_abs_reference = expected.iter().fold(0f32, |m, v| m.max(v.abs()));
    let max_abs_error = match expected.len() == got.len() {
        true => expected.iter().zip(got).fold(0f32, |m, (e, g)| m.max((e - g).abs())),
        false => f32::INFINITY,
    };
    // NaN fails too: it compares false.
    let ok = max_abs_error <= tolerance * max_abs_reference.max(1.0);
    Check { layout, max_abs_error, max_abs_reference, ok }
}

/// Milliseconds per `[b, m, k] @ [b, k, n]` and TFLOP/s, over `steps` after two untimed calls.
fn time(shape: [usize; 4], dtype: FloatDType, steps: usize, device: &Device) -> Result<Timing> {
    let [b, m, k, n] = shape;
    let lhs = Tensor::<3>::random([b, m, k], burn::tensor::Distribution::Uniform(-1.0, 1.0), device).cast(dtype);
    let rhs = Tensor::<3>::random([b, k, n], burn::tensor::Distribution::Uniform(-1.0, 1.0), device).cast(dtype);
    // The products are kept until the device is synchronised: a lazy backend need not compute
    // what nothing holds.
    let sync = || device.sync().map_err(|e| anyhow::anyhow!("synchronising {device:?}: {e:?}"));
    let warm: Vec<Tensor<3>> = (0..2).map(|_| lhs.clone().matmul(rhs.clone())).collect();
    sync()?;
    drop(warm);
    let started = Instant::now();
    let timed: Vec<Tensor<3>> = (0..steps).map(|_| lhs.clone().matmul(rhs.clone())).collect();
    sync()?;
    let seconds = started.elapsed().as_secs_f64() / steps as f64;
    drop(timed);
    Ok(Timing { shape, ms: seconds * 1e3, tflops: 2.0 * (b * m * k * n) as f64 / seconds / 1e12 })
}

//! `clip-burn bench allreduce`: data-parallel training's gradient all-reduce, alone, in one
//! process: a one-rank job (the sum over one rank is the buffer itself, so the check is exact)
//! through the transport's own path (NCCL: `ncclAllReduce` on the device buffer) and through
//! host memory (read back, summed, written again: what TCP does), on a buffer the size of a
//! model's gradients. The buffer is written by a kernel just before the all-reduce and read by
//! one just after, so a collective that ran out of order with burn's kernels fails the check.
//! One GPU is enough; summing across GPUs needs `clip-burn launch` on a machine with several.

use std::net::TcpListener;
use std::time::Instant;

use anyhow::{bail, Context, Result};
use burn::tensor::{Device, Int, Tensor};
use serde::Serialize;

use crate::commands::host;
use crate::dist::{connect, through_host, Collective, Launch, Transport};
use crate::model_args::device;

#[derive(clap::Args, Debug)]
pub struct AllReduceArgs {
    /// Values in the buffer (f32). Default: ViT-B-32's parameters.
    #[arg(long, default_value_t = 151_277_313, value_parser = crate::usage::between(1usize, i32::MAX as usize))]
    values: usize,
    /// The transport, as `train --dist-backend`.
    #[arg(long = "dist-backend", value_enum, default_value_t = Transport::Auto)]
    transport: Transport,
    /// Timed repetitions of each path, after one untimed.
    #[arg(long, default_value_t = 10, value_parser = crate::usage::at_least(1usize))]
    steps: usize,
    /// Print one JSON object instead of text.
    #[arg(long)]
    json: bool,
}

#[derive(Serialize)]
struct Report {
    device: String,
    transport: String,
    values: usize,
    /// Milliseconds per all-reduce through the transport's own path.
    transport_ms: f64,
    /// Milliseconds per all-reduce through host memory.
    through_host_ms: f64,
}

/// A port nothing listens on now, for the one-rank rendezvous.
fn free_port() -> Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0").context("finding a free local port")?.local_addr()?.port())
}

/// `x` as the step would write it: small integers from a kernel, exact in f32 and in any sum.
fn buffer(n: usize, device: &Device) -> Tensor<1> {
    Tensor::<1, Int>::arange(0..n as i64, device).remainder_scalar(1021).float() - 510.0
}

/// Whether `got` is exactly `2 * expected`, else the first index where it is not.
fn check(what: &str, expected: &[f32], got: &[f32]) -> Result<()> {
    if expected.len() != got.len() {
        bail!("{what}: {} values came back for {}", got.len(), expected.len());
    }
    if let Some(i) = expected.iter().zip(got).position(|(e, g)| 2.0 * e != *g) {
        bail!("{what}: value {i} is {} where the one-rank sum doubled is {}", got[i], 2.0 * expected[i]);
    }
    Ok(())
}

/// Seconds per call of `reduce` on `x`, each waited for on the device.
fn time(steps: usize, device: &Device, x: &Tensor<1>, mut reduce: impl FnMut(Tensor<1>) -> Result<Tensor<1>>) -> Result<f64> {
    let sync = |d: &Device| d.sync().map_err(|e| anyhow::anyhow!("waiting for the device: {e:?}"));
    drop(reduce(x.clone())?);
    sync(device)?;
    let start = Instant::now();
    for _ in 0..steps {
        drop(reduce(x.clone())?);
    }
    sync(device)?;
    Ok(start.elapsed().as_secs_f64() / steps as f64)
}

pub fn run(args: AllReduceArgs, device_name: &str) -> Result<()> {
    let target = device(device_name)?;
    let local_rank = device_name.strip_prefix("cuda:").and_then(|i| i.parse().ok()).unwrap_or(0);
    let launch = Launch { rank: 0, world: 1, local_rank, master_addr: "127.0.0.1".into(), master_port: free_port()? };
    let mut comm: Box<dyn Collective> = connect(args.transport, &launch, device_name)?;
    let x = buffer(args.values, &target);
    let expected = host(x.clone())?;
    let doubled = comm.all_reduce_sum_tensor(x.clone())? * 2.0;
    check("the transport's all-reduce", &expected, &host(doubled)?)?;
    let doubled = through_host(comm.as_mut(), x.clone())? * 2.0;
    check("the all-reduce through host memory", &expected, &host(doubled)?)?;
    let report = Report {
        device: device_name.to_string(),
        transport: format!("{:?}", args.transport).to_lowercase(),
        values: args.values,
        transport_ms: 1e3 * time(args.steps, &target, &x, |v| comm.all_reduce_sum_tensor(v))?,
        through_host_ms: 1e3 * time(args.steps, &target, &x, |v| through_host(comm.as_mut(), v))?,
    };
    if args.json {
        crate::output::print(serde_json::to_string(&report)?)?;
    } else {
        crate::output::print(format!(
            "all-reduce of {} f32 on {} ({}, one rank): {:.2} ms through the transport, {:.2} ms through host memory; both exact",
            report.values, report.device, report.transport, report.transport_ms, report.through_host_ms
        ))?;
    }
    Ok(())
}

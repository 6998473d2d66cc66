//! `clip-burn launch`: starts the processes of a data-parallel job on this machine, as torchrun
//! does: `--nproc-per-node` copies of `clip-burn <ARGS>`, each with `RANK`, `LOCAL_RANK`,
//! `WORLD_SIZE`, `LOCAL_WORLD_SIZE`, `MASTER_ADDR`, `MASTER_PORT` set. On several machines, run
//! it on each with the same `--nnodes`, `--master-addr`, `--master-port` and its own
//! `--node-rank`. If one process fails, the others on this node are stopped.

use std::process::{Child, Command};
use std::time::Duration;

use anyhow::{bail, Context, Result};

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Processes on this machine (one per GPU).
    #[arg(long, default_value_t = 1, value_parser = crate::usage::between(1usize, 1024))]
    nproc_per_node: usize,
    /// Machines in the job.
    #[arg(long, default_value_t = 1, value_parser = crate::usage::between(1usize, 65536))]
    nnodes: usize,
    /// This machine's index, 0 to nnodes - 1 (node 0 hosts rank 0).
    #[arg(long, default_value_t = 0)]
    node_rank: usize,
    /// Address of node 0, reachable from every node.
    #[arg(long, default_value = "127.0.0.1")]
    master_addr: String,
    #[arg(long, default_value_t = 29500)]
    master_port: u16,
    /// The clip-burn command every process runs, e.g. `--device cuda train --config run.toml`.
    #[arg(last = true, required = true)]
    command: Vec<String>,
}

pub fn run(args: Args) -> Result<()> {
    if args.node_rank >= args.nnodes {
        return Err(crate::usage::usage(format!("--node-rank must be below --nnodes ({})", args.nnodes)));
    }
    let exe = std::env::current_exe().context("finding the clip-burn executable")?;
    let world = args.nproc_per_node * args.nnodes;
    let mut children: Vec<(usize, Child)> = Vec::new();
    for local in 0..args.nproc_per_node {
        let rank = args.node_rank * args.nproc_per_node + local;
        let child = Command::new(&exe)
            .args(&args.command)
            .env("RANK", rank.to_string())
            .env("LOCAL_RANK", local.to_string())
            .env("WORLD_SIZE", world.to_string())
            .env("LOCAL_WORLD_SIZE", args.nproc_per_node.to_string())
            .env("MASTER_ADDR", &args.master_addr)
            .env("MASTER_PORT", args.master_port.to_string())
            .spawn()
            .with_context(|| format!("starting rank {rank}"))?;
        children.push((rank, child));
    }
    // Wait for all; the first failure stops the rest (their collectives would wait forever).
    let mut failed: Option<(usize, std::process::ExitStatus)> = None;
    while !children.is_empty() {
        let mut i = 0;
        while i < children.len() {
            match children[i].1.try_wait()? {
                Some(status) => {
                    let (rank, _) = children.remove(i);
                    if !status.success() && failed.is_none() {
                        failed = Some((rank, status));
                        for (_, other) in &mut children {
                            let _ = other.kill();
                        }
                    }
                }
                None => i += 1,
            }
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    match failed {
        Some((rank, status)) => bail!("rank {rank} failed ({status}); the other processes on this node were stopped"),
        None => Ok(()),
    }
}

//! `clip-burn`: the native command line of clip-burn.

mod allocator;
mod checkpoint;
mod commands;
mod contrast;
mod data;
mod dist;
mod eval;
mod model_args;
mod optim;
mod plot;
mod precision;
mod recompute;
mod rng;
mod synth;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "clip-burn", version, about = "CLIP on burn: tokenize, embed, classify, convert, generate data, train, evaluate and plot")]
struct Cli {
    /// Device: cpu, wgpu, cuda[:N], or best (the best one compiled in).
    #[arg(long, global = true, default_value = "best")]
    device: String,

    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Print CLIP token ids (one JSON array per text; reads stdin lines when no TEXT is given).
    Tokenize(commands::tokenize::Args),
    /// Print projected (unnormalised) image and text features as JSON.
    Embed(commands::embed::Args),
    /// Zero-shot classification of images against labels.
    Classify(commands::classify::Args),
    /// Convert weights (open_clip, OpenAI, Hugging Face) to a burnpack for the browser and fast loading.
    Convert(commands::convert::Args),
    /// Write the synthetic shapes data set (tar shards, CSV + images, zero-shot image folder).
    Synth(commands::synth::Args),
    /// Contrastive training (open_clip's flags; `--config run.toml` for a settings file).
    Train(commands::train::Args),
    /// Evaluate weights: zero-shot classification or image-text retrieval.
    #[command(subcommand)]
    Eval(commands::eval::Args),
    /// Draw a run's loss, learning-rate and evaluation curves to a PNG.
    Plot(commands::plot::Args),
    /// Start a data-parallel job's processes on this machine (like torchrun): `launch --nproc-per-node 8 -- --device cuda train ...`.
    Launch(commands::launch::Args),
    /// Benchmarks: `bench train` measures training throughput on synthetic data.
    #[command(subcommand)]
    Bench(commands::bench::Args),
}

fn main() -> ExitCode {
    // A panic inside a library is a bug; still, the user gets one line, not a trace.
    std::panic::set_hook(Box::new(|info| {
        let msg = info
            .payload()
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| info.payload().downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "unknown panic".into());
        eprintln!("error: internal error: {}", msg.lines().next().unwrap_or(""));
        std::process::exit(1);
    }));
    let argv = match commands::train::expand_config(std::env::args().collect()) {
        Ok(argv) => argv,
        Err(e) => {
            eprintln!("error: {e:#}");
            return ExitCode::from(2);
        }
    };
    let cli = Cli::parse_from(argv);
    // `best` becomes the backend it stands for here, so data-parallel ranks spread over
    // `cuda:LOCAL_RANK` and reports name the device.
    let device = clip_model::device::resolve(&cli.device);
    if matches!(cli.command, Command::Embed(_) | Command::Classify(_) | Command::Eval(_)) {
        allocator::keep_freed_memory();
    }
    let result = match cli.command {
        Command::Tokenize(args) => commands::tokenize::run(args),
        Command::Embed(args) => commands::embed::run(args, &device),
        Command::Classify(args) => commands::classify::run(args, &device),
        Command::Convert(args) => commands::convert::run(args, &device),
        Command::Synth(args) => commands::synth::run(args),
        Command::Train(args) => commands::train::run(args, &device),
        Command::Eval(args) => commands::eval::run(args, &device),
        Command::Plot(args) => commands::plot::run(args),
        Command::Launch(args) => commands::launch::run(args),
        Command::Bench(args) => commands::bench::run(args, &device),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            let chain: Vec<String> = e.chain().map(|c| c.to_string()).collect();
            eprintln!("error: {}", chain.join(": ").replace('\n', " "));
            ExitCode::from(1)
        }
    }
}

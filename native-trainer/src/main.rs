//! `clip-burn`: the native command line of clip-burn.

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use clip_trainer::{allocator, commands, output, usage};

#[derive(Parser)]
#[command(name = "clip-burn", version, about = "CLIP on burn: tokenize, embed, classify, convert, generate data, train, evaluate and plot")]
struct Cli {
    /// Device: cpu, wgpu, cuda[:N], or best (the best one compiled in).
    #[arg(long, global = true, default_value = "best", value_parser = usage::device_name)]
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
    let argv = match arguments().and_then(commands::train::expand_config) {
        Ok(argv) => argv,
        Err(e) => return fail(e),
    };
    let cli = match Cli::try_parse_from(argv) {
        Ok(cli) => cli,
        Err(e) => return clap_error(e),
    };
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
        Err(e) => fail(e),
    }
}

/// The command line, each argument as UTF-8 (a usage error names the first that is not).
fn arguments() -> anyhow::Result<Vec<String>> {
    std::env::args_os()
        .enumerate()
        .map(|(i, arg)| {
            arg.into_string().map_err(|arg| usage::usage(format!("argument {i} ({arg:?}) is not valid UTF-8")))
        })
        .collect()
}

/// Reports a failure on one line: exit status 2 for a usage error, 1 for any other; a write to a
/// closed stdout ends the process quietly, as other Unix tools do (status 141, as for SIGPIPE).
fn fail(e: anyhow::Error) -> ExitCode {
    if output::is_closed_stdout(&e) {
        return ExitCode::from(141);
    }
    let chain: Vec<String> = e.chain().map(|c| c.to_string()).collect();
    eprintln!("error: {}", output::one_line(&chain.join(": ")));
    ExitCode::from(if usage::is_usage(&e) { 2 } else { 1 })
}

/// clap's own errors on one line plus its one-line hint; `--help` and `--version` as clap prints them.
fn clap_error(e: clap::Error) -> ExitCode {
    use clap::error::ErrorKind;
    if matches!(e.kind(), ErrorKind::DisplayHelp | ErrorKind::DisplayVersion | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand) {
        let _ = e.print();
        return ExitCode::from(if e.kind() == ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand { 2 } else { 0 });
    }
    // clap's first paragraph is the error (with the missing arguments, if any, on lines of
    // their own); then a tip, the usage and "For more information".
    let text = e.render().to_string();
    let (error, rest) = text.trim_start().split_once("\n\n").unwrap_or((text.trim_start(), ""));
    let error = error.strip_prefix("error: ").unwrap_or(error);
    eprintln!("error: {}", output::one_line(error));
    if let Some(hint) = rest.lines().map(str::trim).find(|l| l.starts_with("tip:") || l.starts_with("For more information")) {
        eprintln!("{hint}");
    }
    ExitCode::from(2)
}

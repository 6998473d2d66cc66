//! `clip-burn`: the native command line of clip-burn.

mod commands;
mod model_args;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "clip-burn", version, about = "CLIP on burn: tokenize, embed, classify and convert models")]
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
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Tokenize(args) => commands::tokenize::run(args),
        Command::Embed(args) => commands::embed::run(args, &cli.device),
        Command::Classify(args) => commands::classify::run(args, &cli.device),
        Command::Convert(args) => commands::convert::run(args, &cli.device),
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

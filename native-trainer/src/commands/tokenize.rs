use std::io::{BufRead, Write};

use anyhow::{Context, Result};
use clip_model::tokenizer::Tokenizer;

use crate::output::StdoutError;

/// The longest `--context-length` (the models' is 77; a start and an end token need 2).
const MAX_CONTEXT_LENGTH: usize = 1 << 16;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Texts to tokenize; stdin lines when none are given.
    texts: Vec<String>,
    /// Context length (ids are padded with 0 or cut, the end token kept last).
    #[arg(long, default_value_t = 77, value_parser = crate::usage::between(2usize, MAX_CONTEXT_LENGTH))]
    context_length: usize,
}

pub fn run(args: Args) -> Result<()> {
    let tok = Tokenizer::new()?;
    let mut out = std::io::stdout().lock();
    let mut emit = |text: &str| -> Result<()> {
        writeln!(out, "{}", serde_json::to_string(&tok.encode_padded(text, args.context_length))?).map_err(|e| StdoutError(e).into())
    };
    if args.texts.is_empty() {
        for (i, line) in std::io::stdin().lock().lines().enumerate() {
            emit(&line.with_context(|| format!("reading stdin line {}", i + 1))?)?;
        }
    } else {
        for text in &args.texts {
            emit(text)?;
        }
    }
    out.flush().map_err(|e| StdoutError(e).into())
}

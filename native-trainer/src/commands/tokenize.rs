use std::io::{BufRead, Write};

use anyhow::Result;
use clip_model::tokenizer::Tokenizer;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Texts to tokenize; stdin lines when none are given.
    texts: Vec<String>,
    /// Context length (ids are padded with 0 or cut, the end token kept last).
    #[arg(long, default_value_t = 77)]
    context_length: usize,
}

pub fn run(args: Args) -> Result<()> {
    let tok = Tokenizer::new()?;
    let mut out = std::io::stdout().lock();
    let mut emit = |text: &str| -> Result<()> {
        writeln!(out, "{}", serde_json::to_string(&tok.encode_padded(text, args.context_length))?)?;
        Ok(())
    };
    if args.texts.is_empty() {
        for line in std::io::stdin().lock().lines() {
            emit(&line?)?;
        }
    } else {
        for text in &args.texts {
            emit(text)?;
        }
    }
    Ok(())
}

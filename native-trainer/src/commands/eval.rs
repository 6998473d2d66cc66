//! `clip-burn eval zero-shot|retrieval`: the evaluations of training, on any weights.

use std::path::PathBuf;

use anyhow::{Context, Result};

use crate::data::{Source, TableFormat};
use crate::eval::{self, ImageFolder};
use crate::model_args::{device, spinner, ModelArgs};

#[derive(clap::Subcommand, Debug)]
pub enum Args {
    /// Zero-shot top-1 / top-5 on an image folder (class sub-folders; optional classnames.txt, templates.txt).
    ZeroShot {
        #[command(flatten)]
        model: ModelArgs,
        /// The image folder.
        #[arg(long)]
        data: PathBuf,
        /// Templates file (one per line with `{}`); default the folder's templates.txt, else ImageNet's 80.
        #[arg(long)]
        templates: Option<PathBuf>,
        #[arg(long, default_value_t = 64, value_parser = crate::usage::at_least(1usize))]
        batch: usize,
    },
    /// Image-text retrieval recall@1/5/10 both ways on captioned pairs (tar shards or CSV).
    Retrieval {
        #[command(flatten)]
        model: ModelArgs,
        /// Tar shards (`dir/shard-{0000..0009}.tar`) or a CSV/TSV.
        #[arg(long)]
        data: String,
        /// Pairs to use (the first N).
        #[arg(long, default_value_t = 1000, value_parser = crate::usage::at_least(1usize))]
        num_samples: usize,
        #[arg(long, default_value = "filepath")]
        csv_img_key: String,
        #[arg(long, default_value = "title")]
        csv_caption_key: String,
        #[arg(long, default_value = "\t")]
        csv_separator: String,
        #[arg(long, default_value_t = 64, value_parser = crate::usage::at_least(1usize))]
        batch: usize,
    },
}

pub fn run(args: Args, device_name: &str) -> Result<()> {
    let device = device(device_name)?;
    let json = match args {
        Args::ZeroShot { model, data, templates, batch } => {
            let folder = ImageFolder::open(&data).context("--data")?;
            let templates = eval::templates(templates.as_deref(), &data).context("--templates")?;
            let model = model.load(&device)?;
            let bar = spinner(format!("zero-shot on {} images of {} classes", folder.images.len(), folder.classes.len()));
            let result = eval::zero_shot(&model, &folder, &templates, batch, &device)?;
            bar.finish_and_clear();
            serde_json::to_string_pretty(&result)?
        }
        Args::Retrieval { model, data, num_samples, csv_img_key, csv_caption_key, csv_separator, batch } => {
            let separator = crate::commands::train::separator(&csv_separator)?;
            let table = TableFormat { img_key: csv_img_key, caption_key: csv_caption_key, separator };
            let source = Source::open(&data, &table).context("--data")?;
            let pairs = eval::read_pairs(&source, num_samples);
            let model = model.load(&device)?;
            let bar = spinner(format!("retrieval on {} pairs", pairs.len()));
            let result = eval::retrieval(&model, &pairs, batch, &device)?;
            bar.finish_and_clear();
            serde_json::to_string_pretty(&result)?
        }
    };
    crate::output::print(json)?;
    Ok(())
}

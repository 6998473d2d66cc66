//! `--model` / `--weights` / `--device`, shared by the commands that load a model.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result};
use burn::tensor::Device;
use clip_model::{import, Clip, ClipConfig};
use indicatif::{ProgressBar, ProgressStyle};

#[derive(clap::Args, Debug)]
pub struct ModelArgs {
    /// An open_clip model name (RN50, ViT-B-32, ..., each also NAME-quickgelu) or a path to an
    /// open_clip / Hugging Face config JSON. Optional for a burnpack, and for Hugging Face
    /// weights with their `config.json` beside them.
    #[arg(long)]
    pub model: Option<String>,
    /// Weights: .safetensors (open_clip, OpenAI or Hugging Face layout), a .pt/.bin state dict,
    /// or a burnpack (.bpk) made by `clip-burn convert`.
    #[arg(long)]
    pub weights: PathBuf,
}

impl ModelArgs {
    /// The architecture: `--model`, else the `config.json` next to Hugging Face weights, else
    /// none (a burnpack carries its own).
    pub fn config(&self) -> Result<Option<ClipConfig>> {
        if let Some(model) = self.model.as_deref() {
            return parse_model(model).map(Some);
        }
        let beside = self.weights.with_file_name("config.json");
        if beside.is_file() {
            return parse_model(&beside.display().to_string()).map(Some);
        }
        Ok(None)
    }

    pub fn load(&self, device: &Device) -> Result<Clip> {
        let config = self.config()?;
        let spinner = spinner(format!("loading {}", self.weights.display()));
        let model = import::load_file(config.as_ref(), &self.weights, device)?;
        spinner.finish_and_clear();
        report_ignored_objects(&self.weights);
        Ok(model)
    }
}

/// Says on stderr which Python objects of a `torch.save` file were not used (parsed, never run):
/// an unknown GLOBAL beside the tensors is not an error, but not silent either.
fn report_ignored_objects(weights: &Path) {
    let is_pickle = std::fs::File::open(weights)
        .and_then(|mut f| {
            let mut head = [0u8; 4];
            std::io::Read::read_exact(&mut f, &mut head).map(|()| head)
        })
        .is_ok_and(|head| import::detect_format(&head).ok() == Some(import::FileFormat::Pytorch));
    let Some(ignored) = is_pickle.then(|| import::pytorch_ignored_objects(weights).ok()).flatten() else { return };
    if !ignored.is_empty() {
        eprintln!(
            "note: {}: ignored {} Python object(s) that are not tensors (parsed, not run): {}",
            crate::output::sanitised(&weights.display().to_string()),
            ignored.len(),
            crate::output::sanitised(&ignored.join(", "))
        );
    }
}

/// A preset name, or a config file.
pub fn parse_model(model: &str) -> Result<ClipConfig> {
    let path = Path::new(model);
    if model.ends_with(".json") || path.is_file() {
        let json = std::fs::read_to_string(path).with_context(|| format!("--model {model}"))?;
        return ClipConfig::from_json_auto(&json).with_context(|| format!("--model {model}"));
    }
    Ok(ClipConfig::preset(model)?)
}

pub fn device(name: &str) -> Result<Device> {
    clip_model::device::parse(name).context("--device")
}

/// A spinner on stderr (hidden when stderr is not a terminal).
pub fn spinner(message: String) -> ProgressBar {
    let bar = ProgressBar::new_spinner().with_message(message);
    bar.enable_steady_tick(Duration::from_millis(120));
    bar
}

/// A progress bar on stderr (hidden when stderr is not a terminal).
pub fn progress(len: u64, what: &str) -> ProgressBar {
    let bar = ProgressBar::new(len);
    bar.set_style(
        ProgressStyle::with_template(&format!("{{bar:40}} {{pos}}/{{len}} {what} [{{elapsed_precise}} < {{eta}}] {{per_sec}}"))
            .expect("valid template"),
    );
    bar
}

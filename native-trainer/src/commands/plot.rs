//! `clip-burn plot`: loss, learning rate and evaluation curves from a run's metrics.jsonl, as a PNG.

use std::path::PathBuf;

use anyhow::{bail, Context, Result};

use crate::plot::{palette, save_png, Panel, Series};

#[derive(clap::Args, Debug)]
pub struct Args {
    /// A run's metrics.jsonl (or its --logs directory).
    metrics: PathBuf,
    /// Output PNG.
    #[arg(long, default_value = "curves.png")]
    out: PathBuf,
    #[arg(long, default_value_t = 1200)]
    width: u32,
    #[arg(long, default_value_t = 900)]
    height: u32,
}

/// The evaluation metrics drawn on the accuracy panel, if present.
const ACCURACY_KEYS: [&str; 4] = ["zero_shot_top1", "zero_shot_top5", "image_to_text_r1", "text_to_image_r1"];

pub fn run(args: Args) -> Result<()> {
    let path = if args.metrics.is_dir() { args.metrics.join("metrics.jsonl") } else { args.metrics.clone() };
    let text = std::fs::read_to_string(&path).with_context(|| format!("{}", path.display()))?;
    let mut rows = Vec::new();
    for (i, line) in text.lines().enumerate().filter(|(_, l)| !l.trim().is_empty()) {
        let value: serde_json::Value =
            serde_json::from_str(line).with_context(|| format!("{}: line {} is not JSON", path.display(), i + 1))?;
        rows.push(value);
    }
    let series = |key: &str, color: usize| Series {
        name: key.replace('_', " "),
        points: rows
            .iter()
            .filter_map(|r| Some((r.get("step")?.as_f64()?, r.get(key)?.as_f64()?)))
            .collect(),
        color: palette(color),
    };
    let loss = series("loss", 0);
    if loss.points.is_empty() {
        bail!("{}: no training steps (lines with \"step\" and \"loss\")", path.display());
    }
    let accuracy: Vec<Series> =
        ACCURACY_KEYS.iter().enumerate().map(|(i, k)| series(k, i + 2)).filter(|s| !s.points.is_empty()).collect();
    let panels = [
        Panel { title: "training loss".into(), x_label: "step".into(), series: vec![loss], log_y: false },
        Panel { title: "learning rate".into(), x_label: "step".into(), series: vec![series("lr", 1)], log_y: false },
        Panel { title: "evaluation".into(), x_label: "step".into(), series: accuracy, log_y: false },
    ];
    save_png(&panels, args.width, args.height, &args.out)?;
    eprintln!("wrote {}", args.out.display());
    Ok(())
}

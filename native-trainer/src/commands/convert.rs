use std::path::PathBuf;

use anyhow::{Context, Result};
use clip_model::import::{self, StoreDType};

use crate::model_args::{device, spinner, ModelArgs};

#[derive(clap::ValueEnum, Clone, Copy, Debug)]
pub enum DType {
    F32,
    F16,
    Int8,
}

#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(flatten)]
    model: ModelArgs,
    /// The burnpack to write (the model config is embedded).
    #[arg(long)]
    out: PathBuf,
    /// Storage precision; f16 halves the size (BatchNorm statistics stay f32); int8 stores the
    /// weight matrices and kernels in int8 with a scale per output channel (about a quarter of
    /// f32), the rest in f16. Every file widens to f32 on load.
    #[arg(long, value_enum, default_value = "f32")]
    dtype: DType,
}

pub fn run(args: Args, device_name: &str) -> Result<()> {
    let device = device(device_name)?;
    let model = args.model.load(&device)?;
    let dtype = match args.dtype {
        DType::F32 => StoreDType::F32,
        DType::F16 => StoreDType::F16,
        DType::Int8 => StoreDType::Int8,
    };
    let bar = spinner(format!("writing {}", args.out.display()));
    let bytes = import::to_burnpack(&model, dtype)?;
    // Write next to the target and rename, so a crash never leaves a half-written file.
    let tmp = args.out.with_extension("bpk.partial");
    std::fs::write(&tmp, &bytes).with_context(|| format!("writing {}", tmp.display()))?;
    std::fs::rename(&tmp, &args.out).with_context(|| format!("writing {}", args.out.display()))?;
    bar.finish_and_clear();
    eprintln!("wrote {} ({:.1} MB, {:?})", args.out.display(), bytes.len() as f64 / 1e6, args.dtype);
    Ok(())
}

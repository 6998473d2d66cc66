//! Training checkpoints: one burnpack per save holding the model (so any command takes it as
//! `--weights`), the optimiser's moments and, as JSON metadata, the [`TrainState`] (step,
//! samples seen, data position, seed, settings). Written to a temporary file, synced, then
//! renamed: a checkpoint on disk is always complete, whenever the process dies.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use burn::prelude::*;
use clip_model::import::{self, StoreDType};
use clip_model::Clip;
use serde::{Deserialize, Serialize};

use crate::data::Position;
use crate::optim::AdamW;
use crate::precision::LossScaler;

/// Metadata key of the training state.
const STATE_KEY: &str = "train_state";

/// Everything besides tensors that a resumed run needs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainState {
    /// Optimiser steps completed.
    pub step: u64,
    pub samples_seen: u64,
    /// The data stream position after the last sample used; with `seed` this is the state of
    /// every random choice of the pipeline (order, shuffle buffer, crops).
    pub position: Position,
    pub seed: u64,
    /// The run's settings as given (flags / TOML), for the record and for `--resume` checks.
    pub settings: serde_json::Value,
    /// The f16 loss scaler's state (`--precision amp|f16`).
    #[serde(default)]
    pub loss_scaler: Option<LossScaler>,
    /// Data parallel: every rank's data position, in rank order (`position` is rank 0's).
    #[serde(default)]
    pub positions: Vec<Position>,
}

pub fn file_name(step: u64) -> String {
    format!("step-{step:08}.bpk")
}

/// Writes `model`, the optimiser and `state` to `dir/step-NNNNNNNN.bpk` atomically, then
/// deletes all but the newest `keep` checkpoints.
pub fn save(dir: &Path, model: &Clip, optim: &AdamW, state: &TrainState, keep: usize) -> Result<PathBuf> {
    std::fs::create_dir_all(dir).with_context(|| format!("{}", dir.display()))?;
    let meta = serde_json::to_string(state)?;
    let bytes = import::to_burnpack_with(model, StoreDType::F32, optim.to_tensors(), &[(STATE_KEY, meta)])?;
    let path = dir.join(file_name(state.step));
    write_atomic(&path, &bytes)?;
    let mut all = list(dir)?;
    while all.len() > keep.max(1) {
        let (_, old) = all.remove(0);
        std::fs::remove_file(&old).with_context(|| format!("removing {}", old.display()))?;
    }
    Ok(path)
}

/// Complete checkpoints in `dir`, oldest first.
pub fn list(dir: &Path) -> Result<Vec<(u64, PathBuf)>> {
    let mut out = Vec::new();
    if !dir.is_dir() {
        return Ok(out);
    }
    for entry in std::fs::read_dir(dir).with_context(|| format!("{}", dir.display()))? {
        let path = entry?.path();
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or_default();
        if let Some(step) = name.strip_prefix("step-").and_then(|s| s.strip_suffix(".bpk")).and_then(|s| s.parse().ok()) {
            out.push((step, path));
        }
    }
    out.sort();
    Ok(out)
}

/// `latest` (the newest checkpoint in `dir`) or a checkpoint path.
pub fn resolve(spec: &str, dir: &Path) -> Result<PathBuf> {
    if spec == "latest" {
        return list(dir)?
            .pop()
            .map(|(_, p)| p)
            .with_context(|| format!("--resume latest: no checkpoint in {}", dir.display()));
    }
    Ok(PathBuf::from(spec))
}

/// Loads a checkpoint: the model, the optimiser (moments restored) and the state.
pub fn load(path: &Path, optim: &mut AdamW, device: &Device) -> Result<(Clip, TrainState)> {
    let bytes = std::fs::read(path).with_context(|| format!("{}", path.display()))?;
    let (metadata, extras) = import::read_burnpack_extras(&bytes).with_context(|| format!("{}", path.display()))?;
    let state: TrainState = serde_json::from_str(
        metadata
            .get(STATE_KEY)
            .with_context(|| format!("{} is a weight file, not a training checkpoint (no {STATE_KEY})", path.display()))?,
    )
    .with_context(|| format!("{}: {STATE_KEY}", path.display()))?;
    let model = import::load_bytes(None, bytes, device).with_context(|| format!("{}", path.display()))?;
    optim.load_tensors(extras, state.step, &device.clone().inner())?;
    Ok((model, state))
}

/// Writes to `path.tmp`, syncs, renames over `path`, syncs the directory.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let tmp = path.with_file_name(format!("{}.tmp", path.file_name().and_then(|n| n.to_str()).unwrap_or("checkpoint")));
    let mut file = std::fs::File::create(&tmp).with_context(|| format!("{}", tmp.display()))?;
    file.write_all(bytes).and_then(|_| file.sync_all()).with_context(|| format!("writing {}", tmp.display()))?;
    drop(file);
    std::fs::rename(&tmp, path).with_context(|| format!("renaming {} to {}", tmp.display(), path.display()))?;
    if let Some(dir) = path.parent() {
        if let Ok(d) = std::fs::File::open(dir) {
            let _ = d.sync_all();
        }
    }
    Ok(())
}

//! Entry points from arbitrary bytes to each parser of untrusted input, as the CLI and the
//! browser call them: the fuzz targets (`fuzz/fuzz_targets/`) run them under libFuzzer, and
//! `tests/fuzz_corpus.rs` replays the committed corpus through them in the ordinary test build.
//! Each returns what the parser said; a panic, a hang or an allocation sized from the input
//! before a bound is a finding.

use burn::prelude::*;

use crate::config::ClipConfig;
use crate::preprocess;
use crate::tokenizer::Tokenizer;
use crate::{import, Error};

/// The architecture state-dict inputs are loaded into: the smallest CLIP (a complete f16 state
/// dict of it is about 3 KB, so the fuzzer's inputs stay small).
fn tiny_config() -> ClipConfig {
    ClipConfig::from_open_clip_json(
        r#"{"embed_dim": 2, "vision_cfg": {"image_size": 4, "layers": 1, "width": 4, "head_width": 4, "patch_size": 4},
            "text_cfg": {"context_length": 2, "vocab_size": 4, "width": 4, "heads": 1, "layers": 1}}"#,
    )
    .expect("a valid config")
}

/// A weight file's bytes: format detection, then the safetensors or burnpack reader and the
/// model load (a burnpack's embedded config included), on the CPU.
pub fn weights(bytes: &[u8], device: &Device) -> Result<(), Error> {
    match import::detect_format(bytes)? {
        import::FileFormat::Pytorch => pytorch(bytes, device),
        import::FileFormat::Burnpack => import::load_bytes(None, bytes.to_vec(), device).map(drop),
        import::FileFormat::Safetensors => import::load_bytes(Some(&tiny_config()), bytes.to_vec(), device).map(drop),
    }
}

/// A file holding an input, for the parsers that read files (removed when dropped); shared with
/// clip-trainer's entry points.
pub struct Scratch(pub std::path::PathBuf);

impl Scratch {
    pub fn new(extension: &str, bytes: &[u8]) -> Result<Self, Error> {
        static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let path = std::env::temp_dir().join(format!("clip-burn-fuzz-{}-{n}.{extension}", std::process::id()));
        std::fs::write(&path, bytes).map_err(|e| Error::Input(format!("{}: {e}", path.display())))?;
        Ok(Self(path))
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// A `torch.save` file's bytes (zip or bare pickle), read as `load_file` reads one from disk.
pub fn pytorch(bytes: &[u8], device: &Device) -> Result<(), Error> {
    let file = Scratch::new("pt", bytes)?;
    let tensors = import::read_pytorch_file(&file.0)?;
    import::load_state_dict(Some(&tiny_config()), tensors, device).map(drop)
}

/// Image bytes: decoding, the evaluation transform and the training crop.
pub fn image(bytes: &[u8]) -> Result<(), Error> {
    let decoded = preprocess::decode(bytes)?;
    preprocess::preprocess(&decoded, 224)?;
    let mut state = bytes.len() as u64;
    let mut uniform = move || {
        state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        (state >> 11) as f64 / (1u64 << 53) as f64
    };
    let crop = preprocess::random_crop_box(decoded.image.width, decoded.image.height, (0.9, 1.0), &mut uniform);
    preprocess::resized_crop(&decoded, crop, 64).map(drop)
}

/// Text (any bytes, read as UTF-8 with replacement): cleaning, BPE and padding.
pub fn text(bytes: &[u8]) -> Result<(), Error> {
    static TOKENIZER: std::sync::OnceLock<Tokenizer> = std::sync::OnceLock::new();
    if TOKENIZER.get().is_none() {
        let _ = TOKENIZER.set(Tokenizer::new()?);
    }
    let tokenizer = TOKENIZER.get().ok_or_else(|| Error::Tokenizer("not loaded".into()))?;
    let ids = tokenizer.encode_padded(&String::from_utf8_lossy(bytes), 77);
    if ids.len() != 77 {
        return Err(Error::Tokenizer(format!("{} ids, not 77", ids.len())));
    }
    Ok(())
}

/// A model config (open_clip or Hugging Face JSON).
pub fn config(bytes: &[u8]) -> Result<(), Error> {
    let config = ClipConfig::from_json_auto(&String::from_utf8_lossy(bytes))?;
    config.approx_params();
    Ok(())
}

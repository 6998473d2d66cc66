//! # clip-model
//!
//! CLIP (Radford et al. 2021) on burn: the ViT and ModifiedResNet image towers, the text
//! transformer, open_clip's tokenizer and preprocessing, checkpoint import and the zero-shot head.
//! Backend-agnostic: everything takes a burn `Device` (CPU `flex`, `wgpu`, `cuda`).
//!
//! ```no_run
//! use clip_model::{import, preprocess, tokenizer::Tokenizer, ClipConfig};
//! use burn::prelude::*;
//! # fn main() -> Result<(), clip_model::Error> {
//! let device = Device::default();
//! let config = ClipConfig::preset("ViT-B-32-quickgelu")?;
//! let model = import::load_file(Some(&config), "ViT-B-32.safetensors".as_ref(), &device)?;
//! let pixels = preprocess::preprocess_bytes(&std::fs::read("cat.jpg").unwrap(), config.vision_cfg.image_size)?;
//! let image = model.encode_image(pixels.to_tensor(&device));
//! let ids = Tokenizer::new()?.encode_batch(&["a photo of a cat"], config.text_cfg.context_length);
//! let text = model.encode_text(ids.to_tensor(&device));
//! let logits = model.logits(image, text);
//! # Ok(()) }
//! ```

pub mod attention;
pub mod batch_norm;
pub mod clip;
pub mod config;
pub mod device;
mod extension;
mod error;
pub mod fuzz;
pub mod import;
pub mod layer_norm;
pub mod loss;
pub mod precision;
pub mod preprocess;
pub mod text;
pub mod tokenizer;
pub mod transformer;
pub mod vision;
pub mod zero_shot;

pub use clip::{normalize, Clip};
pub use config::ClipConfig;
pub use error::Error;

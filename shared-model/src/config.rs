//! Model architecture: open_clip's model-config JSON (field names kept, so reading one is a
//! plain serde parse), the presets of the paper, and Hugging Face `CLIPConfig` files.

use serde::{Deserialize, Serialize};

use crate::Error;

/// A whole CLIP model: the embedding size, the activation and the two towers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClipConfig {
    pub embed_dim: usize,
    /// QuickGELU `x * sigmoid(1.702 x)` (the OpenAI weights) instead of exact GELU.
    #[serde(default)]
    pub quick_gelu: bool,
    pub vision_cfg: VisionConfig,
    pub text_cfg: TextConfig,
}

/// The image tower. `layers` picks the architecture: a number is a ViT, four numbers a
/// ModifiedResNet (blocks per stage), as in open_clip.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VisionConfig {
    #[serde(default = "default_image_size")]
    pub image_size: usize,
    pub layers: VisionLayers,
    pub width: usize,
    #[serde(default = "default_head_width")]
    pub head_width: usize,
    /// ViT only; open_clip writes `null` for ResNets.
    #[serde(default)]
    pub patch_size: Option<usize>,
    #[serde(default = "default_mlp_ratio")]
    pub mlp_ratio: f64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum VisionLayers {
    Vit(usize),
    ResNet([usize; 4]),
}

/// The text tower.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TextConfig {
    #[serde(default = "default_context_length")]
    pub context_length: usize,
    #[serde(default = "default_vocab_size")]
    pub vocab_size: usize,
    pub width: usize,
    pub heads: usize,
    pub layers: usize,
    #[serde(default = "default_mlp_ratio")]
    pub mlp_ratio: f64,
}

fn default_image_size() -> usize {
    224
}
fn default_head_width() -> usize {
    64
}
fn default_mlp_ratio() -> f64 {
    4.0
}
fn default_context_length() -> usize {
    77
}
fn default_vocab_size() -> usize {
    49408
}

/// The largest sizes a config may ask for (open_clip's largest model, ViT-bigG-14, is within
/// each with room to spare): a config is read from files, and sizes are allocated from it.
pub struct Limits {
    pub width: usize,
    pub layers: usize,
    pub image_size: usize,
    pub context_length: usize,
    pub vocab_size: usize,
    pub mlp_ratio: f64,
    pub params: u64,
}

pub const LIMITS: Limits = Limits {
    width: 8192,
    layers: 128,
    image_size: 1024,
    context_length: 1024,
    vocab_size: 1 << 20,
    mlp_ratio: 16.0,
    params: 10_000_000_000,
};

/// The model names `--model` accepts (open_clip's), without the `-quickgelu` variants.
pub const PRESETS: [&str; 9] = [
    "RN50",
    "RN101",
    "RN50x4",
    "RN50x16",
    "RN50x64",
    "ViT-B-32",
    "ViT-B-16",
    "ViT-L-14",
    "ViT-L-14-336",
];

impl ClipConfig {
    /// A preset by open_clip name (paper tables 19-20), with `-quickgelu` variants.
    pub fn preset(name: &str) -> Result<Self, Error> {
        let (base, quick_gelu) = match name.strip_suffix("-quickgelu") {
            Some(base) => (base, true),
            None => (name, false),
        };
        let text = |width, heads| TextConfig {
            context_length: 77,
            vocab_size: 49408,
            width,
            heads,
            layers: 12,
            mlp_ratio: 4.0,
        };
        let (embed_dim, vision_cfg, text_cfg) = match base {
            "RN50" => (1024, resnet(224, [3, 4, 6, 3], 64), text(512, 8)),
            "RN101" => (512, resnet(224, [3, 4, 23, 3], 64), text(512, 8)),
            "RN50x4" => (640, resnet(288, [4, 6, 10, 6], 80), text(640, 10)),
            "RN50x16" => (768, resnet(384, [6, 8, 18, 8], 96), text(768, 12)),
            "RN50x64" => (1024, resnet(448, [3, 15, 36, 10], 128), text(1024, 16)),
            "ViT-B-32" => (512, vit(224, 12, 768, 32), text(512, 8)),
            "ViT-B-16" => (512, vit(224, 12, 768, 16), text(512, 8)),
            "ViT-L-14" => (768, vit(224, 24, 1024, 14), text(768, 12)),
            "ViT-L-14-336" => (768, vit(336, 24, 1024, 14), text(768, 12)),
            _ => {
                return Err(Error::UnknownModel {
                    name: name.to_string(),
                    known: PRESETS.join(", "),
                });
            }
        };
        Ok(Self {
            embed_dim,
            quick_gelu,
            vision_cfg,
            text_cfg,
        })
    }

    /// An open_clip model-config JSON. Unknown keys are an error that names the key.
    pub fn from_open_clip_json(json: &str) -> Result<Self, Error> {
        let config: Self =
            serde_json::from_str(json).map_err(|e| Error::Config(e.to_string()))?;
        config.validate()?;
        Ok(config)
    }

    /// A Hugging Face `CLIPConfig` (`config.json` of a `CLIPModel`).
    pub fn from_hf_json(json: &str) -> Result<Self, Error> {
        let hf: HfClipConfig =
            serde_json::from_str(json).map_err(|e| Error::Config(e.to_string()))?;
        let v = hf.vision_config;
        let t = hf.text_config;
        let quick_gelu = match (v.hidden_act.as_str(), t.hidden_act.as_str()) {
            ("quick_gelu", "quick_gelu") => true,
            ("gelu", "gelu") => false,
            (a, b) => {
                return Err(Error::Config(format!(
                    "unsupported hidden_act: vision {a:?}, text {b:?} (expected both \"quick_gelu\" or both \"gelu\")"
                )));
            }
        };
        let config = Self {
            embed_dim: hf.projection_dim,
            quick_gelu,
            vision_cfg: VisionConfig {
                image_size: v.image_size,
                layers: VisionLayers::Vit(v.num_hidden_layers),
                width: v.hidden_size,
                head_width: v.hidden_size / v.num_attention_heads.max(1),
                patch_size: Some(v.patch_size),
                mlp_ratio: v.intermediate_size as f64 / v.hidden_size as f64,
            },
            text_cfg: TextConfig {
                context_length: t.max_position_embeddings,
                vocab_size: t.vocab_size,
                width: t.hidden_size,
                heads: t.num_attention_heads,
                layers: t.num_hidden_layers,
                mlp_ratio: t.intermediate_size as f64 / t.hidden_size as f64,
            },
        };
        config.validate()?;
        Ok(config)
    }

    /// `--model`: a preset name, or the text of a JSON config (open_clip or Hugging Face).
    pub fn from_json_auto(json: &str) -> Result<Self, Error> {
        let value: serde_json::Value =
            serde_json::from_str(json).map_err(|e| Error::Config(e.to_string()))?;
        if value.get("vision_config").is_some() || value.get("text_config").is_some() {
            Self::from_hf_json(json)
        } else {
            Self::from_open_clip_json(json)
        }
    }

    /// Checks that the sizes are consistent (widths divisible by heads, and so on).
    pub fn validate(&self) -> Result<(), Error> {
        let v = &self.vision_cfg;
        let t = &self.text_cfg;
        let bad = |msg: String| Err(Error::Config(msg));
        if self.embed_dim == 0 || v.width == 0 || t.width == 0 || v.head_width == 0 {
            return bad("embed_dim, widths and head_width must be positive".into());
        }
        if t.heads == 0 || t.width % t.heads != 0 {
            return bad(format!("text_cfg.width {} is not divisible by text_cfg.heads {}", t.width, t.heads));
        }
        if t.context_length == 0 || t.vocab_size == 0 || t.layers == 0 {
            return bad("text_cfg context_length, vocab_size and layers must be positive".into());
        }
        // Upper bounds, checked before anything is sized from them: a config comes from a file.
        let layers = match v.layers {
            VisionLayers::Vit(n) => vec![n],
            VisionLayers::ResNet(stages) => stages.to_vec(),
        };
        for (name, value, max) in [
            ("embed_dim", self.embed_dim, LIMITS.width),
            ("vision_cfg.width", v.width, LIMITS.width),
            ("vision_cfg.head_width", v.head_width, LIMITS.width),
            ("vision_cfg.image_size", v.image_size, LIMITS.image_size),
            ("vision_cfg.layers", layers.iter().copied().max().unwrap_or(0), LIMITS.layers),
            ("text_cfg.width", t.width, LIMITS.width),
            ("text_cfg.layers", t.layers, LIMITS.layers),
            ("text_cfg.context_length", t.context_length, LIMITS.context_length),
            ("text_cfg.vocab_size", t.vocab_size, LIMITS.vocab_size),
        ] {
            if value > max {
                return bad(format!("{name} {value} is over the limit of {max}"));
            }
        }
        if matches!(v.layers, VisionLayers::Vit(0)) || v.image_size == 0 {
            return bad("vision_cfg.layers and image_size must be positive".into());
        }
        for (name, ratio) in [("vision_cfg.mlp_ratio", v.mlp_ratio), ("text_cfg.mlp_ratio", t.mlp_ratio)] {
            if !(ratio > 0.0 && ratio <= LIMITS.mlp_ratio) {
                return bad(format!("{name} {ratio} must be above 0 and at most {}", LIMITS.mlp_ratio));
            }
        }
        let params = self.approx_params();
        if params > LIMITS.params {
            return bad(format!("the model would have about {:.1}B parameters, over the limit of {:.0}B", params as f64 / 1e9, LIMITS.params as f64 / 1e9));
        }
        match v.layers {
            VisionLayers::Vit(_) => {
                let Some(patch) = v.patch_size.filter(|p| *p > 0) else {
                    return bad("vision_cfg.patch_size is required for a ViT".into());
                };
                if v.image_size % patch != 0 {
                    return bad(format!("vision_cfg.image_size {} is not divisible by patch_size {patch}", v.image_size));
                }
                if v.width % v.head_width != 0 {
                    return bad(format!("vision_cfg.width {} is not divisible by head_width {}", v.width, v.head_width));
                }
            }
            VisionLayers::ResNet(_) => {
                if v.image_size % 32 != 0 {
                    return bad(format!("vision_cfg.image_size {} of a ModifiedResNet must be divisible by 32", v.image_size));
                }
                if (v.width * 32) % v.head_width != 0 {
                    return bad(format!("ResNet embedding width {} is not divisible by head_width {}", v.width * 32, v.head_width));
                }
            }
        }
        Ok(())
    }

    /// The number of parameters, approximately (biases and norms of the ResNet stem left out):
    /// to bound a config and to compare it with a weight file before anything is allocated.
    pub fn approx_params(&self) -> u64 {
        let v = &self.vision_cfg;
        let t = &self.text_cfg;
        let n = |x: usize| x as u64;
        // A residual attention block: q/k/v/out projections, the MLP, two LayerNorms.
        let block = |w: usize, ratio: f64| {
            let hidden = (w as f64 * ratio) as u64;
            4 * n(w) * n(w) + 4 * n(w) + 2 * n(w) * hidden + hidden + n(w) + 4 * n(w)
        };
        let vision = match v.layers {
            VisionLayers::Vit(layers) => {
                let patch = v.patch_size.unwrap_or(1).max(1);
                let grid = n(v.image_size / patch);
                3 * n(patch) * n(patch) * n(v.width) + (grid * grid + 2) * n(v.width) + 4 * n(v.width)
                    + n(layers) * block(v.width, v.mlp_ratio)
                    + n(v.width) * n(self.embed_dim)
            }
            VisionLayers::ResNet(stages) => {
                let w = n(v.width);
                let stem = 27 * w / 2 + 9 * (w / 2) * (w / 2) + 9 * (w / 2) * w;
                let mut inplanes = w;
                let mut total = stem;
                for (i, &blocks) in stages.iter().enumerate() {
                    let planes = w << i;
                    // First block: 1x1, 3x3, 1x1 (x4) and the downsample's 1x1; then the others.
                    total += inplanes * planes + 9 * planes * planes + 4 * planes * planes + inplanes * 4 * planes;
                    total += n(blocks.saturating_sub(1)) * (4 * planes * planes + 9 * planes * planes + 4 * planes * planes);
                    inplanes = 4 * planes;
                }
                let embed = 32 * w;
                let grid = n(v.image_size / 32);
                total + (grid * grid + 1) * embed + 3 * embed * embed + embed * n(self.embed_dim)
            }
        };
        let text = n(t.vocab_size) * n(t.width) + n(t.context_length) * n(t.width) + n(t.layers) * block(t.width, t.mlp_ratio)
            + 2 * n(t.width)
            + n(t.width) * n(self.embed_dim);
        vision.saturating_add(text)
    }

    /// The vision tower's number of attention heads (open_clip's rule for each architecture).
    pub fn vision_heads(&self) -> usize {
        let v = &self.vision_cfg;
        match v.layers {
            VisionLayers::Vit(_) => v.width / v.head_width,
            VisionLayers::ResNet(_) => v.width * 32 / v.head_width,
        }
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).expect("a config always serialises")
    }
}

fn vit(image_size: usize, layers: usize, width: usize, patch_size: usize) -> VisionConfig {
    VisionConfig {
        image_size,
        layers: VisionLayers::Vit(layers),
        width,
        head_width: 64,
        patch_size: Some(patch_size),
        mlp_ratio: 4.0,
    }
}

fn resnet(image_size: usize, layers: [usize; 4], width: usize) -> VisionConfig {
    VisionConfig {
        image_size,
        layers: VisionLayers::ResNet(layers),
        width,
        head_width: 64,
        patch_size: None,
        mlp_ratio: 4.0,
    }
}

/// The fields of a Hugging Face `CLIPConfig` we use; defaults are transformers' own.
#[derive(Deserialize)]
struct HfClipConfig {
    #[serde(default = "hf_projection_dim")]
    projection_dim: usize,
    #[serde(default)]
    text_config: HfTextConfig,
    #[serde(default)]
    vision_config: HfVisionConfig,
}

#[derive(Deserialize)]
#[serde(default)]
struct HfTextConfig {
    vocab_size: usize,
    hidden_size: usize,
    intermediate_size: usize,
    num_hidden_layers: usize,
    num_attention_heads: usize,
    max_position_embeddings: usize,
    hidden_act: String,
}

impl Default for HfTextConfig {
    fn default() -> Self {
        Self {
            vocab_size: 49408,
            hidden_size: 512,
            intermediate_size: 2048,
            num_hidden_layers: 12,
            num_attention_heads: 8,
            max_position_embeddings: 77,
            hidden_act: "quick_gelu".into(),
        }
    }
}

#[derive(Deserialize)]
#[serde(default)]
struct HfVisionConfig {
    hidden_size: usize,
    intermediate_size: usize,
    num_hidden_layers: usize,
    num_attention_heads: usize,
    image_size: usize,
    patch_size: usize,
    hidden_act: String,
}

impl Default for HfVisionConfig {
    fn default() -> Self {
        Self {
            hidden_size: 768,
            intermediate_size: 3072,
            num_hidden_layers: 12,
            num_attention_heads: 12,
            image_size: 224,
            patch_size: 32,
            hidden_act: "quick_gelu".into(),
        }
    }
}

fn hf_projection_dim() -> usize {
    512
}

#[cfg(test)]
mod tests {
    use super::*;

    const CONFIG_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/fixtures/open_clip_configs");

    #[test]
    fn every_preset_equals_open_clips_json() {
        for base in PRESETS {
            for name in [base.to_string(), format!("{base}-quickgelu")] {
                let path = format!("{CONFIG_DIR}/{name}.json");
                let json = std::fs::read_to_string(&path).unwrap();
                let from_json = ClipConfig::from_open_clip_json(&json).unwrap();
                assert_eq!(ClipConfig::preset(&name).unwrap(), from_json, "{name}");
            }
        }
    }

    #[test]
    fn heads_follow_open_clip() {
        assert_eq!(ClipConfig::preset("ViT-L-14").unwrap().vision_heads(), 16);
        assert_eq!(ClipConfig::preset("RN50").unwrap().vision_heads(), 32);
        assert_eq!(ClipConfig::preset("RN50x64").unwrap().vision_heads(), 64);
    }

    #[test]
    fn unknown_key_is_named() {
        let json = r#"{"embed_dim": 8, "vision_cfg": {"layers": 1, "width": 64, "patch_size": 32, "colour": 1},
                       "text_cfg": {"width": 8, "heads": 1, "layers": 1}}"#;
        let err = ClipConfig::from_open_clip_json(json).unwrap_err().to_string();
        assert!(err.contains("colour"), "{err}");
    }

    #[test]
    fn unknown_preset_lists_known() {
        let err = ClipConfig::preset("ViT-Q-99").unwrap_err().to_string();
        assert!(err.contains("ViT-Q-99") && err.contains("RN50x16"), "{err}");
    }

    #[test]
    fn inconsistent_sizes_are_rejected() {
        let json = r#"{"embed_dim": 8, "vision_cfg": {"layers": 1, "width": 64, "patch_size": 30},
                       "text_cfg": {"width": 8, "heads": 3, "layers": 1}}"#;
        assert!(ClipConfig::from_open_clip_json(json).is_err());
    }
}

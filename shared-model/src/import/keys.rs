//! Checkpoint key maps. Every checkpoint is first brought to open_clip's layout (the contract),
//! then to this crate's module paths. All renaming lives in the two tables below.

use std::collections::BTreeMap;

use super::RawTensor;
use crate::Error;

/// The layouts we recognise, told apart by their key names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layout {
    /// open_clip / OpenAI `state_dict()` (`visual.*`, `token_embedding.weight`, ...).
    OpenClip,
    /// Hugging Face `transformers` `CLIPModel` (`vision_model.*`, `text_model.*`).
    HuggingFace,
}

pub fn detect(keys: &[&str]) -> Result<Layout, Error> {
    let any = |p: &str| keys.iter().any(|k| k.starts_with(p));
    if any("vision_model.") && any("text_model.") {
        Ok(Layout::HuggingFace)
    } else if any("visual.") && keys.contains(&"token_embedding.weight") {
        Ok(Layout::OpenClip)
    } else {
        let sample: Vec<_> = keys.iter().take(5).collect();
        Err(Error::UnknownFormat(format!(
            "{} tensors, none of them laid out as an open_clip/OpenAI or Hugging Face CLIPModel state dict (first keys: {sample:?})",
            keys.len()
        )))
    }
}

/// Hugging Face -> open_clip: (HF fragment, open_clip fragment), applied in order to each key.
/// q/k/v projections are fused into `in_proj_*` and the two projections transposed separately.
const HF_TO_OPEN_CLIP: &[(&str, &str)] = &[
    ("vision_model.embeddings.class_embedding", "visual.class_embedding"),
    ("vision_model.embeddings.patch_embedding.weight", "visual.conv1.weight"),
    ("vision_model.embeddings.position_embedding.weight", "visual.positional_embedding"),
    ("vision_model.pre_layrnorm.", "visual.ln_pre."), // sic: transformers' spelling
    ("vision_model.post_layernorm.", "visual.ln_post."),
    ("vision_model.encoder.layers.", "visual.transformer.resblocks."),
    ("text_model.embeddings.token_embedding.weight", "token_embedding.weight"),
    ("text_model.embeddings.position_embedding.weight", "positional_embedding"),
    ("text_model.final_layer_norm.", "ln_final."),
    ("text_model.encoder.layers.", "transformer.resblocks."),
    (".self_attn.out_proj.", ".attn.out_proj."),
    (".layer_norm1.", ".ln_1."),
    (".layer_norm2.", ".ln_2."),
    (".mlp.fc1.", ".mlp.c_fc."),
    (".mlp.fc2.", ".mlp.c_proj."),
];

/// open_clip -> this crate's module paths.
const OPEN_CLIP_TO_MODULE: &[(&str, &str)] = &[
    (".attn.in_proj_weight", ".attn.in_proj.weight"), // a burn Linear (transposed on load as the others)
    (".attn.in_proj_bias", ".attn.in_proj.bias"),
    (".downsample.0.", ".downsample.conv."), // nn.Sequential(AvgPool2d "-1", Conv2d "0", BatchNorm2d "1")
    (".downsample.1.", ".downsample.bn."),
];

/// Buffers that carry no weights: BatchNorm step counters, HF position ids, causal masks,
/// and the hyper-parameters OpenAI's checkpoints store next to the weights.
pub(crate) fn is_ignored(key: &str) -> bool {
    let key = without_wrappers(key);
    key.ends_with("num_batches_tracked")
        || key.ends_with("position_ids")
        || key == "attn_mask"
        || matches!(key, "input_resolution" | "context_length" | "vocab_size")
}

/// A key without the prefixes that wrap a state dict: `state_dict.` (open_clip's training
/// checkpoints, `torch.save({"state_dict": ...})`, whose keys the reader flattens) and
/// `module.` (DistributedDataParallel).
fn without_wrappers(key: &str) -> &str {
    let key = key.strip_prefix("state_dict.").unwrap_or(key);
    key.strip_prefix("module.").unwrap_or(key)
}

/// Renames (and fuses, transposes) a state dict into this crate's module paths.
pub fn to_module_paths(tensors: Vec<RawTensor>) -> Result<Vec<RawTensor>, Error> {
    let tensors: Vec<RawTensor> = tensors
        .into_iter()
        .map(|mut t| {
            t.name = without_wrappers(&t.name).to_string();
            t
        })
        .filter(|t| !is_ignored(&t.name))
        .collect();
    let keys: Vec<&str> = tensors.iter().map(|t| t.name.as_str()).collect();
    let tensors = match detect(&keys)? {
        Layout::OpenClip => tensors,
        Layout::HuggingFace => hf_to_open_clip(tensors)?,
    };
    Ok(tensors
        .into_iter()
        .map(|mut t| {
            t.name = open_clip_to_module(&t.name);
            if t.name == "logit_scale" && t.shape.is_empty() {
                t.shape = vec![1];
            }
            t
        })
        .collect())
}

fn replace_all(key: &str, table: &[(&str, &str)]) -> String {
    table.iter().fold(key.to_string(), |k, (from, to)| k.replace(from, to))
}

fn open_clip_to_module(key: &str) -> String {
    let key = replace_all(key, OPEN_CLIP_TO_MODULE);
    if key.starts_with("visual.") || key == "logit_scale" { key } else { format!("text.{key}") }
}

fn hf_to_open_clip(tensors: Vec<RawTensor>) -> Result<Vec<RawTensor>, Error> {
    let mut out = Vec::with_capacity(tensors.len());
    // (block prefix, "weight"|"bias") -> [q, k, v]
    let mut qkv: BTreeMap<(String, String), [Option<RawTensor>; 3]> = BTreeMap::new();
    for mut t in tensors {
        match t.name.as_str() {
            "visual_projection.weight" => {
                t = t.transposed()?;
                t.name = "visual.proj".into();
            }
            "text_projection.weight" => {
                t = t.transposed()?;
                t.name = "text_projection".into();
            }
            _ => t.name = replace_all(&t.name, HF_TO_OPEN_CLIP),
        }
        let split = ["q_proj", "k_proj", "v_proj"].iter().enumerate().find_map(|(i, p)| {
            let (block, rest) = t.name.split_once(&format!(".self_attn.{p}."))?;
            Some((i, block.to_string(), rest.to_string()))
        });
        match split {
            Some((i, block, param)) => qkv.entry((block, param)).or_default()[i] = Some(t),
            None => out.push(t),
        }
    }
    for ((block, param), parts) in qkv {
        let name = format!("{block}.attn.in_proj_{param}");
        let [Some(q), Some(k), Some(v)] = parts else {
            return Err(Error::Mismatch(format!("{name}: the checkpoint lacks one of q_proj/k_proj/v_proj.{param}")));
        };
        out.push(RawTensor::concat_rows(name, [q, k, v])?);
    }
    Ok(out)
}

/// The inverse of [`to_module_paths`] for open_clip layout (used when exporting).
pub fn module_to_open_clip(path: &str) -> String {
    let key = path.strip_prefix("text.").unwrap_or(path);
    OPEN_CLIP_TO_MODULE.iter().fold(key.to_string(), |k, (from, to)| k.replace(to, from))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn open_clip_keys_map_to_module_paths() {
        assert_eq!(open_clip_to_module("visual.layer1.0.downsample.1.running_var"), "visual.layer1.0.downsample.bn.running_var");
        assert_eq!(open_clip_to_module("transformer.resblocks.3.attn.in_proj_weight"), "text.transformer.resblocks.3.attn.in_proj.weight");
        assert_eq!(module_to_open_clip("visual.transformer.resblocks.0.attn.in_proj.bias"), "visual.transformer.resblocks.0.attn.in_proj_bias");
        assert_eq!(open_clip_to_module("logit_scale"), "logit_scale");
        assert_eq!(module_to_open_clip("text.ln_final.weight"), "ln_final.weight");
        assert_eq!(module_to_open_clip("visual.layer1.0.downsample.conv.weight"), "visual.layer1.0.downsample.0.weight");
    }

    #[test]
    fn hf_keys_map_to_open_clip() {
        assert_eq!(replace_all("vision_model.encoder.layers.7.mlp.fc2.bias", HF_TO_OPEN_CLIP), "visual.transformer.resblocks.7.mlp.c_proj.bias");
        assert_eq!(replace_all("text_model.encoder.layers.0.layer_norm1.weight", HF_TO_OPEN_CLIP), "transformer.resblocks.0.ln_1.weight");
    }

    #[test]
    fn unknown_layout_is_explained() {
        let err = detect(&["encoder.weight", "decoder.bias"]).unwrap_err().to_string();
        assert!(err.contains("encoder.weight") && err.contains("Hugging Face"), "{err}");
    }
}

//! Checkpoint import and export: open_clip / OpenAI state dicts (safetensors, pickled `.pt/.bin`,
//! OpenAI's partial-fp16 layout), Hugging Face `CLIPModel` safetensors, and our burnpack.
//!
//! Loading is strict: every parameter of the model must come from the file with the right shape,
//! and every tensor of the file must be used, or the error lists what is missing, unexpected
//! and mis-shaped.

pub mod int8;
pub mod keys;
mod readers;

use std::collections::BTreeMap;

use burn::prelude::*;
use burn::store::{bridge, burn_pack, BurnToPyTorchAdapter, FloatCastAdapter, ModuleAdapter, ModuleContext, ModuleSnapshot, PyTorchToBurnAdapter};
use burn::tensor::DType;

pub use readers::{pytorch_ignored_objects, read_pytorch_file, read_safetensors, read_safetensors_weights};

use crate::clip::Clip;
use crate::config::ClipConfig;
use crate::Error;

/// One tensor of a state dict, in f32, PyTorch layout.
#[derive(Debug, Clone)]
pub struct RawTensor {
    pub name: String,
    pub shape: Vec<usize>,
    pub data: Vec<f32>,
}

impl RawTensor {
    /// Swaps the two axes of a matrix.
    pub fn transposed(self) -> Result<Self, Error> {
        let [r, c] = self.shape[..] else {
            return Err(Error::Mismatch(format!("{}: expected a matrix, found shape {:?}", self.name, self.shape)));
        };
        Ok(Self { name: self.name, shape: vec![c, r], data: transpose(&self.data, r, c) })
    }

    /// Stacks tensors along the first axis (their other axes must agree).
    pub fn concat_rows(name: String, parts: [RawTensor; 3]) -> Result<Self, Error> {
        let tail = parts[0].shape[1..].to_vec();
        if parts.iter().any(|p| p.shape.is_empty() || p.shape[1..] != tail[..]) {
            let shapes: Vec<_> = parts.iter().map(|p| (&p.name, &p.shape)).collect();
            return Err(Error::Mismatch(format!("{name}: cannot stack q/k/v of shapes {shapes:?}")));
        }
        let rows = parts.iter().map(|p| p.shape[0]).sum();
        let data = parts.into_iter().flat_map(|p| p.data).collect();
        Ok(Self { name, shape: [vec![rows], tail].concat(), data })
    }

    fn into_pack(self) -> burn_pack::Tensor {
        bridge::from_data(TensorData::new(self.data, self.shape), self.name, None)
    }
}

/// `data` as a `rows x cols` matrix, transposed. The output is written in bands of 32 of its rows
/// (32 input columns), each band in runs of 32 consecutive elements gathered from 32 input rows,
/// so that the 32 x 32 input block stays in cache while each write is contiguous. Walking the same
/// tiles input-row-first (each write to another output row) took 22% of `clip-burn embed`'s
/// samples for one text with ViT-B-32; this way a whole such process is 0.1-0.2 s faster
/// (BENCHMARKS.md, "Loading ViT-B-32 outside the browser").
fn transpose(data: &[f32], rows: usize, cols: usize) -> Vec<f32> {
    const TILE: usize = 32;
    let mut out = vec![0.0; rows * cols];
    if out.is_empty() {
        return out;
    }
    for (band, out_band) in out.chunks_mut(TILE * rows).enumerate() {
        let j0 = band * TILE;
        for i0 in (0..rows).step_by(TILE) {
            let i1 = (i0 + TILE).min(rows);
            for (dj, out_row) in out_band.chunks_exact_mut(rows).enumerate() {
                for (i, o) in (i0..i1).zip(&mut out_row[i0..i1]) {
                    *o = data[i * cols + j0 + dj];
                }
            }
        }
    }
    out
}

/// burn's [`PyTorchToBurnAdapter`] with [`transpose`] for the linear weights of a state dict
/// (f32, as [`RawTensor`] holds them). burn's own moves them element by element, four bytes at a
/// time: 60% of loading ViT-B-32 safetensors in the browser. The test
/// `the_pytorch_layout_is_burns` holds it to burn's adapter on a whole model.
#[derive(Debug, Clone)]
struct PyTorchLayout;

impl PyTorchLayout {
    /// The case burn's adapter transposes, a Linear's `weight` (f32 here): its `[rows, cols]`.
    fn transposes(tensor: &burn_pack::Tensor, ctx: ModuleContext<'_>) -> Option<(usize, usize)> {
        let linear_weight = ctx.module_type() == Some("Struct:Linear") && tensor.name.rsplit('.').next() == Some("weight");
        match tensor.shape[..] {
            [rows, cols] if linear_weight && tensor.dtype == DType::F32 => Some((rows, cols)),
            _ => None,
        }
    }
}

impl ModuleAdapter for PyTorchLayout {
    fn adapt(&self, tensor: burn_pack::Tensor, ctx: ModuleContext<'_>) -> burn_pack::Tensor {
        let Some((rows, cols)) = Self::transposes(&tensor, ctx) else {
            return PyTorchToBurnAdapter.adapt(tensor, ctx);
        };
        let name = tensor.name.clone();
        bridge::map_data(tensor, name, DType::F32, [cols, rows].into(), move |data| {
            let values = match data.as_slice::<f32>() {
                Ok(values) => transpose(values, rows, cols),
                Err(_) => transpose(&data.try_to_vec::<f32>().expect("an f32 tensor"), rows, cols),
            };
            TensorData::new(values, [cols, rows])
        })
    }

    fn get_alternative_param_name(&self, param_name: &str, module_type: &str) -> Option<String> {
        PyTorchToBurnAdapter.get_alternative_param_name(param_name, module_type)
    }

    fn clone_box(&self) -> Box<dyn ModuleAdapter> {
        Box::new(self.clone())
    }
}

/// The weight file formats, as detected from the leading bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileFormat {
    Burnpack,
    Safetensors,
    /// `torch.save` output (zip or legacy pickle); needs a file path.
    Pytorch,
}

pub fn detect_format(bytes: &[u8]) -> Result<FileFormat, Error> {
    if bytes.len() >= 4 && u32::from_le_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]) == burn_pack::MAGIC_NUMBER {
        return Ok(FileFormat::Burnpack);
    }
    if bytes.len() >= 9 {
        let header = u64::from_le_bytes(bytes[..8].try_into().expect("8 bytes"));
        if bytes[8] == b'{' && header <= (bytes.len() - 8) as u64 {
            return Ok(FileFormat::Safetensors);
        }
        if bytes[8] == b'{' && header < 100_000_000 {
            return Err(Error::Weights(format!(
                "truncated safetensors file: its header alone is {header} bytes, the file has {}",
                bytes.len()
            )));
        }
    }
    // A zip archive (torch.save since 1.6) or a bare pickle (protocol 2+).
    if bytes.starts_with(b"PK\x03\x04") || (bytes.len() > 1 && bytes[0] == 0x80 && (2..=5).contains(&bytes[1])) {
        return Ok(FileFormat::Pytorch);
    }
    Err(Error::UnknownFormat(format!(
        "not a burnpack, safetensors or PyTorch file ({} bytes{})",
        bytes.len(),
        if bytes.len() < 9 { ", too short" } else { "" }
    )))
}

/// Burnpack metadata key holding the model's config JSON.
pub const CONFIG_METADATA_KEY: &str = "clip_config";

/// Burnpack tensors under this prefix are not model parameters but what a training checkpoint
/// adds (the optimiser's moments): loading the model skips them, so a checkpoint is a weight file.
pub const EXTRA_TENSOR_PREFIX: &str = "optimizer.";

/// Loads a model from the bytes of a burnpack or safetensors file. `config` may be `None` for a
/// burnpack, which carries its own.
pub fn load_bytes(config: Option<&ClipConfig>, bytes: Vec<u8>, device: &Device) -> Result<Clip, Error> {
    match detect_format(&bytes)? {
        FileFormat::Burnpack => load_burnpack(config, bytes, device),
        FileFormat::Safetensors => {
            // The file's bytes go before the model is built: the peak holds two copies of the
            // weights, not three (wasm32 has 4 GB; ViT-B-32 in the browser: 1859 -> 1233 MB).
            let tensors = read_safetensors_weights(&bytes)?;
            drop(bytes);
            load_state_dict(config, tensors, device)
        }
        FileFormat::Pytorch => Err(Error::UnknownFormat(
            "a PyTorch pickle needs to be read from a file (use load_file), or converted to safetensors/burnpack".into(),
        )),
    }
}

/// Loads a model from any supported weight file.
pub fn load_file(config: Option<&ClipConfig>, path: &std::path::Path, device: &Device) -> Result<Clip, Error> {
    let bytes = std::fs::read(path).map_err(|e| Error::Weights(format!("{}: {e}", path.display())))?;
    let at = |e: Error| match e {
        Error::Weights(m) => Error::Weights(format!("{}: {m}", path.display())),
        Error::UnknownFormat(m) => Error::UnknownFormat(format!("{}: {m}", path.display())),
        Error::Mismatch(m) => Error::Mismatch(format!("{}: {m}", path.display())),
        other => other,
    };
    match detect_format(&bytes).map_err(at)? {
        FileFormat::Pytorch => {
            drop(bytes);
            load_state_dict(config, read_pytorch_file(path).map_err(at)?, device).map_err(at)
        }
        _ => load_bytes(config, bytes, device).map_err(at),
    }
}

/// Builds a model from a state dict in any supported key layout.
pub fn load_state_dict(config: Option<&ClipConfig>, tensors: Vec<RawTensor>, device: &Device) -> Result<Clip, Error> {
    let config = config.ok_or_else(|| Error::Config("a state dict does not say its architecture: give a model name or config".into()))?;
    let tensors = keys::to_module_paths(tensors)?;
    check_size(config, tensors.iter().map(|t| t.data.len() as u64).sum())?;
    let mut model = Clip::new(config, device);
    let packs = tensors.into_iter().map(RawTensor::into_pack).collect();
    apply_strict(&mut model, packs, Box::new(BurnToPyTorchAdapter), Box::new(PyTorchLayout))?;
    Ok(model)
}

fn load_burnpack(config: Option<&ClipConfig>, bytes: Vec<u8>, device: &Device) -> Result<Clip, Error> {
    let reader = burn_pack::Reader::from_bytes(burn_pack::Bytes::from_bytes_vec(bytes))
        .map_err(|e| Error::Weights(format!("invalid burnpack: {e}")))?;
    let stored = match reader.metadata().get(CONFIG_METADATA_KEY) {
        Some(json) => Some(ClipConfig::from_open_clip_json(json)?),
        None => None,
    };
    let config = match (config, stored) {
        (Some(given), Some(stored)) if *given != stored => {
            return Err(Error::Config(format!(
                "the burnpack holds a different model than the one asked for: file {}, given {}",
                serde_json::to_string(&stored).unwrap_or_default(),
                serde_json::to_string(given).unwrap_or_default()
            )));
        }
        (_, Some(stored)) => stored,
        (Some(given), None) => given.clone(),
        (None, None) => return Err(Error::Config("this burnpack has no embedded config: give a model name or config".into())),
    };
    let tensors = reader.into_tensors().map_err(|e| Error::Weights(format!("invalid burnpack: {e}")))?;
    let tensors: Vec<burn_pack::Tensor> = tensors.into_iter().filter(|t| !t.name.starts_with(EXTRA_TENSOR_PREFIX)).collect();
    for tensor in &tensors {
        check_finite(tensor)?;
    }
    let tensors = in_proj_as_linear(int8::dequantized(tensors)?);
    check_size(&config, tensors.iter().map(|t| t.shape.iter().map(|&d| d as u64).product::<u64>()).sum())?;
    let mut model = Clip::new(&config, device);
    apply_strict(&mut model, tensors, Box::new(FloatCastAdapter::to(DType::F32)), Box::new(FloatCastAdapter::to(DType::F32)))?;
    Ok(model)
}

/// A burnpack written before attention's `in_proj` was a burn `Linear` holds
/// `*.attn.in_proj_weight` `[3D, D]` (open_clip's layout) and `*.attn.in_proj_bias`: renamed to
/// `in_proj.weight` (transposed, deferred like the other tensors) and `in_proj.bias`.
fn in_proj_as_linear(tensors: Vec<burn_pack::Tensor>) -> Vec<burn_pack::Tensor> {
    tensors
        .into_iter()
        .map(|mut t| {
            if let Some(block) = t.name.strip_suffix(".attn.in_proj_bias") {
                t.name = format!("{block}.attn.in_proj.bias");
                return t;
            }
            let Some(block) = t.name.strip_suffix(".attn.in_proj_weight") else { return t };
            let [rows, cols] = t.shape[..] else { return t };
            let name = format!("{block}.attn.in_proj.weight");
            bridge::map_data(t, name, DType::F32, [cols, rows].into(), move |data| {
                let values = data.convert::<f32>().try_into_vec::<f32>().expect("an f32 tensor");
                TensorData::new(transpose(&values, rows, cols), [cols, rows])
            })
        })
        .collect()
}

/// Refuses a burnpack tensor holding a NaN or an infinity (as the state-dict readers do), naming
/// it and the element. One tensor's bytes at a time.
fn check_finite(tensor: &burn_pack::Tensor) -> Result<(), Error> {
    let bytes = tensor.to_bytes().map_err(|e| Error::Weights(format!("invalid burnpack: {}: {e}", tensor.name)))?;
    let bad = match tensor.dtype {
        DType::F32 => bytes.chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).position(|v| !v.is_finite()).map(|i| (i, "f32")),
        DType::F16 => bytes.chunks_exact(2).map(|c| half::f16::from_le_bytes([c[0], c[1]])).position(|v| !v.is_finite()).map(|i| (i, "f16")),
        DType::BF16 => bytes.chunks_exact(2).map(|c| half::bf16::from_le_bytes([c[0], c[1]])).position(|v| !v.is_finite()).map(|i| (i, "bf16")),
        _ => None,
    };
    match bad {
        Some((i, dtype)) => Err(Error::Weights(format!("{}: element {i} is not a finite {dtype} (a weight file must hold finite numbers)", tensor.name))),
        None => Ok(()),
    }
}

/// Refuses a config far larger than the file's weights, and large, before the model is built:
/// the error report of [`apply_strict`] initialises every parameter, which for a config with a
/// huge size (`vocab_size`, `width`) would be an allocation the process cannot survive. A smaller
/// mismatch gets that report (the missing, unexpected and mis-shaped keys).
fn check_size(config: &ClipConfig, held: u64) -> Result<(), Error> {
    const REPORTED: u64 = 1 << 28; // 1 GiB of f32 parameters
    let wanted = config.approx_params();
    if wanted > REPORTED && wanted > 2 * held + 1_000_000 {
        return Err(Error::Mismatch(format!(
            "the model config has about {wanted} parameters, the file holds {held} values: is the model name or config right for these weights?"
        )));
    }
    Ok(())
}

/// Applies `tensors` to `model`, failing unless they match its parameters one to one, with the
/// same shapes. `adapter` turns the file's tensors into the model's layout. `view` goes the other
/// way, for the error report only: it names the model's tensors in the file's naming and layout,
/// and listing them initialises every parameter (random weights, as many as the file holds), so
/// the successful path never does (it was a third of loading ViT-B-32 in the browser).
fn apply_strict(
    model: &mut Clip,
    tensors: Vec<burn_pack::Tensor>,
    view: Box<dyn ModuleAdapter>,
    adapter: Box<dyn ModuleAdapter>,
) -> Result<(), Error> {
    let given: BTreeMap<String, Vec<usize>> = tensors.iter().map(|t| (t.name.clone(), t.shape.to_vec())).collect();
    let result = model.apply(tensors, None, Some(adapter), true);
    if result.errors.is_empty() && result.missing.is_empty() && result.unused.is_empty() {
        return Ok(());
    }
    // A tensor that failed to apply left its parameter as it was, so the model still has the
    // shapes it expects.
    let expected: BTreeMap<String, Vec<usize>> = model
        .collect(None, Some(view), true)
        .into_iter()
        .map(|t| (t.name.clone(), t.shape.to_vec()))
        .collect();
    let missing: Vec<String> = expected
        .iter()
        .filter(|(k, _)| !given.contains_key(*k))
        .map(|(k, s)| format!("{} {s:?}", keys::module_to_open_clip(k)))
        .collect();
    let unexpected: Vec<String> = given
        .iter()
        .filter(|(k, _)| !expected.contains_key(*k))
        .map(|(k, s)| format!("{} {s:?}", keys::module_to_open_clip(k)))
        .collect();
    let mismatched: Vec<String> = given
        .iter()
        .filter_map(|(k, s)| {
            let e = expected.get(k)?;
            (e != s).then(|| format!("{}: expected {e:?}, found {s:?}", keys::module_to_open_clip(k)))
        })
        .collect();
    let mut parts = Vec::new();
    for (title, list) in [("missing", &missing), ("unexpected", &unexpected), ("wrong shape", &mismatched)] {
        if !list.is_empty() {
            parts.push(format!("{} {title}: {}", list.len(), summarise(list)));
        }
    }
    if parts.is_empty() {
        // Names and shapes agree, and still something did not apply (a tensor's data).
        let errors: Vec<String> = result.errors.iter().map(|e| e.to_string()).collect();
        let missing: Vec<String> = result.missing.iter().map(|(path, _)| path.clone()).collect();
        let unused = &result.unused;
        return Err(Error::Mismatch(format!(
            "errors: {}; missing: {}; unused: {}",
            summarise(&errors),
            summarise(&missing),
            summarise(unused)
        )));
    }
    parts.push("is the model name or config right for these weights?".into());
    Err(Error::Mismatch(parts.join("; ")))
}

fn summarise(list: &[String]) -> String {
    const SHOWN: usize = 8;
    let mut s = list.iter().take(SHOWN).cloned().collect::<Vec<_>>().join(", ");
    if list.len() > SHOWN {
        s += &format!(", ... and {} more", list.len() - SHOWN);
    }
    s
}

/// The storage precision of a burnpack export.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreDType {
    F32,
    F16,
    /// int8 weight matrices and kernels with per-output-channel scales ([`int8`]), the rest as `F16`.
    Int8,
}

/// Serialises `model` as a burnpack with its config embedded. With `F16`, every float tensor is
/// stored in half precision except BatchNorm statistics and the logit scale; `Int8` stores the
/// weight matrices and kernels in int8 ([`int8`]) and the rest as `F16` does.
pub fn to_burnpack(model: &Clip, dtype: StoreDType) -> Result<Vec<u8>, Error> {
    to_burnpack_with(model, dtype, Vec::new(), &[])
}

/// [`to_burnpack`] plus `extra` tensors (named under [`EXTRA_TENSOR_PREFIX`], stored as given)
/// and `metadata` entries: a training checkpoint.
pub fn to_burnpack_with(
    model: &Clip,
    dtype: StoreDType,
    extra: Vec<(String, TensorData)>,
    metadata: &[(&str, String)],
) -> Result<Vec<u8>, Error> {
    let int8_store = int8::Int8Store { float_visual: matches!(model.visual, crate::vision::VisionTower::ResNet(_)) };
    let adapter: Box<dyn ModuleAdapter> = match dtype {
        StoreDType::F32 => Box::new(FloatCastAdapter::to(DType::F32)),
        StoreDType::F16 => Box::new(HalfExceptStatistics),
        StoreDType::Int8 => Box::new(int8_store.clone()),
    };
    let mut tensors = model.collect(None, Some(adapter), true);
    if dtype == StoreDType::Int8 {
        tensors = int8::quantized(tensors, &int8_store)?;
    }
    for (name, data) in extra {
        if !name.starts_with(EXTRA_TENSOR_PREFIX) {
            return Err(Error::Weights(format!("extra tensor {name} must be named under {EXTRA_TENSOR_PREFIX}")));
        }
        tensors.push(bridge::from_data(data, name, None));
    }
    let mut writer = burn_pack::Writer::new(tensors)
        .with_metadata(CONFIG_METADATA_KEY, &serde_json::to_string(&model.config).expect("config serialises"))
        .with_metadata("producer", concat!("clip-burn ", env!("CARGO_PKG_VERSION")));
    for (key, value) in metadata {
        writer = writer.with_metadata(key, value);
    }
    let bytes = writer.into_bytes().map_err(|e| Error::Weights(format!("cannot write burnpack: {e}")))?;
    Ok(bytes.to_vec())
}

/// The metadata and the [`EXTRA_TENSOR_PREFIX`] tensors of a burnpack written by
/// [`to_burnpack_with`] (the model itself loads with [`load_bytes`]).
pub fn read_burnpack_extras(bytes: &[u8]) -> Result<(BTreeMap<String, String>, Vec<(String, TensorData)>), Error> {
    let invalid = |e: &dyn std::fmt::Display| Error::Weights(format!("invalid burnpack: {e}"));
    let reader = burn_pack::Reader::from_bytes(burn_pack::Bytes::from_bytes_vec(bytes.to_vec())).map_err(|e| invalid(&e))?;
    let metadata = reader.metadata().clone();
    let mut extra = Vec::new();
    for tensor in reader.into_tensors().map_err(|e| invalid(&e))? {
        if tensor.name.starts_with(EXTRA_TENSOR_PREFIX) {
            let name = tensor.name.clone();
            extra.push((name, bridge::into_data(tensor).map_err(|e| invalid(&e))?));
        }
    }
    Ok((metadata, extra))
}

/// f16 for weights; BatchNorm running statistics (variance underflows) and the logit scale stay f32.
#[derive(Debug, Clone)]
struct HalfExceptStatistics;

impl ModuleAdapter for HalfExceptStatistics {
    fn adapt(&self, tensor: burn_pack::Tensor, ctx: burn::store::ModuleContext<'_>) -> burn_pack::Tensor {
        let keep = ctx.module_type() == Some("Struct:BatchNorm") || tensor.name == "logit_scale";
        let target = if keep { DType::F32 } else { DType::F16 };
        FloatCastAdapter::to(target).adapt(tensor, ctx)
    }

    fn clone_box(&self) -> Box<dyn ModuleAdapter> {
        Box::new(self.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tiny() -> ClipConfig {
        ClipConfig::from_open_clip_json(
            r#"{"embed_dim": 8, "vision_cfg": {"image_size": 16, "layers": 1, "width": 16, "head_width": 8, "patch_size": 8},
                "text_cfg": {"context_length": 8, "vocab_size": 64, "width": 16, "heads": 2, "layers": 1}}"#,
        )
        .unwrap()
    }

    #[test]
    fn transpose_swaps_the_axes() {
        for (rows, cols) in [(1, 1), (3, 70), (33, 32), (65, 97), (64, 1), (0, 5), (5, 0)] {
            let data: Vec<f32> = (0..rows * cols).map(|v| v as f32).collect();
            let t = transpose(&data, rows, cols);
            assert_eq!(t.len(), data.len());
            for i in 0..rows {
                for j in 0..cols {
                    assert_eq!(t[j * rows + i], data[i * cols + j], "{rows}x{cols} at {i},{j}");
                }
            }
        }
    }

    #[test]
    fn the_pytorch_layout_transposes_linear_weights_only() {
        let pack = |name: &str, shape: Vec<usize>| RawTensor { name: name.into(), data: vec![0.0; shape.iter().product()], shape }.into_pack();
        let stack = |inner: &str| vec!["Struct:Clip".to_string(), "Vec".to_string(), inner.to_string()];
        let linear = stack("Struct:Linear");
        let fc = pack("visual.transformer.resblocks.0.mlp.c_fc.weight", vec![4, 3]);
        assert_eq!(PyTorchLayout::transposes(&fc, ModuleContext::new(&linear)), Some((4, 3)));
        let bias = pack("visual.transformer.resblocks.0.mlp.c_fc.bias", vec![4]);
        assert_eq!(PyTorchLayout::transposes(&bias, ModuleContext::new(&linear)), None);
        let proj = pack("visual.proj", vec![4, 3]);
        assert_eq!(PyTorchLayout::transposes(&proj, ModuleContext::new(&stack("Struct:VisionTransformer"))), None);
        let ln = pack("visual.ln_post.weight", vec![4]);
        assert_eq!(PyTorchLayout::transposes(&ln, ModuleContext::new(&stack("Struct:LayerNorm"))), None);
    }

    /// Every parameter loaded through [`PyTorchLayout`] is bit for bit what burn's
    /// `PyTorchToBurnAdapter` gives (a ViT with its text tower, and a ModifiedResNet).
    #[test]
    fn the_pytorch_layout_is_burns() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures");
        let device = Device::flex();
        for name in ["vit_quickgelu", "rn"] {
            let config = ClipConfig::from_json_auto(&std::fs::read_to_string(dir.join(format!("{name}.json"))).unwrap()).unwrap();
            let tensors = read_safetensors(&std::fs::read(dir.join(format!("{name}.safetensors"))).unwrap()).unwrap();
            let ours = load_state_dict(Some(&config), tensors.clone(), &device).unwrap();
            let mut burns = Clip::new(&config, &device);
            let packs = keys::to_module_paths(tensors).unwrap().into_iter().map(RawTensor::into_pack).collect();
            apply_strict(&mut burns, packs, Box::new(BurnToPyTorchAdapter), Box::new(PyTorchToBurnAdapter)).unwrap();
            let values = |m: &Clip| -> Vec<(String, Vec<usize>, Vec<f32>)> {
                m.collect(None, None, false)
                    .into_iter()
                    .map(|t| (t.name.clone(), t.shape.to_vec(), bridge::to_data(&t).unwrap().try_to_vec::<f32>().unwrap()))
                    .collect()
            };
            let (ours, burns) = (values(&ours), values(&burns));
            assert!(ours.iter().any(|(n, s, _)| n.ends_with("out_proj.weight") && s.len() == 2), "{name}: no linear weight");
            assert_eq!(ours.len(), burns.len(), "{name}");
            for (a, b) in ours.iter().zip(&burns) {
                assert!(a == b, "{name}: {} differs", a.0);
            }
        }
    }

    /// The report of a state dict that does not fit: each tensor missing, unexpected or
    /// mis-shaped, in open_clip's names and the file's layout (a linear weight as [out, in]).
    #[test]
    fn a_mismatched_state_dict_lists_what_does_not_fit() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures");
        let config = ClipConfig::from_json_auto(&std::fs::read_to_string(dir.join("vit_quickgelu.json")).unwrap()).unwrap();
        let tensors = read_safetensors(&std::fs::read(dir.join("vit_quickgelu.safetensors")).unwrap()).unwrap();
        let device = Device::flex();
        assert!(load_state_dict(Some(&config), tensors.clone(), &device).is_ok());

        let mut tampered: Vec<RawTensor> = tensors.into_iter().filter(|t| t.name != "ln_final.bias").collect();
        let fc = tampered.iter_mut().find(|t| t.name == "visual.transformer.resblocks.0.mlp.c_fc.weight").unwrap();
        let (out, inp) = (fc.shape[0], fc.shape[1]);
        fc.shape = vec![inp, out];
        tampered.push(RawTensor { name: "visual.extra".into(), shape: vec![2], data: vec![0.0; 2] });
        let Err(Error::Mismatch(report)) = load_state_dict(Some(&config), tampered, &device) else {
            panic!("a tampered state dict loaded");
        };
        assert!(report.contains(&format!("1 missing: ln_final.bias [{}]", config.text_cfg.width)), "{report}");
        assert!(report.contains("1 unexpected: visual.extra [2]"), "{report}");
        assert!(
            report.contains(&format!("1 wrong shape: visual.transformer.resblocks.0.mlp.c_fc.weight: expected [{out}, {inp}], found [{inp}, {out}]")),
            "{report}"
        );
    }

    #[test]
    fn a_checkpoint_is_a_weight_file_and_keeps_its_extras() {
        let device = Device::flex();
        let model = Clip::new(&tiny(), &device);
        let moment = TensorData::new(vec![1.0f32, 2.0, 3.0], [3]);
        let extra = vec![("optimizer.exp_avg.logit_scale".to_string(), moment.clone())];
        let bytes = to_burnpack_with(&model, StoreDType::F32, extra, &[("train_state", "{\"step\":3}".into())]).unwrap();

        let loaded = load_bytes(None, bytes.clone(), &device).unwrap();
        let weights = |m: &Clip| m.text.text_projection.val().into_data().try_to_vec::<f32>().unwrap();
        assert_eq!(weights(&model), weights(&loaded));

        let (metadata, extras) = read_burnpack_extras(&bytes).unwrap();
        assert_eq!(metadata.get("train_state").map(String::as_str), Some("{\"step\":3}"));
        assert_eq!(extras.len(), 1);
        assert_eq!(extras[0].0, "optimizer.exp_avg.logit_scale");
        assert_eq!(extras[0].1.try_to_vec::<f32>().unwrap(), vec![1.0, 2.0, 3.0]);

        let misnamed = vec![("exp_avg".to_string(), moment)];
        assert!(to_burnpack_with(&model, StoreDType::F32, misnamed, &[]).is_err());
    }

    #[test]
    fn a_burnpack_holding_a_nan_is_refused() {
        let device = Device::flex();
        let mut model = Clip::new(&tiny(), &device);
        let dims = model.text.text_projection.val().dims();
        model.text.text_projection = burn::module::Param::from_tensor(Tensor::full(dims, f32::NAN, &device));
        for dtype in [StoreDType::F32, StoreDType::F16] {
            let err = load_bytes(None, to_burnpack(&model, dtype).unwrap(), &device).unwrap_err().to_string();
            assert!(err.contains("text_projection") && err.contains("element 0 is not a finite"), "{err}");
        }
    }

    /// A tiny model's int8 burnpack loads with every quantized weight within half a step of the
    /// model's, everything else as from the f16 file, and is smaller than the f16 one.
    #[test]
    fn an_int8_burnpack_loads_within_half_a_step() {
        let device = Device::flex();
        let model = Clip::new(&tiny(), &device);
        let bytes = to_burnpack(&model, StoreDType::Int8).unwrap();
        let half = to_burnpack(&model, StoreDType::F16).unwrap();
        assert!(bytes.len() < half.len(), "{} >= {}", bytes.len(), half.len());
        let loaded = load_bytes(None, bytes, &device).unwrap();
        let from_half = load_bytes(None, half, &device).unwrap();
        let values = |m: &Clip| -> Vec<(String, Vec<usize>, Vec<f32>)> {
            m.collect(None, None, false)
                .into_iter()
                .map(|t| (t.name.clone(), t.shape.to_vec(), bridge::to_data(&t).unwrap().try_to_vec::<f32>().unwrap()))
                .collect()
        };
        let mut quantized = 0;
        for ((name, shape, want), ((_, _, got), (_, _, halved))) in values(&model).iter().zip(values(&loaded).iter().zip(&values(&from_half))) {
            match (int8::Int8Store { float_visual: false }).axis(name, shape) {
                Some(axis) => {
                    quantized += 1;
                    let (_, scales) = int8::quantize(want, shape, axis);
                    let step = scales.iter().cloned().fold(0f32, f32::max);
                    let worst = want.iter().zip(got).map(|(a, b)| (a - b).abs()).fold(0f32, f32::max);
                    assert!(worst <= step / 2.0 + 1e-7, "{name}: {worst} > half of {step}");
                }
                None => assert_eq!(got, halved, "{name}"),
            }
        }
        assert!(quantized >= 10, "{quantized} tensors quantized");
    }

    /// `model`'s int8 burnpack with its tensors passed through `edit`.
    fn edited_int8(model: &Clip, edit: impl FnOnce(&mut Vec<burn_pack::Tensor>)) -> Vec<u8> {
        let bytes = to_burnpack(model, StoreDType::Int8).unwrap();
        let reader = burn_pack::Reader::from_bytes(burn_pack::Bytes::from_bytes_vec(bytes)).unwrap();
        let metadata = reader.metadata().clone();
        let mut tensors = reader.into_tensors().unwrap();
        edit(&mut tensors);
        let mut writer = burn_pack::Writer::new(tensors);
        for (k, v) in &metadata {
            writer = writer.with_metadata(k, v);
        }
        writer.into_bytes().unwrap().to_vec()
    }

    #[test]
    fn a_tampered_int8_burnpack_is_refused_naming_the_tensor() {
        let device = Device::flex();
        let model = Clip::new(&tiny(), &device);
        let fc = "text.transformer.resblocks.0.mlp.c_fc.weight";
        let scale = format!("{fc}{}", int8::SCALE_SUFFIX);
        let error = |bytes: Vec<u8>| load_bytes(None, bytes, &device).err().expect("a tampered file loaded").to_string();
        let take = |tensors: &mut Vec<burn_pack::Tensor>, name: &str| {
            let i = tensors.iter().position(|t| t.name == name).unwrap_or_else(|| panic!("no {name}"));
            tensors.remove(i)
        };

        let err = error(edited_int8(&model, |t| drop(take(t, &scale))));
        assert!(err.contains(fc) && err.contains("without their scales"), "{err}");

        let err = error(edited_int8(&model, |t| drop(take(t, fc))));
        assert!(err.contains(&scale) && err.contains("without their weights"), "{err}");

        let err = error(edited_int8(&model, |t| {
            let s = take(t, &scale);
            let n = s.shape.iter().product::<usize>();
            t.push(bridge::from_data(TensorData::new(vec![0.01f32; n + 1], [1, n + 1]), scale.clone(), None));
        }));
        assert!(err.contains(fc) && err.contains("do not fit"), "{err}");

        let err = error(edited_int8(&model, |t| {
            let s = take(t, &scale);
            let n = s.shape.iter().product::<usize>();
            t.push(bridge::from_data(TensorData::new(vec![-0.01f32; n], s.shape.clone()), scale.clone(), None));
        }));
        assert!(err.contains(&scale) && err.contains("positive"), "{err}");

        let err = error(edited_int8(&model, |t| {
            let w = take(t, fc);
            let n = w.shape.iter().product::<usize>();
            t.push(bridge::from_data(TensorData::new(vec![0f32; n], w.shape.clone()), fc.to_string(), None));
        }));
        assert!(err.contains(&scale) && err.contains("stored as F32"), "{err}");

        let err = error(edited_int8(&model, |t| {
            let s = take(t, &scale);
            let n = s.shape.iter().product::<usize>();
            t.push(bridge::from_data(TensorData::new(vec![f32::INFINITY; n], s.shape.clone()), scale.clone(), None));
        }));
        assert!(err.contains(&scale) && err.contains("not a finite"), "{err}");

        // Cut short: the reader's own error.
        let bytes = to_burnpack(&model, StoreDType::Int8).unwrap();
        let err = error(bytes[..bytes.len() * 2 / 3].to_vec());
        assert!(err.contains("invalid burnpack"), "{err}");
    }
}

//! Reading state dicts into f32 tensors: safetensors from bytes, PyTorch pickles from a file
//! (parsed, never executed). fp16/bf16/f64 tensors are widened. In weight files, integer tensors
//! are read only where the key map drops them (step counters, OpenAI's stored hyper-parameters)
//! and refused anywhere else; a NaN or infinity in any tensor is refused.

use half::{bf16, f16};
use safetensors::{Dtype, SafeTensors};

use super::RawTensor;
use crate::Error;

#[derive(Clone, Copy)]
enum Element {
    F32,
    F16,
    Bf16,
    F64,
    /// Integers (step counters, hyper-parameters): read as f32 only for keys the key map drops.
    Int(usize, bool),
}

/// `weights`: the tensors are a state dict's, where integers are refused except under the keys
/// the key map drops.
fn widen(name: &str, el: Element, bytes: &[u8], weights: bool) -> Result<Vec<f32>, Error> {
    if weights && matches!(el, Element::Int(..)) && !super::keys::is_ignored(name) {
        return Err(Error::Weights(format!("{name}: stored as integers; a weight must be floating point (f32, f16, bf16 or f64)")));
    }
    let size = match el {
        Element::F32 => 4,
        Element::F16 | Element::Bf16 => 2,
        Element::F64 => 8,
        Element::Int(size, _) => size,
    };
    if bytes.len() % size != 0 {
        return Err(Error::Weights(format!("{name}: {} bytes is not a whole number of elements", bytes.len())));
    }
    let chunks = bytes.chunks_exact(size);
    Ok(match el {
        Element::F32 => chunks.map(|c| f32::from_le_bytes(c.try_into().unwrap())).collect(),
        Element::F16 => chunks.map(|c| f16::from_le_bytes(c.try_into().unwrap()).to_f32()).collect(),
        Element::Bf16 => chunks.map(|c| bf16::from_le_bytes(c.try_into().unwrap()).to_f32()).collect(),
        Element::F64 => chunks.map(|c| f64::from_le_bytes(c.try_into().unwrap()) as f32).collect(),
        Element::Int(_, signed) => chunks
            .map(|c| {
                let mut b = [0u8; 8];
                b[..c.len()].copy_from_slice(c);
                if signed && c[c.len() - 1] & 0x80 != 0 {
                    b[c.len()..].fill(0xff);
                }
                i64::from_le_bytes(b) as f32
            })
            .collect(),
    })
}

fn checked(name: String, shape: Vec<usize>, data: Vec<f32>) -> Result<RawTensor, Error> {
    let n = shape.iter().try_fold(1usize, |n, &d| n.checked_mul(d));
    if n != Some(data.len()) {
        return Err(Error::Weights(format!("{name}: shape {shape:?} does not hold the file's {} elements", data.len())));
    }
    if let Some(i) = data.iter().position(|v| !v.is_finite()) {
        return Err(Error::Weights(format!("{name}: element {i} is {} (a weight file must hold finite numbers)", data[i])));
    }
    Ok(RawTensor { name, shape, data })
}

/// All tensors of a safetensors file of weights: integer tensors are refused (except those the
/// key map drops), as is a NaN or infinity anywhere.
pub fn read_safetensors_weights(bytes: &[u8]) -> Result<Vec<RawTensor>, Error> {
    read_safetensors_as(bytes, true)
}

/// All tensors of a safetensors file, integers read as f32 (reference data such as token ids).
pub fn read_safetensors(bytes: &[u8]) -> Result<Vec<RawTensor>, Error> {
    read_safetensors_as(bytes, false)
}

fn read_safetensors_as(bytes: &[u8], weights: bool) -> Result<Vec<RawTensor>, Error> {
    let st = SafeTensors::deserialize(bytes).map_err(|e| Error::Weights(format!("invalid safetensors: {e}")))?;
    st.iter()
        .map(|(name, view)| {
            let el = match view.dtype() {
                Dtype::F32 => Element::F32,
                Dtype::F16 => Element::F16,
                Dtype::BF16 => Element::Bf16,
                Dtype::F64 => Element::F64,
                Dtype::I64 => Element::Int(8, true),
                Dtype::I32 => Element::Int(4, true),
                Dtype::U8 | Dtype::BOOL => Element::Int(1, false),
                other => return Err(Error::Weights(format!("{name}: unsupported dtype {other:?}"))),
            };
            checked(name.to_string(), view.shape().to_vec(), widen(name, el, view.data(), weights)?)
        })
        .collect()
}

#[cfg(feature = "pytorch")]
/// All tensors of a `torch.save`d state dict (also under a top-level `state_dict` key, as
/// open_clip's training checkpoints store it).
pub fn read_pytorch_file(path: &std::path::Path) -> Result<Vec<RawTensor>, Error> {
    use burn::store::pytorch_reader::{DType as P, PytorchReader};
    let reader = PytorchReader::new(path)
        .or_else(|_| PytorchReader::with_top_level_key(path, "state_dict"))
        .map_err(|e| Error::Weights(format!("cannot read PyTorch file: {e} (TorchScript archives such as OpenAI's JIT .pt files are not state dicts; save model.state_dict() instead)")))?;
    let mut stored: Vec<_> = reader.into_tensors().into_iter().collect();
    // open_clip's training checkpoints: the weights under `state_dict`, beside the optimiser's
    // state, the epoch and the run's name, which are not weights.
    if stored.iter().any(|(name, _)| name.starts_with("state_dict.")) {
        stored.retain(|(name, _)| name.starts_with("state_dict."));
    }
    let mut tensors: Vec<RawTensor> = stored
        .into_iter()
        .map(|(name, t)| {
            let el = match t.dtype() {
                P::F32 => Element::F32,
                P::F16 => Element::F16,
                P::BF16 => Element::Bf16,
                P::F64 => Element::F64,
                P::I64 | P::U64 => Element::Int(8, t.dtype() == P::I64),
                P::I32 | P::U32 => Element::Int(4, t.dtype() == P::I32),
                P::I16 | P::U16 => Element::Int(2, t.dtype() == P::I16),
                P::I8 | P::U8 | P::Bool => Element::Int(1, t.dtype() == P::I8),
            };
            let bytes = t.read().map_err(|e| Error::Weights(format!("{name}: {e}")))?;
            checked(name.clone(), t.shape().to_vec(), widen(&name, el, &bytes, true)?)
        })
        .collect::<Result<_, _>>()?;
    tensors.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(tensors)
}

#[cfg(feature = "pytorch")]
/// The Python objects of a `torch.save` file that are neither tensors nor plain values: classes
/// and calls the reader does not interpret (`os.system`, `numpy.dtype`, a custom class), which
/// are parsed, never run, and not used. Sorted, each named once, for the caller to report.
pub fn pytorch_ignored_objects(path: &std::path::Path) -> Result<Vec<String>, Error> {
    use burn::store::pytorch_reader::{PickleValue, PytorchReader};
    fn walk(value: &PickleValue, out: &mut std::collections::BTreeSet<String>) {
        match value {
            PickleValue::List(items) => items.iter().for_each(|v| walk(v, out)),
            PickleValue::Dict(map) => map.values().for_each(|v| walk(v, out)),
            PickleValue::Unsupported(name) if !matches!(name.as_str(), "torch.Tensor" | "torch.TypedStorage" | "torch.UntypedStorage") => {
                out.insert(name.clone());
            }
            _ => {}
        }
    }
    let value = PytorchReader::read_pickle_data(path, None).map_err(|e| Error::Weights(format!("cannot read PyTorch file: {e}")))?;
    let mut out = std::collections::BTreeSet::new();
    walk(&value, &mut out);
    Ok(out.into_iter().collect())
}

#[cfg(not(feature = "pytorch"))]
pub fn pytorch_ignored_objects(_path: &std::path::Path) -> Result<Vec<String>, Error> {
    Ok(Vec::new())
}

#[cfg(not(feature = "pytorch"))]
pub fn read_pytorch_file(path: &std::path::Path) -> Result<Vec<RawTensor>, Error> {
    Err(Error::UnknownFormat(format!(
        "{}: PyTorch pickles are not supported in this build; convert to safetensors or burnpack with `clip-burn convert`",
        path.display()
    )))
}

//! int8 burnpacks: the weight matrices and convolution kernels (and the token embedding) stored
//! as int8 with one f32 scale per output channel, symmetric (`w ≈ q * scale`, `q` in
//! [-127, 127], `scale = max |w| / 127` over the channel). Everything else (biases, LayerNorm
//! and BatchNorm parameters, positional and class embeddings, the logit scale) is stored as in
//! an f16 burnpack, and so is a ModifiedResNet's whole image tower (its convolutions and
//! attention pooling do not keep the features within the bar in int8: [`Int8Store`]). Loading widens the int8 tensors to f32, one tensor at a time as the model
//! draws them: the model computes in f32 as from any other file (README, "int8 weights").
//!
//! A quantized tensor `name` is stored as an `I8` tensor of the model's shape beside
//! `name` + [`SCALE_SUFFIX`], an f32 tensor of the same rank whose axes are each 1 or the
//! weights' (one scale per output channel: `[1, out]` for a `[in, out]` linear weight,
//! `[out, 1, 1, 1]` for a convolution); the loader takes any such broadcast.

use std::collections::BTreeMap;
use std::sync::Arc;

use burn::store::{bridge, burn_pack, FloatCastAdapter, ModuleAdapter, ModuleContext};
use burn::tensor::{DType, TensorData};

use super::HalfExceptStatistics;
use crate::Error;

/// Suffix naming the scales of the int8 tensor `name`: `name.int8_scale`.
pub const SCALE_SUFFIX: &str = ".int8_scale";

/// The axis with one scale per index (the output channels) of a parameter stored as int8, or
/// `None` for a parameter kept in floating point. By name and rank, in burn's layout:
/// convolution kernels `[out, in, kh, kw]`, the token embedding (a row per token), and every
/// other matrix `[in, out]` (burn's `Linear`, attention's `in_proj` among them, `text_projection`,
/// `visual.proj`). Files written before `in_proj` was a `Linear` stored it `[3D, D]` with scales
/// `[3D, 1]`: the loader takes any scale shape that broadcasts. The positional embeddings are added, not multiplied, and
/// stay f16.
pub fn output_axis(name: &str, shape: &[usize]) -> Option<usize> {
    match shape.len() {
        4 => Some(0),
        2 if name.ends_with("positional_embedding") => None,
        2 if name.ends_with("token_embedding.weight") => Some(0),
        2 => Some(1),
        _ => None,
    }
}

/// The int8 values and per-channel scales of `values` (contiguous, `shape`), channels along `axis`.
pub fn quantize(values: &[f32], shape: &[usize], axis: usize) -> (Vec<i8>, Vec<f32>) {
    let channels = shape[axis];
    let inner: usize = shape[axis + 1..].iter().product();
    let channel = |i: usize| (i / inner) % channels;
    let mut max = vec![0f32; channels];
    for (i, v) in values.iter().enumerate() {
        let m = &mut max[channel(i)];
        *m = m.max(v.abs());
    }
    let scales: Vec<f32> = max.iter().map(|m| m / 127.0).collect();
    let q = values
        .iter()
        .enumerate()
        .map(|(i, v)| {
            let s = scales[channel(i)];
            if s > 0.0 { (v / s).round().clamp(-127.0, 127.0) as i8 } else { 0 }
        })
        .collect();
    (q, scales)
}

/// Writes `q * scale` into `out`, `scale` broadcast over `shape` (`scale_shape`: each axis 1 or
/// the weights').
fn dequantize(q: &[i8], shape: &[usize], scales: &[f32], scale_shape: &[usize]) -> Vec<f32> {
    // Strides into `scales` (0 along a broadcast axis), walked with an odometer over the outer
    // axes and a tight loop over the last.
    let rank = shape.len();
    let mut strides = vec![0; rank];
    let mut stride = 1;
    for d in (0..rank).rev() {
        strides[d] = if scale_shape[d] == 1 { 0 } else { stride };
        stride *= scale_shape[d];
    }
    let last = shape.last().copied().unwrap_or(1).max(1);
    let mut out = Vec::with_capacity(q.len());
    let mut index = vec![0usize; rank.saturating_sub(1)];
    for row in q.chunks(last) {
        let base: usize = index.iter().zip(&strides).map(|(i, s)| i * s).sum();
        match strides.last() {
            Some(&0) | None => out.extend(row.iter().map(|&v| f32::from(v) * scales[base])),
            Some(_) => out.extend(row.iter().zip(&scales[base..base + last]).map(|(&v, s)| f32::from(v) * s)),
        }
        for d in (0..index.len()).rev() {
            index[d] += 1;
            if index[d] < shape[d] {
                break;
            }
            index[d] = 0;
        }
    }
    out
}

/// The adapter collecting a model for an int8 burnpack: the tensors [`Int8Store::axis`]
/// quantizes in f32 (for [`quantized`]), the others as in an f16 burnpack.
///
/// `float_visual`: a ModifiedResNet's image tower stays f16. On tests/fullsize's RN50 (open_clip's
/// random initialisation, perturbed BatchNorm statistics) the image features' cosine to f32 was
/// 0.9868 with every kernel in int8 per output channel, 0.9862 with only the convolutions,
/// 0.9858 with only the attention pooling's projections, 0.989-0.995 with scales per block of
/// 32-128 inputs, and 0.99999 in f16 (the bar is 0.999); its text tower and every ViT stay within
/// the bar in int8.
#[derive(Debug, Clone)]
pub(super) struct Int8Store {
    pub float_visual: bool,
}

impl Int8Store {
    /// [`output_axis`], except for the image tower when it stays in floating point.
    pub fn axis(&self, name: &str, shape: &[usize]) -> Option<usize> {
        if self.float_visual && name.starts_with("visual.") {
            return None;
        }
        output_axis(name, shape)
    }
}

impl ModuleAdapter for Int8Store {
    fn adapt(&self, tensor: burn_pack::Tensor, ctx: ModuleContext<'_>) -> burn_pack::Tensor {
        if self.axis(&tensor.name, &tensor.shape).is_some() {
            FloatCastAdapter::to(DType::F32).adapt(tensor, ctx)
        } else {
            HalfExceptStatistics.adapt(tensor, ctx)
        }
    }

    fn clone_box(&self) -> Box<dyn ModuleAdapter> {
        Box::new(self.clone())
    }
}

/// `tensors` (collected with `store`) with each one [`Int8Store::axis`] picks replaced by its
/// int8 values and its scales.
pub(super) fn quantized(tensors: Vec<burn_pack::Tensor>, store: &Int8Store) -> Result<Vec<burn_pack::Tensor>, Error> {
    let mut out = Vec::with_capacity(tensors.len());
    for tensor in tensors {
        let shape = tensor.shape.to_vec();
        let Some(axis) = store.axis(&tensor.name, &shape) else {
            out.push(tensor);
            continue;
        };
        let name = tensor.name.clone();
        let data = bridge::into_data(tensor).map_err(|e| Error::Weights(format!("{name}: {e}")))?;
        let values = data.as_slice::<f32>().map_err(|e| Error::Weights(format!("{name}: {e:?}")))?;
        let (q, scales) = quantize(values, &shape, axis);
        let scale_shape: Vec<usize> = shape.iter().enumerate().map(|(d, &n)| if d == axis { n } else { 1 }).collect();
        out.push(bridge::from_data(TensorData::new(scales, scale_shape), format!("{name}{SCALE_SUFFIX}"), None));
        out.push(bridge::from_data(TensorData::new(q, shape), name, None));
    }
    Ok(out)
}

/// `tensors` of a burnpack with every int8 tensor widened to f32 by its scales (deferred: each
/// is widened when the model draws it). Refuses int8 weights without scales, scales without
/// weights, scales of a shape that does not fit, and negative scales, naming the tensor.
pub(super) fn dequantized(tensors: Vec<burn_pack::Tensor>) -> Result<Vec<burn_pack::Tensor>, Error> {
    let (scale_tensors, tensors): (Vec<_>, Vec<_>) = tensors.into_iter().partition(|t| t.name.ends_with(SCALE_SUFFIX));
    let mut scales = BTreeMap::new();
    for t in scale_tensors {
        let name = t.name[..t.name.len() - SCALE_SUFFIX.len()].to_string();
        if !matches!(t.dtype, DType::F32 | DType::F16) {
            return Err(Error::Weights(format!("{}: int8 scales must be f32 or f16, found {:?}", t.name, t.dtype)));
        }
        let shape = t.shape.to_vec();
        let data = bridge::into_data(t).map_err(|e| Error::Weights(format!("{name}{SCALE_SUFFIX}: {e}")))?;
        let values = data.convert::<f32>().try_into_vec::<f32>().map_err(|e| Error::Weights(format!("{name}{SCALE_SUFFIX}: {e:?}")))?;
        if let Some(i) = values.iter().position(|s| !(*s >= 0.0)) {
            return Err(Error::Weights(format!("{name}{SCALE_SUFFIX}: scale {i} is {} (int8 scales are positive)", values[i])));
        }
        scales.insert(name, (shape, values));
    }
    let mut out = Vec::with_capacity(tensors.len());
    for tensor in tensors {
        let scale = scales.remove(&tensor.name);
        let (scale_shape, values) = match (tensor.dtype, scale) {
            (DType::I8, Some(scale)) => scale,
            (DType::I8, None) => {
                return Err(Error::Weights(format!("{}: int8 weights without their scales ({}{SCALE_SUFFIX})", tensor.name, tensor.name)));
            }
            (dtype, Some(_)) => {
                return Err(Error::Weights(format!("{}{SCALE_SUFFIX}: int8 scales for weights stored as {dtype:?}", tensor.name)));
            }
            (_, None) => {
                out.push(tensor);
                continue;
            }
        };
        let shape = tensor.shape.to_vec();
        let fits = scale_shape.len() == shape.len() && scale_shape.iter().zip(&shape).all(|(s, d)| *s == 1 || s == d);
        if !fits {
            return Err(Error::Weights(format!(
                "{}: int8 scales of shape {scale_shape:?} do not fit the weights' {shape:?} (each axis 1 or the weights')",
                tensor.name
            )));
        }
        let name = tensor.name.clone();
        let values = Arc::new(values);
        let widened = shape.clone();
        out.push(bridge::map_data(tensor, name, DType::F32, shape.clone().into(), move |data| {
            let q = data.as_slice::<i8>().expect("an int8 tensor");
            TensorData::new(dequantize(q, &widened, &values, &scale_shape), widened.clone())
        }));
    }
    if let Some(name) = scales.keys().next() {
        return Err(Error::Weights(format!("{name}{SCALE_SUFFIX}: int8 scales without their weights ({name})")));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_parameter_kind_has_its_axis() {
        assert_eq!(output_axis("visual.conv1.weight", &[768, 3, 32, 32]), Some(0));
        assert_eq!(output_axis("text.transformer.resblocks.0.attn.in_proj.weight", &[512, 1536]), Some(1));
        assert_eq!(output_axis("text.token_embedding.weight", &[49408, 512]), Some(0));
        assert_eq!(output_axis("text.transformer.resblocks.0.mlp.c_fc.weight", &[512, 2048]), Some(1));
        assert_eq!(output_axis("text.text_projection", &[512, 512]), Some(1));
        assert_eq!(output_axis("visual.positional_embedding", &[50, 768]), None);
        assert_eq!(output_axis("visual.attnpool.positional_embedding", &[50, 2048]), None);
        assert_eq!(output_axis("visual.class_embedding", &[768]), None);
        assert_eq!(output_axis("visual.bn1.running_var", &[64]), None);
    }

    /// Against the formula, element by element, for each axis of a rank-3 tensor: the largest
    /// value of each channel is exactly ±127 steps, and every value is within half a step.
    #[test]
    fn quantizing_and_widening_keep_each_value_within_half_a_step() {
        let shape = [3, 4, 5];
        let values: Vec<f32> = (0..60).map(|i| ((i * 37 % 61) as f32 - 30.0) * 0.01 * (1 + i % 3) as f32).collect();
        for axis in 0..3 {
            let (q, scales) = quantize(&values, &shape, axis);
            assert_eq!(scales.len(), shape[axis]);
            let scale_shape: Vec<usize> = (0..3).map(|d| if d == axis { shape[d] } else { 1 }).collect();
            let back = dequantize(&q, &shape, &scales, &scale_shape);
            for (i, (v, b)) in values.iter().zip(&back).enumerate() {
                let idx = [i / 20, i / 5 % 4, i % 5];
                let s = scales[idx[axis]];
                assert_eq!(*b, f32::from(q[i]) * s, "axis {axis} element {i}");
                assert!((v - b).abs() <= s / 2.0 + 1e-7, "axis {axis} element {i}: {v} -> {b}");
            }
            for (c, s) in scales.iter().enumerate() {
                let max = (0..60).filter(|i| [i / 20, i / 5 % 4, i % 5][axis] == c).map(|i| values[i].abs()).fold(0f32, f32::max);
                assert_eq!(*s, max / 127.0);
            }
        }
    }

    #[test]
    fn an_all_zero_channel_stays_zero() {
        let (q, scales) = quantize(&[0.0, 0.0, 1.0, -0.5], &[2, 2], 0);
        assert_eq!(scales, vec![0.0, 1.0 / 127.0]);
        assert_eq!(q, vec![0, 0, 127, -64]);
    }
}

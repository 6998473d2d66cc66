//! Optimisation as open_clip does it: AdamW (PyTorch's formula) with decoupled weight decay on
//! the parameters of two or more dimensions only (not gains, biases, BatchNorm, the logit
//! scale), global gradient-norm clipping, and a linear-warmup + cosine learning rate.
//!
//! As PyTorch's fused AdamW, the update works on flat buffers, not parameter by parameter: the
//! parameters of one dtype that decay (or do not) lie in buffers of up to 64 MiB, their moments in
//! two more each, and a step gathers the gradients into the same layout, so the norm is one
//! reduction and the update one element-wise kernel per group (a ViT-B-32 has 301 parameter
//! tensors; updated one by one they cost ~1130 kernel launches a step). The model's
//! parameters are views into the buffer the last step wrote, which the next step updates: between
//! two steps, a model's parameters change only through [`AdamW::step`] (its [`Bound`]s clamp them);
//! a model with other parameters (other ids, shapes or dtypes) is laid out anew.
//!
//! The moments are saved per parameter *path* (e.g. `text.ln_final.gamma`), not per burn
//! `ParamId`, so a checkpoint restores them into a freshly built model.

use std::collections::{HashMap, HashSet};

use burn::module::{Module, ModuleMapper, ModuleVisitor, Param, ParamId};
use burn::optim::GradientsParams;
use burn::prelude::*;
use burn::tensor::FloatDType;
use clip_model::precision::float_dtype;
use serde::{Deserialize, Serialize};

use crate::commands::host;

/// AdamW hyper-parameters (design.md section 4: ViT betas (0.9, 0.98) eps 1e-6, ResNet (0.9, 0.999) eps 1e-8).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct AdamWConfig {
    pub beta1: f64,
    pub beta2: f64,
    pub eps: f64,
    pub weight_decay: f64,
}

impl AdamWConfig {
    /// The paper's betas and eps for the model's image tower type.
    pub fn for_model(config: &clip_model::ClipConfig, weight_decay: f64) -> Self {
        let vit = matches!(config.vision_cfg.layers, clip_model::config::VisionLayers::Vit(_));
        Self { beta1: 0.9, beta2: if vit { 0.98 } else { 0.999 }, eps: if vit { 1e-6 } else { 1e-8 }, weight_decay }
    }
}

/// A parameter clamped to `[min, max]` after every update (its group holds only parameters with
/// the same bound).
#[derive(Debug, Clone, Copy)]
pub struct Bound {
    pub path: &'static str,
    pub min: f64,
    pub max: f64,
}

/// open_clip clamps the logit scale to [0, ln 100] after every step.
pub const CLIP_BOUNDS: [Bound; 1] = [Bound { path: "logit_scale", min: 0.0, max: 2.0 * std::f64::consts::LN_10 }];

/// Every parameter starts at a multiple of this many bytes of its buffer, and every buffer's length
/// is one: cubecl slices a buffer without a copy at offsets aligned to the device's memory
/// alignment (512 bytes on CUDA, 256 on wgpu), so the parameters are views.
const ALIGN_BYTES: usize = 512;

/// The most bytes a group's buffers hold on `device` (more parameters of the same kind go to
/// another group; a larger parameter is a group of its own). GPUs want few large kernels, and wgpu
/// binds at most 128 MiB of a buffer to a kernel on many devices (lavapipe, browsers' WebGPU by
/// default). The CPU backend makes a pass over memory per element-wise op, fastest on buffers that
/// stay in cache (a ViT-B-32 step on 2 cores: 6.7 s with 64 MiB, 5.0 s with 4 MiB).
fn group_bytes(device: &Device) -> usize {
    #[cfg(feature = "flex")]
    if matches!(device.as_dispatch(), burn::backend::DispatchDevice::Flex(_)) {
        return 4 << 20;
    }
    64 << 20
}

struct Moments {
    exp_avg: Tensor<1>,
    exp_avg_sq: Tensor<1>,
}

/// A parameter in the flat layout.
struct Slot {
    path: String,
    id: ParamId,
    dims: Vec<usize>,
    offset: usize,
    len: usize,
}

/// Parameters of one dtype that decay, or do not (up to [`group_bytes`]), in one buffer each: the
/// parameters (their dtype), AdamW's moments (f32).
struct Group {
    dtype: FloatDType,
    decays: bool,
    /// The clamp of its parameters ([`Bound`]).
    bound: Option<(f64, f64)>,
    slots: Vec<Slot>,
    len: usize,
    params: Tensor<1>,
    exp_avg: Tensor<1>,
    exp_avg_sq: Tensor<1>,
}

impl Group {
    /// Each parameter's path and moments (views into the group's buffers).
    fn moments(&self) -> impl Iterator<Item = (&str, Moments)> + '_ {
        self.slots.iter().map(|slot| {
            let range = slot.offset..slot.offset + slot.len;
            let exp_avg = self.exp_avg.clone().slice([range.clone()]);
            let exp_avg_sq = self.exp_avg_sq.clone().slice([range]);
            (slot.path.as_str(), Moments { exp_avg, exp_avg_sq })
        })
    }
}

pub struct AdamW {
    pub config: AdamWConfig,
    /// Optimiser steps taken (the bias corrections use it).
    pub steps: u64,
    bounds: &'static [Bound],
    groups: Vec<Group>,
    /// Where each parameter of the layout lies: (group, slot) indices into `groups`.
    index: HashMap<ParamId, (usize, usize)>,
    /// Moments by path that no group holds yet (restored from a checkpoint, or of a parameter
    /// without a gradient in the last layout): the next layout takes them.
    pending: HashMap<String, Moments>,
}

/// A step's gradients in the optimiser's layout (one buffer per group), from [`AdamW::gather`].
pub struct FlatGradients {
    groups: Vec<Tensor<1>>,
}

impl FlatGradients {
    /// Replaces the buffers with `f`'s, which must have the same lengths (a collective summing
    /// them over ranks: [`crate::dist::DataParallel::sum_gradients`]).
    pub fn map_buffers(self, f: impl FnOnce(Vec<Tensor<1>>) -> anyhow::Result<Vec<Tensor<1>>>) -> anyhow::Result<Self> {
        let lens: Vec<usize> = self.groups.iter().map(|g| g.shape().num_elements()).collect();
        let groups = f(self.groups)?;
        let mapped: Vec<usize> = groups.iter().map(|g| g.shape().num_elements()).collect();
        anyhow::ensure!(mapped == lens, "gradient buffers of {mapped:?} values replace ones of {lens:?}");
        Ok(Self { groups })
    }

    /// `value` (`[1]`, on the device) and the global L2 norm of the gradients (PyTorch
    /// `clip_grad_norm_`'s total norm), read back from the device in one transfer.
    pub fn norm_and(&self, value: Tensor<1>) -> anyhow::Result<(f64, f64)> {
        let value = value.cast(FloatDType::F32);
        let sum = self.groups.iter().map(|g| g.clone().cast(FloatDType::F32).square().sum()).reduce(|a, b| a + b);
        let both = host(Tensor::cat(vec![value.clone(), sum.unwrap_or_else(|| value.zeros_like())], 0))?;
        Ok((both[0] as f64, (both[1] as f64).sqrt()))
    }
}

/// Name prefixes of the moments in a checkpoint.
const EXP_AVG: &str = "optimizer.exp_avg.";
const EXP_AVG_SQ: &str = "optimizer.exp_avg_sq.";

/// A parameter with a gradient, as [`AdamW::gather`] finds it.
struct Found {
    path: String,
    id: ParamId,
    dims: Vec<usize>,
    dtype: FloatDType,
    decays: bool,
    bound: Option<(f64, f64)>,
    /// The gradient, flattened.
    grad: Tensor<1>,
}

impl AdamW {
    /// An optimiser whose steps clamp the parameters named in `bounds` ([`CLIP_BOUNDS`] for CLIP).
    pub fn new(config: AdamWConfig, bounds: &'static [Bound]) -> Self {
        Self { config, steps: 0, bounds, groups: Vec::new(), index: HashMap::new(), pending: HashMap::new() }
    }

    /// Takes the gradients of `model`'s parameters out of `grads` into the flat layout (laying
    /// the parameters out first when they are not the ones of the last step).
    pub fn gather<M: Module>(&mut self, model: &M, grads: GradientsParams) -> anyhow::Result<FlatGradients> {
        struct Find {
            grads: GradientsParams,
            path: Vec<String>,
            weight_decay: bool,
            bounds: &'static [Bound],
            found: Vec<Found>,
        }
        impl ModuleVisitor for Find {
            fn enter_module(&mut self, name: &str, _container_type: &str) {
                self.path.push(name.to_string());
            }
            fn exit_module(&mut self, _name: &str, _container_type: &str) {
                self.path.pop();
            }
            fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
                let Some(grad) = self.grads.remove::<D>(param.id) else { return };
                let value = param.val();
                let dims = value.shape().to_vec();
                let path = self.path.join(".");
                self.found.push(Found {
                    bound: self.bounds.iter().find(|b| b.path == path).map(|b| (b.min, b.max)),
                    path,
                    id: param.id,
                    grad: grad.reshape([dims.iter().product::<usize>()]),
                    dims,
                    dtype: float_dtype(&value),
                    // Decoupled weight decay on matrices, convolutions and embeddings only.
                    decays: D >= 2 && self.weight_decay,
                });
            }
        }
        let mut find = Find { grads, path: Vec::new(), weight_decay: self.config.weight_decay > 0.0, bounds: self.bounds, found: Vec::new() };
        model.visit(&mut find);
        let found = find.found;
        if !self.laid_out_for(&found) {
            self.lay_out(model, &found)?;
        }
        let mut members: Vec<Vec<(usize, Tensor<1>)>> = self.groups.iter().map(|_| Vec::new()).collect();
        for f in found {
            let (g, s) = self.index[&f.id];
            members[g].push((self.groups[g].slots[s].offset, f.grad));
        }
        let flat = self
            .groups
            .iter()
            .zip(members)
            .map(|(group, grads)| {
                // A buffer per gradient dtype, each written in place (no other owner): mixed
                // precision's gradients arrive in the compute dtype and are cast once per buffer.
                let mut by_dtype: Vec<(FloatDType, Vec<(usize, Tensor<1>)>)> = Vec::new();
                for (offset, grad) in grads {
                    let dtype = float_dtype(&grad);
                    match by_dtype.iter_mut().find(|(d, _)| *d == dtype) {
                        Some((_, members)) => members.push((offset, grad)),
                        None => by_dtype.push((dtype, vec![(offset, grad)])),
                    }
                }
                let device = group.params.device();
                by_dtype
                    .into_iter()
                    .map(|(dtype, members)| {
                        let zeros = Tensor::zeros([group.len], (&device, burn::tensor::DType::from(dtype)));
                        let flat = members.into_iter().fold(zeros, |flat, (offset, grad)| {
                            let n = grad.shape().num_elements();
                            flat.slice_assign([offset..offset + n], grad)
                        });
                        flat.cast(group.dtype)
                    })
                    .reduce(|a, b| a + b)
                    .expect("a group holds parameters with gradients")
            })
            .collect();
        Ok(FlatGradients { groups: flat })
    }

    /// Views (flat) of the parameters in `ids` that the layout holds, from its parameter buffers
    /// cast to `dtype` whole: one kernel per buffer, for mixed precision's compute copy
    /// (`precision::compute_model`). The buffers are the parameters' values, since between
    /// steps parameters change only through the optimiser.
    pub fn cast_views(&self, dtype: FloatDType, ids: &HashSet<ParamId>) -> HashMap<ParamId, Tensor<1>> {
        let mut views = HashMap::new();
        for group in self.groups.iter().filter(|g| g.slots.iter().any(|s| ids.contains(&s.id))) {
            let cast = group.params.clone().cast(dtype);
            for slot in group.slots.iter().filter(|s| ids.contains(&s.id)) {
                views.insert(slot.id, cast.clone().narrow(0, slot.offset, slot.len));
            }
        }
        views
    }

    /// The per-parameter gradients of `flat` (views into its buffers), as burn holds them: the
    /// inverse of [`AdamW::gather`] on the same model (tests compare gradients per parameter).
    #[cfg(test)]
    pub fn scatter<M: Module>(&self, model: &M, flat: &FlatGradients) -> GradientsParams {
        struct Scatter<'a> {
            optim: &'a AdamW,
            flat: &'a FlatGradients,
            grads: GradientsParams,
        }
        impl ModuleVisitor for Scatter<'_> {
            fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
                let Some(&(g, s)) = self.optim.index.get(&param.id) else { return };
                let slot = &self.optim.groups[g].slots[s];
                let dims: [usize; D] = slot.dims.clone().try_into().expect("a parameter keeps its rank");
                self.grads.register::<D>(param.id, self.flat.groups[g].clone().narrow(0, slot.offset, slot.len).reshape(dims));
            }
        }
        let mut scatter = Scatter { optim: self, flat, grads: GradientsParams::new() };
        model.visit(&mut scatter);
        scatter.grads
    }

    /// Whether `found` are the parameters of the current layout (same ids, paths, shapes, dtypes).
    fn laid_out_for(&self, found: &[Found]) -> bool {
        self.index.len() == found.len()
            && found.iter().all(|f| {
                self.index.get(&f.id).is_some_and(|&(g, s)| {
                    let (group, slot) = (&self.groups[g], &self.groups[g].slots[s]);
                    slot.path == f.path && slot.dims == f.dims && group.dtype == f.dtype && group.decays == f.decays && group.bound == f.bound
                })
            })
    }

    /// Groups `found` by (dtype, decay, bound), up to [`group_bytes`] each, into fresh buffers
    /// holding the current values of `model`'s parameters and the moments known by path (zero
    /// for a parameter never updated).
    fn lay_out<M: Module>(&mut self, model: &M, found: &[Found]) -> anyhow::Result<()> {
        /// The flattened values of the parameters in `found` (not of those without a gradient).
        struct Values(HashMap<ParamId, Option<Tensor<1>>>);
        impl ModuleVisitor for Values {
            fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
                if let Some(slot) = self.0.get_mut(&param.id) {
                    let value = param.val().inner();
                    let n = value.shape().num_elements();
                    *slot = Some(value.reshape([n]));
                }
            }
        }
        let mut values = Values(found.iter().map(|f| (f.id, None)).collect());
        model.visit(&mut values);
        self.settle();
        let mut groups: Vec<Group> = Vec::new();
        let mut members: Vec<Vec<Tensor<1>>> = Vec::new();
        for f in found {
            let size = burn::tensor::DType::from(f.dtype).size();
            let len: usize = f.dims.iter().product();
            let padded = len.div_ceil(ALIGN_BYTES / size) * (ALIGN_BYTES / size);
            let device = f.grad.device();
            let fits = |g: &Group| g.dtype == f.dtype && g.decays == f.decays && g.bound == f.bound && (g.len + padded) * size <= group_bytes(&device);
            let g = match groups.iter().rposition(fits) {
                Some(g) => g,
                None => {
                    let empty = Tensor::<1>::zeros([0], &device);
                    groups.push(Group { dtype: f.dtype, decays: f.decays, bound: f.bound, slots: Vec::new(), len: 0, params: empty.clone(), exp_avg: empty.clone(), exp_avg_sq: empty });
                    members.push(Vec::new());
                    groups.len() - 1
                }
            };
            let group = &mut groups[g];
            group.slots.push(Slot { path: f.path.clone(), id: f.id, dims: f.dims.clone(), offset: group.len, len });
            group.len += padded;
            members[g].push(values.0.remove(&f.id).flatten().expect("a parameter with a gradient is the model's"));
        }
        for (group, members) in groups.iter_mut().zip(members) {
            let device = members[0].device();
            let zeros = |dtype: FloatDType| Tensor::<1>::zeros([group.len], (&device, burn::tensor::DType::from(dtype)));
            let (mut params, mut exp_avg, mut exp_avg_sq) = (zeros(group.dtype), zeros(FloatDType::F32), zeros(FloatDType::F32));
            for (slot, value) in group.slots.iter().zip(members) {
                let range = slot.offset..slot.offset + slot.len;
                params = params.slice_assign([range.clone()], value);
                if let Some(m) = self.pending.remove(&slot.path) {
                    let n = m.exp_avg.shape().num_elements();
                    anyhow::ensure!(
                        n == slot.len && m.exp_avg_sq.shape().num_elements() == n,
                        "optimizer state of {} has {n} values, the parameter {}",
                        slot.path,
                        slot.len
                    );
                    exp_avg = exp_avg.slice_assign([range.clone()], m.exp_avg.cast(FloatDType::F32));
                    exp_avg_sq = exp_avg_sq.slice_assign([range], m.exp_avg_sq.cast(FloatDType::F32));
                }
            }
            (group.params, group.exp_avg, group.exp_avg_sq) = (params, exp_avg, exp_avg_sq);
        }
        self.index = groups.iter().enumerate().flat_map(|(g, group)| group.slots.iter().enumerate().map(move |(s, slot)| (slot.id, (g, s)))).collect();
        self.groups = groups;
        Ok(())
    }

    /// Moves the groups' moments to `pending`, by path.
    fn settle(&mut self) {
        self.index.clear();
        for group in std::mem::take(&mut self.groups) {
            for (path, moments) in group.moments() {
                self.pending.insert(path.to_string(), moments);
            }
        }
    }

    /// One update of every parameter of `model` that had a gradient, from `grads` ([`AdamW::gather`]
    /// on the same model) first multiplied by `grad_scale` (the clipping factor); the parameters
    /// with a [`Bound`] are clamped after it.
    pub fn step<M: Module>(&mut self, model: M, grads: FlatGradients, lr: f64, grad_scale: f64) -> M {
        self.steps += 1;
        let c = self.config;
        let t = self.steps as i32;
        let bias1 = 1.0 - c.beta1.powi(t);
        let bias2 = 1.0 - c.beta2.powi(t);
        let mut views: HashMap<ParamId, (Tensor<1>, Vec<usize>)> = HashMap::new();
        assert_eq!(grads.groups.len(), self.groups.len(), "AdamW::step takes the gradients of the last gather");
        // The buffers are moved, not cloned, into the update, so that a backend may write it in
        // place (burn's fusion does once the model's old views are gone).
        for (group, g) in std::mem::take(&mut self.groups).into_iter().zip(grads.groups) {
            let Group { dtype, decays, bound, slots, len, params, exp_avg, exp_avg_sq } = group;
            // The update is computed in f32 and the moments are kept in f32 whatever the weights'
            // dtype: pure bf16/f16 weights are rounded once, after the update (f16 moments would
            // underflow: g^2 of a small gradient is below f16's range).
            let mut g = g.cast(FloatDType::F32);
            if grad_scale != 1.0 {
                g = g * grad_scale;
            }
            let mut p = params.cast(FloatDType::F32);
            if decays {
                p = p * (1.0 - lr * c.weight_decay);
            }
            let exp_avg = exp_avg * c.beta1 + g.clone() * (1.0 - c.beta1);
            let exp_avg_sq = exp_avg_sq * c.beta2 + g.square() * (1.0 - c.beta2);
            let denom = exp_avg_sq.clone().sqrt() / bias2.sqrt() + c.eps;
            p = p - exp_avg.clone() / denom * (lr / bias1);
            if let Some((min, max)) = bound {
                p = p.clamp(min, max);
            }
            let params = p.cast(dtype);
            for slot in &slots {
                views.insert(slot.id, (params.clone().narrow(0, slot.offset, slot.len), slot.dims.clone()));
            }
            self.groups.push(Group { dtype, decays, bound, slots, len, params, exp_avg, exp_avg_sq });
        }
        struct Update {
            views: HashMap<ParamId, (Tensor<1>, Vec<usize>)>,
        }
        impl ModuleMapper for Update {
            fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
                let (id, tensor, mapper) = param.consume();
                let Some((view, dims)) = self.views.remove(&id) else {
                    return Param::from_mapped_value(id, tensor, mapper);
                };
                let require_grad = tensor.is_require_grad();
                let dims: [usize; D] = dims.try_into().expect("a parameter keeps its rank");
                let mut updated = Tensor::from_inner(view.reshape(dims));
                if require_grad {
                    updated = updated.require_grad();
                }
                Param::from_mapped_value(id, updated, mapper)
            }
        }
        model.map(&mut Update { views })
    }

    /// The moments as named tensors for a checkpoint (`optimizer.exp_avg.<path>`, ...).
    pub fn to_tensors(&self) -> Vec<(String, TensorData)> {
        let mut moments: Vec<(&str, Tensor<1>, Tensor<1>)> =
            self.pending.iter().map(|(path, m)| (path.as_str(), m.exp_avg.clone(), m.exp_avg_sq.clone())).collect();
        for group in &self.groups {
            moments.extend(group.moments().map(|(path, m)| (path, m.exp_avg, m.exp_avg_sq)));
        }
        moments.sort_by(|a, b| a.0.cmp(b.0));
        let mut out = Vec::new();
        for (path, exp_avg, exp_avg_sq) in moments {
            out.push((format!("{EXP_AVG}{path}"), exp_avg.into_data()));
            out.push((format!("{EXP_AVG_SQ}{path}"), exp_avg_sq.into_data()));
        }
        out
    }

    /// Restores moments written by [`AdamW::to_tensors`] (for the model the next step is given).
    pub fn load_tensors(&mut self, tensors: Vec<(String, TensorData)>, steps: u64, device: &Device) -> anyhow::Result<()> {
        let mut avg = HashMap::new();
        let mut sq = HashMap::new();
        for (name, data) in tensors {
            let n = data.shape().num_elements();
            let tensor = Tensor::<1>::from_data(data.convert::<f32>(), device).reshape([n]);
            if let Some(path) = name.strip_prefix(EXP_AVG_SQ) {
                sq.insert(path.to_string(), tensor);
            } else if let Some(path) = name.strip_prefix(EXP_AVG) {
                avg.insert(path.to_string(), tensor);
            }
        }
        self.groups.clear();
        self.index.clear();
        self.pending.clear();
        for (path, exp_avg) in avg {
            let exp_avg_sq = sq.remove(&path).ok_or_else(|| anyhow::anyhow!("checkpoint: {path} has no second moment"))?;
            self.pending.insert(path, Moments { exp_avg, exp_avg_sq });
        }
        self.steps = steps;
        Ok(())
    }
}

/// PyTorch's clip coefficient: `min(1, max_norm / (norm + 1e-6))`.
pub fn clip_scale(norm: f64, max_norm: Option<f64>) -> f64 {
    match max_norm {
        Some(max) if norm.is_finite() => (max / (norm + 1e-6)).min(1.0),
        _ => 1.0,
    }
}

/// open_clip's `cosine_lr`: linear warmup over `warmup` steps to `base`, then cosine to 0 at `total`.
pub fn cosine_lr(base: f64, warmup: u64, total: u64, step: u64) -> f64 {
    if step < warmup {
        base * (step + 1) as f64 / warmup as f64
    } else {
        let e = (step - warmup) as f64;
        let es = total.saturating_sub(warmup).max(1) as f64;
        0.5 * (1.0 + (std::f64::consts::PI * e / es).cos()) * base
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::nn::{Linear, LinearConfig};

    #[test]
    fn schedule_warms_up_then_decays_to_zero() {
        assert!((cosine_lr(1.0, 10, 110, 0) - 0.1).abs() < 1e-12);
        assert!((cosine_lr(1.0, 10, 110, 9) - 1.0).abs() < 1e-12);
        assert!((cosine_lr(1.0, 10, 110, 10) - 1.0).abs() < 1e-12);
        assert!((cosine_lr(1.0, 10, 110, 60) - 0.5).abs() < 1e-12);
        assert!(cosine_lr(1.0, 10, 110, 110).abs() < 1e-12);
        assert_eq!(clip_scale(10.0, Some(1.0)), 1.0 / (10.0 + 1e-6));
        assert_eq!(clip_scale(0.5, Some(1.0)), 1.0);
        assert_eq!(clip_scale(10.0, None), 1.0);
    }

    /// Two AdamW steps on a linear layer against PyTorch's `torch.optim.AdamW` formula, computed
    /// here by hand in f64: the weight (2-D) decays, the bias (1-D) does not.
    #[test]
    fn adamw_matches_the_pytorch_formula() {
        let device = Device::flex().autodiff();
        let config = AdamWConfig { beta1: 0.9, beta2: 0.98, eps: 1e-6, weight_decay: 0.2 };
        let mut optim = AdamW::new(config, &[]);
        let mut layer: Linear = LinearConfig::new(2, 1).init(&device);
        let w0: Vec<f64> = layer.weight.val().into_data().try_to_vec::<f32>().unwrap().iter().map(|&v| v as f64).collect();
        let b0 = layer.bias.as_ref().unwrap().val().into_data().try_to_vec::<f32>().unwrap()[0] as f64;
        let x = [1.0f64, -2.0];
        let lr = 0.1;
        let (mut w, mut b) = (w0.clone(), b0);
        let (mut mw, mut vw, mut mb, mut vb) = ([0.0f64; 2], [0.0f64; 2], 0.0f64, 0.0f64);
        for t in 1..=2 {
            let input = Tensor::<2>::from_floats([[x[0] as f32, x[1] as f32]], &device);
            let loss = layer.forward(input).sum();
            let grads = GradientsParams::from_grads(loss.backward(), &layer);
            let grads = optim.gather(&layer, grads).unwrap();
            // |d/dw|^2 + |d/db|^2 = 1 + 4 + 1.
            let (value, norm) = grads.norm_and(Tensor::from_floats([2.5], &device)).unwrap();
            assert!(value == 2.5 && (norm - 6f64.sqrt()).abs() < 1e-6);
            layer = optim.step(layer, grads, lr, 1.0);
            // Reference: d(sum(w.x + b))/dw = x, /db = 1.
            let (bc1, bc2) = (1.0 - 0.9f64.powi(t), 1.0 - 0.98f64.powi(t));
            for i in 0..2 {
                w[i] *= 1.0 - lr * 0.2;
                mw[i] = 0.9 * mw[i] + 0.1 * x[i];
                vw[i] = 0.98 * vw[i] + 0.02 * x[i] * x[i];
                w[i] -= lr / bc1 * mw[i] / (vw[i].sqrt() / bc2.sqrt() + 1e-6);
            }
            mb = 0.9 * mb + 0.1;
            vb = 0.98 * vb + 0.02;
            b -= lr / bc1 * mb / (vb.sqrt() / bc2.sqrt() + 1e-6);
        }
        let got_w = layer.weight.val().into_data().try_to_vec::<f32>().unwrap();
        let got_b = layer.bias.as_ref().unwrap().val().into_data().try_to_vec::<f32>().unwrap()[0];
        for i in 0..2 {
            assert!((got_w[i] as f64 - w[i]).abs() < 1e-5, "w[{i}] {} vs {}", got_w[i], w[i]);
        }
        assert!((got_b as f64 - b).abs() < 1e-5, "b {got_b} vs {b}");
        assert!(layer.weight.val().is_require_grad());

        // The moments survive a round trip through checkpoint tensors.
        let tensors = optim.to_tensors();
        assert_eq!(tensors.len(), 4);
        let mut restored = AdamW::new(config, &[]);
        restored.load_tensors(tensors, optim.steps, &device.clone().inner()).unwrap();
        assert_eq!(restored.to_tensors().iter().map(|t| t.1.clone()).collect::<Vec<_>>(), optim.to_tensors().iter().map(|t| t.1.clone()).collect::<Vec<_>>());
    }

    #[derive(Module, Debug)]
    struct Toy {
        weight: Param<Tensor<2>>,
        logit_scale: Param<Tensor<1>>,
    }

    /// Parameters are clamped in the optimiser's buffer (the next update starts from the clamped
    /// value), a model with new parameter ids is laid out anew with its moments found by path, and
    /// the moments survive a checkpoint: seven steps against the formula in f64.
    #[test]
    fn bounds_relayouts_and_restores_follow_the_formula() {
        let device = Device::flex().autodiff();
        let config = AdamWConfig { beta1: 0.9, beta2: 0.98, eps: 1e-6, weight_decay: 0.1 };
        static BOUNDS: [Bound; 1] = [Bound { path: "logit_scale", min: 0.0, max: 4.6 }];
        let (x, lr) = ([0.5f64, -1.5], 0.05);
        let signs = [-1.0f64, -1.0, -1.0, 1.0, 1.0, 1.0, 1.0];
        let fresh = |w: [f64; 2], s: f64| Toy {
            weight: Param::from_tensor(Tensor::<2>::from_floats([[w[0] as f32, w[1] as f32]], &device)),
            logit_scale: Param::from_tensor(Tensor::<1>::from_floats([s as f32], &device)),
        };
        let mut model = fresh([0.3, -0.2], 4.5);
        let mut optim = AdamW::new(config, &BOUNDS);
        let (mut w, mut s) = ([0.3f64, -0.2], 4.5f64);
        let (mut m, mut v) = ([0.0f64; 3], [0.0f64; 3]);
        for (t, sign) in signs.iter().enumerate() {
            if t == 2 {
                // Same values and paths, new ids: laid out again, moments carried by path.
                let value = |p: &Param<Tensor<2>>| p.val().into_data().try_to_vec::<f32>().unwrap();
                let wv = value(&model.weight);
                model = fresh([wv[0] as f64, wv[1] as f64], model.logit_scale.val().into_scalar::<f32>() as f64);
            }
            if t == 3 {
                let mut restored = AdamW::new(config, &BOUNDS);
                restored.load_tensors(optim.to_tensors(), optim.steps, &device.clone().inner()).unwrap();
                optim = restored;
            }
            let input = Tensor::<2>::from_floats([[x[0] as f32, x[1] as f32]], &device);
            let loss = (model.weight.val() * input).sum() + model.logit_scale.val().sum() * *sign;
            let grads = optim.gather(&model, GradientsParams::from_grads(loss.backward(), &model)).unwrap();
            model = optim.step(model, grads, lr, 1.0);

            let (bc1, bc2) = (1.0 - 0.9f64.powi(t as i32 + 1), 1.0 - 0.98f64.powi(t as i32 + 1));
            let grad = [x[0], x[1], *sign];
            for i in 0..3 {
                m[i] = 0.9 * m[i] + 0.1 * grad[i];
                v[i] = 0.98 * v[i] + 0.02 * grad[i] * grad[i];
                let delta = lr / bc1 * m[i] / (v[i].sqrt() / bc2.sqrt() + 1e-6);
                if i < 2 {
                    w[i] = w[i] * (1.0 - lr * 0.1) - delta;
                } else {
                    s = (s - delta).clamp(0.0, 4.6);
                }
            }
            let got_w = model.weight.val().into_data().try_to_vec::<f32>().unwrap();
            let got_s = model.logit_scale.val().into_scalar::<f32>() as f64;
            for i in 0..2 {
                assert!((got_w[i] as f64 - w[i]).abs() < 1e-5, "step {t}: w[{i}] {} vs {}", got_w[i], w[i]);
            }
            assert!((got_s - s).abs() < 1e-5, "step {t}: logit scale {got_s} vs {s}");
            assert!(model.weight.val().is_require_grad() && model.logit_scale.val().is_require_grad());
        }
        // The scale reached the bound, and left it when the gradient turned.
        assert!(s < 4.6 && s > 4.4, "{s}");

        // A checkpoint's moments must fit the model they are restored for.
        let mut wrong = AdamW::new(config, &BOUNDS);
        let mut tensors = optim.to_tensors();
        tensors.retain(|(name, _)| name.ends_with("weight"));
        for (_, data) in tensors.iter_mut() {
            *data = TensorData::new(vec![0f32; 3], [3]);
        }
        wrong.load_tensors(tensors, 5, &device.clone().inner()).unwrap();
        let loss = model.weight.val().sum() + model.logit_scale.val().sum();
        let err = wrong.gather(&model, GradientsParams::from_grads(loss.backward(), &model)).err().unwrap();
        assert!(err.to_string().contains("weight has 3 values"), "{err}");
    }
}

//! `--precision`: open_clip's names and meanings.
//!
//! - `fp32`: everything in f32 (on CUDA the matmuls may use TF32, as PyTorch's default).
//! - `amp_bf16`, `amp` (f16): mixed precision. The model and the optimiser state stay f32 (the
//!   master weights); each step computes through a bf16/f16 copy of the towers ([`compute_model`]:
//!   the optimiser's parameter buffers cast whole), whose gradients are cast back into the f32
//!   buffers of the optimiser's layout. BatchNorm and LayerNorm (parameters and statistics), the
//!   features, logits and loss are f32. `amp` scales the loss (dynamic, as PyTorch's GradScaler).
//! - `bf16`, `f16`: pure low precision (open_clip's `--precision bf16`): the towers' weights are
//!   stored in bf16/f16 (no f32 copy; the normalisation layers' few parameters stay f32);
//!   AdamW's moments and its update stay f32 (f16 moments underflow); `f16` scales the loss.

use std::collections::{HashMap, HashSet};

use burn::module::{Module, ModuleMapper, ModuleVisitor, Param, ParamId};
use burn::optim::GradientsParams;
use burn::prelude::*;
use burn::tensor::FloatDType;
use clip_model::precision::cast_tower_ids;
use clip_model::Clip;
use serde::{Deserialize, Serialize};

use crate::optim::AdamW;

#[derive(clap::ValueEnum, Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Precision {
    #[default]
    Fp32,
    Bf16,
    F16,
    #[value(name = "amp_bf16", alias = "amp-bf16")]
    AmpBf16,
    Amp,
}

impl Precision {
    /// The dtype the towers compute in (None: f32).
    pub fn compute_dtype(self) -> Option<FloatDType> {
        match self {
            Self::Fp32 => None,
            Self::Bf16 | Self::AmpBf16 => Some(FloatDType::BF16),
            Self::F16 | Self::Amp => Some(FloatDType::F16),
        }
    }

    /// Mixed precision: the dtype of the per-step compute copy of f32 weights.
    pub fn amp_dtype(self) -> Option<FloatDType> {
        matches!(self, Self::AmpBf16 | Self::Amp).then(|| self.compute_dtype()).flatten()
    }

    /// Pure low precision: the dtype the towers' weights are stored in.
    pub fn storage_dtype(self) -> Option<FloatDType> {
        matches!(self, Self::Bf16 | Self::F16).then(|| self.compute_dtype()).flatten()
    }

    /// f16's range needs the loss scaled so that small gradients do not flush to zero.
    pub fn scales_loss(self) -> bool {
        matches!(self, Self::F16 | Self::Amp)
    }

    pub fn name(self) -> &'static str {
        match self {
            Self::Fp32 => "fp32",
            Self::Bf16 => "bf16",
            Self::F16 => "f16",
            Self::AmpBf16 => "amp_bf16",
            Self::Amp => "amp",
        }
    }
}

/// The model a step computes through: `model` itself, or (mixed precision) a copy whose towers'
/// parameters (`cast_tower_ids`: all but BatchNorm's and LayerNorm's; the logit scale stays f32
/// too) are in `dtype`, each a leaf of its own under its original's id and trainable as it was:
/// their gradients arrive in `dtype` on these leaves, and [`AdamW::gather`] casts them into the
/// f32 master weights' buffers, once per buffer. The values are views of `optim`'s parameter
/// buffers cast whole ([`AdamW::cast_views`]); where a cast recorded per parameter cost a kernel
/// per parameter and per gradient (547 lone casts a ViT-B-32 step), this costs a few. Parameters
/// the optimiser does not hold (before its first step) are cast one by one. The gradients are
/// those of the recorded casts, bit for bit (`a_laid_out_optimiser_casts_the_same_values`).
pub fn compute_model(model: &Clip, dtype: Option<FloatDType>, optim: &AdamW) -> Clip {
    let Some(dtype) = dtype else { return model.clone() };
    let ids = cast_tower_ids(model);
    let views = optim.cast_views(dtype, &ids);
    low_precision_leaves(model, dtype, ids, views)
}

/// `model` with its parameters in `ids` in `dtype`, each a leaf of its own under its original's
/// id and trainable as it was: from `views` (flat, already in `dtype`) where they hold it, cast
/// one by one otherwise. The other parameters are `model`'s own.
fn low_precision_leaves(model: &Clip, dtype: FloatDType, ids: HashSet<ParamId>, views: HashMap<ParamId, Tensor<1>>) -> Clip {
    struct Leaves {
        dtype: FloatDType,
        ids: HashSet<ParamId>,
        views: HashMap<ParamId, Tensor<1>>,
    }
    impl ModuleMapper for Leaves {
        fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
            if !self.ids.contains(&param.id) {
                return param;
            }
            let (id, tensor, mapper) = param.consume();
            let require_grad = tensor.is_require_grad();
            let dims = tensor.dims();
            let value = match self.views.remove(&id) {
                Some(view) if view.shape().num_elements() == dims.iter().product::<usize>() => view.reshape(dims),
                _ => tensor.inner().cast(self.dtype),
            };
            let leaf = Tensor::from_inner(value);
            Param::from_mapped_value(id, if require_grad { leaf.require_grad() } else { leaf }, mapper)
        }
    }
    model.clone().map(&mut Leaves { dtype, ids, views })
}

/// `grads` in f32: mixed precision's gradients arrive in the compute dtype, and those of several
/// micro-batches are summed in f32 (as the f32 master weights' gradients were before they were
/// gathered per buffer).
pub fn widened<M: Module>(grads: GradientsParams, module: &M) -> GradientsParams {
    struct Widen(GradientsParams, GradientsParams);
    impl ModuleVisitor for Widen {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
            if let Some(grad) = self.0.remove::<D>(param.id) {
                self.1.register::<D>(param.id, grad.cast(FloatDType::F32));
            }
        }
    }
    let mut widen = Widen(grads, GradientsParams::new());
    module.visit(&mut widen);
    widen.1
}

/// `model` with its towers stored in `dtype` (pure low precision): the cast values become the
/// trainable leaves themselves, no longer tied to the f32 originals.
pub fn store_towers(model: &Clip, dtype: FloatDType) -> Clip {
    low_precision_leaves(model, dtype, cast_tower_ids(model), HashMap::new())
}

/// Dynamic loss scaling with PyTorch `GradScaler`'s defaults: start at 2^16; a step whose
/// gradients are not finite is skipped and halves the scale; 2000 finite steps in a row double it.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct LossScaler {
    pub enabled: bool,
    pub scale: f64,
    pub good_steps: u64,
}

impl LossScaler {
    const GROWTH_INTERVAL: u64 = 2000;

    pub fn new(precision: Precision) -> Self {
        let enabled = precision.scales_loss();
        Self { enabled, scale: if enabled { 65536.0 } else { 1.0 }, good_steps: 0 }
    }

    /// Records a step's outcome; returns whether to apply it (gradients finite).
    pub fn update(&mut self, grads_finite: bool) -> bool {
        if !self.enabled {
            return grads_finite;
        }
        if !grads_finite {
            self.scale = (self.scale * 0.5).max(1.0 / 65536.0);
            self.good_steps = 0;
            return false;
        }
        self.good_steps += 1;
        if self.good_steps % Self::GROWTH_INTERVAL == 0 {
            self.scale *= 2.0;
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_open_clips() {
        use clap::ValueEnum;
        let names: Vec<String> = Precision::value_variants().iter().map(|p| p.to_possible_value().unwrap().get_name().to_string()).collect();
        assert_eq!(names, ["fp32", "bf16", "f16", "amp_bf16", "amp"]);
        for p in Precision::value_variants() {
            assert_eq!(p.to_possible_value().unwrap().get_name(), p.name());
        }
        assert_eq!(Precision::AmpBf16.amp_dtype(), Some(FloatDType::BF16));
        assert_eq!(Precision::AmpBf16.storage_dtype(), None);
        assert_eq!(Precision::F16.storage_dtype(), Some(FloatDType::F16));
        assert!(Precision::Amp.scales_loss() && !Precision::AmpBf16.scales_loss());
    }

    #[test]
    fn the_scaler_backs_off_on_overflow_and_grows_after_2000_good_steps() {
        let mut s = LossScaler::new(Precision::Amp);
        assert_eq!(s.scale, 65536.0);
        assert!(!s.update(false));
        assert_eq!(s.scale, 32768.0);
        for _ in 0..1999 {
            assert!(s.update(true));
        }
        assert_eq!(s.scale, 32768.0);
        assert!(s.update(true));
        assert_eq!(s.scale, 65536.0);
        let mut off = LossScaler::new(Precision::AmpBf16);
        assert!(!off.enabled && off.update(true) && !off.update(false));
        assert_eq!(off.scale, 1.0);
    }
}

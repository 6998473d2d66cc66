//! Compute precision: a tower's parameters cast to bf16/f16 for mixed-precision training (f32
//! master weights elsewhere) or pure low-precision runs.
//!
//! What stays in f32 whatever the towers compute in: BatchNorm (parameters, running statistics
//! and the normalisation's arithmetic: `batch_norm` widens its input), LayerNorm (its gain and
//! bias, as under PyTorch's autocast, and its statistics: `layer_norm` widens its input), the
//! features a tower returns, hence the logits and the loss. Inputs are cast to the tower's
//! dtype on entry.

use std::collections::HashSet;

use burn::module::{Module, ModuleMapper, ModuleVisitor, Param, ParamId};
use burn::prelude::*;
use burn::backend::{Backend, TensorMetadata};
use burn::backend::tensor::FloatTensor;
use burn::tensor::{DType, FloatDType};

use crate::Clip;

/// `module` with every float parameter cast to `dtype`, except those of BatchNorm and LayerNorm
/// layers (the parameters of [`cast_param_ids`]).
///
/// On an autodiff device the cast is recorded: gradients flow back to the original (f32)
/// parameters, which is how mixed precision keeps f32 master weights.
pub fn cast_params<M: Module>(module: M, dtype: FloatDType) -> M {
    struct Cast {
        dtype: FloatDType,
        ids: HashSet<ParamId>,
    }
    impl ModuleMapper for Cast {
        fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
            if !self.ids.contains(&param.id) {
                return param;
            }
            let dtype = self.dtype;
            param.map(|t| t.cast(dtype))
        }
    }
    let ids = cast_param_ids(&module);
    module.map(&mut Cast { dtype, ids })
}

/// The float parameters of `module` that a low-precision copy casts: all but the normalisation
/// layers' (BatchNorm, LayerNorm), which compute in f32 from f32 parameters.
pub fn cast_param_ids<M: Module>(module: &M) -> HashSet<ParamId> {
    struct Ids {
        /// Container types of the fields entered.
        containers: Vec<String>,
        ids: HashSet<ParamId>,
    }
    impl ModuleVisitor for Ids {
        fn enter_module(&mut self, _name: &str, container_type: &str) {
            self.containers.push(container_type.to_string());
        }
        fn exit_module(&mut self, _name: &str, _container_type: &str) {
            self.containers.pop();
        }
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
            if !self.containers.last().is_some_and(|c| c.ends_with("BatchNorm") || c.ends_with("LayerNorm")) {
                self.ids.insert(param.id);
            }
        }
    }
    let mut visitor = Ids { containers: Vec::new(), ids: HashSet::new() };
    module.visit(&mut visitor);
    visitor.ids
}

/// `model` computing in `dtype`: both towers' parameters cast with [`cast_params`]; the logit
/// scale stays f32.
pub fn cast_towers(model: &Clip, dtype: FloatDType) -> Clip {
    Clip {
        visual: cast_params(model.visual.clone(), dtype),
        text: cast_params(model.text.clone(), dtype),
        logit_scale: model.logit_scale.clone(),
        config: model.config.clone(),
    }
}

/// The parameters [`cast_towers`] casts: [`cast_param_ids`] of both towers.
pub fn cast_tower_ids(model: &Clip) -> HashSet<ParamId> {
    let mut ids = cast_param_ids(&model.visual);
    ids.extend(cast_param_ids(&model.text));
    ids
}

/// The float dtype of a tensor (f32 for anything that is not f16/bf16/f64).
pub fn float_dtype<const D: usize>(t: &Tensor<D>) -> FloatDType {
    match t.dtype() {
        burn::tensor::DType::F16 => FloatDType::F16,
        burn::tensor::DType::BF16 => FloatDType::BF16,
        burn::tensor::DType::F64 => FloatDType::F64,
        _ => FloatDType::F32,
    }
}

/// The dtype a normalisation's statistics are accumulated in: f32 for f16/bf16, None where the
/// input's own will do.
pub(crate) fn wide(dtype: DType) -> Option<FloatDType> {
    matches!(dtype, DType::F16 | DType::BF16).then_some(FloatDType::F32)
}

/// `x` in the accumulation dtype.
pub(crate) fn widened<B: Backend>(x: FloatTensor<B>) -> FloatTensor<B> {
    match wide(x.dtype()) {
        Some(wide) => B::float_cast(x, wide),
        None => x,
    }
}

/// `x` back in `dtype` (a no-op when it already is).
pub(crate) fn narrowed<B: Backend>(x: FloatTensor<B>, dtype: DType) -> FloatTensor<B> {
    if x.dtype() == dtype { x } else { B::float_cast(x, dtype.into()) }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ClipConfig;

    fn dtypes(model: &Clip) -> Vec<(String, burn::tensor::DType)> {
        struct Collect(Vec<String>, Vec<(String, burn::tensor::DType)>);
        impl burn::module::ModuleVisitor for Collect {
            fn enter_module(&mut self, name: &str, _: &str) {
                self.0.push(name.to_string());
            }
            fn exit_module(&mut self, _: &str, _: &str) {
                self.0.pop();
            }
            fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
                self.1.push((self.0.join("."), param.val().dtype()));
            }
        }
        let mut c = Collect(Vec::new(), Vec::new());
        model.visit(&mut c);
        c.1
    }

    #[test]
    fn low_precision_towers_keep_batch_norm_and_return_f32_features() {
        let device = Device::flex();
        for json in [
            r#"{"embed_dim": 16, "vision_cfg": {"image_size": 32, "layers": [1,1,1,1], "width": 8, "head_width": 8},
                "text_cfg": {"context_length": 8, "width": 16, "heads": 2, "layers": 1}}"#,
            r#"{"embed_dim": 16, "vision_cfg": {"image_size": 16, "layers": 1, "width": 32, "head_width": 16, "patch_size": 8},
                "text_cfg": {"context_length": 8, "width": 16, "heads": 2, "layers": 1}}"#,
        ] {
            let config = ClipConfig::from_open_clip_json(json).unwrap();
            let mut model = Clip::new(&config, &device);
            let pixels = Tensor::<4>::random([2, 3, config.vision_cfg.image_size, config.vision_cfg.image_size], burn::tensor::Distribution::Normal(0.0, 1.0), &device);
            let ids = Tensor::<2, Int>::from_ints([[49406, 320, 49407, 0, 0, 0, 0, 0], [49406, 321, 322, 49407, 0, 0, 0, 0]], &device);
            let reference = (model.encode_image(pixels.clone()), model.encode_text(ids.clone()));
            model = cast_towers(&model, FloatDType::BF16);
            for (path, dtype) in dtypes(&model) {
                let norm = path.contains("bn") || path.contains("ln");
                let expected = if norm || path == "logit_scale" { burn::tensor::DType::F32 } else { burn::tensor::DType::BF16 };
                assert_eq!(dtype, expected, "{path}");
            }
            for (low, f32_features) in [(model.encode_image(pixels.clone()), &reference.0), (model.encode_text(ids.clone()), &reference.1)] {
                assert_eq!(low.dtype(), burn::tensor::DType::F32);
                let (a, b) = (low.into_data().try_to_vec::<f32>().unwrap(), f32_features.clone().into_data().try_to_vec::<f32>().unwrap());
                let scale = b.iter().fold(0f32, |m, v| m.max(v.abs()));
                let diff = a.iter().zip(&b).fold(0f32, |m, (x, y)| m.max((x - y).abs()));
                // bf16 keeps 8 significant bits: ~1% of the features' scale.
                assert!(diff < 0.05 * scale, "bf16 features differ by {diff} (scale {scale})");
            }
        }
    }
}

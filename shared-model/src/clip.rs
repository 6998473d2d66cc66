//! `Clip`: the two towers and the learnable temperature.

use burn::module::Param;
use burn::prelude::*;

use crate::config::ClipConfig;
use crate::text::TextTower;
use crate::transformer::Activation;
use crate::vision::VisionTower;

/// ln(1/0.07), the paper's initial temperature.
pub const INIT_LOGIT_SCALE: f64 = 2.659_260_036_932_778;

#[derive(Module, Debug)]
pub struct Clip {
    pub visual: VisionTower,
    /// open_clip keeps these keys at the root; the importer maps them under `text.`.
    pub text: TextTower,
    /// The log of the temperature, shape `[1]` (a 0-d tensor in PyTorch checkpoints).
    pub logit_scale: Param<Tensor<1>>,
    #[module(skip)]
    pub config: ClipConfig,
}

impl Clip {
    /// A randomly initialised model (for training from scratch; import weights with `crate::import`).
    pub fn new(config: &ClipConfig, device: &Device) -> Self {
        let act = Activation::from_quick_gelu(config.quick_gelu);
        Self {
            visual: VisionTower::new(config, device),
            text: TextTower::new(&config.text_cfg, config.embed_dim, act, device),
            logit_scale: Param::from_tensor(Tensor::full([1], INIT_LOGIT_SCALE, device)),
            config: config.clone(),
        }
    }

    /// Projected image features, not normalised.
    ///
    /// # Shapes
    /// - pixels: `[B, 3, S, S]` (preprocessed, see `crate::preprocess`) -> `[B, E]`
    pub fn encode_image(&self, pixels: Tensor<4>) -> Tensor<2> {
        self.visual.forward(pixels)
    }

    /// Projected text features, not normalised.
    ///
    /// # Shapes
    /// - ids: `[B, T]`, `T <= context_length` (see `crate::tokenizer`; [`crate::text::input`]
    ///   leaves out the padding the features do not depend on) -> `[B, E]`
    pub fn encode_text(&self, ids: Tensor<2, Int>) -> Tensor<2> {
        self.text.forward(ids)
    }

    /// Whether [`crate::tokenizer::Tokenizer`]'s ids fit this model's token embedding (models
    /// with a smaller vocabulary need their own tokenizer).
    pub fn check_tokenizer(&self) -> Result<(), crate::Error> {
        let vocab = self.config.text_cfg.vocab_size;
        if vocab < crate::tokenizer::VOCAB_SIZE {
            return Err(crate::Error::Input(format!(
                "this model's text vocabulary has {vocab} tokens, fewer than the CLIP tokenizer's {}: it cannot embed text",
                crate::tokenizer::VOCAB_SIZE
            )));
        }
        Ok(())
    }

    /// `exp(logit_scale)`, shape `[1]`.
    pub fn temperature(&self) -> Tensor<1> {
        self.logit_scale.val().exp()
    }

    /// `logits_per_image = exp(logit_scale) * normalize(img) @ normalize(txt)^T`.
    ///
    /// # Shapes
    /// - image_features: `[N, E]`, text_features: `[M, E]` -> `[N, M]`
    pub fn logits(&self, image_features: Tensor<2>, text_features: Tensor<2>) -> Tensor<2> {
        let sims = normalize(image_features).matmul(normalize(text_features).transpose());
        sims * self.temperature().unsqueeze()
    }
}

/// PyTorch `F.normalize`'s eps: rows are divided by `max(|x|, eps)`.
const NORMALIZE_EPS: f64 = 1e-12;

/// L2-normalises each row (PyTorch `F.normalize(x, dim=-1)`, eps 1e-12).
///
/// # Shapes
/// - x: `[N, E]` -> `[N, E]`
pub fn normalize(x: Tensor<2>) -> Tensor<2> {
    let norm = row_norms(x.clone());
    x / norm
}

/// The divisors of [`normalize`]: `max(|x_i|, eps)` per row.
///
/// # Shapes
/// - x: `[N, E]` -> `[N, 1]`
pub fn row_norms(x: Tensor<2>) -> Tensor<2> {
    x.square().sum_dim(1).sqrt().clamp_min(NORMALIZE_EPS)
}

/// The backward pass of [`normalize`]: the gradient with respect to `x` from the gradient `grad`
/// of `y = x / norms` (`norms` from [`row_norms`]): `(grad - y * <grad, y>) / norm` per row, the
/// projection dropped for rows whose norm was clamped to eps (there the divisor is a constant).
///
/// # Shapes
/// - y, grad: `[N, E]`, norms: `[N, 1]` -> `[N, E]`
pub fn normalize_backward(y: Tensor<2>, norms: Tensor<2>, grad: Tensor<2>) -> Tensor<2> {
    let unclamped = norms.clone().greater_elem(NORMALIZE_EPS).float();
    let along = (grad.clone() * y.clone()).sum_dim(1) * unclamped;
    (grad - y * along) / norms
}

#[cfg(test)]
mod tests {
    use super::*;

    /// [`normalize_backward`] against autodiff through [`normalize`], with a row below eps
    /// (clamped: its divisor is a constant there).
    #[test]
    fn normalize_backward_matches_autodiff() {
        let device = Device::flex().autodiff();
        let x = Tensor::<2>::from_floats([[3.0, -4.0, 1.0], [1e-14, 0.0, 2e-14], [0.5, 0.25, -2.0]], &device).require_grad();
        let grad = Tensor::<2>::from_floats([[0.3, 0.1, -0.7], [1.0, -2.0, 0.5], [0.0, 2.0, 1.0]], &device);
        let grads = (normalize(x.clone()) * grad.clone()).sum().backward();
        let theirs = x.grad(&grads).unwrap().into_data().try_to_vec::<f32>().unwrap();
        let x = x.inner();
        let norms = row_norms(x.clone());
        let ours = normalize_backward(x / norms.clone(), norms, grad.inner()).into_data().try_to_vec::<f32>().unwrap();
        for (row, (ours, theirs)) in ours.chunks(3).zip(theirs.chunks(3)).enumerate() {
            let scale = theirs.iter().fold(1f32, |m, v| m.max(v.abs()));
            for (a, b) in ours.iter().zip(theirs) {
                assert!((a - b).abs() <= 1e-6 * scale, "row {row}: {ours:?} against autodiff's {theirs:?}");
            }
        }
    }
}

//! The Vision Transformer image tower (open_clip `VisionTransformer`): patch conv -> class token
//! -> positional embedding -> `ln_pre` -> blocks -> `ln_post` on token 0 -> `@ proj`.

use burn::module::Param;
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::LayerNorm;
use burn::prelude::*;

use burn::tensor::FloatDType;

use crate::precision::float_dtype;
use crate::transformer::{layer_norm, param, Activation, Transformer};

#[derive(Module, Debug)]
pub struct VisionTransformer {
    pub conv1: Conv2d,
    pub class_embedding: Param<Tensor<1>>,
    pub positional_embedding: Param<Tensor<2>>,
    pub ln_pre: LayerNorm,
    pub transformer: Transformer,
    pub ln_post: LayerNorm,
    pub proj: Param<Tensor<2>>,
}

impl VisionTransformer {
    #[allow(clippy::too_many_arguments)]
    pub fn new(image_size: usize, patch: usize, width: usize, layers: usize, heads: usize, mlp_ratio: f64,
               embed_dim: usize, act: Activation, device: &Device) -> Self {
        let grid = image_size / patch;
        let scale = (width as f64).powf(-0.5);
        Self {
            conv1: Conv2dConfig::new([3, width], [patch, patch]).with_stride([patch, patch]).with_bias(false).init(device),
            class_embedding: param([width], scale, device),
            positional_embedding: param([grid * grid + 1, width], scale, device),
            ln_pre: layer_norm(width, device),
            transformer: Transformer::new(width, layers, heads, mlp_ratio, act, device),
            ln_post: layer_norm(width, device),
            proj: param([width, embed_dim], scale, device),
        }
    }

    /// Patch and position embedding, through `ln_pre`.
    ///
    /// # Shapes
    /// - pixels: `[B, 3, S, S]` -> `[B, 1 + (S/P)^2, W]`
    pub fn embed(&self, pixels: Tensor<4>) -> Tensor<3> {
        let pixels = pixels.cast(float_dtype(&self.conv1.weight.val()));
        let x = self.conv1.forward(pixels); // (B, W, g, g)
        let [b, w, gh, gw] = x.dims();
        let x = x.reshape([b, w, gh * gw]).swap_dims(1, 2); // (B, g*g, W)
        let cls = self.class_embedding.val().reshape([1, 1, w]).expand([b, 1, w]);
        let x = Tensor::cat(vec![cls, x], 1) + self.positional_embedding.val().unsqueeze();
        self.ln_pre.forward(x)
    }

    /// `ln_post` of the class token.
    ///
    /// # Shapes
    /// - tokens: `[B, T, W]` -> `[B, W]`
    pub fn pool(&self, tokens: Tensor<3>) -> Tensor<2> {
        let [b, _, w] = tokens.dims();
        self.ln_post.forward(tokens.narrow(1, 0, 1).reshape([b, w]))
    }

    /// The features of the blocks' output tokens: pooled, projected, in f32.
    ///
    /// # Shapes
    /// - tokens: `[B, T, W]` -> `[B, E]`
    pub fn head(&self, tokens: Tensor<3>) -> Tensor<2> {
        self.pool(tokens).matmul(self.proj.val()).cast(FloatDType::F32)
    }

    /// # Shapes
    /// - pixels: `[B, 3, S, S]` -> `[B, E]`
    pub fn forward(&self, pixels: Tensor<4>) -> Tensor<2> {
        self.head(self.transformer.forward(self.embed(pixels), false))
    }
}

//! The Vision Transformer image tower (open_clip `VisionTransformer`): patch conv -> class token
//! -> positional embedding -> `ln_pre` -> blocks -> `ln_post` on token 0 -> `@ proj`.

use burn::module::Param;
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::LayerNorm;
use burn::prelude::*;

use burn::tensor::FloatDType;

use crate::precision::float_dtype;
use crate::layer_norm;
use crate::transformer::{param, Activation, Transformer};

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
            ln_pre: layer_norm::init(width, device),
            transformer: Transformer::new(width, layers, heads, mlp_ratio, act, device),
            ln_post: layer_norm::init(width, device),
            proj: param([width, embed_dim], scale, device),
        }
    }

    /// Patch and position embedding, through `ln_pre`.
    ///
    /// # Shapes
    /// - pixels: `[B, 3, S, S]` -> `[B, 1 + (S/P)^2, W]`
    pub fn embed(&self, pixels: Tensor<4>) -> Tensor<3> {
        let x = self.patches(pixels); // (B, g*g, W)
        let [b, _, w] = x.dims();
        let cls = self.class_embedding.val().reshape([1, 1, w]).expand([b, 1, w]);
        let x = Tensor::cat(vec![cls, x], 1) + self.positional_embedding.val().unsqueeze();
        layer_norm::forward(&self.ln_pre, x)
    }

    /// `conv1` (kernel = stride = P, no padding, no bias) as one matmul of the flattened
    /// patches with the flattened kernel: the same sums, on the GEMM path of every backend. As a
    /// convolution, CUDA without autotune ran a direct-convolution kernel, also for its weight
    /// gradient. Rows and columns past the last whole patch are ignored, as by the convolution.
    ///
    /// # Shapes
    /// - pixels: `[B, 3, S, S]` -> `[B, (S/P)^2, W]`
    fn patches(&self, pixels: Tensor<4>) -> Tensor<3> {
        let weight = self.conv1.weight.val(); // (W, C, P, P)
        let [w, c, p, _] = weight.dims();
        let [b, _, h, wd] = pixels.dims();
        let (gh, gw) = (h / p, wd / p);
        let mut pixels = pixels.cast(float_dtype(&weight));
        if (gh * p, gw * p) != (h, wd) {
            pixels = pixels.slice([0..b, 0..c, 0..gh * p, 0..gw * p]);
        }
        let patches = pixels.reshape([b, c, gh, p, gw, p]).permute([0, 2, 4, 1, 3, 5]).reshape([b, gh * gw, c * p * p]);
        patches.matmul(weight.reshape([w, c * p * p]).transpose().unsqueeze())
    }

    /// `ln_post` of the class token.
    ///
    /// # Shapes
    /// - tokens: `[B, T, W]` -> `[B, W]`
    pub fn pool(&self, tokens: Tensor<3>) -> Tensor<2> {
        let [b, _, w] = tokens.dims();
        layer_norm::forward(&self.ln_post, tokens.narrow(1, 0, 1).reshape([b, w]))
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

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::Distribution;

    /// The patch matmul is the strided convolution, also when the picture is not a whole
    /// number of patches.
    #[test]
    fn patches_equal_the_patch_convolution() {
        let device = Device::flex();
        let vit = VisionTransformer::new(32, 8, 16, 1, 2, 4.0, 8, Activation::Gelu, &device);
        for size in [32, 35] {
            let pixels = Tensor::<4>::random([2, 3, size, size], Distribution::Normal(0.0, 1.0), &device);
            let conv = vit.conv1.forward(pixels.clone()); // (B, W, g, g)
            let [b, w, gh, gw] = conv.dims();
            let want = conv.reshape([b, w, gh * gw]).swap_dims(1, 2).into_data().try_to_vec::<f32>().unwrap();
            let got = vit.patches(pixels);
            assert_eq!(got.dims(), [2, 16, 16]);
            let got = got.into_data().try_to_vec::<f32>().unwrap();
            let worst = want.iter().zip(&got).map(|(a, b)| (a - b).abs()).fold(0f32, f32::max);
            assert!(worst < 1e-5, "size {size}: max difference {worst}");
        }
    }
}

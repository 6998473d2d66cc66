//! The text tower (open_clip keeps it at the root of `CLIP`): token + position embedding ->
//! causal blocks -> `ln_final` -> the row of the end token (`argmax(ids)`) -> `@ text_projection`.

use burn::module::Param;
use burn::nn::{Embedding, EmbeddingConfig, LayerNorm};
use burn::prelude::*;
use burn::tensor::FloatDType;

use crate::config::TextConfig;
use crate::layer_norm;
use crate::transformer::{param, Activation, Transformer};

#[derive(Module, Debug)]
pub struct TextTower {
    pub token_embedding: Embedding,
    pub positional_embedding: Param<Tensor<2>>,
    pub transformer: Transformer,
    pub ln_final: LayerNorm,
    pub text_projection: Param<Tensor<2>>,
}

impl TextTower {
    pub fn new(cfg: &TextConfig, embed_dim: usize, act: Activation, device: &Device) -> Self {
        let w = cfg.width;
        Self {
            token_embedding: EmbeddingConfig::new(cfg.vocab_size, w)
                .with_initializer(burn::nn::Initializer::Normal { mean: 0.0, std: 0.02 })
                .init(device),
            positional_embedding: param([cfg.context_length, w], 0.01, device),
            transformer: Transformer::new(w, cfg.layers, cfg.heads, cfg.mlp_ratio, act, device),
            ln_final: layer_norm::init(w, device),
            text_projection: param([w, embed_dim], (w as f64).powf(-0.5), device),
        }
    }

    /// Token and position embedding.
    ///
    /// # Shapes
    /// - ids: `[B, T]` -> `[B, T, W]`
    pub fn embed(&self, ids: Tensor<2, Int>) -> Tensor<3> {
        let t = ids.dims()[1];
        self.token_embedding.forward(ids) + self.positional_embedding.val().narrow(0, 0, t).unsqueeze()
    }

    /// The end token's row of `tokens` (the highest id of each sequence), on the device.
    ///
    /// # Shapes
    /// - tokens: `[B, T, W]`, ids: `[B, T]` -> `[B, W]`
    pub fn pool(tokens: Tensor<3>, ids: Tensor<2, Int>) -> Tensor<2> {
        let [b, _, w] = tokens.dims();
        let eot = ids.argmax(1).reshape([b, 1, 1]).expand([b, 1, w]);
        tokens.gather(1, eot).reshape([b, w])
    }

    /// The features of the blocks' output tokens: `ln_final`, the end token's row, projected,
    /// in f32.
    ///
    /// # Shapes
    /// - tokens: `[B, T, W]`, ids: `[B, T]` -> `[B, E]`
    pub fn head(&self, tokens: Tensor<3>, ids: Tensor<2, Int>) -> Tensor<2> {
        Self::pool(layer_norm::forward(&self.ln_final, tokens), ids).matmul(self.text_projection.val()).cast(FloatDType::F32)
    }

    /// # Shapes
    /// - ids: `[B, T]` -> `[B, E]`
    pub fn forward(&self, ids: Tensor<2, Int>) -> Tensor<2> {
        self.head(self.transformer.forward(self.embed(ids.clone()), true), ids)
    }
}

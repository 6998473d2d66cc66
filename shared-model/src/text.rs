//! The text tower (open_clip keeps it at the root of `CLIP`): token + position embedding ->
//! causal blocks -> `ln_final` -> the row of the end token (`argmax(ids)`) -> `@ text_projection`.

use burn::module::Param;
use burn::nn::{Embedding, EmbeddingConfig, LayerNorm};
use burn::prelude::*;
use burn::tensor::FloatDType;

use crate::config::TextConfig;
use crate::layer_norm;
use crate::tokenizer::TokenIds;
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

/// How many leading positions of `tokens` the features depend on: through the last position of
/// any row that holds its row's highest id (the end token, whose row [`TextTower::pool`] reads).
/// The blocks are causal (a position sees itself and the ones before it) and every other step
/// works on each position alone, so the padding after every row's end token cannot change the
/// features: "a photo of a cat." needs 8 of the 77 positions.
pub fn needed_positions(tokens: &TokenIds) -> usize {
    (0..tokens.batch)
        .map(|i| {
            let row = tokens.row(i);
            let max = row.iter().copied().max().unwrap_or(0);
            // The last of equal highest ids: right whichever of them argmax picks.
            row.iter().rposition(|&id| id == max).map_or(0, |p| p + 1)
        })
        .max()
        .unwrap_or(0)
        .max(1)
}

/// The tower's input for `tokens`: its first [`needed_positions`] columns, which give the same
/// features as the whole rows for a fraction of the work.
///
/// # Shapes
/// -> `[tokens.batch, needed_positions(tokens)]`
pub fn input(tokens: &TokenIds, device: &Device) -> Tensor<2, Int> {
    tokens.columns(needed_positions(tokens)).to_tensor(device)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tokens(rows: &[&[u32]], context_length: usize) -> TokenIds {
        let ids = rows.iter().flat_map(|r| r.iter().copied().chain(std::iter::repeat(0)).take(context_length)).collect();
        TokenIds { ids, batch: rows.len(), context_length }
    }

    #[test]
    fn needed_positions_reach_the_last_end_token() {
        use crate::tokenizer::{END_OF_TEXT as E, START_OF_TEXT as S};
        assert_eq!(needed_positions(&tokens(&[&[S, 320, E]], 77)), 3);
        assert_eq!(needed_positions(&tokens(&[&[S, 320, E], &[S, 1, 2, 3, 4, E], &[S, E]], 77)), 6);
        // A text cut to the context length ends with its end token at the last position.
        let full: Vec<u32> = std::iter::once(S).chain(1..76).chain(std::iter::once(E)).collect();
        assert_eq!(needed_positions(&tokens(&[&[S, E], &full], 77)), 77);
        // Ids without an end token (`encodeIds` takes any): the last of a row's highest ids.
        assert_eq!(needed_positions(&tokens(&[&[5, 9, 2, 9, 1]], 8)), 4);
        // All padding: every position holds the highest id (0), so nothing is cut.
        assert_eq!(needed_positions(&tokens(&[&[]], 8)), 8);
        assert_eq!(needed_positions(&tokens(&[&[9]], 8)), 1);
    }

    /// The cut input gives the features of the whole rows (a random model on the CPU).
    #[test]
    fn the_cut_input_gives_the_whole_rows_features() {
        use crate::tokenizer::{END_OF_TEXT as E, START_OF_TEXT as S};
        let device = Device::flex();
        let cfg = TextConfig { context_length: 20, vocab_size: crate::tokenizer::VOCAB_SIZE, width: 32, heads: 4, layers: 2, mlp_ratio: 4.0 };
        let tower = TextTower::new(&cfg, 16, Activation::Gelu, &device);
        let ids = tokens(&[&[S, 320, 1125, E], &[S, 7, 8, 9, 10, 11, 12, E]], 20);
        assert_eq!(needed_positions(&ids), 8);
        let cut = input(&ids, &device);
        assert_eq!(cut.dims(), [2, 8]);
        let whole = tower.forward(ids.to_tensor(&device)).into_data().try_to_vec::<f32>().unwrap();
        let cut = tower.forward(cut).into_data().try_to_vec::<f32>().unwrap();
        let diff = whole.iter().zip(&cut).map(|(a, b)| (a - b).abs()).fold(0f32, f32::max);
        assert!(diff <= 1e-6, "features of the cut input differ by {diff:e}");
    }
}

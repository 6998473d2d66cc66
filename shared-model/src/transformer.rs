//! The residual attention block both towers share (open_clip `transformer.py`):
//! `x + attn(ln_1(x))`, then `x + mlp(ln_2(x))`. Field names are open_clip's checkpoint keys.
//!
//! Inside a block the tokens are rows `[B*T, D]`, and every reshape (of a parameter or of the
//! rows) comes before the chain of element-wise ops that uses it: burn's fusion ends a fused
//! kernel at a reshape of a tensor it has not read yet, so burn's `Linear` (its bias reshaped after
//! the matmul, its output reshaped back to 3-D) left each bias addition, activation and residual
//! addition a kernel of its own. In rows, a matmul's bias, the GELU after `c_fc` and the residual
//! after `c_proj` fuse with it.

use burn::module::Param;
use burn::nn::{Initializer, LayerNorm, Linear, LinearConfig};
use burn::prelude::*;
use burn::tensor::activation::{gelu, sigmoid};

use crate::{attention, layer_norm};

/// The MLP activation, chosen by the config's `quick_gelu`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Activation {
    /// `x * sigmoid(1.702 x)`, what the OpenAI weights were trained with.
    QuickGelu,
    /// Exact (erf) GELU.
    Gelu,
}

impl Activation {
    pub fn from_quick_gelu(quick_gelu: bool) -> Self {
        if quick_gelu { Self::QuickGelu } else { Self::Gelu }
    }

    pub fn forward<const D: usize>(self, x: Tensor<D>) -> Tensor<D> {
        match self {
            Self::QuickGelu => x.clone() * sigmoid(x * 1.702),
            Self::Gelu => gelu(x),
        }
    }
}

/// `nn.MultiheadAttention`: q;k;v stacked in one projection, open_clip's `in_proj_weight`
/// `[3D, D]` and `in_proj_bias` held as a burn `Linear` (`[D, 3D]`, transposed on import like every
/// linear weight), so that `x · w` reads both operands row by row (the CPU backend's fast layout).
#[derive(Module, Debug)]
pub struct Attention {
    pub in_proj: Linear,
    pub out_proj: Linear,
    #[module(skip)]
    pub heads: usize,
}

impl Attention {
    pub fn new(width: usize, heads: usize, device: &Device) -> Self {
        let std = (width as f64).powf(-0.5);
        let mut in_proj = LinearConfig::new(width, 3 * width).with_initializer(Initializer::Normal { mean: 0.0, std }).init(device);
        in_proj.bias = Some(Initializer::Zeros.init([3 * width], device));
        Self {
            in_proj,
            out_proj: LinearConfig::new(width, width).init(device),
            heads,
        }
    }

    /// # Shapes
    /// - x: `[B*T, D]` rows of `batch` sequences -> `[B*T, D]`; causal: `[1, 1, T, T]` ([`attention::causal_mask`])
    pub fn forward(&self, x: Tensor<2>, batch: usize, causal: Option<&Tensor<4, Bool>>) -> Tensor<2> {
        let qkv = forward_linear(&self.in_proj, x);
        let [rows, width] = qkv.dims();
        let heads = attention::self_attention(qkv.reshape([batch, rows / batch, width]), self.heads, causal);
        let out = heads.reshape([rows, width / 3]);
        forward_linear(&self.out_proj, out)
    }
}

/// `c_fc` (width -> hidden) -> activation -> `c_proj`.
#[derive(Module, Debug)]
pub struct Mlp {
    pub c_fc: Linear,
    pub c_proj: Linear,
    #[module(skip)]
    pub act: Activation,
}

impl Mlp {
    /// # Shapes
    /// - x: `[N, D]` -> `[N, D]`
    pub fn forward(&self, x: Tensor<2>) -> Tensor<2> {
        forward_linear(&self.c_proj, self.act.forward(forward_linear(&self.c_fc, x)))
    }
}

/// `x W + b`, the parameters reshaped before the matmul (module docs).
///
/// # Shapes
/// - x: `[N, D_in]`, weight: `[D_in, D_out]` (burn's layout), bias: `[D_out]` -> `[N, D_out]`
pub fn linear(x: Tensor<2>, weight: Tensor<2>, bias: Option<Tensor<1>>) -> Tensor<2> {
    match bias {
        Some(bias) => {
            let bias = bias.unsqueeze::<2>();
            x.matmul(weight) + bias
        }
        None => x.matmul(weight),
    }
}

/// A burn `Linear` applied with [`linear`].
fn forward_linear(layer: &Linear, x: Tensor<2>) -> Tensor<2> {
    linear(x, layer.weight.val(), layer.bias.as_ref().map(|b| b.val()))
}

/// open_clip's `ResidualAttentionBlock`.
#[derive(Module, Debug)]
pub struct ResidualAttentionBlock {
    pub ln_1: LayerNorm,
    pub attn: Attention,
    pub ln_2: LayerNorm,
    pub mlp: Mlp,
}

impl ResidualAttentionBlock {
    /// # Shapes
    /// - x: `[B, T, D]` -> `[B, T, D]`
    pub fn forward(&self, x: Tensor<3>, causal: bool) -> Tensor<3> {
        let mask = causal.then(|| attention::causal_mask(x.dims()[1], &x.device()));
        self.forward_masked(x, mask.as_ref())
    }

    /// [`ResidualAttentionBlock::forward`] with the causal mask already built (or none).
    pub fn forward_masked(&self, x: Tensor<3>, causal: Option<&Tensor<4, Bool>>) -> Tensor<3> {
        let [b, t, d] = x.dims();
        let x = x.reshape([b * t, d]);
        let x = x.clone() + self.attn.forward(layer_norm::forward(&self.ln_1, x), b, causal);
        let x = x.clone() + self.mlp.forward(layer_norm::forward(&self.ln_2, x));
        x.reshape([b, t, d])
    }
}

/// A stack of residual attention blocks (open_clip `Transformer`, batch first).
#[derive(Module, Debug)]
pub struct Transformer {
    pub resblocks: Vec<ResidualAttentionBlock>,
}

impl Transformer {
    pub fn new(width: usize, layers: usize, heads: usize, mlp_ratio: f64, act: Activation, device: &Device) -> Self {
        let hidden = (width as f64 * mlp_ratio) as usize;
        let resblocks = (0..layers)
            .map(|_| ResidualAttentionBlock {
                ln_1: layer_norm::init(width, device),
                attn: Attention::new(width, heads, device),
                ln_2: layer_norm::init(width, device),
                mlp: Mlp {
                    c_fc: LinearConfig::new(width, hidden).init(device),
                    c_proj: LinearConfig::new(hidden, width).init(device),
                    act,
                },
            })
            .collect();
        Self { resblocks }
    }

    /// # Shapes
    /// - x: `[B, T, D]` -> `[B, T, D]`
    pub fn forward(&self, x: Tensor<3>, causal: bool) -> Tensor<3> {
        let mask = causal.then(|| attention::causal_mask(x.dims()[1], &x.device()));
        self.resblocks.iter().fold(x, |x, block| block.forward_masked(x, mask.as_ref()))
    }
}

/// A learnable raw tensor (`proj`, `class_embedding`, ...), normal-initialised like open_clip.
/// Lazily, as burn's own layers: loading weights replaces it without drawing it first.
pub fn param<const D: usize>(shape: [usize; D], std: f64, device: &Device) -> Param<Tensor<D>> {
    Initializer::Normal { mean: 0.0, std }.init(shape, device)
}

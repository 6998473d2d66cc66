//! The residual attention block both towers share (open_clip `transformer.py`):
//! `x + attn(ln_1(x))`, then `x + mlp(ln_2(x))`. Field names are open_clip's checkpoint keys.

use burn::module::Param;
use burn::nn::{LayerNorm, Linear, LinearConfig};
use burn::prelude::*;
use burn::tensor::activation::{gelu, sigmoid};
use burn::tensor::Distribution;

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

/// `nn.MultiheadAttention` as open_clip stores it: q;k;v stacked in `in_proj_weight` `[3D, D]`.
#[derive(Module, Debug)]
pub struct Attention {
    pub in_proj_weight: Param<Tensor<2>>,
    pub in_proj_bias: Param<Tensor<1>>,
    pub out_proj: Linear,
    #[module(skip)]
    pub heads: usize,
}

impl Attention {
    pub fn new(width: usize, heads: usize, device: &Device) -> Self {
        let std = (width as f64).powf(-0.5);
        Self {
            in_proj_weight: Param::from_tensor(Tensor::random([3 * width, width], Distribution::Normal(0.0, std), device)),
            in_proj_bias: Param::from_tensor(Tensor::zeros([3 * width], device)),
            out_proj: LinearConfig::new(width, width).init(device),
            heads,
        }
    }

    /// # Shapes
    /// - x: `[B, T, D]` -> `[B, T, D]`
    pub fn forward(&self, x: Tensor<3>, causal: bool) -> Tensor<3> {
        let qkv = x.matmul(self.in_proj_weight.val().transpose().unsqueeze()) + self.in_proj_bias.val().unsqueeze();
        self.out_proj.forward(attention::self_attention(qkv, self.heads, causal))
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
    pub fn forward(&self, x: Tensor<3>) -> Tensor<3> {
        self.c_proj.forward(self.act.forward(self.c_fc.forward(x)))
    }
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
    pub fn forward(&self, x: Tensor<3>, causal: bool) -> Tensor<3> {
        let x = x.clone() + self.attn.forward(layer_norm::forward(&self.ln_1, x), causal);
        x.clone() + self.mlp.forward(layer_norm::forward(&self.ln_2, x))
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
        self.resblocks.iter().fold(x, |x, block| block.forward(x, causal))
    }
}

/// A learnable raw tensor (`proj`, `class_embedding`, ...), normal-initialised like open_clip.
pub fn param<const D: usize>(shape: [usize; D], std: f64, device: &Device) -> Param<Tensor<D>> {
    Param::from_tensor(Tensor::random(shape, Distribution::Normal(0.0, std), device))
}

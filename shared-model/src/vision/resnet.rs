//! The ModifiedResNet image tower (open_clip `modified_resnet.py`): a 3-conv stem with an average
//! pool, anti-aliased bottlenecks (avgpool before strided convolutions), and attention pooling.

use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::{BatchNorm, BatchNormConfig, Linear, LinearConfig, PaddingConfig2d};
use burn::module::Param;
use burn::prelude::*;
use burn::tensor::activation::relu;
use burn::tensor::FloatDType;
use burn::tensor::module::avg_pool2d;
use burn::tensor::ops::AvgPoolOptions;

use crate::batch_norm;
use crate::precision::float_dtype;
use crate::attention::multi_head_attention;
use crate::transformer::param;

fn conv(c_in: usize, c_out: usize, kernel: usize, stride: usize, device: &Device) -> Conv2d {
    let pad = kernel / 2;
    Conv2dConfig::new([c_in, c_out], [kernel, kernel])
        .with_stride([stride, stride])
        .with_padding(PaddingConfig2d::Explicit(pad, pad, pad, pad))
        .with_bias(false)
        .init(device)
}

fn bn(channels: usize, device: &Device) -> BatchNorm {
    BatchNormConfig::new(channels).init(device)
}

fn avg_pool(x: Tensor<4>, k: usize) -> Tensor<4> {
    if k == 1 { x } else { avg_pool2d(x, AvgPoolOptions::new([k, k])) }
}

/// `AvgPool2d(stride)` -> 1x1 conv -> BatchNorm; open_clip names these `downsample.0` / `downsample.1`.
#[derive(Module, Debug)]
pub struct Downsample {
    pub conv: Conv2d,
    pub bn: BatchNorm,
    #[module(skip)]
    pub stride: usize,
}

#[derive(Module, Debug)]
pub struct Bottleneck {
    pub conv1: Conv2d,
    pub bn1: BatchNorm,
    pub conv2: Conv2d,
    pub bn2: BatchNorm,
    pub conv3: Conv2d,
    pub bn3: BatchNorm,
    pub downsample: Option<Downsample>,
    #[module(skip)]
    pub stride: usize,
}

impl Bottleneck {
    pub const EXPANSION: usize = 4;

    pub fn new(inplanes: usize, planes: usize, stride: usize, device: &Device) -> Self {
        let out = planes * Self::EXPANSION;
        let downsample = (stride > 1 || inplanes != out).then(|| Downsample {
            conv: conv(inplanes, out, 1, 1, device),
            bn: bn(out, device),
            stride,
        });
        Self {
            conv1: conv(inplanes, planes, 1, 1, device),
            bn1: bn(planes, device),
            conv2: conv(planes, planes, 3, 1, device),
            bn2: bn(planes, device),
            conv3: conv(planes, out, 1, 1, device),
            bn3: bn(out, device),
            downsample,
            stride,
        }
    }

    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let out = relu(batch_norm::forward(&self.bn1, self.conv1.forward(x.clone())));
        let out = relu(batch_norm::forward(&self.bn2, self.conv2.forward(out)));
        let out = batch_norm::forward(&self.bn3, self.conv3.forward(avg_pool(out, self.stride)));
        let identity = match &self.downsample {
            Some(d) => batch_norm::forward(&d.bn, d.conv.forward(avg_pool(x, d.stride))),
            None => x,
        };
        relu(out + identity)
    }
}

/// Attention pooling: the mean token is prepended and queries all spatial tokens.
#[derive(Module, Debug)]
pub struct AttentionPool2d {
    pub positional_embedding: Param<Tensor<2>>,
    pub q_proj: Linear,
    pub k_proj: Linear,
    pub v_proj: Linear,
    pub c_proj: Linear,
    #[module(skip)]
    pub heads: usize,
}

impl AttentionPool2d {
    pub fn new(spatial: usize, width: usize, heads: usize, output_dim: usize, device: &Device) -> Self {
        Self {
            positional_embedding: param([spatial * spatial + 1, width], (width as f64).powf(-0.5), device),
            q_proj: LinearConfig::new(width, width).init(device),
            k_proj: LinearConfig::new(width, width).init(device),
            v_proj: LinearConfig::new(width, width).init(device),
            c_proj: LinearConfig::new(width, output_dim).init(device),
            heads,
        }
    }

    /// # Shapes
    /// - x: `[B, C, H, W]` -> `[B, E]`
    pub fn forward(&self, x: Tensor<4>) -> Tensor<2> {
        let [b, c, h, w] = x.dims();
        let x = x.reshape([b, c, h * w]).swap_dims(1, 2); // (B, HW, C)
        let mean = x.clone().mean_dim(1); // (B, 1, C)
        let x = Tensor::cat(vec![mean, x], 1) + self.positional_embedding.val().unsqueeze();
        let q = self.q_proj.forward(x.clone().narrow(1, 0, 1));
        let y = multi_head_attention(q, self.k_proj.forward(x.clone()), self.v_proj.forward(x), self.heads);
        self.c_proj.forward(y).reshape([b, self.c_proj.weight.dims()[1]])
    }
}

#[derive(Module, Debug)]
pub struct ModifiedResNet {
    pub conv1: Conv2d,
    pub bn1: BatchNorm,
    pub conv2: Conv2d,
    pub bn2: BatchNorm,
    pub conv3: Conv2d,
    pub bn3: BatchNorm,
    pub layer1: Vec<Bottleneck>,
    pub layer2: Vec<Bottleneck>,
    pub layer3: Vec<Bottleneck>,
    pub layer4: Vec<Bottleneck>,
    pub attnpool: AttentionPool2d,
}

impl ModifiedResNet {
    pub fn new(layers: [usize; 4], width: usize, heads: usize, image_size: usize, output_dim: usize, device: &Device) -> Self {
        let mut inplanes = width;
        let mut stage = |planes: usize, blocks: usize, stride: usize| -> Vec<Bottleneck> {
            let mut out = vec![Bottleneck::new(inplanes, planes, stride, device)];
            inplanes = planes * Bottleneck::EXPANSION;
            out.extend((1..blocks).map(|_| Bottleneck::new(inplanes, planes, 1, device)));
            out
        };
        let (layer1, layer2) = (stage(width, layers[0], 1), stage(width * 2, layers[1], 2));
        let (layer3, layer4) = (stage(width * 4, layers[2], 2), stage(width * 8, layers[3], 2));
        Self {
            conv1: conv(3, width / 2, 3, 2, device),
            bn1: bn(width / 2, device),
            conv2: conv(width / 2, width / 2, 3, 1, device),
            bn2: bn(width / 2, device),
            conv3: conv(width / 2, width, 3, 1, device),
            bn3: bn(width, device),
            layer1,
            layer2,
            layer3,
            layer4,
            attnpool: AttentionPool2d::new(image_size / 32, width * 32, heads, output_dim, device),
        }
    }

    /// # Shapes
    /// - pixels: `[B, 3, S, S]` -> `[B, width, S/4, S/4]`
    pub fn stem(&self, pixels: Tensor<4>) -> Tensor<4> {
        let pixels = pixels.cast(float_dtype(&self.conv1.weight.val()));
        let x = relu(batch_norm::forward(&self.bn1, self.conv1.forward(pixels)));
        let x = relu(batch_norm::forward(&self.bn2, self.conv2.forward(x)));
        let x = relu(batch_norm::forward(&self.bn3, self.conv3.forward(x)));
        avg_pool(x, 2)
    }

    /// Runs stage `i` (0..4, open_clip's `layer{i+1}`).
    pub fn stage(&self, i: usize, x: Tensor<4>) -> Tensor<4> {
        let layer = [&self.layer1, &self.layer2, &self.layer3, &self.layer4][i];
        layer.iter().fold(x, |x, block| block.forward(x))
    }

    /// The bottlenecks of `layer1` to `layer4`, in order.
    pub fn blocks(&self) -> impl Iterator<Item = &Bottleneck> {
        self.layer1.iter().chain(&self.layer2).chain(&self.layer3).chain(&self.layer4)
    }

    /// Attention pooling of the last feature map, in f32.
    ///
    /// # Shapes
    /// - x: `[B, 32 * width, S/32, S/32]` -> `[B, E]`
    pub fn head(&self, x: Tensor<4>) -> Tensor<2> {
        self.attnpool.forward(x).cast(FloatDType::F32)
    }

    /// # Shapes
    /// - pixels: `[B, 3, S, S]` -> `[B, E]`
    pub fn forward(&self, pixels: Tensor<4>) -> Tensor<2> {
        self.head(self.blocks().fold(self.stem(pixels), |x, block| block.forward(x)))
    }
}

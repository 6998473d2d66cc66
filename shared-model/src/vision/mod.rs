//! The image towers; the config's `layers` picks one.

pub mod resnet;
pub mod vit;

use burn::prelude::*;

pub use resnet::ModifiedResNet;
pub use vit::VisionTransformer;

use crate::config::{ClipConfig, VisionLayers};
use crate::transformer::Activation;

#[derive(Module, Debug)]
pub enum VisionTower {
    Vit(VisionTransformer),
    ResNet(ModifiedResNet),
}

impl VisionTower {
    pub fn new(config: &ClipConfig, device: &Device) -> Self {
        let v = &config.vision_cfg;
        let heads = config.vision_heads();
        match v.layers {
            VisionLayers::Vit(layers) => Self::Vit(VisionTransformer::new(
                v.image_size,
                v.patch_size.unwrap_or(16),
                v.width,
                layers,
                heads,
                v.mlp_ratio,
                config.embed_dim,
                Activation::from_quick_gelu(config.quick_gelu),
                device,
            )),
            VisionLayers::ResNet(layers) => {
                Self::ResNet(ModifiedResNet::new(layers, v.width, heads, v.image_size, config.embed_dim, device))
            }
        }
    }

    /// # Shapes
    /// - pixels: `[B, 3, S, S]` -> `[B, E]`
    pub fn forward(&self, pixels: Tensor<4>) -> Tensor<2> {
        match self {
            Self::Vit(vit) => vit.forward(pixels),
            Self::ResNet(resnet) => resnet.forward(pixels),
        }
    }
}

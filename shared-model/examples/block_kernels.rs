//! The kernels one residual attention block launches for a forward and backward pass (ViT-B-32's
//! width and heads, batch 2, 50 tokens, f32) on wgpu, for iterating on launch counts in seconds
//! where `scripts/kernel-count.sh` (a whole training step) takes minutes. Run it in a directory
//! with a `cubecl.toml` that turns on cubecl's profiling log and read the log with
//! `tests/gpu/kernels.py` (the runs before the marker are warm-up: autotune and compilation):
//!
//! ```text
//! printf '[profiling.logger]\nlevel = "basic"\nstderr = true\n' > cubecl.toml
//! VK_ICD_FILENAMES=/usr/share/vulkan/icd.d/lvp_icd.x86_64.json \
//!   cargo run --features clip-model/wgpu,clip-trainer/wgpu,clip-trainer/cuda --example block_kernels [causal] 2> block.log
//! python3 tests/gpu/kernels.py block.log
//! ```
//!
//! (The features are scripts/test.sh's, so that the build shares its dependencies.)

use burn::prelude::*;
use burn::tensor::Distribution;
use clip_model::device;
use clip_model::transformer::{Activation, Transformer};

fn main() -> Result<(), clip_model::Error> {
    let causal = std::env::args().nth(1).as_deref() == Some("causal");
    let device = device::parse("wgpu")?.autodiff();
    let (batch, tokens, width, heads) = (2, 50, 768, 12);
    let transformer = Transformer::new(width, 1, heads, 4.0, Activation::Gelu, &device);
    let block = &transformer.resblocks[0];
    for pass in 0..4 {
        if pass == 3 {
            // tests/gpu/kernels.py counts what follows its last "warm-up step" line.
            eprintln!("warm-up step done");
        }
        let x = Tensor::<3>::random([batch, tokens, width], Distribution::Normal(0.0, 1.0), &device).require_grad();
        let y = transformer.forward(x.clone(), causal);
        let grads = (y.clone() * y).sum().backward();
        // Reading the gradients waits for every kernel of the pass.
        let mut sum = x.grad(&grads).map_or(0.0, |g| g.sum().into_scalar::<f32>());
        for p in [block.attn.in_proj.weight.val(), block.mlp.c_fc.weight.val()] {
            sum += p.grad(&grads).map_or(0.0, |g| g.sum().into_scalar::<f32>());
        }
        eprintln!("pass {pass}: gradient sum {sum}");
    }
    Ok(())
}

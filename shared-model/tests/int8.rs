//! int8 burnpacks of the full-size models: ViT-B-32 and RN50 from random initialisation (the
//! presets' real shapes, burn's initialisation as `Clip::new` draws it), written as int8 and
//! loaded back. Every image and text feature keeps a cosine similarity of at least 0.999 to the
//! f32 model's, and the ViT-B-32 file is at most 0.27x of its f32 burnpack. On the CPU.
//! tests/fullsize/run.sh measures the same against open_clip's initialisation in PyTorch.

use burn::prelude::*;
use burn::tensor::Distribution;
use clip_model::import::{self, StoreDType};
use clip_model::tokenizer::Tokenizer;
use burn::tensor::Device;
use clip_model::{Clip, ClipConfig};

const PROMPTS: [&str; 4] = ["a photo of a cat.", "a diagram", "an astronaut riding a horse on the moon", "café crème"];

/// The lowest cosine similarity between corresponding rows of `a` and `b`.
fn worst_cosine(a: Tensor<2>, b: Tensor<2>) -> f32 {
    let dot = (a.clone() * b.clone()).sum_dim(1);
    let norms = (a.clone() * a).sum_dim(1).sqrt() * (b.clone() * b).sum_dim(1).sqrt();
    (dot / norms).into_data().convert::<f32>().try_into_vec::<f32>().unwrap().into_iter().fold(f32::INFINITY, f32::min)
}

fn check(name: &str) -> (usize, u64) {
    let device = Device::flex();
    let config = ClipConfig::preset(name).unwrap();
    let model = Clip::new(&config, &device);
    let params: u64 = model.num_params() as u64;
    let bytes = import::to_burnpack(&model, StoreDType::Int8).unwrap();
    let size = bytes.len();
    let int8 = import::load_bytes(None, bytes, &device).unwrap();

    let s = config.vision_cfg.image_size;
    // Pixels as preprocessing leaves them: about zero mean and unit spread.
    let pixels = Tensor::<4>::random([2, 3, s, s], Distribution::Normal(0.0, 1.0), &device);
    let image = worst_cosine(model.encode_image(pixels.clone()), int8.encode_image(pixels));
    let ids = Tokenizer::new().unwrap().encode_batch(&PROMPTS, config.text_cfg.context_length).to_tensor(&device);
    let text = worst_cosine(model.encode_text(ids.clone()), int8.encode_text(ids));
    eprintln!("{name}: int8 {size} bytes for {params} parameters ({:.3}x of f32); worst cosine image {image:.6}, text {text:.6}", size as f64 / (4 * params) as f64);
    assert!(image >= 0.999, "{name}: image features' cosine to f32 {image}");
    assert!(text >= 0.999, "{name}: text features' cosine to f32 {text}");
    (size, params)
}

#[test]
fn int8_vit_b_32_keeps_its_features_at_a_quarter_of_the_size() {
    let (size, params) = check("ViT-B-32");
    // An f32 burnpack holds 4 bytes a parameter and a small header.
    assert!(size as f64 <= 0.27 * (4 * params) as f64, "{size} bytes for {params} parameters");
}

#[test]
fn int8_rn50_keeps_its_features() {
    check("RN50");
}

/// Not a check, a measurement (README, "int8 weights"): what computing with burn's quantized
/// tensors would cost on the CPU backend instead of widening on load. One ViT-B-32 MLP matrix
/// (`[768, 3072]`) against the token block of a batch of 1 and of 32 images (`[50 B, 768]`), f32
/// against the same weights as a burn int8 tensor (per-tensor Q8S; burn's `q_matmul` dequantizes,
/// then multiplies), alternating, medians.
/// `cargo test -p clip-model --test int8 -- --ignored --nocapture` (the test profile builds
/// burn's kernels at opt-level 3).
#[test]
#[ignore = "a measurement, not a check"]
fn measure_computing_with_int8_tensors() {
    use burn::tensor::quantization::{QuantScheme, QuantStore, QuantValue};
    use std::time::Instant;
    let device = Device::flex();
    let w = Tensor::<2>::random([768, 3072], Distribution::Normal(0.0, 0.02), &device);
    let q = w.clone().quantize_dynamic(&QuantScheme::default().with_value(QuantValue::Q8S).with_store(QuantStore::Native));
    for batch in [1, 32] {
        let x = Tensor::<2>::random([50 * batch, 768], Distribution::Normal(0.0, 1.0), &device);
        let time = |w: &Tensor<2>| {
            let t = Instant::now();
            let _ = x.clone().matmul(w.clone()).into_data();
            t.elapsed().as_secs_f64() * 1e3
        };
        let rounds = if batch == 1 { 41 } else { 9 };
        let (mut a, mut b): (Vec<f64>, Vec<f64>) = (0..rounds).map(|_| (time(&w), time(&q))).unzip();
        a.sort_by(f64::total_cmp);
        b.sort_by(f64::total_cmp);
        let (f32_ms, q8_ms) = (a[rounds / 2], b[rounds / 2]);
        eprintln!("[{}, 768] x [768, 3072]: f32 {f32_ms:.3} ms, burn int8 tensor {q8_ms:.3} ms ({:.2}x)", 50 * batch, q8_ms / f32_ms);
    }
}

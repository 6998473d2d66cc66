//! Parity with open_clip (PyTorch) on the committed fixtures of `tests/fixtures/` (made by
//! `tests/fixtures/generate.sh`): final features, logits and intermediate activations of tiny
//! random models (ViT QuickGELU, ViT GELU, ModifiedResNet), loaded from every weight format.
//!
//! Runs on `CLIP_TEST_DEVICE` (default `cpu`, tolerance 1e-4; `wgpu` 1e-3).

use std::collections::HashMap;
use std::path::PathBuf;

use burn::prelude::*;
use clip_model::import::{self, read_safetensors, StoreDType};
use clip_model::tokenizer::TokenIds;
use clip_model::vision::VisionTower;
use clip_model::{device, Clip, ClipConfig};

/// `CLIP_FIXTURES` overrides the location (a test binary run on another machine).
fn fixtures() -> PathBuf {
    std::env::var_os("CLIP_FIXTURES")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures"))
}

fn test_device() -> (Device, f32) {
    let name = std::env::var("CLIP_TEST_DEVICE").unwrap_or_else(|_| "cpu".into());
    let tol = if name == "cpu" { 1e-4 } else { 1e-3 };
    (device::parse(&name).expect("CLIP_TEST_DEVICE"), tol)
}

struct Io(HashMap<String, (Vec<usize>, Vec<f32>)>);

impl Io {
    fn load(name: &str) -> Self {
        let bytes = std::fs::read(fixtures().join(format!("{name}_io.safetensors"))).unwrap();
        Io(read_safetensors(&bytes).unwrap().into_iter().map(|t| (t.name, (t.shape, t.data))).collect())
    }
    fn get(&self, key: &str) -> &(Vec<usize>, Vec<f32>) {
        self.0.get(key).unwrap_or_else(|| panic!("fixture lacks {key}"))
    }
    fn pixels(&self, device: &Device) -> Tensor<4> {
        let (shape, data) = self.get("pixel_values");
        Tensor::from_data(TensorData::new(data.clone(), [shape[0], shape[1], shape[2], shape[3]]), device)
    }
    fn tokens(&self) -> TokenIds {
        let (shape, data) = self.get("input_ids");
        TokenIds { ids: data.iter().map(|&v| v as u32).collect(), batch: shape[0], context_length: shape[1] }
    }
    fn ids(&self, device: &Device) -> Tensor<2, Int> {
        self.tokens().to_tensor(device)
    }
}

fn assert_close<const D: usize>(what: &str, actual: Tensor<D>, io: &Io, key: &str, tol: f32) {
    let (shape, expected) = io.get(key);
    assert_eq!(&actual.dims()[..], &shape[..], "{what}: {key} shape");
    let actual = actual.into_data().convert::<f32>().try_into_vec::<f32>().unwrap();
    let max = actual.iter().zip(expected).map(|(a, e)| (a - e).abs()).fold(0.0f32, f32::max);
    assert!(max <= tol, "{what}: {key} differs from open_clip by {max:e} (tolerance {tol:e})");
    eprintln!("{what}: {key} max abs diff {max:.2e}");
}

fn config(name: &str) -> ClipConfig {
    ClipConfig::from_open_clip_json(&std::fs::read_to_string(fixtures().join(format!("{name}.json"))).unwrap()).unwrap()
}

fn load(config: &ClipConfig, file: &str, device: &Device) -> Clip {
    import::load_file(Some(config), &fixtures().join(file), device).unwrap_or_else(|e| panic!("{file}: {e}"))
}

/// Features, logit scale and logits.
fn check_outputs(what: &str, model: &Clip, io: &Io, device: &Device, tol: f32) {
    let image = model.encode_image(io.pixels(device));
    let text = model.encode_text(io.ids(device));
    assert_close(what, image.clone(), io, "image_features", tol);
    assert_close(what, text.clone(), io, "text_features", tol);
    // Each text alone, without the padding after its end token (what every caller encodes):
    // the same features from fewer positions.
    let tokens = io.tokens();
    let rows: Vec<TokenIds> = (0..tokens.batch)
        .map(|i| TokenIds { ids: tokens.row(i).to_vec(), batch: 1, context_length: tokens.context_length })
        .collect();
    let cut: usize = rows.iter().map(clip_model::text::needed_positions).sum();
    assert!(cut < tokens.ids.len(), "{what}: every fixture text fills the context");
    let each = rows.iter().map(|row| model.encode_text(clip_model::text::input(row, device))).collect();
    assert_close(what, Tensor::cat(each, 0), io, "text_features", tol);
    assert_close(what, model.temperature(), io, "logit_scale", tol);
    // Logits are scaled by ~30: compare relative to that scale.
    assert_close(what, model.logits(image, text), io, "logits_per_image", tol * 30.0);
}

fn check_text_intermediates(what: &str, model: &Clip, io: &Io, device: &Device, tol: f32) {
    let ids = io.ids(device);
    let x = model.text.embed(ids);
    let block0 = model.text.transformer.resblocks[0].forward(x.clone(), true);
    assert_close(what, block0, io, "text.block0", tol);
    let all = model.text.ln_final.forward(model.text.transformer.forward(x, true));
    assert_close(what, all, io, "text.ln_final", tol);
}

#[test]
fn vit_quickgelu_matches_open_clip() {
    let (device, tol) = test_device();
    let io = Io::load("vit_quickgelu");
    let model = load(&config("vit_quickgelu"), "vit_quickgelu.safetensors", &device);
    check_outputs("vit_quickgelu", &model, &io, &device, tol);
    check_text_intermediates("vit_quickgelu", &model, &io, &device, tol);
    let VisionTower::Vit(vit) = &model.visual else { panic!("expected a ViT") };
    let tokens = vit.embed(io.pixels(&device));
    assert_close("vit_quickgelu", tokens.clone(), &io, "vision.ln_pre", tol);
    assert_close("vit_quickgelu", vit.transformer.resblocks[0].forward(tokens.clone(), false), &io, "vision.block0", tol);
    assert_close("vit_quickgelu", vit.pool(vit.transformer.forward(tokens, false)), &io, "vision.pooled", tol);
}

#[test]
fn vit_gelu_matches_open_clip() {
    let (device, tol) = test_device();
    let io = Io::load("vit_gelu");
    let model = load(&config("vit_gelu"), "vit_gelu.safetensors", &device);
    check_outputs("vit_gelu", &model, &io, &device, tol);
    check_text_intermediates("vit_gelu", &model, &io, &device, tol);
    let VisionTower::Vit(vit) = &model.visual else { panic!("expected a ViT") };
    assert_close("vit_gelu", vit.embed(io.pixels(&device)), &io, "vision.ln_pre", tol);
}

#[test]
fn modified_resnet_matches_open_clip() {
    let (device, tol) = test_device();
    let io = Io::load("rn");
    let model = load(&config("rn"), "rn.safetensors", &device);
    check_outputs("rn", &model, &io, &device, tol);
    check_text_intermediates("rn", &model, &io, &device, tol);
    let VisionTower::ResNet(rn) = &model.visual else { panic!("expected a ModifiedResNet") };
    let stem = rn.stem(io.pixels(&device));
    assert_close("rn", stem.clone(), &io, "vision.stem", tol);
    let l1 = rn.stage(0, stem);
    assert_close("rn", l1.clone(), &io, "vision.layer1", tol);
    let l4 = (1..4).fold(l1, |x, i| rn.stage(i, x));
    assert_close("rn", l4, &io, "vision.layer4", tol);
}

#[test]
fn hugging_face_weights_give_the_same_numbers() {
    let (device, tol) = test_device();
    let io = Io::load("vit_quickgelu");
    let hf_json = std::fs::read_to_string(fixtures().join("vit_quickgelu_hf_config.json")).unwrap();
    let hf_config = ClipConfig::from_hf_json(&hf_json).unwrap();
    assert_eq!(hf_config, config("vit_quickgelu"), "HF config.json parses to the open_clip config");
    let model = load(&hf_config, "vit_quickgelu_hf.safetensors", &device);
    check_outputs("hf", &model, &io, &device, tol);
}

#[test]
fn pickled_state_dicts_load() {
    let (device, tol) = test_device();
    let cfg = config("vit_quickgelu");
    let model = load(&cfg, "vit_quickgelu.pt", &device);
    check_outputs("pt", &model, &Io::load("vit_quickgelu"), &device, tol);
    // OpenAI's layout: conv/linear/attention weights and projections in fp16, norms in f32.
    let model = load(&cfg, "vit_quickgelu_openai_fp16.bin", &device);
    check_outputs("openai_fp16", &model, &Io::load("vit_quickgelu_openai_fp16"), &device, tol);
}

#[test]
fn burnpack_round_trip() {
    let (device, tol) = test_device();
    let io = Io::load("rn");
    let model = load(&config("rn"), "rn.safetensors", &device);
    let bytes = import::to_burnpack(&model, StoreDType::F32).unwrap();
    let reloaded = import::load_bytes(None, bytes, &device).unwrap();
    assert_eq!(reloaded.config, model.config);
    check_outputs("burnpack f32", &reloaded, &io, &device, tol);

    let f16 = import::to_burnpack(&model, StoreDType::F16).unwrap();
    let f32_len = import::to_burnpack(&model, StoreDType::F32).unwrap().len();
    assert!(f16.len() < f32_len * 6 / 10, "f16 burnpack {} vs f32 {f32_len}", f16.len());
    let half = import::load_bytes(Some(&model.config), f16, &device).unwrap();
    check_outputs("burnpack f16", &half, &io, &device, 5e-2);
}

/// int8 burnpacks of the fixture models (a ResNet and a ViT) load on the test device, at under
/// 0.4x of the f32 file for the ViT (the tiny models' f16 biases and norms weigh more than a real
/// model's) and 0.55x for the ResNet, whose image tower stays f16 (import::int8), with image and
/// text features pointing where the f32 model's do.
#[test]
fn int8_burnpack_round_trip() {
    let (device, _) = test_device();
    for (name, file) in [("rn", "rn.safetensors"), ("vit_quickgelu", "vit_quickgelu.safetensors")] {
        let io = Io::load(name);
        let model = load(&config(name), file, &device);
        let int8 = import::to_burnpack(&model, StoreDType::Int8).unwrap();
        let f32_len = import::to_burnpack(&model, StoreDType::F32).unwrap().len();
        let bound = if name == "rn" { 55 } else { 40 };
        assert!(int8.len() * 100 < f32_len * bound, "{name}: int8 burnpack {} vs f32 {f32_len}", int8.len());
        let reader = burn::store::burn_pack::Reader::from_bytes(burn::store::burn_pack::Bytes::from_bytes_vec(int8.clone())).unwrap();
        let int8_names: Vec<String> = reader.into_tensors().unwrap().into_iter().filter(|t| t.dtype == burn::tensor::DType::I8).map(|t| t.name).collect();
        assert!(int8_names.iter().any(|n| n.starts_with("text.")), "{name}: no int8 text tensor");
        assert_eq!(int8_names.iter().any(|n| n.starts_with("visual.")), name != "rn", "{name}: int8 image tensors {int8_names:?}");
        eprintln!("{name}: int8 burnpack {:.3}x of f32", int8.len() as f64 / f32_len as f64);
        let quantized = import::load_bytes(None, int8, &device).unwrap();
        let cosine = |a: Tensor<2>, b: Tensor<2>| -> f32 {
            let dot = (a.clone() * b.clone()).sum_dim(1);
            let norms = (a.clone() * a).sum_dim(1).sqrt() * (b.clone() * b).sum_dim(1).sqrt();
            (dot / norms).into_data().convert::<f32>().try_into_vec::<f32>().unwrap().into_iter().fold(f32::INFINITY, f32::min)
        };
        let image = cosine(model.encode_image(io.pixels(&device)), quantized.encode_image(io.pixels(&device)));
        let text = cosine(model.encode_text(io.ids(&device)), quantized.encode_text(io.ids(&device)));
        eprintln!("{name}: worst cosine to f32: image {image:.6}, text {text:.6}");
        assert!(image >= 0.99 && text >= 0.99, "{name}: worst cosine to f32: image {image}, text {text}");
    }
}

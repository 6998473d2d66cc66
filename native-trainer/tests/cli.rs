//! The `clip-burn` binary end to end: image files and prompt strings in, open_clip's numbers
//! out (fixtures from `tests/fixtures/generate.sh`), and one-line errors with the right exit code.

use std::path::PathBuf;
use std::process::{Command, Output};

use clip_model::import::read_safetensors;

const PROMPTS: [&str; 5] = [
    "a photo of a cat.",
    "a diagram",
    "A DOG!!  on the   beach",
    "café crème",
    "a very long caption that keeps going and going, describing a photo of a small brown dog \
     sitting on a red blanket next to a yellow ball in a sunny garden with tall green trees, \
     a white fence, a blue sky with a few clouds, and a cat watching from the window of a \
     small wooden house far away in the background, while two children play with a kite near an \
     old stone bridge over a quiet river at sunset",
];

fn fixture(name: &str) -> String {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures").join(name).display().to_string()
}

/// Runs on the CPU unless the arguments pick a device: the numbers are checked at 1e-4, and a
/// build with wgpu would otherwise pick the GPU.
fn clip_burn(args: &[&str]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_clip-burn"));
    if !args.contains(&"--device") {
        cmd.args(["--device", "cpu"]);
    }
    cmd.args(args).output().expect("run clip-burn")
}

fn reference(key: &str) -> (Vec<usize>, Vec<f32>) {
    let bytes = std::fs::read(fixture("vit_quickgelu_io.safetensors")).unwrap();
    let t = read_safetensors(&bytes).unwrap().into_iter().find(|t| t.name == key).unwrap();
    (t.shape, t.data)
}

fn max_diff(rows: &[Vec<f32>], expected: &[f32], dim: usize, which: &[usize]) -> f32 {
    rows.iter()
        .zip(which)
        .flat_map(|(row, &i)| row.iter().zip(&expected[i * dim..(i + 1) * dim]).map(|(a, b)| (a - b).abs()))
        .fold(0.0, f32::max)
}

/// astronaut.png and coffee.webp are lossless copies of fixture photos 0 and 2.
fn embed_args<'a>(model: &'a str, weights: &'a str, images: &'a [String]) -> Vec<&'a str> {
    let mut args = vec!["embed", "--model", model, "--weights", weights];
    for img in images {
        args.extend(["--image", img.as_str()]);
    }
    for p in PROMPTS {
        args.extend(["--text", p]);
    }
    args
}

fn check_embed(model: &str, weights: &str) {
    let images = [fixture("images/astronaut.png"), fixture("images/coffee.webp")];
    let out = clip_burn(&embed_args(model, weights, &images));
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let parse = |k: &str| -> Vec<Vec<f32>> { serde_json::from_value(json[k].clone()).unwrap() };
    let (shape, img_ref) = reference("image_features");
    let (_, txt_ref) = reference("text_features");
    let e = shape[1];
    let img = parse("image_features");
    let txt = parse("text_features");
    assert_eq!((img.len(), txt.len()), (2, 5));
    let (di, dt) = (max_diff(&img, &img_ref, e, &[0, 2]), max_diff(&txt, &txt_ref, e, &[0, 1, 2, 3, 4]));
    assert!(di <= 1e-4 && dt <= 1e-4, "{weights}: image diff {di:e}, text diff {dt:e}");
    let scale = json["logit_scale"].as_f64().unwrap();
    assert!((scale - 30.0).abs() < 1e-3, "logit_scale {scale}");
}

#[test]
fn embed_reproduces_open_clip_from_files_and_prompts() {
    check_embed(&fixture("vit_quickgelu.json"), &fixture("vit_quickgelu.safetensors"));
}

#[test]
fn embed_reproduces_open_clip_from_hugging_face_weights() {
    check_embed(&fixture("vit_quickgelu_hf_config.json"), &fixture("vit_quickgelu_hf.safetensors"));
}

#[test]
fn convert_then_embed_without_model_name() {
    let dir = std::env::temp_dir().join(format!("clip-burn-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let bpk = dir.join("vit.bpk").display().to_string();
    let out = clip_burn(&["convert", "--model", &fixture("vit_quickgelu.json"), "--weights", &fixture("vit_quickgelu.pt"), "--out", &bpk]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let images = [fixture("images/astronaut.png"), fixture("images/coffee.webp")];
    let mut args = embed_args("", &bpk, &images);
    args.drain(1..3); // no --model: the burnpack carries its config
    let out = clip_burn(&args);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn hugging_face_directory_needs_no_model_name() {
    let dir = std::env::temp_dir().join(format!("clip-burn-hf-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::copy(fixture("vit_quickgelu_hf.safetensors"), dir.join("model.safetensors")).unwrap();
    std::fs::copy(fixture("vit_quickgelu_hf_config.json"), dir.join("config.json")).unwrap();
    let weights = dir.join("model.safetensors").display().to_string();
    let out = clip_burn(&["embed", "--weights", &weights, "--text", PROMPTS[0]]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let txt: Vec<Vec<f32>> = serde_json::from_value(json["text_features"].clone()).unwrap();
    let (shape, reference) = reference("text_features");
    assert!(max_diff(&txt, &reference, shape[1], &[0]) <= 1e-4);
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn tokenize_prints_ids() {
    let out = clip_burn(&["tokenize", "a diagram", "café crème"]);
    assert!(out.status.success());
    let lines: Vec<Vec<u32>> = String::from_utf8(out.stdout).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(lines.len(), 2);
    assert_eq!(&lines[0][..4], &[49406, 320, 22697, 49407]);
    assert!(lines.iter().all(|l| l.len() == 77));
}

#[test]
fn classify_prints_ranked_probabilities() {
    let out = clip_burn(&[
        "--device", "best", "classify", "--model", &fixture("vit_quickgelu.json"), "--weights", &fixture("vit_quickgelu.safetensors"),
        "--image", &fixture("images/chelsea.jpg"), "--labels", "cat,dog,coffee mug", "--templates", "imagenet", "--json",
    ]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let labels = json[0]["labels"].as_array().unwrap();
    assert_eq!(labels.len(), 3);
    let scores: Vec<f64> = labels.iter().map(|l| l["score"].as_f64().unwrap()).collect();
    assert!(scores.windows(2).all(|w| w[0] >= w[1]), "not ranked: {scores:?}");
    assert!((scores.iter().sum::<f64>() - 1.0).abs() < 1e-4, "probabilities sum to {}", scores.iter().sum::<f64>());
}

fn assert_error(args: &[&str], code: i32, needle: &str) {
    let out = clip_burn(args);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(code), "{args:?}: {stderr}");
    assert!(stderr.contains(needle), "{args:?}: expected {needle:?} in {stderr}");
    // One line; a usage error may add a one-line hint.
    assert!(stderr.trim_end().lines().count() <= code as usize, "not one line: {stderr}");
    assert!(!stderr.contains("panicked") && !stderr.contains("RUST_BACKTRACE"), "{stderr}");
}

#[test]
fn bad_input_gives_one_line_errors() {
    let cfg = fixture("vit_quickgelu.json");
    let w = fixture("vit_quickgelu.safetensors");
    assert_error(&["embed", "--model", &cfg, "--weights", &fixture("rn.safetensors"), "--text", "a"], 1, "wrong shape");
    assert_error(&["embed", "--model", "ViT-B-32", "--weights", &w, "--text", "a"], 1, "missing");
    assert_error(&["embed", "--model", "ViT-Q-7", "--weights", &w, "--text", "a"], 1, "unknown model \"ViT-Q-7\"");
    assert_error(&["embed", "--model", &cfg, "--weights", &fixture("images/astronaut.png"), "--text", "a"], 1, "unrecognised weights format");
    assert_error(&["embed", "--model", &cfg, "--weights", "/no/such/file", "--text", "a"], 1, "/no/such/file");
    assert_error(&["embed", "--model", &cfg, "--weights", &w, "--image", &fixture("generate.py")], 1, "generate.py: cannot decode image");
    assert_error(&["embed", "--weights", &w, "--text", "a"], 1, "give a model name or config");
    assert_error(&["embed", "--model", &cfg, "--weights", &w], 2, "nothing to embed");
    assert_error(&["embed", "--model", &fixture("rn.json"), "--weights", &fixture("rn.safetensors"), "--text", "a"], 1, "fewer than the CLIP tokenizer");
    assert_error(&["classify", "--model", &cfg, "--weights", &w, "--image", "x.png"], 2, "--labels");
    assert_error(&["--device", "tpu", "embed", "--model", &cfg, "--weights", &w, "--text", "a"], 2, "invalid value 'tpu' for '--device");
    assert_error(&["frobnicate"], 2, "unrecognized subcommand");
}

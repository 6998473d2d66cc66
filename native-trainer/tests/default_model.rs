//! The committed default model (`models/synth/clip-synth.bpk`, f16, trained by
//! `clip-burn train --config models/synth/train.toml`) still does its job after loading: it
//! classifies pictures of held-out colour-shape pairs (never seen in training) it has never
//! seen either — a fresh seed — and the bundled examples.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn clip_burn(args: &[&str]) -> Output {
    let out = Command::new(env!("CARGO_BIN_EXE_clip-burn")).args(["--device", "cpu"]).args(args).output().expect("run clip-burn");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    out
}

fn weights() -> String {
    root().join("models/synth/clip-synth.bpk").display().to_string()
}

#[test]
fn the_default_model_is_small() {
    let size = std::fs::metadata(weights()).unwrap().len();
    assert!(size <= 10 * 1024 * 1024, "{size} bytes");
}

#[test]
fn the_default_model_classifies_unseen_pictures_of_held_out_pairs() {
    let dir = std::env::temp_dir().join(format!("clip-burn-default-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    clip_burn(&[
        "synth", "--out", dir.to_str().unwrap(), "--train-samples", "0", "--val-samples", "0", "--eval-per-class", "10",
        "--seed", "20261127", "--formats", "wds",
    ]);
    let out = clip_burn(&["eval", "zero-shot", "--weights", &weights(), "--data", dir.join("zero-shot").to_str().unwrap()]);
    let result: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(result["images"], 160);
    let top1 = result["top1"].as_f64().unwrap();
    assert!(top1 >= 0.9, "zero-shot top-1 {top1} on 160 new pictures of the 16 held-out classes");
    std::fs::remove_dir_all(&dir).unwrap();
}

/// `models/synth/examples/<colour>_<shape>.png`: every bundled example is classified right
/// with the data set's templates.
#[test]
fn the_bundled_examples_are_classified_right() {
    let dir = root().join("models/synth/examples");
    let mut images: Vec<PathBuf> =
        std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().path()).filter(|p| p.extension().is_some_and(|e| e == "png")).collect();
    images.sort();
    assert!(images.len() >= 10);
    let mut args: Vec<String> = ["classify", "--weights", &weights(), "--json", "--top", "1", "--labels-file"].map(String::from).to_vec();
    args.push(root().join("models/synth/classnames.txt").display().to_string());
    args.extend(images.iter().flat_map(|p| ["--image".to_string(), p.display().to_string()]));
    let templates = std::fs::read_to_string(root().join("models/synth/templates.txt")).unwrap();
    args.extend(templates.lines().filter(|l| !l.is_empty()).flat_map(|t| ["--template".to_string(), t.to_string()]));
    let out = clip_burn(&args.iter().map(String::as_str).collect::<Vec<_>>());
    let results: Vec<serde_json::Value> = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(results.len(), images.len());
    for (result, path) in results.iter().zip(&images) {
        let expected = Path::new(path).file_stem().unwrap().to_str().unwrap().replace('_', " ");
        assert_eq!(result["labels"][0]["label"], expected.as_str(), "{}", path.display());
    }
}

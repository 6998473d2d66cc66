//! Preprocessing equals open_clip's (PIL + torchvision) on real photos of every kind the
//! fixtures hold: PNG, JPEG, lossless and lossy WebP, greyscale, RGBA, palette, odd sizes.

use std::collections::HashMap;
use std::path::PathBuf;

use clip_model::import::read_safetensors;
use clip_model::preprocess::{decode, preprocess};

fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures")
}

fn reference() -> HashMap<String, Vec<f32>> {
    let bytes = std::fs::read(fixtures().join("preprocess.safetensors")).unwrap();
    read_safetensors(&bytes).unwrap().into_iter().map(|t| (t.name, t.data)).collect()
}

#[test]
fn decoding_matches_pillow() {
    let reference = reference();
    let mut checked = 0;
    for (key, expected) in &reference {
        let Some(file) = key.strip_suffix("@decoded") else { continue };
        let decoded = decode(&std::fs::read(fixtures().join("images").join(file)).unwrap()).unwrap();
        let img = &decoded.image;
        let rgb: Vec<f32> = img.data.chunks_exact(img.channels).flat_map(|p| p[..3].iter().map(|&v| v as f32)).collect();
        assert_eq!(rgb.len(), expected.len(), "{file}: decoded size");
        let max = rgb.iter().zip(expected).map(|(a, b)| (a - b).abs()).fold(0.0f32, f32::max);
        // JPEG too: vendor/zune-jpeg decodes exactly as libjpeg-turbo (see tests/jpeg_decode.rs).
        assert!(max == 0.0, "{file}: decoded pixels differ from Pillow by {max}");
        eprintln!("{file}: decoded max diff {max}");
        checked += 1;
    }
    assert!(checked >= 8, "only {checked} images checked");
}

#[test]
fn preprocessing_matches_open_clip() {
    let reference = reference();
    let mut checked = 0;
    for (key, expected) in &reference {
        let Some((file, size)) = key.split_once('@') else { continue };
        let Ok(size) = size.parse::<usize>() else { continue };
        let decoded = decode(&std::fs::read(fixtures().join("images").join(file)).unwrap()).unwrap();
        let pixels = preprocess(&decoded, size).unwrap();
        assert_eq!(pixels.data.len(), expected.len(), "{key}");
        let max = pixels.data.iter().zip(expected).map(|(a, b)| (a - b).abs()).fold(0.0f32, f32::max);
        let tol = 1e-3;
        assert!(max <= tol, "{key}: differs from open_clip by {max} (tolerance {tol})");
        eprintln!("{key}: max abs diff {max:.2e}");
        checked += 1;
    }
    assert!(checked >= 10, "only {checked} cases checked");
}

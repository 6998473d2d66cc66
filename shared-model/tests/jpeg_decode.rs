//! JPEG decoding is bit-identical to Pillow's (libjpeg-turbo: ISLOW IDCT, fancy upsampling,
//! jdcolor.c YCbCr->RGB), which vendor/zune-jpeg reproduces. The cases in
//! tests/fixtures/images/jpeg/ (written by tests/fixtures/make_jpeg_cases.py) cover baseline and
//! progressive 4:4:4, 4:2:2, 4:2:0 and greyscale, odd sizes and a 4x4 image (box upsampling);
//! each `<name>.rgb` is Pillow's `Image.open(<name>.jpg).convert("RGB").tobytes()`.

use std::path::PathBuf;

use clip_model::preprocess::decode;

fn dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/images/jpeg")
}

#[test]
fn jpeg_decoding_is_bit_exact_with_pillow() {
    let meta: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir().join("cases.json")).unwrap()).unwrap();
    let cases = meta["cases"].as_array().unwrap();
    assert!(!cases.is_empty());
    let mut failures = Vec::new();
    for case in cases {
        let name = case["name"].as_str().unwrap();
        let (width, height) = (
            case["width"].as_u64().unwrap() as usize,
            case["height"].as_u64().unwrap() as usize,
        );
        let jpg = std::fs::read(dir().join(format!("{name}.jpg"))).unwrap();
        let want = std::fs::read(dir().join(format!("{name}.rgb"))).unwrap();
        assert_eq!(want.len(), width * height * 3, "{name}: reference size");

        let img = decode(&jpg).unwrap().image;
        assert_eq!(
            (img.width, img.height, img.channels),
            (width, height, 3),
            "{name}: decoded shape"
        );
        let differing = img.data.iter().zip(&want).filter(|(a, b)| a != b).count();
        let max = img
            .data
            .iter()
            .zip(&want)
            .map(|(&a, &b)| (a as i32 - b as i32).abs())
            .max()
            .unwrap_or(0);
        eprintln!(
            "{name} ({width}x{height}, {}, progressive {}): {differing} values differ, max {max}",
            case["subsampling"], case["progressive"]
        );
        if differing != 0 {
            failures.push(format!(
                "{name}: {differing} values differ from Pillow, max {max}"
            ));
        }
    }
    assert!(failures.is_empty(), "{failures:#?}");
}

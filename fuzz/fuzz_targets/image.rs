#![no_main]
//! `clip_model::fuzz::image`.

libfuzzer_sys::fuzz_target!(|bytes: &[u8]| {
    let _ = clip_model::fuzz::image(bytes);
});

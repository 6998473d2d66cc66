#![no_main]
//! `clip_trainer::fuzz::pattern`.

libfuzzer_sys::fuzz_target!(|bytes: &[u8]| {
    let _ = clip_trainer::fuzz::pattern(bytes);
});

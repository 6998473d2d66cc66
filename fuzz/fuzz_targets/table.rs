#![no_main]
//! `clip_trainer::fuzz::table`.

libfuzzer_sys::fuzz_target!(|bytes: &[u8]| {
    let _ = clip_trainer::fuzz::table(bytes);
});

#![no_main]
//! `clip_model::fuzz::pytorch` on the CPU backend.

libfuzzer_sys::fuzz_target!(|bytes: &[u8]| {
    let _ = clip_model::fuzz::pytorch(bytes, &burn::prelude::Device::flex());
});

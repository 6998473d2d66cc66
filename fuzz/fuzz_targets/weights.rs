#![no_main]
//! `clip_model::fuzz::weights` on the CPU backend.

libfuzzer_sys::fuzz_target!(|bytes: &[u8]| {
    let _ = clip_model::fuzz::weights(bytes, &burn::prelude::Device::flex());
});

/*
 * Copyright (c) 2023.
 *
 * This software is free software;
 *
 * You can redistribute it or modify it under terms of the MIT, Apache License or Zlib license
 */

//! Routines for IDCT
//!
//! clip-burn vendored copy: upstream zune-jpeg picks between an stb_image-style scalar IDCT and
//! AVX2/NEON versions of it. Here every choice is the same scalar port of libjpeg-turbo's
//! `jpeg_idct_islow` (jidctint.c), the IDCT Pillow decodes with by default, so the output is
//! bit-identical to Pillow's on every target (x86, Arm, wasm32). See `scalar.rs`.
#![allow(clippy::module_name_repetitions, clippy::wildcard_imports)]

use zune_core::options::DecoderOptions;

use crate::decoder::IDCTPtr;
use crate::idct::scalar::{idct_dc_only, idct_int};

pub mod scalar;

/// Choose an appropriate IDCT function: always libjpeg's ISLOW.
pub fn choose_idct_func(_options: &DecoderOptions) -> IDCTPtr {
    idct_int
}

/// Choose a function to implement 4x4 IDCT.
///
/// Callers use this when only the first 4x4 block of coefficients is non-zero. ISLOW takes its
/// own shortcuts for zero columns/rows (exactly, as libjpeg does), so this is ISLOW too. It does
/// not modify its input, so the upstream contract (entries outside the 4x4 block are zero on
/// return) holds.
pub fn choose_idct_4x4_func(_options: &DecoderOptions) -> IDCTPtr {
    idct_int
}

/// Choose a function for DC-only blocks: ISLOW's result for them (its zero-AC shortcuts), fast.
pub fn choose_idct_1x1_func(_: &DecoderOptions) -> IDCTPtr {
    idct_dc_only
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A straightforward double-precision IDCT, rounded, to sanity-check ISLOW (which is
    /// accurate to within 1 level for in-range data).
    fn reference(coeff: &[i32; 64]) -> [i32; 64] {
        let mut out = [0; 64];
        for y in 0..8 {
            for x in 0..8 {
                let mut s = 0.0f64;
                for v in 0..8 {
                    for u in 0..8 {
                        let cu = if u == 0 { 1.0 / 2f64.sqrt() } else { 1.0 };
                        let cv = if v == 0 { 1.0 / 2f64.sqrt() } else { 1.0 };
                        s += cu * cv * f64::from(coeff[v * 8 + u])
                            * (((2 * x + 1) as f64 * u as f64 * core::f64::consts::PI) / 16.0).cos()
                            * (((2 * y + 1) as f64 * v as f64 * core::f64::consts::PI) / 16.0).cos();
                    }
                }
                out[y * 8 + x] = ((s / 4.0).round() as i32 + 128).clamp(0, 255);
            }
        }
        out
    }

    #[test]
    fn islow_close_to_reference_and_input_untouched() {
        let mut seed = 12345u32;
        for _ in 0..200 {
            let mut coeff = [0i32; 64];
            for c in coeff.iter_mut() {
                seed = seed.wrapping_mul(1_103_515_245).wrapping_add(12345);
                *c = ((seed >> 16) % 61) as i32 - 30;
            }
            coeff[0] = ((seed >> 8) % 1000) as i32 - 500;
            let copy = coeff;
            let mut out = [0i16; 64];
            choose_idct_func(&DecoderOptions::new_fast())(&mut coeff, &mut out, 8);
            assert_eq!(coeff, copy, "ISLOW must not modify its input");
            let want = reference(&copy);
            for (a, b) in out.iter().zip(want.iter()) {
                assert!((i32::from(*a) - *b).abs() <= 1, "{a} vs {b}");
            }
        }
    }

    #[test]
    fn dc_only_block() {
        let mut coeff = [0i32; 64];
        coeff[0] = -87 * 8;
        let mut out = [0i16; 64];
        idct_int(&mut coeff, &mut out, 8);
        assert!(out.iter().all(|&v| v == 128 - 87));
    }

    #[test]
    fn output_saturates() {
        // DC far out of range: libjpeg-turbo's SIMD ISLOW (what Pillow runs) saturates.
        let mut coeff = [0i32; 64];
        coeff[0] = 1016 * 5;
        let mut out = [0i16; 64];
        idct_int(&mut coeff, &mut out, 8);
        assert!(out.iter().all(|&v| v == 255));
        coeff[0] = -1024 * 5;
        idct_int(&mut coeff, &mut out, 8);
        assert!(out.iter().all(|&v| v == 0));
    }
}

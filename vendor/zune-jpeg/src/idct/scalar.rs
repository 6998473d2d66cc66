/*
 * Copyright (c) 2023.
 *
 * This software is free software;
 *
 * You can redistribute it or modify it under terms of the MIT, Apache License or Zlib license
 */

//! Platform independent IDCT algorithm.
//!
//! clip-burn vendored copy: this is a port of libjpeg-turbo's `jpeg_idct_islow` (src/jidctint.c,
//! "slow-but-accurate integer IDCT", JDCT_ISLOW, the default `dct_method`), replacing zune-jpeg's
//! stb_image-derived IDCT so that decoded samples equal libjpeg-turbo's (and so Pillow's).
//!
//! jidctint.c is part of libjpeg-turbo: Copyright (C) 1991-1998, Thomas G. Lane; modification
//! developed 2002-2018 by Guido Vollbeding; libjpeg-turbo modifications Copyright (C) 2015,
//! 2020, 2022, 2026, D. R. Commander. Used under the IJG licence (README.ijg); see this crate's
//! README.md. "This software is based in part on the work of the Independent JPEG Group."
//!
//! Arithmetic follows the C code as built on LP64 platforms (Linux, macOS): 64-bit `JLONG`
//! intermediates, 32-bit `int` workspace, `DESCALE(x, n) = (x + (1 << (n-1))) >> n`, the same
//! constant multipliers, and the same zero-column / zero-row shortcuts (exact rewrites of the
//! full computation, which `idct_dc_only` extends to whole DC-only blocks).
//!
//! Range limiting: the C routine maps the final value through
//! `range_limit[x & RANGE_MASK]`, which saturates for -512 <= x < 512 but wraps beyond that. The
//! SIMD versions of the same IDCT that libjpeg-turbo actually runs under Pillow on x86-64
//! (SSE2/AVX2 `packsswb`) and Arm (NEON `vqrshrn`) saturate instead. Pillow's output is the
//! SIMD one (checked: a JPEG whose DC decodes to 128+635 gives 255 with Pillow's bundled
//! libjpeg-turbo, 0 with `JSIMD_FORCENONE=1`), so this port saturates. The two agree whenever
//! the IDCT output lies in [-512, 511], i.e. for every non-pathological JPEG.
//!
//! For valid JPEG data the C and SIMD IDCTs are identical. Only crafted coefficient data, whose
//! dequantized values or pass-1 results leave the 16-bit range, can make Pillow's SIMD IDCT
//! (16-bit lanes: wrapping multiplies and shifts, saturating or wrapping narrowing depending on
//! the CPU) differ from this port; Pillow's output for such files differs between platforms too.

const CONST_BITS: i32 = 13;
const PASS1_BITS: i32 = 2;

const FIX_0_298631336: i64 = 2446;
const FIX_0_390180644: i64 = 3196;
const FIX_0_541196100: i64 = 4433;
const FIX_0_765366865: i64 = 6270;
const FIX_0_899976223: i64 = 7373;
const FIX_1_175875602: i64 = 9633;
const FIX_1_501321110: i64 = 12299;
const FIX_1_847759065: i64 = 15137;
const FIX_1_961570560: i64 = 16069;
const FIX_2_053119869: i64 = 16819;
const FIX_2_562915447: i64 = 20995;
const FIX_3_072711026: i64 = 25172;

/// `DESCALE(x, n)`: right shift with rounding (arithmetic shift, as libjpeg assumes).
#[inline(always)]
fn descale(x: i64, n: i32) -> i64 {
    (x + (1i64 << (n - 1))) >> n
}

/// Level shift (+CENTERJSAMPLE) and saturate to 0..=255, as libjpeg-turbo's SIMD ISLOW does
/// (see the module docs for how this relates to the C table lookup).
#[inline(always)]
#[allow(clippy::cast_possible_truncation)]
fn range_limit(x: i64) -> i16 {
    (x + 128).clamp(0, 255) as i16
}

/// The odd/even butterfly shared by both passes: the 1-D IDCT of `d` (dequantized
/// coefficients in pass 1, workspace values in pass 2), before descaling, outputs 0..7.
#[inline(always)]
fn butterfly(d0: i64, d1: i64, d2: i64, d3: i64, d4: i64, d5: i64, d6: i64, d7: i64) -> [i64; 8] {
    // Even part: reverse the even part of the forward DCT.
    // The rotator is sqrt(2)*c(-6).
    let z2 = d2;
    let z3 = d6;

    let z1 = (z2 + z3) * FIX_0_541196100;
    let tmp2 = z1 + z3 * -FIX_1_847759065;
    let tmp3 = z1 + z2 * FIX_0_765366865;

    let z2 = d0;
    let z3 = d4;

    let tmp0 = (z2 + z3) << CONST_BITS;
    let tmp1 = (z2 - z3) << CONST_BITS;

    let tmp10 = tmp0 + tmp3;
    let tmp13 = tmp0 - tmp3;
    let tmp11 = tmp1 + tmp2;
    let tmp12 = tmp1 - tmp2;

    // Odd part per figure 8; the matrix is unitary and hence its
    // transpose is its inverse.  i0..i3 are y7,y5,y3,y1 respectively.
    let tmp0 = d7;
    let tmp1 = d5;
    let tmp2 = d3;
    let tmp3 = d1;

    let z1 = tmp0 + tmp3;
    let z2 = tmp1 + tmp2;
    let z3 = tmp0 + tmp2;
    let z4 = tmp1 + tmp3;
    let z5 = (z3 + z4) * FIX_1_175875602; // sqrt(2) * c3

    let mut tmp0 = tmp0 * FIX_0_298631336; // sqrt(2) * (-c1+c3+c5-c7)
    let mut tmp1 = tmp1 * FIX_2_053119869; // sqrt(2) * ( c1+c3-c5+c7)
    let mut tmp2 = tmp2 * FIX_3_072711026; // sqrt(2) * ( c1+c3+c5-c7)
    let mut tmp3 = tmp3 * FIX_1_501321110; // sqrt(2) * ( c1+c3-c5-c7)
    let z1 = z1 * -FIX_0_899976223; // sqrt(2) * ( c7-c3)
    let z2 = z2 * -FIX_2_562915447; // sqrt(2) * (-c1-c3)
    let mut z3 = z3 * -FIX_1_961570560; // sqrt(2) * (-c3-c5)
    let mut z4 = z4 * -FIX_0_390180644; // sqrt(2) * ( c5-c3)

    z3 += z5;
    z4 += z5;

    tmp0 += z1 + z3;
    tmp1 += z2 + z4;
    tmp2 += z2 + z3;
    tmp3 += z1 + z4;

    // Final output stage: inputs are tmp10..tmp13, tmp0..tmp3
    [
        tmp10 + tmp3,
        tmp11 + tmp2,
        tmp12 + tmp1,
        tmp13 + tmp0,
        tmp13 - tmp0,
        tmp12 - tmp1,
        tmp11 - tmp2,
        tmp10 - tmp3
    ]
}

/// The 8 output samples of row `row`, `stride` apart; a scratch row when the output slice is
/// too short (corrupt images).
#[inline(always)]
fn out_row<'a>(out_vector: &'a mut [i16], row: usize, stride: usize, tmp: &'a mut [i16; 8]) -> &'a mut [i16; 8] {
    let pos = row * stride;
    match out_vector.get_mut(pos..pos + 8) {
        Some(o) => o.try_into().unwrap(),
        None => tmp
    }
}

/// libjpeg-turbo `jpeg_idct_islow`.
///
/// `in_vector`: dequantized coefficients in natural (row-major, row = vertical frequency)
/// order; it is not modified. `out_vector`: 8 rows of 8 samples, `stride` apart.
#[allow(clippy::cast_possible_truncation, clippy::needless_range_loop)]
pub fn idct_int(in_vector: &mut [i32; 64], out_vector: &mut [i16], stride: usize) {
    let inp: &[i32; 64] = in_vector;
    if inp[1..].iter().all(|&v| v == 0) {
        return idct_dc_only(in_vector, out_vector, stride);
    }
    let mut ws = [0i32; 64];

    // Pass 1: process columns from input, store into work array.
    // Note results are scaled up by sqrt(8) compared to a true IDCT;
    // furthermore, we scale the results by 2**PASS1_BITS.
    for col in 0..8 {
        if inp[8 + col] == 0
            && inp[16 + col] == 0
            && inp[24 + col] == 0
            && inp[32 + col] == 0
            && inp[40 + col] == 0
            && inp[48 + col] == 0
            && inp[56 + col] == 0
        {
            // AC terms all zero
            let dcval = inp[col].wrapping_shl(PASS1_BITS as u32);
            for k in 0..8 {
                ws[k * 8 + col] = dcval;
            }
            continue;
        }
        let d = |k: usize| i64::from(inp[k * 8 + col]);
        let out = butterfly(d(0), d(1), d(2), d(3), d(4), d(5), d(6), d(7));
        for k in 0..8 {
            ws[k * 8 + col] = descale(out[k], CONST_BITS - PASS1_BITS) as i32;
        }
    }

    // Pass 2: process rows from work array, store into output array.
    // Note that we must descale the results by a factor of 8 == 2**3,
    // and also undo the PASS1_BITS scaling.
    for row in 0..8 {
        let w: &[i32; 8] = ws[row * 8..row * 8 + 8].try_into().unwrap();
        let mut tmp = [0i16; 8];
        let out = out_row(out_vector, row, stride, &mut tmp);

        if w[1] == 0 && w[2] == 0 && w[3] == 0 && w[4] == 0 && w[5] == 0 && w[6] == 0 && w[7] == 0 {
            // AC terms all zero
            *out = [range_limit(descale(i64::from(w[0]), PASS1_BITS + 3)); 8];
            continue;
        }
        let d = |k: usize| i64::from(w[k]);
        let res = butterfly(d(0), d(1), d(2), d(3), d(4), d(5), d(6), d(7));
        for k in 0..8 {
            out[k] = range_limit(descale(res[k], CONST_BITS + PASS1_BITS + 3));
        }
    }
}

/// `jpeg_idct_islow` for a block whose AC coefficients are all zero: both passes take their
/// zero-AC shortcuts, giving `DESCALE(DC << PASS1_BITS, PASS1_BITS + 3)` everywhere.
/// Falls back to the full routine if the block has AC coefficients after all.
pub fn idct_dc_only(in_vector: &mut [i32; 64], out_vector: &mut [i16], stride: usize) {
    if in_vector[1..].iter().any(|&v| v != 0) {
        return idct_int(in_vector, out_vector, stride);
    }
    let dcval = i64::from(in_vector[0].wrapping_shl(PASS1_BITS as u32));
    let v = range_limit(descale(dcval, PASS1_BITS + 3));
    for row in 0..8 {
        let mut tmp = [0i16; 8];
        *out_row(out_vector, row, stride, &mut tmp) = [v; 8];
    }
}

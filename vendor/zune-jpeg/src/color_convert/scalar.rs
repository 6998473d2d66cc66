/*
 * Copyright (c) 2023.
 *
 * This software is free software;
 *
 * You can redistribute it or modify it under terms of the MIT, Apache License or Zlib license
 */

use core::convert::TryInto;

// clip-burn vendored copy: YCbCr -> RGB exactly as libjpeg-turbo's `ycc_rgb_convert`
// (src/jdcolor.c `build_ycc_rgb_table` + src/jdcolext.c), which is what Pillow decodes with.
// jdcolor.c / jdcolext.c: Copyright (C) 1991-1997, Thomas G. Lane; modified 2011 by Guido
// Vollbeding; libjpeg-turbo modifications Copyright 2009 Pierre Ossman for Cendio AB,
// Copyright (C) 2009-2025 D. R. Commander, Copyright (C) 2013 Linaro Limited. Used under the
// IJG licence; the notices are in this crate's README.md.
//
//   Cr_r_tab[i] = RIGHT_SHIFT(FIX(1.40200) * x + ONE_HALF, 16)     x = i - 128
//   Cb_b_tab[i] = RIGHT_SHIFT(FIX(1.77200) * x + ONE_HALF, 16)
//   Cr_g_tab[i] = -FIX(0.71414) * x
//   Cb_g_tab[i] = -FIX(0.34414) * x + ONE_HALF
//   R = range_limit[y + Cr_r_tab[cr]]
//   G = range_limit[y + RIGHT_SHIFT(Cb_g_tab[cb] + Cr_g_tab[cr], 16)]
//   B = range_limit[y + Cb_b_tab[cb]]
//
// FIX(x) = (x * 65536 + 0.5) truncated. The tables are evaluated inline (i32 cannot overflow for
// samples in 0..=255); range_limit is a clamp to 0..=255 over this input range.
const SCALEBITS: i32 = 16;
const ONE_HALF: i32 = 1 << (SCALEBITS - 1);
const FIX_1_40200: i32 = 91881;
const FIX_1_77200: i32 = 116130;
const FIX_0_71414: i32 = 46802;
const FIX_0_34414: i32 = 22554;

/// libjpeg-turbo's YCbCr -> RGB for one pixel of 8-bit samples.
#[inline(always)]
#[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
pub(crate) fn ycc_to_rgb(y: i16, cb: i16, cr: i16) -> [u8; 3] {
    let y = i32::from(y);
    let cb = i32::from(cb) - 128;
    let cr = i32::from(cr) - 128;
    let r = y + ((FIX_1_40200 * cr + ONE_HALF) >> SCALEBITS);
    let g = y + ((-FIX_0_34414 * cb + ONE_HALF - FIX_0_71414 * cr) >> SCALEBITS);
    let b = y + ((FIX_1_77200 * cb + ONE_HALF) >> SCALEBITS);
    [clamp(r), clamp(g), clamp(b)]
}

/// Limit values to 0 and 255
#[inline]
#[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss, dead_code)]
fn clamp(a: i32) -> u8 {
    a.clamp(0, 255) as u8
}

/// YCbCr to RGBA color conversion

/// Convert YCbCr to RGB/BGR
///
/// Converts to RGB if const BGRA is false
///
/// Converts to BGR if const BGRA is true
pub fn ycbcr_to_rgba_inner_16_scalar<const BGRA: bool>(
    y: &[i16; 16], cb: &[i16; 16], cr: &[i16; 16], output: &mut [u8], pos: &mut usize
) {
    let (_, output_position) = output.split_at_mut(*pos);

    // Convert into a slice with 64 elements for Rust to see we won't go out of bounds.
    let opt: &mut [u8; 64] = output_position
        .get_mut(0..64)
        .expect("Slice to small cannot write")
        .try_into()
        .unwrap();
    for ((&y, (cb, cr)), out) in y
        .iter()
        .zip(cb.iter().zip(cr.iter()))
        .zip(opt.chunks_exact_mut(4))
    {
        let [r, g, b] = ycc_to_rgb(y, *cb, *cr);

        if BGRA {
            out[0] = b;
            out[1] = g;
            out[2] = r;
            out[3] = 255;
        } else {
            out[0] = r;
            out[1] = g;
            out[2] = b;
            out[3] = 255;
        }
    }
    *pos += 64;
}

/// Convert YCbCr to RGB/BGR
///
/// Converts to RGB if const BGRA is false
///
/// Converts to BGR if const BGRA is true
pub fn ycbcr_to_rgb_inner_16_scalar<const BGRA: bool>(
    y: &[i16; 16], cb: &[i16; 16], cr: &[i16; 16], output: &mut [u8], pos: &mut usize
) {
    let (_, output_position) = output.split_at_mut(*pos);

    // Convert into a slice with 48 elements
    let opt: &mut [u8; 48] = output_position
        .get_mut(0..48)
        .expect("Slice to small cannot write")
        .try_into()
        .unwrap();

    for ((&y, (cb, cr)), out) in y
        .iter()
        .zip(cb.iter().zip(cr.iter()))
        .zip(opt.chunks_exact_mut(3))
    {
        let [r, g, b] = ycc_to_rgb(y, *cb, *cr);

        if BGRA {
            out[0] = b;
            out[1] = g;
            out[2] = r;
        } else {
            out[0] = r;
            out[1] = g;
            out[2] = b;
        }
    }

    // Increment pos
    *pos += 48;
}

pub fn ycbcr_to_grayscale(y: &[i16], width: usize, padded_width: usize, output: &mut [u8]) {
    for (y_in, out) in y
        .chunks_exact(padded_width)
        .zip(output.chunks_exact_mut(width))
    {
        for (y, out) in y_in.iter().zip(out.iter_mut()) {
            *out = *y as u8;
        }
    }
}

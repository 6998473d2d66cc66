//! clip-burn vendored copy: libjpeg-turbo-exact post-processing (upsampling + colour conversion).
//!
//! Upstream zune-jpeg upsamples each MCU row as it is decoded, with its own (stb_image-like)
//! filters and edge handling. To reproduce libjpeg-turbo's output (and hence Pillow's) exactly,
//! this module instead collects the IDCT output of every component into whole-image planes at
//! the component's own resolution, then, once all rows are decoded, produces each output row
//! as libjpeg-turbo does with its defaults (`do_fancy_upsampling = TRUE`, so jdmerge.c's merged
//! upsampler is never used):
//!
//! * jdsample.c `jinit_upsampler` method choice per component, from `h_samp`/`v_samp` against
//!   the maxima: full size; `h2v1_fancy_upsample` (box `h2v1_upsample` when the component is at
//!   most 2 samples wide); `h1v2_fancy_upsample`; `h2v2_fancy_upsample` (box `h2v2_upsample`
//!   when at most 2 samples wide); `int_upsample` (box replication) for other integral ratios.
//! * The filters work on the component's real size (`downsampled_width` =
//!   ceil(image_width * h_samp / max_h_samp), likewise the height), not on the MCU-padded IDCT
//!   output: at the right edge the last real sample is replicated, and, as jdmainct.c provides
//!   vertical context, the row above the first row is the first row and the row below the last
//!   real row is that row again.
//! * YCbCr -> RGB is jdcolor.c's `ycc_rgb_convert` (see `color_convert::ycc_to_rgb`).
//!
//! jdsample.c / jdmainct.c are part of libjpeg-turbo: Copyright (C) 1991-1996, Thomas G. Lane;
//! libjpeg-turbo modifications Copyright 2009 Pierre Ossman for Cendio AB, Copyright (C) 2010,
//! 2015-2016, 2022, 2024-2026, D. R. Commander, Copyright (C) 2015, Google, Inc., Copyright (C)
//! 2019-2020, Arm Limited. Used under the IJG licence: see this crate's README.md.

use alloc::vec;
use alloc::vec::Vec;

use zune_core::bytestream::ZByteReaderTrait;
use zune_core::colorspace::ColorSpace;

use crate::color_convert::ycc_to_rgb;
use crate::decoder::MAX_COMPONENTS;
use crate::errors::DecodeErrors;
use crate::worker::color_convert;
use crate::JpegDecoder;

/// How libjpeg-turbo's jdsample.c upsamples one component.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
enum Method {
    FullSize,
    H2V1Fancy,
    H2V1Box,
    H1V2Fancy,
    H2V2Fancy,
    H2V2Box,
    /// `int_upsample`: replicate each sample `h` times across and `v` times down.
    Int { h: usize, v: usize },
    /// Non-integral ratio: libjpeg refuses these (JERR_FRACT_SAMPLE_NOTIMPL); nearest sample.
    Nearest
}

/// One component's plane at its own resolution.
struct Plane<'a> {
    data: &'a [u8],
    stride: usize,
    /// Real (`downsampled_`) width and height.
    width: usize,
    height: usize,
    h_samp: usize,
    v_samp: usize,
    method: Method
}

impl Plane<'_> {
    /// Row `r` clamped to the real rows, real width only.
    #[inline]
    fn row(&self, r: isize) -> &[u8] {
        let r = r.clamp(0, self.height as isize - 1) as usize;
        &self.data[r * self.stride..r * self.stride + self.width]
    }

    /// Upsampled output row `y` into `out` (at least image-width long).
    ///
    /// `colsum` is scratch space, at least `self.width` long.
    #[allow(clippy::cast_possible_truncation)]
    fn upsample_row(&self, y: usize, h_max: usize, v_max: usize, out: &mut [i16], colsum: &mut [i32]) {
        let w = self.width;
        match self.method {
            Method::FullSize => {
                for (o, &s) in out.iter_mut().zip(self.row(y as isize)) {
                    *o = i16::from(s);
                }
            }
            Method::H2V1Box | Method::H2V2Box => {
                let r = if self.method == Method::H2V2Box { y / 2 } else { y };
                let input = self.row(r as isize);
                for (o, &s) in out.chunks_mut(2).zip(input) {
                    o.fill(i16::from(s));
                }
            }
            Method::H2V1Fancy => {
                // jdsample.c h2v1_fancy_upsample (downsampled_width > 2)
                let input = self.row(y as isize);
                let out = &mut out[..2 * w];
                let inp = |i: usize| i32::from(input[i]);
                out[0] = inp(0) as i16;
                out[1] = ((inp(0) * 3 + inp(1) + 2) >> 2) as i16;
                for (o, win) in out[2..2 * w - 2].chunks_exact_mut(2).zip(input.windows(3)) {
                    let v = i32::from(win[1]) * 3;
                    o[0] = ((v + i32::from(win[0]) + 1) >> 2) as i16;
                    o[1] = ((v + i32::from(win[2]) + 2) >> 2) as i16;
                }
                out[2 * w - 2] = ((inp(w - 1) * 3 + inp(w - 2) + 1) >> 2) as i16;
                out[2 * w - 1] = inp(w - 1) as i16;
            }
            Method::H1V2Fancy => {
                // jdsample.c h1v2_fancy_upsample: the nearer row weighs 3, the other 1; bias 1
                // for the upper output row of a pair (context row above), 2 for the lower.
                let r = (y / 2) as isize;
                let (near, far, bias) = if y % 2 == 0 {
                    (self.row(r), self.row(r - 1), 1)
                } else {
                    (self.row(r), self.row(r + 1), 2)
                };
                for ((o, &a), &b) in out.iter_mut().zip(near).zip(far) {
                    *o = ((i32::from(a) * 3 + i32::from(b) + bias) >> 2) as i16;
                }
            }
            Method::H2V2Fancy => {
                // jdsample.c h2v2_fancy_upsample (downsampled_width > 2): column sums
                // 3 * nearer row + further row, kept unrounded, then the same 3:1 horizontally
                // with biases 8 (left output of a pair) and 7 (right output), >> 4.
                let r = (y / 2) as isize;
                let near = self.row(r);
                let far = if y % 2 == 0 { self.row(r - 1) } else { self.row(r + 1) };
                let colsum = &mut colsum[..w];
                for ((c, &a), &b) in colsum.iter_mut().zip(near).zip(far) {
                    *c = i32::from(a) * 3 + i32::from(b);
                }
                let out = &mut out[..2 * w];
                out[0] = ((colsum[0] * 4 + 8) >> 4) as i16;
                out[1] = ((colsum[0] * 3 + colsum[1] + 7) >> 4) as i16;
                for (o, win) in out[2..2 * w - 2].chunks_exact_mut(2).zip(colsum.windows(3)) {
                    let this = win[1] * 3;
                    o[0] = ((this + win[0] + 8) >> 4) as i16;
                    o[1] = ((this + win[2] + 7) >> 4) as i16;
                }
                out[2 * w - 2] = ((colsum[w - 1] * 3 + colsum[w - 2] + 8) >> 4) as i16;
                out[2 * w - 1] = ((colsum[w - 1] * 4 + 7) >> 4) as i16;
            }
            Method::Int { h, v } => {
                let input = self.row((y / v) as isize);
                for (o, &s) in out.chunks_mut(h).zip(input) {
                    o.fill(i16::from(s));
                }
            }
            Method::Nearest => {
                let input = self.row((y * self.v_samp / v_max) as isize);
                for (x, o) in out.iter_mut().enumerate() {
                    let sx = (x * self.h_samp / h_max).min(w - 1);
                    *o = i16::from(input[sx]);
                }
            }
        }
    }
}

/// One row of jdcolor.c `ycc_rgb_convert` into `N`-byte pixels (alpha 255 when `N == 4`).
#[inline(always)]
fn ycc_row<const N: usize, const BGR: bool>(y: &[i16], cb: &[i16], cr: &[i16], out: &mut [u8]) {
    for (((px, &y), &cb), &cr) in out.chunks_exact_mut(N).zip(y).zip(cb).zip(cr) {
        let [r, g, b] = ycc_to_rgb(y, cb, cr);
        if BGR {
            px[0] = b;
            px[2] = r;
        } else {
            px[0] = r;
            px[2] = b;
        }
        px[1] = g;
        if N == 4 {
            px[3] = 255;
        }
    }
}

/// jdsample.c `jinit_upsampler`'s choice, with `DCT_scaled_size == min_DCT_scaled_size` (no
/// scaling) and `do_fancy_upsampling == TRUE`.
fn choose_method(h_in: usize, v_in: usize, h_out: usize, v_out: usize, width: usize) -> Method {
    if h_in == h_out && v_in == v_out {
        Method::FullSize
    } else if h_in * 2 == h_out && v_in == v_out {
        if width > 2 {
            Method::H2V1Fancy
        } else {
            Method::H2V1Box
        }
    } else if h_in == h_out && v_in * 2 == v_out {
        Method::H1V2Fancy
    } else if h_in * 2 == h_out && v_in * 2 == v_out {
        if width > 2 {
            Method::H2V2Fancy
        } else {
            Method::H2V2Box
        }
    } else if h_in > 0 && v_in > 0 && h_out % h_in == 0 && v_out % v_in == 0 {
        Method::Int { h: h_out / h_in, v: v_out / v_in }
    } else {
        Method::Nearest
    }
}

impl<T: ZByteReaderTrait> JpegDecoder<T> {
    /// Whether post-processing goes through this module. The only exception is upstream's
    /// special case for converting vertically subsampled colour images to grayscale output,
    /// which changes the MCU row bookkeeping (`self.coeff`).
    pub(crate) fn use_libjpeg_post(&self) -> bool {
        self.coeff == 1
    }

    /// Called instead of upstream's per-MCU-row upsampling: copies MCU row `i` (of
    /// `mcu_height`) of every decoded component into its whole-image plane.
    pub(crate) fn stash_mcu_row(&mut self, i: usize, mcu_height: usize) {
        for (comp, plane) in self.components.iter().zip(self.lj_planes.iter_mut()) {
            let len = comp.raw_coeff.len();
            if !comp.needed || len == 0 {
                continue;
            }
            if i == 0 || plane.len() != len * mcu_height {
                // Rows that are never decoded (truncated data) stay mid-grey.
                *plane = vec![128; len * mcu_height];
            }
            if let Some(dst) = plane.get_mut(i * len..(i + 1) * len) {
                for (d, &s) in dst.iter_mut().zip(comp.raw_coeff.iter()) {
                    *d = s.clamp(0, 255) as u8;
                }
            }
        }
        self.lj_active = true;
    }

    /// Upsamples and colour converts the collected planes into `pixels` (`width * height *
    /// output components` bytes).
    pub(crate) fn libjpeg_output(&mut self, pixels: &mut [u8]) -> Result<(), DecodeErrors> {
        self.lj_active = false;
        let planes_data = core::mem::take(&mut self.lj_planes);

        let width = usize::from(self.info.width);
        let height = usize::from(self.info.height);
        let (h_max, v_max) = (self.h_max.max(1), self.v_max.max(1));
        let out_cs = self.options.jpeg_get_out_colorspace();
        let out_n = out_cs.num_components();
        if width == 0 || height == 0 {
            return Ok(());
        }

        let mut planes: [Option<Plane>; MAX_COMPONENTS] = [None, None, None, None];
        for ((comp, data), slot) in self.components.iter().zip(planes_data.iter()).zip(planes.iter_mut()) {
            if data.is_empty() {
                continue;
            }
            let stride = comp.width_stride;
            let (h_samp, v_samp) = (comp.horizontal_sample.max(1), comp.vertical_sample.max(1));
            let w = (width * h_samp).div_ceil(h_max);
            let h = (height * v_samp).div_ceil(v_max);
            if stride == 0 || w > stride || h * stride > data.len() || w == 0 || h == 0 {
                return Err(DecodeErrors::FormatStatic(
                    "Component plane smaller than its sampled size, corrupt image"
                ));
            }
            let method = choose_method(h_samp, v_samp, h_max, v_max, w);
            *slot = Some(Plane { data, stride, width: w, height: h, h_samp, v_samp, method });
        }

        // Upsampled rows, one per component; wide enough for 2 * width of a 2:1 component.
        let row_len = (width + 2 * h_max).max(16);
        let mut rows: [Vec<i16>; MAX_COMPONENTS] = core::array::from_fn(|_| vec![0i16; row_len]);
        let mut colsum = vec![0i32; row_len];

        let ycc_to_rgb_family = self.input_colorspace == ColorSpace::YCbCr
            && matches!(out_cs, ColorSpace::RGB | ColorSpace::RGBA | ColorSpace::BGR | ColorSpace::BGRA);

        for (y, out_row) in pixels.chunks_exact_mut(width * out_n).take(height).enumerate() {
            for (plane, row) in planes.iter().zip(rows.iter_mut()) {
                if let Some(p) = plane {
                    p.upsample_row(y, h_max, v_max, row, &mut colsum);
                }
            }
            if ycc_to_rgb_family {
                if planes[..3].iter().any(Option::is_none) {
                    return Err(DecodeErrors::FormatStatic("Missing colour component"));
                }
                let (yr, cb, cr) = (&rows[0][..width], &rows[1][..width], &rows[2][..width]);
                match out_cs {
                    ColorSpace::RGB => ycc_row::<3, false>(yr, cb, cr, out_row),
                    ColorSpace::RGBA => ycc_row::<4, false>(yr, cb, cr, out_row),
                    ColorSpace::BGR => ycc_row::<3, true>(yr, cb, cr, out_row),
                    _ => ycc_row::<4, true>(yr, cb, cr, out_row)
                }
            } else {
                let mut refs: [&[i16]; MAX_COMPONENTS] = [&[]; MAX_COMPONENTS];
                for ((r, row), plane) in refs.iter_mut().zip(rows.iter()).zip(planes.iter()) {
                    if plane.is_some() {
                        *r = &row[..width];
                    }
                }
                color_convert(
                    &refs,
                    self.color_convert_16,
                    self.input_colorspace,
                    out_cs,
                    out_row,
                    width,
                    width
                )?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn method_choice_matches_jdsample() {
        assert_eq!(choose_method(1, 1, 2, 2, 10), Method::H2V2Fancy);
        assert_eq!(choose_method(1, 1, 2, 2, 2), Method::H2V2Box);
        assert_eq!(choose_method(1, 1, 2, 1, 10), Method::H2V1Fancy);
        assert_eq!(choose_method(1, 1, 2, 1, 1), Method::H2V1Box);
        assert_eq!(choose_method(1, 1, 1, 2, 1), Method::H1V2Fancy);
        assert_eq!(choose_method(2, 2, 2, 2, 10), Method::FullSize);
        assert_eq!(choose_method(1, 1, 4, 1, 10), Method::Int { h: 4, v: 1 });
        assert_eq!(choose_method(2, 1, 2, 2, 10), Method::H1V2Fancy);
        assert_eq!(choose_method(2, 2, 4, 2, 10), Method::H2V1Fancy);
    }

    #[test]
    fn h2v2_fancy_rows() {
        // 3x2 plane, padded stride 8.
        let mut data = vec![0u8; 16];
        data[..3].copy_from_slice(&[10, 50, 90]);
        data[8..11].copy_from_slice(&[30, 70, 200]);
        let p = Plane { data: &data, stride: 8, width: 3, height: 2, h_samp: 1, v_samp: 1, method: Method::H2V2Fancy };
        let mut out = vec![0i16; 8];
        let mut cs_scratch = vec![0i32; 8];
        // output row 1: near = row 0, far = row 1.
        p.upsample_row(1, 2, 2, &mut out, &mut cs_scratch);
        let cs: Vec<i32> = (0..3).map(|i| i32::from(data[i]) * 3 + i32::from(data[8 + i])).collect();
        let want = [
            (cs[0] * 4 + 8) >> 4,
            (cs[0] * 3 + cs[1] + 7) >> 4,
            (cs[1] * 3 + cs[0] + 8) >> 4,
            (cs[1] * 3 + cs[2] + 7) >> 4,
            (cs[2] * 3 + cs[1] + 8) >> 4,
            (cs[2] * 4 + 7) >> 4
        ];
        assert_eq!(&out[..6], &want.map(|v| v as i16)[..]);
        // output row 0: the row above row 0 is row 0 itself.
        p.upsample_row(0, 2, 2, &mut out, &mut cs_scratch);
        assert_eq!(out[0], ((i32::from(data[0]) * 4 * 4 + 8) >> 4) as i16);
    }
}

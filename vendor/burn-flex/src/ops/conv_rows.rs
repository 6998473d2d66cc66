//! clip-burn patch: f32 2D convolutions on AVX-512 as row-major products (vendor/burn-flex/README.md).
//!
//! `x [B, C, 1, H, W] * w [O, C, 1, KH, KW]` (one group) is `w [O, C·KH·KW] · cols [C·KH·KW, P]`
//! with `cols` the patches in Caffe's im2col layout: one row per (input channel, kernel row,
//! kernel column), one column per output position, read straight from the NCHW input. Both
//! operands are then row-major as stored (the weight needs no reordering), which is the layout the
//! AVX-512 kernel of `matmul_avx512.rs` takes without packing, and a chunk of columns holding one
//! whole picture writes its output channels in place. Columns run over the pictures of a batch in
//! chunks of at most [`CHUNK`] elements of `cols`.
//!
//! Upstream's im2col (`conv3d_impl`) reorders the weight and the input on one thread at every
//! call, builds `[positions, C·KH·KW]` tiles of 512 positions (so a batch-1 picture of 14 x 14 or
//! 7 x 7 is one tile on one thread) and multiplies them through gemm, which packs both operands.

use alloc::vec;
use burn_backend::DType;
use burn_backend::ops::ConvOptions;
use burn_backend::ops::conv::calculate_conv_output_size;
use burn_std::{Bytes, Shape};
use rayon::prelude::*;

use super::conv_common::add_bias;
use super::matmul_avx512;
use crate::{FlexTensor, Layout};

/// Elements of `cols` built at a time: 8 MiB of f32.
const CHUNK: usize = 1 << 21;

/// The convolution when it is an f32 2D one of a single group on a CPU with AVX-512F (with the
/// padding at both ends equal, as upstream's output size assumes); `None` otherwise.
pub(crate) fn conv2d(x: &FlexTensor, weight: &FlexTensor, bias: Option<&FlexTensor>, options: &ConvOptions<3>) -> Option<FlexTensor> {
    let (x_shape, w_shape) = (x.layout().shape(), weight.layout().shape());
    if x.dtype() != DType::F32
        || weight.dtype() != DType::F32
        || bias.is_some_and(|b| b.dtype() != DType::F32)
        || options.groups != 1
        || x_shape[2] != 1
        || w_shape[2] != 1
        || options.padding_begin() != options.padding_end()
        || !matmul_avx512::available()
    {
        return None;
    }
    let x = x.to_contiguous();
    let weight = weight.to_contiguous();
    let (batch, channels, in_h, in_w) = (x_shape[0], x_shape[1], x_shape[3], x_shape[4]);
    let (out_channels, kh, kw) = (w_shape[0], w_shape[3], w_shape[4]);
    let [_, stride_h, stride_w] = options.stride;
    let [_, pad_h, pad_w] = options.padding_begin();
    let [_, dil_h, dil_w] = options.dilation;
    let out_h = calculate_conv_output_size(kh, stride_h, pad_h, dil_h, in_h);
    let out_w = calculate_conv_output_size(kw, stride_w, pad_w, dil_w, in_w);
    let positions = out_h * out_w;
    let depth = channels * kh * kw;
    let total = [batch, out_channels, positions].iter().try_fold(1usize, |a, &v| a.checked_mul(v)).expect("conv: output size overflows");
    let mut output = vec![0f32; total];
    let (xs, ws): (&[f32], &[f32]) = (x.storage(), weight.storage());
    // No output (no pictures, positions or channels): no chunk.
    let columns = if total == 0 { 0 } else { batch * positions };
    let chunk = (CHUNK / depth.max(1)).clamp(1, columns.max(1));
    let mut cols = vec![0f32; depth * chunk];
    let mut product = vec![0f32; if chunk == positions { 0 } else { out_channels * chunk }];
    let mut start = 0;
    while start < columns {
        let n = chunk.min(columns - start);
        let cols = &mut cols[..depth * n];
        // One row of `cols` per (channel, kernel row, kernel column): its value at each
        // (picture, output row, output column) of the chunk, 0 in the padding.
        cols.par_chunks_mut(n).enumerate().for_each(|(r, row)| {
            let (c, ki, kj) = (r / (kh * kw), r / kw % kh, r % kw);
            let mut col = start;
            let mut out = 0;
            while out < n {
                let (b, pos) = (col / positions, col % positions);
                let (oy, ox0) = (pos / out_w, pos % out_w);
                let run = (out_w - ox0).min(n - out);
                let dst = &mut row[out..out + run];
                let iy = (oy * stride_h + ki * dil_h) as isize - pad_h as isize;
                if iy < 0 || iy >= in_h as isize {
                    dst.fill(0.0);
                } else {
                    let src = &xs[(b * channels + c) * in_h * in_w + iy as usize * in_w..][..in_w];
                    // Output column ox reads input column ox * stride_w + offset: inside the
                    // picture for ox in [lo, hi), padding (0) on either side.
                    let offset = (kj * dil_w) as isize - pad_w as isize;
                    let lo = if offset >= 0 { 0 } else { (-offset as usize).div_ceil(stride_w) };
                    let hi = if (in_w as isize) <= offset { 0 } else { (in_w as isize - offset) as usize }.div_ceil(stride_w);
                    let (lo, hi) = (lo.clamp(ox0, ox0 + run) - ox0, hi.clamp(ox0, ox0 + run) - ox0);
                    dst[..lo].fill(0.0);
                    if lo < hi {
                        let first = ((ox0 + lo) * stride_w) as isize + offset;
                        if stride_w == 1 {
                            dst[lo..hi].copy_from_slice(&src[first as usize..][..hi - lo]);
                        } else {
                            for (d, s) in dst[lo..hi].iter_mut().zip(src[first as usize..].iter().step_by(stride_w)) {
                                *d = *s;
                            }
                        }
                    }
                    dst[hi.max(lo)..].fill(0.0);
                }
                col += run;
                out += run;
            }
        });
        // A chunk of one whole picture is its output channels, in place.
        let whole = n == positions && start % positions == 0;
        let dst = if whole { output[start * out_channels..].as_mut_ptr() } else { product.as_mut_ptr() };
        // SAFETY: AVX-512F is available (checked above); `ws` holds `out_channels` rows of `depth`,
        // `cols` `depth` rows of `n`, and `dst` has `out_channels * n` elements.
        unsafe { matmul_avx512::matmul(out_channels, n, depth, ws.as_ptr(), depth, cols.as_ptr(), n, dst, true) };
        if !whole {
            // Each (picture, channel) run of the chunk to its place in NCHW.
            let mut col = start;
            while col < start + n {
                let (b, pos) = (col / positions, col % positions);
                let run = (positions - pos).min(start + n - col);
                for o in 0..out_channels {
                    let src = &product[o * n + (col - start)..][..run];
                    output[(b * out_channels + o) * positions + pos..][..run].copy_from_slice(src);
                }
                col += run;
            }
        }
        start += n;
    }
    if let Some(bias) = bias {
        let bias = bias.to_contiguous();
        add_bias(&mut output, bias.storage::<f32>(), batch, out_channels, positions);
    }
    Some(FlexTensor::new(Bytes::from_elems(output), Layout::contiguous(Shape::from(vec![batch, out_channels, 1, out_h, out_w])), DType::F32))
}

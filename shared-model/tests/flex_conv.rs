//! The CPU backend's f32 2D convolution (vendor/burn-flex/src/ops/conv_rows.rs on a CPU with
//! AVX-512: im2col in rows read from NCHW, one row-major product per chunk of output positions;
//! upstream's paths otherwise) against the convolution computed in f64 from its definition:
//! kernels 3x3 and 7x7 (a ResNet stem's and its blocks'), strides 1 and 2, padding 0 and 1,
//! dilation 2, bias or none, one picture (its output written in place), several small pictures
//! in one chunk, and chunks that cut pictures (more than the 2 Mi-element chunk of columns).
//! Small integer inputs make every product and sum exact in f32: the results must be equal.

use burn::prelude::*;
use burn::tensor::module::conv2d;
use burn::tensor::ops::ConvOptions;

fn ints(len: usize, seed: usize) -> Vec<f32> {
    (0..len).map(|i| ((i * 7 + seed * 13) % 17) as f32 - 8.0).collect()
}

/// The convolution's definition in f64: `x [b, c, h, w]`, `w [o, c, kh, kw]`.
#[allow(clippy::too_many_arguments)]
fn reference(x: &[f32], w: &[f32], bias: Option<&[f32]>, [b, c, h, wd]: [usize; 4], [o, kh, kw]: [usize; 3], stride: usize, pad: usize, dil: usize) -> (Vec<f32>, [usize; 4]) {
    let out_h = (h + 2 * pad - dil * (kh - 1) - 1) / stride + 1;
    let out_w = (wd + 2 * pad - dil * (kw - 1) - 1) / stride + 1;
    let mut out = vec![0f32; b * o * out_h * out_w];
    for n in 0..b {
        for oc in 0..o {
            for oy in 0..out_h {
                for ox in 0..out_w {
                    let mut acc = bias.map_or(0.0, |bs| bs[oc] as f64);
                    for ic in 0..c {
                        for ki in 0..kh {
                            for kj in 0..kw {
                                let iy = (oy * stride + ki * dil) as isize - pad as isize;
                                let ix = (ox * stride + kj * dil) as isize - pad as isize;
                                if iy < 0 || ix < 0 || iy >= h as isize || ix >= wd as isize {
                                    continue;
                                }
                                let xv = x[((n * c + ic) * h + iy as usize) * wd + ix as usize] as f64;
                                acc += xv * w[((oc * c + ic) * kh + ki) * kw + kj] as f64;
                            }
                        }
                    }
                    out[((n * o + oc) * out_h + oy) * out_w + ox] = acc as f32;
                }
            }
        }
    }
    (out, [b, o, out_h, out_w])
}

#[allow(clippy::too_many_arguments)]
fn check(b: usize, c: usize, h: usize, wd: usize, o: usize, k: usize, stride: usize, pad: usize, dil: usize, with_bias: bool) {
    let device = Device::flex();
    let (xs, ws, bs) = (ints(b * c * h * wd, b + c), ints(o * c * k * k, o + k), ints(o, 3));
    let bias = with_bias.then_some(bs.as_slice());
    let (want, shape) = reference(&xs, &ws, bias, [b, c, h, wd], [o, k, k], stride, pad, dil);
    let x = Tensor::<4>::from_data(TensorData::new(xs.clone(), [b, c, h, wd]), &device);
    let w = Tensor::<4>::from_data(TensorData::new(ws.clone(), [o, c, k, k]), &device);
    let bias = with_bias.then(|| Tensor::<1>::from_data(TensorData::new(bs.clone(), [o]), &device));
    let got = conv2d(x, w, bias, ConvOptions::new([stride, stride], [pad, pad], [dil, dil], 1));
    assert_eq!(got.dims(), shape, "{b}x{c}x{h}x{wd} * {o}x{k}x{k} stride {stride} pad {pad} dilation {dil}");
    let got = got.into_data().convert::<f32>().try_into_vec::<f32>().unwrap();
    assert!(got == want, "{b}x{c}x{h}x{wd} * {o}x{k}x{k} stride {stride} pad {pad} dilation {dil} bias {with_bias}: differs");
}

#[test]
fn conv2d_is_exact_for_strides_padding_dilation_and_bias() {
    for (stride, pad, dil) in [(1, 1, 1), (2, 1, 1), (1, 0, 1), (2, 0, 1), (1, 2, 2)] {
        for with_bias in [false, true] {
            // One picture: written in place.
            check(1, 5, 9, 11, 7, 3, stride, pad, dil, with_bias);
            // Several small pictures in one chunk of columns.
            check(4, 6, 7, 7, 70, 3, stride, pad, dil, with_bias);
        }
    }
    // A ResNet stem's first convolution (3 channels in, a 7x7 kernel, stride 2, padding 3; more
    // than 16 out, which upstream's small-channel path would take).
    check(2, 3, 32, 30, 24, 7, 2, 3, 1, true);
}

/// 64 channels x 3 x 3 = 576 rows of columns: a chunk of 2 Mi elements holds 3640 output
/// positions, so 3 pictures of 40 x 40 take two chunks and the first cuts the third picture.
#[test]
fn conv2d_is_exact_when_chunks_cut_pictures() {
    check(3, 64, 40, 40, 8, 3, 1, 1, 1, true);
    // And chunks that are exactly one picture each (but not the first): 56 x 65 = 3640 positions.
    check(2, 64, 56, 65, 5, 3, 1, 1, 1, false);
}

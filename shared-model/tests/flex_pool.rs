//! The CPU backend's 2D average pooling against its definition: windows without padding (the
//! path vendor/burn-flex/src/ops/pool.rs takes for ModifiedResNet's AvgPool2d: kernel 2, stride
//! 2), other kernels and strides, odd sizes (the last row and column left out), several pictures
//! and channels, and with padding (upstream's path). Small integer inputs make every window's sum
//! exact in f32, so each output must equal that sum divided by the window's count in f32.

use burn::prelude::*;
use burn::tensor::module::avg_pool2d;
use burn::tensor::ops::AvgPoolOptions;

fn check(b: usize, c: usize, h: usize, w: usize, k: usize, stride: usize, pad: usize) {
    let device = Device::flex();
    let xs: Vec<f32> = (0..b * c * h * w).map(|i| ((i * 7 + 3) % 17) as f32 - 8.0).collect();
    let (out_h, out_w) = ((h + 2 * pad - k) / stride + 1, (w + 2 * pad - k) / stride + 1);
    let mut want = Vec::new();
    for plane in xs.chunks(h * w) {
        for oy in 0..out_h {
            for ox in 0..out_w {
                let mut sum = 0f64;
                for ky in 0..k {
                    for kx in 0..k {
                        let (y, x) = ((oy * stride + ky) as isize - pad as isize, (ox * stride + kx) as isize - pad as isize);
                        if y >= 0 && x >= 0 && (y as usize) < h && (x as usize) < w {
                            sum += plane[y as usize * w + x as usize] as f64;
                        }
                    }
                }
                // PyTorch's default (count_include_pad): the padded window's area.
                want.push(sum as f32 / (k * k) as f32);
            }
        }
    }
    let x = Tensor::<4>::from_data(TensorData::new(xs, [b, c, h, w]), &device);
    let got = avg_pool2d(x, AvgPoolOptions::new([k, k]).with_stride([stride, stride]).with_padding([pad, pad]));
    assert_eq!(got.dims(), [b, c, out_h, out_w], "{b}x{c}x{h}x{w} kernel {k} stride {stride} pad {pad}");
    let got = got.into_data().convert::<f32>().try_into_vec::<f32>().unwrap();
    assert!(got == want, "{b}x{c}x{h}x{w} kernel {k} stride {stride} pad {pad}: {:?}... against {:?}...", &got[..4.min(got.len())], &want[..4.min(want.len())]);
}

#[test]
fn avg_pool2d_matches_its_definition() {
    for (h, w) in [(8, 8), (7, 9), (2, 2)] {
        check(2, 3, h, w, 2, 2, 0);
    }
    check(1, 4, 9, 7, 3, 2, 0);
    check(1, 2, 6, 5, 2, 1, 0);
    check(3, 64, 56, 56, 2, 2, 0);
    check(1, 3, 7, 7, 3, 2, 1);
}

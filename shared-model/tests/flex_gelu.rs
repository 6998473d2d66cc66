//! The CPU backend's GELU (vendor/burn-flex/src/ops/gelu.rs: a vectorised erf, chunks across
//! threads) against the exact GELU in f64: forward and backward, in place and into a new
//! buffer, on the serial path (short tensors) and the threaded one, contiguous and transposed;
//! and bit for bit against the patched kernel's scalar formula, so that the tensor ops are known
//! to run it (upstream's `libm::erff` path would pass the accuracy checks too).

use burn::prelude::*;
use burn::tensor::activation::gelu;
use clip_model::device;

const SQRT_2: f64 = std::f64::consts::SQRT_2;

fn exact_gelu(x: f64) -> f64 {
    0.5 * x * (1.0 + libm::erf(x / SQRT_2))
}

fn exact_gelu_grad(x: f64) -> f64 {
    let pdf = (-0.5 * x * x).exp() / (2.0 * std::f64::consts::PI).sqrt();
    0.5 * (1.0 + libm::erf(x / SQRT_2)) + x * pdf
}

/// `n` values spread over [-12, 12], denser near 0 (where GELU bends), with exact zeros,
/// tiny and huge magnitudes mixed in.
fn inputs(n: usize) -> Vec<f32> {
    (0..n)
        .map(|i| match i % 97 {
            0 => 0.0,
            1 => -0.0,
            2 => 1e-30,
            3 => -3e-8,
            4 => 90.0,
            5 => -90.0,
            6 => 1e6,
            _ => {
                let u = (i as f64 * 0.618_033_988_749_895).fract() * 2.0 - 1.0;
                (u * u * u * 12.0) as f32
            }
        })
        .collect()
}

/// Every value within `tolerance * max(1, |x|)` of the exact one (the error of the erf
/// approximation, absolute, grows with GELU's factor x; f32 rounding of large outputs too);
/// returns the largest error so measured.
fn check(what: &str, xs: &[f32], ours: &[f32], exact: impl Fn(f64) -> f64, tolerance: f64) {
    assert_eq!(xs.len(), ours.len(), "{what}: length");
    let mut worst = (0.0f64, 0.0f32);
    for (&x, &y) in xs.iter().zip(ours) {
        let reference = exact(x as f64);
        let err = (y as f64 - reference).abs() / (x.abs() as f64).max(1.0);
        assert!(err <= tolerance, "{what}: gelu at {x}: {y}, exact {reference} (error {err:e} > {tolerance:e})");
        if err > worst.0 {
            worst = (err, x);
        }
    }
    eprintln!("{what}: {} values, largest scaled error {:e} at x = {}", xs.len(), worst.0, worst.1);
}

fn cpu() -> Device {
    device::parse("cpu").expect("the CPU device")
}

#[test]
fn gelu_matches_the_exact_gelu_serial_and_threaded() {
    let device = cpu();
    // 1000: one chunk on the calling thread; 200_000: rayon's chunks.
    for n in [1000, 200_000] {
        let xs = inputs(n);
        let x = Tensor::<1>::from_floats(xs.as_slice(), &device);
        // The tensor's buffer is shared with `x`: into a new buffer.
        let shared: Vec<f32> = gelu(x.clone()).into_data().try_to_vec::<f32>().unwrap();
        check(&format!("gelu, new buffer, n = {n}"), &xs, &shared, exact_gelu, 3e-7);
        // `x` is gone: in place.
        let owned: Vec<f32> = gelu(x).into_data().try_to_vec::<f32>().unwrap();
        assert_eq!(shared, owned, "in place and into a new buffer differ");
    }
}

#[test]
fn gelu_of_a_transposed_view_is_elementwise() {
    let device = cpu();
    let xs = inputs(300 * 200);
    let x = Tensor::<1>::from_floats(xs.as_slice(), &device).reshape([300, 200]);
    let ours: Vec<f32> = gelu(x.clone().transpose()).into_data().try_to_vec::<f32>().unwrap();
    let transposed: Vec<f32> = x.transpose().into_data().try_to_vec::<f32>().unwrap();
    check("gelu of a transposed view", &transposed, &ours, exact_gelu, 3e-7);
}

#[test]
fn gelu_gradient_matches_the_exact_derivative() {
    let device = cpu().autodiff();
    for n in [1000, 200_000] {
        let xs = inputs(n);
        // Upstream gradient: weights in [0.5, 1.5), so each input's gradient is weight * gelu'(x).
        let ws: Vec<f32> = (0..n).map(|i| 0.5 + (i as f32 * 0.381_966).fract()).collect();
        let x = Tensor::<1>::from_floats(xs.as_slice(), &device).require_grad();
        let w = Tensor::<1>::from_floats(ws.as_slice(), &device);
        let grads = (gelu(x.clone()) * w).sum().backward();
        let dx: Vec<f32> = x.grad(&grads).expect("x's gradient").into_data().try_to_vec::<f32>().unwrap();
        let per_weight: Vec<f32> = dx.iter().zip(&ws).map(|(g, w)| g / w).collect();
        check(&format!("gelu gradient, n = {n}"), &xs, &per_weight, exact_gelu_grad, 3e-7);
    }
}

#[test]
fn the_tensor_ops_run_the_patched_kernel() {
    let xs = inputs(100_000);
    let ws: Vec<f32> = (0..xs.len()).map(|i| 0.5 + (i as f32 * 0.381_966).fract()).collect();
    let device = cpu().autodiff();
    let x = Tensor::<1>::from_floats(xs.as_slice(), &device).require_grad();
    let w = Tensor::<1>::from_floats(ws.as_slice(), &device);
    let y = gelu(x.clone());
    let grads = (y.clone() * w).sum().backward();
    let y: Vec<f32> = y.into_data().try_to_vec::<f32>().unwrap();
    let dx: Vec<f32> = x.grad(&grads).expect("x's gradient").into_data().try_to_vec::<f32>().unwrap();
    for i in 0..xs.len() {
        let (fy, fdx) = (burn_flex::ops::gelu::gelu(xs[i]), burn_flex::ops::gelu::gelu_grad(xs[i], ws[i]));
        assert!(
            fy.to_bits() == y[i].to_bits() && fdx.to_bits() == dx[i].to_bits(),
            "gelu({}) = {} with gradient {}; the patched kernel's formula gives {} and {}",
            xs[i], y[i], dx[i], fy, fdx
        );
    }
}

#[test]
fn gelu_keeps_nan() {
    let device = cpu();
    let x = Tensor::<1>::from_floats([f32::NAN, 1.0], &device);
    let y: Vec<f32> = gelu(x).into_data().try_to_vec::<f32>().unwrap();
    assert!(y[0].is_nan(), "gelu(NaN) = {}", y[0]);
}

//! `clip_model::layer_norm`'s hand-written backward pass against autodiff through burn's composed
//! LayerNorm: output and the gradients of x, gamma and beta. Runs on `CLIP_TEST_DEVICE` (default
//! `cpu`: f32 and bf16; `wgpu`, where scripts/test.sh runs it on lavapipe: f32, through burn's
//! fusion, which lavapipe's missing bf16 rules out for the other).

use burn::module::Param;
use burn::nn::LayerNorm;
use burn::prelude::*;
use burn::tensor::{FloatDType, Tolerance};
use clip_model::{device, layer_norm};

/// Deterministic values in about [-1.5, 2.5] (a hash of index and seed), shape `[a, b, c]`.
fn values(shape: [usize; 3], seed: u64, device: &Device) -> Tensor<3> {
    let n = shape.iter().product::<usize>() as u64;
    let values: Vec<f32> = (0..n)
        .map(|i| {
            let h = (i + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ seed.wrapping_mul(0xD1B5_4A32_D192_ED03);
            (h >> 40) as f32 / (1u64 << 24) as f32 * 4.0 - 1.5
        })
        .collect();
    Tensor::<1>::from_floats(values.as_slice(), device).reshape(shape)
}

fn ln_with(gamma: Tensor<1>, beta: Tensor<1>) -> LayerNorm {
    let mut ln = layer_norm::init(gamma.dims()[0], &gamma.device());
    ln.gamma = Param::from_tensor(gamma);
    ln.beta = Some(Param::from_tensor(beta));
    ln
}

#[test]
fn gradients_match_burns_composed_layer_norm() {
    let name = std::env::var("CLIP_TEST_DEVICE").unwrap_or_else(|_| "cpu".into());
    let device = device::parse(&name).expect("CLIP_TEST_DEVICE").autodiff();
    let dtypes: &[FloatDType] = if name == "cpu" { &[FloatDType::F32, FloatDType::BF16] } else { &[FloatDType::F32] };
    for &dtype in dtypes {
        let x0 = values([3, 4, 24], 4, &device).cast(dtype);
        let gamma0 = values([1, 1, 24], 5, &device).reshape([24]).cast(dtype);
        let beta0 = values([1, 1, 24], 6, &device).reshape([24]).cast(dtype);
        // A loss that weighs every output differently, so no gradient is trivially zero.
        let weights = values([3, 4, 24], 7, &device);
        let run = |hand_written: bool| {
            let x = x0.clone().detach().require_grad();
            let ln = ln_with(gamma0.clone().detach().require_grad(), beta0.clone().detach().require_grad());
            let y = if hand_written { layer_norm::forward(&ln, x.clone()) } else { ln.forward(x.clone()) };
            assert_eq!(y.dtype(), x.dtype());
            let loss = (y.clone().cast(FloatDType::F32) * weights.clone()).sum();
            let grads = loss.backward();
            let dx = x.grad(&grads).expect("x gradient");
            assert_eq!(dx.dtype(), x.dtype());
            let grad = |t: Tensor<1>| t.grad(&grads).expect("parameter gradient").cast(FloatDType::F32).into_data();
            [
                y.cast(FloatDType::F32).into_data(),
                dx.cast(FloatDType::F32).into_data(),
                grad(ln.gamma.val()),
                grad(ln.beta.as_ref().expect("beta").val()),
            ]
        };
        let (ours, theirs) = (run(true), run(false));
        let tolerance = if dtype == FloatDType::F32 {
            let tol = if name == "cpu" { 1e-4 } else { 1e-3 };
            Tolerance::relative(tol).set_absolute(tol / 10.0)
        } else {
            Tolerance::relative(2e-2).set_absolute(5e-2)
        };
        for (name, (a, b)) in ["y", "dx", "dgamma", "dbeta"].iter().zip(ours.iter().zip(theirs.iter())) {
            eprintln!("{dtype:?} {name}");
            a.assert_approx_eq::<f32>(b, tolerance);
        }
    }
}

//! The hand-written backward passes (`clip_model::layer_norm`, `clip_model::attention`,
//! `clip_model::batch_norm`) against
//! autodiff through the composition they replace: outputs and every input's gradient. Runs on
//! `CLIP_TEST_DEVICE` (default `cpu`: f32 and bf16; `wgpu`, where scripts/test.sh runs it on
//! lavapipe: f32, through burn's fusion; lavapipe has no bf16).

use burn::module::Param;
use burn::nn::{BatchNormConfig, LayerNorm};
use burn::prelude::*;
use burn::tensor::{FloatDType, TensorData, Tolerance};
use burn::tensor::activation::softmax;
use clip_model::{attention, batch_norm, device, layer_norm};

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

/// The autodiff device `CLIP_TEST_DEVICE` names and the dtypes to check on it.
fn device_and_dtypes() -> (Device, String, Vec<FloatDType>) {
    let name = std::env::var("CLIP_TEST_DEVICE").unwrap_or_else(|_| "cpu".into());
    let device = device::parse(&name).expect("CLIP_TEST_DEVICE").autodiff();
    let dtypes = if name == "cpu" { vec![FloatDType::F32, FloatDType::BF16] } else { vec![FloatDType::F32] };
    (device, name, dtypes)
}

/// Hand-written against composed: f32 to 1e-4 relative on the CPU (1e-3 on a GPU backend), bf16
/// (both rounding differently at every step) to 2e-2.
fn assert_close(what: &str, dtype: FloatDType, device: &str, ours: &[TensorData], theirs: &[TensorData]) {
    let tolerance = if dtype == FloatDType::F32 {
        let tol = if device == "cpu" { 1e-4 } else { 1e-3 };
        Tolerance::relative(tol).set_absolute(tol / 10.0)
    } else {
        Tolerance::relative(2e-2).set_absolute(5e-2)
    };
    for (i, (a, b)) in ours.iter().zip(theirs).enumerate() {
        eprintln!("{what} {dtype:?}: output/gradient {i}");
        a.assert_approx_eq::<f32>(b, tolerance);
    }
}

#[test]
fn layer_norm_gradients_match_burns_composed_layer_norm() {
    let (device, name, dtypes) = device_and_dtypes();
    for dtype in dtypes {
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
        assert_close("layer_norm: y, dx, dgamma, dbeta", dtype, &name, &run(true), &run(false));
    }
}

/// Multi-head attention composed from tensor ops (what autodiff differentiates op by op).
fn composed_attention(q: Tensor<3>, k: Tensor<3>, v: Tensor<3>, heads: usize, causal: bool) -> Tensor<3> {
    let [b, tq, d] = q.dims();
    let tk = k.dims()[1];
    let split = |x: Tensor<3>, t: usize| x.reshape([b, t, heads, d / heads]).swap_dims(1, 2);
    let scores = split(q, tq).matmul(split(k, tk).swap_dims(2, 3)) / ((d / heads) as f64).sqrt();
    let scores = if causal {
        let future = Tensor::<2, Bool>::tril_mask([tq, tk], 0, &scores.device()).unsqueeze::<4>();
        scores.mask_fill(future, f32::NEG_INFINITY)
    } else {
        scores
    };
    softmax(scores, 3).matmul(split(v, tk)).swap_dims(1, 2).reshape([b, tq, d])
}

/// `self_attention` over a packed q;k;v (causal and not) and `multi_head_attention` with one
/// query over 7 keys (the ResNet's attention pool): outputs and input gradients.
#[test]
fn attention_gradients_match_the_composition() {
    let (device, name, dtypes) = device_and_dtypes();
    let (heads, d) = (3, 12);
    for dtype in dtypes {
        let weights = values([2, 5, d], 9, &device);
        let loss = |y: Tensor<3>| {
            let t = y.dims()[1];
            (y.cast(FloatDType::F32) * weights.clone().narrow(1, 0, t)).sum()
        };
        for causal in [false, true] {
            let qkv0 = values([2, 5, 3 * d], 8, &device).cast(dtype);
            let run = |hand_written: bool| {
                let qkv = qkv0.clone().detach().require_grad();
                let y = if hand_written {
                    let mask = causal.then(|| attention::causal_mask(5, &qkv.device()));
                    attention::self_attention(qkv.clone(), heads, mask.as_ref())
                } else {
                    let part = |i: usize| qkv.clone().narrow(2, i * d, d);
                    composed_attention(part(0), part(1), part(2), heads, causal)
                };
                assert_eq!(y.dtype(), qkv.dtype());
                let grads = loss(y.clone()).backward();
                let dqkv = qkv.grad(&grads).expect("qkv gradient");
                [y.cast(FloatDType::F32).into_data(), dqkv.cast(FloatDType::F32).into_data()]
            };
            assert_close(&format!("self_attention (causal {causal}): y, dqkv"), dtype, &name, &run(true), &run(false));
        }
        let inputs = [values([2, 1, d], 10, &device), values([2, 7, d], 11, &device), values([2, 7, d], 12, &device)]
            .map(|x| x.cast(dtype));
        let run = |hand_written: bool| {
            let [q, k, v] = inputs.clone().map(|x| x.detach().require_grad());
            let y = if hand_written {
                attention::multi_head_attention(q.clone(), k.clone(), v.clone(), heads)
            } else {
                composed_attention(q.clone(), k.clone(), v.clone(), heads, false)
            };
            let grads = loss(y.clone()).backward();
            let mut out = vec![y.cast(FloatDType::F32).into_data()];
            out.extend([q, k, v].map(|x| x.grad(&grads).expect("gradient").cast(FloatDType::F32).into_data()));
            out
        };
        assert_close("multi_head_attention: y, dq, dk, dv", dtype, &name, &run(true), &run(false));
    }
}

/// BatchNorm in training mode (`batch_norm::forward`: statistics in f32, its own backward pass)
/// against burn's BatchNorm on an f32 copy of the input (how the ResNet tower ran it before):
/// output, input gradient (in the input's dtype), gamma and beta gradients (f32 parameters, as
/// in every tower), and the running mean.
#[test]
fn batch_norm_gradients_match_burns_batch_norm() {
    let (device, name, dtypes) = device_and_dtypes();
    let (b, c, h, w) = (3, 4, 5, 6);
    for dtype in dtypes {
        let x0 = values([b, c, h * w], 13, &device).reshape([b, c, h, w]).cast(dtype);
        let weights = values([b, c, h * w], 14, &device).reshape([b, c, h, w]);
        let run = |hand_written: bool| {
            let x = x0.clone().detach().require_grad();
            let mut bn = BatchNormConfig::new(c).init(&device);
            bn.gamma = Param::from_tensor(values([1, 1, c], 15, &device).reshape([c]).detach().require_grad());
            bn.beta = Param::from_tensor(values([1, 1, c], 16, &device).reshape([c]).detach().require_grad());
            let y = if hand_written {
                batch_norm::forward(&bn, x.clone())
            } else {
                bn.forward(x.clone().cast(FloatDType::F32)).cast(dtype)
            };
            assert_eq!(y.dtype(), x.dtype());
            let grads = (y.clone().cast(FloatDType::F32) * weights.clone()).sum().backward();
            let dx = x.grad(&grads).expect("x gradient");
            assert_eq!(dx.dtype(), x.dtype());
            let grad = |t: Tensor<1>| t.grad(&grads).expect("parameter gradient").into_data();
            [
                y.cast(FloatDType::F32).into_data(),
                dx.cast(FloatDType::F32).into_data(),
                grad(bn.gamma.val()),
                grad(bn.beta.val()),
                bn.running_mean.value_sync().into_data(),
            ]
        };
        assert_close("batch_norm: y, dx, dgamma, dbeta, running mean", dtype, &name, &run(true), &run(false));
    }
}

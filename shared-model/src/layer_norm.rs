//! LayerNorm over the last axis with a hand-written backward pass.
//!
//! burn's `LayerNorm` composes its forward from ~9 tensor ops, and autodiff differentiates each of
//! them: a training step ran ~12 kernels per LayerNorm in the backward pass (four row reductions,
//! two column sums, the rest element-wise), 51 LayerNorms per ViT-B-32 step. The closed form
//! (`xhat = (x - mean) / sqrt(var + eps)`, `g' = g * gamma`):
//!
//! - `dx = (g' - mean(g') - xhat * mean(g' * xhat)) / sqrt(var + eps)` (two row reductions),
//! - `dgamma = sum over rows of g * xhat`, `dbeta = sum over rows of g` (two column sums),
//!
//! with only `x` (alive anyway as the residual stream), the row means and the row denominators
//! kept for it, where the composition kept its intermediates. Statistics and gradients are
//! computed in f32 for f16/bf16 inputs (as burn's module widens them), results returned in the
//! inputs' dtypes.
//!
//! Without autodiff (inference) the op is burn's own `layer_norm` (Flex has a fused kernel for it);
//! the hand-written backward is registered on `Autodiff<B>` through burn's backend-extension API.

use burn::backend::tensor::FloatTensor;
use burn::backend::{backend_extension, Backend, Dispatch, TensorMetadata};
use burn::nn::{LayerNorm, LayerNormConfig};
use burn::prelude::*;
use burn::tensor::{DType, FloatDType};

/// open_clip's LayerNorm eps (PyTorch's default), in every CLIP model.
pub const EPSILON: f64 = 1e-5;

/// LayerNorm with open_clip's eps.
pub fn init(width: usize, device: &Device) -> LayerNorm {
    LayerNormConfig::new(width).with_epsilon(EPSILON).init(device)
}

/// `ln` (made by [`init`]) applied over the last axis of `x`: what `LayerNorm::forward` computes,
/// with the hand-written backward pass under autodiff.
pub fn forward<const D: usize>(ln: &LayerNorm, x: Tensor<D>) -> Tensor<D> {
    let beta = match &ln.beta {
        Some(beta) => beta.val(),
        None => ln.gamma.val().zeros_like(),
    };
    let out = <Dispatch as LayerNormBackend>::clip_layer_norm(
        x.into_dispatch(),
        ln.gamma.val().into_dispatch(),
        beta.into_dispatch(),
        EPSILON,
    );
    Tensor::from_dispatch(out)
}

#[backend_extension(
    Flex: cfg(feature = "flex"),
    Cube: cfg(any(feature = "wgpu", feature = "webgpu", feature = "cuda")),
    Fusion: cfg(any(feature = "wgpu", feature = "webgpu", feature = "cuda")),
    Autodiff: cfg(not(target_family = "wasm"))
)]
pub trait LayerNormBackend: Backend {
    /// `(x - mean) / sqrt(var + epsilon) * gamma + beta` over the last axis of `x`.
    #[fusion(default)]
    fn clip_layer_norm(x: FloatTensor<Self>, gamma: FloatTensor<Self>, beta: FloatTensor<Self>, epsilon: f64) -> FloatTensor<Self> {
        let dtype = x.dtype();
        match wide(dtype) {
            Some(wide) => Self::float_cast(
                Self::layer_norm(
                    Self::float_cast(x, wide),
                    Self::float_cast(gamma, wide),
                    Some(Self::float_cast(beta, wide)),
                    epsilon,
                ),
                float_dtype(dtype),
            ),
            None => Self::layer_norm(x, gamma, Some(beta), epsilon),
        }
    }
}

#[cfg(feature = "flex")]
impl LayerNormBackend for burn::backend::Flex {}

#[cfg(any(feature = "wgpu", feature = "webgpu", feature = "cuda"))]
impl LayerNormBackend for burn_cubecl::CubeBackend {}

/// The dtype statistics are accumulated in: f32 for f16/bf16, None where the input's own will do.
fn wide(dtype: DType) -> Option<FloatDType> {
    matches!(dtype, DType::F16 | DType::BF16).then_some(FloatDType::F32)
}

fn float_dtype(dtype: DType) -> FloatDType {
    match dtype {
        DType::F16 => FloatDType::F16,
        DType::BF16 => FloatDType::BF16,
        DType::F64 => FloatDType::F64,
        _ => FloatDType::F32,
    }
}

/// `x` in the accumulation dtype.
fn widened<B: Backend>(x: FloatTensor<B>) -> FloatTensor<B> {
    match wide(x.dtype()) {
        Some(wide) => B::float_cast(x, wide),
        None => x,
    }
}

/// `x` back in `dtype` (a no-op when it already is).
fn narrowed<B: Backend>(x: FloatTensor<B>, dtype: DType) -> FloatTensor<B> {
    if x.dtype() == dtype { x } else { B::float_cast(x, float_dtype(dtype)) }
}

/// A `[d]` parameter shaped to broadcast over the last axis of a rank-`rank` tensor.
fn along_last<B: Backend>(p: FloatTensor<B>, rank: usize) -> FloatTensor<B> {
    let d = p.shape().num_elements();
    let mut dims = vec![1; rank];
    dims[rank - 1] = d;
    B::float_reshape(p, Shape::from(dims))
}

/// The forward pass: the output (in x's dtype), the row means and the row denominators
/// `sqrt(var + eps)` (both in the accumulation dtype, last axis kept as 1).
fn forward_parts<B: Backend>(
    x: FloatTensor<B>,
    gamma: FloatTensor<B>,
    beta: FloatTensor<B>,
    epsilon: f64,
) -> (FloatTensor<B>, FloatTensor<B>, FloatTensor<B>) {
    let dtype = x.dtype();
    let rank = x.shape().num_dims();
    let x = widened::<B>(x);
    let mean = B::float_mean_dim(x.clone(), rank - 1);
    let centered = B::float_sub(x, mean.clone());
    let var = B::float_mean_dim(B::float_mul(centered.clone(), centered.clone()), rank - 1);
    let denom = B::float_sqrt(B::float_add_scalar(var, epsilon.into()));
    let xhat = B::float_div(centered, denom.clone());
    let y = B::float_add(
        B::float_mul(xhat, along_last::<B>(widened::<B>(gamma), rank)),
        along_last::<B>(widened::<B>(beta), rank),
    );
    (narrowed::<B>(y, dtype), mean, denom)
}

/// Which gradients the backward pass computes (the inputs that need one).
struct Wanted {
    x: bool,
    gamma: bool,
    beta: bool,
}

/// The gradients of x, gamma and beta (each in its input's dtype, None where not wanted) from the
/// output gradient, x, gamma and the forward's row means and denominators.
fn backward_parts<B: Backend>(
    grad: FloatTensor<B>,
    x: FloatTensor<B>,
    gamma: FloatTensor<B>,
    mean: FloatTensor<B>,
    denom: FloatTensor<B>,
    wanted: Wanted,
) -> (Option<FloatTensor<B>>, Option<FloatTensor<B>>, Option<FloatTensor<B>>) {
    let (x_dtype, p_dtype) = (x.dtype(), gamma.dtype());
    let shape = x.shape();
    let rank = shape.num_dims();
    let d = shape[rank - 1];
    let rows = shape.num_elements() / d;
    let g = widened::<B>(grad);
    let xhat = B::float_div(B::float_sub(widened::<B>(x), mean), denom.clone());
    // A column sum over every row: `[.., d]` -> `[d]`.
    let column_sum = |t: FloatTensor<B>| {
        let t = B::float_sum_dim(B::float_reshape(t, Shape::new([rows, d])), 0);
        narrowed::<B>(B::float_reshape(t, Shape::new([d])), p_dtype)
    };
    let dgamma = wanted.gamma.then(|| column_sum(B::float_mul(g.clone(), xhat.clone())));
    let dbeta = wanted.beta.then(|| column_sum(g.clone()));
    let dx = wanted.x.then(|| {
        let gg = B::float_mul(g, along_last::<B>(widened::<B>(gamma), rank));
        let a = B::float_mean_dim(gg.clone(), rank - 1);
        let b = B::float_mean_dim(B::float_mul(gg.clone(), xhat.clone()), rank - 1);
        let dx = B::float_sub(B::float_sub(gg, a), B::float_mul(xhat, b));
        narrowed::<B>(B::float_div(dx, denom), x_dtype)
    });
    (dx, dgamma, dbeta)
}

#[cfg(not(target_family = "wasm"))]
mod autodiff {
    use super::*;
    use burn::backend::autodiff::checkpoint::base::Checkpointer;
    use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
    use burn::backend::autodiff::grads::Gradients;
    use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
    use burn::backend::autodiff::Autodiff;

    #[derive(Debug)]
    struct LayerNormBackward;

    impl<B: Backend> Backward<B, 3> for LayerNormBackward {
        /// x, gamma, row means, row denominators.
        type State = (FloatTensor<B>, FloatTensor<B>, FloatTensor<B>, FloatTensor<B>);

        fn backward(self, ops: Ops<Self::State, 3>, grads: &mut Gradients, _checkpointer: &mut Checkpointer) {
            let [node_x, node_gamma, node_beta] = ops.parents;
            let grad = grads.consume::<B>(&ops.node);
            let (x, gamma, mean, denom) = ops.state;
            let wanted = Wanted { x: node_x.is_some(), gamma: node_gamma.is_some(), beta: node_beta.is_some() };
            let (dx, dgamma, dbeta) = backward_parts::<B>(grad, x, gamma, mean, denom, wanted);
            for (node, grad) in [(node_x, dx), (node_gamma, dgamma), (node_beta, dbeta)] {
                if let (Some(node), Some(grad)) = (node, grad) {
                    grads.register::<B>(node.id, grad);
                }
            }
        }
    }

    impl<B: Backend + LayerNormBackend, C: CheckpointStrategy> LayerNormBackend for Autodiff<B, C> {
        fn clip_layer_norm(x: FloatTensor<Self>, gamma: FloatTensor<Self>, beta: FloatTensor<Self>, epsilon: f64) -> FloatTensor<Self> {
            match LayerNormBackward.prepare::<C>([x.node(), gamma.node(), beta.node()]).compute_bound().stateful() {
                OpsKind::Tracked(prep) => {
                    let (x, gamma) = (x.into_primitive(), gamma.into_primitive());
                    let (y, mean, denom) = forward_parts::<B>(x.clone(), gamma.clone(), beta.into_primitive(), epsilon);
                    prep.finish((x, gamma, mean, denom), y)
                }
                OpsKind::UnTracked(prep) => prep.finish(B::clip_layer_norm(
                    x.into_primitive(),
                    gamma.into_primitive(),
                    beta.into_primitive(),
                    epsilon,
                )),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::Tolerance;

    /// Deterministic values in about [-1.5, 2.5] (a hash of index and seed), shape `[a, b, c]`.
    fn random(shape: [usize; 3], seed: u64, device: &Device) -> Tensor<3> {
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
        let mut ln = init(gamma.dims()[0], &gamma.device());
        ln.gamma = burn::module::Param::from_tensor(gamma);
        ln.beta = Some(burn::module::Param::from_tensor(beta));
        ln
    }

    /// Without autodiff the op is burn's LayerNorm, bit for bit.
    #[test]
    fn inference_is_burns_layer_norm() {
        let device = Device::default();
        let x = random([2, 5, 16], 1, &device);
        let ln = ln_with(random([1, 1, 16], 2, &device).reshape([16]), random([1, 1, 16], 3, &device).reshape([16]));
        forward(&ln, x.clone()).into_data().assert_eq(&ln.forward(x).into_data(), true);
    }

    /// Output and the gradients of x, gamma and beta equal autodiff through burn's composed
    /// LayerNorm, in f32 and (widened inside) bf16.
    #[test]
    fn gradients_match_burns_composed_layer_norm() {
        let device = Device::default().autodiff();
        for dtype in [FloatDType::F32, FloatDType::BF16] {
            let x0 = random([3, 4, 24], 4, &device).cast(dtype);
            let gamma0 = random([1, 1, 24], 5, &device).reshape([24]).cast(dtype);
            let beta0 = random([1, 1, 24], 6, &device).reshape([24]).cast(dtype);
            // A loss that weighs every output differently, so no gradient is trivially zero.
            let weights = random([3, 4, 24], 7, &device);
            let run = |hand_written: bool| {
                let x = x0.clone().detach().require_grad();
                let ln = ln_with(gamma0.clone().detach().require_grad(), beta0.clone().detach().require_grad());
                let y = if hand_written { forward(&ln, x.clone()) } else { ln.forward(x.clone()) };
                assert_eq!(y.dtype(), x.dtype());
                let loss = (y.clone().cast(FloatDType::F32) * weights.clone()).sum();
                let grads = loss.backward();
                let grad = |t: &Tensor<1>| t.grad(&grads).expect("gradient").cast(FloatDType::F32).into_data();
                let dx = x.grad(&grads).expect("x gradient");
                assert_eq!(dx.dtype(), x.dtype());
                (
                    y.cast(FloatDType::F32).into_data(),
                    dx.cast(FloatDType::F32).into_data(),
                    grad(&ln.gamma.val()),
                    grad(&ln.beta.as_ref().unwrap().val()),
                )
            };
            let (ours, theirs) = (run(true), run(false));
            let tolerance = if dtype == FloatDType::F32 { Tolerance::relative(1e-4).set_absolute(1e-5) } else { Tolerance::relative(2e-2).set_absolute(5e-2) };
            for (name, a, b) in [("y", &ours.0, &theirs.0), ("dx", &ours.1, &theirs.1), ("dgamma", &ours.2, &theirs.2), ("dbeta", &ours.3, &theirs.3)] {
                println!("{dtype:?} {name}");
                a.assert_approx_eq::<f32>(b, tolerance);
            }
        }
    }
}

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
//! the hand-written backward pass is its `Autodiff<B>` implementation (a burn backend extension,
//! see `extension`).

use burn::backend::tensor::FloatTensor;
use burn::backend::{Backend, Dispatch, TensorMetadata};
use burn::nn::{LayerNorm, LayerNormConfig};
use burn::prelude::*;

use crate::extension::backend_ops;
use crate::precision::wide;
#[cfg(not(target_family = "wasm"))]
use crate::precision::{narrowed, widened};

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

backend_ops!(
    LayerNormBackend,
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
                    dtype.into(),
                ),
                None => Self::layer_norm(x, gamma, Some(beta), epsilon),
            }
        }
    }
);

/// A `[d]` parameter shaped to broadcast over the last axis of a rank-`rank` tensor.
#[cfg(not(target_family = "wasm"))] // used by the backward pass (autodiff) only
fn along_last<B: Backend>(p: FloatTensor<B>, rank: usize) -> FloatTensor<B> {
    let d = p.shape().num_elements();
    let mut dims = vec![1; rank];
    dims[rank - 1] = d;
    B::float_reshape(p, Shape::from(dims))
}

/// The forward pass: the output (in x's dtype), the row means and the row denominators
/// `sqrt(var + eps)` (both in the accumulation dtype, last axis kept as 1). burn's `layer_norm`
/// op by op (in f32 for f16/bf16 inputs), but with gamma and beta reshaped first: burn's fusion
/// ends a fused kernel at a reshape of a tensor it has not read yet, which leaves burn's scaling
/// and shift a kernel each (inference keeps burn's op, which the CPU backend runs natively).
#[cfg(not(target_family = "wasm"))] // used by the backward pass (autodiff) only
fn forward_parts<B: Backend>(
    x: FloatTensor<B>,
    gamma: FloatTensor<B>,
    beta: FloatTensor<B>,
    epsilon: f64,
) -> (FloatTensor<B>, FloatTensor<B>, FloatTensor<B>) {
    let dtype = x.dtype();
    let rank = x.shape().num_dims();
    let gamma = along_last::<B>(widened::<B>(gamma), rank);
    let beta = along_last::<B>(widened::<B>(beta), rank);
    let x = widened::<B>(x);
    let mean = B::float_mean_dim(x.clone(), rank - 1);
    let centered = B::float_sub(x, mean.clone());
    let var = B::float_mean_dim(B::float_mul(centered.clone(), centered.clone()), rank - 1);
    let denom = B::float_sqrt(B::float_add_scalar(var, epsilon.into()));
    let xhat = B::float_div(centered, denom.clone());
    let y = B::float_add(B::float_mul(xhat, gamma), beta);
    (narrowed::<B>(y, dtype), mean, denom)
}

/// Which gradients the backward pass computes (the inputs that need one).
#[cfg(not(target_family = "wasm"))] // used by the backward pass (autodiff) only
struct Wanted {
    x: bool,
    gamma: bool,
    beta: bool,
}

/// The gradients of x, gamma and beta (each in its input's dtype, None where not wanted) from the
/// output gradient, x, gamma and the forward's row means and denominators.
#[cfg(not(target_family = "wasm"))] // used by the backward pass (autodiff) only
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

    /// Without autodiff the op is burn's LayerNorm, bit for bit. The backward pass is checked
    /// against autodiff through burn's composed LayerNorm in tests/backward.rs (on the CPU and,
    /// in scripts/test.sh, on wgpu).
    #[test]
    fn inference_is_burns_layer_norm() {
        let device = Device::flex();
        let values = |n: usize, seed: f32| (0..n).map(|i| ((i as f32 + seed) * 12.9898).sin() * 2.0).collect::<Vec<f32>>();
        let x = Tensor::<1>::from_floats(values(160, 0.5).as_slice(), &device).reshape([2, 5, 16]);
        let mut ln = init(16, &device);
        ln.gamma = burn::module::Param::from_tensor(Tensor::from_floats(values(16, 1.5).as_slice(), &device));
        ln.beta = Some(burn::module::Param::from_tensor(Tensor::from_floats(values(16, 2.5).as_slice(), &device)));
        forward(&ln, x.clone()).into_data().assert_eq(&ln.forward(x).into_data(), true);
    }
}

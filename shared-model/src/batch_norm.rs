//! BatchNorm in training mode with a hand-written backward pass, over one process's batch or,
//! inside [`synced`], over a data-parallel job's whole batch (PyTorch's SyncBatchNorm, open_clip's
//! `--use-bn-sync`).
//!
//! Per channel, over the `n` values of the batch and the spatial axes (all ranks' when synced),
//! with `xhat = (x - mean) / sqrt(var + eps)` (biased variance, two passes: a single pass's
//! `E[x^2] - E[x]^2` cancels in f32) and `y = gamma * xhat + beta`:
//!
//! - `dx = gamma / sqrt(var + eps) * (g - mean(g) - xhat * mean(g * xhat))`,
//! - `dgamma = sum(g * xhat)`, `dbeta = sum(g)` (this rank's share: the data-parallel gradient
//!   sum adds the ranks' up).
//!
//! Layout: `[B, C, H, W]` is read as `[B, C, H*W]` (a view), and a per-channel mean is a row mean
//! over `H*W` (contiguous) then a column mean over `B`. Statistics and gradients are accumulated
//! in f32 for f16/bf16 inputs and returned in the input's dtype (as open_clip's towers under
//! autocast, whose BatchNorm runs in f32). burn's `batch_norm_train` (its own backward pass too)
//! computes in its input's dtype, so a mixed-precision tower cast each BatchNorm's input to f32
//! first: a full f32 copy of the activation, kept for the backward pass, and its gradient cast
//! back. What the backward pass keeps here: the input (in its own dtype), gamma, the per-channel
//! mean and `1 / sqrt(var + eps)`.
//!
//! Synced, the per-channel means are merged over ranks (each weighted by its rank's count, which
//! rides along): the mean, then the variance, and in the backward pass `mean(g)` and
//! `mean(g * xhat)` in one collective. Every rank runs the same graph, so the collectives of the
//! forward and backward passes come in the same order on all. The transport is the trainer's,
//! behind [`RankSum`], installed for the passes of a step with [`synced`] (a scope of the
//! calling thread, where burn's autodiff also runs the backward pass).
//!
//! Running statistics follow PyTorch's rule: `momentum` times the batch's mean and unbiased
//! variance (`var * n / (n - 1)`) plus `1 - momentum` times the old ones.

use std::cell::RefCell;
use std::sync::Arc;

use burn::backend::tensor::FloatTensor;
use burn::backend::{Backend, Dispatch, TensorMetadata};
use burn::nn::BatchNorm;
use burn::prelude::*;
use burn::tensor::FloatDType;

use crate::extension::backend_ops;
use crate::precision::{float_dtype, narrowed, widened};

/// Sums `f32` values over the ranks of a data-parallel job: a collective, so every rank calls it
/// in the same order with the same length. A failure (a rank gone) is the implementation's to
/// keep and report after the step; the values are then left as they are.
pub trait RankSum: Send + Sync {
    fn sum(&self, values: &mut [f32]);
}

thread_local! {
    static SYNC: RefCell<Option<Arc<dyn RankSum>>> = const { RefCell::new(None) };
}

/// Runs `f` with BatchNorm's training statistics summed over ranks by `sum` on this thread
/// (forward passes, and the backward passes, which run where `backward()` is called).
pub fn synced<T>(sum: Arc<dyn RankSum>, f: impl FnOnce() -> T) -> T {
    struct Restore(Option<Arc<dyn RankSum>>);
    impl Drop for Restore {
        fn drop(&mut self) {
            SYNC.with(|s| *s.borrow_mut() = self.0.take());
        }
    }
    let _restore = Restore(SYNC.with(|s| s.borrow_mut().replace(sum)));
    f()
}

fn current() -> Option<Arc<dyn RankSum>> {
    SYNC.with(|s| s.borrow().clone())
}

/// `bn` applied to `x` (`[B, C, H, W]`, any float dtype; the output has x's): in training mode
/// (an autodiff device and the layer's training flag) with the batch's statistics (the whole
/// job's inside [`synced`]), updating the running ones; otherwise burn's BatchNorm in f32 with
/// the running statistics.
pub fn forward(bn: &BatchNorm, x: Tensor<4>) -> Tensor<4> {
    let dtype = float_dtype(&x);
    if !(x.is_autodiff() && bn.training.is_enabled()) {
        return bn.forward(x.cast(FloatDType::F32)).cast(dtype);
    }
    let device = x.device();
    let (y, mean, var) = <Dispatch as BatchNormBackend>::clip_batch_norm_train(
        x.into_dispatch(),
        bn.gamma.val().into_dispatch(),
        bn.beta.val().into_dispatch(),
        bn.epsilon,
    );
    let update = |state: &burn::module::RunningState<Tensor<1>>, batch| {
        let running = state.value_sync().to_device(&device);
        let batch = Tensor::<1>::from_dispatch(batch).detach().cast(FloatDType::F32);
        state.update((running * (1.0 - bn.momentum) + batch * bn.momentum).detach());
    };
    update(&bn.running_mean, mean);
    update(&bn.running_var, var);
    Tensor::from_dispatch(y)
}

backend_ops!(
    BatchNormBackend,
    pub trait BatchNormBackend: Backend {
        /// `(y, mean, var)`: BatchNorm of `x` (`[B, C, H, W]`) with its batch's statistics (over
        /// ranks inside [`synced`]), `y` in x's dtype; the per-channel mean and unbiased variance
        /// (`[C]`, in the accumulation dtype) for the running statistics.
        #[fusion(default)]
        fn clip_batch_norm_train(
            x: FloatTensor<Self>,
            gamma: FloatTensor<Self>,
            beta: FloatTensor<Self>,
            epsilon: f64,
        ) -> (FloatTensor<Self>, FloatTensor<Self>, FloatTensor<Self>) {
            let (y, mean, _, var) = forward_parts::<Self>(x, gamma, beta, epsilon, current().as_deref());
            (y, mean, var)
        }
    }
);

// Every per-channel (`[C]`) op is a kernel launch of its own (burn's fusion joins element-wise ops
// of one shape), so the per-channel factors are taken by the reductions (means, not sums) and
// applied inside the full-size element-wise chains, broadcast: the only `[C]` ops are the
// reciprocal standard deviation (forward), the unbiased variance and the running statistics'
// update, and the parameter gradients (backward).

/// `[B, C, H, W]` as `[B, C, H*W]`, and the number of values per channel.
fn rows_of(shape: &Shape) -> (Shape, usize) {
    let [b, c, h, w] = [shape[0], shape[1], shape[2], shape[3]];
    (Shape::new([b, c, h * w]), b * h * w)
}

/// Per-channel means of `[B, C, L]`, shaped `[1, C, 1]` to broadcast back over it (a row mean
/// over L, then a column mean over B: equal rows, so the mean of all values).
fn channel_means<B: Backend>(t: FloatTensor<B>) -> FloatTensor<B> {
    B::float_mean_dim(B::float_mean_dim(t, 2), 0)
}

/// `[1, C, 1]` as `[C]`.
fn flat<B: Backend>(t: FloatTensor<B>) -> FloatTensor<B> {
    let c = t.shape().num_elements();
    B::float_reshape(t, Shape::new([c]))
}

/// A `[C]` tensor shaped to broadcast over `[B, C, L]`.
fn along_channels<B: Backend>(t: FloatTensor<B>) -> FloatTensor<B> {
    let c = t.shape().num_elements();
    B::float_reshape(t, Shape::new([1, c, 1]))
}

/// Per-channel means of every rank (`means`, over `count` values here) merged into the job's
/// (weighted by the ranks' counts: the mean over all ranks' values), each back on its device in
/// its shape and dtype, and the job's count; with no `sum`, as they are.
fn over_ranks<B: Backend>(means: Vec<FloatTensor<B>>, count: usize, sum: Option<&dyn RankSum>) -> (Vec<FloatTensor<B>>, usize) {
    let Some(sum) = sum else { return (means, count) };
    let mut values = Vec::new();
    let mut layout = Vec::new();
    for part in means {
        let (device, dtype, shape) = (part.device(), part.dtype(), part.shape());
        let data = block_on(B::float_into_data(part)).expect("BatchNorm statistics read back from their device");
        let read = data.convert::<f32>().try_into_vec::<f32>().expect("f32 values");
        layout.push((device, dtype, shape, read.len()));
        values.extend(read.into_iter().map(|v| v * count as f32));
    }
    // The count rides at the end (exact in f32 to 2^24, and a relative rounding of 6e-8 past it).
    values.push(count as f32);
    sum.sum(&mut values);
    let total = values.pop().expect("the count");
    let mut rest = values.as_slice();
    let means = layout
        .into_iter()
        .map(|(device, dtype, shape, len)| {
            let (mine, after) = rest.split_at(len);
            rest = after;
            let merged = mine.iter().map(|v| v / total).collect::<Vec<f32>>();
            B::float_cast(B::float_from_data(TensorData::new(merged, shape), &device), dtype.into())
        })
        .collect();
    (means, total.round() as usize)
}

/// The one part of `over_ranks`'s result.
fn one<B: Backend>((parts, count): (Vec<FloatTensor<B>>, usize)) -> (FloatTensor<B>, usize) {
    (parts.into_iter().next().expect("one part"), count)
}

/// The forward pass: the output (in x's dtype), and in the accumulation dtype the per-channel
/// mean (`[C]`), reciprocal standard deviation `1 / sqrt(var + eps)` (`[1, C, 1]`, for the
/// backward pass) and unbiased variance (`[C]`).
fn forward_parts<B: Backend>(
    x: FloatTensor<B>,
    gamma: FloatTensor<B>,
    beta: FloatTensor<B>,
    epsilon: f64,
    sum: Option<&dyn RankSum>,
) -> (FloatTensor<B>, FloatTensor<B>, FloatTensor<B>, FloatTensor<B>) {
    let (dtype, shape) = (x.dtype(), x.shape());
    let (rows, n) = rows_of(&shape);
    let x = B::float_reshape(widened::<B>(x), rows);
    let (mean, count) = one::<B>(over_ranks::<B>(vec![channel_means::<B>(x.clone())], n, sum));
    let centered = B::float_sub(x, mean.clone());
    let (var, _) = one::<B>(over_ranks::<B>(vec![channel_means::<B>(B::float_mul(centered.clone(), centered.clone()))], n, sum));
    let rstd = B::float_recip(B::float_sqrt(B::float_add_scalar(var.clone(), epsilon.into())));
    let y = B::float_mul(B::float_mul(centered, rstd.clone()), along_channels::<B>(widened::<B>(gamma)));
    let y = B::float_add(y, along_channels::<B>(widened::<B>(beta)));
    let unbiased = B::float_mul_scalar(flat::<B>(var), (count as f64 / (count.max(2) - 1) as f64).into());
    (B::float_reshape(narrowed::<B>(y, dtype), shape), flat::<B>(mean), rstd, unbiased)
}

/// The gradients of x (in its dtype, if `want_x`), gamma and beta (in gamma's) from the output
/// gradient, the input, gamma, the forward's mean and reciprocal standard deviation.
#[cfg(not(target_family = "wasm"))] // used by the backward pass (autodiff) only
fn backward_parts<B: Backend>(
    grad: FloatTensor<B>,
    x: FloatTensor<B>,
    gamma: FloatTensor<B>,
    mean: FloatTensor<B>,
    rstd: FloatTensor<B>,
    want_x: bool,
    sum: Option<&dyn RankSum>,
) -> (Option<FloatTensor<B>>, FloatTensor<B>, FloatTensor<B>) {
    let (x_dtype, p_dtype, shape) = (x.dtype(), gamma.dtype(), x.shape());
    let (rows, n) = rows_of(&shape);
    let g = B::float_reshape(widened::<B>(grad), rows.clone());
    let xhat = B::float_mul(B::float_sub(B::float_reshape(widened::<B>(x), rows), along_channels::<B>(mean)), rstd.clone());
    let mean_g = channel_means::<B>(g.clone());
    let mean_gx = channel_means::<B>(B::float_mul(g.clone(), xhat.clone()));
    // This rank's sums (the data-parallel gradient sum adds the ranks' up).
    let sum_of = |m: FloatTensor<B>| narrowed::<B>(B::float_mul_scalar(flat::<B>(m), (n as f64).into()), p_dtype);
    let (dgamma, dbeta) = (sum_of(mean_gx.clone()), sum_of(mean_g.clone()));
    let dx = want_x.then(|| {
        let (global, _) = over_ranks::<B>(vec![mean_g, mean_gx], n, sum);
        let [mean_g, mean_gx]: [FloatTensor<B>; 2] = global.try_into().ok().expect("two parts");
        let centered = B::float_sub(B::float_sub(g, mean_g), B::float_mul(xhat, mean_gx));
        let dx = B::float_mul(B::float_mul(centered, rstd), along_channels::<B>(widened::<B>(gamma)));
        B::float_reshape(narrowed::<B>(dx, x_dtype), shape)
    });
    (dx, dgamma, dbeta)
}

/// A future run to completion on this thread (burn's read-backs are futures).
fn block_on<F: std::future::Future>(future: F) -> F::Output {
    struct Unpark(std::thread::Thread);
    impl std::task::Wake for Unpark {
        fn wake(self: Arc<Self>) {
            self.0.unpark();
        }
    }
    let waker = Arc::new(Unpark(std::thread::current())).into();
    let mut context = std::task::Context::from_waker(&waker);
    let mut future = std::pin::pin!(future);
    loop {
        if let std::task::Poll::Ready(output) = future.as_mut().poll(&mut context) {
            return output;
        }
        std::thread::park();
    }
}

#[cfg(not(target_family = "wasm"))]
mod autodiff {
    use super::*;
    use burn::backend::autodiff::checkpoint::base::Checkpointer;
    use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
    use burn::backend::autodiff::grads::Gradients;
    use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
    use burn::backend::autodiff::Autodiff;
    use burn::backend::AutodiffBackend;

    /// The backward pass, with the scope's rank sum (if any) of the forward pass.
    struct BatchNormBackward(Option<Arc<dyn RankSum>>);

    impl std::fmt::Debug for BatchNormBackward {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.debug_struct("BatchNormBackward").field("synced", &self.0.is_some()).finish()
        }
    }

    impl<B: Backend> Backward<B, 3> for BatchNormBackward {
        /// x, gamma, mean, reciprocal standard deviation.
        type State = (FloatTensor<B>, FloatTensor<B>, FloatTensor<B>, FloatTensor<B>);

        fn backward(self, ops: Ops<Self::State, 3>, grads: &mut Gradients, _checkpointer: &mut Checkpointer) {
            let [node_x, node_gamma, node_beta] = ops.parents;
            let grad = grads.consume::<B>(&ops.node);
            let (x, gamma, mean, rstd) = ops.state;
            let (dx, dgamma, dbeta) = backward_parts::<B>(grad, x, gamma, mean, rstd, node_x.is_some(), self.0.as_deref());
            for (node, grad) in [(node_x, dx), (node_gamma, Some(dgamma)), (node_beta, Some(dbeta))] {
                if let (Some(node), Some(grad)) = (node, grad) {
                    grads.register::<B>(node.id, grad);
                }
            }
        }
    }

    impl<B: Backend + BatchNormBackend, C: CheckpointStrategy> BatchNormBackend for Autodiff<B, C> {
        fn clip_batch_norm_train(
            x: FloatTensor<Self>,
            gamma: FloatTensor<Self>,
            beta: FloatTensor<Self>,
            epsilon: f64,
        ) -> (FloatTensor<Self>, FloatTensor<Self>, FloatTensor<Self>) {
            let sum = current();
            let stats = |mean, var| (Self::from_inner(mean), Self::from_inner(var));
            match BatchNormBackward(sum.clone()).prepare::<C>([x.node(), gamma.node(), beta.node()]).compute_bound().stateful() {
                OpsKind::Tracked(prep) => {
                    let (x, gamma) = (x.into_primitive(), gamma.into_primitive());
                    let (y, mean, rstd, var) =
                        forward_parts::<B>(x.clone(), gamma.clone(), beta.into_primitive(), epsilon, sum.as_deref());
                    let y = prep.finish((x, gamma, mean.clone(), rstd), y);
                    let (mean, var) = stats(mean, var);
                    (y, mean, var)
                }
                OpsKind::UnTracked(prep) => {
                    let (y, mean, var) =
                        B::clip_batch_norm_train(x.into_primitive(), gamma.into_primitive(), beta.into_primitive(), epsilon);
                    let (mean, var) = stats(mean, var);
                    (prep.finish(y), mean, var)
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::nn::BatchNormConfig;
    use std::sync::{Barrier, Mutex};

    /// An all-reduce between threads: each adds its values into one buffer, all wait, all read.
    struct Threads {
        world: usize,
        added: Mutex<(Vec<f32>, usize)>,
        barrier: Barrier,
    }

    impl RankSum for Threads {
        fn sum(&self, values: &mut [f32]) {
            {
                let mut added = self.added.lock().unwrap();
                if added.1 % self.world == 0 {
                    added.0 = vec![0.0; values.len()];
                }
                added.0.iter_mut().zip(values.iter()).for_each(|(a, v)| *a += v);
                added.1 += 1;
            }
            self.barrier.wait();
            values.copy_from_slice(&self.added.lock().unwrap().0);
            self.barrier.wait();
        }
    }

    fn values(n: usize, seed: f32) -> Vec<f32> {
        (0..n).map(|i| ((i as f32 + seed) * 12.9898).sin() * 2.0 + 0.5).collect()
    }

    fn norm(device: &Device) -> BatchNorm {
        let mut bn = BatchNormConfig::new(3).init(device);
        bn.gamma = burn::module::Param::from_tensor(Tensor::from_floats(values(3, 1.5).as_slice(), device)).set_require_grad(true);
        bn.beta = burn::module::Param::from_tensor(Tensor::from_floats(values(3, 2.5).as_slice(), device)).set_require_grad(true);
        bn
    }

    /// `x`'s output under `bn` (through [`forward`], or burn's BatchNorm) weighted into a
    /// scalar, and the gradients of x, gamma and beta.
    fn pass(bn: &BatchNorm, x: Tensor<4>, weights: Tensor<4>, burns: bool) -> (Vec<f32>, Vec<f32>, Vec<f32>, Vec<f32>) {
        let x = x.require_grad();
        let out = if burns { bn.forward(x.clone()) } else { forward(bn, x.clone()) };
        let grads = (out.clone() * weights).sum().backward();
        let read = |t: Option<Tensor<1>>| t.expect("a gradient").into_data().try_into_vec::<f32>().unwrap();
        let dx = x.grad(&grads).expect("dx");
        let [b, c, h, w] = dx.dims();
        (
            out.into_data().try_into_vec::<f32>().unwrap(),
            read(Some(dx.reshape([b * c * h * w]))),
            read(bn.gamma.val().grad(&grads)),
            read(bn.beta.val().grad(&grads)),
        )
    }

    /// A running statistic after this thread's update (`value()` lags by one update).
    fn read(s: &burn::module::RunningState<Tensor<1>>) -> Vec<f32> {
        s.value_sync().into_data().try_into_vec::<f32>().unwrap()
    }

    fn close(a: &[f32], b: &[f32], what: &str) {
        assert_eq!(a.len(), b.len(), "{what}");
        for (i, (x, y)) in a.iter().zip(b).enumerate() {
            assert!((x - y).abs() <= 1e-5 * (1.0 + y.abs()), "{what}[{i}]: {x} vs {y}");
        }
    }

    /// One process: output and gradients are burn's BatchNorm's (its own closed form); the
    /// running mean is burn's, the running variance PyTorch's (burn keeps the biased variance,
    /// PyTorch the unbiased one: `var * n / (n - 1)` over the n values of a channel).
    #[test]
    fn training_is_burns_batch_norm_with_pytorchs_running_variance() {
        let device = Device::flex().autodiff();
        let ([b, c, h, w], n) = ([4, 3, 5, 6], 4.0 * 5.0 * 6.0);
        let x = Tensor::<1>::from_floats(values(b * c * h * w, 0.25).as_slice(), &device).reshape([b, c, h, w]);
        let weights = Tensor::<1>::from_floats(values(b * c * h * w, 7.0).as_slice(), &device).reshape([b, c, h, w]);
        let (ours, burns) = (norm(&device), norm(&device));
        let (o, d, g, e) = pass(&ours, x.clone(), weights.clone(), false);
        let (o2, d2, g2, e2) = pass(&burns, x, weights, true);
        close(&o, &o2, "output");
        close(&d, &d2, "input gradient");
        close(&g, &g2, "gamma gradient");
        close(&e, &e2, "beta gradient");
        close(&read(&ours.running_mean), &read(&burns.running_mean), "running mean");
        // Both start from 1: running = 0.9 + 0.1 * batch variance (biased for burn's).
        let unbiased: Vec<f32> = read(&burns.running_var).iter().map(|v| 0.9 + (v - 0.9) * n / (n - 1.0)).collect();
        close(&read(&ours.running_var), &unbiased, "running variance");
    }

    /// Three ranks (threads) with a slice of the batch each, synced: every rank's output and
    /// input gradient are its rows of the full batch's under burn's BatchNorm, the parameters'
    /// gradients summed over ranks are the full batch's, and the running statistics are the
    /// full batch's in one process.
    #[test]
    fn synced_ranks_give_the_full_batch() {
        let device = Device::flex().autodiff();
        let (world, rows, [c, h, w]) = (3, 2, [3, 4, 5]);
        let per_rank = rows * c * h * w;
        let x = values(world * per_rank, 0.25);
        let weights = values(world * per_rank, 7.0);
        let full = |v: &[f32]| Tensor::<1>::from_floats(v, &device).reshape([world * rows, c, h, w]);
        let (out, dx, dgamma, dbeta) = pass(&norm(&device), full(&x), full(&weights), true);
        let one_process = norm(&device);
        pass(&one_process, full(&x), full(&weights), false);

        let threads = Arc::new(Threads { world, added: Mutex::new((Vec::new(), 0)), barrier: Barrier::new(world) });
        let ranks: Vec<_> = (0..world)
            .map(|r| {
                let (threads, device) = (threads.clone(), device.clone());
                let slice = |v: &[f32]| Tensor::<1>::from_floats(&v[r * per_rank..(r + 1) * per_rank], &device).reshape([rows, c, h, w]);
                let (x, weights) = (slice(&x), slice(&weights));
                std::thread::spawn(move || {
                    let bn = norm(&device);
                    let result = synced(threads, || pass(&bn, x, weights, false));
                    (result, read(&bn.running_mean), read(&bn.running_var))
                })
            })
            .collect();
        let mut sums = (vec![0f32; c], vec![0f32; c]);
        for (r, handle) in ranks.into_iter().enumerate() {
            let ((o, d, g, b), mean, var) = handle.join().unwrap();
            close(&o, &out[r * per_rank..(r + 1) * per_rank], "output");
            close(&d, &dx[r * per_rank..(r + 1) * per_rank], "input gradient");
            sums.0.iter_mut().zip(&g).for_each(|(s, v)| *s += v);
            sums.1.iter_mut().zip(&b).for_each(|(s, v)| *s += v);
            close(&mean, &read(&one_process.running_mean), "running mean");
            close(&var, &read(&one_process.running_var), "running variance");
        }
        close(&sums.0, &dgamma, "gamma gradient");
        close(&sums.1, &dbeta, "beta gradient");
    }

    /// In inference (no autodiff) the layer is burn's BatchNorm with the running statistics, in
    /// f32 whatever the input's dtype, returned in the input's.
    #[test]
    fn inference_is_burns_batch_norm() {
        let device = Device::flex();
        let x = Tensor::<1>::from_floats(values(2 * 3 * 4 * 5, 0.25).as_slice(), &device).reshape([2, 3, 4, 5]);
        let (a, b) = (norm(&device), norm(&device));
        forward(&a, x.clone()).into_data().assert_eq(&b.forward(x.clone()).into_data(), true);
        let half = forward(&a, x.clone().cast(FloatDType::BF16));
        assert_eq!(half.dtype(), burn::tensor::DType::BF16);
        let expected = b.forward(x.cast(FloatDType::BF16).cast(FloatDType::F32)).cast(FloatDType::BF16);
        half.into_data().assert_eq(&expected.into_data(), true);
    }
}

//! BatchNorm in training mode over a data-parallel job's whole batch: PyTorch's SyncBatchNorm,
//! open_clip's `--use-bn-sync`.
//!
//! Each rank holds a slice of the global batch; plain BatchNorm normalises it with its own
//! slice's statistics, so the ranks' gradients do not add up to the single-process gradient of
//! the global batch (the ModifiedResNet towers). Synced, the per-channel sums are summed over
//! ranks: first `sum x` (with the count) for the mean, then `sum (x - mean)^2` for the biased
//! variance (two passes, as a single pass's `E[x^2] - E[x]^2` cancels in f32), and the output is
//! `(x - mean) / sqrt(var + eps) * gamma + beta`, differentiated by autodiff through the
//! composition. The one op of its own, a sum over ranks, is a sum whose backward pass is a sum
//! too: the gradient of every rank's loss with respect to a global sum reaches each rank's local
//! share, so its backward pass sums the incoming gradient over ranks. Every rank runs the same
//! graph, so the collectives of the forward and backward passes come in the same order on all.
//!
//! The transport is the trainer's, behind [`RankSum`], installed for the passes of a step with
//! [`synced`] (a scope of the calling thread, where burn's autodiff also runs the backward pass).

use std::cell::RefCell;
use std::sync::Arc;

use burn::backend::tensor::FloatTensor;
use burn::backend::{Backend, Dispatch};
use burn::nn::BatchNorm;
use burn::prelude::*;

use crate::extension::backend_ops;

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

/// `bn` applied to `x` (`[B, C, H, W]`): burn's BatchNorm, except in training mode inside
/// [`synced`], where the batch statistics are the whole job's.
pub fn forward(bn: &BatchNorm, x: Tensor<4>) -> Tensor<4> {
    let training = x.is_autodiff() && bn.training.is_enabled();
    match current() {
        Some(sum) if training => synced_forward(bn, x, sum.as_ref()),
        _ => bn.forward(x),
    }
}

fn synced_forward(bn: &BatchNorm, x: Tensor<4>, sum: &dyn RankSum) -> Tensor<4> {
    let [b, c, h, w] = x.dims();
    let device = x.device();
    let per_channel = |t: Tensor<4>| t.swap_dims(0, 1).reshape([c, b * h * w]).sum_dim(1).reshape([c]);
    // The count rides at the end of the first collective (exact in f32 to 2^24, and a relative
    // rounding of 6e-8 past it).
    let counted = Tensor::cat(vec![per_channel(x.clone()), Tensor::from_floats([(b * h * w) as f32], &device)], 0);
    let totals = sum_over_ranks(counted, sum);
    let count = totals.clone().narrow(0, c, 1);
    let mean = totals.narrow(0, 0, c) / count.clone();
    let centered = x - mean.clone().reshape([1, c, 1, 1]);
    let var = sum_over_ranks(per_channel(centered.clone().square()), sum) / count;
    let scale = (var.clone() + bn.epsilon).sqrt().recip() * bn.gamma.val();
    let out = centered * scale.reshape([1, c, 1, 1]) + bn.beta.val().reshape([1, c, 1, 1]);
    // Running statistics as burn's BatchNorm keeps them (the biased variance), from the job's.
    let update = |state: &burn::module::RunningState<Tensor<1>>, batch: Tensor<1>| {
        let running = state.value_sync().to_device(&device);
        state.update((running * (1.0 - bn.momentum) + batch.detach() * bn.momentum).detach());
    };
    update(&bn.running_mean, mean);
    update(&bn.running_var, var);
    out
}

/// `local` summed over ranks by `sum` (the scope's: its backward pass sums with the one
/// [`synced`] installed); its gradient is the incoming gradient summed over ranks.
fn sum_over_ranks(local: Tensor<1>, sum: &dyn RankSum) -> Tensor<1> {
    let device = local.device();
    let mut values = local.clone().into_data().convert::<f32>().try_into_vec::<f32>().expect("f32 values");
    sum.sum(&mut values);
    let n = values.len();
    let global = Tensor::<1>::from_data(TensorData::new(values, [n]), &device).cast(local.dtype());
    Tensor::from_dispatch(<Dispatch as RankSumBackend>::clip_sum_over_ranks(local.into_dispatch(), global.into_dispatch()))
}

backend_ops!(
    RankSumBackend,
    pub trait RankSumBackend: Backend {
        /// `global`, the sum over ranks of every rank's `local` (computed by the caller): under
        /// autodiff the gradient reaching it goes to `local`, summed over ranks.
        #[fusion(default)]
        fn clip_sum_over_ranks(local: FloatTensor<Self>, global: FloatTensor<Self>) -> FloatTensor<Self> {
            let _ = local;
            global
        }
    }
);

#[cfg(not(target_family = "wasm"))]
mod autodiff {
    use super::*;
    use burn::backend::autodiff::checkpoint::base::Checkpointer;
    use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
    use burn::backend::autodiff::grads::Gradients;
    use burn::backend::autodiff::ops::{Backward, Ops};
    use burn::backend::autodiff::Autodiff;
    use burn::backend::TensorMetadata;

    struct SumBackward(Option<Arc<dyn RankSum>>);

    impl std::fmt::Debug for SumBackward {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("SumOverRanksBackward")
        }
    }

    impl<B: Backend> Backward<B, 1> for SumBackward {
        type State = ();

        fn backward(self, ops: Ops<Self::State, 1>, grads: &mut Gradients, _checkpointer: &mut Checkpointer) {
            let [parent] = ops.parents;
            let grad = grads.consume::<B>(&ops.node);
            let Some(parent) = parent else { return };
            let grad = match &self.0 {
                Some(sum) => {
                    let (device, dtype, shape) = (grad.device(), grad.dtype(), grad.shape());
                    let data = block_on(B::float_into_data(grad)).expect("a gradient read back from its device");
                    let mut values = data.convert::<f32>().try_into_vec::<f32>().expect("f32 values");
                    sum.sum(&mut values);
                    let summed = B::float_from_data(TensorData::new(values, shape), &device);
                    B::float_cast(summed, dtype.into())
                }
                None => grad,
            };
            grads.register::<B>(parent.id, grad);
        }
    }

    impl<B: Backend + RankSumBackend, C: CheckpointStrategy> RankSumBackend for Autodiff<B, C> {
        fn clip_sum_over_ranks(local: FloatTensor<Self>, global: FloatTensor<Self>) -> FloatTensor<Self> {
            SumBackward(current()).prepare::<C>([local.node()]).compute_bound().stateless(global.into_primitive())
        }
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

    /// `x`'s output under `bn` weighted into a scalar, and the gradients of x, gamma and beta.
    fn pass(bn: &BatchNorm, x: Tensor<4>, weights: Tensor<4>) -> (Vec<f32>, Vec<f32>, Vec<f32>, Vec<f32>) {
        let x = x.require_grad();
        let out = forward(bn, x.clone());
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

    fn close(a: &[f32], b: &[f32], what: &str) {
        assert_eq!(a.len(), b.len(), "{what}");
        for (i, (x, y)) in a.iter().zip(b).enumerate() {
            assert!((x - y).abs() <= 1e-5 * (1.0 + y.abs()), "{what}[{i}]: {x} vs {y}");
        }
    }

    /// Three ranks (threads) with a slice of the batch each, synced: every rank's output and
    /// input gradient are its rows of the full batch's under burn's BatchNorm, the parameters'
    /// gradients summed over ranks are the full batch's, and the running statistics are equal.
    #[test]
    fn synced_ranks_give_the_full_batch() {
        let device = Device::flex().autodiff();
        let (world, rows, [c, h, w]) = (3, 2, [3, 4, 5]);
        let per_rank = rows * c * h * w;
        let x = values(world * per_rank, 0.25);
        let weights = values(world * per_rank, 7.0);
        let full = |v: &[f32]| Tensor::<1>::from_floats(v, &device).reshape([world * rows, c, h, w]);
        let reference = norm(&device);
        let (out, dx, dgamma, dbeta) = pass(&reference, full(&x), full(&weights));

        let threads = Arc::new(Threads { world, added: Mutex::new((Vec::new(), 0)), barrier: Barrier::new(world) });
        let ranks: Vec<_> = (0..world)
            .map(|r| {
                let (threads, device) = (threads.clone(), device.clone());
                let slice = |v: &[f32]| Tensor::<1>::from_floats(&v[r * per_rank..(r + 1) * per_rank], &device).reshape([rows, c, h, w]);
                let (x, weights) = (slice(&x), slice(&weights));
                std::thread::spawn(move || {
                    let bn = norm(&device);
                    let result = synced(threads, || pass(&bn, x, weights));
                    let stats = |s: &burn::module::RunningState<Tensor<1>>| s.value().into_data().try_into_vec::<f32>().unwrap();
                    (result, stats(&bn.running_mean), stats(&bn.running_var))
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
            let read = |s: &burn::module::RunningState<Tensor<1>>| s.value().into_data().try_into_vec::<f32>().unwrap();
            close(&mean, &read(&reference.running_mean), "running mean");
            close(&var, &read(&reference.running_var), "running variance");
        }
        close(&sums.0, &dgamma, "gamma gradient");
        close(&sums.1, &dbeta, "beta gradient");
    }

    /// Outside `synced`, and in inference, the layer is burn's BatchNorm.
    #[test]
    fn unsynced_is_burns_batch_norm() {
        for device in [Device::flex(), Device::flex().autodiff()] {
            let x = Tensor::<1>::from_floats(values(2 * 3 * 4 * 5, 0.25).as_slice(), &device).reshape([2, 3, 4, 5]);
            let (a, b) = (norm(&device), norm(&device));
            forward(&a, x.clone()).into_data().assert_eq(&b.forward(x).into_data(), true);
        }
    }
}

//! The contrastive objective (paper fig. 3): symmetric cross entropy over the image-text
//! similarity logits, the matching pair of each row being the positive.

use std::ops::Range;

use burn::prelude::*;
use burn::tensor::activation::log_softmax;
use burn::tensor::FloatDType;

use crate::clip::{normalize_backward, row_norms};

/// `(CE(logits, i) + CE(logits^T, i)) / 2` over a square `[N, N]` `logits_per_image`
/// (row i = image i against every text; see [`crate::Clip::logits`]).
///
/// # Shapes
/// - logits_per_image: `[N, N]` -> `[1]`
pub fn clip_loss(logits_per_image: Tensor<2>) -> Tensor<1> {
    let [n, m] = logits_per_image.dims();
    assert_eq!(n, m, "clip_loss needs a square logit matrix, got [{n}, {m}]");
    let per_image = cross_entropy_rows(logits_per_image.clone(), 0);
    let per_text = cross_entropy_rows(logits_per_image.transpose(), 0);
    (per_image + per_text) / 2.0
}

/// The sharded similarity of the paper (open_clip `--local-loss --gather-with-grad`): rank
/// `rank` scores only its own `n` rows against the features gathered from all ranks, so no
/// rank builds the whole `[N, N]` matrix. Features are L2-normalised; `temperature` is
/// `exp(logit_scale)`. Averaged over ranks (as data-parallel training averages gradients),
/// value and gradients equal [`clip_loss`] over the whole batch.
///
/// # Shapes
/// - image, text: `[n, E]` (this rank's rows); all_image, all_text: `[N, E]` (every rank's,
///   in rank order, this rank's at `rank * n`); temperature: `[1]` -> `[1]`
pub fn local_clip_loss(
    image: Tensor<2>,
    text: Tensor<2>,
    all_image: Tensor<2>,
    all_text: Tensor<2>,
    temperature: Tensor<1>,
    rank: usize,
) -> Tensor<1> {
    let offset = rank * image.dims()[0];
    let scale = temperature.unsqueeze::<2>();
    let per_image = image.matmul(all_text.transpose()) * scale.clone();
    let per_text = text.matmul(all_image.transpose()) * scale;
    (cross_entropy_rows(per_image, offset) + cross_entropy_rows(per_text, offset)) / 2.0
}

/// The loss of [`local_clip_loss`] with its gradients, written out.
pub struct LossGradients {
    /// The local loss (this process's rows; the whole batch's with one process), `[1]`.
    pub loss: Tensor<1>,
    /// `d(weight * loss) / d(image)` for every row of the (unnormalised) image features, `[N, E]`.
    pub image: Tensor<2>,
    /// Likewise for the text features, `[N, E]`.
    pub text: Tensor<2>,
    /// `d(weight * loss) / d(logit_scale)`, `[1]`.
    pub logit_scale: Tensor<1>,
}

/// [`local_clip_loss`] from unnormalised features and the logit scale, and its gradients in
/// closed form: what autodiff through `normalize`, the logits and the cross entropies computes,
/// without an autodiff graph and in fewer kernels (75 against 85, BENCHMARKS.md). The rows
/// `local` (of `N`) score against all `N`; with one process `local` is `0..N` and the loss is
/// [`clip_loss`].
///
/// With `a`, `t` the normalised features, `s = exp(logit_scale)`, `L_img = s a[local] t^T`,
/// `L_txt = s t[local] a^T` (`[n, N]`), `P` their row softmaxes, `c = weight / 2n` and `I` the
/// positives (row i, column `local.start + i`):
///
/// - loss = (mean(lse(L_img)) + mean(lse(L_txt))) / 2 - s mean_i <a_i, t_i> (i over `local`;
///   the positives' logits of both directions are the same numbers);
/// - `dL = c (P - I)` in each direction; `da = s dL_txt^T t[local]`, plus for the local rows
///   `s dL_img t`, and the text's the other way round, summed over the two directions;
/// - `dlogit_scale = sum(dL_img * L_img) + sum(dL_txt * L_txt)`;
///
/// then through `normalize` ([`crate::clip::normalize_backward`]). Computed in f32 whatever the
/// features' dtype (as the loss of mixed precision is); gradients are f32. Pass tensors without
/// autodiff (values): the results are values.
///
/// # Shapes
/// - image, text: `[N, E]`; logit_scale: `[1]`; `local`: a range of rows within `0..N`
pub fn clip_loss_gradients(image: Tensor<2>, text: Tensor<2>, logit_scale: Tensor<1>, local: Range<usize>, weight: f64) -> LossGradients {
    let [all, _] = image.dims();
    assert_eq!(text.dims()[0], all, "as many text rows as image rows");
    assert!(local.start < local.end && local.end <= all, "local rows {local:?} out of 0..{all}");
    let (image, text) = (image.cast(FloatDType::F32), text.cast(FloatDType::F32));
    let (image_norms, text_norms) = (row_norms(image.clone()), row_norms(text.clone()));
    let (a, t) = (image / image_norms.clone(), text / text_norms.clone());
    let n = local.len();
    let rows = |x: &Tensor<2>| x.clone().narrow(0, local.start, n);
    let (a_local, t_local) = (rows(&a), rows(&t));
    let s = logit_scale.cast(FloatDType::F32).exp().unsqueeze::<2>();

    let per_image = a_local.clone().matmul(t.clone().transpose()) * s.clone();
    let per_text = t_local.clone().matmul(a.clone().transpose()) * s.clone();
    let positives = (a_local.clone() * t_local.clone()).sum_dim(1) * s.clone();
    let (lse_image, p_image) = log_sum_exp_and_softmax(per_image.clone());
    let (lse_text, p_text) = log_sum_exp_and_softmax(per_text.clone());
    let loss = (lse_image.mean() + lse_text.mean()) / 2.0 - positives.clone().mean();

    let c = weight / (2 * n) as f64;
    let (g_image, g_text) = (p_image * c, p_text * c);
    let logit_scale = (g_image.clone() * per_image).sum() + (g_text.clone() * per_text).sum() - positives.mean() * weight;
    // The positives' part of dL (-c I) moves each local row by -c s times its partner, once per
    // direction.
    let d_a = add_rows(g_text.clone().transpose().matmul(t_local.clone()) * s.clone(), local.start, (g_image.clone().matmul(t.clone()) - t_local * (2.0 * c)) * s.clone());
    let d_t = add_rows(g_image.transpose().matmul(a_local.clone()) * s.clone(), local.start, (g_text.matmul(a.clone()) - a_local * (2.0 * c)) * s);
    LossGradients {
        loss,
        image: normalize_backward(a, image_norms, d_a),
        text: normalize_backward(t, text_norms, d_t),
        logit_scale,
    }
}

/// `log(sum(exp(x)))` of each row (`[n, 1]`) and the rows' softmax, from one max and one sum.
fn log_sum_exp_and_softmax(x: Tensor<2>) -> (Tensor<2>, Tensor<2>) {
    let max = x.clone().max_dim(1);
    let lse = (x.clone() - max.clone()).exp().sum_dim(1).log() + max;
    (lse.clone(), (x - lse).exp())
}

/// `x` with `rows` added to its rows from `start` on.
fn add_rows(x: Tensor<2>, start: usize, rows: Tensor<2>) -> Tensor<2> {
    let n = rows.dims()[0];
    if n == x.dims()[0] {
        return x + rows;
    }
    let range = [start..start + n];
    let sum = x.clone().slice(range.clone()) + rows;
    x.slice_assign(range, sum)
}

/// Mean cross entropy of the rows of `logits` `[n, M]` whose positive for row i is column
/// `offset + i` (a rank's local rows against the features of all ranks have `offset` = the
/// rank's first global row).
///
/// # Shapes
/// - logits: `[n, M]` with `offset + n <= M` -> `[1]`
pub fn cross_entropy_rows(logits: Tensor<2>, offset: usize) -> Tensor<1> {
    let [n, _] = logits.dims();
    let device = logits.device();
    let labels = Tensor::<1, Int>::arange(offset as i64..(offset + n) as i64, &device);
    -log_softmax(logits, 1).gather(1, labels.unsqueeze_dim(1)).mean()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scalar(t: Tensor<1>) -> f32 {
        t.into_data().try_to_vec::<f32>().unwrap()[0]
    }

    #[test]
    fn matches_a_hand_computed_value() {
        let device = Device::flex();
        // Rows: image 0 = [2, 0], image 1 = [1, 3].
        let logits = Tensor::<2>::from_floats([[2.0, 0.0], [1.0, 3.0]], &device);
        let lse = |a: f64, b: f64| (a.exp() + b.exp()).ln();
        let rows = ((lse(2.0, 0.0) - 2.0) + (lse(1.0, 3.0) - 3.0)) / 2.0;
        let cols = ((lse(2.0, 1.0) - 2.0) + (lse(0.0, 3.0) - 3.0)) / 2.0;
        let expected = (rows + cols) / 2.0;
        assert!((scalar(clip_loss(logits)) as f64 - expected).abs() < 1e-6);
    }

    #[test]
    fn perfect_alignment_has_low_loss_and_a_swap_high() {
        let device = Device::flex();
        let good = Tensor::<2>::from_floats([[10.0, -10.0], [-10.0, 10.0]], &device);
        let bad = Tensor::<2>::from_floats([[-10.0, 10.0], [10.0, -10.0]], &device);
        assert!(scalar(clip_loss(good)) < 1e-6);
        assert!(scalar(clip_loss(bad)) > 19.0);
    }

    /// Simulated ranks: each rank's local loss over its rows against the gathered features;
    /// their mean has the full-batch loss's value and gradients (open_clip's local loss with
    /// gathered gradients).
    #[test]
    fn sharded_loss_over_ranks_equals_the_full_batch_loss() {
        use burn::tensor::Distribution;
        let device = Device::flex().autodiff();
        let leaf = |seed: u64| {
            device.seed(seed);
            Tensor::<2>::random([8, 5], Distribution::Normal(0.0, 1.0), &device).require_grad()
        };
        let (image, text) = (leaf(1), leaf(2));
        let temperature = Tensor::<1>::from_floats([14.3], &device).require_grad();
        let norm = |x: Tensor<2>| crate::normalize(x);

        let full = clip_loss(norm(image.clone()).matmul(norm(text.clone()).transpose()) * temperature.clone().unsqueeze());
        let full_value = full.clone().into_scalar::<f32>();
        let full_grads = full.backward();

        let world = 4;
        let n = 8 / world;
        let (all_image, all_text) = (norm(image.clone()), norm(text.clone()));
        let mut total: Option<Tensor<1>> = None;
        for rank in 0..world {
            let rows = |t: &Tensor<2>| t.clone().narrow(0, rank * n, n);
            let local = local_clip_loss(rows(&all_image), rows(&all_text), all_image.clone(), all_text.clone(), temperature.clone(), rank);
            total = Some(match total {
                Some(t) => t + local,
                None => local,
            });
        }
        let sharded = total.unwrap() / world as f64;
        assert!((sharded.clone().into_scalar::<f32>() - full_value).abs() < 1e-5);
        let sharded_grads = sharded.backward();
        for (a, b) in [
            (image.grad(&full_grads).unwrap(), image.grad(&sharded_grads).unwrap()),
            (text.grad(&full_grads).unwrap(), text.grad(&sharded_grads).unwrap()),
        ] {
            let (a, b) = (a.into_data().try_to_vec::<f32>().unwrap(), b.into_data().try_to_vec::<f32>().unwrap());
            let diff = a.iter().zip(&b).map(|(x, y)| (x - y).abs()).fold(0.0f32, f32::max);
            assert!(diff < 1e-5, "gradient differs by {diff}");
        }
        let (a, b) = (temperature.grad(&full_grads).unwrap(), temperature.grad(&sharded_grads).unwrap());
        assert!((a.into_scalar::<f32>() - b.into_scalar::<f32>()).abs() < 1e-5);
    }

    /// The written-out gradients against autodiff through `normalize`, the logits and
    /// [`local_clip_loss`]: the whole batch and a rank's rows, with a weight.
    #[test]
    fn written_out_gradients_match_autodiff() {
        use burn::tensor::Distribution;
        let device = Device::flex().autodiff();
        let leaf = |seed: u64, rows: usize| {
            device.seed(seed);
            Tensor::<2>::random([rows, 5], Distribution::Normal(0.0, 1.0), &device).require_grad()
        };
        let values = |t: Tensor<2>| t.into_data().try_to_vec::<f32>().unwrap();
        let close = |what: &str, ours: Vec<f32>, theirs: Vec<f32>| {
            let scale = theirs.iter().fold(0f32, |m, x| m.max(x.abs()));
            let diff = ours.iter().zip(&theirs).map(|(x, y)| (x - y).abs()).fold(0f32, f32::max);
            assert!(diff <= 1e-5 * scale.max(1.0), "{what}: differs by {diff} (largest {scale})");
        };
        let (rows, weight) = (8, 3.0);
        for (local, seed) in [(0..8, 1), (2..4, 3), (6..8, 5)] {
            let (image, text) = (leaf(seed, rows), leaf(seed + 1, rows));
            let logit_scale = Tensor::<1>::from_floats([2.3], &device).require_grad();
            let (a, t) = (crate::normalize(image.clone()), crate::normalize(text.clone()));
            let n = local.len();
            let pick = |x: &Tensor<2>| x.clone().narrow(0, local.start, n);
            let loss = local_clip_loss(pick(&a), pick(&t), a.clone(), t.clone(), logit_scale.clone().exp(), local.start / n);
            let theirs = loss.clone() * weight;
            let grads = theirs.backward();

            let ours = clip_loss_gradients(image.clone().inner(), text.clone().inner(), logit_scale.clone().inner(), local.clone(), weight);
            close("loss", values(ours.loss.unsqueeze()), values(loss.inner().unsqueeze()));
            close("image", values(ours.image), values(image.grad(&grads).unwrap()));
            close("text", values(ours.text), values(text.grad(&grads).unwrap()));
            close("logit scale", values(ours.logit_scale.unsqueeze()), values(logit_scale.grad(&grads).unwrap().unsqueeze()));
        }
    }

    #[test]
    fn offset_rows_pick_the_shifted_diagonal() {
        let device = Device::flex();
        // Local rows 2..4 of a 4-column matrix: positives at columns 2 and 3.
        let logits = Tensor::<2>::from_floats([[0.0, 0.0, 5.0, 0.0], [0.0, 0.0, 0.0, 5.0]], &device);
        let lse = (5f64.exp() + 3.0).ln();
        assert!((scalar(cross_entropy_rows(logits, 2)) as f64 - (lse - 5.0)).abs() < 1e-6);
    }
}

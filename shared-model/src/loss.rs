//! The contrastive objective (paper fig. 3): symmetric cross entropy over the image-text
//! similarity logits, the matching pair of each row being the positive.

use burn::prelude::*;
use burn::tensor::activation::log_softmax;

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

    #[test]
    fn offset_rows_pick_the_shifted_diagonal() {
        let device = Device::flex();
        // Local rows 2..4 of a 4-column matrix: positives at columns 2 and 3.
        let logits = Tensor::<2>::from_floats([[0.0, 0.0, 5.0, 0.0], [0.0, 0.0, 0.0, 5.0]], &device);
        let lse = (5f64.exp() + 3.0).ln();
        assert!((scalar(cross_entropy_rows(logits, 2)) as f64 - (lse - 5.0)).abs() < 1e-6);
    }
}

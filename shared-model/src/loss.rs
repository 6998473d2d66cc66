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

    #[test]
    fn offset_rows_pick_the_shifted_diagonal() {
        let device = Device::flex();
        // Local rows 2..4 of a 4-column matrix: positives at columns 2 and 3.
        let logits = Tensor::<2>::from_floats([[0.0, 0.0, 5.0, 0.0], [0.0, 0.0, 0.0, 5.0]], &device);
        let lse = (5f64.exp() + 3.0).ln();
        assert!((scalar(cross_entropy_rows(logits, 2)) as f64 - (lse - 5.0)).abs() < 1e-6);
    }
}

//! The contrastive loss of a training step, apart from the towers: it takes the features of this
//! process's rows (detached) and returns the loss and its gradients with respect to them (and
//! the logit scale's gradient). One process: [`local`]. Data parallel:
//! `dist::DataParallel::contrast`, which scores this rank's rows against the features gathered
//! from every rank. The towers then back-propagate the feature gradients, in one pass
//! (`commands::train::gradients`) or block by block (`recompute::gradients`).

use anyhow::Result;
use burn::optim::GradientsParams;
use burn::prelude::*;
use clip_model::loss::clip_loss_gradients;
use clip_model::Clip;

/// The loss's share of one process: the loss and the gradients to back-propagate through this
/// process's towers.
pub struct Contrast {
    /// The loss over the whole (global) batch, `[1]` on the device: read back with the step's
    /// gradient norm, so the step does not wait for its forward pass before the backward one.
    pub loss: Tensor<1>,
    /// d(total loss)/d(this process's image features), `[rows, E]`.
    pub image_grad: Tensor<2>,
    pub text_grad: Tensor<2>,
    /// This process's share of the logit scale's gradient.
    pub grads: GradientsParams,
}

/// The loss on one step's features `(model, image, text)`: [`local`] or the data-parallel one.
pub type ContrastFn<'a> = dyn FnMut(&Clip, Tensor<2>, Tensor<2>) -> Result<Contrast> + 'a;

/// One process: the symmetric CLIP loss of `image` against `text` (`[rows, E]`, values) and its
/// gradients in closed form ([`clip_loss_gradients`]), taken of the loss multiplied by
/// `loss_scale`.
pub fn local(model: &Clip, image: Tensor<2>, text: Tensor<2>, loss_scale: f64) -> Contrast {
    let rows = image.dims()[0];
    let g = clip_loss_gradients(image.inner(), text.inner(), model.logit_scale.val().inner(), 0..rows, loss_scale);
    Contrast { loss: g.loss, image_grad: g.image, text_grad: g.text, grads: logit_scale_gradient(model, g.logit_scale) }
}

/// A step's loss: the mean of its micro-batches' (`[1]` each), on the device.
pub fn mean_loss(losses: Vec<Tensor<1>>) -> Result<Tensor<1>> {
    anyhow::ensure!(!losses.is_empty(), "a step needs at least one micro-batch");
    Ok(Tensor::cat(losses, 0).mean())
}

/// The logit scale's gradient as the optimiser takes gradients (none when it is frozen).
pub fn logit_scale_gradient(model: &Clip, grad: Tensor<1>) -> GradientsParams {
    let mut grads = GradientsParams::new();
    if model.logit_scale.is_require_grad() {
        grads.register(model.logit_scale.id, grad);
    }
    grads
}

/// Micro-batch `j`'s share of an `--accum-freq` step: its features (`image`, `text`, tracked or
/// not) take the place of its own among `cached` (every micro-batch's untracked features; empty
/// without accumulation), `contrast` scores them all, and the returned gradients are those of
/// micro-batch `j`'s rows.
pub fn micro_batch(
    model: &Clip,
    cached: &[(Tensor<2>, Tensor<2>)],
    j: usize,
    image: Tensor<2>,
    text: Tensor<2>,
    contrast: &mut ContrastFn,
) -> Result<Contrast> {
    if cached.is_empty() {
        return contrast(model, image.detach(), text.detach());
    }
    let (rows, offset) = (image.dims()[0], cached[..j].iter().map(|(i, _)| i.dims()[0]).sum::<usize>());
    let (mut images, mut texts): (Vec<Tensor<2>>, Vec<Tensor<2>>) = cached.iter().cloned().unzip();
    images[j] = image.detach();
    texts[j] = text.detach();
    let c = contrast(model, Tensor::cat(images, 0), Tensor::cat(texts, 0))?;
    Ok(Contrast { image_grad: c.image_grad.narrow(0, offset, rows), text_grad: c.text_grad.narrow(0, offset, rows), ..c })
}

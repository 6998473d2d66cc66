//! The contrastive loss of a training step, apart from the towers: it takes the features of this
//! process's rows (detached) and returns the loss and its gradients with respect to them (and
//! the logit scale's gradient). One process: [`local`]. Data parallel:
//! `dist::DataParallel::contrast`, which scores this rank's rows against the features gathered
//! from every rank. The towers then back-propagate the feature gradients, in one pass
//! (`commands::train::gradients`) or block by block (`recompute::gradients`).

use anyhow::Result;
use burn::optim::GradientsParams;
use burn::prelude::*;
use clip_model::loss::clip_loss;
use clip_model::Clip;

/// The loss's share of one process: the loss and the gradients to back-propagate through this
/// process's towers.
pub struct Contrast {
    /// The loss over the whole (global) batch.
    pub loss: f64,
    /// d(total loss)/d(this process's image features), `[rows, E]`.
    pub image_grad: Tensor<2>,
    pub text_grad: Tensor<2>,
    /// This process's share of the logit scale's gradient.
    pub grads: GradientsParams,
}

/// The loss on one step's features `(model, image, text)`: [`local`] or the data-parallel one.
pub type ContrastFn<'a> = dyn FnMut(&Clip, Tensor<2>, Tensor<2>) -> Result<Contrast> + 'a;

/// One process: the symmetric CLIP loss of `image` against `text` (`[rows, E]`, values), its
/// backward pass run with the loss multiplied by `loss_scale`.
pub fn local(model: &Clip, image: Tensor<2>, text: Tensor<2>, loss_scale: f64) -> Contrast {
    let (image, text) = (image.detach().require_grad(), text.detach().require_grad());
    let loss = clip_loss(model.logits(image.clone(), text.clone()));
    let value = loss.clone().into_scalar::<f32>() as f64;
    let mut grads = if loss_scale == 1.0 { loss.backward() } else { (loss * loss_scale).backward() };
    Contrast {
        loss: value,
        image_grad: image.grad_remove(&mut grads).expect("the loss uses the image features"),
        text_grad: text.grad_remove(&mut grads).expect("the loss uses the text features"),
        grads: GradientsParams::from_module(&mut grads, model),
    }
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

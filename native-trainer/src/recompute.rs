//! `--grad-checkpointing`: per-block recomputation, as PyTorch's `checkpoint` around each
//! residual block (open_clip `set_grad_checkpointing`).
//!
//! A tower is a chain embed -> blocks -> head. The forward pass runs untracked and keeps only
//! the activation between consecutive blocks. The loss is taken on the heads' outputs from the
//! last activations (as leaves), which gives its gradient with respect to them; then each block,
//! last to first, is recomputed with autodiff from its (leaf) input and back-propagated with the
//! incoming gradient (a vector-Jacobian product: `sum(block(x) * g)`), yielding its parameters'
//! gradients and the gradient for the block before. Peak memory holds one block's graph instead
//! of all of them; the cost is one more forward pass. BatchNorm's running statistics see each
//! batch twice (PyTorch's checkpointing does the same).
//!
//! burn's own checkpointing (`BalancedCheckpointing`) recomputes cheap element-wise ops but keeps
//! every matmul output, which on a transformer is most of the memory.

use burn::module::Module;
use burn::optim::{GradientsAccumulator, GradientsParams};
use burn::prelude::*;
use burn::tensor::Gradients;
use clip_model::vision::{ModifiedResNet, VisionTower, VisionTransformer};
use clip_model::Clip;

use crate::contrast::{self, ContrastFn};
use crate::precision::widened;

type Embed<'a, const D: usize> = Box<dyn Fn(&Clip) -> Tensor<D> + 'a>;
type Block<'a, const D: usize> = Box<dyn Fn(&Clip, usize, Tensor<D>) -> Tensor<D> + 'a>;
type Head<'a, const D: usize> = Box<dyn Fn(&Clip, Tensor<D>) -> Tensor<2> + 'a>;

/// One tower as functions of the model, so the same chain runs untracked (forward) and
/// tracked (recomputation).
struct Chain<'a, const D: usize> {
    embed: Embed<'a, D>,
    blocks: usize,
    block: Block<'a, D>,
    head: Head<'a, D>,
}

impl<const D: usize> Chain<'_, D> {
    /// The untracked forward pass: the input of every block, then the last block's output.
    fn activations(&self, model: &Clip) -> Vec<Tensor<D>> {
        let mut acts = vec![(self.embed)(model)];
        for i in 0..self.blocks {
            let x = acts.last().expect("embedding").clone();
            acts.push((self.block)(model, i, x));
        }
        acts
    }

    /// Features from an untracked forward pass.
    fn features(&self, untracked: &Clip) -> Tensor<2> {
        (self.head)(untracked, self.activations(untracked).pop().expect("activations"))
    }

    /// The untracked forward pass, then the head (tracked) on the last activation as a leaf.
    fn forward(&self, untracked: &Clip, model: &Clip) -> (Tensor<2>, Pass<D>) {
        let mut inputs = self.activations(untracked);
        let leaf = inputs.pop().expect("activations").detach().require_grad();
        ((self.head)(model, leaf.clone()), Pass { inputs, leaf, grad: None })
    }

    /// Back-propagates the pass's gradient (dLoss/d last activation) through the blocks and the
    /// embedding, one recomputed block at a time; parameter gradients go into `acc`.
    fn backward(&self, model: &Clip, pass: Pass<D>, acc: &mut GradientsAccumulator<Clip>) {
        let Pass { mut inputs, grad, .. } = pass;
        let Some(mut grad) = grad else { return };
        for i in (0..self.blocks).rev() {
            let input = inputs.pop().expect("one input per block").detach().require_grad();
            let output = (self.block)(model, i, input.clone());
            let mut grads = vjp(output, grad).backward();
            grad = input.grad_remove(&mut grads).expect("a block uses its input");
            acc.accumulate(model, GradientsParams::from_module(&mut grads, model));
        }
        let mut grads = vjp((self.embed)(model), grad).backward();
        acc.accumulate(model, GradientsParams::from_module(&mut grads, model));
    }
}

/// A micro-batch's pass through one tower: the blocks' inputs, the last activation as a leaf,
/// and, after the loss's backward, the loss's gradient with respect to it.
struct Pass<const D: usize> {
    inputs: Vec<Tensor<D>>,
    leaf: Tensor<D>,
    grad: Option<Tensor<D>>,
}

impl<const D: usize> Pass<D> {
    fn take_grad(&mut self, grads: &mut Gradients) {
        self.grad = self.leaf.grad_remove(grads);
    }
}

/// `sum(output * grad)`: its gradient with respect to anything `output` depends on is the
/// vector-Jacobian product with `grad`.
pub fn vjp<const D: usize>(output: Tensor<D>, grad: Tensor<D>) -> Tensor<1> {
    let grad = grad.cast(clip_model::precision::float_dtype(&output));
    let n = output.shape().num_elements();
    (output * grad).reshape([n]).sum()
}

fn vit(model: &Clip) -> &VisionTransformer {
    match &model.visual {
        VisionTower::Vit(v) => v,
        VisionTower::ResNet(_) => unreachable!("the chain was built for a ViT"),
    }
}

fn resnet(model: &Clip) -> &ModifiedResNet {
    match &model.visual {
        VisionTower::ResNet(r) => r,
        VisionTower::Vit(_) => unreachable!("the chain was built for a ResNet"),
    }
}

fn text_chain<'a>(ids: Tensor<2, Int>, blocks: usize) -> Chain<'a, 3> {
    let ids_head = ids.clone();
    Chain {
        embed: Box::new(move |m: &Clip| m.text.embed(ids.clone())),
        blocks,
        block: Box::new(move |m: &Clip, i, x| m.text.transformer.resblocks[i].forward(x, true)),
        head: Box::new(move |m: &Clip, x| m.text.head(x, ids_head.clone())),
    }
}

/// The image tower's chain: over tokens (ViT) or feature maps (ResNet).
enum ImageChain<'a> {
    Tokens(Chain<'a, 3>),
    Maps(Chain<'a, 4>),
}

enum ImagePass {
    Tokens(Pass<3>),
    Maps(Pass<4>),
}

impl ImageChain<'_> {
    fn new(model: &Clip, pixels: Tensor<4>) -> Self {
        match &model.visual {
            VisionTower::Vit(v) => Self::Tokens(Chain {
                embed: Box::new(move |m: &Clip| vit(m).embed(pixels.clone())),
                blocks: v.transformer.resblocks.len(),
                block: Box::new(move |m: &Clip, i, x| vit(m).transformer.resblocks[i].forward(x, false)),
                head: Box::new(move |m: &Clip, x| vit(m).head(x)),
            }),
            VisionTower::ResNet(r) => Self::Maps(Chain {
                embed: Box::new(move |m: &Clip| resnet(m).stem(pixels.clone())),
                blocks: r.blocks().count(),
                block: Box::new(move |m: &Clip, i, x| resnet(m).blocks().nth(i).expect("block index").forward(x)),
                head: Box::new(move |m: &Clip, x| resnet(m).head(x)),
            }),
        }
    }

    fn features(&self, untracked: &Clip) -> Tensor<2> {
        match self {
            Self::Tokens(c) => c.features(untracked),
            Self::Maps(c) => c.features(untracked),
        }
    }

    fn forward(&self, untracked: &Clip, model: &Clip) -> (Tensor<2>, ImagePass) {
        match self {
            Self::Tokens(c) => {
                let (f, p) = c.forward(untracked, model);
                (f, ImagePass::Tokens(p))
            }
            Self::Maps(c) => {
                let (f, p) = c.forward(untracked, model);
                (f, ImagePass::Maps(p))
            }
        }
    }

    fn backward(&self, model: &Clip, pass: ImagePass, acc: &mut GradientsAccumulator<Clip>) {
        match (self, pass) {
            (Self::Tokens(c), ImagePass::Tokens(p)) => c.backward(model, p, acc),
            (Self::Maps(c), ImagePass::Maps(p)) => c.backward(model, p, acc),
            _ => unreachable!("a pass comes from its own chain"),
        }
    }
}

impl ImagePass {
    fn take_grad(&mut self, grads: &mut Gradients) {
        match self {
            Self::Tokens(p) => p.take_grad(grads),
            Self::Maps(p) => p.take_grad(grads),
        }
    }
}

/// Loss and gradients of one optimiser step with per-block recomputation, computed through
/// `model` (mixed precision: the compute copy of `precision::compute_model`). Same semantics as
/// the plain path (`commands::train::gradients`): one micro-batch, or open_clip's `--accum-freq`
/// where each micro-batch is scored against the cached features of the others (gradients summed
/// in f32); the loss on the features comes from `contrast` (one process, or sharded over ranks),
/// which also returns its gradients for them.
pub fn gradients(model: &Clip, inputs: &[(Tensor<4>, Tensor<2, Int>)], contrast: &mut ContrastFn) -> anyhow::Result<(Tensor<1>, GradientsParams)> {
    let untracked = untracked(model);
    let text_blocks = model.text.transformer.resblocks.len();
    let chains: Vec<(ImageChain, Chain<3>)> =
        inputs.iter().map(|(pixels, ids)| (ImageChain::new(model, pixels.clone()), text_chain(ids.clone(), text_blocks))).collect();
    // Every micro-batch's features, as the others' negatives (only with accumulation).
    let cached: Vec<(Tensor<2>, Tensor<2>)> = if inputs.len() > 1 {
        chains.iter().map(|(image, text)| (image.features(&untracked), text.features(&untracked))).collect()
    } else {
        Vec::new()
    };

    let mut total_grads = GradientsAccumulator::<Clip>::new();
    let mut losses = Vec::with_capacity(chains.len());
    for (j, (image_chain, text_chain)) in chains.iter().enumerate() {
        let mut acc = GradientsAccumulator::<Clip>::new();
        let (image_features, image_pass) = image_chain.forward(&untracked, model);
        let (text_features, text_pass) = text_chain.forward(&untracked, model);
        let c = contrast::micro_batch(model, &cached, j, image_features.clone(), text_features.clone(), contrast)?;
        losses.push(c.loss);
        acc.accumulate(model, c.grads);
        let grads = (vjp(image_features, c.image_grad) + vjp(text_features, c.text_grad)).backward();
        backward_towers(model, (image_chain, image_pass), (text_chain, text_pass), grads, &mut acc);
        let grads = acc.grads();
        total_grads.accumulate(model, if inputs.len() > 1 { widened(grads, model) } else { grads });
    }
    Ok((contrast::mean_loss(losses)?, total_grads.grads()))
}

/// From the backward pass through the heads (`grads`): the heads' parameter gradients, then
/// each tower's blocks recomputed and back-propagated (not a locked image tower's).
fn backward_towers(
    model: &Clip,
    (image_chain, mut image_pass): (&ImageChain, ImagePass),
    (text_chain, mut text_pass): (&Chain<3>, Pass<3>),
    mut grads: Gradients,
    acc: &mut GradientsAccumulator<Clip>,
) {
    if trainable(&model.visual) {
        image_pass.take_grad(&mut grads);
    }
    text_pass.take_grad(&mut grads);
    acc.accumulate(model, GradientsParams::from_module(&mut grads, model));
    text_chain.backward(model, text_pass, acc);
    image_chain.backward(model, image_pass, acc);
}

/// An untracked copy of `model` (no gradients). Every parameter is materialised first: in burn
/// 0.22, `set_require_grad` on a lazily initialised parameter changes the state it shares with
/// its clones, so `model.clone().no_grad()` on a fresh model would initialise the original's
/// parameters without gradients too, and they would never train.
pub fn untracked(model: &Clip) -> Clip {
    materialise(model);
    model.clone().no_grad()
}

/// Draws every lazily initialised parameter of `module` now (burn initialises on first read).
pub fn materialise<M: Module>(module: &M) {
    struct Materialise;
    impl burn::module::ModuleVisitor for Materialise {
        fn visit_float<const D: usize>(&mut self, param: &burn::module::Param<Tensor<D>>) {
            let _ = param.val();
        }
    }
    module.visit(&mut Materialise);
}

/// Whether any parameter of `module` takes gradients.
pub fn trainable<M: Module>(module: &M) -> bool {
    struct Any(bool);
    impl burn::module::ModuleVisitor for Any {
        fn visit_float<const D: usize>(&mut self, param: &burn::module::Param<Tensor<D>>) {
            self.0 |= param.val().is_require_grad();
        }
    }
    let mut any = Any(false);
    module.visit(&mut any);
    any.0
}

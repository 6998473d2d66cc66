//! Multi-head scaled dot-product attention with a hand-written backward pass.
//!
//! `softmax(q kᵀ / sqrt(hd)) v` per head. Under autodiff burn differentiates its composition op by
//! op, and the transformer's q, k and v are slices of one in-projection (open_clip's
//! `in_proj_weight`): each slice's gradient was a zero-filled tensor the size of the whole
//! projection with the slice written in, then two full-size additions (8 launches and ~0.7 GB of
//! bf16 traffic per ViT-B-32 block at batch 256). Here, with `P` the probabilities and `dO` the
//! output's gradient:
//!
//! - `dV = Pᵀ dO`, `dP = dO Vᵀ`, `dS = P * (dP - rowsum(dP * P)) / sqrt(hd)`,
//! - `dQ = dS K`, `dK = dSᵀ Q`,
//!
//! and for the packed projection the three gradients concatenated into one. What the backward pass
//! keeps: the heads of q, k, v and `P` (what autodiff kept for its matmuls).
//!
//! Layout, for burn's fusion and cubecl's matmuls (each choice counted in launches per training
//! step, BENCHMARKS.md): the heads of q, k and v are copied once out of the packed projection
//! into `[3, B, H, T, hd]` (a view whose heads interleave with its rows is copied by the matmul
//! at every use), the output's gradient is split once, the packed gradient is stacked and copied
//! once; the scores' scaling, mask and softmax (and the backward pass's row sum and its product)
//! run over `[B*H, Tq, Tk]`, where the fusion makes them one reduce-broadcast kernel.
//!
//! Without autodiff the ops are the forward composition (a burn backend extension, see
//! `extension`).

use burn::backend::tensor::{BoolTensor, FloatTensor};
use burn::backend::{Backend, Dispatch, TensorMetadata};
use burn::prelude::*;
use burn::tensor::Slice;

use crate::extension::backend_ops;

/// The causal mask of `t` tokens, `[1, 1, T, T]`: true above the diagonal, the future keys each
/// query must not see. Built once per tower pass (each build is ~11 kernel launches).
pub fn causal_mask(t: usize, device: &Device) -> Tensor<4, Bool> {
    Tensor::<2, Bool>::tril_mask([t, t], 0, device).unsqueeze::<4>()
}

/// Self-attention over q;k;v packed along the last axis (`[B, T, 3D]`, the in-projection's
/// output), `heads` heads, causal (with [`causal_mask`]: a query sees itself and the keys before
/// it) or not.
///
/// # Shapes
/// - qkv: `[B, T, 3D]` -> `[B, T, D]`
pub fn self_attention(qkv: Tensor<3>, heads: usize, causal: Option<&Tensor<4, Bool>>) -> Tensor<3> {
    let out = match causal {
        Some(mask) => {
            <Dispatch as AttentionBackend>::clip_causal_self_attention(qkv.into_dispatch(), mask.clone().into_dispatch(), heads)
        }
        None => <Dispatch as AttentionBackend>::clip_self_attention(qkv.into_dispatch(), heads),
    };
    Tensor::from_dispatch(out)
}

/// Attention of separately projected queries over keys and values (the ResNet's attention pool,
/// whose one query is the mean token).
///
/// # Shapes
/// - q: `[B, Tq, D]`, k and v: `[B, Tk, D]` -> `[B, Tq, D]`
pub fn multi_head_attention(q: Tensor<3>, k: Tensor<3>, v: Tensor<3>, heads: usize) -> Tensor<3> {
    Tensor::from_dispatch(<Dispatch as AttentionBackend>::clip_attention(
        q.into_dispatch(),
        k.into_dispatch(),
        v.into_dispatch(),
        heads,
    ))
}

backend_ops!(
    AttentionBackend,
    pub trait AttentionBackend: Backend {
        /// [`self_attention`], not causal.
        #[fusion(default)]
        fn clip_self_attention(qkv: FloatTensor<Self>, heads: usize) -> FloatTensor<Self> {
            packed_forward::<Self>(qkv, None, heads).0
        }

        /// [`self_attention`], causal: `mask` (`[1, 1, T, T]`) is true where a key is hidden.
        #[fusion(default)]
        fn clip_causal_self_attention(qkv: FloatTensor<Self>, mask: BoolTensor<Self>, heads: usize) -> FloatTensor<Self> {
            packed_forward::<Self>(qkv, Some(mask), heads).0
        }

        /// [`multi_head_attention`].
        #[fusion(default)]
        fn clip_attention(q: FloatTensor<Self>, k: FloatTensor<Self>, v: FloatTensor<Self>, heads: usize) -> FloatTensor<Self> {
            separate_forward::<Self>([q, k, v], heads).0
        }
    }
);

/// `x` laid out contiguously in its own shape (one copy kernel when it is a permuted view): a
/// flattening reshape is a copy for a permuted tensor, the reshape back a view.
fn contiguous<B: Backend>(x: FloatTensor<B>) -> FloatTensor<B> {
    let shape = x.shape();
    B::float_reshape(B::float_reshape(x, Shape::new([shape.num_elements()])), shape)
}

/// `[B, T, D]` -> `[B, heads, T, D / heads]`, contiguous: the matmuls copy a view whose heads
/// interleave with its rows (cubecl's "highly permuted" layout) at every use, so the heads are
/// copied once here.
fn split_heads<B: Backend>(x: FloatTensor<B>, heads: usize) -> FloatTensor<B> {
    let [b, t, d] = x.shape().dims::<3>();
    contiguous::<B>(B::float_swap_dims(B::float_reshape(x, Shape::new([b, t, heads, d / heads])), 1, 2))
}

/// `[B, heads, T, hd]` -> `[B, T, heads * hd]`.
fn merge_heads<B: Backend>(x: FloatTensor<B>) -> FloatTensor<B> {
    let [b, h, t, hd] = x.shape().dims::<4>();
    B::float_reshape(B::float_swap_dims(x, 1, 2), Shape::new([b, t, h * hd]))
}

/// `1 / sqrt(head dim)` of heads `[B, H, T, hd]`.
fn scale<B: Backend>(heads: &FloatTensor<B>) -> f64 {
    (heads.shape()[3] as f64).powf(-0.5)
}

/// Scores or probabilities `[B, H, Tq, Tk]` as `[B*H, Tq, Tk]` (a view): burn's fusion runs the
/// scaling, mask and softmax (and the backward pass's row sum with its element-wise work) as one
/// kernel there, but as several over `[B, H, Tq, Tk]`.
fn per_head<B: Backend>(x: FloatTensor<B>) -> FloatTensor<B> {
    let [b, h, tq, tk] = x.shape().dims::<4>();
    B::float_reshape(x, Shape::new([b * h, tq, tk]))
}

/// The attention of heads `q` `[B, H, Tq, hd]` over `k`, `v` `[B, H, Tk, hd]`, keys hidden where
/// `mask` is true: the output `[B, H, Tq, hd]` and the probabilities `[B, H, Tq, Tk]`.
fn attend<B: Backend>(
    q: FloatTensor<B>,
    k: FloatTensor<B>,
    v: FloatTensor<B>,
    mask: Option<BoolTensor<B>>,
) -> (FloatTensor<B>, FloatTensor<B>) {
    let scale = scale::<B>(&q);
    let scores = B::float_matmul(q, B::float_swap_dims(k, 2, 3));
    let shape = scores.shape();
    let [_, _, tq, tk] = shape.dims::<4>();
    let scores = per_head::<B>(scores);
    let scores = match mask {
        Some(mask) => B::float_mask_fill(scores, B::bool_reshape(mask, Shape::new([1, tq, tk])), f32::NEG_INFINITY.into()),
        None => scores,
    };
    let scores = B::float_mul_scalar(scores, scale.into());
    // burn's softmax shifts by the row max (which needs no gradient here: the backward pass below
    // works from the probabilities).
    let probs = B::float_reshape(B::softmax(scores, 2), shape);
    (B::float_matmul(probs.clone(), v), probs)
}

/// The gradients of [`attend`]'s q, k and v from its output's gradient `grad`, the heads and the
/// probabilities (masked keys have probability 0, so they get no gradient).
#[cfg(not(target_family = "wasm"))] // used by the backward pass (autodiff) only
fn attend_backward<B: Backend>(
    grad: FloatTensor<B>,
    q: FloatTensor<B>,
    k: FloatTensor<B>,
    v: FloatTensor<B>,
    probs: FloatTensor<B>,
) -> (FloatTensor<B>, FloatTensor<B>, FloatTensor<B>) {
    let scale = scale::<B>(&q);
    let dv = B::float_matmul(B::float_swap_dims(probs.clone(), 2, 3), grad.clone());
    let dp = B::float_matmul(grad, B::float_swap_dims(v, 2, 3));
    let shape = dp.shape();
    let (dp, probs) = (per_head::<B>(dp), per_head::<B>(probs));
    let row = B::float_sum_dim(B::float_mul(dp.clone(), probs.clone()), 2);
    let ds = B::float_reshape(B::float_mul_scalar(B::float_mul(probs, B::float_sub(dp, row)), scale.into()), shape);
    let dq = B::float_matmul(ds.clone(), k);
    let dk = B::float_matmul(B::float_swap_dims(ds, 2, 3), q);
    (dq, dk, dv)
}

/// The heads of q, k and v of a packed `[B, T, 3D]` projection (`[B, T, 3, H, hd]`), each
/// `[B, H, T, hd]`: one copy into `[3, B, H, T, hd]`, then three contiguous views.
fn unpack<B: Backend>(qkv: FloatTensor<B>, heads: usize) -> [FloatTensor<B>; 3] {
    let [b, t, d3] = qkv.shape().dims::<3>();
    let hd = d3 / 3 / heads;
    let all = B::float_permute(B::float_reshape(qkv, Shape::new([b, t, 3, heads, hd])), &[2, 0, 3, 1, 4]);
    let all = contiguous::<B>(all);
    [0, 1, 2].map(|i| {
        let part = B::float_slice(all.clone(), &[Slice::from(i..i + 1), Slice::full(), Slice::full(), Slice::full(), Slice::full()]);
        B::float_reshape(part, Shape::new([b, heads, t, hd]))
    })
}

/// The inverse of [`unpack`]: the heads' gradients `[B, H, T, hd]` into one packed `[B, T, 3D]`
/// (stacked, then one copy into the projection's layout).
#[cfg(not(target_family = "wasm"))] // used by the backward pass (autodiff) only
fn pack<B: Backend>(heads: [FloatTensor<B>; 3]) -> FloatTensor<B> {
    let [b, h, t, hd] = heads[0].shape().dims::<4>();
    let all = B::float_cat(heads.map(|x| B::float_reshape(x, Shape::new([1, b, h, t, hd]))).into(), 0);
    B::float_reshape(B::float_permute(all, &[1, 3, 0, 2, 4]), Shape::new([b, t, 3 * h * hd]))
}

/// The output `[B, T, D]` of attention over the heads of q, k, v, those heads and the
/// probabilities (what the backward pass keeps).
#[allow(clippy::type_complexity)]
fn forward_heads<B: Backend>(
    [q, k, v]: [FloatTensor<B>; 3],
    mask: Option<BoolTensor<B>>,
) -> (FloatTensor<B>, [FloatTensor<B>; 3], FloatTensor<B>) {
    let (out, probs) = attend::<B>(q.clone(), k.clone(), v.clone(), mask);
    (merge_heads::<B>(out), [q, k, v], probs)
}

/// The packed self-attention ([`forward_heads`] of the packed projection's heads).
#[allow(clippy::type_complexity)]
fn packed_forward<B: Backend>(
    qkv: FloatTensor<B>,
    mask: Option<BoolTensor<B>>,
    heads: usize,
) -> (FloatTensor<B>, [FloatTensor<B>; 3], FloatTensor<B>) {
    forward_heads::<B>(unpack::<B>(qkv, heads), mask)
}

/// Attention of separately projected q, k, v `[B, T, D]` ([`forward_heads`] of their heads).
#[allow(clippy::type_complexity)]
fn separate_forward<B: Backend>(
    qkv: [FloatTensor<B>; 3],
    heads: usize,
) -> (FloatTensor<B>, [FloatTensor<B>; 3], FloatTensor<B>) {
    forward_heads::<B>(qkv.map(|x| split_heads::<B>(x, heads)), None)
}

#[cfg(not(target_family = "wasm"))]
mod autodiff {
    use super::*;
    use burn::backend::autodiff::checkpoint::base::Checkpointer;
    use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
    use burn::backend::autodiff::grads::Gradients;
    use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
    use burn::backend::autodiff::Autodiff;

    /// What both backward passes keep: the heads of q, k, v and the probabilities.
    type State<B> = ([FloatTensor<B>; 3], FloatTensor<B>);

    /// The gradients of the heads of q, k and v, each `[B, H, T, hd]`, from the output's gradient
    /// and the state.
    fn head_gradients<B: Backend>(grad: FloatTensor<B>, ([q, k, v], probs): State<B>) -> [FloatTensor<B>; 3] {
        let heads = q.shape()[1];
        let (dq, dk, dv) = attend_backward::<B>(split_heads::<B>(grad, heads), q, k, v, probs);
        [dq, dk, dv]
    }

    /// The packed projection's gradient: the three heads' gradients side by side.
    #[derive(Debug)]
    struct PackedBackward;

    impl<B: Backend> Backward<B, 1> for PackedBackward {
        type State = State<B>;

        fn backward(self, ops: Ops<Self::State, 1>, grads: &mut Gradients, _checkpointer: &mut Checkpointer) {
            let [node] = ops.parents;
            let grad = grads.consume::<B>(&ops.node);
            if let Some(node) = node {
                grads.register::<B>(node.id, pack::<B>(head_gradients::<B>(grad, ops.state)));
            }
        }
    }

    /// Separate q, k and v: one gradient each.
    #[derive(Debug)]
    struct SeparateBackward;

    impl<B: Backend> Backward<B, 3> for SeparateBackward {
        type State = State<B>;

        fn backward(self, ops: Ops<Self::State, 3>, grads: &mut Gradients, _checkpointer: &mut Checkpointer) {
            let grad = grads.consume::<B>(&ops.node);
            for (node, grad) in ops.parents.into_iter().zip(head_gradients::<B>(grad, ops.state).map(merge_heads::<B>)) {
                if let Some(node) = node {
                    grads.register::<B>(node.id, grad);
                }
            }
        }
    }

    fn packed<B: Backend + AttentionBackend, C: CheckpointStrategy>(
        qkv: FloatTensor<Autodiff<B, C>>,
        mask: Option<BoolTensor<B>>,
        heads: usize,
    ) -> FloatTensor<Autodiff<B, C>> {
        match PackedBackward.prepare::<C>([qkv.node()]).compute_bound().stateful() {
            OpsKind::Tracked(prep) => {
                let (out, qkv_heads, probs) = packed_forward::<B>(qkv.into_primitive(), mask, heads);
                prep.finish((qkv_heads, probs), out)
            }
            OpsKind::UnTracked(prep) => prep.finish(packed_forward::<B>(qkv.into_primitive(), mask, heads).0),
        }
    }

    impl<B: Backend + AttentionBackend, C: CheckpointStrategy> AttentionBackend for Autodiff<B, C> {
        fn clip_self_attention(qkv: FloatTensor<Self>, heads: usize) -> FloatTensor<Self> {
            packed::<B, C>(qkv, None, heads)
        }

        fn clip_causal_self_attention(qkv: FloatTensor<Self>, mask: BoolTensor<Self>, heads: usize) -> FloatTensor<Self> {
            packed::<B, C>(qkv, Some(mask), heads)
        }

        fn clip_attention(q: FloatTensor<Self>, k: FloatTensor<Self>, v: FloatTensor<Self>, heads: usize) -> FloatTensor<Self> {
            match SeparateBackward.prepare::<C>([q.node(), k.node(), v.node()]).compute_bound().stateful() {
                OpsKind::Tracked(prep) => {
                    let (out, qkv_heads, probs) = separate_forward::<B>([q, k, v].map(|x| x.into_primitive()), heads);
                    prep.finish((qkv_heads, probs), out)
                }
                OpsKind::UnTracked(prep) => {
                    prep.finish(B::clip_attention(q.into_primitive(), k.into_primitive(), v.into_primitive(), heads))
                }
            }
        }
    }
}

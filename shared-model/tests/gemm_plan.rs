//! The cuBLAS path's layout arithmetic (vendor/burn-cubecl/src/kernel/matmul/gemm_plan.rs): a
//! row-major strided matmul becomes column-major strided-batched GEMM calls. The calls a plan
//! describes are executed here the way BLAS defines them, on buffers laid out with every kind of
//! stride a burn tensor can have (transposed views, permuted and broadcast batch dimensions,
//! padded rows), and compared element by element with the matmul computed directly. The GPU
//! script checks the real cuBLAS calls (tests/gpu/race-matmul.sh: the losses against cubek's).

use burn_cubecl::kernel::matmul::gemm_plan::{GemmPlan, MAX_CALLS, Operand, plan};

/// A strided view into its own buffer.
struct Strided {
    shape: Vec<usize>,
    strides: Vec<usize>,
    data: Vec<f64>,
}

impl Strided {
    fn operand(&self) -> Operand<'_> {
        Operand { shape: &self.shape, strides: &self.strides }
    }

    fn offset(&self, index: &[usize]) -> usize {
        index.iter().zip(&self.strides).map(|(i, s)| i * s).sum()
    }
}

struct Rng(u64);

impl Rng {
    fn below(&mut self, n: usize) -> usize {
        self.0 = self.0.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        ((self.0 >> 33) % n as u64) as usize
    }
}

/// Lays `shape` out with its dimensions stored in `order` (outermost first), `pad` extra
/// elements after each row of the innermost-but-one stored dimension, and random values.
fn layout(shape: &[usize], order: &[usize], pad: usize, rng: &mut Rng) -> Strided {
    let mut strides = vec![0; shape.len()];
    let mut step = 1;
    for (position, &d) in order.iter().enumerate().rev() {
        strides[d] = step;
        step *= shape[d];
        if position == order.len() - 1 {
            step += pad;
        }
    }
    let len = shape.iter().zip(&strides).map(|(n, s)| (n - 1) * s).sum::<usize>() + 1;
    let data = (0..len).map(|_| rng.below(17) as f64 - 8.0).collect();
    Strided { shape: shape.to_vec(), strides, data }
}

/// Every index of `shape`, row-major.
fn indices(shape: &[usize]) -> Vec<Vec<usize>> {
    let mut all = vec![vec![]];
    for &n in shape {
        all = all.into_iter().flat_map(|prefix| (0..n).map(move |i| [prefix.clone(), vec![i]].concat())).collect();
    }
    all
}

/// `lhs @ rhs` at each output index, batch dimensions broadcast.
fn direct(lhs: &Strided, rhs: &Strided, out_shape: &[usize]) -> Vec<(Vec<usize>, f64)> {
    let rank = out_shape.len();
    let k = lhs.shape[rank - 1];
    let at = |t: &Strided, index: &[usize], row: usize, col: usize| {
        let mut full: Vec<usize> = index[..rank - 2].iter().zip(&t.shape).map(|(&i, &n)| if n == 1 { 0 } else { i }).collect();
        full.extend([row, col]);
        t.data[t.offset(&full)]
    };
    indices(out_shape)
        .into_iter()
        .map(|index| {
            let (i, j) = (index[rank - 2], index[rank - 1]);
            let value = (0..k).map(|p| at(lhs, &index, i, p) * at(rhs, &index, p, j)).sum();
            (index, value)
        })
        .collect()
}

/// The calls `plan` describes, as BLAS defines `gemmStridedBatched` (column-major, `alpha = 1`,
/// `beta = 0`), with `A` = rhs's buffer, `B` = lhs's, `C` = out's.
fn run_blas(plan: &GemmPlan, a: &[f64], b: &[f64], c: &mut [f64]) {
    for offsets in &plan.outer {
        for batch in 0..plan.batch {
            let (oa, ob, oc) =
                (offsets[0] + batch * plan.stride_a, offsets[1] + batch * plan.stride_b, offsets[2] + batch * plan.stride_c);
            for i in 0..plan.m {
                for j in 0..plan.n {
                    let op_a = |i: usize, p: usize| if plan.trans_a { a[oa + p + i * plan.lda] } else { a[oa + i + p * plan.lda] };
                    let op_b = |p: usize, j: usize| if plan.trans_b { b[ob + j + p * plan.ldb] } else { b[ob + p + j * plan.ldb] };
                    c[oc + i + j * plan.ldc] = (0..plan.k).map(|p| op_a(i, p) * op_b(p, j)).sum();
                }
            }
        }
    }
}

/// Runs the plan for `lhs @ rhs` into `out` and checks every output element; false when no plan.
fn check(lhs: &Strided, rhs: &Strided, out: &mut Strided) -> bool {
    let Some(plan) = plan(lhs.operand(), rhs.operand(), out.operand()) else {
        return false;
    };
    assert!(plan.outer.len() <= MAX_CALLS);
    for leading in [plan.lda, plan.ldb, plan.ldc] {
        assert!(leading >= 1);
    }
    assert!(plan.lda >= if plan.trans_a { plan.k } else { plan.m }, "{plan:?}");
    assert!(plan.ldb >= if plan.trans_b { plan.n } else { plan.k }, "{plan:?}");
    assert!(plan.ldc >= plan.m, "{plan:?}");
    out.data.iter_mut().for_each(|v| *v = f64::NAN);
    run_blas(&plan, &rhs.data, &lhs.data, &mut out.data);
    for (index, expected) in direct(lhs, rhs, &out.shape) {
        let got = out.data[out.offset(&index)];
        assert_eq!(got, expected, "out{index:?} lhs {:?}/{:?} rhs {:?}/{:?} out {:?}/{:?} {plan:?}",
            lhs.shape, lhs.strides, rhs.shape, rhs.strides, out.shape, out.strides);
    }
    true
}

fn shuffled(n: usize, rng: &mut Rng) -> Vec<usize> {
    let mut order: Vec<usize> = (0..n).collect();
    for i in (1..n).rev() {
        order.swap(i, rng.below(i + 1));
    }
    order
}

#[test]
fn every_planned_layout_computes_the_matmul() {
    let mut rng = Rng(7);
    let (mut planned, mut several_calls, mut transposed) = (0, 0, [0, 0]);
    let cases = 3000;
    for _ in 0..cases {
        let rank = 2 + rng.below(3);
        let batch: Vec<usize> = (0..rank - 2).map(|_| 1 + rng.below(3)).collect();
        let (m, k, n) = ([1, 2, 3, 5][rng.below(4)], [1, 2, 4][rng.below(3)], [1, 3, 4][rng.below(3)]);
        let operand = |rows: usize, cols: usize, rng: &mut Rng| {
            // Batch dimensions broadcast one in four; storage order: row-major, one of the
            // transposes, or any permutation; rows padded one in four.
            let mut shape: Vec<usize> = batch.iter().map(|&b| if rng.below(4) == 0 { 1 } else { b }).collect();
            shape.extend([rows, cols]);
            let order = match rng.below(3) {
                0 => (0..rank).collect(),
                1 => (0..rank - 2).chain([rank - 1, rank - 2]).collect(),
                _ => shuffled(rank, rng),
            };
            let pad = if rng.below(4) == 0 { 1 + rng.below(3) } else { 0 };
            layout(&shape, &order, pad, rng)
        };
        let lhs = operand(m, k, &mut rng);
        let rhs = operand(k, n, &mut rng);
        let mut out_shape = batch.clone();
        out_shape.extend([m, n]);
        let out_order: Vec<usize> = if rng.below(4) == 0 { shuffled(rank - 2, &mut rng).into_iter().chain([rank - 2, rank - 1]).collect() } else { (0..rank).collect() };
        let mut out = layout(&out_shape, &out_order, rng.below(2), &mut rng);
        if check(&lhs, &rhs, &mut out) {
            let plan = plan(lhs.operand(), rhs.operand(), out.operand()).unwrap();
            planned += 1;
            several_calls += (plan.outer.len() > 1) as usize;
            transposed[0] += plan.trans_a as usize;
            transposed[1] += plan.trans_b as usize;
        }
    }
    // Most random layouts are BLAS layouts, and the checks above ran on every branch.
    assert!(planned > cases / 2, "{planned} of {cases} planned");
    assert!(several_calls > 0 && transposed[0] > 0 && transposed[1] > 0, "{several_calls} {transposed:?}");
}

/// The layouts of CLIP's matmuls as burn hands them over: a linear layer (`x @ W`, `W` a
/// `[1, in, out]` broadcast), its weight gradient (`x^T @ dy` through transposed views), and
/// attention scores over heads split from one projection (`[B, T, H, D]` permuted to
/// `[B, H, T, D]`, keys transposed) — each one cuBLAS call.
#[test]
fn clip_layouts_are_single_calls() {
    let mut rng = Rng(3);
    let (b, t, h, d, width) = (2, 5, 3, 4, 12);
    let x = layout(&[b, t, width], &[0, 1, 2], 0, &mut rng);
    let w = layout(&[1, width, 2 * width], &[0, 1, 2], 0, &mut rng);
    let mut y = layout(&[b, t, 2 * width], &[0, 1, 2], 0, &mut rng);
    assert!(check(&x, &w, &mut y));
    let xt = layout(&[b, width, t], &[0, 2, 1], 0, &mut rng);
    let dy = layout(&[b, t, 2 * width], &[0, 1, 2], 0, &mut rng);
    let mut dw = layout(&[b, width, 2 * width], &[0, 1, 2], 0, &mut rng);
    assert!(check(&xt, &dy, &mut dw));
    // q: [B, H, T, D] stored as [B, T, H, D]; k^T: [B, H, D, T] stored as [B, T, H, D].
    let q = layout(&[b, h, t, d], &[0, 2, 1, 3], 0, &mut rng);
    let kt = layout(&[b, h, d, t], &[0, 3, 1, 2], 0, &mut rng);
    let mut scores = layout(&[b, h, t, t], &[0, 1, 2, 3], 0, &mut rng);
    assert!(check(&q, &kt, &mut scores));
    let p = plan(q.operand(), kt.operand(), scores.operand()).unwrap();
    // B and H do not fold (q's head stride is D, its batch stride T*H*D): B calls of H GEMMs.
    assert_eq!((p.outer.len(), p.batch), (b, h));
    for plan in [plan(x.operand(), w.operand(), y.operand()), plan(xt.operand(), dy.operand(), dw.operand())] {
        assert_eq!(plan.unwrap().outer.len(), 1);
    }
}

#[test]
fn non_blas_layouts_are_left_to_the_kernel() {
    let mut rng = Rng(5);
    let contiguous = |shape: &[usize], rng: &mut Rng| layout(shape, &(0..shape.len()).collect::<Vec<_>>(), 0, rng);
    let lhs = contiguous(&[2, 3, 4], &mut rng);
    let rhs = contiguous(&[2, 4, 5], &mut rng);
    let out = contiguous(&[2, 3, 5], &mut rng);
    assert!(plan(lhs.operand(), rhs.operand(), out.operand()).is_some());
    // Neither rows nor columns contiguous (a strided slice of a matrix).
    let every_other = Operand { shape: &[2, 3, 4], strides: &[48, 8, 2] };
    assert!(plan(every_other, rhs.operand(), out.operand()).is_none());
    // A broadcast inside the matrix (stride 0 over rows).
    let rows_broadcast = Operand { shape: &[2, 3, 4], strides: &[4, 0, 1] };
    assert!(plan(rows_broadcast, rhs.operand(), out.operand()).is_none());
    // An output written twice (a batch stride of 0), mismatched shapes, an empty dimension.
    assert!(plan(lhs.operand(), rhs.operand(), Operand { shape: &[2, 3, 5], strides: &[0, 5, 1] }).is_none());
    assert!(plan(lhs.operand(), contiguous(&[2, 3, 5], &mut rng).operand(), out.operand()).is_none());
    assert!(plan(Operand { shape: &[2, 3, 0], strides: &[0, 0, 1] }, Operand { shape: &[2, 0, 5], strides: &[0, 5, 1] }, out.operand()).is_none());
    // Too many calls: 5000 batch positions that fold into no single stride.
    let lhs = Operand { shape: &[5000, 2, 1, 1], strides: &[1, 5000, 1, 1] };
    let rhs = Operand { shape: &[5000, 2, 1, 1], strides: &[2, 1, 1, 1] };
    let out = Operand { shape: &[5000, 2, 1, 1], strides: &[2, 1, 1, 1] };
    assert!(plan(lhs, rhs, out).is_none());
}

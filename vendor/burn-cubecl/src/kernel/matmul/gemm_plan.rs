//! clip-burn patch (vendor/burn-cubecl/README.md): a row-major strided matmul
//! `out[.., m, n] = lhs[.., m, k] @ rhs[.., k, n]` written as column-major strided-batched
//! GEMMs, the form BLAS libraries (cuBLAS) take. Pure arithmetic on shapes and strides, so it is
//! tested on every machine (shared-model/tests/gemm_plan.rs); the CUDA launch is `cublas.rs`.
//!
//! A row-major `m x n` matrix with row stride `ld` is, read column-major, its `n x m` transpose
//! with leading dimension `ld`. So `out = lhs @ rhs` is the column-major GEMM
//! `out' (n x m) = rhs' (n x k) @ lhs' (k x m)`: BLAS's `A` is `rhs`, its `B` is `lhs`, and an
//! operand stored column-major (a transposed view) is the same memory with `op = T`.

/// One operand as the matmul sees it: elements, not bytes.
#[derive(Debug, Clone, Copy)]
pub struct Operand<'a> {
    /// The shape, batch dimensions first, the matrix last (rows, columns).
    pub shape: &'a [usize],
    /// The stride of each dimension.
    pub strides: &'a [usize],
}

/// A column-major GEMM call in BLAS's terms: `C (m x n) = op(A) (m x k) op(B) (k x n)`, repeated
/// `batch` times with the pointers moved by the strides, and the whole again at every offset of
/// `outer` (the batch dimensions that do not fold into one stride).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GemmPlan {
    /// `op(A)`: `A` (the matmul's rhs) is read transposed.
    pub trans_a: bool,
    /// `op(B)`: `B` (the matmul's lhs) is read transposed.
    pub trans_b: bool,
    /// Rows of `C`: the matmul's `n`.
    pub m: usize,
    /// Columns of `C`: the matmul's `m`.
    pub n: usize,
    /// The shared dimension.
    pub k: usize,
    /// Leading dimension of `A`.
    pub lda: usize,
    /// Leading dimension of `B`.
    pub ldb: usize,
    /// Leading dimension of `C`.
    pub ldc: usize,
    /// Batch stride of `A` (0: broadcast).
    pub stride_a: usize,
    /// Batch stride of `B` (0: broadcast).
    pub stride_b: usize,
    /// Batch stride of `C`.
    pub stride_c: usize,
    /// GEMMs in one strided-batched call.
    pub batch: usize,
    /// Element offsets of `A`, `B`, `C` of each strided-batched call (one entry: `[0, 0, 0]`).
    pub outer: Vec<[usize; 3]>,
}

/// Calls a plan may issue: more batch structure than this is left to the caller's kernel.
pub const MAX_CALLS: usize = 4096;

/// The plan for `out = lhs @ rhs`, or `None` where the layouts are not BLAS layouts (a matrix
/// whose rows and columns both stride, a partly broadcast batch dimension, an empty dimension,
/// sizes past `i32`, more than [`MAX_CALLS`] calls).
pub fn plan(lhs: Operand, rhs: Operand, out: Operand) -> Option<GemmPlan> {
    let rank = out.shape.len();
    if rank < 2 || [lhs, rhs, out].iter().any(|t| t.shape.len() != rank || t.strides.len() != rank) {
        return None;
    }
    let (m, k, n) = (lhs.shape[rank - 2], lhs.shape[rank - 1], rhs.shape[rank - 1]);
    if rhs.shape[rank - 2] != k || out.shape[rank - 2] != m || out.shape[rank - 1] != n || m == 0 || n == 0 || k == 0 {
        return None;
    }
    let matrix = |t: Operand| (t.strides[rank - 2], t.strides[rank - 1]);
    // BLAS's A = rhs (k x n row-major = n x k column-major).
    let (trans_a, lda) = blas_layout(k, n, matrix(rhs))?;
    // BLAS's B = lhs (m x k row-major = k x m column-major).
    let (trans_b, ldb) = blas_layout(m, k, matrix(lhs))?;
    // C must be plain: out (m x n row-major = n x m column-major).
    let (trans_c, ldc) = blas_layout(m, n, matrix(out))?;
    if trans_c {
        return None;
    }

    // Batch dimensions: each operand's stride per output dimension (0 where it broadcasts),
    // size-1 dimensions dropped, neighbours folded where all three strides allow.
    let mut dims: Vec<(usize, [usize; 3])> = Vec::new();
    for d in 0..rank - 2 {
        let size = out.shape[d];
        if size == 0 {
            return None;
        }
        if size == 1 {
            continue;
        }
        let stride = |t: Operand| match t.shape[d] {
            s if s == size => Some(t.strides[d]),
            1 => Some(0),
            _ => None,
        };
        let strides = [stride(rhs)?, stride(lhs)?, stride(out)?];
        if strides[2] == 0 {
            return None; // every output element is written once
        }
        match dims.last_mut() {
            Some((outer_size, outer)) if (0..3).all(|i| outer[i] == strides[i] * size) => {
                *outer_size *= size;
                *outer = strides;
            }
            _ => dims.push((size, strides)),
        }
    }
    let (batch, [stride_a, stride_b, stride_c]) = dims.pop().unwrap_or((1, [0, 0, 0]));
    let mut outer = vec![[0usize; 3]];
    for (size, strides) in dims.iter().rev() {
        if outer.len() * size > MAX_CALLS {
            return None;
        }
        outer = (0..*size)
            .flat_map(|i| outer.iter().map(move |o| [0, 1, 2].map(|j| o[j] + i * strides[j])))
            .collect();
    }
    let fits = [m, n, k, lda, ldb, ldc, batch].iter().all(|&v| i32::try_from(v).is_ok());
    fits.then_some(GemmPlan {
        trans_a,
        trans_b,
        m: n,
        n: m,
        k,
        lda,
        ldb,
        ldc,
        stride_a,
        stride_b,
        stride_c,
        batch,
        outer,
    })
}

/// A row-major `rows x cols` matrix with `(row, col)` strides read as the column-major
/// `cols x rows` matrix BLAS sees: `(false, ld)` when its rows are contiguous (the column-major
/// transpose, as it is), `(true, ld)` when its columns are (BLAS must transpose it back), `None`
/// otherwise. A dimension of size 1 takes any stride; the leading dimension is at least the
/// stored matrix's column height, as BLAS requires.
fn blas_layout(rows: usize, cols: usize, (row, col): (usize, usize)) -> Option<(bool, usize)> {
    if (col == 1 || cols == 1) && (row >= cols || rows == 1) {
        Some((false, if rows == 1 { cols } else { row }))
    } else if (row == 1 || rows == 1) && (col >= rows || cols == 1) {
        Some((true, if cols == 1 { rows } else { col }))
    } else {
        None
    }
}

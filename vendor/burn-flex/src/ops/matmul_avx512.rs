//! clip-burn patch: f32 matmul on AVX-512 for operands laid out row by row (unit column stride),
//! as a model's linear layers give them (`x [rows, in] · w [in, out]`). No packing: each 6 x 64
//! tile of the output (24 zmm accumulators) walks `k`, loading a 64-wide row segment of `w`
//! (contiguous) and broadcasting one element of each of 6 rows of `x`; partial tiles at the right
//! edge use masked loads and stores. Long `k` is cut in blocks of [`KC`] (the tile accumulates
//! into the output after the first), and many rows in blocks of [`MC`], so that a block of `w`
//! (KC x 64) and of `x` (MC x KC) stay in L2 while the other is streamed. Tasks (a 64-column panel
//! by a block of rows) run on rayon's pool.
//!
//! Why (vendor/burn-flex/README.md): the gemm crate packs the activations for every 64-row block
//! of its transposed problem with scalar strided loads, which on ViT-B-32's batch-1 shapes
//! (`[50, 768] · [768, 3072]`) took 15% of the image tower's time, and reached 64-200 GFLOP/s on
//! 2 cores where this reaches 310-430.

use core::arch::x86_64::*;

/// Output rows of a tile.
const MR: usize = 6;
/// Output columns of a tile: 4 vectors of 16 f32.
const NR: usize = 64;
/// Depth of a block of `k`: a 512 x 64 block of `w` is 128 KiB.
const KC: usize = 512;
/// Rows of a block of `x`.
const MC: usize = 96;

/// Whether [`matmul`] runs here (the CPU has AVX-512F), checked once by std.
pub fn available() -> bool {
    std::is_x86_feature_detected!("avx512f")
}

/// `c[m, n] = a[m, k] · b[k, n]`, row-major with row strides `lda`, `ldb` and `n` (for `c`), unit
/// column strides. `parallel`: on rayon's pool.
///
/// # Safety
/// [`available`] must be true; `a`, `b` must point to `m` (`k`) rows of `lda` (`ldb`) elements
/// reaching `k` (`n`) columns, `c` to `m * n` writable elements.
#[allow(clippy::too_many_arguments)]
pub unsafe fn matmul(m: usize, n: usize, k: usize, a: *const f32, lda: usize, b: *const f32, ldb: usize, c: *mut f32, parallel: bool) {
    if k == 0 {
        unsafe { core::ptr::write_bytes(c, 0, m * n) };
        return;
    }
    let panels = n.div_ceil(NR);
    let blocks = m.div_ceil(MC);
    let (a, b, c) = (Shared(a), Shared(b), Shared(c as *const f32));
    let task = move |t: usize| {
        let (a, b, c) = (a, b, c); // the wrappers, not their raw pointer fields
        let (j0, i0) = ((t / blocks) * NR, (t % blocks) * MC);
        let (cols, rows) = ((n - j0).min(NR), (m - i0).min(MC));
        let mut p0 = 0;
        while p0 < k {
            let depth = (k - p0).min(KC);
            // SAFETY: the tiles of distinct tasks do not overlap; the caller's bounds hold.
            unsafe {
                block(rows, depth, a.0.add(i0 * lda + p0), lda, b.0.add(p0 * ldb + j0), ldb, (c.0 as *mut f32).add(i0 * n + j0), n, cols, p0 > 0);
            }
            p0 += depth;
        }
    };
    let tasks = panels * blocks;
    #[cfg(feature = "rayon")]
    if parallel && tasks > 1 {
        use rayon::prelude::*;
        (0..tasks).into_par_iter().for_each(task);
        return;
    }
    let _ = parallel;
    (0..tasks).for_each(task);
}

#[derive(Clone, Copy)]
struct Shared(*const f32);
// SAFETY: tasks read `a`, `b` and write disjoint tiles of `c`.
unsafe impl Send for Shared {}
unsafe impl Sync for Shared {}

/// `rows` rows of tiles over `depth` of `k`, one 64-column panel (`cols` of it valid). A panel of
/// fewer columns (the right edge: 49 or 196 positions of a 7x7 or 14x14 convolution) takes tiles
/// of as many 16-column vectors as it needs and more rows, 24 accumulators each time, instead of
/// computing all 64.
#[target_feature(enable = "avx512f")]
#[allow(clippy::too_many_arguments)]
unsafe fn block(rows: usize, depth: usize, a: *const f32, lda: usize, b: *const f32, ldb: usize, c: *mut f32, ldc: usize, cols: usize, accumulate: bool) {
    unsafe {
        match cols.div_ceil(16) {
            4 => tiles::<4, MR>(rows, depth, a, lda, b, ldb, c, ldc, cols, accumulate),
            3 => tiles::<3, 8>(rows, depth, a, lda, b, ldb, c, ldc, cols, accumulate),
            2 => tiles::<2, 12>(rows, depth, a, lda, b, ldb, c, ldc, cols, accumulate),
            _ => tiles::<1, 24>(rows, depth, a, lda, b, ldb, c, ldc, cols, accumulate),
        }
    }
}

/// [`block`] with tiles of `V` vectors by `R` rows; the rows left over in tiles of 4, 2 and 1
/// (of 8 first when `R` is larger).
#[target_feature(enable = "avx512f")]
#[allow(clippy::too_many_arguments)]
unsafe fn tiles<const V: usize, const R: usize>(rows: usize, depth: usize, a: *const f32, lda: usize, b: *const f32, ldb: usize, c: *mut f32, ldc: usize, cols: usize, accumulate: bool) {
    unsafe {
        let mut i = 0;
        let run = |i: &mut usize, r: usize, f: unsafe fn(usize, *const f32, usize, *const f32, usize, *mut f32, usize, usize, bool)| {
            while rows - *i >= r {
                f(depth, a.add(*i * lda), lda, b, ldb, c.add(*i * ldc), ldc, cols, accumulate);
                *i += r;
            }
        };
        run(&mut i, R, tile::<R, V>);
        if R > 8 {
            run(&mut i, 8, tile::<8, V>);
        }
        run(&mut i, 4, tile::<4, V>);
        run(&mut i, 2, tile::<2, V>);
        run(&mut i, 1, tile::<1, V>);
    }
}

/// One `R` x `16 V` tile of `c` (its first `cols` columns):
/// `c (+)= a[R, depth] · b[depth, cols]`.
#[target_feature(enable = "avx512f")]
#[allow(clippy::too_many_arguments)]
unsafe fn tile<const R: usize, const V: usize>(depth: usize, a: *const f32, lda: usize, b: *const f32, ldb: usize, c: *mut f32, ldc: usize, cols: usize, accumulate: bool) {
    unsafe {
        let masks: [__mmask16; V] = core::array::from_fn(|v| {
            let left = cols.saturating_sub(v * 16).min(16);
            ((1u32 << left) - 1) as __mmask16
        });
        let mut acc = [[_mm512_setzero_ps(); V]; R];
        if accumulate {
            for (r, row) in acc.iter_mut().enumerate() {
                for (v, x) in row.iter_mut().enumerate() {
                    *x = _mm512_maskz_loadu_ps(masks[v], c.add(r * ldc + v * 16));
                }
            }
        }
        if cols == V * 16 {
            for p in 0..depth {
                let bp = b.add(p * ldb);
                let bv: [__m512; V] = core::array::from_fn(|v| _mm512_loadu_ps(bp.add(v * 16)));
                for (r, row) in acc.iter_mut().enumerate() {
                    let x = _mm512_set1_ps(*a.add(r * lda + p));
                    for v in 0..V {
                        row[v] = _mm512_fmadd_ps(x, bv[v], row[v]);
                    }
                }
            }
        } else {
            for p in 0..depth {
                let bp = b.add(p * ldb);
                let bv: [__m512; V] = core::array::from_fn(|v| _mm512_maskz_loadu_ps(masks[v], bp.add(v * 16)));
                for (r, row) in acc.iter_mut().enumerate() {
                    let x = _mm512_set1_ps(*a.add(r * lda + p));
                    for v in 0..V {
                        row[v] = _mm512_fmadd_ps(x, bv[v], row[v]);
                    }
                }
            }
        }
        for (r, row) in acc.iter().enumerate() {
            for (v, x) in row.iter().enumerate() {
                _mm512_mask_storeu_ps(c.add(r * ldc + v * 16), masks[v], *x);
            }
        }
    }
}

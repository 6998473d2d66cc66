//! The CPU backend's f32 matmul (vendor/burn-flex/src/ops/matmul_avx512.rs on a CPU with
//! AVX-512, the gemm crate otherwise or for other layouts) against the product computed in f64:
//! every edge of its tiling (rows around multiples of 6 and of the 96-row block, columns around
//! multiples of 16 and 64, depth around the 512 block), serial and threaded, with a linear layer's
//! layout (`x · w`, both row by row), a transposed weight, rows of a wider buffer (a slice), and
//! a batch. Small integer inputs make every product and sum exact in f32: the results must be
//! equal, not close.

use burn::prelude::*;

fn ints(len: usize, seed: usize) -> Vec<f32> {
    (0..len).map(|i| ((i * 7 + seed * 13) % 17) as f32 - 8.0).collect()
}

/// `a [m, k] · b [k, n]` in f64.
fn reference(a: &[f32], b: &[f32], m: usize, k: usize, n: usize) -> Vec<f32> {
    let mut c = vec![0f64; m * n];
    for i in 0..m {
        for p in 0..k {
            let x = a[i * k + p] as f64;
            for j in 0..n {
                c[i * n + j] += x * b[p * n + j] as f64;
            }
        }
    }
    c.into_iter().map(|v| v as f32).collect()
}

fn values<const D: usize>(t: Tensor<D>) -> Vec<f32> {
    t.into_data().convert::<f32>().try_into_vec::<f32>().unwrap()
}

#[test]
fn matmul_is_exact_at_every_edge_of_the_tiling() {
    let device = Device::flex();
    let mut checked = 0;
    // Rows around the tiles (6 rows of 4 vectors; 8 of 3, 12 of 2 and 24 of 1 at a narrow right
    // edge; then 8, 4, 2, 1) and the blocks of 96; columns around the vectors of 16 and the
    // panels of 64 (edges of 1-16, 17-32 and 33-48 columns past the last whole panel, masked and
    // whole; 196: a 14x14 convolution's positions, 4 past the third panel).
    for &m in &[1, 5, 6, 7, 31, 50, 97, 200] {
        for &n in &[1, 15, 16, 33, 48, 63, 64, 65, 90, 96, 130, 196] {
            for &k in &[1, 7, 511, 512, 513, 1100] {
                let (a, b) = (ints(m * k, m + n), ints(k * n, k));
                let want = reference(&a, &b, m, k, n);
                let x = Tensor::<2>::from_data(TensorData::new(a.clone(), [m, k]), &device);
                let w = Tensor::<2>::from_data(TensorData::new(b.clone(), [k, n]), &device);
                assert_eq!(values(x.clone().matmul(w.clone())), want, "{m} x {k} x {n}");
                // The same weight stored transposed (as `in_proj_weight` was), read through a view.
                let wt = Tensor::<2>::from_data(TensorData::new(b.clone(), [k, n]), &device).transpose().into_data();
                let wt = Tensor::<2>::from_data(wt, &device).transpose();
                assert_eq!(values(x.clone().matmul(wt)), want, "{m} x {k} x {n}, transposed weight");
                checked += 1;
            }
        }
    }
    assert_eq!(checked, 8 * 12 * 6);
}

/// Rows of a wider buffer (a slice: row stride above the width), and a batch of 3 matrices
/// against one weight.
#[test]
fn matmul_reads_strided_rows_and_batches() {
    let device = Device::flex();
    let (m, k, n) = (50, 700, 130);
    let wide = ints(m * (k + 9), 1);
    let a: Vec<f32> = (0..m).flat_map(|i| wide[i * (k + 9) + 4..i * (k + 9) + 4 + k].to_vec()).collect();
    let b = ints(k * n, 2);
    let x = Tensor::<2>::from_data(TensorData::new(wide, [m, k + 9]), &device).slice([0..m, 4..4 + k]);
    let w = Tensor::<2>::from_data(TensorData::new(b.clone(), [k, n]), &device);
    assert_eq!(values(x.matmul(w.clone())), reference(&a, &b, m, k, n));

    let batch: Vec<f32> = ints(3 * m * k, 3);
    let xb = Tensor::<3>::from_data(TensorData::new(batch.clone(), [3, m, k]), &device);
    let got = values(xb.matmul(w.unsqueeze::<3>()));
    for i in 0..3 {
        let want = reference(&batch[i * m * k..(i + 1) * m * k], &b, m, k, n);
        assert_eq!(&got[i * m * n..(i + 1) * m * n], &want[..], "batch {i}");
    }
}

/// Non-integer values: within f32 rounding of the f64 product (the sum's order differs).
#[test]
fn matmul_is_within_rounding_on_real_values() {
    let device = Device::flex();
    let (m, k, n) = (77, 2048, 512);
    let a: Vec<f32> = (0..m * k).map(|i| ((i as f64 * 0.618_033_988_749_895).fract() - 0.5) as f32).collect();
    let b: Vec<f32> = (0..k * n).map(|i| ((i as f64 * 0.414_213_562_373_095).fract() - 0.5) as f32 * 0.1).collect();
    let want = reference(&a, &b, m, k, n);
    let x = Tensor::<2>::from_data(TensorData::new(a, [m, k]), &device);
    let w = Tensor::<2>::from_data(TensorData::new(b, [k, n]), &device);
    let got = values(x.matmul(w));
    let worst = got.iter().zip(&want).map(|(g, w)| (g - w).abs()).fold(0f32, f32::max);
    assert!(worst <= 1e-4, "{worst}");
}

/// A 1x1 convolution is the same product per picture (`w [out, in] · x [in, h*w]`), which the
/// backend's 1x1 path sends to the same kernel: exact on integers, with a stride-free batch of 2
/// large enough for the threaded path.
#[test]
fn a_one_by_one_convolution_is_exact() {
    use burn::tensor::module::conv2d;
    use burn::tensor::ops::ConvOptions;
    let device = Device::flex();
    let (batch, cin, cout, h, w) = (2, 130, 67, 14, 9);
    let x = ints(batch * cin * h * w, 4);
    let k = ints(cout * cin, 5);
    let got = values(conv2d(
        Tensor::<4>::from_data(TensorData::new(x.clone(), [batch, cin, h, w]), &device),
        Tensor::<4>::from_data(TensorData::new(k.clone(), [cout, cin, 1, 1]), &device),
        None,
        ConvOptions::new([1, 1], [0, 0], [1, 1], 1),
    ));
    for b in 0..batch {
        let want = reference(&k, &x[b * cin * h * w..(b + 1) * cin * h * w], cout, cin, h * w);
        assert_eq!(&got[b * cout * h * w..(b + 1) * cout * h * w], &want[..], "picture {b}");
    }
}

/// A product of few rows takes the column split when threaded (one single-threaded gemm per
/// block of columns; the f64 path, which the AVX-512 kernel does not take): exact on integers,
/// rows and columns around the split's edges (blocks are multiples of 16 columns).
#[test]
fn few_rows_split_by_columns_exactly() {
    let device = Device::flex();
    for &(m, n) in &[(50, 1537), (77, 512), (256, 100), (257, 600), (3, 4096), (200, 33)] {
        let k = 700;
        let (a, b) = (ints(m * k, m), ints(k * n, n));
        let want = reference(&a, &b, m, k, n);
        let f64s = |v: &[f32], shape: [usize; 2]| {
            Tensor::<2>::from_data(TensorData::new(v.iter().map(|&x| x as f64).collect::<Vec<_>>(), shape), (&device, burn::tensor::DType::F64))
        };
        let (x, w) = (f64s(&a, [m, k]), f64s(&b, [k, n]));
        let got = x.matmul(w);
        assert_eq!(got.dtype(), burn::tensor::DType::F64, "the f64 path");
        assert_eq!(values(got), want, "{m} x {k} x {n}");
    }
}

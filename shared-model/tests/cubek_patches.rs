//! The vendored cubek patches (vendor/cubek-reduce, vendor/cubek-matmul: the kernel routines
//! CUDA and WebGPU builds take without autotune). Which routine a reduction becomes is checked
//! everywhere; the patched entry points run on wgpu when `CLIP_TEST_DEVICE=wgpu` (scripts/test.sh
//! runs this file on lavapipe), called the way burn calls them without autotune, against f64.
//! Lavapipe has neither plane operations nor mma: there the dispatch falls through to the unit
//! reduction and to the WMMA/unit matmul; the GPU script exercises the other branches.
#![cfg(feature = "wgpu")]

use cubecl_runtime::runtime::Runtime;
use cubecl::client::Client;
use cubecl::ir::{AddressType, ElemType, FloatKind, UIntKind};
use cubecl::prelude::{CubeElement, TensorBinding};
use cubecl::server::Handle;
use cubecl::wgpu::{WgpuDevice, WgpuRuntime};
use cubecl::zspace::{Shape, Strides};
use cubek::matmul::definition::{MatmulElems, MatmulGlobalElems};
use cubek::matmul::strategy::{Strategy, routines};
use cubek::reduce::components::instructions::ReduceOperationConfig as Op;
use cubek::reduce::launch::{RoutineStrategy, VectorizationStrategy};
use cubek::reduce::routines::unit::{FEW_OUTPUTS, InferredUnit, UnitStrategy, inferred_unit};
use cubek::reduce::routines::{BlueprintStrategy, ReduceProblem, ReduceVectorSettings};
use cubek::reduce::{ReduceStrategy, VectorizationMode};
use cubek::std::InputBinding;

const F32: ElemType = ElemType::Float(FloatKind::F32);

fn problem(reduce_len: usize, reduce_count: usize, instruction: Op) -> ReduceProblem {
    ReduceProblem {
        reduce_len,
        reduce_count,
        axis: 0,
        dtypes: instruction.precision(F32, matches!(instruction, Op::ArgMax).then_some(ElemType::UInt(UIntKind::U32))),
        instruction,
        address_type: AddressType::U32,
    }
}

fn vectors(mode: VectorizationMode, input: usize, output: usize) -> ReduceVectorSettings {
    ReduceVectorSettings {
        vectorization_mode: mode,
        vector_size_input: input,
        vector_size_output: output,
        unchecked_fast_paths: false,
        fuse_on_read: false,
    }
}

#[test]
fn inferred_unit_reductions_take_the_routine_their_shape_needs() {
    use VectorizationMode::{Parallel, Perpendicular};
    // A ViT-B-32 bias gradient: 768 columns summed over 12800 rows, 8-wide vectors across the
    // columns: 96 output vectors, too few planes to fill a GPU.
    let bias = problem(12800, 768, Op::Sum);
    assert_eq!(inferred_unit(32, &bias, &vectors(Perpendicular, 8, 8)), InferredUnit::Cube);
    // LayerNorm statistics: 12800 rows of 768, contiguous: one plane per row.
    let rows = problem(768, 12800, Op::Mean);
    assert_eq!(inferred_unit(32, &rows, &vectors(Parallel, 8, 1)), InferredUnit::Plane);
    // As many output vectors as the bound: planes.
    let wide = problem(12800, FEW_OUTPUTS * 8, Op::Sum);
    assert_eq!(inferred_unit(32, &wide, &vectors(Perpendicular, 8, 8)), InferredUnit::Plane);
    // Across the reduced axis each output vector folds one vector per row: a column sum over 64
    // rows is two planes' worth, however wide the vectors.
    assert_eq!(inferred_unit(32, &problem(64, 768, Op::Sum), &vectors(Perpendicular, 8, 8)), InferredUnit::Cube);
    assert_eq!(inferred_unit(32, &problem(31, 768, Op::Sum), &vectors(Perpendicular, 8, 8)), InferredUnit::Unit);
    // A fold shorter than a plane's worth of vectors stays one thread per output.
    let short = problem(31 * 8, 12800, Op::Max);
    assert_eq!(inferred_unit(32, &short, &vectors(Parallel, 8, 1)), InferredUnit::Unit);
    // Index-returning and top-k folds are left to the unit routine, as is a device without planes.
    assert_eq!(inferred_unit(32, &problem(768, 12800, Op::ArgMax), &vectors(Parallel, 8, 1)), InferredUnit::Unit);
    assert_eq!(inferred_unit(0, &bias, &vectors(Perpendicular, 8, 8)), InferredUnit::Unit);
}

#[test]
fn every_matmul_routine_name_is_a_routine() {
    for name in routines::NAMES {
        // `default` (cubek's own choice) and `cublas` (burn-cubecl's cuBLAS path) name no routine.
        assert_eq!(routines::named(name).is_some(), !["default", "cublas"].contains(&name), "{name}");
    }
    assert!(routines::named("tma").is_none());
}

/// The wgpu client, when this run tests on wgpu.
fn wgpu() -> Option<Client> {
    if std::env::var("CLIP_TEST_DEVICE").as_deref() != Ok("wgpu") {
        eprintln!("CLIP_TEST_DEVICE is not wgpu: kernels not run (scripts/test.sh runs them on lavapipe)");
        return None;
    }
    Some(<WgpuRuntime as Runtime>::client(&WgpuDevice::default()))
}

/// Deterministic values in [-1, 1) with a non-zero mean per column.
fn values(len: usize, seed: u64) -> Vec<f32> {
    let mut state = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
    (0..len)
        .map(|i| {
            state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            ((state >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0 + (i % 7) as f32 * 0.05
        })
        .collect()
}

/// A row-major f32 tensor on the device.
fn tensor(client: &Client, data: &[f32], shape: &[usize]) -> (Handle, TensorBinding) {
    let handle = client.create_from_slice(f32::as_bytes(data));
    let strides: Vec<usize> = (0..shape.len()).map(|d| shape[d + 1..].iter().product()).collect();
    let binding = TensorBinding {
        handle: handle.clone().binding(),
        shape: Shape::from(shape.to_vec()),
        strides: Strides::from(strides),
        tiling: Default::default(),
    };
    (handle, binding)
}

fn read(client: &Client, handle: Handle) -> Vec<f32> {
    f32::from_bytes(&client.read_one(handle).expect("read back")).to_vec()
}

/// Reduces `[rows, cols]` along `axis` as burn does without autotune (the inferred unit routine).
fn reduce(client: &Client, data: &[f32], rows: usize, cols: usize, axis: usize, op: Op) -> Vec<f32> {
    let out_shape = if axis == 0 { [1, cols] } else { [rows, 1] };
    let (out, out_binding) = tensor(client, &vec![0.0; out_shape.iter().product()], &out_shape);
    let strategy = ReduceStrategy {
        routine: RoutineStrategy::Unit(BlueprintStrategy::Inferred(UnitStrategy)),
        vectorization: VectorizationStrategy { parallel_output_vectorization: false },
        autotune_level: Default::default(),
    };
    cubek::reduce::reduce(client, tensor(client, data, &[rows, cols]).1, out_binding, axis, strategy, op, op.precision(F32, None))
        .expect("reduce launches");
    read(client, out)
}

fn expected(data: &[f32], rows: usize, cols: usize, axis: usize, op: Op) -> Vec<f64> {
    let (outer, inner) = if axis == 0 { (cols, rows) } else { (rows, cols) };
    (0..outer)
        .map(|o| {
            let fold = (0..inner).map(|i| if axis == 0 { data[i * cols + o] } else { data[o * cols + i] } as f64);
            match op {
                Op::Sum => fold.sum(),
                Op::Mean => fold.sum::<f64>() / inner as f64,
                Op::Max => fold.fold(f64::MIN, f64::max),
                _ => unreachable!(),
            }
        })
        .collect()
}

#[test]
fn patched_reductions_match_f64_sums_on_wgpu() {
    let Some(client) = wgpu() else { return };
    // cubecl's wgpu exposes no plane operations on lavapipe: there every fold goes through the
    // patched dispatch to the unit branch; the cube and plane branches run on GPUs with planes
    // (tests/gpu/train.sh: the bench losses must fall, amp_bf16's must follow fp32's).
    let planes = cubek::reduce::launch::support_plane(&client);
    eprintln!("plane operations: {planes} (plane size {})", client.properties().hardware.plane_size_max);
    // Where planes exist: column folds with few outputs (cube routine), many outputs (plane),
    // row folds (plane), and folds too short for a plane (unit).
    for (rows, cols, axis) in [(4096, 96, 0), (1000, 768, 0), (2048, 4096, 0), (300, 1024, 1), (512, 12, 1), (24, 64, 0)] {
        let data = values(rows * cols, (rows * cols + axis) as u64);
        for op in [Op::Sum, Op::Mean, Op::Max] {
            let got = reduce(&client, &data, rows, cols, axis, op);
            let want = expected(&data, rows, cols, axis, op);
            assert_eq!(got.len(), want.len());
            for (i, (g, w)) in got.iter().zip(&want).enumerate() {
                let tol = 1e-5 * (1.0 + w.abs()) * if matches!(op, Op::Sum) { (rows.max(cols) as f64).sqrt() } else { 1.0 };
                assert!((*g as f64 - w).abs() <= tol, "{op:?} of [{rows}, {cols}] along {axis}, output {i}: {g} vs {w}");
            }
        }
    }
}

#[test]
fn patched_matmul_chain_matches_f64_products_on_wgpu() {
    let Some(client) = wgpu() else { return };
    // Aligned and unaligned shapes (50 tokens: the rows TMA refuses); each routine the chain
    // tries either refuses at setup or computes the product.
    for (m, k, n) in [(64, 96, 128), (50, 64, 50), (200, 768, 96)] {
        let lhs = values(m * k, 1);
        let rhs = values(k * n, 2);
        let (out, out_binding) = tensor(&client, &vec![0.0; m * n], &[m, n]);
        let mut dtypes = MatmulElems::from_globals(&MatmulGlobalElems { lhs: F32, rhs: F32, out: F32 });
        cubek::matmul::launch::launch_ref(
            &Strategy::Auto,
            &client,
            InputBinding::new(tensor(&client, &lhs, &[m, k]).1, F32),
            InputBinding::new(tensor(&client, &rhs, &[k, n]).1, F32),
            out_binding,
            &mut dtypes,
        )
        .expect("matmul launches");
        let got = read(&client, out);
        for i in 0..m {
            for j in 0..n {
                let want: f64 = (0..k).map(|p| lhs[i * k + p] as f64 * rhs[p * n + j] as f64).sum();
                let g = got[i * n + j] as f64;
                assert!((g - want).abs() <= 1e-3 * (1.0 + want.abs()), "[{m}x{k}]x[{k}x{n}] at ({i}, {j}): {g} vs {want}");
            }
        }
    }
}

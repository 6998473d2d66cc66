//! clip-burn patch (vendor/burn-cubecl/README.md): matmuls through cuBLAS on the CUDA backend,
//! when `CUBEK_MATMUL=cublas` (`cubek::matmul::strategy::routines::external_on`).
//!
//! The operands' device pointers come from cubecl's `get_resource`, which (patched in
//! vendor/cubecl-cuda) also says the stream it ordered behind the buffers' writers and its
//! context: the GEMM is enqueued there, so it runs after the kernels that wrote its inputs and
//! before anything cubecl launches later, with no synchronisation. The layout arithmetic is
//! `gemm_plan.rs`; a layout cuBLAS cannot take, a dtype it is not given here, or a cuBLAS that
//! cannot be loaded leaves the matmul to cubek (`Ok(false)`).

use super::gemm_plan::{GemmPlan, Operand, plan};
use crate::tensor::CubeTensor;
use burn_backend::DType;
use cubecl::cuda::CudaRuntime;
use cubecl_runtime::runtime::Runtime;
use cudarc::cublas::sys::{
    self as cublas, cublasComputeType_t, cublasGemmAlgo_t, cublasHandle_t, cublasOperation_t, cudaDataType,
};
use std::collections::HashMap;
use std::ffi::c_void;
use std::sync::{Mutex, OnceLock};

type CudaServer = <CudaRuntime as Runtime>::Server;

/// One cuBLAS handle per CUDA context (a handle belongs to the context it was created in), behind
/// the lock that also keeps two threads from setting its stream at once.
fn handles() -> &'static Mutex<HashMap<usize, usize>> {
    static HANDLES: OnceLock<Mutex<HashMap<usize, usize>>> = OnceLock::new();
    HANDLES.get_or_init(Default::default)
}

/// Whether libcublas can be loaded; said once on stderr when it cannot.
fn available() -> bool {
    static PRESENT: OnceLock<bool> = OnceLock::new();
    *PRESENT.get_or_init(|| {
        // SAFETY: only tries to dlopen the library's candidate names.
        let present = unsafe { cublas::is_culib_present() };
        if !present {
            eprintln!("CUBEK_MATMUL=cublas: libcublas could not be loaded (put its directory on LD_LIBRARY_PATH); matmuls use cubek");
        }
        present
    })
}

fn data_type(dtype: DType) -> Option<cudaDataType> {
    Some(match dtype {
        DType::F32 => cudaDataType::CUDA_R_32F,
        DType::BF16 => cudaDataType::CUDA_R_16BF,
        DType::F16 => cudaDataType::CUDA_R_16F,
        _ => return None,
    })
}

fn operand(tensor: &CubeTensor) -> Operand<'_> {
    Operand { shape: tensor.meta.shape(), strides: tensor.meta.strides() }
}

/// Runs `out = lhs @ rhs` through cuBLAS: `Ok(true)` when enqueued, `Ok(false)` when this is not
/// a matmul cuBLAS takes here (the caller launches cubek's), `Err` when cuBLAS refused one it
/// was given (nothing was written then, or only whole batches the caller's kernel rewrites).
pub fn launch(lhs: &CubeTensor, rhs: &CubeTensor, out: &CubeTensor) -> Result<bool, String> {
    if lhs.client.name() != "cuda" || lhs.qparams.is_some() || rhs.qparams.is_some() {
        return Ok(false);
    }
    if [lhs, rhs, out].iter().any(|t| t.meta.is_tiled()) || lhs.dtype != rhs.dtype {
        return Ok(false);
    }
    let (Some(input), Some(output)) = (data_type(lhs.dtype), data_type(out.dtype)) else {
        return Ok(false);
    };
    if out.dtype != lhs.dtype && out.dtype != DType::F32 {
        return Ok(false);
    }
    let Some(plan) = plan(operand(lhs), operand(rhs), operand(out)) else {
        return Ok(false);
    };
    if !available() {
        return Ok(false);
    }
    // f32 as burn's CUDA matmul and PyTorch's training (allow_tf32) compute it: TF32 tensor cores.
    let compute = match lhs.dtype {
        DType::F32 => cublasComputeType_t::CUBLAS_COMPUTE_32F_FAST_TF32,
        _ => cublasComputeType_t::CUBLAS_COMPUTE_32F,
    };
    let resource = |t: &CubeTensor| {
        t.client
            .get_resource::<CudaServer>(t.handle.clone())
            .map_err(|err| format!("cubecl get_resource: {err:?}"))
    };
    // Output first: the inputs' resolution then orders the stream behind their writers last.
    let c = resource(out)?;
    let a = resource(rhs)?;
    let b = resource(lhs)?;
    let (stream, context) = (b.resource().stream, b.resource().context);
    if stream.is_null() || context.is_null() {
        return Err("cubecl-cuda gave no stream (vendor/cubecl-cuda is not patched in)".into());
    }
    let pointers = [a.resource().ptr, b.resource().ptr, c.resource().ptr];
    let sizes = [rhs.dtype.size(), lhs.dtype.size(), out.dtype.size()];
    // SAFETY: the pointers address live allocations of the shapes and strides `plan` read (the
    // tensors outlive this call, the managed resources pin them until it returns), on `stream`
    // of `context`, which cubecl ordered behind their writers.
    let enqueued = unsafe { enqueue(&plan, context, stream, pointers, sizes, [input, input, output], compute) };
    // Unpinned now: a later allocation reusing this memory is ordered after the GEMM by the stream.
    drop((a, b, c));
    enqueued.map(|()| true)
}

/// Enqueues `plan` on `stream`: one strided-batched GEMM per outer offset, `alpha = 1`,
/// `beta = 0` (the output's old contents are never read).
unsafe fn enqueue(
    plan: &GemmPlan,
    context: cudarc::driver::sys::CUcontext,
    stream: cudarc::driver::sys::CUstream,
    pointers: [u64; 3],
    sizes: [usize; 3],
    types: [cudaDataType; 3],
    compute: cublasComputeType_t,
) -> Result<(), String> {
    unsafe {
        cudarc::driver::result::ctx::set_current(context).map_err(|err| format!("cuCtxSetCurrent: {err:?}"))?;
        let mut handles = handles().lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let handle = match handles.get(&(context as usize)) {
            Some(&handle) => handle as cublasHandle_t,
            None => {
                let handle = cudarc::cublas::result::create_handle().map_err(|err| format!("cublasCreate: {err:?}"))?;
                handles.insert(context as usize, handle as usize);
                handle
            }
        };
        cudarc::cublas::result::set_stream(handle, stream as _).map_err(|err| format!("cublasSetStream: {err:?}"))?;
        let op = |transposed| if transposed { cublasOperation_t::CUBLAS_OP_T } else { cublasOperation_t::CUBLAS_OP_N };
        let (alpha, beta) = (1.0f32, 0.0f32);
        let int = |v: usize| v as i32; // `plan` checked that every size fits
        for offsets in &plan.outer {
            let at = |i: usize| (pointers[i] as usize + offsets[i] * sizes[i]) as *mut c_void;
            cudarc::cublas::result::gemm_strided_batched_ex(
                handle,
                op(plan.trans_a),
                op(plan.trans_b),
                int(plan.m),
                int(plan.n),
                int(plan.k),
                (&alpha as *const f32).cast(),
                at(0),
                types[0],
                int(plan.lda),
                plan.stride_a as i64,
                at(1),
                types[1],
                int(plan.ldb),
                plan.stride_b as i64,
                (&beta as *const f32).cast(),
                at(2),
                types[2],
                int(plan.ldc),
                plan.stride_c as i64,
                int(plan.batch),
                compute,
                cublasGemmAlgo_t::CUBLAS_GEMM_DEFAULT,
            )
            .map_err(|err| format!("cublasGemmStridedBatchedEx {plan:?}: {err:?}"))?;
        }
        Ok(())
    }
}

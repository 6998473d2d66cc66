//! The NCCL transport (CUDA builds): one communicator per process on the GPU `LOCAL_RANK`,
//! NVLink within a node and InfiniBand / sockets between nodes, as PyTorch's `nccl` backend.
//! Rank 0 creates NCCL's unique id and hands it to the others over the TCP rendezvous.
//!
//! The gradients' all-reduce runs on the device buffer itself: `ncclAllReduce` enqueued on the
//! CUDA stream cubecl ordered the buffer's writers on (the stream and pointers from the vendored
//! cubecl-cuda's `get_resource`, as the cuBLAS matmuls get theirs), as a burn backend extension
//! so that burn's fusion runs it in its place among the step's kernels. The small collectives of
//! the contrastive loss (features, their gradients) are staged through the host.

use std::ffi::c_void;
use std::mem::MaybeUninit;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{anyhow, bail, Result};
use burn::backend::tensor::FloatTensor;
use burn::backend::{Backend, Dispatch};
use burn::prelude::*;
use burn::tensor::DType;
use burn_cubecl::tensor::CubeTensor;
use cudarc::driver::{CudaContext, CudaStream, DevicePtr, DevicePtrMut};
use cudarc::nccl::{result as nccl_result, sys as nccl_sys};

use super::{tcp::Tcp, Collective, Launch};

type CudaServer = <burn_cubecl::cubecl::cuda::CudaRuntime as cubecl_runtime::runtime::Runtime>::Server;

/// An NCCL communicator (`ncclComm_t`), destroyed with its last holder: the transport, or a
/// device all-reduce burn has not run yet (an error can end training with one still queued).
pub struct Comm(nccl_sys::ncclComm_t);

// SAFETY: an NCCL communicator may be used from any thread as long as calls on it are not
// concurrent. The transport's calls come from the training thread; the device all-reduces run in
// burn's stream order, each before the next read-back from the device returns, and every call of
// the transport follows such a read-back (the step reads its features back to gather them).
unsafe impl Send for Comm {}
unsafe impl Sync for Comm {}

impl Drop for Comm {
    fn drop(&mut self) {
        // SAFETY: created by comm_init_rank, destroyed once.
        unsafe {
            let _ = nccl_result::comm_destroy(self.0);
        }
    }
}

/// Whether libnccl can be loaded (it is opened at run time, not linked).
pub fn available() -> bool {
    // SAFETY: only tries to dlopen the library's candidate names.
    unsafe { nccl_sys::is_culib_present() }
}

pub struct Nccl {
    comm: Arc<Comm>,
    stream: Arc<CudaStream>,
    world: usize,
}

fn nccl<T>(what: &str) -> impl Fn(T) -> anyhow::Error
where
    T: std::fmt::Debug,
{
    let what = what.to_string();
    move |e| anyhow!("NCCL {what}: {e:?} (NCCL_DEBUG=INFO tells more)")
}

impl Nccl {
    pub fn connect(launch: &Launch, timeout: Duration) -> Result<Self> {
        let mut rendezvous = Tcp::connect(launch, timeout)?;
        let mine: Vec<u8> = if launch.rank == 0 {
            nccl_result::get_uniqueid().map_err(nccl("unique id"))?.internal.iter().map(|c| *c as u8).collect()
        } else {
            vec![0u8; 128]
        };
        let all = rendezvous.all_gather(&mine)?;
        let mut id = nccl_sys::ncclUniqueId { internal: [0; 128] };
        for (dst, src) in id.internal.iter_mut().zip(&all[..128]) {
            *dst = *src as std::ffi::c_char;
        }
        // The primary context of the rank's GPU, which cubecl-cuda also runs on.
        let context = CudaContext::new(launch.local_rank).map_err(nccl("CUDA context"))?;
        context.bind_to_thread().map_err(nccl("CUDA context"))?;
        let stream = context.default_stream();
        let mut comm = MaybeUninit::uninit();
        // SAFETY: `comm` is written by a successful init, which `assume_init` follows.
        let comm = unsafe {
            nccl_result::comm_init_rank(comm.as_mut_ptr(), launch.world as i32, id, launch.rank as i32).map_err(nccl("communicator"))?;
            comm.assume_init()
        };
        Ok(Self { comm: Arc::new(Comm(comm)), stream, world: launch.world })
    }

    /// Fails when an all-reduce on the device failed since the last check (burn runs the op
    /// later than it is issued; the step that issued it cannot see its error).
    fn check(&self) -> Result<()> {
        match FAILURE.lock().unwrap_or_else(|p| p.into_inner()).take() {
            Some(err) => bail!("NCCL all-reduce on the GPU failed: {err} (NCCL_DEBUG=INFO tells more)"),
            None => Ok(()),
        }
    }
}

impl Collective for Nccl {
    fn all_gather(&mut self, data: &[u8]) -> Result<Vec<u8>> {
        self.check()?;
        let send = self.stream.clone_htod(data).map_err(nccl("copy in"))?;
        let mut recv = self.stream.alloc_zeros::<u8>(data.len() * self.world).map_err(nccl("alloc"))?;
        {
            let (send_ptr, _send) = send.device_ptr(&self.stream);
            let (recv_ptr, _recv) = recv.device_ptr_mut(&self.stream);
            // SAFETY: device buffers of `data.len()` and `world` times that, on this stream.
            unsafe {
                nccl_result::all_gather(
                    send_ptr as *const c_void,
                    recv_ptr as *mut c_void,
                    data.len(),
                    nccl_sys::ncclDataType_t::ncclUint8,
                    self.comm.0,
                    self.stream.cu_stream() as _,
                )
                .map_err(nccl("all_gather"))?;
            }
        }
        self.stream.clone_dtoh(&recv).map_err(nccl("copy out"))
    }

    fn all_reduce_sum(&mut self, data: &mut [f32]) -> Result<()> {
        self.check()?;
        let mut buffer = self.stream.clone_htod(data).map_err(nccl("copy in"))?;
        {
            let (ptr, _guard) = buffer.device_ptr_mut(&self.stream);
            // SAFETY: a device buffer of `data.len()` f32 on this stream, reduced in place.
            unsafe {
                nccl_result::all_reduce(
                    ptr as *const c_void,
                    ptr as *mut c_void,
                    data.len(),
                    nccl_sys::ncclDataType_t::ncclFloat32,
                    nccl_sys::ncclRedOp_t::ncclSum,
                    self.comm.0,
                    self.stream.cu_stream() as _,
                )
                .map_err(nccl("all_reduce"))?;
            }
        }
        let out = self.stream.clone_dtoh(&buffer).map_err(nccl("copy out"))?;
        data.copy_from_slice(&out);
        Ok(())
    }

    fn all_reduce_sum_tensor(&mut self, values: Tensor<1>) -> Result<Tensor<1>> {
        self.check()?;
        let device = values.device();
        // The op holds the communicator until it has run.
        let summed = <Dispatch as DeviceAllReduce>::nccl_all_reduce_sum(values.inner().into_dispatch(), self.comm.clone());
        Ok(Tensor::<1>::from_dispatch(summed).to_device(&device))
    }
}

/// The last device all-reduce's failure, for [`Nccl::check`].
static FAILURE: Mutex<Option<String>> = Mutex::new(None);

/// `ncclAllReduce` as a burn op, so that it runs where burn's fusion stream puts it.
#[burn::backend::backend_extension(Cube: cfg(feature = "cuda"), Fusion: cfg(feature = "cuda"))]
pub trait DeviceAllReduce: Backend {
    /// `values` (f32) summed over the ranks of `comm` into a new buffer; on a failure `values`
    /// itself, and the failure is kept for [`Nccl::check`].
    #[fusion(dtype = values, shape = values)]
    fn nccl_all_reduce_sum(values: FloatTensor<Self>, comm: Arc<Comm>) -> FloatTensor<Self>;
}

impl DeviceAllReduce for burn_cubecl::CubeBackend {
    fn nccl_all_reduce_sum(values: CubeTensor, comm: Arc<Comm>) -> CubeTensor {
        match all_reduce_on_stream(&values, &comm) {
            Ok(summed) => summed,
            Err(err) => {
                *FAILURE.lock().unwrap_or_else(|p| p.into_inner()) = Some(err);
                values
            }
        }
    }
}

fn all_reduce_on_stream(values: &CubeTensor, comm: &Comm) -> Result<CubeTensor, String> {
    if values.client.name() != "cuda" {
        return Err(format!("the gradients are on a {} device, NCCL needs CUDA", values.client.name()));
    }
    if values.dtype != DType::F32 || !values.is_contiguous() || values.qparams.is_some() {
        return Err(format!("expected a contiguous f32 buffer, got {:?} with strides {:?}", values.dtype, values.meta.strides()));
    }
    let count = values.meta.shape().num_elements();
    let out = burn_cubecl::ops::numeric::empty_device_contiguous_dtype(
        values.client.clone(),
        values.device.clone(),
        values.meta.shape().clone(),
        DType::F32,
    );
    let resource = |t: &CubeTensor| t.client.get_resource::<CudaServer>(t.handle.clone()).map_err(|err| format!("cubecl get_resource: {err:?}"));
    // Output first: the input's resolution then orders the stream behind its writers last.
    let recv = resource(&out)?;
    let send = resource(values)?;
    let (stream, context) = (send.resource().stream, send.resource().context);
    if stream.is_null() || context.is_null() {
        return Err("cubecl-cuda gave no stream (vendor/cubecl-cuda is not patched in)".into());
    }
    // SAFETY: both pointers address live allocations of `count` f32 (the managed resources pin
    // them until this returns; later users of the memory are ordered after the op by `stream`),
    // on `stream` of `context`, which cubecl ordered behind the input's writers.
    unsafe {
        cudarc::driver::result::ctx::set_current(context).map_err(|err| format!("cuCtxSetCurrent: {err:?}"))?;
        nccl_result::all_reduce(
            send.resource().ptr as *const c_void,
            recv.resource().ptr as *mut c_void,
            count,
            nccl_sys::ncclDataType_t::ncclFloat32,
            nccl_sys::ncclRedOp_t::ncclSum,
            comm.0,
            stream as nccl_sys::cudaStream_t,
        )
        .map_err(|err| format!("ncclAllReduce of {count} f32: {err:?}"))?;
    }
    drop((send, recv));
    Ok(out)
}

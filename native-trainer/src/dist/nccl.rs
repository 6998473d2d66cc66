//! The NCCL transport (CUDA builds): one communicator per process on the GPU `LOCAL_RANK`,
//! NVLink within a node and InfiniBand / sockets between nodes, as PyTorch's `nccl` backend.
//! Rank 0 creates NCCL's unique id and hands it to the others over the TCP rendezvous.
//! Buffers are staged through the host (burn does not expose its device pointers): a copy in
//! and out around each collective.

use std::sync::Arc;
use std::time::Duration;

use anyhow::{anyhow, Result};
use cudarc::driver::{CudaContext, CudaStream};
use cudarc::nccl::safe::{Comm, Id, ReduceOp};

use super::{tcp::Tcp, Collective, Launch};

pub struct Nccl {
    comm: Comm,
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
            Id::new().map_err(nccl("unique id"))?.internal().iter().map(|c| *c as u8).collect()
        } else {
            vec![0u8; 128]
        };
        let all = rendezvous.all_gather(&mine)?;
        let mut internal = [0 as std::ffi::c_char; 128];
        for (dst, src) in internal.iter_mut().zip(&all[..128]) {
            *dst = *src as std::ffi::c_char;
        }
        let context = CudaContext::new(launch.local_rank).map_err(nccl("CUDA context"))?;
        let stream = context.default_stream();
        let comm = Comm::from_rank(stream.clone(), launch.rank, launch.world, Id::uninit(internal)).map_err(nccl("communicator"))?;
        Ok(Self { comm, stream, world: launch.world })
    }
}

impl Collective for Nccl {
    fn all_gather(&mut self, data: &[u8]) -> Result<Vec<u8>> {
        let send = self.stream.clone_htod(data).map_err(nccl("copy in"))?;
        let mut recv = self.stream.alloc_zeros::<u8>(data.len() * self.world).map_err(nccl("alloc"))?;
        self.comm.all_gather(&send, &mut recv).map_err(nccl("all_gather"))?;
        self.stream.clone_dtoh(&recv).map_err(nccl("copy out"))
    }

    fn all_reduce_sum(&mut self, data: &mut [f32]) -> Result<()> {
        let mut buffer = self.stream.clone_htod(data).map_err(nccl("copy in"))?;
        self.comm.all_reduce_in_place(&mut buffer, &ReduceOp::Sum).map_err(nccl("all_reduce"))?;
        let out = self.stream.clone_dtoh(&buffer).map_err(nccl("copy out"))?;
        data.copy_from_slice(&out);
        Ok(())
    }
}

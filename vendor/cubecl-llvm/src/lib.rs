//! clip-burn's stand-in for `cubecl-llvm` 0.11.3 (see `README.md` beside this crate).
//!
//! `cubecl-cuda` 0.11.3 always compiles both of its kernel backends, CUDA C++ through NVRTC and
//! LLVM/NVPTX through this crate, and picks one at run time: its `cpp` feature makes
//! `CudaBackend::default()` the C++ one. clip-burn enables `cpp`, so of this crate the CUDA
//! runtime only *executes* [`nvptx::ptx_version::PtxVersion::for_driver`] (copied verbatim).
//! Everything else here exists so that `cubecl-cuda` type-checks: the types keep upstream's
//! names and fields, [`shared::lowered_features::restrict_features`] is upstream's code, and
//! [`PlironCompiler`]'s `compile` refuses with a [`CompilationError`](cubecl_runtime::compiler::CompilationError)
//! instead of lowering through LLVM.
//!
//! Upstream's CPU target (`PlironEngine` and friends, which `cubecl-cpu` uses) and AMDGPU target
//! (`cubecl-hip`) are not provided: `burn/cpu` and `burn/rocm` do not build with this patch.

#[cfg(feature = "amdgpu")]
compile_error!(
    "clip-burn's vendored cubecl-llvm stand-in has no AMDGPU target (cubecl-hip / burn's `rocm`). \
     Remove the `[patch.crates-io] cubecl-llvm` entry to build it with the real crate."
);

#[cfg(feature = "nvptx")]
pub mod nvptx;
pub mod shared;
pub mod target;

#[cfg(feature = "nvptx")]
pub use shared::NvptxModule;
pub use shared::{PlironArtifact, PlironCompiler, PlironOptions};
pub use target::LlvmTarget;

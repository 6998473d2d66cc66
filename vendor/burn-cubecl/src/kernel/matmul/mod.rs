mod base;
#[cfg(feature = "cublas")]
mod cublas;
/// clip-burn patch: matmul layouts as BLAS GEMMs (vendor/burn-cubecl/README.md).
pub mod gemm_plan;
#[cfg(feature = "autotune")]
mod tune;

/// Contains utilities for matmul operation
pub mod utils;

pub use base::*;
#[cfg(feature = "autotune")]
pub use tune::*;
pub use utils::*;

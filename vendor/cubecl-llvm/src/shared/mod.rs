//! Of upstream's `shared` modules: `base` (the compiler's public types, with `compile` refusing)
//! and `lowered_features` (upstream's code).

mod base;

#[cfg(any(feature = "amdgpu", feature = "nvptx"))]
pub mod lowered_features;

pub use base::*;

//! clip-model's own tensor ops with hand-written backward passes (`layer_norm`, `attention`) are
//! burn backend extensions: a trait of ops with default bodies composed from burn's, routed by
//! burn's `Dispatch` to the backend a tensor lives on, and implemented by hand on `Autodiff<B>`.
//! The backends they are routed to, in one place:
//!
//! - Flex (the CPU backend, feature `flex`);
//! - cubecl (wgpu, WebGPU, CUDA) behind burn's fusion, which runs the default bodies lazily so
//!   their element-wise parts fuse with their neighbours;
//! - autodiff over either (native builds; the wasm build has no autodiff).

/// `backend_ops!(Trait, pub trait Trait: Backend { ... })`: the trait as a burn backend extension
/// routed to the backends above, and implemented on each with its default bodies (the `Autodiff`
/// implementation is the module's own).
macro_rules! backend_ops {
    ($name:ident, $trait:item) => {
        #[burn::backend::backend_extension(
            Flex: cfg(feature = "flex"),
            Cube: cfg(any(feature = "wgpu", feature = "webgpu", feature = "cuda")),
            Fusion: cfg(any(feature = "wgpu", feature = "webgpu", feature = "cuda")),
            Autodiff: cfg(not(target_family = "wasm"))
        )]
        $trait

        #[cfg(feature = "flex")]
        impl $name for burn::backend::Flex {}

        #[cfg(any(feature = "wgpu", feature = "webgpu", feature = "cuda"))]
        impl $name for burn_cubecl::CubeBackend {}
    };
}

pub(crate) use backend_ops;

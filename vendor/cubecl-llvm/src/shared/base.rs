//! The public types of upstream's `shared/base.rs` (`PlironCompiler`, `PlironOptions`,
//! `NvptxModule`, `PlironArtifact`), same names and fields, without the pliron/LLVM pipeline
//! behind them: [`PlironCompiler`]'s `compile` returns a [`CompilationError`].
//!
//! Left out: the CPU JIT artifact (`PlironArtifact::Jit(PlironEngine)`) and the AMDGPU one
//! (`AmdGpuModule`), which only `cubecl-cpu` and `cubecl-hip` use.

#[cfg(feature = "nvptx")]
use crate::nvptx::ptx_version::PtxVersion;
use crate::target::LlvmTarget;
use cubecl_core::Compiler;
use cubecl_core::ir::amd::GfxArch;
#[cfg(feature = "nvptx")]
use cubecl_core::ir::nvidia::SmArch;
use cubecl_environment::backtrace::BackTrace;
use cubecl_runtime::{
    compiler::CompilationError,
    config::compilation::F16Evaluation,
    kernel::{BufferIOAttr, KernelDefinition},
};

/// Why [`PlironCompiler::compile`] refuses every kernel.
pub const NOT_BUILT_IN: &str = "the LLVM/PTX backend is not built in clip-burn; the CUDA C++ \
     (NVRTC) backend is used (cubecl-cuda's `cpp` feature, which clip-model's `cuda` feature \
     enables). See vendor/cubecl-llvm/README.md.";

#[derive(Clone, Debug, Default)]
pub struct PlironCompiler {
    pub target: LlvmTarget,
}

#[derive(Clone, Debug, Default)]
pub struct PlironOptions {
    /// Minimum CPU buffer alignment, including view offsets. Must be a power of two.
    /// `None` makes no alignment promise.
    pub cpu_buffer_alignment: Option<u32>,
    /// AMDGPU architecture, or `None` for other targets.
    pub arch: Option<GfxArch>,
    /// CPU f16 evaluation precision.
    pub f16_evaluation: F16Evaluation,
    /// NVPTX architecture, or `None` for other targets.
    #[cfg(feature = "nvptx")]
    pub sm_arch: Option<SmArch>,
    /// PTX version to emit, or `None` for the oldest the architecture accepts.
    #[cfg(feature = "nvptx")]
    pub ptx_version: Option<PtxVersion>,
    /// Pass scalars and static metadata in the kernel parameter block.
    /// The host must use the same layout.
    pub grid_constants: bool,
}

/// Compiled PTX module.
#[derive(Clone, Debug)]
#[cfg(feature = "nvptx")]
pub struct NvptxModule {
    /// NUL-terminated PTX assembly.
    pub ptx: Vec<core::ffi::c_char>,
    /// Kernel entry point symbol.
    pub entrypoint: String,
    /// IR for logging and cache keys.
    pub ir: String,
    /// Shared memory required per launch, in bytes.
    pub shared_memory_size: usize,
    /// Buffer access modes in binding order.
    pub io: Vec<BufferIOAttr>,
}

/// Compiled kernel artifact. Upstream also has `Jit(PlironEngine)` and, with `amdgpu`,
/// `AmdGpuCode(AmdGpuModule)`; `non_exhaustive` keeps the catch-all arm `cubecl-cuda` writes
/// for those meaningful.
#[derive(Clone)]
#[non_exhaustive]
pub enum PlironArtifact {
    #[cfg(feature = "nvptx")]
    NvptxCode(NvptxModule),
}

impl core::fmt::Display for PlironArtifact {
    fn fmt(&self, _f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match *self {
            #[cfg(feature = "nvptx")]
            PlironArtifact::NvptxCode(ref module) => write!(_f, "{}", module.ir),
        }
    }
}

impl Compiler for PlironCompiler {
    type Representation = PlironArtifact;

    type CompilationOptions = PlironOptions;

    fn buffer_io(repr: &Self::Representation) -> Option<Vec<BufferIOAttr>> {
        match *repr {
            #[cfg(feature = "nvptx")]
            PlironArtifact::NvptxCode(ref module) => Some(module.io.clone()),
        }
    }

    fn compile(
        &mut self,
        kernel: KernelDefinition,
        _compilation_options: &Self::CompilationOptions,
    ) -> Result<Self::Representation, CompilationError> {
        Err(CompilationError::Generic {
            reason: format!(
                "cannot compile '{}' for {:?}: {NOT_BUILT_IN}",
                kernel.settings.kernel_name, self.target
            ),
            backtrace: BackTrace::capture(),
        })
    }

    fn extension(&self) -> &'static str {
        match self.target {
            LlvmTarget::Cpu => "plir",
            #[cfg(feature = "amdgpu")]
            LlvmTarget::AmdGpu => "ll",
            #[cfg(feature = "nvptx")]
            LlvmTarget::Nvptx => "ll",
        }
    }

    fn lang_tag(&self) -> &'static str {
        match self.target {
            LlvmTarget::Cpu => "mlir",
            #[cfg(feature = "amdgpu")]
            LlvmTarget::AmdGpu => "llvm",
            #[cfg(feature = "nvptx")]
            LlvmTarget::Nvptx => "llvm",
        }
    }
}

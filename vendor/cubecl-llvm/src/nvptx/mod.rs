//! NVPTX target. Of upstream's modules only `ptx_version` is kept (verbatim): the CUDA runtime
//! calls `PtxVersion::for_driver` whichever backend it runs.

pub mod ptx_version;

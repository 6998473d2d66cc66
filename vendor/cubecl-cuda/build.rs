use cudarc::driver::sys::CUDA_VERSION;

fn main() {
    // clip-burn: without a rerun-if line cargo reruns this script whenever any file of the crate is
    // newer, and keys that on the crate's absolute path: a new clone rebuilt the burn stack above it.
    // Its output depends only on cudarc's CUDA_VERSION (a dependency: cargo reruns it when that changes).
    println!("cargo::rerun-if-changed=build.rs");
    println!("cargo::rustc-check-cfg=cfg(cuda_12050)");
    println!("cargo::rustc-check-cfg=cfg(cuda_12080)");

    if CUDA_VERSION >= 12050 {
        println!("cargo:rustc-cfg=cuda_12050");
    }
    if CUDA_VERSION >= 12080 {
        println!("cargo:rustc-cfg=cuda_12080");
    }
}

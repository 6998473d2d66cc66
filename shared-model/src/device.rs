//! Device names as the CLI and tests spell them: `cpu`, `wgpu`, `cuda[:N]`, or `best`.

use burn::tensor::Device;

use crate::Error;

/// The backends compiled into this build, best first.
pub fn available() -> Vec<&'static str> {
    let mut names = Vec::new();
    if cfg!(feature = "cuda") {
        names.push("cuda");
    }
    if cfg!(feature = "wgpu") {
        names.push("wgpu");
    }
    if cfg!(feature = "flex") {
        names.push("cpu");
    }
    names
}

/// Whether this machine has the NVIDIA driver (libcuda loads). A CUDA build also runs where it
/// has not: `best` then passes over CUDA, and `cuda` says what is missing.
#[cfg(feature = "cuda")]
pub fn cuda_driver_present() -> bool {
    static PRESENT: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    // SAFETY: loads libcuda (its initialisers run) and unloads it; cudarc's own check.
    *PRESENT.get_or_init(|| unsafe { cudarc::driver::sys::is_culib_present() })
}

/// Whether `name` (one of [`available`]) can run on this machine.
fn usable(name: &str) -> bool {
    match name {
        #[cfg(feature = "cuda")]
        "cuda" => cuda_driver_present(),
        _ => true,
    }
}

/// Where native GPU builds keep cubecl's autotune results and compiled kernels between runs:
/// `$CLIP_BURN_CACHE/cubecl`, else `$XDG_CACHE_HOME/clip-burn/cubecl`, else
/// `~/.cache/clip-burn/cubecl`. The first CUDA step of a model compiles its kernels (95 s for
/// ViT-B-32 training on an H200; an `autotune` build also tunes them); later runs read them from
/// here (2.8 s). A `cubecl.toml` that sets `[environment] path` wins.
pub fn kernel_cache_dir() -> Option<std::path::PathBuf> {
    kernel_cache_dir_from(|name| std::env::var_os(name))
}

fn kernel_cache_dir_from(env: impl Fn(&str) -> Option<std::ffi::OsString>) -> Option<std::path::PathBuf> {
    let var = |name: &str| env(name).filter(|v| !v.is_empty()).map(std::path::PathBuf::from);
    let root = var("CLIP_BURN_CACHE")
        .or_else(|| var("XDG_CACHE_HOME").map(|d| d.join("clip-burn")))
        .or_else(|| var("HOME").map(|d| d.join(".cache").join("clip-burn")))?;
    Some(root.join("cubecl"))
}

/// Points cubecl's persistent cache at [`kernel_cache_dir`] (once, before a GPU device starts),
/// unless a configuration file chose a directory.
#[cfg(all(any(feature = "cuda", feature = "wgpu"), not(target_family = "wasm")))]
fn use_kernel_cache_dir() {
    use cubecl_runtime::config::{cache::CacheConfig, CubeClRuntimeConfig, RuntimeConfig};
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let mut config = CubeClRuntimeConfig::from_current_dir();
        if let (CacheConfig::Target, Some(dir)) = (&config.environment.path, kernel_cache_dir()) {
            config.environment.path = CacheConfig::Directory(dir);
        }
        // cubecl keeps only autotune results by default; the compiled kernels (PTX on CUDA,
        // SPIR-V on Vulkan) are the other half of the first step's cost.
        config.compilation.cache = true;
        CubeClRuntimeConfig::try_set(config.override_from_env());
    });
}

/// `best` as the name of the first of [`available`] this machine can run (`best` itself when
/// none can; an index on `best` is ignored); any other name as it is.
pub fn resolve(name: &str) -> String {
    match name.split_once(':').map_or(name, |(kind, _)| kind) {
        "best" => available().into_iter().find(|n| usable(n)).unwrap_or("best").to_string(),
        _ => name.to_string(),
    }
}

/// The kinds a device name may have, each with an optional `:INDEX`.
const KINDS: [&str; 4] = ["best", "cpu", "wgpu", "cuda"];

/// A device name's kind and index, checked for form only (whether the kind is compiled in and
/// present is [`parse`]'s question).
pub fn split_name(name: &str) -> Result<(&str, Option<usize>), Error> {
    let (kind, index) = match name.split_once(':') {
        Some((k, i)) => (k, Some(i.parse::<usize>().map_err(|_| Error::Input(format!("bad device index in {name:?}")))?)),
        None => (name, None),
    };
    if !KINDS.contains(&kind) {
        return Err(Error::Input(format!("unknown device {name:?}: expected cpu, wgpu, cuda[:N] or best")));
    }
    Ok((kind, index))
}

/// Parses a device name; `best` is the first of [`available`] this machine can run.
#[allow(unused_variables)]
pub fn parse(name: &str) -> Result<Device, Error> {
    let (kind, index) = split_name(name)?;
    let unavailable = || Error::Input(format!("device {name:?} is not available in this build (available: {}; rebuild with --features wgpu or cuda)", available().join(", ")));
    match kind {
        // An index on `best` is ignored, as before (`best:1` must not resolve to itself).
        "best" => match resolve(kind).as_str() {
            "best" => Err(unavailable()),
            resolved => parse(resolved),
        },
        #[cfg(feature = "flex")]
        "cpu" => Ok(Device::flex()),
        #[cfg(feature = "wgpu")]
        "wgpu" => {
            #[cfg(not(target_family = "wasm"))]
            use_kernel_cache_dir();
            Ok(match index {
                Some(i) => Device::wgpu(burn::tensor::DeviceKind::DiscreteGpu(i)),
                None => Device::wgpu(Default::default()),
            })
        }
        #[cfg(feature = "cuda")]
        "cuda" => {
            if !cuda_driver_present() {
                return Err(Error::Input(format!(
                    "device {name:?}: no NVIDIA driver on this machine (libcuda.so.1 did not load; set LD_LIBRARY_PATH if it is installed elsewhere)"
                )));
            }
            use_kernel_cache_dir();
            Ok(Device::cuda(index.unwrap_or(0)))
        }
        // A kind of KINDS not compiled into this build.
        #[allow(unreachable_patterns)]
        _ => Err(unavailable()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A CUDA build on a machine without the NVIDIA driver (CI) says so for `cuda` and picks
    /// the next backend for `best`; with the driver, both give CUDA.
    #[cfg(feature = "cuda")]
    #[test]
    fn cuda_without_a_driver_is_an_error_and_best_passes_over_it() {
        if cuda_driver_present() {
            assert!(parse("cuda").is_ok());
            return;
        }
        let e = parse("cuda:1").unwrap_err().to_string();
        assert!(e.contains("no NVIDIA driver") && e.contains("libcuda"), "{e}");
        assert!(parse("best").is_ok());
        assert!(available().len() > 1 && available()[0] == "cuda" && !usable("cuda"));
        assert_eq!(resolve("best"), available()[1]);
        assert_eq!(resolve("cuda:1"), "cuda:1");
    }

    /// `best` names a backend of this build (what data-parallel ranks and reports see).
    #[test]
    fn best_resolves_to_a_compiled_backend() {
        let best = resolve("best");
        assert!(available().contains(&best.as_str()), "{best}");
        assert_eq!(resolve("cpu"), "cpu");
        assert!(parse("best:1").is_ok(), "an index on best is ignored");
        assert_eq!(resolve("best:1"), best);
    }

    #[test]
    fn the_kernel_cache_follows_clip_burn_cache_then_xdg_then_home() {
        let env = |pairs: &'static [(&'static str, &'static str)]| move |name: &str| pairs.iter().find(|(k, _)| *k == name).map(|(_, v)| v.into());
        let dir = |pairs| kernel_cache_dir_from(env(pairs)).map(|p| p.display().to_string());
        assert_eq!(dir(&[("CLIP_BURN_CACHE", "/c"), ("XDG_CACHE_HOME", "/x"), ("HOME", "/h")]).as_deref(), Some("/c/cubecl"));
        assert_eq!(dir(&[("CLIP_BURN_CACHE", ""), ("XDG_CACHE_HOME", "/x"), ("HOME", "/h")]).as_deref(), Some("/x/clip-burn/cubecl"));
        assert_eq!(dir(&[("HOME", "/h")]).as_deref(), Some("/h/.cache/clip-burn/cubecl"));
        assert_eq!(dir(&[]), None);
    }
}

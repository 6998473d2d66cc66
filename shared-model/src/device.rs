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

/// Parses a device name; `best` is the first of [`available`].
#[allow(unused_variables)]
pub fn parse(name: &str) -> Result<Device, Error> {
    let (kind, index) = match name.split_once(':') {
        Some((k, i)) => (k, Some(i.parse::<usize>().map_err(|_| Error::Input(format!("bad device index in {name:?}")))?)),
        None => (name, None),
    };
    let unavailable = || Error::Input(format!("device {name:?} is not available in this build (available: {}; rebuild with --features wgpu or cuda)", available().join(", ")));
    match kind {
        "best" => parse(available().first().ok_or_else(unavailable)?),
        #[cfg(feature = "flex")]
        "cpu" => Ok(Device::flex()),
        #[cfg(feature = "wgpu")]
        "wgpu" => Ok(match index {
            Some(i) => Device::wgpu(burn::tensor::DeviceKind::DiscreteGpu(i)),
            None => Device::wgpu(Default::default()),
        }),
        #[cfg(feature = "cuda")]
        "cuda" => Ok(Device::cuda(index.unwrap_or(0))),
        #[allow(unreachable_patterns)]
        "cpu" | "wgpu" | "cuda" => Err(unavailable()),
        _ => Err(Error::Input(format!("unknown device {name:?}: expected cpu, wgpu, cuda[:N] or best"))),
    }
}

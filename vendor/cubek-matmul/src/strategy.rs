use std::fmt::Display;

use cubecl::{client::Client, prelude::TensorBinding};
use cubek_std::InputBinding;

use crate::definition::{MatmulElems, MatmulSetupError};
#[cfg(feature = "multi-level")]
use crate::multi_level;
#[cfg(feature = "tiled")]
use crate::tiled;

/// How to solve a matmul. The two arms are the two kernel architectures: routines written
/// on the tile DSL, and routines written on the batch/global/stage/tile levels.
#[derive(Clone, Default)]
pub enum Strategy {
    #[cfg(feature = "tiled")]
    Tiled(tiled::Strategy),
    #[cfg(feature = "multi-level")]
    MultiLevel(multi_level::Strategy),
    #[default]
    Auto,
}

#[cfg(feature = "tiled")]
impl From<tiled::Strategy> for Strategy {
    fn from(s: tiled::Strategy) -> Self {
        Strategy::Tiled(s)
    }
}

#[cfg(feature = "multi-level")]
impl From<multi_level::Strategy> for Strategy {
    fn from(s: multi_level::Strategy) -> Self {
        Strategy::MultiLevel(s)
    }
}

impl Display for Strategy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            #[cfg(feature = "tiled")]
            Strategy::Tiled(s) => write!(f, "{}", s),
            #[cfg(feature = "multi-level")]
            Strategy::MultiLevel(s) => write!(f, "{}", s),
            Strategy::Auto => f.write_str("matmul_auto"),
        }
    }
}

#[allow(clippy::result_large_err)]
impl Strategy {
    pub(crate) fn launch_ref(
        &self,
        client: &Client,
        lhs: InputBinding,
        rhs: InputBinding,
        out: TensorBinding,
        dtypes: &mut MatmulElems,
    ) -> Result<(), MatmulSetupError> {
        match self {
            #[cfg(feature = "tiled")]
            Strategy::Tiled(s) => s.launch_ref(client, lhs, rhs, out, dtypes),
            #[cfg(feature = "multi-level")]
            Strategy::MultiLevel(s) => s.launch_ref(client, lhs, rhs, out, dtypes),
            Strategy::Auto => auto(client, lhs, rhs, out, dtypes),
        }
    }
}

/// Accelerated first, falling back to the routine that needs no accelerator. A storage-tiled
/// operand is a fact of the data, not a knob: it was stored in tiles for the tiled cmma routine, which
/// stages to its tiles, so it goes there (the multi-level routines refuse it).
#[cfg(feature = "multi-level")]
fn auto(
    client: &Client,
    lhs: InputBinding,
    rhs: InputBinding,
    out: TensorBinding,
    dtypes: &mut MatmulElems,
) -> Result<(), MatmulSetupError> {
    #[cfg(feature = "tiled")]
    if lhs.data().tiling.is_tiled() || rhs.data().tiling.is_tiled() {
        return tiled::Strategy::Cmma(Default::default()).launch_ref(client, lhs, rhs, out, dtypes);
    }
    // clip-burn patch (vendor/cubek-matmul/README.md): the routines measured fastest in
    // clip-burn's training step on an H200 go first; each refuses at setup (`Err`, nothing
    // launched) where it cannot run: TMA needs Hopper and 16-byte aligned strides, mma the
    // device's manual matrix-multiply instructions (CUDA's mma.sync; none on WebGPU).
    // A refusing routine may have promoted `dtypes` for its tile matmul: each try gets a copy.
    for strategy in routines::preferred() {
        let mut tried = dtypes.clone();
        if strategy.launch_ref(client, lhs.clone(), rhs.clone(), out.clone(), &mut tried).is_ok() {
            *dtypes = tried;
            return Ok(());
        }
    }
    if let Err(err) = multi_level::Strategy::SimpleCyclicCmma(Default::default()).launch_ref(
        client,
        lhs.clone(),
        rhs.clone(),
        out.clone(),
        dtypes,
    ) {
        match err {
            MatmulSetupError::Unavailable(_) => {
                multi_level::Strategy::SimpleUnit(Default::default())
                    .launch_ref(client, lhs, rhs, out, dtypes)?;
            }
            _ => panic!("{err:?}"),
        }
    }

    Ok(())
}

/// The tiled-only pair. `CpuGemm` takes the fallback slot as the one tiled routine with no
/// hardware requirement; it was tuned for CPU and has never been measured as a GPU fallback.
#[cfg(all(feature = "tiled", not(feature = "multi-level")))]
fn auto(
    client: &Client,
    lhs: InputBinding,
    rhs: InputBinding,
    out: TensorBinding,
    dtypes: &mut MatmulElems,
) -> Result<(), MatmulSetupError> {
    if let Err(err) = tiled::Strategy::Cmma(Default::default()).launch_ref(
        client,
        lhs.clone(),
        rhs.clone(),
        out.clone(),
        dtypes,
    ) {
        match err {
            MatmulSetupError::Unavailable(_) => {
                tiled::Strategy::CpuGemm(Default::default())
                    .launch_ref(client, lhs, rhs, out, dtypes)?;
            }
            _ => panic!("{err:?}"),
        }
    }

    Ok(())
}

/// clip-burn patch: the routines `Auto` tries before cubek's default (SimpleCyclicCmma), in
/// order. `CUBEK_MATMUL=<name>` puts one routine first (read once; to race them on a GPU with
/// tests/gpu/race-matmul.sh; `default` adds none), an unknown name is an error on stderr.
/// `cublas` is no cubek routine: burn-cubecl (vendor/burn-cubecl) calls cuBLAS on CUDA, and
/// what cuBLAS does not take gets the shipped chain.
#[cfg(feature = "multi-level")]
pub mod routines {
    use super::multi_level::{
        Strategy,
        components::tile::TileMatmulKind,
        routines::batch::{
            double_buffering::DoubleBufferingArgs, ordered_double_buffering::OrderedSelectionArgs,
            simple::SimpleArgs,
        },
    };
    use crate::routine::BlueprintStrategy;
    use cubecl::client::Client;
    use std::sync::OnceLock;

    /// The names `CUBEK_MATMUL` takes.
    pub const NAMES: [&str; 9] = [
        "default",
        "cublas",
        "tma_mma",
        "ordered_mma",
        "simple_mma",
        "double_mma",
        "double_mma_specialized",
        "specialized_mma",
        "specialized_tma_mma",
    ];

    /// The routine a `CUBEK_MATMUL` name stands for (`default`: none, cubek's own choice;
    /// `cublas`: none, no cubek routine).
    pub fn named(name: &str) -> Option<Strategy> {
        let mma = TileMatmulKind::Mma;
        let simple = || SimpleArgs { multi_rows: false, tile_matmul: mma };
        let double = |specialized| DoubleBufferingArgs { specialized, tile_matmul: mma };
        Some(match name {
            "tma_mma" => Strategy::SimpleTmaMma(BlueprintStrategy::Inferred(simple())),
            "ordered_mma" => Strategy::OrderedDoubleMma(BlueprintStrategy::Inferred(OrderedSelectionArgs {
                partition_k: Some(2),
                row_count: Some(8),
                rows_per_plane: Some(2),
                tile_matmul: mma,
            })),
            "simple_mma" => Strategy::SimpleCyclicMma(BlueprintStrategy::Inferred(simple())),
            "double_mma" => Strategy::DoubleCyclicMma(BlueprintStrategy::Inferred(double(false))),
            "double_mma_specialized" => Strategy::DoubleCyclicMma(BlueprintStrategy::Inferred(double(true))),
            "specialized_mma" => Strategy::SpecializedCyclicMma(BlueprintStrategy::Inferred(().into())),
            "specialized_tma_mma" => Strategy::SpecializedTmaMma(BlueprintStrategy::Inferred(().into())),
            _ => return None,
        })
    }

    /// `CUBEK_MATMUL`, read once; `None` when unset or not a name.
    fn chosen() -> Option<&'static str> {
        static OVERRIDE: OnceLock<Option<String>> = OnceLock::new();
        OVERRIDE
            .get_or_init(|| {
                let name = std::env::var("CUBEK_MATMUL").ok()?;
                if !NAMES.contains(&name.as_str()) {
                    eprintln!("CUBEK_MATMUL={name} is not one of {}; ignored", NAMES.join(", "));
                    return None;
                }
                Some(name)
            })
            .as_deref()
    }

    /// Whether matmuls on `client` go to cuBLAS (`CUBEK_MATMUL=cublas` and a CUDA client).
    pub fn external_on(client: &Client) -> bool {
        chosen() == Some("cublas") && client.name() == "cuda"
    }

    /// TMA where the strides allow it, else the ordered double-buffered mma routine.
    pub(super) fn preferred() -> Vec<Strategy> {
        match chosen() {
            Some("default") => Vec::new(),
            Some("cublas") | None => ["tma_mma", "ordered_mma"].into_iter().filter_map(named).collect(),
            Some(name) => named(name).into_iter().collect(),
        }
    }
}

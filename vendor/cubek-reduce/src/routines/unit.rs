use super::{
    GlobalReduceBlueprint, ReduceBlueprint, ReduceLaunchSettings, ReduceProblem,
    ReduceVectorSettings,
};
use crate::{
    IdleMode, ReduceError, VectorizationMode,
    components::instructions::ReduceOperationConfig,
    launch::calculate_plane_count_per_cube,
    routines::{BlueprintStrategy, Routine, UnitReduceBlueprint},
};
use cubecl::{CubeCount, CubeDim, client::Client};
use cubek_std::cube_count::cube_count_spread_with_total;

#[derive(Debug, Clone)]
pub struct UnitRoutine;

#[derive(Debug, Clone)]
pub struct UnitStrategy;

impl Routine for UnitRoutine {
    type Strategy = UnitStrategy;
    type Blueprint = UnitReduceBlueprint;

    fn prepare(
        &self,
        client: &cubecl::prelude::Client,
        problem: ReduceProblem,
        settings: ReduceVectorSettings,
        strategy: BlueprintStrategy<Self>,
    ) -> Result<(ReduceBlueprint, ReduceLaunchSettings), ReduceError> {
        let address_type = problem.address_type;
        let (blueprint, cube_dim, cube_count) = match strategy {
            BlueprintStrategy::Forced(blueprint, cube_dim) => {
                let working_units = working_units(&settings, &problem);
                let num_units_in_cube = cube_dim.num_elems();
                let working_cubes = working_units.div_ceil(num_units_in_cube as usize);

                let (cube_count, launched_cubes) =
                    cube_count_spread_with_total(client, working_cubes);

                if working_cubes != launched_cubes && blueprint.unit_idle.is_enabled() {
                    return Err(ReduceError::Validation {
                        details: "Too many units launched for the problem causing OOD, but `unit_idle` is off.",
                    });
                }

                let blueprint = ReduceBlueprint {
                    vectorization_mode: settings.vectorization_mode,
                    global: GlobalReduceBlueprint::Unit(blueprint),
                };

                (blueprint, cube_dim, cube_count)
            }
            BlueprintStrategy::Inferred(_) => {
                let (blueprint, cube_dim, cube_count) =
                    generate_blueprint(client, problem, &settings)?;
                (blueprint, cube_dim, cube_count)
            }
        };

        let launch = ReduceLaunchSettings {
            cube_dim,
            cube_count,
            vector: settings,
            address_type,
        };

        Ok((blueprint, launch))
    }
}

fn generate_blueprint(
    client: &Client,
    problem: ReduceProblem,
    settings: &ReduceVectorSettings,
) -> Result<(ReduceBlueprint, CubeDim, CubeCount), ReduceError> {
    let properties = &client.properties().hardware;
    let plane_size = properties.plane_size_max;
    let working_units = working_units(settings, &problem);
    let plane_count = calculate_plane_count_per_cube(working_units, plane_size, properties);

    let cube_dim = CubeDim::new_2d(plane_size, plane_count);
    let num_units_in_cube = cube_dim.num_elems();

    let working_cubes = working_units.div_ceil(num_units_in_cube as usize);
    let (cube_count, cube_launched) = cube_count_spread_with_total(client, working_cubes);

    // Unchecked comptime fast path only when raw shapes are their own
    // autotune keys: see the twin comment in `plane.rs`.
    let unit_idle = !settings.unchecked_fast_paths
        || !working_units.is_multiple_of(num_units_in_cube as usize)
        || cube_launched != working_cubes;

    let unit_idle = match unit_idle {
        true => IdleMode::Terminate,
        false => IdleMode::None,
    };
    let blueprint = ReduceBlueprint {
        vectorization_mode: settings.vectorization_mode,
        global: GlobalReduceBlueprint::Unit(UnitReduceBlueprint { unit_idle }),
    };

    Ok((blueprint, cube_dim, cube_count))
}

fn working_units(settings: &ReduceVectorSettings, problem: &ReduceProblem) -> usize {
    match settings.vectorization_mode {
        VectorizationMode::Parallel => problem.reduce_count / settings.vector_size_output,
        VectorizationMode::Perpendicular => problem.reduce_count / settings.vector_size_input,
    }
}

/// clip-burn patch (see vendor/cubek-reduce/README.md): the routine a reduction that asks for
/// the *inferred unit* routine runs as. Without autotune burn asks for it for every reduction:
/// one thread per output, so a bias gradient (a column sum over 12800 rows) ran on ~100 threads
/// and a LayerNorm row was read by a single thread.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InferredUnit {
    /// Short folds, or folds the plane and cube routines do not take (`Arg*`, top-k, boolean).
    Unit,
    /// One plane (warp) per output vector: each output folds at least a plane's worth of vectors.
    Plane,
    /// One cube of planes per output vector: as `Plane`, with fewer than [`FEW_OUTPUTS`] output
    /// vectors, too few planes to fill a GPU (a bias gradient: 768 columns in vectors of 8 are
    /// 96 planes, each reading 400 rows one after the other).
    Cube,
}

/// Below this many output vectors a reduction is spread over cubes rather than planes: the
/// bound under which burn's autotune ranks the cube routine first.
pub const FEW_OUTPUTS: usize = 128;

/// Which routine an inferred-unit reduction becomes, from the plane size (0 where planes are
/// unsupported), the fold, and the problem's shape.
pub fn inferred_unit(
    plane_size: usize,
    problem: &ReduceProblem,
    settings: &ReduceVectorSettings,
) -> InferredUnit {
    use ReduceOperationConfig as Op;
    let plain = matches!(problem.instruction, Op::Sum | Op::Mean | Op::Prod | Op::Max | Op::Min | Op::MaxAbs);
    // Vectors each output vector folds: along the reduced axis they hold several of its
    // elements; across it (perpendicular: a column sum) each holds one per output of the vector.
    let fold_vectors = match settings.vectorization_mode {
        VectorizationMode::Parallel => problem.reduce_len / settings.vector_size_input.max(1),
        VectorizationMode::Perpendicular => problem.reduce_len,
    };
    if plane_size <= 1 || !plain || fold_vectors < plane_size {
        InferredUnit::Unit
    } else if working_units(settings, problem) < FEW_OUTPUTS {
        InferredUnit::Cube
    } else {
        InferredUnit::Plane
    }
}

/// Prepares an inferred-unit reduction as the routine [`inferred_unit`] picks (a cube that the
/// device cannot hold, e.g. for its shared memory, falls back to planes).
pub fn prepare_inferred_unit(
    client: &Client,
    problem: ReduceProblem,
    settings: ReduceVectorSettings,
) -> Result<(ReduceBlueprint, ReduceLaunchSettings), ReduceError> {
    use super::{cube::{CubeRoutine, CubeStrategy}, plane::{PlaneRoutine, PlaneStrategy}};
    let plane_size = match crate::launch::support_plane(client) {
        true => client.properties().hardware.plane_size_max as usize,
        false => 0,
    };
    let plane = PlaneStrategy { independent: true };
    match inferred_unit(plane_size, &problem, &settings) {
        InferredUnit::Unit => UnitRoutine.prepare(client, problem, settings, BlueprintStrategy::Inferred(UnitStrategy)),
        InferredUnit::Plane => PlaneRoutine.prepare(client, problem, settings, BlueprintStrategy::Inferred(plane)),
        InferredUnit::Cube => {
            let cube = BlueprintStrategy::Inferred(CubeStrategy { use_planes: true });
            CubeRoutine
                .prepare(client, problem.clone(), settings.clone(), cube)
                .or_else(|_| PlaneRoutine.prepare(client, problem, settings, BlueprintStrategy::Inferred(plane)))
        }
    }
}

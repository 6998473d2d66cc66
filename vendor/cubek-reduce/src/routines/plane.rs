use super::{
    GlobalReduceBlueprint, ReduceBlueprint, ReduceLaunchSettings, ReduceProblem,
    ReduceVectorSettings,
};
use crate::{
    BoundChecks, IdleMode, ReduceError, VectorizationMode,
    launch::{calculate_plane_count_per_cube, support_plane},
    routines::{BlueprintStrategy, PlaneMergeStrategy, PlaneReduceBlueprint, Routine},
};
use cubecl::{CubeCount, CubeDim, features::Plane, prelude::Client};
use cubek_std::cube_count::cube_count_spread_with_total;

#[derive(Debug, Clone)]
pub struct PlaneRoutine;

#[derive(Debug, Clone)]
pub struct PlaneStrategy {
    /// How the accumulators are handled in a plane.
    pub independent: bool,
}

impl Routine for PlaneRoutine {
    type Strategy = PlaneStrategy;
    type Blueprint = PlaneReduceBlueprint;

    fn prepare(
        &self,
        client: &Client,
        problem: ReduceProblem,
        settings: ReduceVectorSettings,
        strategy: BlueprintStrategy<Self>,
    ) -> Result<(ReduceBlueprint, ReduceLaunchSettings), ReduceError> {
        let address_type = problem.address_type;
        let (blueprint, cube_dim, cube_count) = match strategy {
            BlueprintStrategy::Forced(blueprint, cube_dim) => {
                if !support_plane(client) {
                    return Err(ReduceError::PlanesUnavailable);
                }

                let properties = &client.properties().hardware;
                if cube_dim.x != properties.plane_size_max {
                    return Err(ReduceError::Validation {
                        details: "`cube_dim.x` must match `plane_size_max`",
                    });
                }

                let working_planes = working_planes(&settings, &problem);

                let working_cubes = working_planes.div_ceil(cube_dim.y as usize);
                let (cube_count, launched_cubes) =
                    cube_count_spread_with_total(client, working_cubes);
                let plane_idle = launched_cubes * cube_dim.y as usize != working_planes;

                if plane_idle && !blueprint.plane_idle.is_enabled() {
                    return Err(ReduceError::Validation {
                        details: "Too many planes launched for the problem causing OOD, but `plane_idle` is off.",
                    });
                }

                let blueprint = ReduceBlueprint {
                    vectorization_mode: settings.vectorization_mode,
                    global: GlobalReduceBlueprint::Plane(blueprint),
                };

                (blueprint, cube_dim, cube_count)
            }
            BlueprintStrategy::Inferred(strategy) => {
                let (blueprint, cube_dim, cube_count) =
                    generate_blueprint(client, problem, &settings, strategy)?;
                (blueprint, cube_dim, cube_count)
            }
        };

        let launch = ReduceLaunchSettings {
            cube_dim,
            cube_count,
            address_type,
            vector: settings,
        };

        Ok((blueprint, launch))
    }
}

fn generate_blueprint(
    client: &Client,
    problem: ReduceProblem,
    settings: &ReduceVectorSettings,
    strategy: PlaneStrategy,
) -> Result<(ReduceBlueprint, CubeDim, CubeCount), ReduceError> {
    if !support_plane(client) {
        return Err(ReduceError::PlanesUnavailable);
    }

    let properties = &client.properties().hardware;
    let plane_size = properties.plane_size_max;
    let working_planes = working_planes(settings, &problem);
    let working_units = working_planes * plane_size as usize;
    let plane_count = calculate_plane_count_per_cube(working_units, plane_size, properties);
    let working_cubes = working_planes.div_ceil(plane_count as usize);

    let cube_dim = CubeDim::new_2d(plane_size, plane_count);
    let (cube_count, cube_launched) = cube_count_spread_with_total(client, working_cubes);

    // The blueprint is comptime: every field forks a compiled kernel variant.
    // The problem sizes here are *raw* runtime lengths, while kernel selection
    // is cached per anchored autotune key: a variant choice derived from a
    // raw property (divisibility, exact launch fit) re-splits the anchored
    // bucket and keeps compiling "new" kernels long after a warmup covered
    // every key. The unchecked fast paths are therefore only taken when the
    // selection says raw shapes are their own keys
    // ([`ReduceStrategy::autotune_level`](crate::ReduceStrategy)); otherwise
    // the guarded variants (valid for every length sharing the key) run,
    // and the tuner benchmarks candidates with them, keeping the ranking
    // honest.
    let unchecked = settings.unchecked_fast_paths;
    let plane_idle = cube_launched * cube_dim.num_elems() as usize != working_units;
    let work_size = match settings.vectorization_mode {
        VectorizationMode::Parallel => problem.reduce_len / settings.vector_size_input,
        VectorizationMode::Perpendicular => problem.reduce_len,
    };
    // Out-of-range units come from the reduce-axis tail *and* from over-launched
    // (idle) planes; both need a bound check. When the input read has a write
    // side effect (fuse-on-read), that check must branch rather than mask: a
    // mask clamps the index to 0 and still performs the side-effecting read,
    // clobbering position 0.
    let tail_bounds = !(unchecked && work_size.is_multiple_of(plane_size as usize));
    let idle_possible = !unchecked || plane_idle;
    let bound_checks = if settings.fuse_on_read {
        match tail_bounds || idle_possible {
            true => BoundChecks::Branch,
            false => BoundChecks::None,
        }
    } else {
        match tail_bounds {
            true => BoundChecks::Mask,
            false => BoundChecks::None,
        }
    };

    let plane_idle = match !unchecked || plane_idle {
        true => match client
            .properties()
            .features
            .plane
            .contains(Plane::NonUniformControlFlow)
        {
            true => IdleMode::Terminate,
            false => IdleMode::Mask,
        },
        false => IdleMode::None,
    };

    let strategy_enum = if strategy.independent {
        PlaneMergeStrategy::Lazy
    } else {
        PlaneMergeStrategy::Eager
    };

    let blueprint = ReduceBlueprint {
        vectorization_mode: settings.vectorization_mode,
        global: GlobalReduceBlueprint::Plane(PlaneReduceBlueprint {
            plane_idle,
            bound_checks,
            plane_merge_strategy: strategy_enum,
            plane_dim_ceil: properties.plane_size_max != properties.plane_size_min,
        }),
    };

    Ok((blueprint, cube_dim, cube_count))
}

fn working_planes(settings: &ReduceVectorSettings, problem: &ReduceProblem) -> usize {
    match settings.vectorization_mode {
        VectorizationMode::Parallel => problem.reduce_count / settings.vector_size_output,
        VectorizationMode::Perpendicular => problem.reduce_count / settings.vector_size_input,
    }
}

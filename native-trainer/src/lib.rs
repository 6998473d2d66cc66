//! The `clip-burn` command line as a library: its commands, the data pipeline, training and
//! evaluation. The binary (`src/main.rs`) parses the command line and reports failures; the fuzz
//! targets (`fuzz/`) and their corpus replay (`tests/fuzz_corpus.rs`) call the parsers directly.

pub mod allocator;
pub mod checkpoint;
pub mod commands;
pub mod contrast;
pub mod data;
pub mod dist;
pub mod eval;
pub mod fuzz;
pub mod model_args;
pub mod optim;
pub mod output;
pub mod plot;
pub mod precision;
pub mod recompute;
pub mod rng;
pub mod synth;
pub mod usage;

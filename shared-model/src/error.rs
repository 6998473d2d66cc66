//! The one error type of `clip-model`: every variant names the file, key, shape or argument at fault.

use thiserror::Error;

#[derive(Debug, Error)]
pub enum Error {
    #[error("unknown model {name:?}; known models: {known} (each also as NAME-quickgelu), or a path to an open_clip / Hugging Face config JSON")]
    UnknownModel { name: String, known: String },

    #[error("invalid model config: {0}")]
    Config(String),

    #[error("unrecognised weights format: {0}")]
    UnknownFormat(String),

    #[error("cannot read weights: {0}")]
    Weights(String),

    #[error("weights do not fit the model: {0}")]
    Mismatch(String),

    #[error("cannot decode image: {0}")]
    Image(String),

    #[error("tokenizer: {0}")]
    Tokenizer(String),

    #[error("invalid input: {0}")]
    Input(String),
}

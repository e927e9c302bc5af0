//! Errors of the RTL generator.

use std::path::PathBuf;
use thiserror::Error;

/// Everything that can go wrong while generating or writing the RTL.
#[derive(Debug, Error)]
pub enum HdlError {
    /// The config does not pass `ArrayConfig::validate`.
    #[error("invalid config: {0}")]
    Config(#[from] tern_spec::config::ConfigError),
    /// A width the generator has no const-generic instance for.
    #[error(
        "field `{field}` = {value} is not supported by the RTL generator: supported {supported}"
    )]
    UnsupportedWidth {
        field: &'static str,
        value: u32,
        supported: String,
    },
    /// A generator option out of its range.
    #[error("HDL option `{option}` = {value} is out of range: {legal}")]
    Option {
        option: &'static str,
        value: u32,
        legal: &'static str,
    },
    /// Writing an output file failed.
    #[error("{}: cannot write: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    /// The manifest could not be serialized.
    #[error("manifest: {0}")]
    Json(#[from] serde_json::Error),
}

impl HdlError {
    /// The config field an error is about, if any.
    pub fn field(&self) -> Option<&'static str> {
        match self {
            HdlError::Config(e) => e.field(),
            HdlError::UnsupportedWidth { field, .. } => Some(field),
            _ => None,
        }
    }
}

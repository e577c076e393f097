//! One feature configuration, one per-frame extractor. Batch extraction, streaming and the
//! librosa-style functions all push frames through `Extractor::frame`, so they agree exactly.
//!
//! `config`: what a caller asks for (`Config`, `Feature`); `plan`: the validated, cached,
//! immutable part (window, filterbanks, DCT); `extractor`: the per-thread state that turns one
//! frame into its features.

mod config;
mod extractor;
mod plan;
#[cfg(test)]
mod timing;

pub use config::{Config, Feature, VoiceKind};
pub use extractor::Extractor;
pub use plan::Plan;

//! ser-edge's DSP core: librosa-equal audio features as plain Rust kernels, with a thin PyO3
//! layer (`python.rs`, feature `python`) that the `ser_edge._dsp` extension module exposes.

pub mod error;

pub mod batch;
pub mod chroma;
pub mod db;
pub mod delta;
pub mod fft;
pub mod limits;
pub mod mel;
pub mod pad;
pub mod parallel;
pub mod pipeline;
pub mod resample;
pub mod spectral;
pub mod stream;
pub mod temporal;
pub mod window;

#[cfg(feature = "python")]
mod python;

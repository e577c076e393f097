//! ser-edge's DSP core: librosa-equal audio features as plain Rust kernels, with a thin PyO3
//! layer (`python.rs`, feature `python`) that the `ser_edge._dsp` extension module exposes.

// Deliberate patterns, kept over clippy's suggestions:
// - `!(x >= 0.0)` rejects NaN along with negatives (every argument check relies on it);
// - index loops where the index is the maths (filterbank bins, matrix rows) read as the formulas;
// - the FFT plan caches' types are spelled out where they are declared.
#![allow(
    clippy::neg_cmp_op_on_partial_ord,
    clippy::needless_range_loop,
    clippy::type_complexity
)]

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
pub mod periodicity;
pub mod pipeline;
pub mod pitch;
pub mod pitch_hmm;
pub mod resample;
pub mod shs;
pub mod spectral;
pub mod stream;
pub mod temporal;
pub mod voice;
pub mod window;

#[cfg(feature = "python")]
mod python;

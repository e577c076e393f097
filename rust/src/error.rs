//! The one error type of the kernels. Every failure is a bad argument or bad input;
//! the Python bindings turn it into `ValueError` in one place (`python.rs`).

use std::fmt;

#[derive(Debug, Clone, PartialEq)]
pub struct DspError(pub String);

pub type Result<T> = std::result::Result<T, DspError>;

impl fmt::Display for DspError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for DspError {}

/// `Err(DspError)` with a formatted message, e.g. `fail!("hop_length={h} must be > 0")`.
#[macro_export]
macro_rules! fail {
    ($($arg:tt)*) => { return Err($crate::error::DspError(format!($($arg)*))) };
}

/// Checks that an integer parameter is positive.
pub fn positive(name: &str, value: usize) -> Result<usize> {
    if value == 0 {
        fail!("{name}={value} must be a positive integer");
    }
    Ok(value)
}

/// Checks that a float parameter is finite and strictly positive.
pub fn positive_f64(name: &str, value: f64) -> Result<f64> {
    if !(value.is_finite() && value > 0.0) {
        fail!("{name}={value} must be a positive finite number");
    }
    Ok(value)
}

/// Checks that audio is non-empty and finite.
pub fn audio(name: &str, y: &[f32]) -> Result<()> {
    if y.is_empty() {
        fail!("{name} is empty: audio must have at least one sample");
    }
    match first_non_finite(y) {
        Some(i) => fail!("{name} is not finite everywhere: {name}[{i}]={}", y[i]),
        None => Ok(()),
    }
}

/// A result whose values must all be finite: finite input can still overflow float32 (samples
/// near 1e20, a large `power`, `p` or `sr`); such a result is an error, never returned.
pub fn finite_result(x: &[f32]) -> Result<()> {
    match first_non_finite(x) {
        Some(i) => fail!(
            "the result is not finite (value {} at flat index {i}): the samples' magnitude or a parameter \
             (power, p, sr, ...) overflows float32; audio is expected in [-1, 1]",
            x[i]
        ),
        None => Ok(()),
    }
}

/// Index of the first NaN or infinity.
fn first_non_finite(y: &[f32]) -> Option<usize> {
    // A branch-free OR over the exponent bits vectorises; the slow search runs only on failure.
    let non_finite = y
        .iter()
        .fold(0u32, |acc, v| acc | ((v.to_bits() & 0x7f80_0000) == 0x7f80_0000) as u32);
    if non_finite == 0 {
        return None;
    }
    y.iter().position(|v| !v.is_finite())
}

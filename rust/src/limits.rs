//! Documented upper bounds on sizes, checked with checked arithmetic before anything is
//! allocated: a size from a caller (a bundle, a CLI flag, a fuzzer) must give a `ValueError`,
//! never an allocation failure (an abort) or a multi-gigabyte buffer.

use crate::error::Result;
use crate::fail;

/// Largest `n_fft` (and so `win_length`, frame length): 2**20 samples, 65 s at 16 kHz.
pub const MAX_N_FFT: usize = 1 << 20;
/// Largest filterbank or transform matrix (rows x columns): mel (`n_mels x (1 + n_fft/2)`),
/// chroma (`n_chroma x n_fft`), DCT (`n_mfcc x n_mels`). 2**25 weights.
pub const MAX_MATRIX: usize = 1 << 25;
/// Largest array one call returns (rows x frames): 2**28 values (1 GiB of float32).
pub const MAX_OUTPUT: usize = 1 << 28;
/// Most bands of a filterbank: `n_mels`, `n_chroma` (and so `n_mfcc <= n_mels`).
pub const MAX_BANDS: usize = 1 << 14;
/// Largest `delta` width and order.
pub const MAX_DELTA_WIDTH: usize = 1025;
pub const MAX_DELTA_ORDER: usize = 16;

/// `n_fft` (or another frame length, named `name`) within [`MAX_N_FFT`].
pub fn frame_length(name: &str, n: usize) -> Result<usize> {
    if n > MAX_N_FFT {
        fail!("{name}={n} is too large: at most {MAX_N_FFT} (2**20) samples");
    }
    Ok(n)
}

/// A band count (`n_mels`, `n_chroma`) within [`MAX_BANDS`].
pub fn bands(name: &str, n: usize) -> Result<usize> {
    if n > MAX_BANDS {
        fail!("{name}={n} is too large: at most {MAX_BANDS} (2**14)");
    }
    Ok(n)
}

/// `rows x cols` of a filterbank or transform matrix, within [`MAX_MATRIX`].
pub fn matrix(rows_name: &str, rows: usize, cols_name: &str, cols: usize) -> Result<usize> {
    match rows.checked_mul(cols) {
        Some(n) if n <= MAX_MATRIX => Ok(n),
        _ => fail!(
            "{rows_name}={rows} is too large for {cols_name}={cols}: the {rows_name} x {cols_name} matrix \
             may hold at most {MAX_MATRIX} (2**25) values"
        ),
    }
}

/// `rows x cols` of a returned array, within [`MAX_OUTPUT`].
pub fn output(rows: usize, cols: usize) -> Result<usize> {
    match rows.checked_mul(cols) {
        Some(n) if n <= MAX_OUTPUT => Ok(n),
        _ => fail!(
            "the result would hold {rows} x {cols} values, more than {MAX_OUTPUT} (2**28): use a larger \
             hop_length, a smaller n_fft or a shorter signal"
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overflowing_products_are_errors() {
        assert!(matrix("n_mels", usize::MAX, "bins", 3).is_err());
        assert!(output(1 << 40, 1 << 40).is_err());
        assert_eq!(matrix("n_mels", 128, "bins", 257).unwrap(), 128 * 257);
        assert!(frame_length("n_fft", MAX_N_FFT + 1)
            .unwrap_err()
            .0
            .starts_with("n_fft="));
    }
}

//! Analysis windows, periodic (`scipy.signal.get_window(..., fftbins=True)`), centred in `n_fft`.

use crate::error::Result;
use crate::fail;
use std::f64::consts::PI;

#[derive(Debug, Clone, PartialEq)]
pub enum Window {
    Hann,
    Hamming,
    Blackman,
    Rectangular,
    /// Explicit coefficients of length `win_length`.
    Custom(Vec<f32>),
}

impl Window {
    pub fn parse(name: &str) -> Result<Window> {
        Ok(match name {
            "hann" | "hanning" => Window::Hann,
            "hamming" => Window::Hamming,
            "blackman" => Window::Blackman,
            "boxcar" | "rectangular" | "ones" => Window::Rectangular,
            _ => fail!("window={name:?} is not supported: use 'hann', 'hamming', 'blackman', 'boxcar' or an array"),
        })
    }

    /// The `win_length` periodic window coefficients.
    pub fn coefficients(&self, win_length: usize) -> Result<Vec<f64>> {
        let cosine = |a: &[f64]| -> Vec<f64> {
            if win_length <= 1 {
                return vec![1.0; win_length];
            }
            let m = win_length as f64;
            (0..win_length)
                .map(|n| {
                    let x = 2.0 * PI * n as f64 / m;
                    let v = a.iter().enumerate().fold(0.0, |acc, (k, &ak)| {
                        let sign = if k % 2 == 0 { 1.0 } else { -1.0 };
                        acc + sign * ak * (k as f64 * x).cos()
                    });
                    v
                })
                .collect()
        };
        Ok(match self {
            Window::Hann => cosine(&[0.5, 0.5]),
            Window::Hamming => cosine(&[0.54, 0.46]),
            Window::Blackman => cosine(&[0.42, 0.50, 0.08]),
            Window::Rectangular => vec![1.0; win_length],
            Window::Custom(w) => {
                if w.len() != win_length {
                    fail!("window has {} coefficients but win_length={win_length}", w.len());
                }
                if w.iter().any(|v| !v.is_finite()) {
                    fail!("window coefficients must be finite");
                }
                w.iter().map(|&v| v as f64).collect()
            }
        })
    }
}

/// The window of `win_length` zero-padded on both sides to `n_fft` (`librosa.util.pad_center`).
pub fn padded(window: &Window, win_length: usize, n_fft: usize) -> Result<Vec<f64>> {
    if win_length > n_fft {
        fail!("win_length={win_length} must be <= n_fft={n_fft}");
    }
    crate::limits::frame_length("n_fft", n_fft)?;
    let w = window.coefficients(win_length)?;
    let left = (n_fft - win_length) / 2;
    let mut out = vec![0.0; n_fft];
    out[left..left + win_length].copy_from_slice(&w);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hann_is_periodic() {
        let w = Window::Hann.coefficients(4).unwrap();
        assert!(
            w.iter().zip([0.0, 0.5, 1.0, 0.5]).all(|(a, b)| (a - b).abs() < 1e-15),
            "{w:?}"
        );
    }

    #[test]
    fn padded_window_is_centred() {
        let w = padded(&Window::Rectangular, 2, 6).unwrap();
        assert_eq!(w, vec![0.0, 0.0, 1.0, 1.0, 0.0, 0.0]);
        assert!(padded(&Window::Hann, 8, 4).is_err());
    }

    #[test]
    fn unknown_window_is_an_error() {
        assert!(Window::parse("kaiser").unwrap_err().0.contains("window"));
    }
}

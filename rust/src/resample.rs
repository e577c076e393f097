//! Band-limited resampling: windowed-sinc interpolation (Kaiser window, 32 zero crossings) from a
//! precomputed kernel table, for any pair of rates.

use crate::error::{self, positive_f64, Result};
use std::sync::OnceLock;

const ZERO_CROSSINGS: usize = 32;
const TABLE_PER_CROSSING: usize = 512;
const ROLLOFF: f64 = 0.945;
const BETA: f64 = 9.0;

fn bessel_i0(x: f64) -> f64 {
    let (mut sum, mut term, mut k) = (1.0, 1.0, 1.0);
    while term > 1e-12 * sum {
        term *= (x / (2.0 * k)).powi(2);
        sum += term;
        k += 1.0;
    }
    sum
}

/// `h(u)` for `u = i / TABLE_PER_CROSSING`, `0 <= u <= ZERO_CROSSINGS` (in zero crossings).
fn table() -> &'static [f64] {
    static TABLE: OnceLock<Vec<f64>> = OnceLock::new();
    TABLE.get_or_init(|| {
        let n = ZERO_CROSSINGS * TABLE_PER_CROSSING + 2;
        let i0b = bessel_i0(BETA);
        (0..n)
            .map(|i| {
                let u = i as f64 / TABLE_PER_CROSSING as f64;
                let x = u / ZERO_CROSSINGS as f64;
                if x >= 1.0 {
                    return 0.0;
                }
                let w = bessel_i0(BETA * (1.0 - x * x).sqrt()) / i0b;
                let a = std::f64::consts::PI * u * ROLLOFF;
                let sinc = if u == 0.0 { 1.0 } else { a.sin() / a };
                ROLLOFF * sinc * w
            })
            .collect()
    })
}

/// `y` resampled from `orig_sr` to `target_sr`; `ceil(len * target_sr / orig_sr)` samples.
pub fn resample(y: &[f32], orig_sr: f64, target_sr: f64) -> Result<Vec<f32>> {
    positive_f64("orig_sr", orig_sr)?;
    positive_f64("target_sr", target_sr)?;
    error::audio("y", y)?;
    if orig_sr == target_sr {
        return Ok(y.to_vec());
    }
    let ratio = target_sr / orig_sr;
    let n_out = (y.len() as f64 * ratio).ceil() as usize;
    let scale = ratio.min(1.0);
    let h = table();
    let step = scale * TABLE_PER_CROSSING as f64;
    let reach = ZERO_CROSSINGS as f64 / scale;
    let out = (0..n_out)
        .map(|n| {
            let t = n as f64 / ratio;
            let lo = ((t - reach).ceil().max(0.0)) as usize;
            let hi = ((t + reach).floor() as usize).min(y.len() - 1);
            let mut acc = 0.0;
            for (k, &x) in y.iter().enumerate().take(hi + 1).skip(lo) {
                let pos = (t - k as f64).abs() * step;
                let i = pos as usize;
                if i + 1 >= h.len() {
                    continue;
                }
                let frac = pos - i as f64;
                acc += x as f64 * (h[i] + frac * (h[i + 1] - h[i]));
            }
            (acc * scale) as f32
        })
        .collect();
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sine_keeps_its_frequency_and_level() {
        let (sr, f) = (48000.0, 1000.0);
        let y: Vec<f32> = (0..48000).map(|i| (2.0 * std::f64::consts::PI * f * i as f64 / sr).sin() as f32).collect();
        let z = resample(&y, sr, 16000.0).unwrap();
        assert_eq!(z.len(), 16000);
        let max_err = (1000..15000)
            .map(|i| (z[i] as f64 - (2.0 * std::f64::consts::PI * f * i as f64 / 16000.0).sin()).abs())
            .fold(0.0, f64::max);
        assert!(max_err < 2e-3, "{max_err}");
    }

    #[test]
    fn rates_must_be_positive() {
        assert!(resample(&[0.0; 10], 0.0, 16000.0).unwrap_err().0.starts_with("orig_sr"));
    }
}

//! Time-domain frame features: RMS and zero-crossing rate.

/// `sqrt(mean(x^2))` of one frame.
pub fn rms(frame: &[f32]) -> f64 {
    // Four lanes, so that the sum vectorises.
    let c = frame.chunks_exact(4);
    let tail: f64 = c.remainder().iter().map(|&v| v as f64 * v as f64).sum();
    let mut acc = [0f64; 4];
    for x in c {
        for k in 0..4 {
            acc[k] += x[k] as f64 * x[k] as f64;
        }
    }
    let sum = (acc[0] + acc[1]) + (acc[2] + acc[3]) + tail;
    (sum / frame.len() as f64).sqrt()
}

/// RMS of a frame from its magnitude spectrum (`librosa.feature.rms(S=...)`): Parseval with
/// the DC and (even `frame_length`) Nyquist bins counted once.
pub fn rms_from_magnitude(mag: &[f32], frame_length: usize) -> f64 {
    let last = mag.len().saturating_sub(1);
    let sum: f64 = mag
        .iter()
        .enumerate()
        .map(|(k, &m)| {
            let p = m as f64 * m as f64;
            if k == 0 || (k == last && frame_length.is_multiple_of(2)) {
                0.5 * p
            } else {
                p
            }
        })
        .sum();
    (2.0 * sum / (frame_length as f64 * frame_length as f64)).sqrt()
}

/// Fraction of samples whose sign differs from the previous sample's, with values within
/// `threshold` of zero counted as zero and zero as positive (`librosa.feature.zero_crossing_rate`).
pub fn zero_crossing_rate(frame: &[f32], threshold: f64) -> f64 {
    // `|v| > threshold` for a float32 `v` (compared in float64) is one float32 comparison with
    // the threshold rounded to float32: `>=` when rounding went up, else `>`; so a value counts as
    // negative when it is below (or at) minus that, which also excludes -0.0 and NaN.
    let t = threshold as f32;
    let next = frame.get(1..).unwrap_or(&[]);
    let count = |negative: fn(f32, f32) -> bool| -> usize {
        frame
            .iter()
            .zip(next)
            .map(|(&a, &b)| (negative(a, t) != negative(b, t)) as usize)
            .sum()
    };
    let crossings = if t as f64 > threshold {
        count(|v, t| v <= -t)
    } else {
        count(|v, t| v < -t)
    };
    crossings as f64 / frame.len() as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn square_wave_crosses_twice_per_period() {
        let period = 8;
        let x: Vec<f32> = (0..64)
            .map(|i| if (i / (period / 2)) % 2 == 0 { 1.0 } else { -1.0 })
            .collect();
        assert_eq!(zero_crossing_rate(&x, 1e-10), 15.0 / 64.0);
        assert_eq!(rms(&x), 1.0);
    }

    #[test]
    fn threshold_compares_like_float64() {
        let naive = |x: &[f32], t: f64| {
            let neg = |v: f32| (v as f64).abs() > t && v.is_sign_negative();
            x.windows(2).filter(|w| neg(w[0]) != neg(w[1])).count() as f64 / x.len() as f64
        };
        for t in [0.0, 1e-10, 0.1, 0.3, 1.0 / 3.0, 0.5, 1e-45, 1e40, f64::INFINITY] {
            let t32 = t as f32;
            let mut vals = vec![0.0f32, -0.0, f32::NAN, -f32::NAN, 1.0, -1.0, f32::NEG_INFINITY];
            for v in [t32, t32.next_down(), t32.next_up()] {
                vals.extend([v, -v, 1.0, -v]);
            }
            for v in [t32, t32.next_down(), t32.next_up()] {
                vals.extend([-v, 0.5, -v, -1.0]);
            }
            assert_eq!(zero_crossing_rate(&vals, t), naive(&vals, t), "threshold {t}");
        }
    }

    #[test]
    fn tiny_values_count_as_zero() {
        assert_eq!(zero_crossing_rate(&[1.0, -1e-12, 1.0, -1.0], 1e-10), 0.25);
    }
}

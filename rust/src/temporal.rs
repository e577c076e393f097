//! Time-domain frame features: RMS and zero-crossing rate.

/// `sqrt(mean(x^2))` of one frame.
pub fn rms(frame: &[f32]) -> f64 {
    let sum: f64 = frame.iter().map(|&v| v as f64 * v as f64).sum();
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
            if k == 0 || (k == last && frame_length % 2 == 0) {
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
    let negative = |v: f32| (v as f64).abs() > threshold && v.is_sign_negative();
    let crossings = frame
        .windows(2)
        .filter(|w| negative(w[0]) != negative(w[1]))
        .count();
    crossings as f64 / frame.len() as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn square_wave_crosses_twice_per_period() {
        let period = 8;
        let x: Vec<f32> = (0..64).map(|i| if (i / (period / 2)) % 2 == 0 { 1.0 } else { -1.0 }).collect();
        assert_eq!(zero_crossing_rate(&x, 1e-10), 15.0 / 64.0);
        assert_eq!(rms(&x), 1.0);
    }

    #[test]
    fn tiny_values_count_as_zero() {
        assert_eq!(zero_crossing_rate(&[1.0, -1e-12, 1.0, -1.0], 1e-10), 0.25);
    }
}

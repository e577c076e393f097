//! Chroma filterbank and tuning estimation (`librosa.filters.chroma`, `librosa.estimate_tuning`).

use crate::error::{positive, Result};
use crate::fail;
use crate::mel::{fft_frequencies, linspace};

fn hz_to_octs(f: f64, tuning: f64, bins_per_octave: usize) -> f64 {
    let a440 = 440.0 * 2f64.powf(tuning / bins_per_octave as f64);
    (f / (a440 / 16.0)).log2()
}

/// The `(n_chroma, 1 + n_fft/2)` chroma filterbank, row-major, float32 like librosa's.
pub fn chroma_filters(sr: f64, n_fft: usize, n_chroma: usize, tuning: f64) -> Result<Vec<f32>> {
    positive("n_chroma", n_chroma)?;
    positive("n_fft", n_fft)?;
    crate::limits::frame_length("n_fft", n_fft)?;
    crate::limits::bands("n_chroma", n_chroma)?;
    crate::limits::matrix("n_chroma", n_chroma, "n_fft", n_fft)?;
    if !tuning.is_finite() {
        fail!("tuning={tuning} must be a finite number");
    }
    let nc = n_chroma as f64;
    let step = sr / n_fft as f64;
    let mut frqbins: Vec<f64> = (1..n_fft)
        .map(|i| nc * hz_to_octs(i as f64 * step, tuning, n_chroma))
        .collect();
    let first = frqbins.first().copied().unwrap_or(0.0) - 1.5 * nc;
    frqbins.insert(0, first);
    let n = frqbins.len();
    let widths: Vec<f64> = (0..n)
        .map(|k| {
            if k + 1 < n {
                (frqbins[k + 1] - frqbins[k]).max(1.0)
            } else {
                1.0
            }
        })
        .collect();
    let half = (nc / 2.0).round_ties_even();
    let mut wts = vec![0f64; n_chroma * n];
    for c in 0..n_chroma {
        for k in 0..n {
            let d = (frqbins[k] - c as f64 + half + 10.0 * nc).rem_euclid(nc) - half;
            wts[c * n + k] = (-0.5 * (2.0 * d / widths[k]).powi(2)).exp();
        }
    }
    for k in 0..n {
        let norm = (0..n_chroma).map(|c| wts[c * n + k].powi(2)).sum::<f64>().sqrt();
        let norm = if norm < f64::MIN_POSITIVE { 1.0 } else { norm };
        let oct = (-0.5 * ((frqbins[k] / nc - 5.0) / 2.0).powi(2)).exp();
        (0..n_chroma).for_each(|c| wts[c * n + k] = wts[c * n + k] / norm * oct);
    }
    let shift = 3 * (n_chroma / 12);
    let n_bins = n_fft / 2 + 1;
    let mut out = Vec::with_capacity(n_chroma * n_bins);
    for c in 0..n_chroma {
        let src = (c + shift) % n_chroma;
        out.extend(wts[src * n..src * n + n_bins].iter().map(|&v| v as f32));
    }
    Ok(out)
}

/// Tuning deviation (fractions of a chroma bin) from the columns of a float64 power spectrogram,
/// by librosa's method: parabolic-interpolated spectral peaks
/// (`piptrack`, 150–4000 Hz, threshold 0.1 of the frame maximum), the louder half of them, and
/// the mode of their residuals in bins of `resolution`.
pub fn estimate_tuning<I>(columns: I, sr: f64, n_fft: usize, bins_per_octave: usize) -> f64
where
    I: IntoIterator<Item = Vec<f64>>,
{
    let freqs = fft_frequencies(sr, n_fft);
    let fmax = 4000f64.min(sr / 2.0);
    let mut pitches = Vec::new();
    let mut mags = Vec::new();
    for x in columns {
        let n = x.len().min(freqs.len());
        if n < 3 {
            continue;
        }
        let ref_value = 0.1 * x.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        let m = |i: usize| if x[i] > ref_value { x[i] } else { 0.0 };
        for i in 1..n {
            let is_max = if i + 1 < n {
                m(i) > m(i - 1) && m(i) >= m(i + 1)
            } else {
                m(i) > m(i - 1)
            };
            if !(is_max && 150.0 <= freqs[i] && freqs[i] < fmax) {
                continue;
            }
            let (shift, grad) = if i + 1 < n {
                let (a, b) = (x[i + 1] + x[i - 1] - 2.0 * x[i], (x[i + 1] - x[i - 1]) / 2.0);
                (
                    if b.abs() >= a.abs() { 0.0 } else { -b / a },
                    (x[i + 1] - x[i - 1]) / 2.0,
                )
            } else {
                (0.0, x[i] - x[i - 1])
            };
            pitches.push((i as f64 + shift) * sr / n_fft as f64);
            mags.push(x[i] + 0.5 * grad * shift);
        }
    }
    // Only positive pitches count, and of those the ones at or above the median magnitude.
    let (p, m): (Vec<f64>, Vec<f64>) = pitches.into_iter().zip(mags).filter(|(p, _)| *p > 0.0).unzip();
    if p.is_empty() {
        return 0.0;
    }
    let mut sorted = m.clone();
    sorted.sort_unstable_by(|a, b| a.total_cmp(b));
    let mid = sorted.len() / 2;
    let median = if sorted.len() % 2 == 1 {
        sorted[mid]
    } else {
        (sorted[mid - 1] + sorted[mid]) / 2.0
    };
    let selected: Vec<f64> = p
        .iter()
        .zip(&m)
        .filter(|(_, &mg)| mg >= median)
        .map(|(&f, _)| f)
        .collect();
    pitch_tuning(&selected, 0.01, bins_per_octave)
}

/// The most common residual of `frequencies` from the equal-tempered grid (`librosa.pitch_tuning`).
pub fn pitch_tuning(frequencies: &[f64], resolution: f64, bins_per_octave: usize) -> f64 {
    let residuals: Vec<f64> = frequencies
        .iter()
        .filter(|&&f| f > 0.0)
        .map(|&f| {
            let r = (bins_per_octave as f64 * hz_to_octs(f, 0.0, bins_per_octave)).rem_euclid(1.0);
            if r >= 0.5 {
                r - 1.0
            } else {
                r
            }
        })
        .collect();
    if residuals.is_empty() {
        return 0.0;
    }
    let n_bins = (1.0 / resolution).ceil() as usize;
    let edges = linspace(-0.5, 0.5, n_bins + 1);
    let mut counts = vec![0usize; n_bins];
    for &r in &residuals {
        if !(r >= edges[0] && r <= edges[n_bins]) {
            continue;
        }
        // np.histogram's uniform-bin index, corrected against the edges.
        let mut i = (((r - edges[0]) * (n_bins as f64 / (edges[n_bins] - edges[0]))) as usize).min(n_bins - 1);
        if r < edges[i] {
            i -= 1;
        } else if i + 1 < n_bins && r >= edges[i + 1] {
            i += 1;
        }
        counts[i] += 1;
    }
    let best = (0..n_bins).fold(0, |b, i| if counts[i] > counts[b] { i } else { b });
    edges[best]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a440_has_no_tuning_deviation() {
        assert!((pitch_tuning(&[440.0, 880.0, 220.0], 0.01, 12)).abs() < 1e-9);
        let sharp = 440.0 * 2f64.powf(0.25 / 12.0);
        assert!((pitch_tuning(&[sharp; 3], 0.01, 12) - 0.25).abs() < 0.011);
    }

    #[test]
    fn a440_energy_lands_in_chroma_a() {
        let (sr, n_fft) = (22050.0, 4096);
        let fb = chroma_filters(sr, n_fft, 12, 0.0).unwrap();
        let n_bins = n_fft / 2 + 1;
        let bin = (440.0 / (sr / n_fft as f64)).round() as usize;
        let column: Vec<f32> = (0..12).map(|c| fb[c * n_bins + bin]).collect();
        let best = (0..12).fold(0, |b, c| if column[c] > column[b] { c } else { b });
        assert_eq!(best, 9); // C, C#, D, D#, E, F, F#, G, G#, A
    }
}

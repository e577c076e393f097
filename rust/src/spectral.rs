//! Per-frame spectral features over one spectrum column (`librosa.feature.spectral_*`), plus the
//! frame features of the 34-feature Bi-LSTM recipe (spectral flux, spectral and energy entropy).
//!
//! Sums run in four float64 lanes (so that they vectorise); the features that share a column's
//! sum (centroid, bandwidth, flux) get it from the caller once per frame.

use crate::error::Result;
use crate::fail;

/// `librosa.util.normalize`'s threshold for float32 data.
const TINY: f64 = f32::MIN_POSITIVE as f64;

/// `sum f(a[i], b[i])` in four lanes (over the common length).
#[inline(always)]
fn sum_zip(a: &[f32], b: &[f64], f: impl Fn(f64, f64) -> f64) -> f64 {
    let n = a.len().min(b.len());
    let (ca, cb) = (a[..n].chunks_exact(4), b[..n].chunks_exact(4));
    let tail: f64 = ca
        .remainder()
        .iter()
        .zip(cb.remainder())
        .map(|(&x, &y)| f(x as f64, y))
        .sum();
    let mut acc = [0f64; 4];
    for (x, y) in ca.zip(cb) {
        for k in 0..4 {
            acc[k] += f(x[k] as f64, y[k]);
        }
    }
    (acc[0] + acc[1]) + (acc[2] + acc[3]) + tail
}

/// `sum |s|` in four lanes.
#[inline(always)]
fn sum_abs(s: &[f32]) -> f64 {
    let c = s.chunks_exact(4);
    let tail: f64 = c.remainder().iter().map(|&v| v.abs() as f64).sum();
    let mut acc = [0f64; 4];
    for x in c {
        for k in 0..4 {
            acc[k] += x[k].abs() as f64;
        }
    }
    (acc[0] + acc[1]) + (acc[2] + acc[3]) + tail
}

/// Sum of a column, or 1 when it is below `TINY` (librosa leaves such columns unnormalised).
pub fn l1(s: &[f32]) -> f64 {
    let n = sum_abs(s);
    if n < TINY {
        1.0
    } else {
        n
    }
}

/// Centroid of a column whose `l1` is `norm`.
pub fn centroid_with(mag: &[f32], freqs: &[f64], norm: f64) -> f64 {
    sum_zip(mag, freqs, |s, f| f * s) / norm
}

pub fn centroid(mag: &[f32], freqs: &[f64]) -> f64 {
    centroid_with(mag, freqs, l1(mag))
}

/// `(sum (s / norm) |f - centroid|^p)^(1/p)`; `norm` is the column's `l1` (or 1 without norm).
pub fn bandwidth_with(mag: &[f32], freqs: &[f64], centroid: f64, p: f64, norm: f64) -> f64 {
    if p == 2.0 {
        (sum_zip(mag, freqs, |s, f| {
            let d = f - centroid;
            s * (d * d)
        }) / norm)
            .sqrt()
    } else if p == 1.0 {
        sum_zip(mag, freqs, |s, f| s * (f - centroid).abs()) / norm
    } else {
        (sum_zip(mag, freqs, |s, f| s * (f - centroid).abs().powf(p)) / norm).powf(1.0 / p)
    }
}

pub fn bandwidth(mag: &[f32], freqs: &[f64], centroid: f64, p: f64, norm: bool) -> f64 {
    bandwidth_with(mag, freqs, centroid, p, if norm { l1(mag) } else { 1.0 })
}

pub fn rolloff(mag: &[f32], freqs: &[f64], roll_percent: f64) -> f64 {
    let total: f64 = mag.iter().map(|&v| v as f64).sum();
    let threshold = roll_percent * total;
    let mut acc = 0.0;
    for (&s, &f) in mag.iter().zip(freqs) {
        acc += s as f64;
        if acc >= threshold {
            return f;
        }
    }
    freqs.last().copied().unwrap_or(0.0)
}

/// Mantissa in `[1, 2)` and biased exponent of a positive normal float64.
#[inline(always)]
fn split(v: f64) -> (f64, i64) {
    const MANTISSA: u64 = (1 << 52) - 1;
    const ONE: u64 = 1023 << 52;
    let b = v.to_bits();
    (f64::from_bits((b & MANTISSA) | ONE), (b >> 52) as i64)
}

/// `(sum ln v, sum v)` over `v = value(s)`, every `v` a positive normal float64: the logs are
/// summed as the log of one product, kept as a mantissa product (renormalised every 64 values)
/// and an exponent sum, so one `ln` per column instead of one per bin, exact to float64 rounding.
#[inline(always)]
fn log_and_sum(mag: &[f32], value: impl Fn(f32) -> f64) -> (f64, f64) {
    let (mut m_tot, mut e_tot) = (1f64, 0i64);
    let mut sums = [0f64; 4];
    for block in mag.chunks(64) {
        // Each lane multiplies at most 16 + 1 mantissas below 2, so it cannot overflow.
        let (mut prod, mut exps) = ([1f64; 4], [0i64; 4]);
        let c = block.chunks_exact(4);
        for (k, &s) in c.remainder().iter().enumerate() {
            let v = value(s);
            let (m, e) = split(v);
            sums[k] += v;
            prod[k] *= m;
            exps[k] += e;
        }
        for x in c {
            for k in 0..4 {
                let v = value(x[k]);
                let (m, e) = split(v);
                sums[k] += v;
                prod[k] *= m;
                exps[k] += e;
            }
        }
        for k in 0..4 {
            let (m, e) = split(m_tot * prod[k]);
            m_tot = m;
            e_tot += e - 1023 + exps[k];
        }
    }
    let log_sum = (e_tot - 1023 * mag.len() as i64) as f64 * std::f64::consts::LN_2 + m_tot.ln();
    (log_sum, (sums[0] + sums[1]) + (sums[2] + sums[3]))
}

pub fn flatness(mag: &[f32], amin: f64, power: f64) -> f64 {
    let n = mag.len() as f64;
    let (log_sum, sum) = if amin >= f64::MIN_POSITIVE && power == 2.0 {
        log_and_sum(mag, |s| (s as f64 * s as f64).max(amin))
    } else if amin >= f64::MIN_POSITIVE {
        log_and_sum(mag, |s| (s as f64).powf(power).max(amin))
    } else {
        (f64::NAN, f64::NAN)
    };
    // A value that is not a finite normal number (huge `power`, subnormal `amin`): one log per bin.
    let (log_sum, sum) = if sum.is_finite() && log_sum.is_finite() {
        (log_sum, sum)
    } else {
        mag.iter().fold((0.0, 0.0), |(l, t), &s| {
            let v = (s as f64).powf(power).max(amin);
            (l + v.ln(), t + v)
        })
    };
    (log_sum / n).exp() / (sum / n)
}

pub fn check_roll_percent(roll_percent: f64) -> Result<()> {
    if !(roll_percent > 0.0 && roll_percent < 1.0) {
        fail!("roll_percent={roll_percent} must lie in the range (0, 1)");
    }
    Ok(())
}

/// Shannon entropy (bits) of the energies of `n_blocks` equal blocks of `x` (squared values);
/// trailing values that do not fill a block are left out; an all-zero input has entropy 0.
pub fn block_entropy(x: &[f32], n_blocks: usize, squared: bool) -> f64 {
    let len = x.len() / n_blocks;
    let energies = x[..len * n_blocks].chunks_exact(len.max(1)).map(|b| {
        b.iter()
            .map(|&v| if squared { v as f64 * v as f64 } else { v as f64 })
            .sum::<f64>()
    });
    let energies: Vec<f64> = energies.collect();
    let total: f64 = energies.iter().sum();
    if total <= 0.0 {
        return 0.0;
    }
    -energies
        .iter()
        .filter(|&&e| e > 0.0)
        .map(|&e| (e / total) * (e / total).log2())
        .sum::<f64>()
}

pub fn check_blocks(n_blocks: usize, available: usize, what: &str) -> Result<()> {
    if n_blocks == 0 || n_blocks > available {
        fail!("n_blocks={n_blocks} must be between 1 and the number of {what} ({available})");
    }
    Ok(())
}

/// Spectral flux between consecutive magnitude spectra normalised to unit sum.
/// `prev` holds the previous normalised spectrum (`None` before the first frame: flux 0).
pub fn flux(mag: &[f32], prev: &mut Option<Vec<f32>>) -> f64 {
    flux_with(mag, prev, l1(mag))
}

/// `flux` of a column whose `l1` is `n`.
pub fn flux_with(mag: &[f32], prev: &mut Option<Vec<f32>>, n: f64) -> f64 {
    let Some(p) = prev else {
        *prev = Some(mag.iter().map(|&v| (v as f64 / n) as f32).collect());
        return 0.0;
    };
    // One pass: the squared change, and the current spectrum replaces the previous one.
    // Four lanes, so that it vectorises.
    let len = p.len().min(mag.len());
    let (cp, cm) = (p[..len].chunks_exact_mut(4), mag[..len].chunks_exact(4));
    let mut acc = [0f64; 4];
    let step = |b: &mut f32, v: f32| {
        let a = (v as f64 / n) as f32;
        let d = (a - *b) as f64;
        *b = a;
        d * d
    };
    let mut tail = 0.0;
    let (rp, rm) = (cp.into_remainder(), cm.remainder());
    for (b, &v) in rp.iter_mut().zip(rm) {
        tail += step(b, v);
    }
    let (cp, cm) = (p[..len].chunks_exact_mut(4), mag[..len].chunks_exact(4));
    for (b, v) in cp.zip(cm) {
        for k in 0..4 {
            acc[k] += step(&mut b[k], v[k]);
        }
    }
    (acc[0] + acc[1]) + (acc[2] + acc[3]) + tail
}

/// Octave sub-bands of `librosa.feature.spectral_contrast`: (bins, how many values to average).
/// Each band is a contiguous run of bins (frequencies increase with the bin).
#[derive(Debug, Clone)]
pub struct ContrastBands {
    pub bands: Vec<(std::ops::Range<usize>, usize)>,
}

impl ContrastBands {
    pub fn new(freqs: &[f64], sr: f64, fmin: f64, n_bands: usize, quantile: f64) -> Result<Self> {
        if n_bands == 0 {
            fail!("n_bands={n_bands} must be a positive integer");
        }
        if n_bands >= freqs.len() {
            fail!(
                "n_bands={n_bands} must be smaller than the number of frequency bins ({}): each band needs a bin",
                freqs.len()
            );
        }
        if !(quantile > 0.0 && quantile < 1.0) {
            fail!("quantile={quantile} must lie in the range (0, 1)");
        }
        if !(fmin.is_finite() && fmin > 0.0) {
            fail!("fmin={fmin} must be a positive number");
        }
        let mut octa = vec![0.0; n_bands + 2];
        for (k, o) in octa.iter_mut().skip(1).enumerate() {
            *o = fmin * 2f64.powi(k as i32);
        }
        if octa[..n_bands + 1].iter().any(|&o| o >= 0.5 * sr) {
            fail!("fmin={fmin}, n_bands={n_bands}: frequency band exceeds Nyquist. Reduce either fmin or n_bands");
        }
        let mut bands = Vec::with_capacity(n_bands + 1);
        for k in 0..=n_bands {
            let (lo, hi) = (octa[k], octa[k + 1]);
            let mut sel: Vec<bool> = freqs.iter().map(|&f| f >= lo && f <= hi).collect();
            let idx: Vec<usize> = (0..sel.len()).filter(|&i| sel[i]).collect();
            let (Some(&first), Some(&last)) = (idx.first(), idx.last()) else {
                fail!("n_fft is too small for spectral_contrast: band {k} ({lo:.0}-{hi:.0} Hz) has no FFT bin");
            };
            if k > 0 && first > 0 {
                sel[first - 1] = true;
            }
            if k == n_bands {
                sel[last + 1..].iter_mut().for_each(|s| *s = true);
            }
            let mut bins: Vec<usize> = (0..sel.len()).filter(|&i| sel[i]).collect();
            let count = bins.len();
            if k < n_bands {
                bins.pop();
            }
            let q = ((quantile * count as f64).round_ties_even() as usize).max(1);
            let (Some(&first), Some(&last)) = (bins.first(), bins.last()) else {
                fail!("n_fft is too small for spectral_contrast: band {k} is empty");
            };
            debug_assert_eq!(last + 1 - first, bins.len());
            bands.push((first..last + 1, q));
        }
        Ok(ContrastBands { bands })
    }

    /// Peak and valley (mean of the top and bottom quantile) of each band of one magnitude column.
    /// librosa sorts each band and averages its first and last `q` values; only which values
    /// those are matters, so they are found without sorting: for small `q` (the usual 2 % of a
    /// band) in one pass that keeps the `q` smallest and largest in order (so the means equal
    /// the sorted ones bit for bit), otherwise by partial selection. Values are compared as
    /// `f32::total_cmp` keys (integers).
    pub fn peaks_valleys(&self, mag: &[f32], scratch: &mut Vec<i32>, peaks: &mut [f64], valleys: &mut [f64]) {
        const SMALL: usize = 8;
        let mean = |x: &[i32]| x.iter().map(|&k| from_key(k) as f64).sum::<f64>() / x.len() as f64;
        for (k, (bins, q)) in self.bands.iter().enumerate() {
            let band = &mag[bins.clone()];
            let n = band.len();
            let q = (*q).min(n);
            if q <= SMALL {
                let (mut lo, mut hi) = ([i32::MAX; SMALL], [i32::MIN; SMALL]);
                let (lo, hi) = (&mut lo[..q], &mut hi[..q]);
                // Spectra mostly fall with frequency: the smallest are sought from the top of
                // the band down and the largest from the bottom up, so few values displace one;
                // eight at a time, skipping (by their min or max) those that cannot.
                let keys = |c: &[f32]| -> [i32; 8] { std::array::from_fn(|j| key(c[j])) };
                let low = band.rchunks_exact(8);
                low.remainder().iter().rev().for_each(|&v| keep_smallest(lo, key(v)));
                for c in low {
                    let ks = keys(c);
                    if ks.iter().fold(i32::MAX, |a, &b| a.min(b)) < lo[q - 1] {
                        ks.iter().rev().for_each(|&v| keep_smallest(lo, v));
                    }
                }
                let high = band.chunks_exact(8);
                high.remainder().iter().for_each(|&v| keep_largest(hi, key(v)));
                for c in high {
                    let ks = keys(c);
                    if ks.iter().fold(i32::MIN, |a, &b| a.max(b)) > hi[0] {
                        ks.iter().for_each(|&v| keep_largest(hi, v));
                    }
                }
                valleys[k] = mean(lo);
                peaks[k] = mean(hi);
                continue;
            }
            scratch.clear();
            scratch.extend(band.iter().map(|&v| key(v)));
            if 2 * q <= n {
                // The top q to the end, then the bottom q of the rest to the front.
                scratch.select_nth_unstable(n - q);
                scratch[..n - q].select_nth_unstable(q - 1);
            } else {
                scratch.sort_unstable();
            }
            valleys[k] = mean(&scratch[..q]);
            peaks[k] = mean(&scratch[n - q..]);
        }
    }
}

/// Inserts `v` into `lo` (ascending, the smallest values so far) if it is smaller than its last.
#[inline(always)]
fn keep_smallest(lo: &mut [i32], v: i32) {
    let mut j = lo.len() - 1;
    if v >= lo[j] {
        return;
    }
    while j > 0 && lo[j - 1] > v {
        lo[j] = lo[j - 1];
        j -= 1;
    }
    lo[j] = v;
}

/// Inserts `v` into `hi` (ascending, the largest values so far) if it is larger than its first.
#[inline(always)]
fn keep_largest(hi: &mut [i32], v: i32) {
    if v <= hi[0] {
        return;
    }
    let mut j = 0;
    while j + 1 < hi.len() && hi[j + 1] < v {
        hi[j] = hi[j + 1];
        j += 1;
    }
    hi[j] = v;
}

/// An integer that orders like `f32::total_cmp`.
#[inline(always)]
fn key(v: f32) -> i32 {
    let b = v.to_bits() as i32;
    b ^ (((b >> 31) as u32) >> 1) as i32
}

/// The inverse of `key`.
#[inline(always)]
fn from_key(k: i32) -> f32 {
    f32::from_bits((k ^ (((k >> 31) as u32) >> 1) as i32) as u32)
}

/// `librosa.util.normalize` of one column: divide by its p-norm unless that is below float32's tiny.
pub fn normalize(x: &mut [f32], norm: Option<f64>) {
    let Some(q) = norm else { return };
    let len = if q.is_infinite() {
        x.iter().fold(0f64, |a, &v| a.max(v.abs() as f64))
    } else {
        x.iter().map(|&v| (v.abs() as f64).powf(q)).sum::<f64>().powf(1.0 / q)
    };
    if len >= f32::MIN_POSITIVE as f64 {
        x.iter_mut().for_each(|v| *v = (*v as f64 / len) as f32);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn centroid_of_one_bin_is_its_frequency() {
        let freqs: Vec<f64> = (0..5).map(|i| i as f64 * 100.0).collect();
        let mag = [0.0, 0.0, 3.0, 0.0, 0.0];
        assert_eq!(centroid(&mag, &freqs), 200.0);
        assert_eq!(bandwidth(&mag, &freqs, 200.0, 2.0, true), 0.0);
        assert_eq!(rolloff(&mag, &freqs, 0.85), 200.0);
        assert_eq!(centroid(&[0.0; 5], &freqs), 0.0);
    }

    #[test]
    fn entropy_extremes() {
        assert!((block_entropy(&[1.0; 100], 10, true) - 10f64.log2()).abs() < 1e-12);
        let mut one = [0.0f32; 100];
        one[3] = 1.0;
        assert_eq!(block_entropy(&one, 10, true), 0.0);
        assert_eq!(block_entropy(&[0.0; 100], 10, true), 0.0);
    }

    #[test]
    fn flatness_of_flat_spectrum_is_one() {
        assert!((flatness(&[2.0; 16], 1e-10, 2.0) - 1.0).abs() < 1e-12);
        assert!(flatness(&[0.0, 0.0, 5.0, 0.0], 1e-10, 2.0) < 1e-6);
    }

    /// A deterministic column with ties, zeros and a falling trend.
    fn column(n: usize, seed: u64) -> Vec<f32> {
        let mut x = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        (0..n)
            .map(|i| {
                x = x.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                let r = (x >> 40) as f32 / (1u64 << 24) as f32;
                if r < 0.05 {
                    0.0
                } else if r < 0.1 {
                    0.25
                } else {
                    r * 100.0 / (1.0 + i as f32) * if r < 0.12 { 1e-9 } else { 1.0 }
                }
            })
            .collect()
    }

    #[test]
    fn flatness_equals_one_log_per_bin() {
        for (n, seed) in [(1usize, 1u64), (3, 2), (64, 3), (65, 4), (513, 5), (2049, 6)] {
            let mag = column(n, seed);
            for (amin, power) in [(1e-10, 2.0), (1e-10, 1.0), (1e-3, 1.5), (1e-310, 2.0), (1e-10, 80.0)] {
                let (l, t) = mag.iter().fold((0f64, 0f64), |(l, t), &s| {
                    let v = (s as f64).powf(power).max(amin);
                    (l + v.ln(), t + v)
                });
                let want = (l / n as f64).exp() / (t / n as f64);
                let got = flatness(&mag, amin, power);
                assert!(
                    (got - want).abs() <= 1e-12 * want.abs().max(1e-300) || got == want,
                    "{n} {amin} {power}: {got} vs {want}"
                );
            }
        }
    }

    #[test]
    fn contrast_selection_equals_sorting() {
        let sr = 16000.0;
        for n_fft in [256usize, 1024, 4096] {
            let freqs: Vec<f64> = (0..=n_fft / 2).map(|k| k as f64 * sr / n_fft as f64).collect();
            for quantile in [0.02, 0.1, 0.45] {
                let bands = ContrastBands::new(&freqs, sr, 100.0, 5, quantile).unwrap();
                for seed in 0..20 {
                    let mut mag = column(freqs.len(), seed);
                    if seed % 3 == 0 {
                        mag.iter_mut().step_by(7).for_each(|v| *v = -*v);
                    }
                    let nb = bands.bands.len();
                    let (mut p, mut v) = (vec![0.0; nb], vec![0.0; nb]);
                    bands.peaks_valleys(&mag, &mut Vec::new(), &mut p, &mut v);
                    for (k, (bins, q)) in bands.bands.iter().enumerate() {
                        let mut s = mag[bins.clone()].to_vec();
                        s.sort_unstable_by(|a, b| a.total_cmp(b));
                        let q = (*q).min(s.len());
                        let mean = |x: &[f32]| x.iter().map(|&v| v as f64).sum::<f64>() / x.len() as f64;
                        let (wv, wp) = (mean(&s[..q]), mean(&s[s.len() - q..]));
                        let close = |a: f64, b: f64| (a - b).abs() <= 1e-12 * b.abs();
                        assert!(
                            close(v[k], wv) && close(p[k], wp),
                            "n_fft {n_fft} q {quantile} band {k}"
                        );
                        if q <= 8 {
                            assert_eq!((v[k], p[k]), (wv, wp));
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn flux_is_zero_for_a_steady_spectrum() {
        let mut prev = None;
        assert_eq!(flux(&[1.0, 2.0], &mut prev), 0.0);
        assert_eq!(flux(&[2.0, 4.0], &mut prev), 0.0);
        assert!(flux(&[4.0, 0.0], &mut prev) > 0.1);
    }
}

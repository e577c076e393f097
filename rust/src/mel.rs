//! Mel scale and mel filterbank, equal to `librosa.filters.mel` (Slaney or HTK scale).

use crate::db::madd;
use crate::error::{positive, positive_f64, Result};
use crate::fail;

const F_SP: f64 = 200.0 / 3.0;
const MIN_LOG_HZ: f64 = 1000.0;
const MIN_LOG_MEL: f64 = MIN_LOG_HZ / F_SP;

fn logstep() -> f64 {
    6.4f64.ln() / 27.0
}

pub fn hz_to_mel(f: f64, htk: bool) -> f64 {
    if htk {
        return 2595.0 * (1.0 + f / 700.0).log10();
    }
    if f >= MIN_LOG_HZ {
        MIN_LOG_MEL + (f / MIN_LOG_HZ).ln() / logstep()
    } else {
        f / F_SP
    }
}

pub fn mel_to_hz(m: f64, htk: bool) -> f64 {
    if htk {
        return 700.0 * (10f64.powf(m / 2595.0) - 1.0);
    }
    if m >= MIN_LOG_MEL {
        MIN_LOG_HZ * (logstep() * (m - MIN_LOG_MEL)).exp()
    } else {
        F_SP * m
    }
}

/// `np.linspace(start, stop, num)` with numpy's arithmetic.
pub fn linspace(start: f64, stop: f64, num: usize) -> Vec<f64> {
    if num == 1 {
        return vec![start];
    }
    let step = (stop - start) / (num - 1) as f64;
    let mut v: Vec<f64> = (0..num).map(|i| i as f64 * step + start).collect();
    if let Some(last) = v.last_mut() {
        *last = stop;
    }
    v
}

/// Centre frequency of each FFT bin (`librosa.fft_frequencies`).
pub fn fft_frequencies(sr: f64, n_fft: usize) -> Vec<f64> {
    let val = 1.0 / (n_fft as f64 * (1.0 / sr));
    (0..=n_fft / 2).map(|i| i as f64 * val).collect()
}

pub fn mel_frequencies(n_mels: usize, fmin: f64, fmax: f64, htk: bool) -> Vec<f64> {
    linspace(hz_to_mel(fmin, htk), hz_to_mel(fmax, htk), n_mels)
        .into_iter()
        .map(|m| mel_to_hz(m, htk))
        .collect()
}

/// How each filter is normalised.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum MelNorm {
    /// Divide each triangle by its width in Hz (constant energy per band).
    Slaney,
    /// Peak 1.
    None,
    /// Unit p-norm per filter (`librosa.util.normalize(norm=p)`; `f64::INFINITY` for max).
    P(f64),
}

#[derive(Debug, Clone, PartialEq)]
pub struct MelParams {
    pub sr: f64,
    pub n_fft: usize,
    pub n_mels: usize,
    pub fmin: f64,
    /// `None`: `sr / 2`.
    pub fmax: Option<f64>,
    pub htk: bool,
    pub norm: MelNorm,
}

/// A mel filterbank stored sparsely: each filter as (first bin, weights).
#[derive(Debug, Clone)]
pub struct MelBank {
    pub n_bins: usize,
    pub filters: Vec<(usize, Vec<f32>)>,
}

impl MelBank {
    pub fn new(p: &MelParams) -> Result<MelBank> {
        positive_f64("sr", p.sr)?;
        positive("n_fft", p.n_fft)?;
        positive("n_mels", p.n_mels)?;
        crate::limits::frame_length("n_fft", p.n_fft)?;
        crate::limits::bands("n_mels", p.n_mels)?;
        crate::limits::matrix("n_mels", p.n_mels, "1 + n_fft // 2", p.n_fft / 2 + 1)?;
        let fmax = p.fmax.unwrap_or(p.sr / 2.0);
        if !(p.fmin.is_finite() && p.fmin >= 0.0) {
            fail!("fmin={} must be a non-negative number", p.fmin);
        }
        if !(fmax.is_finite() && fmax > p.fmin) {
            fail!("fmax={fmax} must be greater than fmin={}", p.fmin);
        }
        if let MelNorm::P(q) = p.norm {
            if q.is_nan() || q <= 0.0 {
                fail!("norm={q} must be 'slaney', None or a positive number");
            }
        }
        let fftfreqs = fft_frequencies(p.sr, p.n_fft);
        let n_bins = fftfreqs.len();
        let mel_f = mel_frequencies(p.n_mels + 2, p.fmin, fmax, p.htk);
        let mut filters = Vec::with_capacity(p.n_mels);
        for i in 0..p.n_mels {
            let (lo, mid, hi) = (mel_f[i], mel_f[i + 1], mel_f[i + 2]);
            let (d0, d1) = (mid - lo, hi - mid);
            // librosa stores float32 weights, then scales them in float64.
            let enorm = match p.norm {
                MelNorm::Slaney => 2.0 / (hi - lo),
                _ => 1.0,
            };
            let mut w: Vec<f32> = fftfreqs
                .iter()
                .map(|&f| {
                    let lower = -(lo - f) / d0;
                    let upper = (hi - f) / d1;
                    let v = 0f64.max(lower.min(upper)) as f32;
                    (v as f64 * enorm) as f32
                })
                .collect();
            if let MelNorm::P(q) = p.norm {
                crate::spectral::normalize(&mut w, Some(q));
            }
            let first = w.iter().position(|&v| v != 0.0).unwrap_or(0);
            let last = w.iter().rposition(|&v| v != 0.0).map_or(first, |l| l + 1);
            filters.push((first, w[first..last.max(first)].to_vec()));
        }
        Ok(MelBank { n_bins, filters })
    }

    /// `out[m] = sum_k W[m, k] * spec[k]`. Filters are short (tens of bins), so four lanes.
    #[inline(always)]
    pub fn apply(&self, spec: &[f32], out: &mut [f32]) {
        for (o, (first, w)) in out.iter_mut().zip(&self.filters) {
            let x = &spec[*first..*first + w.len()];
            let mut lanes = [0f32; 4];
            let (cw, cx) = (w.chunks_exact(4), x.chunks_exact(4));
            let tail: f32 = cw.remainder().iter().zip(cx.remainder()).map(|(a, b)| a * b).sum();
            for (a, b) in cw.zip(cx) {
                for k in 0..4 {
                    lanes[k] += a[k] * b[k];
                }
            }
            *o = (lanes[0] + lanes[1]) + (lanes[2] + lanes[3]) + tail;
        }
    }

    /// `apply` for a block of `B` frames stored frame-interleaved: `spec[k * B + j]` is bin `k` of
    /// frame `j`, `out[m * B + j]` band `m`. Each weight is read once per block and the inner loops
    /// run across frames, so they vectorise however short a filter is; four partial sums over the
    /// bins keep the additions independent. `FMA`: fused multiply-add (only where it is native).
    #[inline(always)]
    pub fn apply_block<const B: usize, const FMA: bool>(&self, spec: &[f32], out: &mut [f32]) {
        for ((first, w), o) in self.filters.iter().zip(out.chunks_exact_mut(B)) {
            let x = &spec[first * B..(first + w.len()) * B];
            let mut acc = [[0f32; B]; 4];
            let (cw, cx) = (w.chunks_exact(4), x.chunks_exact(4 * B));
            for (&wk, xk) in cw.remainder().iter().zip(cx.remainder().chunks_exact(B)) {
                for j in 0..B {
                    acc[0][j] = madd::<FMA>(wk, xk[j], acc[0][j]);
                }
            }
            for (w4, x4) in cw.zip(cx) {
                for (i, a) in acc.iter_mut().enumerate() {
                    for j in 0..B {
                        a[j] = madd::<FMA>(w4[i], x4[i * B + j], a[j]);
                    }
                }
            }
            for j in 0..B {
                o[j] = (acc[0][j] + acc[1][j]) + (acc[2][j] + acc[3][j]);
            }
        }
    }

    /// The dense `(n_mels, n_bins)` matrix, row-major.
    pub fn dense(&self) -> Vec<f32> {
        let mut m = vec![0.0; self.filters.len() * self.n_bins];
        for (i, (first, w)) in self.filters.iter().enumerate() {
            m[i * self.n_bins + first..i * self.n_bins + first + w.len()].copy_from_slice(w);
        }
        m
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mel_scale_round_trips() {
        for htk in [false, true] {
            for f in [0.0, 440.0, 1000.0, 7999.0] {
                assert!((mel_to_hz(hz_to_mel(f, htk), htk) - f).abs() < 1e-6);
            }
        }
        assert!((hz_to_mel(1000.0, false) - 15.0).abs() < 1e-12);
    }

    #[test]
    fn slaney_filters_have_unit_area() {
        let p = MelParams {
            sr: 16000.0,
            n_fft: 4096,
            n_mels: 40,
            fmin: 0.0,
            fmax: None,
            htk: false,
            norm: MelNorm::Slaney,
        };
        let bank = MelBank::new(&p).unwrap();
        let df = 16000.0 / 4096.0;
        for (_, w) in &bank.filters[5..] {
            let area: f64 = w.iter().map(|&v| v as f64 * df).sum();
            assert!((area - 1.0).abs() < 0.02, "area {area}");
        }
    }

    #[test]
    fn blocked_product_equals_per_frame() {
        let p = MelParams {
            sr: 16000.0,
            n_fft: 2048,
            n_mels: 128,
            fmin: 0.0,
            fmax: None,
            htk: false,
            norm: MelNorm::Slaney,
        };
        let bank = MelBank::new(&p).unwrap();
        const B: usize = 8;
        let spec: Vec<f32> = (0..bank.n_bins * B)
            .map(|i| ((i * 7919) % 1000) as f32 / 1000.0)
            .collect();
        let mut block = vec![0.0; 128 * B];
        bank.apply_block::<B, false>(&spec, &mut block);
        let mut fused = vec![0.0; 128 * B];
        bank.apply_block::<B, true>(&spec, &mut fused);
        for j in 0..B {
            let frame: Vec<f32> = spec.iter().skip(j).step_by(B).copied().collect();
            let mut want = vec![0.0; 128];
            bank.apply(&frame, &mut want);
            for (m, &w) in want.iter().enumerate() {
                for got in [block[m * B + j], fused[m * B + j]] {
                    assert!((got - w).abs() <= 1e-6 * w.abs(), "band {m} frame {j}: {got} vs {w}");
                }
            }
        }
    }

    #[test]
    fn bad_parameters_name_themselves() {
        let mut p = MelParams {
            sr: 16000.0,
            n_fft: 512,
            n_mels: 0,
            fmin: 0.0,
            fmax: None,
            htk: false,
            norm: MelNorm::Slaney,
        };
        assert!(MelBank::new(&p).unwrap_err().0.starts_with("n_mels"));
        p.n_mels = 10;
        p.fmin = 9000.0;
        assert!(MelBank::new(&p).unwrap_err().0.starts_with("fmax"));
    }
}

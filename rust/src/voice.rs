//! eGeMAPS v02 spectral and loudness low-level descriptors of one frame, as openSMILE 3 defines
//! them (`GeMAPSv01b_core.lld.conf.inc`, components cSpectral, cMelspec, cPlp, cVectorOperation):
//!
//! * the frame: `floor(0.020 sr + 0.5)` samples, a symmetric Hamming window, zero-padded to the
//!   next power of two, magnitude `|X|` unnormalised (samples in [-1, 1]);
//! * loudness: 26 triangular mel bands (20 Hz to min(8 kHz, sr/2), openSMILE's own filter
//!   layout) of `|X|^2`, floored at 9.3e-10, weighted by Hermansky's equal-loudness curve at the
//!   band centres, raised to 0.33, averaged over the bands;
//! * alpha ratio: `10 log10(sum P[1-5 kHz] / sum P[0-1 kHz])`;
//! * Hammarberg index: `10 log10(max P[0-2 kHz] / max P[2-5 kHz])`;
//! * spectral slopes 0-500 Hz and 500-1500 Hz: least-squares slope of `10 log10 P` (floored at
//!   -140 dB) over frequency in Hz, with openSMILE's edge weights and its count `N = iR - iL`.
//!
//! openSMILE writes these after a 3-frame moving average (`sma3`); values here are per frame,
//! unsmoothed (smoothing would make a streamed frame wait for the next one).

use crate::error::{positive_f64, Result};
use crate::fail;
use crate::fft::FrameFft;
use std::f64::consts::PI;

/// Number of loudness bands, and their range (openSMILE `cMelspec` in eGeMAPS).
const N_BANDS: usize = 26;
const LO_HZ: f64 = 20.0;
const HI_HZ: f64 = 8000.0;
/// `cPlp` defaults: mel floor and the intensity-to-loudness exponent.
const MEL_FLOOR: f64 = 9.3e-10;
const COMPRESSION: f64 = 0.33;
/// `cSpectral` log floor: `specFloor^2` with `specFloor = 1e-7`.
const POWER_FLOOR: f64 = 1e-14;

/// The descriptors of one frame.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Descriptors {
    pub loudness: f64,
    pub alpha_ratio: f64,
    pub hammarberg: f64,
    pub slope_0_500: f64,
    pub slope_500_1500: f64,
}

/// `floor(seconds * sr + 0.5)`: openSMILE's frame sizes in samples.
pub fn samples(seconds: f64, sr: f64) -> usize {
    (seconds * sr + 0.5).floor() as usize
}

fn mel(f: f64) -> f64 {
    1127.0 * (1.0 + f / 700.0).ln()
}

fn mel_inv(m: f64) -> f64 {
    700.0 * ((m / 1127.0).exp() - 1.0)
}

/// Hermansky's (1990) equal-loudness weight with openSMILE's scale (1 at 1 kHz).
pub fn equal_loudness(f: f64) -> f64 {
    let w = 2.0 * PI * f;
    let w2 = w * w;
    let c = w2 + 6.3e6;
    1e32 * ((w2 + 56.8e6) * w2 * w2) / (c * c * (w2 + 0.38e9) * (w2 * w2 * w2 * w + 1.7e31))
}

/// A least-squares slope over bins `lo..=hi` with weights on the end bins (openSMILE `slopes`).
#[derive(Debug, Clone, Copy)]
struct SlopeBand {
    lo: usize,
    hi: usize,
    w_lo: f64,
    w_hi: f64,
    n: f64,
}

impl SlopeBand {
    fn new(freqs: &[f64], lo_hz: f64, hi_hz: f64) -> SlopeBand {
        let nb = freqs.len();
        let i = freqs.iter().position(|&f| f > lo_hz).unwrap_or(nb);
        let w_lo = if i > 0 && i < nb {
            (freqs[i] - lo_hz) / (freqs[i] - freqs[i - 1])
        } else {
            1.0
        };
        let lo = i.saturating_sub(1).min(nb - 1);
        let j = freqs.iter().position(|&f| f >= hi_hz).unwrap_or(nb);
        let w_hi = if j > 0 && j < nb {
            (hi_hz - freqs[j - 1]) / (freqs[j] - freqs[j - 1])
        } else {
            1.0
        };
        let hi = if j < nb && freqs[j] == hi_hz {
            j
        } else {
            j.saturating_sub(1)
        }
        .min(nb - 1);
        let nz = |w: f64| if w == 0.0 { 1.0 } else { w };
        SlopeBand {
            lo,
            hi,
            w_lo: nz(w_lo),
            w_hi: nz(w_hi),
            n: hi as f64 - lo as f64,
        }
    }

    fn slope(&self, freqs: &[f64], logp: &[f64]) -> f64 {
        let (fl, fh) = (freqs[self.lo] * self.w_lo, freqs[self.hi] * self.w_hi);
        let (mut sf, mut s2f) = (fl, fl * fl);
        let (mut sa, mut sb) = (fl * logp[self.lo], self.w_lo * logp[self.lo]);
        for k in self.lo + 1..self.hi {
            sf += freqs[k];
            s2f += freqs[k] * freqs[k];
            sa += freqs[k] * logp[k];
            sb += logp[k];
        }
        sf += fh;
        s2f += fh * fh;
        sa += fh * logp[self.hi];
        sb += self.w_hi * logp[self.hi];
        let den = self.n * s2f - sf * sf;
        if den == 0.0 {
            0.0
        } else {
            (self.n * sa - sf * sb) / den
        }
    }
}

/// The fixed part of the analysis for one sample rate: window, FFT size, filter layout.
#[derive(Debug, Clone)]
pub struct VoicePlan {
    pub sr: f64,
    /// Analysis frame (20 ms) in samples.
    pub frame_length: usize,
    pub n_fft: usize,
    window: Vec<f64>,
    freqs: Vec<f64>,
    /// Per FFT bin: the lower band it feeds (`-1`: none) and that band's weight; the next band
    /// gets `1 - weight`. Bins outside the filterbank have `band == -3`.
    band: Vec<i32>,
    weight: Vec<f64>,
    bins: (usize, usize),
    eq: Vec<f64>,
    /// First bin at or above 1 kHz / 2 kHz, first bin above 5 kHz.
    k1k: usize,
    k2k: usize,
    k5k: usize,
    slopes: [SlopeBand; 2],
}

impl VoicePlan {
    pub fn new(sr: f64) -> Result<VoicePlan> {
        positive_f64("sr", sr)?;
        let frame_length = samples(0.020, sr);
        if frame_length < 4 || sr < 3000.0 {
            fail!(
                "sr={sr} is too low for the eGeMAPS descriptors (they read the spectrum up to 1500 Hz); use sr >= 3000"
            );
        }
        if frame_length > crate::limits::MAX_N_FFT {
            fail!(
                "sr={sr} is too high: the 20 ms eGeMAPS frame would be {frame_length} samples (at most {})",
                crate::limits::MAX_N_FFT
            );
        }
        let n_fft = frame_length.next_power_of_two();
        let m = (frame_length - 1) as f64;
        let mut window = vec![0.0; n_fft];
        for (n, w) in window.iter_mut().take(frame_length).enumerate() {
            *w = 0.54 - 0.46 * (2.0 * PI * n as f64 / m).cos();
        }
        let n_bins = n_fft / 2 + 1;
        let df = sr / n_fft as f64;
        let freqs: Vec<f64> = (0..n_bins).map(|k| k as f64 * df).collect();

        // cMelspec's layout: centres equally spaced in mel between the edges (exclusive), each
        // bin's rising-slope weight towards the band whose centre lies above it.
        let hi_hz = if HI_HZ > sr / 2.0 { sr / 2.0 } else { HI_HZ };
        let (lo_mel, hi_mel) = (mel(LO_HZ), mel(hi_hz));
        let step = (hi_mel - lo_mel) / (N_BANDS as f64 + 1.0);
        let centres: Vec<f64> = (0..N_BANDS + 2).map(|m| lo_mel + m as f64 * step).collect();
        let n_lo = ((LO_HZ / df).round() as usize).min(n_bins);
        let n_hi = ((hi_hz / df).round() as usize).min(n_bins);
        let mut band = vec![-3i32; n_bins];
        let mut m = 0usize;
        for (k, b) in band.iter_mut().enumerate() {
            if k <= n_lo || k >= n_hi {
                continue;
            }
            while centres[m] < mel(k as f64 * df) {
                if m > N_BANDS {
                    break;
                }
                m += 1;
            }
            *b = m as i32 - 2;
        }
        let mut weight = vec![0.0; n_bins];
        let mut m = 0usize;
        for (k, w) in weight.iter_mut().enumerate().take(n_hi).skip(n_lo) {
            let km = mel(k as f64 * df);
            while m + 1 < centres.len() && km > centres[m + 1] && m <= N_BANDS {
                m += 1;
            }
            let top = centres[(m + 1).min(centres.len() - 1)];
            *w = (top - km) / (top - centres[m]);
        }
        let eq = (1..=N_BANDS).map(|m| equal_loudness(mel_inv(centres[m]))).collect();
        let first = |pred: &dyn Fn(f64) -> bool| freqs.iter().position(|&f| pred(f)).unwrap_or(n_bins);
        let k1k = first(&|f| f >= 1000.0);
        let k2k = first(&|f| f >= 2000.0);
        let k5k = first(&|f| f > 5000.0);
        let slopes = [
            SlopeBand::new(&freqs, 0.0, 500.0),
            SlopeBand::new(&freqs, 500.0, 1500.0),
        ];
        Ok(VoicePlan {
            sr,
            frame_length,
            n_fft,
            window,
            freqs,
            band,
            weight,
            bins: (n_lo, n_hi),
            eq,
            k1k,
            k2k,
            k5k,
            slopes,
        })
    }
}

/// Working buffers over a `VoicePlan`; one per thread.
pub struct VoiceFrame {
    fft: FrameFft<f64>,
    input: Vec<f32>,
    power: Vec<f64>,
    logp: Vec<f64>,
    bands: Vec<f64>,
}

impl VoiceFrame {
    pub fn new(plan: &VoicePlan) -> VoiceFrame {
        let n_bins = plan.n_fft / 2 + 1;
        VoiceFrame {
            fft: FrameFft::new(&plan.window),
            input: vec![0.0; plan.n_fft],
            power: vec![0.0; n_bins],
            logp: vec![0.0; n_bins],
            bands: vec![0.0; N_BANDS],
        }
    }

    /// Descriptors of `frame` (`plan.frame_length` samples).
    pub fn compute(&mut self, plan: &VoicePlan, frame: &[f32]) -> Descriptors {
        let n = plan.frame_length.min(frame.len());
        self.input[..n].copy_from_slice(&frame[..n]);
        self.input[n..].iter_mut().for_each(|v| *v = 0.0);
        self.fft.transform(&self.input);
        for (p, c) in self.power.iter_mut().zip(&self.fft.spectrum) {
            *p = c.re * c.re + c.im * c.im;
        }
        // dB only where the slopes read it (up to 1500 Hz).
        let top = plan.slopes[1].hi.max(plan.slopes[0].hi) + 1;
        for (l, &p) in self.logp[..top].iter_mut().zip(&self.power) {
            *l = if p <= POWER_FLOOR {
                10.0 * POWER_FLOOR.log10()
            } else {
                10.0 * p.log10()
            };
        }
        let p = &self.power;

        // Loudness.
        self.bands.iter_mut().for_each(|b| *b = 0.0);
        for k in plan.bins.0..plan.bins.1 {
            let m = plan.band[k];
            if m > -2 {
                let a = p[k] * plan.weight[k];
                if m > -1 {
                    self.bands[m as usize] += a;
                }
                if m < N_BANDS as i32 - 1 {
                    self.bands[(m + 1) as usize] += p[k] - a;
                }
            }
        }
        let loudness = self
            .bands
            .iter()
            .zip(&plan.eq)
            .map(|(&b, &e)| (b.max(MEL_FLOOR) * e).powf(COMPRESSION))
            .sum::<f64>()
            / N_BANDS as f64;

        // Alpha ratio and Hammarberg index.
        let end = plan.k5k.min(p.len());
        let low: f64 = p[..plan.k1k.min(end)].iter().sum();
        let high: f64 = p[plan.k1k.min(end)..end].iter().sum();
        let alpha_ratio = if low > 0.0 {
            10.0 * (high.max(POWER_FLOOR) / low).log10()
        } else {
            0.0
        };
        let max_of = |s: &[f64]| s.iter().fold(0.0f64, |a, &v| a.max(v));
        let peak_low = max_of(&p[..plan.k2k.min(end)]);
        let peak_high = max_of(&p[plan.k2k.min(end)..end]);
        let hammarberg = if peak_high > 0.0 {
            10.0 * (peak_low.max(POWER_FLOOR) / peak_high).log10()
        } else {
            0.0
        };

        Descriptors {
            loudness,
            alpha_ratio,
            hammarberg,
            slope_0_500: plan.slopes[0].slope(&plan.freqs, &self.logp),
            slope_500_1500: plan.slopes[1].slope(&plan.freqs, &self.logp),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tone(sr: f64, f: f64, n: usize, a: f32) -> Vec<f32> {
        (0..n)
            .map(|i| a * (2.0 * PI * f * i as f64 / sr).sin() as f32)
            .collect()
    }

    #[test]
    fn frame_sizes_follow_opensmile_rounding() {
        assert_eq!(samples(0.020, 16000.0), 320);
        assert_eq!(samples(0.020, 22050.0), 441);
        assert_eq!(samples(0.010, 22050.0), 221);
        let p = VoicePlan::new(22050.0).unwrap();
        assert_eq!((p.frame_length, p.n_fft), (441, 512));
        assert!(VoicePlan::new(0.0).is_err());
        assert!(VoicePlan::new(1000.0).unwrap_err().0.starts_with("sr=1000"));
        // checked before anything is allocated (the fuzz test found the abort)
        assert!(VoicePlan::new(1e18).unwrap_err().0.contains("too high"));
    }

    #[test]
    fn equal_loudness_is_one_at_1khz_and_small_at_50hz() {
        assert!((equal_loudness(1000.0) - 1.0).abs() < 0.01);
        assert!(equal_loudness(50.0) < 1e-3);
        assert!(equal_loudness(4000.0) > 2.0);
    }

    #[test]
    fn low_tone_has_negative_alpha_and_positive_hammarberg() {
        let plan = VoicePlan::new(16000.0).unwrap();
        let mut vf = VoiceFrame::new(&plan);
        let d = vf.compute(&plan, &tone(16000.0, 300.0, 320, 0.5));
        assert!(d.alpha_ratio < -30.0, "{d:?}");
        assert!(d.hammarberg > 30.0, "{d:?}");
        let hi = vf.compute(&plan, &tone(16000.0, 3000.0, 320, 0.5));
        assert!(hi.alpha_ratio > 30.0 && hi.hammarberg < -30.0, "{hi:?}");
    }

    #[test]
    fn loudness_grows_with_level_by_the_power_law() {
        let plan = VoicePlan::new(16000.0).unwrap();
        let mut vf = VoiceFrame::new(&plan);
        let a = vf.compute(&plan, &tone(16000.0, 1000.0, 320, 0.1)).loudness;
        let b = vf.compute(&plan, &tone(16000.0, 1000.0, 320, 0.2)).loudness;
        // Power x4 -> loudness x 4^0.33 where the floor does not matter.
        assert!((b / a - 4f64.powf(0.33)).abs() < 1e-3, "{a} {b}");
    }

    #[test]
    fn silence_gives_floor_values() {
        let plan = VoicePlan::new(16000.0).unwrap();
        let mut vf = VoiceFrame::new(&plan);
        let d = vf.compute(&plan, &[0.0; 320]);
        assert_eq!((d.alpha_ratio, d.hammarberg), (0.0, 0.0));
        // openSMILE divides by N = iR - iL, not the point count: a flat -140 dB floor has a
        // small non-zero "slope"; it is the same for every silent frame.
        assert!(d.slope_0_500.is_finite() && d.slope_500_1500.is_finite());
        assert!(d.loudness > 0.0 && d.loudness < 1e-2);
    }

    #[test]
    fn slope_of_a_falling_spectrum_is_negative() {
        // White noise integrated once (a -6 dB/octave tilt).
        let mut x = 0.0f32;
        let mut s = 12345u32;
        let y: Vec<f32> = (0..320)
            .map(|_| {
                s = s.wrapping_mul(1664525).wrapping_add(1013904223);
                x = 0.95 * x + ((s >> 8) as f32 / (1u32 << 24) as f32 - 0.5);
                x
            })
            .collect();
        let plan = VoicePlan::new(16000.0).unwrap();
        let d = VoiceFrame::new(&plan).compute(&plan, &y);
        assert!(d.slope_500_1500 < 0.0, "{d:?}");
    }
}

//! Fundamental frequency: YIN and pYIN, equal to librosa 0.11's `librosa.yin` / `librosa.pyin`.
//!
//! The frame-local kernel is [`Yin`]: one frame (`frame_length` samples) → the cumulative mean
//! normalised difference function over the lags `min_period..=max_period`
//! ([`Yin::cmndf`]), its troughs and parabolic shifts, and [`Yin::estimate`] (YIN's f0, the
//! CMNDF value at the chosen trough, and whether that trough is below the threshold). It keeps
//! no state between frames, so a stream can call it on any frame. [`yin`] and [`pyin`] are the
//! batch functions (librosa's framing: `center`, `pad_mode`); they analyse the frames in order
//! with [`FrameAnalyser`], which shares block FFTs between overlapping frames. pYIN's HMM is
//! decoded by a banded Viterbi ([`crate::pitch_hmm`]).
//!
//! Arithmetic is float64 throughout, as librosa's for float64 input. librosa's difference
//! function is kept as it is, quirks included: `d(k) = 2 (r(0) - r(k)) - sum_{m<k} y[m]^2`
//! for `k >= 2` and `d(1) = 2 (r(0) - r(1))`, with `r` the autocorrelation of the whole frame.

use crate::error::{positive, positive_f64, Result};
use crate::fail;
use crate::fft;
use crate::pad::PadMode;
use realfft::num_complex::Complex;
use realfft::{ComplexToReal, RealToComplex};
use std::sync::Arc;

/// Frames longer than this are refused (the FFT buffers would be huge).
pub const MAX_FRAME_LENGTH: usize = 1 << 24;

/// Framing and search range shared by `yin` and `pyin` (librosa's keywords).
#[derive(Debug, Clone, PartialEq)]
pub struct YinParams {
    pub sr: f64,
    pub fmin: f64,
    pub fmax: f64,
    pub frame_length: usize,
    /// `None`: `frame_length / 4`.
    pub hop_length: Option<usize>,
    pub trough_threshold: f64,
    pub center: bool,
    pub pad_mode: PadMode,
}

impl YinParams {
    /// librosa's defaults for the given rate and range.
    pub fn new(sr: f64, fmin: f64, fmax: f64) -> YinParams {
        YinParams {
            sr,
            fmin,
            fmax,
            frame_length: 2048,
            hop_length: None,
            trough_threshold: 0.1,
            center: true,
            pad_mode: PadMode::Constant,
        }
    }

    pub fn hop(&self) -> usize {
        self.hop_length.unwrap_or(self.frame_length / 4)
    }

    /// librosa's checks (`__check_yin_params`), with the same messages, plus size limits.
    pub fn validate(&self) -> Result<()> {
        positive_f64("sr", self.sr)?;
        if !self.fmin.is_finite() || !self.fmax.is_finite() {
            fail!("fmin={} and fmax={} must be finite", self.fmin, self.fmax);
        }
        if self.fmax > self.sr / 2.0 {
            fail!(
                "fmax={:.3} cannot exceed Nyquist frequency {}",
                self.fmax,
                self.sr / 2.0
            );
        }
        if self.fmin >= self.fmax {
            fail!("fmin={:.3} must be less than fmax={:.3}", self.fmin, self.fmax);
        }
        if self.fmin <= 0.0 {
            fail!("fmin={:.3} must be strictly positive", self.fmin);
        }
        positive("frame_length", self.frame_length)?;
        if self.frame_length > MAX_FRAME_LENGTH {
            fail!(
                "frame_length={} is too large (at most {MAX_FRAME_LENGTH})",
                self.frame_length
            );
        }
        if self.sr / self.fmin >= self.frame_length as f64 - 1.0 {
            fail!(
                "fmin={:.3} is too small for frame_length={} and sr={}. Either increase to fmin={:.3} or frame_length={}",
                self.fmin,
                self.frame_length,
                self.sr,
                self.sr / (self.frame_length as f64 - 1.0),
                (self.sr / self.fmin).ceil() as usize + 1
            );
        }
        positive("hop_length", self.hop())?;
        if !self.trough_threshold.is_finite() {
            fail!("trough_threshold={} must be finite", self.trough_threshold);
        }
        Ok(())
    }

    /// `(min_period, max_period)` in samples, as librosa computes them.
    pub fn periods(&self) -> (usize, usize) {
        let min_period = (self.sr / self.fmax).floor() as usize;
        let max_period = ((self.sr / self.fmin).ceil() as usize).min(self.frame_length - 1);
        (min_period, max_period)
    }
}

/// YIN's estimate for one frame.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct YinEstimate {
    /// `sr / period` (librosa's `yin` value; never NaN).
    pub f0: f64,
    /// Period in samples after parabolic refinement.
    pub period: f64,
    /// The CMNDF at the chosen lag (an aperiodicity: near 0 for a periodic frame).
    pub trough: f64,
    /// `true` when a trough below `trough_threshold` was found (else the global minimum is used).
    pub below_threshold: bool,
}

/// The frame-local YIN kernel: owns its FFT buffers (one per thread).
pub struct Yin {
    pub sr: f64,
    pub frame_length: usize,
    pub min_period: usize,
    pub max_period: usize,
    n_fft: usize,
    fwd: Arc<dyn RealToComplex<f64>>,
    inv: Arc<dyn ComplexToReal<f64>>,
    time: Vec<f64>,
    spectrum: Vec<Complex<f64>>,
    scratch_fwd: Vec<Complex<f64>>,
    scratch_inv: Vec<Complex<f64>>,
    diff: Vec<f64>,
    cmndf: Vec<f64>,
    /// Running mean of the difference function (the CMNDF's denominator before `tiny`).
    mean: Vec<f64>,
}

/// The smallest `2^a 3^b 5^c >= n`.
fn fast_len(n: usize) -> usize {
    let mut best = usize::MAX;
    let mut p5 = 1usize;
    while p5 < best {
        let mut p35 = p5;
        while p35 < best {
            let mut p = p35;
            while p < n {
                p *= 2;
            }
            best = best.min(p);
            p35 *= 3;
        }
        p5 *= 5;
    }
    best
}

impl Yin {
    /// A kernel for `params` (validated here).
    pub fn new(params: &YinParams) -> Result<Yin> {
        params.validate()?;
        let (min_period, max_period) = params.periods();
        // A linear (not circular) autocorrelation up to lag `max_period` needs
        // `n_fft >= frame_length + max_period`.
        let n_fft = fast_len(params.frame_length + max_period);
        let fwd = fft::forward_plan::<f64>(n_fft);
        let inv = fft::inverse_plan::<f64>(n_fft);
        let n_lags = max_period - min_period + 1;
        Ok(Yin {
            sr: params.sr,
            frame_length: params.frame_length,
            min_period,
            max_period,
            n_fft,
            time: fwd.make_input_vec(),
            spectrum: fwd.make_output_vec(),
            scratch_fwd: fwd.make_scratch_vec(),
            scratch_inv: inv.make_scratch_vec(),
            fwd,
            inv,
            diff: vec![0.0; max_period + 1],
            cmndf: vec![0.0; n_lags],
            mean: vec![0.0; max_period + 1],
        })
    }

    /// Number of lags `max_period - min_period + 1` (rows of librosa's `yin_frames`).
    pub fn n_lags(&self) -> usize {
        self.cmndf.len()
    }

    /// Computes the CMNDF of `frame` (length `frame_length`) over lags `min_period..=max_period`,
    /// Read it with [`Yin::cmndf`]; [`Yin::shift`] gives the parabolic shift at a lag.
    pub fn analyse(&mut self, frame: &[f32]) {
        let fl = self.frame_length;
        debug_assert_eq!(frame.len(), fl);
        for (t, &s) in self.time.iter_mut().zip(frame) {
            *t = s as f64;
        }
        self.time[fl..].iter_mut().for_each(|t| *t = 0.0);
        // Lengths are consistent by construction, so the transforms cannot fail.
        let _ = self
            .fwd
            .process_with_scratch(&mut self.time, &mut self.spectrum, &mut self.scratch_fwd);
        for c in self.spectrum.iter_mut() {
            *c = Complex::new(c.re * c.re + c.im * c.im, 0.0);
        }
        let _ = self
            .inv
            .process_with_scratch(&mut self.spectrum, &mut self.time, &mut self.scratch_inv);
        let scale = 1.0 / self.n_fft as f64;
        for k in 0..=self.max_period {
            self.diff[k] = self.time[k] * scale;
        }
        self.finish(frame);
    }

    /// The CMNDF of `frame` from its autocorrelation `r(0..=max_period)`, which the caller has
    /// put in `self.diff` (overwritten by the difference function).
    #[inline(always)]
    fn finish(&mut self, frame: &[f32]) {
        let acf0 = self.diff[0];
        let (mp, maxp) = (self.min_period, self.max_period);
        // d(k) = 2 (r(0) - r(k)) - E(k - 1), E the running energy, with E(0) read as 0 (librosa),
        // and the running sum of d; the two running sums are the only serial chains.
        let (mut energy, mut cum) = (0.0, 0.0);
        self.diff[0] = 0.0;
        let (diff, mean, frame) = (&mut self.diff[..=maxp], &mut self.mean[..=maxp], &frame[..maxp]);
        for k in 1..=maxp {
            energy += frame[k - 1] as f64 * frame[k - 1] as f64;
            let e = if k == 1 { 0.0 } else { energy };
            diff[k] = 2.0 * (acf0 - diff[k]) - e;
            cum += diff[k];
            mean[k] = cum / k as f64;
        }
        // cmndf(k) = d(k) / (mean(d(1..=k)) + tiny) for k in min_period..=max_period.
        for ((c, &d), &m) in self.cmndf.iter_mut().zip(&diff[mp..]).zip(&mean[mp..]) {
            *c = d / (m + f64::MIN_POSITIVE);
        }
    }

    /// The CMNDF of the last analysed frame, lags `min_period..=max_period`.
    pub fn cmndf(&self) -> &[f64] {
        &self.cmndf
    }

    /// The parabolic shift at CMNDF index `i` of the last analysed frame (librosa's
    /// `_parabolic_interpolation`: 0 at the ends and where the optimum is more than one lag away).
    pub fn shift(&self, i: usize) -> f64 {
        let x = &self.cmndf;
        if i == 0 || i == x.len() - 1 {
            return 0.0;
        }
        let a = x[i + 1] + x[i - 1] - 2.0 * x[i];
        let b = (x[i + 1] - x[i - 1]) / 2.0;
        if b.abs() >= a.abs() {
            0.0
        } else {
            -b / a
        }
    }

    /// The period (samples) at CMNDF index `i` after parabolic refinement.
    pub fn period_at(&self, i: usize) -> f64 {
        self.min_period as f64 + i as f64 + self.shift(i)
    }

    /// YIN on one frame: the first trough below `trough_threshold`, else the global minimum.
    pub fn estimate(&mut self, frame: &[f32], trough_threshold: f64) -> YinEstimate {
        self.analyse(frame);
        self.choose(trough_threshold)
    }

    /// YIN's choice on the last analysed frame.
    pub fn choose(&self, trough_threshold: f64) -> YinEstimate {
        let x = &self.cmndf;
        let found = (0..x.len()).find(|&i| x[i] < trough_threshold && is_trough(x, i));
        let i = found.unwrap_or_else(|| argmin(x));
        let period = self.period_at(i);
        YinEstimate {
            f0: self.sr / period,
            period,
            trough: x[i],
            below_threshold: found.is_some(),
        }
    }
}

/// librosa's trough test on the CMNDF (`localmin`, with the first lag a trough when below the
/// second).
#[inline]
pub fn is_trough(x: &[f64], i: usize) -> bool {
    let n = x.len();
    if i == 0 {
        x[0] < x[1]
    } else if i == n - 1 {
        x[i] < x[i - 1]
    } else {
        x[i] < x[i - 1] && x[i] <= x[i + 1]
    }
}

/// First index of the minimum (`np.argmin`).
fn argmin(x: &[f64]) -> usize {
    let mut best = 0;
    for (i, &v) in x.iter().enumerate() {
        if v < x[best] {
            best = i;
        }
    }
    best
}

/// The signal librosa frames: `y` padded by `frame_length / 2` on both sides when `center`.
/// Errors like `librosa.util.frame` when it is shorter than one frame.
pub fn framed_signal(y: &[f32], params: &YinParams) -> Result<(Vec<f32>, usize)> {
    crate::error::audio("y", y)?;
    let fl = params.frame_length;
    let padded = if params.center && params.pad_mode == PadMode::Constant {
        let mut padded = vec![0.0; y.len() + fl / 2 * 2];
        padded[fl / 2..fl / 2 + y.len()].copy_from_slice(y);
        padded
    } else if params.center {
        crate::pad::pad(y, fl / 2, fl / 2, params.pad_mode)
    } else {
        if y.len() < fl {
            fail!(
                "frame_length={fl} is too large for uncentered analysis of input signal of length={}",
                y.len()
            );
        }
        y.to_vec()
    };
    let n = crate::pad::n_frames(padded.len(), fl, params.hop())?;
    Ok((padded, n))
}

/// The frames' autocorrelations from blocks of `b` samples, `b` a divisor of
/// `gcd(frame_length, hop)` with `b >= max_period` (the cheapest such): a frame is
/// `nb = frame_length / b` whole blocks and, for lags up to `b`, its autocorrelation is the sum
/// of the blocks' own autocorrelations and of the cross-correlations of neighbouring blocks
/// (blocks two apart only meet at lags above `b`). Each block is transformed once (size `2 b`,
/// with no circular aliasing at lags `<= b`) and shared by the `nb` frames that hold it; a
/// frame then costs `hop / b` forward and one inverse transform of `2 b` and `nb` spectrum sums,
/// instead of two transforms of `frame_length + max_period`.
struct BlockAcf {
    b: usize,
    nb: usize,
    step: usize,
    fwd: Arc<dyn RealToComplex<f64>>,
    inv: Arc<dyn ComplexToReal<f64>>,
    time: Vec<f64>,
    scratch_fwd: Vec<Complex<f64>>,
    scratch_inv: Vec<Complex<f64>>,
    /// Spectra of the last transformed block and of the one before, and their power spectra.
    x_last: Vec<Complex<f64>>,
    x_prev: Vec<Complex<f64>>,
    p_last: Vec<f64>,
    /// Per block (ring of `nb`): its power spectrum plus its cross spectrum with the next block.
    q: Vec<Vec<Complex<f64>>>,
    sum: Vec<Complex<f64>>,
    /// Blocks transformed so far.
    done: usize,
}

/// Cost model of a real FFT of size `n` (flops).
fn fft_cost(n: usize) -> f64 {
    2.5 * n as f64 * (n as f64).log2()
}

fn gcd(a: usize, b: usize) -> usize {
    if b == 0 {
        a
    } else {
        gcd(b, a % b)
    }
}

impl BlockAcf {
    /// The block engine for `kernel`'s framing, or `None` when blocks do not apply or do not pay.
    fn new(kernel: &Yin, hop: usize) -> Option<BlockAcf> {
        let fl = kernel.frame_length;
        // The cheapest block size: a divisor of gcd(frame_length, hop), at least max_period.
        let cost = |b: usize| {
            let (nb, step) = (fl / b, hop / b);
            // Transforms, then the cross spectra and the frame's spectrum sum (flops per bin).
            (step + 1) as f64 * fft_cost(2 * b) + ((nb + 4 * step) * 2 * (b + 1)) as f64
        };
        let g = gcd(fl, hop);
        let b = (1..)
            .take_while(|i| i * i <= g)
            .filter(|&i| g.is_multiple_of(i))
            .flat_map(|i| [i, g / i])
            .filter(|&b| b >= kernel.max_period.max(1) && fl / b >= 2)
            .min_by(|&a, &b| cost(a).total_cmp(&cost(b)).then(a.cmp(&b)))?;
        if cost(b) >= 2.0 * fft_cost(kernel.n_fft) {
            return None;
        }
        let (nb, step) = (fl / b, hop / b);
        let fwd = fft::forward_plan::<f64>(2 * b);
        let inv = fft::inverse_plan::<f64>(2 * b);
        let spec = fwd.make_output_vec();
        Some(BlockAcf {
            b,
            nb,
            step,
            time: fwd.make_input_vec(),
            scratch_fwd: fwd.make_scratch_vec(),
            scratch_inv: inv.make_scratch_vec(),
            x_last: spec.clone(),
            x_prev: spec.clone(),
            p_last: vec![0.0; spec.len()],
            q: vec![spec.clone(); nb],
            sum: spec,
            fwd,
            inv,
            done: 0,
        })
    }

    /// Transforms block `done` of `signal` and completes the previous block's ring entry.
    #[inline(always)]
    fn push_block(&mut self, signal: &[f32]) {
        let (b, j) = (self.b, self.done);
        for (t, &s) in self.time.iter_mut().zip(&signal[j * b..(j + 1) * b]) {
            *t = s as f64;
        }
        self.time[b..].iter_mut().for_each(|t| *t = 0.0);
        std::mem::swap(&mut self.x_prev, &mut self.x_last);
        let _ = self
            .fwd
            .process_with_scratch(&mut self.time, &mut self.x_last, &mut self.scratch_fwd);
        if j > 0 {
            // Cross spectrum conj(X_prev) X_last, the next block delayed by b = half the size:
            // the delay is (-1)^f.
            let q = &mut self.q[(j - 1) % self.nb][..];
            let (xp, xl, pl) = (
                &self.x_prev[..q.len()],
                &self.x_last[..q.len()],
                &self.p_last[..q.len()],
            );
            for f in 0..q.len() {
                let (a, c) = (xp[f], xl[f]);
                let sign = 1.0 - 2.0 * (f & 1) as f64;
                let re = sign * (a.re * c.re + a.im * c.im);
                let im = sign * (a.re * c.im - a.im * c.re);
                q[f] = Complex::new(pl[f] + re, im);
            }
        }
        for (p, c) in self.p_last.iter_mut().zip(&self.x_last) {
            *p = c.re * c.re + c.im * c.im;
        }
        self.done += 1;
    }

    /// Writes frame `t`'s autocorrelation at lags `0..acf.len()` (all `<= b`) into `acf`.
    #[inline(always)]
    fn frame(&mut self, signal: &[f32], t: usize, acf: &mut [f64]) {
        let first = t * self.step;
        while self.done < first + self.nb {
            self.push_block(signal);
        }
        // The ring entries in frame order (a rotation of the ring), then the last block's power.
        let (head, tail) = self.q.split_at(first % self.nb);
        let sum = &mut self.sum[..];
        let p = &self.p_last[..sum.len()];
        for (f, s) in sum.iter_mut().enumerate() {
            *s = Complex::new(p[f], 0.0);
        }
        for q in tail.iter().chain(head).take(self.nb - 1) {
            let q = &q[..sum.len()];
            for f in 0..sum.len() {
                sum[f].re += q[f].re;
                sum[f].im += q[f].im;
            }
        }
        // DC and Nyquist are real (products of real bins); say so exactly for the inverse.
        let last = self.sum.len() - 1;
        self.sum[0].im = 0.0;
        self.sum[last].im = 0.0;
        let _ = self
            .inv
            .process_with_scratch(&mut self.sum, &mut self.time, &mut self.scratch_inv);
        let scale = 1.0 / (2 * self.b) as f64;
        for (a, &r) in acf.iter_mut().zip(&self.time) {
            *a = r * scale;
        }
    }
}

/// Analyses the frames of a padded signal (from [`framed_signal`]) in increasing order, sharing
/// block transforms between overlapping frames where the framing allows ([`BlockAcf`]; equal to
/// [`Yin::analyse`] up to rounding), else analysing each frame on its own.
pub struct FrameAnalyser<'a> {
    padded: &'a [f32],
    hop: usize,
    blocks: Option<BlockAcf>,
    next: usize,
}

impl<'a> FrameAnalyser<'a> {
    pub fn new(kernel: &Yin, padded: &'a [f32], hop: usize) -> FrameAnalyser<'a> {
        FrameAnalyser {
            padded,
            hop,
            blocks: BlockAcf::new(kernel, hop),
            next: 0,
        }
    }

    /// Analyses frame `t` with `kernel` (the one given to `new`). Frames must come in increasing
    /// order.
    pub fn analyse(&mut self, kernel: &mut Yin, t: usize) {
        assert!(t >= self.next, "frames must be analysed in increasing order");
        self.next = t + 1;
        let frame = &self.padded[t * self.hop..t * self.hop + kernel.frame_length];
        let Some(b) = self.blocks.as_mut() else {
            return kernel.analyse(frame);
        };
        #[cfg(target_arch = "x86_64")]
        {
            if std::is_x86_feature_detected!("avx2") {
                // SAFETY: the CPU supports AVX2 (checked above).
                return unsafe { block_frame_avx2(b, kernel, self.padded, t, frame) };
            }
        }
        block_frame(b, kernel, self.padded, t, frame)
    }
}

/// One frame by blocks: its autocorrelation, then the CMNDF.
#[inline(always)]
fn block_frame(b: &mut BlockAcf, kernel: &mut Yin, padded: &[f32], t: usize, frame: &[f32]) {
    b.frame(padded, t, &mut kernel.diff);
    kernel.finish(frame);
}

/// [`block_frame`] compiled for AVX2 (the same operations, so the same results).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn block_frame_avx2(b: &mut BlockAcf, kernel: &mut Yin, padded: &[f32], t: usize, frame: &[f32]) {
    block_frame(b, kernel, padded, t, frame)
}

/// `librosa.yin`: f0 (Hz) of every frame.
pub fn yin(y: &[f32], params: &YinParams) -> Result<Vec<f64>> {
    let mut kernel = Yin::new(params)?;
    let (padded, n) = framed_signal(y, params)?;
    let mut frames = FrameAnalyser::new(&kernel, &padded, params.hop());
    Ok((0..n)
        .map(|t| {
            frames.analyse(&mut kernel, t);
            kernel.choose(params.trough_threshold).f0
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The CMNDF by its definition (direct sums), librosa's quirks included.
    fn cmndf_direct(frame: &[f32], min_p: usize, max_p: usize) -> Vec<f64> {
        let y: Vec<f64> = frame.iter().map(|&v| v as f64).collect();
        let r = |k: usize| (0..y.len() - k).map(|m| y[m] * y[m + k]).sum::<f64>();
        let mut d = vec![0.0; max_p + 1];
        for k in 1..=max_p {
            let e: f64 = if k == 1 {
                0.0
            } else {
                y[..k].iter().map(|v| v * v).sum()
            };
            d[k] = 2.0 * (r(0) - r(k)) - e;
        }
        (min_p..=max_p)
            .map(|k| d[k] / (d[1..=k].iter().sum::<f64>() / k as f64 + f64::MIN_POSITIVE))
            .collect()
    }

    fn sine(f: f64, sr: f64, n: usize) -> Vec<f32> {
        (0..n)
            .map(|i| (2.0 * std::f64::consts::PI * f * i as f64 / sr).sin() as f32 * 0.5)
            .collect()
    }

    #[test]
    fn block_frames_equal_frame_by_frame() {
        let y: Vec<f32> = (0..20000)
            .map(|i| ((i * 7919 % 1000) as f32 / 500.0 - 1.0) * 0.1 + (i as f32 * 0.05).sin() * (i as f32 * 3e-4).cos())
            .collect();
        // Blocks of 512 and 256; a hop whose blocks (gcd 128) are shorter than max_period.
        for (fl, hop, blocks) in [(2048, 512, true), (1024, 256, true), (2048, 384, false)] {
            let p = YinParams {
                frame_length: fl,
                hop_length: Some(hop),
                ..YinParams::new(16000.0, 65.4, 2093.0)
            };
            let (padded, n) = framed_signal(&y, &p).unwrap();
            let (mut a, mut b) = (Yin::new(&p).unwrap(), Yin::new(&p).unwrap());
            let mut frames = FrameAnalyser::new(&b, &padded, hop);
            assert_eq!(frames.blocks.is_some(), blocks);
            for t in 0..n {
                a.analyse(&padded[t * hop..t * hop + fl]);
                frames.analyse(&mut b, t);
                for (g, w) in b.cmndf().iter().zip(a.cmndf()) {
                    assert!(
                        (g - w).abs() <= 1e-9 * w.abs().max(1.0),
                        "{fl}/{hop} frame {t}: {g} vs {w}"
                    );
                }
            }
        }
    }

    #[test]
    fn fast_len_is_5_smooth() {
        assert_eq!(fast_len(1), 1);
        assert_eq!(fast_len(7), 8);
        assert_eq!(fast_len(2293), 2304);
        assert_eq!(fast_len(4095), 4096);
        assert_eq!(fast_len(2049), 2160);
    }

    #[test]
    fn cmndf_equals_direct_sums() {
        let p = YinParams {
            frame_length: 512,
            ..YinParams::new(16000.0, 80.0, 1000.0)
        };
        let mut k = Yin::new(&p).unwrap();
        let frame: Vec<f32> = (0..512)
            .map(|i| ((i * 7919 % 1000) as f32 / 500.0 - 1.0) * 0.3 + (i as f32 * 0.05).sin())
            .collect();
        k.analyse(&frame);
        let want = cmndf_direct(&frame, k.min_period, k.max_period);
        for (g, w) in k.cmndf().iter().zip(&want) {
            assert!((g - w).abs() <= 1e-9 * w.abs().max(1.0), "{g} vs {w}");
        }
    }

    #[test]
    fn sine_pitch() {
        for (f, sr) in [(220.0, 22050.0), (110.0, 16000.0), (440.0, 8000.0), (97.3, 44100.0)] {
            let p = YinParams::new(sr, 60.0, 1000.0);
            let f0 = yin(&sine(f, sr, sr as usize), &p).unwrap();
            // Frames fully inside the signal are within 1.5 % (librosa: 1.06 % at 97.3 Hz, 44.1 kHz).
            for &v in &f0[4..f0.len() - 4] {
                assert!((v / f - 1.0).abs() < 1.5e-2, "f={f} sr={sr}: {v}");
            }
        }
    }

    #[test]
    fn estimate_reports_threshold_and_trough() {
        let p = YinParams::new(16000.0, 60.0, 1000.0);
        let mut k = Yin::new(&p).unwrap();
        let e = k.estimate(&sine(200.0, 16000.0, 2048), 0.1);
        assert!(
            e.below_threshold && e.trough < 0.1 && (e.f0 - 200.0).abs() < 1.0,
            "{e:?}"
        );
        // Silence: no trough at all; the global minimum (first lag) is used.
        let e = k.estimate(&vec![0.0; 2048], 0.1);
        assert!(!e.below_threshold);
        assert_eq!(e.f0, 16000.0 / k.min_period as f64);
    }

    #[test]
    fn bad_parameters_are_errors() {
        let ok = YinParams::new(16000.0, 60.0, 1000.0);
        assert!(Yin::new(&ok).is_ok());
        for p in [
            YinParams {
                fmin: 0.0,
                ..ok.clone()
            },
            YinParams {
                fmin: -5.0,
                ..ok.clone()
            },
            YinParams {
                fmin: 1000.0,
                ..ok.clone()
            },
            YinParams {
                fmax: 9000.0,
                ..ok.clone()
            },
            YinParams {
                fmin: f64::NAN,
                ..ok.clone()
            },
            YinParams {
                frame_length: 256,
                ..ok.clone()
            },
            YinParams {
                frame_length: 0,
                ..ok.clone()
            },
            YinParams {
                frame_length: usize::MAX,
                ..ok.clone()
            },
            YinParams {
                hop_length: Some(0),
                ..ok.clone()
            },
            YinParams {
                frame_length: 3,
                fmin: 10000.0,
                fmax: 20000.0,
                sr: 48000.0,
                ..ok.clone()
            },
            YinParams { sr: 0.0, ..ok.clone() },
            YinParams {
                trough_threshold: f64::NAN,
                ..ok.clone()
            },
        ] {
            assert!(Yin::new(&p).is_err(), "{p:?}");
        }
        assert!(yin(&[], &ok).is_err());
        assert!(yin(&[0.0, f32::NAN], &ok).is_err());
        assert!(yin(
            &[0.0; 100],
            &YinParams {
                center: false,
                ..ok.clone()
            }
        )
        .is_err());
        assert_eq!(yin(&[0.0; 100], &ok).unwrap().len(), 1);
    }
}

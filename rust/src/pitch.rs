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

/// The frame-local YIN kernel: owns its buffers (one per thread).
pub struct Yin {
    pub sr: f64,
    pub frame_length: usize,
    pub min_period: usize,
    pub max_period: usize,
    n_fft: usize,
    /// The whole-frame transforms, made on the first [`Yin::analyse`]: the batch functions
    /// mostly take the block path ([`FrameAnalyser`]) and never need them, and planning and
    /// allocating them is a fixed cost of every call.
    frame_fft: Option<fft::Autocorrelation>,
    diff: Vec<f64>,
    cmndf: Vec<f64>,
    /// Running sum of the difference function (the CMNDF's denominator is it over `k`, plus tiny).
    cum: Vec<f64>,
    /// `1 / k` for the lags `k = min_period..=max_period` (the running mean is a product: one
    /// division per lag, the CMNDF's, instead of two).
    inv_lags: Vec<f64>,
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
        let n_lags = max_period - min_period + 1;
        Ok(Yin {
            sr: params.sr,
            frame_length: params.frame_length,
            min_period,
            max_period,
            n_fft,
            frame_fft: None,
            diff: vec![0.0; max_period + 1],
            cmndf: vec![0.0; n_lags],
            cum: vec![0.0; max_period + 1],
            inv_lags: (min_period..=max_period).map(|k| 1.0 / k as f64).collect(),
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
        let n_fft = self.n_fft;
        let a = self.frame_fft.get_or_insert_with(|| fft::Autocorrelation::new(n_fft));
        for (t, &s) in a.time.iter_mut().zip(frame) {
            *t = s as f64;
        }
        a.time[fl..].iter_mut().for_each(|t| *t = 0.0);
        a.run();
        let scale = 1.0 / n_fft as f64;
        finish(
            &a.time,
            scale,
            frame,
            &self.inv_lags,
            &mut self.diff,
            &mut self.cum,
            &mut self.cmndf,
        );
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
        let (i, found) = first_trough_or_argmin(x, trough_threshold);
        let period = self.period_at(i);
        YinEstimate {
            f0: self.sr / period,
            period,
            trough: x[i],
            below_threshold: found,
        }
    }
}

/// The CMNDF (lags `min_period..=max_period`, into `cmndf`) of `frame` from its unscaled
/// autocorrelation `raw` (`r(k) = raw[k] * scale`, lags `0..=max_period`). `inv_lags` holds
/// `1 / k` for `k = min_period..=max_period`; `diff` and `cum` (length `max_period + 1`) receive
/// the difference function and its running sum.
///
/// librosa's difference function: `d(k) = 2 (r(0) - r(k)) - E(k - 1)` with `E` the running
/// energy of the frame and `E(0)` read as 0, `d(0) = 0`; `cmndf(k) = d(k) / (mean(d(1..=k)) +
/// tiny)`. The two running sums are the only serial chains, so they get a loop of their own;
/// the divisions, off that chain, go in a second loop that vectorises.
#[inline(always)]
fn finish(
    raw: &[f64],
    scale: f64,
    frame: &[f32],
    inv_lags: &[f64],
    diff: &mut [f64],
    cum: &mut [f64],
    cmndf: &mut [f64],
) {
    let maxp = diff.len() - 1;
    let min_period = maxp + 1 - inv_lags.len();
    let (raw, frame, cum) = (&raw[..=maxp], &frame[..maxp], &mut cum[..=maxp]);
    let acf0 = raw[0] * scale;
    diff[0] = 0.0;
    cum[0] = 0.0;
    let mut energy = frame[0] as f64 * frame[0] as f64;
    let mut sum = 0.0;
    if maxp >= 1 {
        diff[1] = 2.0 * (acf0 - raw[1] * scale);
        sum = diff[1];
        cum[1] = sum;
    }
    for k in 2..=maxp {
        energy += frame[k - 1] as f64 * frame[k - 1] as f64;
        diff[k] = 2.0 * (acf0 - raw[k] * scale) - energy;
        sum += diff[k];
        cum[k] = sum;
    }
    // The mean as `s * (1 / k)` differs from `s / k` by at most an ulp (librosa divides).
    for (((c, &d), &s), &r) in cmndf
        .iter_mut()
        .zip(&diff[min_period..])
        .zip(&cum[min_period..])
        .zip(inv_lags)
    {
        *c = d / (s * r + f64::MIN_POSITIVE);
    }
}

/// YIN's choice of CMNDF index: the first trough ([`is_trough`]) below `threshold` (then
/// `true`), else the first index of the minimum (then `false`; `np.argmin` but blind to NaN, and
/// 0 when the first value is NaN, as a scan with `<` from the first value gives).
///
/// One pass in chunks of 4: a chunk with no value below the threshold holds no candidate and
/// only updates 4 running minima, lane by lane, without a branch per value (a branch there
/// mispredicts on the noisy CMNDF of unvoiced frames); the index of the minimum is looked up at
/// the end, only when no trough was found.
fn first_trough_or_argmin(x: &[f64], threshold: f64) -> (usize, bool) {
    let mut lanes = [f64::INFINITY; 4];
    let chunks = x.chunks_exact(4);
    let tail = chunks.remainder();
    for (c, chunk) in chunks.enumerate() {
        if chunk.iter().fold(false, |any, &v| any | (v < threshold)) {
            for i in 4 * c..4 * c + 4 {
                if x[i] < threshold && is_trough(x, i) {
                    return (i, true);
                }
            }
        }
        for (m, &v) in lanes.iter_mut().zip(chunk) {
            *m = if v < *m { v } else { *m };
        }
    }
    let start = x.len() - tail.len();
    if let Some(i) = (start..x.len()).find(|&i| x[i] < threshold && is_trough(x, i)) {
        return (i, true);
    }
    let min = lanes
        .iter()
        .chain(tail)
        .fold(f64::INFINITY, |m, &v| if v < m { v } else { m });
    match x.iter().position(|&v| v == min) {
        Some(i) if !x[0].is_nan() => (i, false),
        _ => (0, false),
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

/// The signal librosa frames: `y` padded by `frame_length / 2` on both sides when `center`.
/// Errors like `librosa.util.frame` when it is shorter than one frame.
pub fn framed_signal(y: &[f32], params: &YinParams) -> Result<(Vec<f32>, usize)> {
    crate::error::audio("y", y)?;
    let fl = params.frame_length;
    let padded = if params.center && params.pad_mode == PadMode::Constant {
        // Built by appending: each sample is written once.
        let mut padded = Vec::with_capacity(y.len() + fl / 2 * 2);
        padded.resize(fl / 2, 0.0);
        padded.extend_from_slice(y);
        padded.resize(y.len() + fl / 2 * 2, 0.0);
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
/// frame then costs `hop / b` forward and one inverse transform of `2 b` and a few spectrum
/// sums, instead of two transforms of `frame_length + max_period`.
///
/// Block `i`'s entry is its power spectrum plus its cross spectrum with block `i + 1`; a frame's
/// spectrum is the sum of the entries of its first `nb - 1` blocks plus the last block's power.
/// Frames start every `step = hop / b` blocks, so the entries are summed once per group of
/// `step` blocks as they are made (a group starts where a frame does): a frame adds
/// `(nb - 1) / step` whole groups and the group still being filled (its blocks all in the frame)
/// instead of `nb - 1` entries. Every frame's sum is made afresh from the groups, so no rounding
/// is carried from frame to frame (a running sum would drift, and would leave noise in the
/// silent frames after a loud one, where the exact sum is 0).
struct BlockAcf {
    b: usize,
    nb: usize,
    step: usize,
    /// Whole groups in a frame, `(nb - 1) / step`, and whether a partial one follows.
    full_groups: usize,
    partial_group: bool,
    fwd: Arc<dyn RealToComplex<f64>>,
    inv: Arc<dyn ComplexToReal<f64>>,
    time: Vec<f64>,
    scratch_fwd: Vec<Complex<f64>>,
    scratch_inv: Vec<Complex<f64>>,
    /// Spectra of the last transformed block and of the one before, and the last one's power.
    x_last: Vec<Complex<f64>>,
    x_prev: Vec<Complex<f64>>,
    p_last: Vec<f64>,
    /// Group `g`'s sum of entries, in a ring of `full_groups + 1` (slot `g % len`).
    groups: Vec<Vec<Complex<f64>>>,
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
        let full_groups = (nb - 1) / step;
        let fwd = fft::forward_plan::<f64>(2 * b);
        let inv = fft::inverse_plan::<f64>(2 * b);
        let spec = fwd.make_output_vec();
        Some(BlockAcf {
            b,
            nb,
            step,
            full_groups,
            partial_group: !(nb - 1).is_multiple_of(step),
            time: fwd.make_input_vec(),
            scratch_fwd: fwd.make_scratch_vec(),
            scratch_inv: inv.make_scratch_vec(),
            x_last: spec.clone(),
            x_prev: spec.clone(),
            p_last: vec![0.0; spec.len()],
            groups: vec![spec.clone(); full_groups + 1],
            sum: spec,
            fwd,
            inv,
            done: 0,
        })
    }

    /// Transforms block `done` of `signal` and completes the previous block's entry.
    #[inline(always)]
    fn push_block(&mut self, signal: &[f32]) {
        let (b, j) = (self.b, self.done);
        let block = &signal[j * b..(j + 1) * b];
        std::mem::swap(&mut self.x_prev, &mut self.x_last);
        // All-zero blocks (the centring pads, digital silence) transform to exact zeros.
        if block.iter().all(|&s| s == 0.0) {
            self.x_last.fill(Complex::new(0.0, 0.0));
        } else {
            for (t, &s) in self.time.iter_mut().zip(block) {
                *t = s as f64;
            }
            self.time[b..].iter_mut().for_each(|t| *t = 0.0);
            let _ = self
                .fwd
                .process_with_scratch(&mut self.time, &mut self.x_last, &mut self.scratch_fwd);
        }
        self.complete();
    }

    /// Block `done`'s spectrum is in `x_last`: completes the previous block's entry and counts
    /// the block.
    #[inline(always)]
    fn complete(&mut self) {
        let j = self.done;
        if j > 0 {
            let i = j - 1;
            let group = &mut self.groups[(i / self.step) % (self.full_groups + 1)];
            let (xp, xl, p) = (&self.x_prev, &self.x_last, &mut self.p_last);
            if i.is_multiple_of(self.step) {
                entry::<false>(group, xp, xl, p);
            } else {
                entry::<true>(group, xp, xl, p);
            }
        } else {
            for (p, c) in self.p_last.iter_mut().zip(&self.x_last) {
                *p = c.re * c.re + c.im * c.im;
            }
        }
        self.done += 1;
    }

    /// Frame `t`'s unscaled autocorrelation (`2 b` times it) at lags `0..=b`, into `self.time`.
    #[inline(always)]
    fn frame(&mut self, signal: &[f32], t: usize) {
        let first = t * self.step;
        while self.done < first + self.nb {
            self.push_block(signal);
        }
        // The last block's power, then the frame's groups (the whole ones, then the one being
        // filled), two at a time.
        let ring = self.full_groups + 1;
        let n_terms = self.full_groups + self.partial_group as usize;
        let groups = &self.groups;
        let mut terms = (t..t + n_terms).map(|g| &groups[g % ring][..]);
        let sum = &mut self.sum[..];
        let n = sum.len();
        let (p, g0) = (&self.p_last[..n], terms.next().map(|g| &g[..n]));
        if let Some(g0) = g0 {
            for f in 0..n {
                sum[f] = Complex::new(p[f] + g0[f].re, g0[f].im);
            }
        }
        while let Some(ga) = terms.next() {
            let ga = &ga[..n];
            match terms.next() {
                Some(gb) => {
                    let gb = &gb[..n];
                    for f in 0..n {
                        sum[f] += ga[f] + gb[f];
                    }
                }
                None => {
                    for f in 0..n {
                        sum[f] += ga[f];
                    }
                }
            }
        }
        // DC and Nyquist are real (products of real bins); say so exactly for the inverse.
        let last = n - 1;
        self.sum[0].im = 0.0;
        self.sum[last].im = 0.0;
        let _ = self
            .inv
            .process_with_scratch(&mut self.sum, &mut self.time, &mut self.scratch_inv);
    }
}

/// A block's entry from its spectrum `x_prev` and the next block's `x_last`: `p[f] + (-1)^f
/// conj(x_prev[f]) x_last[f]` (`p` the power of `x_prev`; the next block lies `b` later, half
/// the transform, so its delay is `(-1)^f`), stored into `entry` or, with `ADD`, added to it.
/// `p` then becomes the power of `x_last`. Bins go in pairs so that the sign is a constant.
#[inline(always)]
fn entry<const ADD: bool>(entry: &mut [Complex<f64>], x_prev: &[Complex<f64>], x_last: &[Complex<f64>], p: &mut [f64]) {
    #[inline(always)]
    fn bin<const ADD: bool>(e: &mut Complex<f64>, a: Complex<f64>, c: Complex<f64>, p: &mut f64, sign: f64) {
        let re = sign * (a.re * c.re + a.im * c.im);
        let im = sign * (a.re * c.im - a.im * c.re);
        let v = Complex::new(*p + re, im);
        *e = if ADD { *e + v } else { v };
        *p = c.re * c.re + c.im * c.im;
    }
    let n = entry.len();
    let (x_prev, x_last, p) = (&x_prev[..n], &x_last[..n], &mut p[..n]);
    let pairs = n / 2 * 2;
    for (((e, a), c), q) in entry[..pairs]
        .chunks_exact_mut(2)
        .zip(x_prev[..pairs].chunks_exact(2))
        .zip(x_last[..pairs].chunks_exact(2))
        .zip(p[..pairs].chunks_exact_mut(2))
    {
        let [q0, q1] = q else { unreachable!() };
        bin::<ADD>(&mut e[0], a[0], c[0], q0, 1.0);
        bin::<ADD>(&mut e[1], a[1], c[1], q1, -1.0);
    }
    if pairs < n {
        bin::<ADD>(&mut entry[pairs], x_prev[pairs], x_last[pairs], &mut p[pairs], 1.0);
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
    b.frame(padded, t);
    let scale = 1.0 / (2 * b.b) as f64;
    let k = kernel;
    finish(
        &b.time,
        scale,
        frame,
        &k.inv_lags,
        &mut k.diff,
        &mut k.cum,
        &mut k.cmndf,
    );
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
        let mut y: Vec<f32> = (0..20000)
            .map(|i| ((i * 7919 % 1000) as f32 / 500.0 - 1.0) * 0.1 + (i as f32 * 0.05).sin() * (i as f32 * 3e-4).cos())
            .collect();
        // Digital silence inside (all-zero blocks are not transformed), loud signal after it.
        y[6000..9000].iter_mut().for_each(|v| *v = 0.0);
        // (frame_length, hop, fmin, blocks: (nb, step) or none). Frames of 3 groups of 2 blocks
        // and a partial group of 1; of 3 groups of 1; of 3 groups of 2, none partial; 2 groups of
        // 3 and a partial 1; 1 group of 4 and a partial 3; a hop whose blocks (gcd 128) are
        // shorter than max_period.
        for (fl, hop, fmin, blocks) in [
            (2048, 512, 65.4, Some((8, 2))),
            (1024, 256, 65.4, Some((4, 1))),
            (1792, 512, 65.4, Some((7, 2))),
            (2048, 768, 65.4, Some((8, 3))),
            (2048, 1024, 65.4, Some((8, 4))),
            (2048, 384, 65.4, None),
        ] {
            let p = YinParams {
                frame_length: fl,
                hop_length: Some(hop),
                ..YinParams::new(16000.0, fmin, 2093.0)
            };
            let (padded, n) = framed_signal(&y, &p).unwrap();
            let (mut a, mut b) = (Yin::new(&p).unwrap(), Yin::new(&p).unwrap());
            for skip in [false, true] {
                let mut frames = FrameAnalyser::new(&b, &padded, hop);
                assert_eq!(frames.blocks.as_ref().map(|k| (k.nb, k.step)), blocks, "{fl}/{hop}");
                // Every frame, then every third one (the blocks in between are still pushed).
                for t in (0..n).filter(|t| !skip || t % 3 == 2) {
                    a.analyse(&padded[t * hop..t * hop + fl]);
                    frames.analyse(&mut b, t);
                    for (g, w) in b.cmndf().iter().zip(a.cmndf()) {
                        assert!(
                            (g - w).abs() <= 1e-9 * w.abs().max(1.0),
                            "{fl}/{hop} frame {t}: {g} vs {w}"
                        );
                    }
                    // Silent frames are exactly silent: all-zero CMNDF, as the direct FFT gives.
                    let frame = &padded[t * hop..t * hop + fl];
                    if frame.iter().all(|&v| v == 0.0) {
                        assert!(b.cmndf().iter().all(|&v| v == 0.0), "{fl}/{hop} frame {t}");
                    }
                }
            }
        }
    }

    #[test]
    fn first_trough_or_argmin_is_librosas_choice() {
        // The first trough below the threshold, not the deepest.
        let x = [0.9, 0.05, 0.2, 0.01, 0.5];
        assert_eq!(first_trough_or_argmin(&x, 0.1), (1, true));
        // None below: the first index of the minimum.
        assert_eq!(first_trough_or_argmin(&[0.5, 0.3, 0.4, 0.3, 0.6], 0.1), (1, false));
        // Below the threshold but not a trough (still falling), then a trough at the end.
        assert_eq!(first_trough_or_argmin(&[0.5, 0.08, 0.07, 0.06], 0.1), (3, true));
        // A plateau: the trough test wants x[i] < x[i - 1] and x[i] <= x[i + 1].
        assert_eq!(first_trough_or_argmin(&[0.5, 0.05, 0.05, 0.2], 0.1), (1, true));
        // The first lag is a trough when below the second.
        assert_eq!(first_trough_or_argmin(&[0.05, 0.2, 0.01], 0.1), (0, true));
        assert_eq!(first_trough_or_argmin(&[0.0; 4], 0.1), (0, false));
        // Non-finite values: NaN is never the minimum unless first; infinities are ordinary.
        let nan = f64::NAN;
        assert_eq!(first_trough_or_argmin(&[0.5, nan, 0.3, 0.4, 0.2, 0.3], 0.1), (4, false));
        assert_eq!(first_trough_or_argmin(&[nan, 0.3, 0.4, 0.2, 0.3], 0.1), (0, false));
        assert_eq!(first_trough_or_argmin(&[f64::INFINITY; 6], 0.1), (0, false));
        assert_eq!(first_trough_or_argmin(&[nan; 6], 0.1), (0, false));
        // Against the plain scan (two passes: troughs, then np.argmin) on random series of
        // every length, ties and troughs in every lane.
        let plain = |x: &[f64], thr: f64| match (0..x.len()).find(|&i| x[i] < thr && is_trough(x, i)) {
            Some(i) => (i, true),
            None => {
                let mut best = 0;
                for (i, &v) in x.iter().enumerate() {
                    if v < x[best] {
                        best = i;
                    }
                }
                (best, false)
            }
        };
        let mut state = 12345u64;
        for n in 2..40 {
            for _ in 0..200 {
                let x: Vec<f64> = (0..n)
                    .map(|_| {
                        state = state
                            .wrapping_mul(6364136223846793005)
                            .wrapping_add(1442695040888963407);
                        ((state >> 33) % 16) as f64 / 16.0
                    })
                    .collect();
                for thr in [0.1, 0.3, 0.0] {
                    assert_eq!(first_trough_or_argmin(&x, thr), plain(&x, thr), "{x:?} {thr}");
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

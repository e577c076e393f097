//! F0-based eGeMAPS v02 descriptors of one 60 ms frame: F0 in semitones re 27.5 Hz, a voicing
//! value and the harmonics-to-noise ratio from the autocorrelation (openSMILE `cHarmonics`,
//! `computeAcfHnrLogdB`).
//!
//! F0 is frame-local YIN ([`crate::pitch::Yin`], 55-1000 Hz as openSMILE's `minPitch`/`maxPitch`)
//! on the raw 60 ms frame (`floor(0.060 sr + 0.5)` samples); openSMILE uses subharmonic summation
//! followed by a Viterbi smoother over 40 frames, which a stream cannot wait for. A frame is
//! voiced when the CMNDF at YIN's period (first trough below 0.1, else the global minimum) is
//! below [`VOICING_THRESHOLD`] and the RMS of the
//! Gaussian-windowed frame is at least 0.001 (openSMILE's energy gate on the same window).
//! Unvoiced frames get F0 and HNR 0, as openSMILE writes them.
//!
//! With [`F0Method::Shs`] F0 and voicing come from openSMILE's own tracker instead
//! ([`crate::shs`]: subharmonic summation and its Viterbi smoother, the same energy gate); the
//! smoother decides a frame up to [`crate::shs::MAX_LAG`] frames later, so such a plan's frames
//! go in through [`PeriodicityFrame::push`] and come out, decided, from [`PeriodicityFrame::pop`].
//!
//! HNR: the power spectrum of the Gaussian-windowed frame (sigma 0.4, zero-padded to the next
//! power of two `N`), inverse-transformed to the (circular) autocorrelation `a`; the lag
//! `floor(sr / f0)` moved to the closest strict local maximum of `a`; then
//! `10 log10(a[T] / (a[0] - a[T]))`, clipped to [-90, 110] dB, as openSMILE computes it.
//!
//! Jitter and shimmer: openSMILE's `cPitchJitter` period walk ([`PeriodWalk`]), continuous
//! through the signal, so a [`PeriodicityFrame`] must see every frame in order
//! ([`PeriodicityFrame::reset`] between signals); everything else depends on its frame only.

use crate::error::Result;
use crate::fft;
use crate::pitch::{Yin, YinParams};
use crate::shs::{ShsFrame, ShsPlan, Viterbi, MAX_LAG};
use crate::voice::samples;
use std::collections::VecDeque;

/// YIN's trough threshold for choosing the period (librosa's default); above it YIN takes the
/// global minimum.
pub const TROUGH_THRESHOLD: f64 = 0.1;
/// A frame is voiced when the CMNDF at the chosen period is below this.
pub const VOICING_THRESHOLD: f64 = 0.4;
/// openSMILE's F0 range (`cPitchShs` `minPitch`, `maxPitch`).
pub const FMIN: f64 = 55.0;
pub const FMAX: f64 = 600.0;
/// openSMILE's energy gate on the Gaussian-windowed frame (`volmerge` threshold).
pub const RMS_GATE: f64 = 0.001;
/// `cPitchJitter`'s `minCC`: period pairs that correlate less are not counted.
pub const MIN_CC: f64 = 0.5;

/// The descriptors of one 60 ms frame.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Periodicity {
    /// `12 log2(f0 / 27.5)` when voiced, else 0.
    pub f0_semitones: f64,
    /// `1 - CMNDF` at YIN's trough, clipped to [0, 1] (whether voiced or not).
    pub voicing: f64,
    /// ACF harmonics-to-noise ratio in dB when voiced, else 0.
    pub hnr: f64,
    /// Local jitter (mean absolute difference of consecutive periods over the mean period) of the
    /// periods found in the frame, clipped to 1; 0 when unvoiced or fewer than 2 periods.
    pub jitter: f64,
    /// Local shimmer in dB, `20 log10(1 + mean |A_i - A_{i+1}| / mean A)`, A the peak-to-peak
    /// amplitude of each period; 0 when unvoiced or no period pair.
    pub shimmer_db: f64,
}

/// How F0 and the voiced/unvoiced decision are made.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum F0Method {
    /// Frame-local YIN (no look-ahead: every row is final when its frame is).
    #[default]
    Yin,
    /// openSMILE's subharmonic summation and Viterbi smoother ([`crate::shs`]): rows wait up to
    /// [`crate::shs::MAX_LAG`] frames for the smoother's decision.
    Shs,
}

impl F0Method {
    pub fn parse(name: &str) -> Result<F0Method> {
        match name {
            "yin" => Ok(F0Method::Yin),
            "shs" => Ok(F0Method::Shs),
            _ => crate::fail!("f0={name:?} must be 'yin' (frame-local YIN) or 'shs' (openSMILE's SHS + Viterbi)"),
        }
    }
}

/// The fixed part for one sample rate.
#[derive(Debug, Clone)]
pub struct PeriodicityPlan {
    pub sr: f64,
    /// Walk the periods for jitter and shimmer (only when one of them is asked for).
    pub periods: bool,
    /// Samples between frames (the period walk's step; 10 ms unless the pipeline sets it).
    pub hop: usize,
    /// 60 ms in samples.
    pub frame_length: usize,
    n_fft: usize,
    window: Vec<f64>,
    yin: YinParams,
    /// The SHS analysis, when F0 comes from openSMILE's tracker.
    shs: Option<ShsPlan>,
}

impl PeriodicityPlan {
    pub fn new(sr: f64) -> Result<PeriodicityPlan> {
        PeriodicityPlan::with_method(sr, F0Method::Yin)
    }

    pub fn with_method(sr: f64, method: F0Method) -> Result<PeriodicityPlan> {
        crate::error::positive_f64("sr", sr)?;
        if sr < 3000.0 {
            crate::fail!("sr={sr} is too low for F0, voicing and HNR (F0 up to {FMAX} Hz); use sr >= 3000");
        }
        let frame_length = samples(0.060, sr);
        if frame_length > crate::limits::MAX_N_FFT {
            crate::fail!(
                "sr={sr} is too high: the 60 ms F0 frame would be {frame_length} samples (at most {})",
                crate::limits::MAX_N_FFT
            );
        }
        let mut yin = YinParams::new(sr, FMIN, FMAX.min(sr / 2.0 - 1.0));
        yin.frame_length = frame_length;
        yin.validate()?;
        let n_fft = frame_length.next_power_of_two();
        let half = (frame_length as f64 - 1.0) / 2.0;
        let mut window = vec![0.0; n_fft];
        for (i, w) in window.iter_mut().take(frame_length).enumerate() {
            let x = (i as f64 - half) / (0.4 * half);
            *w = (-0.5 * x * x).exp();
        }
        let shs = (method == F0Method::Shs).then(|| ShsPlan::new(sr, frame_length, n_fft));
        Ok(PeriodicityPlan {
            sr,
            periods: true,
            hop: samples(0.010, sr).max(1),
            frame_length,
            n_fft,
            window,
            yin,
            shs,
        })
    }

    /// Rows wait for later frames (the SHS tracker's Viterbi smoother).
    pub fn lagged(&self) -> bool {
        self.shs.is_some()
    }
}

/// A frame the SHS tracker has not decided yet: its samples and energy gate.
struct Pending {
    samples: Vec<f32>,
    /// `|X|^2` of the windowed frame (the HNR's autocorrelation).
    power: Vec<f64>,
    loud: bool,
}

/// The SHS tracker's state: the per-frame analysis, the smoother, and the frames it holds.
struct ShsTrack {
    frame: ShsFrame,
    viterbi: Viterbi,
    pending: VecDeque<Pending>,
    spare: Vec<(Vec<f32>, Vec<f64>)>,
}

/// Working state (YIN and FFT buffers); one per thread.
pub struct PeriodicityFrame {
    yin: Yin,
    /// The HNR's autocorrelation of the windowed frame.
    acf: fft::Autocorrelation,
    walk: PeriodWalk,
    shs: Option<ShsTrack>,
}

impl PeriodicityFrame {
    pub fn new(plan: &PeriodicityPlan) -> Result<PeriodicityFrame> {
        Ok(PeriodicityFrame {
            yin: Yin::new(&plan.yin)?,
            acf: fft::Autocorrelation::new(plan.n_fft),
            walk: PeriodWalk::default(),
            shs: plan.shs.as_ref().map(|_| ShsTrack {
                frame: ShsFrame::new(&plan.window),
                viterbi: Viterbi::default(),
                pending: VecDeque::with_capacity(MAX_LAG + 2),
                spare: Vec::new(),
            }),
        })
    }

    /// Starts a new signal (the period walk and the SHS smoother carry state between frames).
    pub fn reset(&mut self) {
        self.walk.reset();
        if let Some(t) = self.shs.as_mut() {
            t.viterbi.reset();
            while let Some(p) = t.pending.pop_front() {
                t.spare.push((p.samples, p.power));
            }
        }
    }

    /// Windows `frame` into `self.acf.time` (zero-padded) and returns the windowed frame's RMS.
    fn window(&mut self, plan: &PeriodicityPlan, frame: &[f32]) -> f64 {
        let mut energy = 0.0;
        for ((t, &s), &w) in self
            .acf
            .time
            .iter_mut()
            .zip(frame)
            .zip(&plan.window)
            .take(plan.frame_length)
        {
            *t = s as f64 * w;
            energy += *t * *t;
        }
        self.acf.time[plan.frame_length..].iter_mut().for_each(|t| *t = 0.0);
        (energy / plan.frame_length as f64).sqrt()
    }

    /// HNR, jitter and shimmer of `frame` for F0 `f0` (Hz; `None`: unvoiced, which gives zeros
    /// and restarts the period walk). `power`: the windowed frame's `|X|^2` if known, else the
    /// frame windowed in `self.acf.time` is transformed.
    fn voiced_part(
        &mut self,
        plan: &PeriodicityPlan,
        frame: &[f32],
        f0: Option<f64>,
        power: Option<&[f64]>,
    ) -> (f64, f64, f64) {
        let Some(f0) = f0 else {
            if plan.periods {
                self.walk.step(&frame[..plan.frame_length], plan.hop, None);
            }
            return (0.0, 0.0, 0.0);
        };
        // Autocorrelation of the windowed frame (circular over n_fft, as openSMILE's).
        match power {
            Some(p) => self.acf.from_power(p),
            None => self.acf.run(),
        }
        let acf = &mut self.acf.time[..plan.n_fft / 2 + 1];
        acf.iter_mut().for_each(|a| *a = a.abs());
        let lag = ((plan.sr / f0).floor() as usize).min(acf.len() - 1);
        let t = closest_peak(acf, lag);
        let hnr = acf_hnr_db(acf, t);
        let (jitter, shimmer_db) = if plan.periods {
            self.walk
                .step(&frame[..plan.frame_length], plan.hop, Some(plan.sr / f0))
        } else {
            (0.0, 0.0)
        };
        (hnr, jitter, shimmer_db)
    }

    /// Descriptors of `frame` (`plan.frame_length` raw samples), the frame after the previous
    /// call's (`plan.hop` samples later) since the last [`PeriodicityFrame::reset`]. YIN plans
    /// only (an SHS plan's frames go through [`PeriodicityFrame::push`] and
    /// [`PeriodicityFrame::pop`]).
    pub fn compute(&mut self, plan: &PeriodicityPlan, frame: &[f32]) -> Periodicity {
        let est = self.yin.estimate(&frame[..plan.frame_length], TROUGH_THRESHOLD);
        let voicing = (1.0 - est.trough).clamp(0.0, 1.0);
        let rms = self.window(plan, frame);
        let voiced = est.trough < VOICING_THRESHOLD && rms >= RMS_GATE && est.f0.is_finite() && est.f0 > 0.0;
        let f0 = voiced.then_some(est.f0);
        let (hnr, jitter, shimmer_db) = self.voiced_part(plan, frame, f0, None);
        Periodicity {
            f0_semitones: f0.map_or(0.0, |f| 12.0 * (f / 27.5).log2()),
            voicing,
            hnr,
            jitter,
            shimmer_db,
        }
    }

    /// Adds the next frame to the SHS tracker (an SHS plan): its candidates go to the smoother,
    /// its samples wait for the smoother's decision.
    pub fn push(&mut self, plan: &PeriodicityPlan, frame: &[f32]) {
        let rms = self.window(plan, frame);
        let (Some(sp), Some(t)) = (plan.shs.as_ref(), self.shs.as_mut()) else {
            return;
        };
        let frame = &frame[..plan.frame_length];
        let c = t.frame.candidates(sp, frame);
        t.viterbi.push(c);
        let (mut samples, mut power) = t.spare.pop().unwrap_or_default();
        samples.clear();
        samples.extend_from_slice(frame);
        power.clear();
        power.extend_from_slice(&t.frame.power);
        t.pending.push_back(Pending {
            samples,
            power,
            loud: rms >= RMS_GATE,
        });
    }

    /// Ends the signal for the SHS tracker: every held frame is decided.
    pub fn finish(&mut self) {
        if let Some(t) = self.shs.as_mut() {
            t.viterbi.flush();
        }
    }

    /// The descriptors of the oldest frame the SHS smoother has decided, if any: F0 is the
    /// smoothed track (`F0finalLog`: `12 log2(f0 / 27.5)`, 1 up to 29.136 Hz), voicing the
    /// voicing of the chosen candidate (`voicingFinalUnclipped`), both 0 below the energy gate.
    pub fn pop(&mut self, plan: &PeriodicityPlan) -> Option<Periodicity> {
        let t = self.shs.as_mut()?;
        let (f0, voicing) = t.viterbi.pop()?;
        let p = t.pending.pop_front()?;
        let (f0, voicing) = if p.loud { (f0, voicing) } else { (0.0, 0.0) };
        let semitones = if f0 > 29.136 {
            12.0 * ((f0 / 27.5) as f64).log2()
        } else if f0 > 0.0 {
            1.0
        } else {
            0.0
        };
        let f0_hz = (f0 > 0.0).then_some(f0 as f64);
        let (hnr, jitter, shimmer_db) = self.voiced_part(plan, &p.samples, f0_hz, Some(&p.power));
        if let Some(t) = self.shs.as_mut() {
            t.spare.push((p.samples, p.power));
        }
        Some(Periodicity {
            f0_semitones: semitones,
            voicing: voicing as f64,
            hnr,
            jitter,
            shimmer_db,
        })
    }
}

/// `sum a[k] b[k]` in eight float32 lanes (vectorises), summed in float64.
fn dot(a: &[f32], b: &[f32]) -> f64 {
    let mut acc = [0.0f32; 8];
    let (ca, cb) = (a.chunks_exact(8), b.chunks_exact(8));
    let tail: f64 = ca
        .remainder()
        .iter()
        .zip(cb.remainder())
        .map(|(&x, &y)| x as f64 * y as f64)
        .sum();
    for (x, y) in ca.zip(cb) {
        for k in 0..8 {
            acc[k] += x[k] * y[k];
        }
    }
    acc.iter().map(|&v| v as f64).sum::<f64>() + tail
}

/// Prefix sums of `x` and `x^2`, for O(1) means and energies of any segment.
#[derive(Debug, Clone, Default)]
struct Prefix {
    s: Vec<f64>,
    s2: Vec<f64>,
}

impl Prefix {
    fn fill(&mut self, x: &[f32]) {
        let (s, s2) = (&mut self.s, &mut self.s2);
        s.clear();
        s2.clear();
        let (mut a, mut b) = (0.0, 0.0);
        s.push(0.0);
        s2.push(0.0);
        for &v in x {
            a += v as f64;
            b += v as f64 * v as f64;
            s.push(a);
            s2.push(b);
        }
    }

    /// Pearson correlation of `x[i..i+n]` and `x[j..j+n]`; 0 when either is constant.
    fn corr(&self, x: &[f32], i: usize, j: usize, n: usize) -> f64 {
        let sxy = dot(&x[i..i + n], &x[j..j + n]);
        let nf = n as f64;
        let (sx, sy) = (self.s[i + n] - self.s[i], self.s[j + n] - self.s[j]);
        let vx = self.s2[i + n] - self.s2[i] - sx * sx / nf;
        let vy = self.s2[j + n] - self.s2[j] - sy * sy / nf;
        if vx > 0.0 && vy > 0.0 {
            (sxy - sx * sy / nf) / (vx.sqrt() * vy.sqrt())
        } else {
            0.0
        }
    }
}

/// The vertex `(x, y)` of the parabola through `(-1, a)`, `(0, b)`, `(1, c)`.
fn vertex(a: f64, b: f64, c: f64) -> (f64, f64) {
    let curv = (a + c - 2.0 * b) / 2.0;
    let slope = (c - a) / 2.0;
    if curv == 0.0 {
        (0.0, b)
    } else {
        let x = -slope / (2.0 * curv);
        (x, b - slope * slope / (4.0 * curv))
    }
}

/// Peak-to-peak amplitude of a period, over its inner samples (openSMILE `amplitudeDiff`).
fn peak_to_peak(x: &[f32]) -> f64 {
    let inner = &x[1..x.len() - 1];
    let max = inner.iter().fold(f32::MIN, |m, &v| m.max(v));
    let min = inner.iter().fold(f32::MAX, |m, &v| m.min(v));
    (max - min) as f64
}

/// Jitter and shimmer by `cPitchJitter`'s continuous period walk through the waveform: state
/// carried from frame to frame, so it must see every frame of a signal in order (batch and
/// stream both do; [`PeriodWalk::reset`] starts a new signal).
///
/// Frame `k`'s 60 ms region starts at sample `k * hop`. The walk resumes where the last one
/// stopped (`next`, at most `2 T0max + 2` samples behind the frame's first hop) and reads up
/// to the end of that hop, or `2 T0max + 2` samples if more (never past the frame). From each
/// period start, the next period is the lag in `[floor(0.9 T), ceil(1.1 T)]` (`T = sr / f0`)
/// whose waveform best matches the one before (the highest strict local maximum of the
/// Pearson correlation); without one it steps `round(T)`. A pair counts when the parabola
/// through the peak correlation exceeds 0.5: its interpolated lag is a period, and the
/// peak-to-peak amplitudes of the two periods feed shimmer. Jitter = mean |T_i - T_i-1|
/// (`T_i-1` may come from an earlier frame) / mean T_i of the frame; shimmer =
/// `20 log10(1 + sum |A_0 - A_1| / sum (A_0 + A_1) / 2)`. A voiced frame with no new pair
/// repeats the last values; an unvoiced one resets the state and gives 0.
#[derive(Debug, Clone, Default)]
pub struct PeriodWalk {
    /// Signal samples from absolute index `hist_start` (the last frames' regions).
    hist: Vec<f32>,
    hist_start: usize,
    /// Absolute index of the next frame's first sample.
    frame_start: usize,
    /// openSMILE's `lastIdx` (where the walk resumes) and `lastMis` (samples left unwalked).
    next: usize,
    missed: usize,
    last_period: f64,
    last_jitter: f64,
    last_shimmer: f64,
    cc: Vec<f64>,
    prefix: Prefix,
}

impl PeriodWalk {
    /// Starts a new signal.
    pub fn reset(&mut self) {
        self.hist.clear();
        (self.hist_start, self.frame_start, self.next, self.missed) = (0, 0, 0, 0);
        (self.last_period, self.last_jitter, self.last_shimmer) = (0.0, 0.0, 0.0);
    }

    /// Jitter and shimmer (dB) of the next frame: `frame` its 60 ms region, `hop` the step
    /// between frames, `period` YIN's period in samples (`None`: unvoiced).
    pub fn step(&mut self, frame: &[f32], hop: usize, period: Option<f64>) -> (f64, f64) {
        let (s, len) = (self.frame_start, frame.len());
        self.frame_start += hop;
        let end = self.hist_start + self.hist.len();
        if self.hist.is_empty() || end < s {
            self.hist.clear();
            self.hist_start = s;
            self.hist.extend_from_slice(frame);
        } else if end < s + len {
            self.hist.extend_from_slice(&frame[end - s..]);
        }
        // Keep two frames before this one (the walk lags it by less than one).
        let keep_from = s.saturating_sub(2 * len).max(self.hist_start);
        if keep_from - self.hist_start > 4 * len {
            self.hist.drain(..keep_from - self.hist_start);
            self.hist_start = keep_from;
        }

        let to_read0 = hop + self.missed;
        // A discontinuity (openSMILE's rule; here only when frames do not overlap).
        let broken = s < self.missed || s - self.missed != self.next || self.next < self.hist_start;
        if broken {
            self.next = s;
        }
        let Some(tf) = period.filter(|t| t.is_finite() && *t > 0.0) else {
            self.next += to_read0;
            self.missed = 0;
            (self.last_period, self.last_jitter, self.last_shimmer) = (0.0, 0.0, 0.0);
            return (0.0, 0.0);
        };
        let t_round = (tf.round() as usize).max(1);
        let (t_min, t_max) = ((0.9 * tf).floor() as usize, (1.1 * tf).ceil() as usize);
        let mut to_read = to_read0.max(2 * t_max + 2).min(self.missed + len);
        if broken {
            to_read = to_read.min(len);
        }
        let at = self.next - self.hist_start;
        let x = &self.hist[at..(at + to_read).min(self.hist.len())];
        let n = x.len();

        let (mut sum_period, mut n_periods, mut sum_diff, mut n_diff) = (0.0, 0usize, 0.0, 0usize);
        let (mut sum_amp, mut sum_amp_diff) = (0.0, 0.0);
        let (mut start, mut walked) = (0usize, 0usize);
        if t_min >= 1 {
            self.prefix.fill(x);
            self.cc.resize(t_max - t_min + 1, 0.0);
        }
        while t_min >= 1 && start + 2 * t_max + 1 < n {
            for (k, c) in self.cc.iter_mut().enumerate() {
                let lag = t_min + k;
                *c = self.prefix.corr(x, start, start + lag, lag);
            }
            let cc = &self.cc;
            // openSMILE's range: 1 <= i < t_max - t_min - 1.
            let best = (1..cc.len().saturating_sub(2))
                .filter(|&i| cc[i - 1] < cc[i] && cc[i] > cc[i + 1])
                .fold(None, |b: Option<usize>, i| match b {
                    Some(j) if cc[j] >= cc[i] => Some(j),
                    _ => Some(i),
                });
            match best {
                Some(i) => {
                    let lag = t_min + i;
                    let os = start;
                    start += lag;
                    let (a0, a1) = (peak_to_peak(&x[os..os + lag]), peak_to_peak(&x[start..start + lag]));
                    let (dx, peak) = vertex(cc[i - 1], cc[i], cc[i + 1]);
                    if peak > MIN_CC {
                        let p = (lag as f64 + dx).abs();
                        sum_period += p;
                        n_periods += 1;
                        if self.last_period > 0.0 {
                            sum_diff += (self.last_period - p).abs();
                            n_diff += 1;
                        }
                        self.last_period = p;
                        sum_amp += (a0 + a1) / 2.0;
                        sum_amp_diff += (a0 - a1).abs();
                    }
                }
                None => start += t_round,
            }
            if start + 1 < to_read0 {
                walked = start;
            }
        }
        self.missed = to_read0 - walked;
        self.next += walked;

        if n_periods > 0 && n_diff > 0 {
            self.last_jitter = sum_diff / n_diff as f64 / (sum_period / n_periods as f64);
        }
        if n_periods > 0 {
            self.last_shimmer = if sum_amp > 0.0 { sum_amp_diff / sum_amp } else { 0.0 };
        }
        self.last_jitter = self.last_jitter.min(1.0);
        self.last_shimmer = self.last_shimmer.min(1.0);
        let jitter = if n_periods == 0 || n_diff > 0 {
            self.last_jitter
        } else {
            0.0
        };
        (jitter, 20.0 * (1.0 + self.last_shimmer).log10())
    }
}

/// A strict local maximum (openSMILE `isPeak`: the first sample counts when above the second).
fn is_peak(x: &[f64], n: usize) -> bool {
    let len = x.len();
    if n >= len {
        false
    } else if n + 1 < len {
        if n > 0 {
            x[n] > x[n - 1] && x[n] > x[n + 1]
        } else {
            x[0] > x[1]
        }
    } else {
        n > 0 && x[n] > x[n - 1]
    }
}

/// The peak nearest `idx`, looking left first at each distance (openSMILE `getClosestPeak`).
fn closest_peak(x: &[f64], idx: usize) -> usize {
    if is_peak(x, idx) {
        return idx;
    }
    let n = x.len();
    let mut o = 1;
    while idx > o || idx + o < n - 1 {
        if idx > o && is_peak(x, idx - o) {
            return idx - o;
        }
        if idx + o < n - 1 && is_peak(x, idx + o) {
            return idx + o;
        }
        o += 1;
    }
    if x[0] > x[idx] && x[n - 1] <= x[idx] {
        0
    } else if x[0] <= x[idx] && x[n - 1] > x[idx] {
        n - 1
    } else if x[0] > x[idx] && x[n - 1] > x[idx] {
        if idx < n / 2 {
            0
        } else {
            n - 1
        }
    } else {
        idx
    }
}

/// `10 log10(a[t] / (a[0] - a[t]))` clipped as openSMILE clips it; 0 for lag 0.
fn acf_hnr_db(a: &[f64], t: usize) -> f64 {
    if t == 0 {
        return 0.0;
    }
    let d = a[0] - a[t];
    let r = if d == 0.0 { 10e10 } else { a[t] / d };
    10.0 * r.clamp(10e-10, 10e10).log10()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::f64::consts::PI;

    fn harmonic(sr: f64, f0: f64, n: usize, noise: f32) -> Vec<f32> {
        let mut s = 7u32;
        (0..n)
            .map(|i| {
                let t = i as f64 / sr;
                let v: f64 = (1..6).map(|h| (2.0 * PI * f0 * h as f64 * t).sin() / h as f64).sum();
                s = s.wrapping_mul(1664525).wrapping_add(1013904223);
                0.2 * v as f32 + noise * ((s >> 8) as f32 / (1u32 << 24) as f32 - 0.5)
            })
            .collect()
    }

    #[test]
    fn a_harmonic_tone_gives_its_semitone_and_a_high_hnr() {
        let plan = PeriodicityPlan::new(16000.0).unwrap();
        assert_eq!(plan.frame_length, 960);
        let mut pf = PeriodicityFrame::new(&plan).unwrap();
        let d = pf.compute(&plan, &harmonic(16000.0, 220.0, 960, 0.0));
        // 220 Hz is 24 semitones above 55 Hz, 36 above 27.5 Hz.
        assert!((d.f0_semitones - 36.0).abs() < 0.05, "{d:?}");
        // The Gaussian window's own ACF decay caps this (openSMILE does not divide it out).
        assert!(d.voicing > 0.95 && d.hnr > 10.0, "{d:?}");
        let noisy = pf.compute(&plan, &harmonic(16000.0, 220.0, 960, 0.3));
        assert!(noisy.hnr < d.hnr, "{noisy:?} vs {d:?}");
    }

    #[test]
    fn silence_and_noise_are_unvoiced() {
        let plan = PeriodicityPlan::new(16000.0).unwrap();
        let mut pf = PeriodicityFrame::new(&plan).unwrap();
        let d = pf.compute(&plan, &[0.0; 960]);
        assert_eq!((d.f0_semitones, d.hnr), (0.0, 0.0), "{d:?}");
        let noise: Vec<f32> = harmonic(16000.0, 220.0, 960, 1.0)
            .iter()
            .zip(harmonic(16000.0, 220.0, 960, 0.0))
            .map(|(a, b)| (a - b) * 2.0)
            .collect();
        let d = pf.compute(&plan, &noise);
        assert_eq!((d.f0_semitones, d.hnr), (0.0, 0.0), "{d:?}");
        assert!(d.voicing < 0.8, "{d:?}");
    }

    #[test]
    fn jitter_and_shimmer_of_steady_and_perturbed_pulse_trains() {
        // Periods of 100 samples (steady), then alternating 95/105 with alternating amplitude.
        let pulses = |periods: &[usize], amps: &[f32]| {
            let mut y = Vec::new();
            for (k, &p) in periods.iter().enumerate() {
                let a = amps[k % amps.len()];
                y.extend(
                    (0..p)
                        .map(|i| a * (-(i as f32) / 8.0).exp() * (2.0 * std::f32::consts::PI * i as f32 / 20.0).cos()),
                );
            }
            y
        };
        // Walk 60 ms frames (960 samples) every 10 ms (160) at the true period.
        let walk = |y: &[f32]| {
            let mut w = PeriodWalk::default();
            (0..=(y.len() - 960) / 160)
                .map(|k| w.step(&y[k * 160..k * 160 + 960], 160, Some(100.0)))
                .collect::<Vec<_>>()
        };
        let steady = walk(&pulses(&[100; 60], &[0.5]));
        assert!(steady.iter().all(|&(j, s)| j < 1e-3 && s < 1e-3), "{steady:?}");
        let wobbly = walk(&pulses(&[95, 105].repeat(30), &[0.5, 0.4]));
        // Each frame walks one or two new period pairs (the walk is continuous).
        for &(j, s) in &wobbly[1..] {
            assert!(j > 0.05 && j < 0.15, "jitter {j}");
            assert!(s > 1.0 && s < 3.0, "shimmer {s} dB");
        }
        // The state carries over: a frame that ends the walk early still knows the last period,
        // and an unvoiced frame resets it.
        let mut w = PeriodWalk::default();
        let y = pulses(&[95, 105].repeat(30), &[0.5, 0.4]);
        let first = w.step(&y[..960], 160, Some(100.0));
        assert_eq!(first.0, 0.0, "one period pair: no jitter yet ({first:?})");
        assert!(w.step(&y[160..1120], 160, Some(100.0)).0 > 0.05);
        assert_eq!(w.step(&y[320..1280], 160, None), (0.0, 0.0));
        assert_eq!(w.step(&y[480..1440], 160, Some(100.0)).0, 0.0);
    }

    #[test]
    fn hnr_helpers_follow_opensmile() {
        let a = [10.0, 4.0, 2.0, 6.0, 3.0];
        assert_eq!(closest_peak(&a, 2), 3);
        assert_eq!(closest_peak(&a, 3), 3);
        assert!((acf_hnr_db(&a, 3) - 10.0 * (6.0f64 / 4.0).log10()).abs() < 1e-12);
        assert_eq!(acf_hnr_db(&a, 0), 0.0);
        assert!((acf_hnr_db(&[1.0, 1.0], 1) - 110.0).abs() < 1e-9);
    }

    #[test]
    fn too_low_a_rate_is_refused() {
        assert!(PeriodicityPlan::new(1500.0).unwrap_err().0.starts_with("sr=1500"));
        assert!(PeriodicityPlan::new(-1.0).is_err());
        assert!(PeriodicityPlan::new(1e18).unwrap_err().0.contains("too high"));
    }
}

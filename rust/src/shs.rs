//! openSMILE's F0 tracker of eGeMAPS v02 (`GeMAPSv01b_core.lld.conf.inc`): subharmonic summation
//! on a log-frequency spectrum, then a Viterbi smoother over the candidates.
//!
//! Per 60 ms frame (Gaussian window, sigma 0.4, zero-padded to the next power of two `N`):
//!
//! 1. `|X|`, unnormalised (`cTransformFFT`, `cFFTmagphase`);
//! 2. `cSpecScale` (`scale = octave`, `specEnhance`, `specSmooth`, `auditoryWeighting`): peak
//!    enhancement (bins more than two away from every local maximum, between two maxima, are
//!    zeroed), a `[1 2 1] / 4` smoothing, a natural cubic spline from the linear bins onto
//!    `N / 2 + 1` points equally spaced in `log2 f` from 25 Hz to `sr / 2`, and the auditory
//!    weight `0.5 + atan(3 (i + 1 - s) / P) / pi` (`P` points per octave, `s = P log2(65/50) - 1`)
//!    on the positive values (negative ones become 0);
//! 3. `cPitchShs` (15 harmonics, compression 0.85, `greedyPeakAlgo`): the spectrum plus its copies
//!    shifted down by `floor(P log2 h)` points, weighted `0.85^(h-1)`, divided by 15, clipped at 0;
//!    the six highest local maxima are the candidates (parabolic peak, `2^x` Hz), each with the
//!    voicing `1 - mean / score`; candidates outside 55-1000 Hz are dropped, and the best scored
//!    one moves first (`cPitchBase`);
//! 4. `cPitchSmootherViterbi` (`bufferLength = 40`): a Viterbi search over the six candidates and
//!    "unvoiced", decided incrementally: a frame's state is final once all surviving paths agree
//!    on it, or, at the latest, when it is `bufferLength` frames old (then the cheapest path's).
//!    So a frame's F0 is known at most 39 frames after the frame itself ([`MAX_LAG`]).
//!
//! The quirks of openSMILE's code are kept, as they shape its output: `specEnhance` with a single
//! maximum zeroes every bin from 3 on; the smoother's `wTvvd` is set to `wTvv` (10, not the
//! configured 5); its unvoiced-to-unvoiced transition costs 1 (the test meant to give it `wTuu`
//! never matches); and the "last change" of its delta-continuity cost is one value carried across
//! every transition it evaluates, in evaluation order. Stored values are float32 where openSMILE
//! keeps them in its float data memory; the spline runs in float64 as openSMILE's.

use crate::fft::FrameFft;
use std::collections::VecDeque;

/// `cPitchBase` `nCandidates` in eGeMAPS.
pub const N_CANDIDATES: usize = 6;
/// `cPitchShs` `minPitch` / `maxPitch`.
pub const FMIN: f32 = 55.0;
pub const FMAX: f32 = 1000.0;
/// `cPitchSmootherViterbi` `bufferLength`.
pub const BUFFER_LENGTH: usize = 40;
/// The most frames a frame's decision can wait for: it is final when `BUFFER_LENGTH - 1` later
/// frames have been added.
pub const MAX_LAG: usize = BUFFER_LENGTH - 1;

const N_HARMONICS: usize = 15;
const COMPRESSION: f32 = 0.85;
const VOICING_CUTOFF: f32 = 0.7;
/// `cSpecScale` `minF`.
const MIN_F: f64 = 25.0;

// Viterbi weights as `setWeights` stores them (eGeMAPS config: wTvv 10, wTvvd 5 (ignored),
// wTvuv 10, wThr 4, wTuu 0, wLocal 2, wRange 1).
const W_LOCAL: f64 = 2.0;
const W_TVV: f64 = 10.0;
const W_TVVD: f64 = W_TVV;
const W_TVUV: f64 = 10.0;
const W_THR: f64 = 4.0;
const W_RANGE: f64 = 1.0;
const W_TUU: f64 = 0.0;

/// The F0 candidates of one frame, in `cPitchBase`'s order (best score first), 0 where empty.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Candidates {
    pub f0: [f32; N_CANDIDATES],
    pub voicing: [f32; N_CANDIDATES],
    pub score: [f32; N_CANDIDATES],
    pub count: usize,
}

/// The fixed part of the SHS analysis for one sample rate and FFT size.
#[derive(Debug, Clone)]
pub struct ShsPlan {
    n_bins: usize,
    /// `log2` of each linear bin's frequency (bin 0 extrapolated), the spline's knots.
    #[cfg_attr(not(test), allow(dead_code))]
    knots: Vec<f64>,
    /// The spline's per-knot constants: `sigma`, the reciprocals of `cspline_init`'s `diff1` and
    /// `diff2`, and the forward sweep's pivots and second-derivative coefficients (they depend
    /// on the knots only).
    #[cfg_attr(not(test), allow(dead_code))]
    sigma: Vec<f64>,
    inv1: Vec<f64>,
    inv2: Vec<f64>,
    pivot: Vec<f64>,
    pivot_sigma: Vec<f64>,
    coef: Vec<f64>,
    /// `pivot_sigma[i] pivot_sigma[i-1]` and `coef[j] coef[j+1]`: the two-step sweeps' factors.
    fwd2: Vec<f64>,
    bwd2: Vec<f64>,
    /// Per output point: the knot below it and the interpolation weights `a`, `c`, `d`.
    interp: Vec<(usize, f64, f64, f64)>,
    weight: Vec<f64>,
    /// Downward shifts (points) of harmonics 2..=15.
    shifts: Vec<usize>,
    /// `log2 f` of output point 0 and the step, as float32 (openSMILE's level metadata).
    fmin_t: f32,
    fstep_t: f32,
}

impl ShsPlan {
    /// The plan for frames of `frame_seconds` zero-padded to `n_fft` samples at `sr`.
    pub fn new(sr: f64, frame_length: usize, n_fft: usize) -> ShsPlan {
        let n_bins = n_fft / 2 + 1;
        // cTransformFFT scales the frame duration by the zero-padding; cSpecScale reads it as
        // float32 and takes its inverse as the bin spacing.
        let frame_sec = (frame_length as f64 / sr) * (n_fft as f64 / frame_length as f64);
        let df = 1.0 / (frame_sec as f32) as f64;
        let max_f = df * (n_bins - 1) as f64;
        let (fmin_t, fmax_t) = (MIN_F.log2(), max_f.log2());
        let step_t = (fmax_t - fmin_t) / (n_bins - 1) as f64;
        let mut knots: Vec<f64> = (0..n_bins).map(|i| (i as f64 * df).log2()).collect();
        knots[0] = 2.0 * knots[1] - knots[2];
        let zeros = || vec![0.0; n_bins];
        let (mut sigma, mut inv1, mut inv2, mut pivot, mut coef) = (zeros(), zeros(), zeros(), zeros(), zeros());
        for i in 1..n_bins - 1 {
            let (l, c, r) = (knots[i - 1], knots[i], knots[i + 1]);
            sigma[i] = (c - l) / (r - l);
            inv1[i] = 1.0 / ((r - c) * (r - l));
            inv2[i] = 1.0 / ((c - l) * (r - l));
            pivot[i] = 1.0 / (sigma[i] * coef[i - 1] + 2.0);
            coef[i] = (sigma[i] - 1.0) * pivot[i];
        }
        let pivot_sigma: Vec<f64> = pivot.iter().zip(&sigma).map(|(p, s)| p * s).collect();
        let fwd2 = (0..n_bins)
            .map(|i| {
                if i >= 1 {
                    pivot_sigma[i] * pivot_sigma[i - 1]
                } else {
                    0.0
                }
            })
            .collect();
        let bwd2 = (0..n_bins)
            .map(|j| if j + 1 < n_bins { coef[j] * coef[j + 1] } else { 0.0 })
            .collect();
        let mut interp = Vec::with_capacity(n_bins);
        let mut upper = 1;
        for i in 0..n_bins {
            let x = (fmin_t + i as f64 * step_t).min(knots[n_bins - 1]);
            while upper < n_bins - 1 && knots[upper] < x {
                upper += 1;
            }
            let lower = upper - 1;
            let range = knots[upper] - knots[lower];
            let a = (knots[upper] - x) / range;
            let b = 1.0 - a;
            let r2 = range * range / 6.0;
            interp.push((lower, a, (a * a * a - a) * r2, (b * b * b - b) * r2));
        }
        let n_octaves = (max_f / MIN_F).log2();
        let per_octave = n_bins as f64 / n_octaves;
        let s = per_octave * (65.0f64 / 50.0).log2() - 1.0;
        let weight = (0..n_bins)
            .map(|i| 0.5 + (3.0 * (i as f64 + 1.0 - s) / per_octave).atan() / std::f64::consts::PI)
            .collect();
        // cPitchShs reads the points per octave from the float32 metadata.
        let p32 = per_octave as f32 as f64;
        let shifts = (2..=N_HARMONICS)
            .map(|h| (p32 * (h as f64).log2()).floor() as usize)
            .collect();
        let (fmin32, fmax32) = (fmin_t as f32, fmax_t as f32);
        ShsPlan {
            n_bins,
            knots,
            sigma,
            inv1,
            inv2,
            pivot_sigma,
            pivot,
            coef,
            fwd2,
            bwd2,
            interp,
            weight,
            shifts,
            fmin_t: fmin32,
            fstep_t: (fmax32 - fmin32) / (n_bins - 1) as f32,
        }
    }
}

/// `smileDsp_specEnhanceSHS`: zero the bins more than two away from the local maxima around them.
/// `maxima` is scratch space of at least `a.len()` entries.
fn enhance(a: &mut [f64], maxima: &mut [usize]) {
    let n = a.len();
    if n < 2 {
        return;
    }
    // Branch-free collection (speech spectra have many maxima, in no predictable pattern).
    let mut m = 0;
    maxima[m] = 0;
    m += (a[0] > a[1]) as usize;
    for i in 1..n - 1 {
        maxima[m] = i;
        m += ((a[i] > a[i - 1]) & (a[i] >= a[i + 1])) as usize;
    }
    maxima[m] = n - 1;
    m += (a[n - 1] > a[n - 2]) as usize;
    if m == 1 {
        // openSMILE reads the second (absent, zero-initialised) maximum here: everything from
        // bin 3 on is zeroed.
        a[3.min(n)..].iter_mut().for_each(|v| *v = 0.0);
    } else {
        for w in maxima[..m].windows(2) {
            for v in a.iter_mut().take((w[1] + 1).saturating_sub(3)).skip(w[0] + 3) {
                *v = 0.0;
            }
        }
    }
}

/// `smileDsp_specSmoothSHS`: `[1 2 1] / 4`, the last bin kept, the one before the first read as 0.
fn smooth(a: &mut [f64]) {
    let mut prev = 0.0;
    for i in 0..a.len().saturating_sub(1) {
        let cur = a[i];
        a[i] = (prev + 2.0 * cur + a[i + 1]) / 4.0;
        prev = cur;
    }
}

/// The vertex `(x, y)` of the parabola through `(-1, a)`, `(0, b)`, `(1, c)`; the middle point
/// when the three are collinear (openSMILE `smileMath_quadFrom3pts` on equally spaced points).
fn vertex(a: f64, b: f64, c: f64) -> (f64, f64) {
    let curv = (a + c) / 2.0 - b;
    if curv == 0.0 {
        return (0.0, b);
    }
    let slope = (c - a) / 2.0;
    let x = -slope / (2.0 * curv);
    (x, b + slope * x / 2.0)
}

/// Working buffers of the per-frame SHS analysis; one per thread.
pub struct ShsFrame {
    fft: FrameFft<f64>,
    /// `|X|^2` of the last frame (the HNR's autocorrelation reads it).
    pub power: Vec<f64>,
    y: Vec<f64>,
    y2: Vec<f64>,
    u: Vec<f64>,
    maxima: Vec<usize>,
    spec: Vec<f32>,
    sum: Vec<f32>,
    /// The frame, zero-padded to the FFT size (the transform uses its input as scratch).
    padded: Vec<f32>,
}

impl ShsFrame {
    /// `window`: the analysis window, zero-padded to the FFT size.
    pub fn new(window: &[f64]) -> ShsFrame {
        let n_bins = window.len() / 2 + 1;
        ShsFrame {
            fft: FrameFft::new(window),
            power: vec![0.0; n_bins],
            y: vec![0.0; n_bins],
            y2: vec![0.0; n_bins],
            u: vec![0.0; n_bins],
            maxima: vec![0; n_bins + 1],
            spec: vec![0.0; n_bins],
            sum: vec![0.0; n_bins],
            padded: vec![0.0; window.len()],
        }
    }

    /// The log-frequency spectrum of `frame` (cSpecScale's output), then its candidates.
    pub fn candidates(&mut self, plan: &ShsPlan, frame: &[f32]) -> Candidates {
        let n = frame.len().min(self.padded.len());
        self.padded[..n].copy_from_slice(&frame[..n]);
        self.padded[n..].iter_mut().for_each(|v| *v = 0.0);
        self.fft.transform(&self.padded);
        for ((y, p), c) in self.y.iter_mut().zip(self.power.iter_mut()).zip(&self.fft.spectrum) {
            *p = c.re * c.re + c.im * c.im;
            *y = (p.sqrt() as f32) as f64;
        }
        enhance(&mut self.y, &mut self.maxima);
        smooth(&mut self.y);
        self.spline(plan);
        for (i, (s, &(k, a, c, d))) in self.spec.iter_mut().zip(&plan.interp).enumerate() {
            let v = a * self.y[k] + (1.0 - a) * self.y[k + 1] + c * self.y2[k] + d * self.y2[k + 1];
            // Negative values become 0 (openSMILE weights the positive ones only).
            let v = (v as f32).max(0.0);
            *s = (v as f64 * plan.weight[i]) as f32;
        }
        self.summation(plan)
    }

    /// Second derivatives of the natural cubic spline through `(knots, y)` (`smileMath_cspline`
    /// with both ends natural; the knot-only parts of its tridiagonal sweep come from the plan).
    fn spline(&mut self, plan: &ShsPlan) {
        let n = plan.n_bins;
        let (y, y2, u) = (&self.y, &mut self.y2, &mut self.u);
        let (a, c) = (&plan.pivot_sigma, &plan.coef);
        // The right-hand sides first (independent, vectorised).
        u[0] = 0.0;
        for i in 1..n - 1 {
            let ut = (y[i + 1] - y[i]) * plan.inv1[i] - (y[i] - y[i - 1]) * plan.inv2[i];
            u[i] = plan.pivot[i] * (6.0 * ut);
        }
        // Forward sweep `u[i] -= a[i] u[i-1]`, unrolled two steps so that the even and the odd
        // indices form two independent chains: `u[i] = (r[i] - a[i] r[i-1]) + a[i] a[i-1] u[i-2]`.
        for i in (2..n - 1).rev() {
            u[i] -= a[i] * u[i - 1];
        }
        let mut i = 2;
        while i + 1 < n - 1 {
            u[i] += plan.fwd2[i] * u[i - 2];
            u[i + 1] += plan.fwd2[i + 1] * u[i - 1];
            i += 2;
        }
        if i < n - 1 {
            u[i] += plan.fwd2[i] * u[i - 2];
        }
        // Back substitution `y2[j] = c[j] y2[j+1] + u[j]` (natural end: `y2[n-1] = 0`), likewise.
        y2[n - 1] = 0.0;
        y2[n - 2] = u[n - 2];
        for j in 0..n - 2 {
            y2[j] = u[j] + c[j] * u[j + 1];
        }
        let mut j = n - 2;
        while j >= 2 {
            y2[j - 1] += plan.bwd2[j - 1] * y2[j + 1];
            y2[j - 2] += plan.bwd2[j - 2] * y2[j];
            j -= 2;
        }
        if j == 1 {
            y2[0] += plan.bwd2[0] * y2[2];
        }
    }

    /// Subharmonic summation of `self.spec` and the candidate peaks (`cPitchShs`, `cPitchBase`).
    fn summation(&mut self, plan: &ShsPlan) -> Candidates {
        let n = plan.n_bins;
        let (spec, ss) = (&self.spec, &mut self.sum);
        ss.copy_from_slice(spec);
        let mut scale = COMPRESSION;
        for &shift in &plan.shifts {
            for j in shift..n {
                ss[j - shift] += spec[j] * scale;
            }
            scale *= COMPRESSION;
        }
        for v in ss.iter_mut() {
            *v /= N_HARMONICS as f32;
            if *v < 0.0 {
                *v = 0.0;
            }
        }
        // The greedy peak picker: every local maximum enters the ranked list where it beats an
        // entry (or fills an empty one).
        let mut c = Candidates::default();
        let mut idx = [0usize; N_CANDIDATES];
        let peaks = &mut self.maxima;
        let mut m = 0;
        for i in 1..n - 1 {
            peaks[m] = i;
            m += ((ss[i - 1] < ss[i]) & (ss[i] > ss[i + 1])) as usize;
        }
        for &i in &peaks[..m] {
            if let Some(j) = (0..N_CANDIDATES).find(|&j| c.score[j] == 0.0 || c.score[j] < ss[i]) {
                for k in (j + 1..N_CANDIDATES).rev() {
                    c.score[k] = c.score[k - 1];
                    idx[k] = idx[k - 1];
                }
                idx[j] = i;
                c.score[j] = ss[i];
                c.count = (c.count + 1).min(N_CANDIDATES);
            }
        }
        // The mean in float64 (four partial sums: openSMILE's serial sum differs by rounding only).
        let mut part = [0.0f64; 4];
        let chunks = ss.chunks_exact(4);
        let tail: f64 = chunks.remainder().iter().map(|&v| v as f64).sum();
        for ch in chunks {
            for k in 0..4 {
                part[k] += ch[k] as f64;
            }
        }
        let mean = (part.iter().sum::<f64>() + tail) / n as f64;
        for i in 0..c.count {
            let j = idx[i];
            let (dx, sc) = vertex(ss[j - 1] as f64, ss[j] as f64, ss[j + 1] as f64);
            let x = (j as f32 * plan.fstep_t + plan.fmin_t) as f64 + dx * plan.fstep_t as f64;
            c.f0[i] = x.exp2() as f32;
            c.score[i] = sc as f32;
            c.voicing[i] = if sc > 0.0 && sc > mean {
                (1.0 - mean / sc) as f32
            } else {
                0.0
            };
        }
        // cPitchBase: drop candidates outside minPitch..maxPitch, then the best score first.
        let mut i = 0;
        while i < N_CANDIDATES && c.count > 0 {
            let f = c.f0[i];
            if !(FMIN..=FMAX).contains(&f) {
                for k in i + 1..N_CANDIDATES {
                    c.f0[k - 1] = c.f0[k];
                    c.voicing[k - 1] = c.voicing[k];
                    c.score[k - 1] = c.score[k];
                }
                c.f0[N_CANDIDATES - 1] = 0.0;
                c.voicing[N_CANDIDATES - 1] = 0.0;
                c.score[N_CANDIDATES - 1] = 0.0;
                if f > 0.0 {
                    c.count -= 1;
                    continue;
                }
            }
            i += 1;
        }
        let mut best = 0;
        for k in 1..N_CANDIDATES {
            if c.score[k] > c.score[best] {
                best = k;
            }
        }
        c.f0.swap(0, best);
        c.voicing.swap(0, best);
        c.score.swap(0, best);
        c
    }
}

/// `cSmileViterbiPitchSmooth` with eGeMAPS's weights: states 0..6 are the candidates, state 6
/// "unvoiced". Frames go in with [`Viterbi::push`]; [`Viterbi::pop`] gives each frame's smoothed
/// F0 (0 when unvoiced) and voicing once its state is final; [`Viterbi::flush`] ends the signal.
#[derive(Debug, Clone)]
pub struct Viterbi {
    frames: VecDeque<Candidates>,
    prev: Option<Candidates>,
    /// Frames added (`pathIdx`) and the last frame whose state is final (`convIdx`; -1: none).
    added: i64,
    converged: i64,
    read: i64,
    /// Per state, its best path's states for the last `BUFFER_LENGTH` frames (ring by frame).
    paths: Vec<[usize; BUFFER_LENGTH]>,
    new_paths: Vec<[usize; BUFFER_LENGTH]>,
    best: [usize; BUFFER_LENGTH],
    costs: [f64; N_CANDIDATES + 1],
    last_change: f64,
}

impl Default for Viterbi {
    fn default() -> Viterbi {
        Viterbi {
            frames: VecDeque::with_capacity(BUFFER_LENGTH + 1),
            prev: None,
            added: 0,
            converged: -1,
            read: 0,
            paths: vec![[0; BUFFER_LENGTH]; N_CANDIDATES + 1],
            new_paths: vec![[0; BUFFER_LENGTH]; N_CANDIDATES + 1],
            best: [0; BUFFER_LENGTH],
            costs: [0.0; N_CANDIDATES + 1],
            last_change: 1.0,
        }
    }
}

const UNVOICED: usize = N_CANDIDATES;

/// The smoother's frequency-range cost.
fn range_cost(f: f64) -> f64 {
    if f > 0.0 && f < 100.0 {
        1.0 - f / 100.0
    } else if (100.0..350.0).contains(&f) {
        0.0
    } else if (350.0..600.0).contains(&f) {
        (f - 350.0) / 250.0
    } else if f >= 600.0 {
        1.2
    } else {
        2.0
    }
}

fn local_cost(i: usize, c: &Candidates) -> f64 {
    let thr = VOICING_CUTOFF as f64;
    if i < UNVOICED {
        let pv = (c.voicing[i] as f64).clamp(0.01, 1.0);
        let t = if pv < thr { W_THR } else { 0.0 };
        (-pv.ln() + t) * W_LOCAL + range_cost(c.f0[i] as f64) * W_RANGE
    } else if c.voicing.iter().any(|&v| v as f64 >= thr) {
        W_LOCAL * W_THR
    } else {
        0.0
    }
}

impl Viterbi {
    /// Starts a new signal.
    pub fn reset(&mut self) {
        *self = Viterbi {
            frames: std::mem::take(&mut self.frames),
            paths: std::mem::take(&mut self.paths),
            new_paths: std::mem::take(&mut self.new_paths),
            ..Viterbi::default()
        };
        self.frames.clear();
    }

    /// Cost of moving from state `j` of the previous frame to state `i` of this one.
    fn transition(&mut self, i: usize, j: usize, prev: &Candidates, cur: &Candidates) -> f64 {
        if i < UNVOICED && j < UNVOICED {
            let (f0, f1) = (prev.f0[j], cur.f0[i]);
            if f0 == 0.0 || f1 == 0.0 {
                return 999.0;
            }
            let r = ((f1 / f0) as f64).ln();
            let x = W_TVV * r.abs() + W_TVVD * (r - self.last_change).abs();
            self.last_change = r;
            x
        } else if i < UNVOICED || j < UNVOICED {
            self.last_change = 0.0;
            W_TVUV
        } else {
            // openSMILE's `i == j == n - 1` never holds: unvoiced to unvoiced costs 1, not wTuu.
            let _ = W_TUU;
            1.0
        }
    }

    /// Adds the next frame's candidates.
    pub fn push(&mut self, c: Candidates) {
        let slot = (self.added as usize) % BUFFER_LENGTH;
        match self.prev {
            None => {
                for s in 0..=UNVOICED {
                    self.costs[s] = local_cost(s, &c);
                    self.paths[s][slot] = s;
                }
            }
            Some(prev) => {
                let mut new_costs = [0.0; N_CANDIDATES + 1];
                for i in 0..=UNVOICED {
                    let mut best = (0, f64::INFINITY);
                    for j in 0..=UNVOICED {
                        let cost = self.transition(i, j, &prev, &c) + self.costs[j];
                        if j == 0 || cost < best.1 {
                            best = (j, cost);
                        }
                    }
                    new_costs[i] = best.1 + local_cost(i, &c);
                    self.new_paths[i] = self.paths[best.0];
                    self.new_paths[i][slot] = i;
                }
                self.costs = new_costs;
                std::mem::swap(&mut self.paths, &mut self.new_paths);
            }
        }
        self.prev = Some(c);
        self.frames.push_back(c);
        self.added += 1;
        if self.added - self.converged > BUFFER_LENGTH as i64 {
            // Forced decision for the oldest open frame: the cheapest path's state.
            let s = self.cheapest();
            self.converged += 1;
            let k = (self.converged as usize) % BUFFER_LENGTH;
            self.best[k] = self.paths[s][k];
        } else {
            for n in self.converged + 1..self.added {
                let k = (n as usize) % BUFFER_LENGTH;
                let x = self.paths[0][k];
                if self.paths[1..].iter().any(|p| p[k] != x) {
                    break;
                }
                self.converged += 1;
                self.best[k] = x;
            }
        }
    }

    fn cheapest(&self) -> usize {
        let mut s = 0;
        for i in 1..=UNVOICED {
            if self.costs[i] < self.costs[s] {
                s = i;
            }
        }
        s
    }

    /// Ends the signal: every open frame takes the cheapest path's state.
    pub fn flush(&mut self) {
        let s = self.cheapest();
        while self.converged + 1 < self.added {
            self.converged += 1;
            let k = (self.converged as usize) % BUFFER_LENGTH;
            self.best[k] = self.paths[s][k];
        }
    }

    /// Frames whose state is final and not yet read.
    pub fn available(&self) -> usize {
        (self.converged + 1 - self.read) as usize
    }

    /// The next final frame: its smoothed F0 in Hz (0: unvoiced) and the voicing of its state
    /// (of the first candidate when unvoiced).
    pub fn pop(&mut self) -> Option<(f32, f32)> {
        if self.available() == 0 {
            return None;
        }
        let s = self.best[(self.read as usize) % BUFFER_LENGTH];
        let c = self.frames.pop_front()?;
        self.read += 1;
        Some(if s < UNVOICED {
            (c.f0[s], c.voicing[s])
        } else {
            (0.0, c.voicing[0])
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::f64::consts::PI;

    fn gauss(frame_length: usize, n_fft: usize) -> Vec<f64> {
        let half = (frame_length as f64 - 1.0) / 2.0;
        let mut w = vec![0.0; n_fft];
        for (i, v) in w.iter_mut().take(frame_length).enumerate() {
            let x = (i as f64 - half) / (0.4 * half);
            *v = (-0.5 * x * x).exp();
        }
        w
    }

    fn harmonic(sr: f64, f0: f64, n: usize) -> Vec<f32> {
        (0..n)
            .map(|i| {
                let t = i as f64 / sr;
                (1..8)
                    .map(|h| 0.2 * (2.0 * PI * f0 * h as f64 * t).sin() / h as f64)
                    .sum::<f64>() as f32
            })
            .collect()
    }

    #[test]
    fn enhancement_and_smoothing_follow_opensmile() {
        let mut a = vec![0.0, 1.0, 0.5, 0.4, 0.3, 0.2, 0.1, 0.5, 2.0, 0.5, 0.4];
        enhance(&mut a, &mut [0; 16]);
        // Maxima at 1 and 8: bins 4..=5 (more than two from both) are zeroed.
        assert_eq!(a, vec![0.0, 1.0, 0.5, 0.4, 0.0, 0.0, 0.1, 0.5, 2.0, 0.5, 0.4]);
        let mut one = vec![0.0, 1.0, 0.5, 0.4, 0.3, 0.2];
        enhance(&mut one, &mut [0; 16]);
        assert_eq!(one, vec![0.0, 1.0, 0.5, 0.0, 0.0, 0.0]);
        let mut s = vec![4.0, 8.0, 4.0, 1.0];
        smooth(&mut s);
        assert_eq!(
            s,
            vec![
                (0.0 + 8.0 + 8.0) / 4.0,
                (4.0 + 16.0 + 4.0) / 4.0,
                (8.0 + 8.0 + 1.0) / 4.0,
                1.0
            ]
        );
    }

    #[test]
    fn the_unrolled_spline_sweeps_equal_the_plain_recurrences() {
        let plan = ShsPlan::new(16000.0, 960, 1024);
        let mut f = ShsFrame::new(&gauss(960, 1024));
        let n = plan.n_bins;
        for (i, y) in f.y.iter_mut().enumerate() {
            *y = ((i * 7919) % 101) as f64 / 50.0;
        }
        f.spline(&plan);
        // smileMath_cspline with natural ends, as written there.
        let (mut y2, mut u) = (vec![0.0; n], vec![0.0; n]);
        for i in 1..n - 1 {
            let s = plan.sigma[i];
            let p = 1.0 / (s * y2[i - 1] + 2.0);
            y2[i] = (s - 1.0) * p;
            let ut = (f.y[i + 1] - f.y[i]) * plan.inv1[i] - (f.y[i] - f.y[i - 1]) * plan.inv2[i];
            u[i] = p * (6.0 * ut - s * u[i - 1]);
        }
        y2[n - 1] = 0.0;
        for j in (0..n - 1).rev() {
            y2[j] = y2[j] * y2[j + 1] + u[j];
        }
        for (a, b) in f.y2.iter().zip(&y2) {
            assert!((a - b).abs() <= 1e-9 * (1.0 + b.abs()), "{a} vs {b}");
        }
    }

    #[test]
    fn the_spline_reproduces_a_cubic_inside_and_the_vertex_a_parabola() {
        // A natural spline through samples of a straight line is that line.
        let plan = ShsPlan::new(16000.0, 960, 1024);
        let mut f = ShsFrame::new(&gauss(960, 1024));
        for (i, y) in f.y.iter_mut().enumerate() {
            *y = 3.0 + 2.0 * plan.knots[i];
        }
        f.spline(&plan);
        assert!(f.y2.iter().all(|v| v.abs() < 1e-9));
        let (x, y) = vertex(1.0, 3.0, 2.0);
        // y = -1.5 x^2 + 0.5 x + 3 has its vertex at x = 1/6.
        assert!((x - 1.0 / 6.0).abs() < 1e-12 && (y - (3.0 + 0.5 / 12.0)).abs() < 1e-12);
    }

    #[test]
    fn a_harmonic_tone_gives_its_f0_as_the_best_candidate() {
        for (sr, frame, n_fft) in [(16000.0, 960, 1024), (22050.0, 1323, 2048)] {
            let plan = ShsPlan::new(sr, frame, n_fft);
            let mut f = ShsFrame::new(&gauss(frame, n_fft));
            for f0 in [90.0, 150.0, 220.0, 330.0] {
                let c = f.candidates(&plan, &harmonic(sr, f0, frame));
                assert!((c.f0[0] as f64 / f0 - 1.0).abs() < 0.02, "{sr} {f0}: {c:?}");
                assert!(c.voicing[0] > VOICING_CUTOFF, "{sr} {f0}: {c:?}");
                assert!(c.f0.iter().all(|&v| v == 0.0 || (FMIN..=FMAX).contains(&v)));
            }
            let silent = f.candidates(&plan, &vec![0.0; frame]);
            assert_eq!(silent.count, 0);
        }
    }

    fn cands(list: &[(f32, f32)]) -> Candidates {
        let mut c = Candidates::default();
        for (k, &(f, v)) in list.iter().enumerate() {
            c.f0[k] = f;
            c.voicing[k] = v;
            c.score[k] = v;
        }
        c.count = list.len();
        c
    }

    #[test]
    fn viterbi_bridges_an_octave_error_and_decides_within_its_buffer() {
        let mut v = Viterbi::default();
        let mut out = Vec::new();
        let mut max_wait = 0;
        let n = 120;
        for t in 0..n {
            let c = match t {
                0..=9 | 100.. => Candidates::default(),
                50 => cands(&[(400.0, 0.9), (200.0, 0.85)]),
                _ => cands(&[(200.0, 0.9), (100.0, 0.6)]),
            };
            v.push(c);
            while let Some(x) = v.pop() {
                out.push(x);
                max_wait = max_wait.max(t + 1 - out.len());
            }
        }
        v.flush();
        while let Some(x) = v.pop() {
            out.push(x);
        }
        assert_eq!(out.len(), n);
        assert!(max_wait <= MAX_LAG, "waited {max_wait} frames");
        assert!(out[..10].iter().all(|x| x.0 == 0.0));
        assert!(out[10..100].iter().all(|x| x.0 == 200.0), "{:?}", &out[45..55]);
        assert!(out[100..].iter().all(|x| x.0 == 0.0));
        // Reset gives the same decisions again.
        v.reset();
        assert_eq!(v.available(), 0);
        v.push(cands(&[(200.0, 0.9)]));
        v.flush();
        assert_eq!(v.pop(), Some((200.0, 0.9)));
        assert_eq!(v.pop(), None);
    }

    #[test]
    fn range_and_local_costs() {
        assert_eq!(range_cost(0.0), 2.0);
        assert_eq!(range_cost(50.0), 0.5);
        assert_eq!(range_cost(200.0), 0.0);
        assert_eq!(range_cost(475.0), 0.5);
        assert_eq!(range_cost(700.0), 1.2);
        let c = cands(&[(200.0, 0.9)]);
        assert!((local_cost(0, &c) - (-(0.9f32 as f64).ln() * 2.0)).abs() < 1e-12);
        assert_eq!(local_cost(UNVOICED, &c), W_LOCAL * W_THR);
        assert_eq!(local_cost(UNVOICED, &Candidates::default()), 0.0);
    }
}

//! pYIN (`librosa.pyin`): per-frame pitch candidates from the CMNDF troughs under a beta prior
//! over thresholds, then an HMM over `2 * n_pitch_bins` states (voiced and unvoiced pitch bins)
//! decoded by Viterbi.
//!
//! librosa's transition matrix is `kron([[1-s, s], [s, 1-s]], T)` with `T` a row-normalised
//! triangular band (`transition_local(..., window='triangle', wrap=False)`), and its Viterbi
//! adds `tiny` before the log, so every entry outside the band is the same `ln(tiny)`. The
//! decoder here exploits that, and that only the pointers on the decoded path are ever read: the
//! forward pass keeps each frame's values (maxima, which do not depend on the order of
//! comparison), summing per target only the bands whose upper bound can win, and the backtrace
//! takes the dense argmax (first index on ties, as numpy's) of the one state per frame on the
//! path. The result is librosa's state sequence. The model (transition tables, priors) is cached
//! per parameter set.

use crate::error::{positive, Result};
use crate::fail;
use crate::pitch::{framed_signal, is_trough, FrameAnalyser, Yin, YinParams};
use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

/// pYIN's own keywords (librosa's names and defaults).
#[derive(Debug, Clone, PartialEq)]
pub struct PyinParams {
    pub n_thresholds: usize,
    pub beta_parameters: (f64, f64),
    pub boltzmann_parameter: f64,
    pub resolution: f64,
    pub max_transition_rate: f64,
    pub switch_prob: f64,
    pub no_trough_prob: f64,
    /// Value of `f0` in unvoiced frames; `None`: the decoded pitch bin's frequency.
    pub fill_na: Option<f64>,
}

impl Default for PyinParams {
    fn default() -> PyinParams {
        PyinParams {
            n_thresholds: 100,
            beta_parameters: (2.0, 18.0),
            boltzmann_parameter: 2.0,
            resolution: 0.1,
            max_transition_rate: 35.92,
            switch_prob: 0.01,
            no_trough_prob: 0.01,
            fill_na: Some(f64::NAN),
        }
    }
}

/// Thresholds above this many are refused (the per-frame tables would be huge).
pub const MAX_THRESHOLDS: usize = 1 << 16;

/// pYIN's output, one value per frame.
#[derive(Debug, Clone, PartialEq)]
pub struct Pyin {
    pub f0: Vec<f64>,
    pub voiced_flag: Vec<bool>,
    pub voiced_prob: Vec<f64>,
}

/// `ln(tiny)`: librosa's log of a zero probability.
const LN_TINY: f64 = -708.3964185322641;

/// numpy's pairwise summation (`np.sum` of a contiguous float64 array), bit for bit.
pub fn pairwise_sum(a: &[f64]) -> f64 {
    let n = a.len();
    if n < 8 {
        a.iter().fold(0.0, |s, &v| s + v)
    } else if n <= 128 {
        let mut r = [0.0; 8];
        r.copy_from_slice(&a[..8]);
        let mut i = 8;
        while i < n - n % 8 {
            for j in 0..8 {
                r[j] += a[i + j];
            }
            i += 8;
        }
        let mut res = ((r[0] + r[1]) + (r[2] + r[3])) + ((r[4] + r[5]) + (r[6] + r[7]));
        for &v in &a[i..] {
            res += v;
        }
        res
    } else {
        let mut n2 = n / 2;
        n2 -= n2 % 8;
        pairwise_sum(&a[..n2]) + pairwise_sum(&a[n2..])
    }
}

/// `ln Γ(x)` for `x > 0` (Lanczos, g = 7; relative error ~1e-15).
fn ln_gamma(x: f64) -> f64 {
    const G: [f64; 9] = [
        0.999_999_999_999_809_9,
        676.520_368_121_885_1,
        -1_259.139_216_722_402_8,
        771.323_428_777_653_1,
        -176.615_029_162_140_6,
        12.507_343_278_686_905,
        -0.138_571_095_265_720_12,
        9.984_369_578_019_572e-6,
        1.505_632_735_149_311_6e-7,
    ];
    if x < 0.5 {
        // Reflection.
        let pi = std::f64::consts::PI;
        return (pi / (pi * x).sin()).ln() - ln_gamma(1.0 - x);
    }
    let x = x - 1.0;
    let mut a = G[0];
    let t = x + 7.5;
    for (i, &g) in G.iter().enumerate().skip(1) {
        a += g / (x + i as f64);
    }
    0.5 * (2.0 * std::f64::consts::PI).ln() + (x + 0.5) * t.ln() - t + a.ln()
}

/// Continued fraction of the incomplete beta function (modified Lentz).
fn beta_cf(a: f64, b: f64, x: f64) -> f64 {
    const TINY: f64 = 1e-300;
    let (qab, qap, qam) = (a + b, a + 1.0, a - 1.0);
    let mut c = 1.0;
    let mut d = 1.0 - qab * x / qap;
    if d.abs() < TINY {
        d = TINY;
    }
    d = 1.0 / d;
    let mut h = d;
    for m in 1..10_000 {
        let m = m as f64;
        let m2 = 2.0 * m;
        let aa = m * (b - m) * x / ((qam + m2) * (a + m2));
        d = 1.0 + aa * d;
        d = if d.abs() < TINY { TINY } else { d };
        c = 1.0 + aa / c;
        c = if c.abs() < TINY { TINY } else { c };
        d = 1.0 / d;
        h *= d * c;
        let aa = -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2));
        d = 1.0 + aa * d;
        d = if d.abs() < TINY { TINY } else { d };
        c = 1.0 + aa / c;
        c = if c.abs() < TINY { TINY } else { c };
        d = 1.0 / d;
        let del = d * c;
        h *= del;
        if (del - 1.0).abs() < 1e-16 {
            break;
        }
    }
    h
}

/// The beta distribution's CDF (`scipy.stats.beta.cdf`).
pub fn beta_cdf(x: f64, a: f64, b: f64) -> f64 {
    if x <= 0.0 {
        return 0.0;
    }
    if x >= 1.0 {
        return 1.0;
    }
    let ln_front = ln_gamma(a + b) - ln_gamma(a) - ln_gamma(b) + a * x.ln() + b * (1.0 - x).ln();
    if x < (a + 1.0) / (a + b + 2.0) {
        ln_front.exp() * beta_cf(a, b, x) / a
    } else {
        1.0 - ln_front.exp() * beta_cf(b, a, 1.0 - x) / b
    }
}

/// Everything pYIN derives from its parameters once per call.
pub struct PyinModel {
    pub n_pitch_bins: usize,
    n_bins_per_semitone: usize,
    fmin: f64,
    sr: f64,
    min_period: usize,
    /// `thresholds[1..]` of `np.linspace(0, 1, n_thresholds + 1)`.
    upper: Vec<f64>,
    beta_probs: Vec<f64>,
    /// `exp(-lambda k)` and Boltzmann's normaliser per trough count.
    decay: Vec<f64>,
    norm: Vec<f64>,
    no_trough_prob: f64,
    /// Transition bands per target bin: sources `lo[q]..hi[q]`, log-probabilities (same voicing,
    /// other voicing) at `offset[q]..`.
    lo: Vec<usize>,
    hi: Vec<usize>,
    offset: Vec<usize>,
    lt_same: Vec<f64>,
    lt_cross: Vec<f64>,
    max_same: Vec<f64>,
    max_cross: Vec<f64>,
    pub freqs: Vec<f64>,
}

/// `scipy.signal.windows.triang(m)` (symmetric).
fn triang(m: usize) -> Vec<f64> {
    let half: Vec<f64> = (1..=m.div_ceil(2))
        .map(|k| {
            if m.is_multiple_of(2) {
                (2.0 * k as f64 - 1.0) / m as f64
            } else {
                2.0 * k as f64 / (m as f64 + 1.0)
            }
        })
        .collect();
    let mut w = half.clone();
    if m.is_multiple_of(2) {
        w.extend(half.iter().rev());
    } else {
        w.extend(half.iter().rev().skip(1));
    }
    w
}

impl PyinModel {
    pub fn new(yp: &YinParams, p: &PyinParams, n_lags: usize, min_period: usize) -> Result<PyinModel> {
        positive("n_thresholds", p.n_thresholds)?;
        if p.n_thresholds > MAX_THRESHOLDS {
            fail!(
                "n_thresholds={} is too large (at most {MAX_THRESHOLDS})",
                p.n_thresholds
            );
        }
        let (a, b) = p.beta_parameters;
        if !(a.is_finite() && a > 0.0 && b.is_finite() && b > 0.0) {
            fail!("beta_parameters=({a}, {b}) must be positive finite numbers");
        }
        let lambda = p.boltzmann_parameter;
        if !(lambda.is_finite() && lambda > 0.0) {
            fail!("boltzmann_parameter={lambda} must be a positive finite number");
        }
        if !(p.resolution > 0.0 && p.resolution < 1.0) {
            fail!("resolution={} must be in (0, 1)", p.resolution);
        }
        if !(p.max_transition_rate.is_finite() && p.max_transition_rate > 0.0) {
            fail!(
                "max_transition_rate={} must be a positive finite number",
                p.max_transition_rate
            );
        }
        if !(p.switch_prob > 0.0 && p.switch_prob < 1.0) {
            fail!("switch_prob={} must be in (0, 1)", p.switch_prob);
        }
        if !(p.no_trough_prob > 0.0 && p.no_trough_prob < 1.0) {
            fail!("no_trough_prob={} must be in (0, 1)", p.no_trough_prob);
        }
        let nbps = (1.0 / p.resolution).ceil();
        let n_bins_f = (12.0 * nbps * (yp.fmax / yp.fmin).log2()).floor() + 1.0;
        // librosa keeps states in uint16.
        if n_bins_f * 2.0 > u16::MAX as f64 {
            fail!("resolution={} gives {n_bins_f} pitch bins for fmin={}, fmax={}: at most {} (2 states per bin in 16 bits)",
                p.resolution, yp.fmin, yp.fmax, u16::MAX / 2);
        }
        let (n, nbps) = (n_bins_f as usize, nbps as usize);
        let max_semitones = (p.max_transition_rate * 12.0 * yp.hop() as f64 / yp.sr).round_ties_even();
        let width_f = max_semitones * nbps as f64 + 1.0;
        if width_f > n as f64 {
            fail!("max_transition_rate={} allows a pitch transition of {width_f} bins per frame, more than the {n} pitch bins (librosa's transition_local cannot build it)",
                p.max_transition_rate);
        }
        let w = width_f as usize;

        let nt = p.n_thresholds;
        let thresholds: Vec<f64> = (0..=nt).map(|i| linspace_at(i, nt)).collect();
        let cdf: Vec<f64> = thresholds.iter().map(|&x| beta_cdf(x, a, b)).collect();
        let beta_probs = cdf.windows(2).map(|c| c[1] - c[0]).collect();
        let decay = (0..=n_lags).map(|k| (-lambda * k as f64).exp()).collect();
        let e1 = 1.0 - (-lambda).exp();
        let norm = (0..=n_lags).map(|m| e1 / (1.0 - (-lambda * m as f64).exp())).collect();

        // Transition rows as librosa builds them, normalised with numpy's summation.
        let win = triang(w);
        let lpad = (n - w) / 2;
        let mut padded = vec![0.0; n];
        padded[lpad..lpad + w].copy_from_slice(&win);
        let half = w / 2;
        let stay = 1.0 - p.switch_prob;
        let switch = 1.0 - stay;
        let mut rows: Vec<(usize, Vec<f64>)> = Vec::with_capacity(n);
        let mut row = vec![0.0; n];
        for i in 0..n {
            let (lo, hi) = (i.saturating_sub(half), (i + half + 1).min(n));
            row.iter_mut().for_each(|v| *v = 0.0);
            let shift = n / 2 + i + 1;
            for (c, v) in row.iter_mut().enumerate().take(hi).skip(lo) {
                *v = padded[(c + n - shift % n) % n];
            }
            let s = pairwise_sum(&row);
            rows.push((lo, row[lo..hi].iter().map(|v| v / s).collect()));
        }
        let (mut lo_v, mut hi_v, mut offset) = (Vec::with_capacity(n), Vec::with_capacity(n), Vec::with_capacity(n));
        let (mut lt_same, mut lt_cross, mut max_same, mut max_cross) = (vec![], vec![], vec![], vec![]);
        for q in 0..n {
            let (lo, hi) = (q.saturating_sub(half), (q + half + 1).min(n));
            lo_v.push(lo);
            hi_v.push(hi);
            offset.push(lt_same.len());
            let (mut ms, mut mc) = (f64::NEG_INFINITY, f64::NEG_INFINITY);
            for (rlo, r) in &rows[lo..hi] {
                let t = if q >= *rlo && q - rlo < r.len() {
                    r[q - rlo]
                } else {
                    0.0
                };
                let (s, c) = (
                    (stay * t + f64::MIN_POSITIVE).ln(),
                    (switch * t + f64::MIN_POSITIVE).ln(),
                );
                ms = ms.max(s);
                mc = mc.max(c);
                lt_same.push(s);
                lt_cross.push(c);
            }
            max_same.push(ms);
            max_cross.push(mc);
        }
        let step = (12 * nbps) as f64;
        let freqs = (0..n).map(|k| yp.fmin * 2f64.powf(k as f64 / step)).collect();
        Ok(PyinModel {
            n_pitch_bins: n,
            n_bins_per_semitone: nbps,
            fmin: yp.fmin,
            sr: yp.sr,
            min_period,
            upper: thresholds[1..].to_vec(),
            beta_probs,
            decay,
            norm,
            no_trough_prob: p.no_trough_prob,
            lo: lo_v,
            hi: hi_v,
            offset,
            lt_same,
            lt_cross,
            max_same,
            max_cross,
            freqs,
        })
    }

    /// Pitch candidates `(bin, probability)` of the frame the kernel last analysed, in
    /// increasing bin order, and the frame's voiced probability. `scratch` is reused.
    pub fn candidates(&self, k: &Yin, scratch: &mut FrameScratch, out: &mut Vec<(usize, f64)>) -> f64 {
        let x = k.cmndf();
        let s = scratch;
        s.troughs.clear();
        s.troughs.extend((0..x.len()).filter(|&i| is_trough(x, i)));
        out.clear();
        if s.troughs.is_empty() {
            return 0.0;
        }
        let nt = self.upper.len();
        // j0: the first threshold (of thresholds[1..]) that the trough is below.
        s.first.clear();
        s.first
            .extend(s.troughs.iter().map(|&i| self.upper.partition_point(|&t| t <= x[i])));
        // Troughs below each threshold.
        s.count.clear();
        s.count.resize(nt + 1, 0);
        for &j in &s.first {
            s.count[j] += 1;
        }
        let mut acc = 0;
        for c in s.count.iter_mut() {
            acc += *c;
            *c = acc;
        }
        s.pos.clear();
        s.pos.resize(nt, 0);
        s.probs.clear();
        for &j0 in &s.first {
            let mut p = 0.0;
            for j in j0..nt {
                p += self.norm[s.count[j]] * self.decay[s.pos[j]] * self.beta_probs[j];
                s.pos[j] += 1;
            }
            s.probs.push(p);
        }
        // The global minimum takes the mass of the thresholds no trough is below.
        let g = (0..s.troughs.len()).fold(0, |g, t| if x[s.troughs[t]] < x[s.troughs[g]] { t } else { g });
        s.probs[g] += self.no_trough_prob * pairwise_sum(&self.beta_probs[..s.first[g]]);

        let n = self.n_pitch_bins;
        let step = (12 * self.n_bins_per_semitone) as f64;
        // Periods grow with the trough index, so bins fall: walk backwards for increasing bins.
        // A later trough (larger period) overwrites an earlier one in the same bin, as numpy's
        // fancy assignment does.
        for t in (0..s.troughs.len()).rev() {
            let p = s.probs[t];
            if p == 0.0 {
                continue;
            }
            let period = k.period_at(s.troughs[t]);
            let f0 = self.sr / period;
            let bin = (step * (f0 / self.fmin).log2()).round_ties_even().clamp(0.0, n as f64) as usize;
            if bin >= n {
                continue;
            }
            match out.last_mut() {
                Some(last) if last.0 == bin => {}
                _ => out.push((bin, p)),
            }
        }
        let vp = out.iter().fold(0.0, |s, c| s + c.1);
        debug_assert!(self.min_period == k.min_period);
        vp.clamp(0.0, 1.0)
    }
}

/// `np.linspace(0, 1, n + 1)[i]`, as numpy computes it.
fn linspace_at(i: usize, n: usize) -> f64 {
    if i == n {
        return 1.0;
    }
    let step = 1.0 / n as f64;
    i as f64 * step
}

/// Per-frame working memory of [`PyinModel::candidates`].
#[derive(Default)]
pub struct FrameScratch {
    troughs: Vec<usize>,
    first: Vec<usize>,
    count: Vec<usize>,
    pos: Vec<usize>,
    probs: Vec<f64>,
}

/// Window maxima `out[q] = max(v[lo[q]..hi[q]])` for windows whose ends never move back.
fn window_max(v: &[f64], lo: &[usize], hi: &[usize], out: &mut [f64], dq: &mut VecDeque<usize>) {
    dq.clear();
    let mut next = 0;
    for q in 0..lo.len() {
        while next < hi[q] {
            while dq.back().is_some_and(|&b| v[b] <= v[next]) {
                dq.pop_back();
            }
            dq.push_back(next);
            next += 1;
        }
        while dq.front().is_some_and(|&f| f < lo[q]) {
            dq.pop_front();
        }
        out[q] = dq.front().map_or(f64::NEG_INFINITY, |&f| v[f]);
    }
}

/// The larger of two values (`maxpd`'s rule; the Viterbi's values are never NaN).
#[inline(always)]
fn larger(a: f64, b: f64) -> f64 {
    if a > b {
        a
    } else {
        b
    }
}

/// `max(prev[i] + lt[i])`: the largest sum of the dense product over one band of sources. Each
/// sum is the dense product's own (one rounding) and taking a maximum rounds nothing, so any
/// order of comparison gives the same value bit for bit: eight running maxima, which the
/// compiler keeps in vector registers.
#[inline(always)]
fn band_max(prev: &[f64], lt: &[f64]) -> f64 {
    assert_eq!(prev.len(), lt.len());
    let mut acc = [f64::NEG_INFINITY; 8];
    let (p8, l8) = (prev.chunks_exact(8), lt.chunks_exact(8));
    let mut m = p8
        .remainder()
        .iter()
        .zip(l8.remainder())
        .fold(f64::NEG_INFINITY, |m, (p, l)| larger(m, p + l));
    for (p, l) in p8.zip(l8) {
        for i in 0..8 {
            acc[i] = larger(acc[i], p[i] + l[i]);
        }
    }
    for a in acc {
        m = larger(m, a);
    }
    m
}

/// [`band_max`] of one band of sources under two rows of log-transitions (into the voiced and
/// the unvoiced target of a bin): each previous value is loaded once for both.
#[inline(always)]
fn band_max2(prev: &[f64], lt_a: &[f64], lt_b: &[f64]) -> (f64, f64) {
    assert!(prev.len() == lt_a.len() && prev.len() == lt_b.len());
    let (mut acc_a, mut acc_b) = ([f64::NEG_INFINITY; 8], [f64::NEG_INFINITY; 8]);
    let (p8, a8, b8) = (prev.chunks_exact(8), lt_a.chunks_exact(8), lt_b.chunks_exact(8));
    let (mut ma, mut mb) = (f64::NEG_INFINITY, f64::NEG_INFINITY);
    for ((p, a), b) in p8.remainder().iter().zip(a8.remainder()).zip(b8.remainder()) {
        ma = larger(ma, p + a);
        mb = larger(mb, p + b);
    }
    for ((p, a), b) in p8.zip(a8).zip(b8) {
        for i in 0..8 {
            acc_a[i] = larger(acc_a[i], p[i] + a[i]);
            acc_b[i] = larger(acc_b[i], p[i] + b[i]);
        }
    }
    for i in 0..8 {
        ma = larger(ma, acc_a[i]);
        mb = larger(mb, acc_b[i]);
    }
    (ma, mb)
}

/// Working memory of [`forward_step`].
struct StepScratch {
    wmax_v: Vec<f64>,
    dq: VecDeque<usize>,
}

/// One frame of the forward pass: `cur[j] = obs[j] + max_k(prev[k] + log_trans[k, j])`,
/// librosa's `value[t]` bit for bit (see [`viterbi`] for why no argmax is needed here).
///
/// Per target the maximum is the larger of the two in-band maxima (voiced and unvoiced sources)
/// and the out-of-band one. Every out-of-band entry is `ln(tiny)`, so the out-of-band maximum is
/// the frame's largest value plus `ln(tiny)` when that state is out of band; when it is in band,
/// its own in-band sum (`ln(tiny)` at least) is no smaller, so `max(prev) + ln(tiny)` can stand
/// for the out-of-band candidate in every column. Per pitch bin, the unvoiced sources' band is
/// summed for the voiced and the unvoiced target together; the voiced sources' band only for a
/// target where its upper bound (the window maximum of the voiced values plus the band's largest
/// log-transition; rounding is monotone, so no sum exceeds it) is above the best so far, since a
/// band that cannot exceed the best cannot change the maximum. In pYIN most voiced previous
/// values are `ln(tiny)` below the rest (only the candidates' bins are not), so most voiced
/// bands are skipped.
#[inline(always)]
fn forward_step(m: &PyinModel, prev: &[f64], obs: &[f64], cur: &mut [f64], w: &mut StepScratch) {
    let n = m.n_pitch_bins;
    let out_band = prev.iter().fold(f64::NEG_INFINITY, |a, &b| larger(a, b)) + LN_TINY;
    let (prev_v, prev_u) = prev.split_at(n);
    window_max(prev_v, &m.lo, &m.hi, &mut w.wmax_v, &mut w.dq);
    for q in 0..n {
        let (lo, hi, off) = (m.lo[q], m.hi[q], m.offset[q]);
        let (same, cross) = (&m.lt_same[off..off + hi - lo], &m.lt_cross[off..off + hi - lo]);
        // From unvoiced sources: cross into the voiced target, same into the unvoiced one.
        let (from_u_v, from_u_u) = band_max2(&prev_u[lo..hi], cross, same);
        let (mut best_v, mut best_u) = (larger(out_band, from_u_v), larger(out_band, from_u_u));
        let pv = &prev_v[lo..hi];
        let (open_v, open_u) = (
            w.wmax_v[q] + m.max_same[q] > best_v,
            w.wmax_v[q] + m.max_cross[q] > best_u,
        );
        match (open_v, open_u) {
            (true, true) => {
                let (a, b) = band_max2(pv, same, cross);
                (best_v, best_u) = (larger(best_v, a), larger(best_u, b));
            }
            (true, false) => best_v = larger(best_v, band_max(pv, same)),
            (false, true) => best_u = larger(best_u, band_max(pv, cross)),
            (false, false) => {}
        }
        cur[q] = obs[q] + best_v;
        cur[n + q] = obs[n + q] + best_u;
    }
}

/// [`forward_step`] compiled for AVX2 (additions and maxima only, so the same results).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn forward_step_avx2(m: &PyinModel, prev: &[f64], obs: &[f64], cur: &mut [f64], w: &mut StepScratch) {
    forward_step(m, prev, obs, cur, w)
}

/// The dense product's argmax for target `j` over the previous frame's values `prev`: the first
/// source on ties, as `np.argmax` in librosa's `_viterbi`. Dense (every source, out-of-band ones
/// at `ln(tiny)`), for the one state per frame that the backtrace visits.
fn dense_argmax(m: &PyinModel, prev: &[f64], j: usize) -> usize {
    let n = m.n_pitch_bins;
    let q = j % n;
    let (lo, hi, off) = (m.lo[q], m.hi[q], m.offset[q]);
    let (mut best, mut arg) = (f64::NEG_INFINITY, 0);
    for (b, block) in prev.chunks_exact(n).enumerate() {
        let table = if b == j / n { &m.lt_same } else { &m.lt_cross };
        for (bin, &p) in block.iter().enumerate() {
            let lt = if (lo..hi).contains(&bin) {
                table[off + bin - lo]
            } else {
                LN_TINY
            };
            let s = p + lt;
            if s > best {
                (best, arg) = (s, b * n + bin);
            }
        }
    }
    arg
}

/// Viterbi over the pYIN HMM: `logp(t, out)` fills frame `t`'s `2 n` log observation
/// probabilities. Returns the state sequence, librosa's `_viterbi` state for state.
///
/// librosa keeps, per frame and state, the value `value[t, j]` (the best path's log-probability)
/// and the pointer `ptr[t, j]` (its argmax, first source on ties), then follows the pointers
/// back from the last frame's argmax. Only the pointers on that path are ever read, and each is
/// a function of `value[t - 1]` and `j` alone, so this keeps every frame's values (the maxima,
/// whose order of comparison does not matter: see [`forward_step`]) and takes the argmax of the
/// one state per frame on the way back ([`dense_argmax`]): the same states, with no argmax (nor
/// tie rule) in the forward pass.
pub fn viterbi(m: &PyinModel, n_frames: usize, logp: impl FnMut(usize, &mut [f64])) -> Vec<u16> {
    backtrace(m, &forward(m, n_frames, logp))
}

/// The forward pass: every frame's values (`n_frames` rows of `2 n`), librosa's `value`.
fn forward(m: &PyinModel, n_frames: usize, mut logp: impl FnMut(usize, &mut [f64])) -> Vec<f64> {
    let n = m.n_pitch_bins;
    let ns = 2 * n;
    let mut obs = vec![0.0; ns];
    let mut values = vec![0.0; n_frames * ns];
    let init = (1.0 / ns as f64 + f64::MIN_POSITIVE).ln();
    logp(0, &mut obs);
    for (v, &o) in values.iter_mut().zip(&obs) {
        *v = o + init;
    }
    let mut w = StepScratch {
        wmax_v: vec![0.0; n],
        dq: VecDeque::new(),
    };
    #[cfg(target_arch = "x86_64")]
    let avx2 = std::is_x86_feature_detected!("avx2");
    for t in 1..n_frames {
        logp(t, &mut obs);
        let (done, rest) = values.split_at_mut(t * ns);
        let (prev, cur) = (&done[(t - 1) * ns..], &mut rest[..ns]);
        #[cfg(target_arch = "x86_64")]
        if avx2 {
            // SAFETY: the CPU supports AVX2 (checked above).
            unsafe { forward_step_avx2(m, prev, &obs, cur, &mut w) };
            continue;
        }
        forward_step(m, prev, &obs, cur, &mut w);
    }
    values
}

/// The states from the last frame's argmax back, each the [`dense_argmax`] of the next.
fn backtrace(m: &PyinModel, values: &[f64]) -> Vec<u16> {
    let ns = 2 * m.n_pitch_bins;
    let n_frames = values.len() / ns;
    let frame = |t: usize| &values[t * ns..(t + 1) * ns];
    let mut states = vec![0u16; n_frames];
    let last = frame(n_frames - 1);
    states[n_frames - 1] = (0..ns).fold(0, |g, k| if last[k] > last[g] { k } else { g }) as u16;
    for t in (1..n_frames).rev() {
        states[t - 1] = dense_argmax(m, frame(t - 1), states[t] as usize) as u16;
    }
    states
}

/// Models kept by [`cached_model`].
const MODEL_CACHE: usize = 4;

/// [`PyinModel::new`], cached per parameter set (the last [`MODEL_CACHE`] sets), as FFT plans
/// are: building the transition tables takes a few milliseconds, longer than pYIN on a second of
/// audio.
fn cached_model(yp: &YinParams, pp: &PyinParams, n_lags: usize, min_period: usize) -> Result<Arc<PyinModel>> {
    type Entry = (Vec<u64>, Arc<PyinModel>);
    static CACHE: Mutex<Vec<Entry>> = Mutex::new(Vec::new());
    let (a, b) = pp.beta_parameters;
    let floats = [
        yp.sr,
        yp.fmin,
        yp.fmax,
        a,
        b,
        pp.boltzmann_parameter,
        pp.resolution,
        pp.max_transition_rate,
        pp.switch_prob,
        pp.no_trough_prob,
    ];
    let sizes = [yp.hop(), pp.n_thresholds, n_lags, min_period];
    let key: Vec<u64> = floats
        .iter()
        .map(|v| v.to_bits())
        .chain(sizes.iter().map(|&v| v as u64))
        .collect();
    let mut cache = CACHE.lock().unwrap_or_else(|e| e.into_inner());
    if let Some((_, m)) = cache.iter().find(|(k, _)| *k == key) {
        return Ok(m.clone());
    }
    let model = Arc::new(PyinModel::new(yp, pp, n_lags, min_period)?);
    if cache.len() == MODEL_CACHE {
        cache.remove(0);
    }
    cache.push((key, model.clone()));
    Ok(model)
}

/// A frame's log observation probabilities (`2 n`) from its candidates and voiced probability:
/// `ln(p + tiny)` at the candidates' voiced bins, `ln(tiny)` at the other voiced bins and
/// `ln((1 - vp) / n + tiny)` at every unvoiced bin.
fn observe(cands: &[(usize, f64)], vp: f64, obs: &mut [f64]) {
    let n = obs.len() / 2;
    obs[..n].iter_mut().for_each(|o| *o = LN_TINY);
    for &(bin, p) in cands {
        obs[bin] = (p + f64::MIN_POSITIVE).ln();
    }
    let u = ((1.0 - vp) / n as f64 + f64::MIN_POSITIVE).ln();
    obs[n..].iter_mut().for_each(|o| *o = u);
}

/// `librosa.pyin`: f0, voiced flag and voiced probability of every frame.
pub fn pyin(y: &[f32], yp: &YinParams, pp: &PyinParams) -> Result<Pyin> {
    let mut kernel = Yin::new(yp)?;
    // librosa's order of checks: audio and framing, then the HMM's parameters.
    let (padded, n_frames) = framed_signal(y, yp)?;
    let model = cached_model(yp, pp, kernel.n_lags(), kernel.min_period)?;
    let n = model.n_pitch_bins;
    // The decoder keeps every frame's values (8 bytes per state): at most 2 GiB.
    if n_frames.saturating_mul(2 * n) > 1 << 28 {
        fail!(
            "{n_frames} frames x {} states is too large for the Viterbi decoder",
            2 * n
        );
    }
    let mut frames = FrameAnalyser::new(&kernel, &padded, yp.hop());
    let mut scratch = FrameScratch::default();
    let mut cands = Vec::new();
    let mut voiced_prob = vec![0.0; n_frames];
    let states = viterbi(&model, n_frames, |t, obs| {
        frames.analyse(&mut kernel, t);
        let vp = model.candidates(&kernel, &mut scratch, &mut cands);
        voiced_prob[t] = vp;
        observe(&cands, vp, obs);
    });
    let voiced_flag: Vec<bool> = states.iter().map(|&s| (s as usize) < n).collect();
    let f0 = states
        .iter()
        .zip(&voiced_flag)
        .map(|(&s, &v)| {
            if v {
                model.freqs[s as usize % n]
            } else {
                pp.fill_na.unwrap_or(model.freqs[s as usize % n])
            }
        })
        .collect();
    Ok(Pyin {
        f0,
        voiced_flag,
        voiced_prob,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pairwise_sum_matches_numpy_rules() {
        // np.sum([0.1] * 10) and a sum where order matters (1e16 + 1 + ... ).
        assert_eq!(pairwise_sum(&[0.1; 10]), 1.0);
        assert_eq!(pairwise_sum(&[]), 0.0);
        let v: Vec<f64> = (0..300).map(|i| (i as f64 * 0.37).sin()).collect();
        let naive: f64 = v.iter().sum();
        assert!((pairwise_sum(&v) - naive).abs() < 1e-12);
    }

    #[test]
    fn beta_cdf_known_values() {
        // scipy.stats.beta.cdf
        assert!((beta_cdf(0.1, 2.0, 18.0) - 0.5797350211684026).abs() < 1e-14);
        assert!((beta_cdf(0.5, 2.0, 18.0) - 0.9999618530273438).abs() < 1e-14);
        assert!((beta_cdf(0.3, 0.5, 0.5) - 0.36901011956554536).abs() < 1e-13);
        assert!((beta_cdf(0.5, 3.0, 3.0) - 0.5).abs() < 1e-15);
        assert_eq!(beta_cdf(0.0, 2.0, 18.0), 0.0);
        assert_eq!(beta_cdf(1.0, 2.0, 18.0), 1.0);
    }

    #[test]
    fn triang_matches_scipy() {
        assert_eq!(triang(1), vec![1.0]);
        assert_eq!(triang(4), vec![0.25, 0.75, 0.75, 0.25]);
        assert_eq!(triang(5), vec![1.0 / 3.0, 2.0 / 3.0, 1.0, 2.0 / 3.0, 1.0 / 3.0]);
    }

    /// The dense Viterbi (librosa's `_viterbi`) on the model's full transition matrix: the
    /// states and every frame's values.
    fn dense_viterbi(m: &PyinModel, obs: &[Vec<f64>]) -> (Vec<u16>, Vec<f64>) {
        let n = m.n_pitch_bins;
        let ns = 2 * n;
        let mut lt = vec![LN_TINY; ns * ns];
        for q in 0..n {
            for k in m.lo[q]..m.hi[q] {
                let i = m.offset[q] + k - m.lo[q];
                for (a, b) in [(0, 0), (1, 1)] {
                    lt[(a * n + k) * ns + b * n + q] = m.lt_same[i];
                }
                for (a, b) in [(0, 1), (1, 0)] {
                    lt[(a * n + k) * ns + b * n + q] = m.lt_cross[i];
                }
            }
        }
        let init = (1.0 / ns as f64 + f64::MIN_POSITIVE).ln();
        let mut v: Vec<f64> = obs[0].iter().map(|o| o + init).collect();
        let mut values = v.clone();
        let mut ptr = vec![vec![0u16; ns]; obs.len()];
        for t in 1..obs.len() {
            let mut nv = vec![0.0; ns];
            for j in 0..ns {
                let mut best = 0;
                for k in 0..ns {
                    if v[k] + lt[k * ns + j] > v[best] + lt[best * ns + j] {
                        best = k;
                    }
                }
                ptr[t][j] = best as u16;
                // librosa: log_prob[t, j] + trans_out[j, ptr[t][j]].
                nv[j] = obs[t][j] + (v[best] + lt[best * ns + j]);
            }
            v = nv;
            values.extend_from_slice(&v);
        }
        let mut s = vec![0u16; obs.len()];
        s[obs.len() - 1] = (0..ns).fold(0, |g, k| if v[k] > v[g] { k } else { g }) as u16;
        for t in (0..obs.len() - 1).rev() {
            s[t] = ptr[t + 1][s[t + 1] as usize];
        }
        (s, values)
    }

    /// The decoder's values (bit for bit) and states against the dense Viterbi's.
    fn assert_dense(m: &PyinModel, obs: &[Vec<f64>], what: &str) {
        let values = forward(m, obs.len(), |t, out| out.copy_from_slice(&obs[t]));
        let (states, dense_values) = dense_viterbi(m, obs);
        let bits = |v: &[f64]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
        assert!(bits(&values) == bits(&dense_values), "{what}: values differ");
        assert_eq!(backtrace(m, &values), states, "{what}: states differ");
        assert_eq!(viterbi(m, obs.len(), |t, out| out.copy_from_slice(&obs[t])), states);
    }

    #[test]
    fn viterbi_equals_dense() {
        // Coarse bins (few chunks per band) and 10-cent bins (many chunks to skip).
        for resolution in [0.5, 0.1] {
            let yp = YinParams {
                hop_length: Some(256),
                ..YinParams::new(8000.0, 100.0, 400.0)
            };
            let pp = PyinParams {
                resolution,
                ..PyinParams::default()
            };
            let m = PyinModel::new(&yp, &pp, 60, 20).unwrap();
            let n = m.n_pitch_bins;
            // Sparse voiced candidates (some near the previous frame's), unvoiced stretches,
            // exact ties (uniform frames) and fully voiced frames (every unvoiced observation
            // `ln(tiny)`, so that out-of-band sources win in the next frame).
            let mut seed = 12345u64;
            let mut rnd = || {
                seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                (seed >> 11) as f64 / (1u64 << 53) as f64
            };
            let mut track = n as f64 / 2.0;
            let obs: Vec<Vec<f64>> = (0..60)
                .map(|t| {
                    let mut o = vec![LN_TINY; 2 * n];
                    let mut vp = 0.0;
                    if (t / 10) % 3 != 2 {
                        track = (track + (rnd() - 0.5) * 8.0).clamp(0.0, n as f64 - 1.0);
                        for c in 0..(t % 4) {
                            let p = 0.3 * rnd();
                            let bin = if c == 0 { track } else { rnd() * n as f64 };
                            o[bin as usize] = (p + f64::MIN_POSITIVE).ln();
                            vp += p;
                        }
                    }
                    let u = if t % 13 == 6 {
                        LN_TINY
                    } else {
                        ((1.0 - vp) / n as f64 + f64::MIN_POSITIVE).ln()
                    };
                    o[n..].iter_mut().for_each(|x| *x = u);
                    o
                })
                .collect();
            assert_dense(&m, &obs, &format!("resolution {resolution}"));
        }
    }

    #[test]
    fn viterbi_equals_dense_on_a_voice_like_signal() {
        // pYIN's own observations of a gliding harmonic tone with vibrato, gaps of silence and
        // of noise (voiced tracks, jumps, unvoiced stretches).
        let sr = 8000.0;
        let yp = YinParams::new(sr, 80.0, 500.0);
        let pp = PyinParams::default();
        let mut seed = 99u64;
        let mut noise = || {
            seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            (seed >> 11) as f64 / (1u64 << 53) as f64 - 0.5
        };
        let mut phase = 0.0;
        let y: Vec<f32> = (0..24000)
            .map(|i| {
                let t = i as f64 / sr;
                let f0 = 120.0 * 2f64.powf(t / 2.0) * (1.0 + 0.02 * (2.0 * std::f64::consts::PI * 5.5 * t).sin());
                phase += 2.0 * std::f64::consts::PI * f0 / sr;
                let voiced: f64 = (1..6).map(|h| (h as f64 * phase).sin() / h as f64).sum();
                (match (t * 2.5) as usize % 5 {
                    3 => 0.0,
                    4 => 0.3 * noise(),
                    _ => 0.3 * voiced + 0.01 * noise(),
                }) as f32
            })
            .collect();
        let mut kernel = Yin::new(&yp).unwrap();
        let (padded, n_frames) = framed_signal(&y, &yp).unwrap();
        let m = PyinModel::new(&yp, &pp, kernel.n_lags(), kernel.min_period).unwrap();
        let mut frames = FrameAnalyser::new(&kernel, &padded, yp.hop());
        let (mut scratch, mut cands) = (FrameScratch::default(), Vec::new());
        let obs: Vec<Vec<f64>> = (0..n_frames)
            .map(|t| {
                frames.analyse(&mut kernel, t);
                let vp = m.candidates(&kernel, &mut scratch, &mut cands);
                let mut o = vec![0.0; 2 * m.n_pitch_bins];
                observe(&cands, vp, &mut o);
                o
            })
            .collect();
        assert_dense(&m, &obs, "voice-like signal");
        let voiced = viterbi(&m, n_frames, |t, out| out.copy_from_slice(&obs[t]))
            .iter()
            .filter(|&&s| (s as usize) < m.n_pitch_bins)
            .count();
        assert!(
            voiced > n_frames / 3 && voiced < n_frames,
            "{voiced} of {n_frames} voiced"
        );
    }

    #[test]
    fn pyin_sine_is_voiced_at_its_pitch() {
        let sr = 16000.0;
        let y: Vec<f32> = (0..16000)
            .map(|i| (2.0 * std::f64::consts::PI * 220.0 * i as f64 / sr).sin() as f32 * 0.5)
            .collect();
        let out = pyin(&y, &YinParams::new(sr, 60.0, 1000.0), &PyinParams::default()).unwrap();
        let n = out.f0.len();
        for t in 3..n - 3 {
            assert!(
                out.voiced_flag[t] && (1200.0 * (out.f0[t] / 220.0).log2()).abs() < 10.0,
                "{t}: {}",
                out.f0[t]
            );
            assert!(out.voiced_prob[t] > 0.5);
        }
        let silent = pyin(&[0.0; 8000], &YinParams::new(sr, 60.0, 1000.0), &PyinParams::default()).unwrap();
        assert!(silent.voiced_flag.iter().all(|v| !v) && silent.f0.iter().all(|f| f.is_nan()));
    }

    #[test]
    fn bad_pyin_parameters_are_errors() {
        let yp = YinParams::new(16000.0, 60.0, 1000.0);
        for pp in [
            PyinParams {
                n_thresholds: 0,
                ..Default::default()
            },
            PyinParams {
                n_thresholds: usize::MAX,
                ..Default::default()
            },
            PyinParams {
                beta_parameters: (0.0, 1.0),
                ..Default::default()
            },
            PyinParams {
                boltzmann_parameter: f64::NAN,
                ..Default::default()
            },
            PyinParams {
                resolution: 1.0,
                ..Default::default()
            },
            PyinParams {
                resolution: 1e-9,
                ..Default::default()
            },
            PyinParams {
                switch_prob: 0.0,
                ..Default::default()
            },
            PyinParams {
                no_trough_prob: 1.5,
                ..Default::default()
            },
            PyinParams {
                max_transition_rate: 1e9,
                ..Default::default()
            },
        ] {
            assert!(pyin(&[0.0; 4000], &yp, &pp).is_err(), "{pp:?}");
        }
    }
}

//! Whole-signal functions: framing a signal for the extractor, and the librosa functions whose
//! result depends on the whole signal (`top_db` clipping, tuning estimation, contrast in dB).

use crate::chroma;
use crate::db::{check_top_db, clip_top_db, dct_block, power_to_db, DCT_ROWS};
use crate::error::{self, Result};
use crate::fail;
use crate::fft::{FrameFft, PowerFft};
use crate::mel::MelBank;
use crate::pad::{n_frames, PadMode};
use crate::pipeline::{Config, Extractor, Feature, Plan};
use crate::{limits, window};
use realfft::num_complex::Complex;

/// A row-major `(rows, cols)` float32 matrix: features × frames.
#[derive(Debug, Clone, PartialEq)]
pub struct Matrix {
    pub rows: usize,
    pub cols: usize,
    pub data: Vec<f32>,
}

impl Matrix {
    /// From `cols` frames of `rows` values each, stored frame after frame.
    pub fn from_frames(frames: &[f32], rows: usize, cols: usize) -> Matrix {
        let mut data = vec![0.0; rows * cols];
        for (t, frame) in frames.chunks_exact(rows.max(1)).enumerate().take(cols) {
            for (r, &v) in frame.iter().enumerate() {
                data[r * cols + t] = v;
            }
        }
        Matrix { rows, cols, data }
    }

    pub fn row(&self, r: usize) -> &[f32] {
        &self.data[r * self.cols..(r + 1) * self.cols]
    }

    /// Column `t` copied out.
    pub fn column(&self, t: usize) -> Vec<f32> {
        (0..self.rows).map(|r| self.data[r * self.cols + t]).collect()
    }
}

/// The frames of `y` as the STFT sees them: padded by `n_fft / 2` on both sides when `center`.
/// Frames that touch the padding are assembled in a scratch buffer; the rest borrow `y`.
pub struct Frames<'a> {
    y: &'a [f32],
    left: usize,
    n_fft: usize,
    hop: usize,
    mode: PadMode,
    pub count: usize,
    scratch: Vec<f32>,
}

impl<'a> Frames<'a> {
    pub fn new(y: &'a [f32], n_fft: usize, hop: usize, center: bool, mode: PadMode) -> Result<Frames<'a>> {
        error::audio("y", y)?;
        error::positive("n_fft", n_fft)?;
        limits::frame_length("n_fft", n_fft)?;
        error::positive("hop_length", hop)?;
        let left = if center { n_fft / 2 } else { 0 };
        if !center && n_fft > y.len() {
            fail!(
                "n_fft={n_fft} is too large for uncentered analysis of input signal of length={}",
                y.len()
            );
        }
        let count = n_frames(y.len() + 2 * left, n_fft, hop)?;
        Ok(Frames {
            y,
            left,
            n_fft,
            hop,
            mode,
            count,
            scratch: vec![0.0; n_fft],
        })
    }

    pub fn get(&mut self, t: usize) -> &[f32] {
        let (n, len) = (self.n_fft as isize, self.y.len() as isize);
        let lo = (t * self.hop) as isize - self.left as isize; // signal index of the frame's first sample
        if lo >= 0 && lo + n <= len {
            return &self.y[lo as usize..(lo + n) as usize];
        }
        // Copy the part inside the signal, pad the rest.
        let a = (-lo).clamp(0, n) as usize;
        let b = (len - lo).clamp(a as isize, n) as usize;
        self.scratch[a..b].copy_from_slice(&self.y[(lo + a as isize) as usize..(lo + b as isize) as usize]);
        let outside = (0..a).chain(b..self.n_fft);
        if self.mode == PadMode::Constant {
            outside.for_each(|k| self.scratch[k] = 0.0);
        } else {
            outside.for_each(|k| self.scratch[k] = self.mode.sample(self.y, lo + k as isize));
        }
        &self.scratch
    }
}

/// Features of every frame of `y`, shaped `(n_features, n_frames)`.
pub fn extract(y: &[f32], cfg: &Config) -> Result<Matrix> {
    extract_with(&mut Extractor::new(Plan::get(cfg)?), y)
}

/// `extract` with a reusable extractor (one per thread when many clips are processed).
pub fn extract_with(ex: &mut Extractor, y: &[f32]) -> Result<Matrix> {
    let out = frame_major(ex, y)?;
    let nf = ex.plan.n_features;
    Ok(Matrix::from_frames(&out, nf, out.len() / nf))
}

/// Features of every frame of `y`, frame after frame.
fn frame_major(ex: &mut Extractor, y: &[f32]) -> Result<Vec<f32>> {
    ex.reset();
    let plan = ex.plan.clone();
    let cfg = &plan.cfg;
    let mut frames = Frames::new(y, cfg.n_fft, cfg.hop_length, cfg.center, cfg.pad_mode)?;
    let nf = plan.n_features;
    let mut out = Vec::with_capacity(limits::output(nf, frames.count)?);
    for t in 0..frames.count {
        ex.push(frames.get(t), &mut out);
    }
    ex.finish(&mut out);
    Ok(out)
}

/// Features of precomputed columns `s` (`(n_bins, t)`). `cfg` has one spectral feature, and
/// `s` is what that feature reads: a magnitude spectrogram for centroid, bandwidth, rolloff,
/// flatness, flux and contrast; a power spectrogram for chroma and spectral entropy;
/// `|X|^power` for the mel spectrogram; a log-power mel spectrogram for MFCC.
pub fn from_spectrogram(s: &Matrix, cfg: &Config) -> Result<Matrix> {
    if let Some(i) = s.data.iter().position(|v| !v.is_finite()) {
        fail!("S is not finite everywhere (S.flat[{}]={})", i, s.data[i]);
    }
    let [feature] = cfg.features.as_slice() else {
        fail!("features: exactly one feature is computed from S");
    };
    if matches!(
        feature,
        Feature::Zcr { .. } | Feature::EnergyEntropy { .. } | Feature::Spectrogram { .. } | Feature::Voice(_)
    ) {
        fail!("features: {feature:?} is computed from audio, not from S");
    }
    let n_bins = cfg.n_fft / 2 + 1;
    let expected = if matches!(feature, Feature::Mfcc) {
        cfg.n_mels
    } else {
        n_bins
    };
    if s.rows != expected {
        fail!("S has {} rows; expected {expected}", s.rows);
    }
    if !matches!(feature, Feature::Mfcc) && s.data.iter().any(|&v| v < 0.0) {
        fail!("S must be non-negative (a magnitude or power spectrogram)");
    }
    let plan = Plan::get(cfg)?;
    let nf = plan.n_features;
    let mut out = vec![0.0; nf * s.cols];
    let mut col = vec![0.0; s.rows];
    let mut ex = Extractor::new(plan.clone());
    for (t, o) in out.chunks_exact_mut(nf).enumerate() {
        for (r, c) in col.iter_mut().enumerate() {
            *c = s.data[r * s.cols + t];
        }
        ex.column(&col, o);
    }
    Ok(Matrix::from_frames(&out, nf, s.cols))
}

/// MFCC with librosa's `top_db` rule (clip log-mel at its maximum minus `top_db`) when given.
pub fn mfcc(y: &[f32], cfg: &Config, top_db: Option<f64>) -> Result<Matrix> {
    let mfcc_cfg = Config {
        features: vec![Feature::Mfcc],
        ..cfg.clone()
    };
    let Some(top_db) = top_db else {
        return extract(y, &mfcc_cfg);
    };
    let (n_mels, n_mfcc) = (cfg.n_mels, cfg.n_mfcc);
    let mfcc_plan = Plan::get(&mfcc_cfg)?;
    // Clipped at `top_db` below the maximum, the float32 noise floor never shows.
    let single_precision = cfg.single_precision || top_db <= 100.0;
    let logmel_plan = Plan::get(&Config {
        features: vec![Feature::LogMel],
        single_precision,
        ..cfg.clone()
    })?;
    if single_precision && cfg.power == 2.0 {
        if let (Some(fft), Some(bank), Some(dct)) = (
            PowerFft::new(logmel_plan.window()),
            logmel_plan.mel_bank(),
            mfcc_plan.dct(),
        ) {
            return mfcc_blocked(
                y,
                &logmel_plan,
                fft,
                bank,
                (dct, mfcc_plan.dct_sums()),
                top_db,
                Vector::detect(),
            );
        }
    }
    let mut logmel = frame_major(&mut Extractor::new(logmel_plan), y)?;
    clip_top_db(&mut logmel, top_db)?;
    let cols = logmel.len() / n_mels;
    let mut out = vec![0.0; n_mfcc * cols];
    for (l, o) in logmel.chunks_exact(n_mels).zip(out.chunks_exact_mut(n_mfcc)) {
        mfcc_plan.mfcc_of(l, o);
    }
    Ok(Matrix::from_frames(&out, n_mfcc, cols))
}

/// Frames per block of the batch MFCC path.
const BLOCK: usize = 8;

/// `mfcc` with `top_db` on the float32 power transform, `BLOCK` frames at a time: the power
/// spectra of a block are stored frame-interleaved, so that the mel product, the dB step and
/// the DCT all vectorise across frames; the DCT (after the global `top_db` clip) writes the
/// output rows directly. Summation order differs from the per-frame path, not the arithmetic.
fn mfcc_blocked(
    y: &[f32],
    plan: &Plan,
    mut fft: PowerFft,
    bank: &MelBank,
    (dct, sums): (&[f32], &[f32]),
    top_db: f64,
    vector: Vector,
) -> Result<Matrix> {
    let cfg = &plan.cfg;
    let mut frames = Frames::new(y, cfg.n_fft, cfg.hop_length, cfg.center, cfg.pad_mode)?;
    check_top_db(top_db)?;
    let (n, n_mels, n_mfcc, n_bins) = (frames.count, cfg.n_mels, cfg.n_mfcc, cfg.n_fft / 2 + 1);
    let mut spec = vec![0f32; n_bins * BLOCK];
    let mut logmel = vec![0f32; n.div_ceil(BLOCK) * n_mels * BLOCK];
    let mut max = f32::NEG_INFINITY;
    for (b, lm) in logmel.chunks_exact_mut(n_mels * BLOCK).enumerate() {
        let (t0, width) = (b * BLOCK, BLOCK.min(n - b * BLOCK));
        for j in 0..width {
            fft.power_strided::<BLOCK>(frames.get(t0 + j), &mut spec[j..]);
        }
        // Frames past the end (last block) keep an earlier frame's spectrum: finite, never output.
        max = max.max(vector.log_mel(bank, &spec, lm, cfg.ref_db, cfg.amin, width));
    }
    let floor = max - top_db as f32;
    // The DCT runs on log-mel minus (about) the middle of its range, then adds that back
    // through the row sums: exact in exact arithmetic, and float32 sums of values within
    // +-top_db/2 lose far less than sums of dB values that may all lie far from 0.
    let centre = max - (top_db as f32 / 2.0).min(50.0);
    let rows = n_mfcc.next_multiple_of(DCT_ROWS);
    let mut coefs = vec![0f32; rows * BLOCK];
    let mut out = vec![0f32; n_mfcc * n];
    for (b, lm) in logmel.chunks_exact_mut(n_mels * BLOCK).enumerate() {
        let (t0, width) = (b * BLOCK, BLOCK.min(n - b * BLOCK));
        vector.clipped_dct(&dct[..rows * n_mels], n_mels, lm, (floor, centre), &mut coefs);
        for ((c, src), &sum) in coefs.chunks_exact(BLOCK).enumerate().zip(sums).take(n_mfcc) {
            let offset = centre * sum;
            out[c * n + t0..c * n + t0 + width]
                .iter_mut()
                .zip(src)
                .for_each(|(o, &v)| *o = v + offset);
        }
    }
    Ok(Matrix {
        rows: n_mfcc,
        cols: n,
        data: out,
    })
}

/// The block kernels of `mfcc_blocked`, compiled twice on x86-64: for the baseline and for
/// AVX2 with FMA, picked at run time. The FFT is outside them (the same code everywhere).
#[derive(Clone, Copy)]
enum Vector {
    Baseline,
    #[cfg(target_arch = "x86_64")]
    Avx2Fma,
}

/// Fused multiply-add is native in the baseline of this target.
const NATIVE_FMA: bool = cfg!(any(target_arch = "aarch64", target_feature = "fma"));

impl Vector {
    fn detect() -> Vector {
        #[cfg(target_arch = "x86_64")]
        if is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma") {
            return Vector::Avx2Fma;
        }
        Vector::Baseline
    }

    /// Mel product and dB of one block; returns the maximum over its first `width` frames.
    #[inline]
    fn log_mel(self, bank: &MelBank, spec: &[f32], lm: &mut [f32], ref_db: f64, amin: f64, width: usize) -> f32 {
        match self {
            // SAFETY: `detect` found AVX2 and FMA on this CPU.
            #[cfg(target_arch = "x86_64")]
            Vector::Avx2Fma => unsafe { log_mel_avx2(bank, spec, lm, ref_db, amin, width) },
            Vector::Baseline => log_mel::<NATIVE_FMA>(bank, spec, lm, ref_db, amin, width),
        }
    }

    /// Clips one log-mel block at `floor`, subtracts `centre` and writes its DCT to `coefs`.
    #[inline]
    fn clipped_dct(self, dct: &[f32], n_mels: usize, lm: &mut [f32], (floor, centre): (f32, f32), coefs: &mut [f32]) {
        match self {
            // SAFETY: `detect` found AVX2 and FMA on this CPU.
            #[cfg(target_arch = "x86_64")]
            Vector::Avx2Fma => unsafe { clipped_dct_avx2(dct, n_mels, lm, floor, centre, coefs) },
            Vector::Baseline => clipped_dct::<NATIVE_FMA>(dct, n_mels, lm, floor, centre, coefs),
        }
    }
}

#[inline(always)]
fn log_mel<const FMA: bool>(bank: &MelBank, spec: &[f32], lm: &mut [f32], ref_db: f64, amin: f64, width: usize) -> f32 {
    bank.apply_block::<BLOCK, FMA>(spec, lm);
    power_to_db(lm, ref_db, amin);
    // Per frame, across the block (so that it vectorises), then over the frames that exist.
    let mut lanes = [f32::NEG_INFINITY; BLOCK];
    for row in lm.chunks_exact(BLOCK) {
        for (m, &v) in lanes.iter_mut().zip(row) {
            *m = if v > *m { v } else { *m };
        }
    }
    lanes[..width].iter().fold(f32::NEG_INFINITY, |m, &v| m.max(v))
}

#[inline(always)]
fn clipped_dct<const FMA: bool>(
    dct: &[f32],
    n_mels: usize,
    lm: &mut [f32],
    floor: f32,
    centre: f32,
    coefs: &mut [f32],
) {
    lm.iter_mut()
        .for_each(|v| *v = (if *v > floor { *v } else { floor }) - centre);
    dct_block::<BLOCK, FMA>(dct, n_mels, lm, coefs);
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn log_mel_avx2(bank: &MelBank, spec: &[f32], lm: &mut [f32], ref_db: f64, amin: f64, width: usize) -> f32 {
    log_mel::<true>(bank, spec, lm, ref_db, amin, width)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn clipped_dct_avx2(dct: &[f32], n_mels: usize, lm: &mut [f32], floor: f32, centre: f32, coefs: &mut [f32]) {
    clipped_dct::<true>(dct, n_mels, lm, floor, centre, coefs)
}

/// `librosa.power_to_db` over a whole array.
pub fn db(x: &mut [f32], ref_value: f64, amin: f64, top_db: Option<f64>) -> Result<()> {
    crate::db::check_db_params(ref_value, amin)?;
    if let Some(i) = x.iter().position(|v| !v.is_finite()) {
        fail!("S is not finite everywhere (S.flat[{i}]={})", x[i]);
    }
    power_to_db(x, ref_value, amin);
    if let Some(t) = top_db {
        clip_top_db(x, t)?;
    }
    Ok(())
}

/// Spectral contrast in dB from the raw peaks and valleys (`(2 (n_bands + 1), t)`).
pub fn contrast_db(raw: &Matrix) -> Result<Matrix> {
    let bands = raw.rows / 2;
    let (mut peaks, mut valleys) = (
        raw.data[..bands * raw.cols].to_vec(),
        raw.data[bands * raw.cols..].to_vec(),
    );
    db(&mut peaks, 1.0, 1e-10, Some(80.0))?;
    db(&mut valleys, 1.0, 1e-10, Some(80.0))?;
    let data = peaks.iter().zip(&valleys).map(|(p, v)| p - v).collect();
    Ok(Matrix {
        rows: bands,
        cols: raw.cols,
        data,
    })
}

/// Tuning of `y` (`librosa.estimate_tuning`) from its float64 power spectrogram: the estimate is
/// the mode of a histogram, so it is taken before any rounding to float32.
pub fn estimate_tuning(y: &[f32], cfg: &Config, bins_per_octave: usize) -> Result<f64> {
    let win = window::padded(&cfg.window, cfg.win_length.unwrap_or(cfg.n_fft), cfg.n_fft)?;
    let mut frames = Frames::new(y, cfg.n_fft, cfg.hop_length, cfg.center, cfg.pad_mode)?;
    let mut fft = FrameFft::<f64>::new(&win);
    let columns = (0..frames.count).map(|t| {
        fft.transform(frames.get(t));
        fft.spectrum
            .iter()
            .map(|c| c.re * c.re + c.im * c.im)
            .collect::<Vec<f64>>()
    });
    Ok(chroma::estimate_tuning(columns, cfg.sr, cfg.n_fft, bins_per_octave))
}

/// The complex STFT, `(1 + n_fft/2, t)` row-major (`librosa.stft`).
pub fn stft(y: &[f32], cfg: &Config) -> Result<(usize, usize, Vec<Complex<f32>>)> {
    let win = window::padded(&cfg.window, cfg.win_length.unwrap_or(cfg.n_fft), cfg.n_fft)?;
    let mut frames = Frames::new(y, cfg.n_fft, cfg.hop_length, cfg.center, cfg.pad_mode)?;
    let mut fft = FrameFft::<f64>::new(&win);
    let (rows, cols) = (fft.n_bins(), frames.count);
    let mut out = vec![Complex::new(0.0, 0.0); limits::output(rows, cols)?];
    for t in 0..cols {
        fft.transform(frames.get(t));
        for (r, &c) in fft.spectrum.iter().enumerate() {
            out[r * cols + t] = Complex::new(c.re as f32, c.im as f32);
        }
    }
    Ok((rows, cols, out))
}

/// `librosa.util.frame`: `(frame_length, n_frames)`.
pub fn frame(y: &[f32], frame_length: usize, hop_length: usize) -> Result<Matrix> {
    error::positive("frame_length", frame_length)?;
    error::positive("hop_length", hop_length)?;
    error::audio("y", y)?;
    let cols = n_frames(y.len(), frame_length, hop_length)?;
    let mut data = vec![0.0; limits::output(frame_length, cols)?];
    for r in 0..frame_length {
        for t in 0..cols {
            data[r * cols + t] = y[t * hop_length + r];
        }
    }
    Ok(Matrix {
        rows: frame_length,
        cols,
        data,
    })
}

/// Runs only the real FFTs (float32, complex output; the transform `mfcc` with its default
/// `top_db` uses) over the frames `extract` would analyse; returns the frame count. The floor
/// `mfcc` is benchmarked against.
pub fn fft_floor(y: &[f32], n_fft: usize, hop_length: usize) -> Result<usize> {
    let mut frames = Frames::new(y, n_fft, hop_length, true, PadMode::Constant)?;
    let ones = vec![1.0; n_fft];
    let mut spectrum = vec![Complex::new(0.0, 0.0); n_fft / 2 + 1];
    match PowerFft::new(&ones) {
        Some(mut fft) => (0..frames.count).for_each(|t| fft.transform_raw(frames.get(t), &mut spectrum)),
        None => {
            let mut fft = FrameFft::<f32>::new(&ones);
            (0..frames.count).for_each(|t| fft.transform_raw(frames.get(t)));
        }
    }
    Ok(frames.count)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sine(n: usize, f: f64, sr: f64) -> Vec<f32> {
        (0..n)
            .map(|i| (2.0 * std::f64::consts::PI * f * i as f64 / sr).sin() as f32)
            .collect()
    }

    #[test]
    fn frame_counts_follow_librosa() {
        let y = sine(22050, 440.0, 22050.0);
        let m = extract(&y, &Config::default()).unwrap();
        assert_eq!((m.rows, m.cols), (20, 1 + 22050 / 512));
        let cfg = Config {
            center: false,
            ..Config::default()
        };
        assert_eq!(extract(&y, &cfg).unwrap().cols, 1 + (22050 - 2048) / 512);
        assert!(extract(&y[..100], &cfg).unwrap_err().0.starts_with("n_fft=2048"));
    }

    #[test]
    fn centroid_of_a_sine_is_its_frequency() {
        let cfg = Config {
            features: vec![Feature::Centroid],
            n_fft: 1024,
            sr: 16000.0,
            ..Config::default()
        };
        let y = sine(16000, 1000.0, 16000.0);
        let m = extract(&y, &cfg).unwrap();
        let mid = m.row(0)[m.cols / 2];
        assert!((mid - 1000.0).abs() < 5.0, "{mid}");
    }

    #[test]
    fn audio_errors_name_the_input() {
        assert!(extract(&[], &Config::default())
            .unwrap_err()
            .0
            .starts_with("y is empty"));
        assert!(extract(&[0.0, f32::NAN], &Config::default())
            .unwrap_err()
            .0
            .contains("y[1]=NaN"));
    }

    #[test]
    fn blocked_mfcc_equals_per_frame_mfcc() {
        // Frame counts around the block size, and DCT rows that are not a multiple of DCT_ROWS.
        for (len, n_mfcc, lifter) in [
            (1usize, 20usize, 0.0),
            (4000, 13, 22.0),
            (8192, 20, 0.0),
            (16000, 7, 0.0),
        ] {
            let y: Vec<f32> = sine(len, 440.0, 16000.0)
                .iter()
                .enumerate()
                .map(|(i, v)| v * (i as f32 * 1e-3).sin())
                .collect();
            let cfg = Config {
                sr: 16000.0,
                n_fft: 512,
                hop_length: 128,
                n_mels: 40,
                n_mfcc,
                lifter,
                ..Config::default()
            };
            let lm_cfg = Config {
                features: vec![Feature::LogMel],
                single_precision: true,
                ..cfg.clone()
            };
            let mut logmel = frame_major(&mut Extractor::new(Plan::get(&lm_cfg).unwrap()), &y).unwrap();
            clip_top_db(&mut logmel, 80.0).unwrap();
            let mfcc_plan = Plan::get(&Config {
                features: vec![Feature::Mfcc],
                ..cfg.clone()
            })
            .unwrap();
            let mut want = vec![0.0; n_mfcc * logmel.len() / 40];
            for (l, o) in logmel.chunks_exact(40).zip(want.chunks_exact_mut(n_mfcc)) {
                mfcc_plan.mfcc_of(l, o);
            }
            let want = Matrix::from_frames(&want, n_mfcc, logmel.len() / 40);
            let plan = Plan::get(&lm_cfg).unwrap();
            let dct = (mfcc_plan.dct().unwrap(), mfcc_plan.dct_sums());
            for vector in [Vector::Baseline, Vector::detect()] {
                let fft = PowerFft::new(plan.window()).unwrap();
                let got = mfcc_blocked(&y, &plan, fft, plan.mel_bank().unwrap(), dct, 80.0, vector).unwrap();
                assert_eq!((got.rows, got.cols), (want.rows, want.cols));
                let worst = got
                    .data
                    .iter()
                    .zip(&want.data)
                    .map(|(a, b)| (a - b).abs())
                    .fold(0f32, f32::max);
                assert!(worst < 1e-3, "len {len}: {worst}");
            }
            assert_eq!(mfcc(&y, &cfg, Some(80.0)).unwrap().cols, want.cols);
        }
    }

    #[test]
    fn spectrogram_route_equals_audio_route() {
        let y = sine(8000, 300.0, 8000.0);
        let base = Config {
            sr: 8000.0,
            n_fft: 256,
            hop_length: 64,
            ..Config::default()
        };
        let mag = extract(
            &y,
            &Config {
                features: vec![Feature::Spectrogram { power: 1.0 }],
                ..base.clone()
            },
        )
        .unwrap();
        let cfg = Config {
            features: vec![Feature::Rolloff { roll_percent: 0.85 }],
            ..base
        };
        assert_eq!(from_spectrogram(&mag, &cfg).unwrap(), extract(&y, &cfg).unwrap());
    }
}

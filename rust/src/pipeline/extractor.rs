//! Per-thread state: one frame in, its features out.

use super::{Feature, Plan, VoiceKind};
use crate::db::{matvec, power_to_db};
use crate::fft::{FrameFft, PowerFft};
use crate::periodicity::{Periodicity, PeriodicityFrame};
use crate::spectral::{self};
use crate::temporal;
use crate::voice::{self, VoiceFrame};
use std::collections::VecDeque;
use std::sync::Arc;

/// The FFT of a plan: float64 unless the config allows float32 (see `Config::single_precision`);
/// a float32 plan that only needs `|X|^2` gets the fused power transform.
enum Fft {
    Power(PowerFft),
    Single(FrameFft<f32>),
    Double(FrameFft<f64>),
}

/// Per-thread working state over a shared `Plan`: FFT buffers and the previous frame for flux.
pub struct Extractor {
    pub plan: Arc<Plan>,
    fft: Option<Fft>,
    mag: Vec<f32>,
    pow2: Vec<f32>,
    mel: Vec<f32>,
    logmel: Vec<f32>,
    scratch: Vec<i32>,
    peaks: Vec<f64>,
    valleys: Vec<f64>,
    prev: Option<Vec<f32>>,
    voice: Option<VoiceFrame>,
    periodicity: Option<PeriodicityFrame>,
    /// Rows waiting for the SHS smoother (periodic rows still 0), oldest first, and used rows.
    pending: VecDeque<Vec<f32>>,
    spare: Vec<Vec<f32>>,
    /// `(row, kind)` of each periodic descriptor, filled when a held row is decided.
    periodic_rows: Vec<(usize, VoiceKind)>,
}

impl Extractor {
    pub fn new(plan: Arc<Plan>) -> Extractor {
        let n_bins = plan.cfg.n_fft / 2 + 1;
        let n_mels = plan.cfg.n_mels;
        let n_bands = plan.contrast.as_ref().map_or(0, |c| c.bands.len());
        Extractor {
            fft: plan.fft.then(|| match (plan.single, plan.mag) {
                (true, false) => PowerFft::new(&plan.window)
                    .map(Fft::Power)
                    .unwrap_or_else(|| Fft::Single(FrameFft::new(&plan.window))),
                (true, true) => Fft::Single(FrameFft::new(&plan.window)),
                (false, _) => Fft::Double(FrameFft::new(&plan.window)),
            }),
            mag: vec![0.0; n_bins],
            pow2: vec![0.0; n_bins],
            mel: vec![0.0; n_mels],
            logmel: vec![0.0; n_mels],
            scratch: Vec::with_capacity(n_bins),
            peaks: vec![0.0; n_bands],
            valleys: vec![0.0; n_bands],
            prev: None,
            voice: plan.voice.as_ref().map(VoiceFrame::new),
            periodicity: plan.periodicity.as_ref().and_then(|p| PeriodicityFrame::new(p).ok()),
            pending: VecDeque::new(),
            spare: Vec::new(),
            periodic_rows: {
                let mut at = 0;
                let mut rows = Vec::new();
                for f in &plan.cfg.features {
                    if let Feature::Voice(k) = f {
                        if k.periodic() {
                            rows.push((at, *k));
                        }
                    }
                    at += f.rows(&plan.cfg);
                }
                rows
            },
            plan,
        }
    }

    /// Starts a new signal: forgets the previous frame (spectral flux starts again at 0) and the
    /// period walk of jitter and shimmer.
    pub fn reset(&mut self) {
        self.prev = None;
        if let Some(p) = self.periodicity.as_mut() {
            p.reset();
        }
        while let Some(r) = self.pending.pop_front() {
            self.spare.push(r);
        }
    }

    /// Rows come out later than their frames (F0 from the SHS tracker, whose smoother decides a
    /// frame up to `shs::MAX_LAG` frames later).
    pub fn lagged(&self) -> bool {
        self.plan.periodicity.as_ref().is_some_and(|p| p.lagged())
    }

    /// Features of the next frame of a signal (`n_fft` raw samples): appends to `out` the rows
    /// that are final now, in frame order (this frame's, unless the plan is
    /// [`Extractor::lagged`]; then zero or more earlier ones). [`Extractor::finish`] ends the
    /// signal.
    pub fn push(&mut self, frame: &[f32], out: &mut Vec<f32>) {
        let nf = self.plan.n_features;
        if !self.lagged() {
            let at = out.len();
            out.resize(at + nf, 0.0);
            self.frame(frame, &mut out[at..]);
            return;
        }
        let mut row = self.spare.pop().unwrap_or_default();
        row.clear();
        row.resize(nf, 0.0);
        self.frame(frame, &mut row);
        self.pending.push_back(row);
        self.drain(out);
    }

    /// Ends the signal: appends the rows still held, then [`Extractor::reset`]s.
    pub fn finish(&mut self, out: &mut Vec<f32>) {
        if let Some(p) = self.periodicity.as_mut() {
            p.finish();
        }
        self.drain(out);
        self.reset();
    }

    /// Moves the rows the SHS smoother has decided to `out`.
    fn drain(&mut self, out: &mut Vec<f32>) {
        let (Some(pp), Some(pf)) = (self.plan.periodicity.as_ref(), self.periodicity.as_mut()) else {
            return;
        };
        while let Some(p) = pf.pop(pp) {
            let Some(mut row) = self.pending.pop_front() else {
                break;
            };
            for &(at, kind) in &self.periodic_rows {
                row[at] = kind.of(&voice::Descriptors::default(), &p) as f32;
            }
            out.extend_from_slice(&row);
            self.spare.push(row);
        }
    }

    /// Features of one frame (`n_fft` raw samples) into `out` (`n_features` values).
    pub fn frame(&mut self, frame: &[f32], out: &mut [f32]) {
        let (mag, pow2) = (
            self.plan.mag.then_some(&mut self.mag[..]),
            self.plan.pow2.then_some(&mut self.pow2[..]),
        );
        match self.fft.as_mut() {
            Some(Fft::Power(f)) => f.power(frame, &mut self.pow2),
            Some(Fft::Single(f)) => {
                f.transform(frame);
                f.magnitudes(mag, pow2);
            }
            Some(Fft::Double(f)) => {
                f.transform(frame);
                f.magnitudes(mag, pow2);
            }
            None => {}
        }
        if self.plan.mel.is_some() {
            let power = self.plan.cfg.power;
            let spec = match power {
                2.0 => std::mem::take(&mut self.pow2),
                1.0 => std::mem::take(&mut self.mag),
                p => self.mag.iter().map(|&m| m.powf(p)).collect(),
            };
            self.mel_from(&spec);
            match power {
                2.0 => self.pow2 = spec,
                1.0 => self.mag = spec,
                _ => {}
            }
        }
        self.features(Some(frame), out);
    }

    /// Features of one precomputed spectrum column (see `batch::from_spectrogram` for what the
    /// column must hold for each feature).
    pub fn column(&mut self, col: &[f32], out: &mut [f32]) {
        match self.plan.cfg.features.first() {
            Some(Feature::Mfcc) => self.logmel.copy_from_slice(col),
            Some(Feature::Mel | Feature::LogMel) => self.mel_from(col),
            Some(Feature::Chroma { .. } | Feature::SpectralEntropy { .. }) => self.pow2.copy_from_slice(col),
            _ => self.mag.copy_from_slice(col),
        }
        self.features(None, out);
    }

    #[inline(always)]
    fn mel_from(&mut self, spec: &[f32]) {
        if let Some(bank) = &self.plan.mel {
            bank.apply(spec, &mut self.mel);
            if self.plan.logmel {
                self.logmel.copy_from_slice(&self.mel);
                power_to_db(&mut self.logmel, self.plan.cfg.ref_db, self.plan.cfg.amin);
            }
        }
    }

    /// Writes every configured feature from the current spectra (and the raw frame, if any).
    #[inline(always)]
    fn features(&mut self, frame: Option<&[f32]>, out: &mut [f32]) {
        let plan = &*self.plan;
        let cfg = &plan.cfg;
        let mut o = 0;
        // Shared by centroid, bandwidth and flux: the column's l1 norm and its centroid.
        let (mut l1, mut centroid) = (None, None);
        // The eGeMAPS descriptors of the 20 ms frame centred in this one (computed once).
        let mut vd: Option<voice::Descriptors> = None;
        let mut pd: Option<Periodicity> = None;
        for f in &cfg.features {
            let mut put = |v: f64| {
                out[o] = v as f32;
                o += 1;
            };
            match *f {
                Feature::Spectrogram { power } => {
                    let n = self.mag.len();
                    let dst = &mut out[o..o + n];
                    match power {
                        2.0 => dst.copy_from_slice(&self.pow2),
                        1.0 => dst.copy_from_slice(&self.mag),
                        p => dst.iter_mut().zip(&self.mag).for_each(|(d, &m)| *d = m.powf(p)),
                    }
                    o += n;
                }
                Feature::Mel => {
                    out[o..o + self.mel.len()].copy_from_slice(&self.mel);
                    o += self.mel.len();
                }
                Feature::LogMel => {
                    out[o..o + self.logmel.len()].copy_from_slice(&self.logmel);
                    o += self.logmel.len();
                }
                Feature::Mfcc => {
                    let n = cfg.n_mfcc;
                    if let Some(d) = &plan.dct {
                        matvec(d, &self.logmel, &mut out[o..o + n]);
                    }
                    o += n;
                }
                Feature::Rms => put(match frame {
                    Some(x) => temporal::rms(x),
                    None => temporal::rms_from_magnitude(&self.mag, cfg.n_fft),
                }),
                Feature::Zcr { threshold } => put(frame.map_or(0.0, |x| temporal::zero_crossing_rate(x, threshold))),
                Feature::Centroid | Feature::Bandwidth { .. } => {
                    let n = *l1.get_or_insert_with(|| spectral::l1(&self.mag));
                    let c = *centroid.get_or_insert_with(|| spectral::centroid_with(&self.mag, &plan.freqs, n));
                    put(match *f {
                        Feature::Bandwidth { p, norm } => {
                            spectral::bandwidth_with(&self.mag, &plan.freqs, c, p, if norm { n } else { 1.0 })
                        }
                        _ => c,
                    })
                }
                Feature::Rolloff { roll_percent } => put(spectral::rolloff(&self.mag, &plan.freqs, roll_percent)),
                Feature::Flatness { amin, power } => put(spectral::flatness(&self.mag, amin, power)),
                Feature::Flux => {
                    let n = *l1.get_or_insert_with(|| spectral::l1(&self.mag));
                    put(spectral::flux_with(&self.mag, &mut self.prev, n))
                }
                Feature::SpectralEntropy { n_blocks } => put(spectral::block_entropy(&self.pow2, n_blocks, false)),
                Feature::EnergyEntropy { n_blocks } => {
                    put(frame.map_or(0.0, |x| spectral::block_entropy(x, n_blocks, true)))
                }
                Feature::Chroma { norm, .. } => {
                    let n = cfg.n_chroma;
                    let dst = &mut out[o..o + n];
                    if let Some(fb) = &plan.chroma {
                        matvec(fb, &self.pow2, dst);
                    }
                    spectral::normalize(dst, norm);
                    o += n;
                }
                Feature::Voice(kind) if kind.periodic() => {
                    let p = *pd.get_or_insert_with(|| match (frame, &plan.periodicity, self.periodicity.as_mut()) {
                        (Some(x), Some(pp), Some(pf)) => {
                            let at = (x.len() - pp.frame_length.min(x.len())) / 2;
                            if pp.lagged() {
                                // Filled in when the smoother has decided (`drain`).
                                pf.push(pp, &x[at..]);
                                Periodicity::default()
                            } else {
                                pf.compute(pp, &x[at..])
                            }
                        }
                        _ => Periodicity::default(),
                    });
                    put(kind.of(&voice::Descriptors::default(), &p))
                }
                Feature::Voice(kind) => {
                    let d = *vd.get_or_insert_with(|| match (frame, &plan.voice, self.voice.as_mut()) {
                        (Some(x), Some(vp), Some(vf)) => {
                            let at = (x.len() - vp.frame_length.min(x.len())) / 2;
                            vf.compute(vp, &x[at..])
                        }
                        _ => voice::Descriptors::default(),
                    });
                    put(kind.of(&d, &Periodicity::default()))
                }
                Feature::Contrast { db, .. } => {
                    if let Some(bands) = &plan.contrast {
                        bands.peaks_valleys(&self.mag, &mut self.scratch, &mut self.peaks, &mut self.valleys);
                    }
                    if db {
                        let amin = plan.cfg.amin as f32;
                        let db = |v: f64| 10.0 * ((v as f32).max(amin) as f64).log10();
                        for (&p, &v) in self.peaks.iter().zip(&self.valleys) {
                            out[o] = (db(p) - db(v)) as f32;
                            o += 1;
                        }
                    } else {
                        for &v in self.peaks.iter().chain(&self.valleys) {
                            out[o] = v as f32;
                            o += 1;
                        }
                    }
                }
            }
        }
    }
}

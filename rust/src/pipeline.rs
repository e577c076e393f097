//! One feature configuration, one per-frame extractor. Batch extraction, streaming and the
//! librosa-style functions all push frames through `Extractor::frame`, so they agree exactly.

use crate::db::{check_db_params, dct_matrix, matvec, power_to_db, DCT_ROWS};
use crate::error::{positive, positive_f64, Result};
use crate::fail;
use crate::fft::{FrameFft, PowerFft};
use crate::mel::{fft_frequencies, MelBank, MelNorm, MelParams};
use crate::pad::PadMode;
use crate::periodicity::{Periodicity, PeriodicityFrame, PeriodicityPlan};
use crate::spectral::{self, ContrastBands};
use crate::voice::{self, VoiceFrame, VoicePlan};
use crate::window::{self, Window};
use crate::{chroma, limits, temporal};
use std::sync::{Arc, Mutex, OnceLock};

/// A per-frame feature; each yields one or more rows.
#[derive(Debug, Clone, PartialEq)]
pub enum Feature {
    /// `|X|^power`, `1 + n_fft/2` rows.
    Spectrogram {
        power: f32,
    },
    /// Mel spectrogram of `|X|^config.power`, `n_mels` rows.
    Mel,
    /// `power_to_db(mel, ref, amin)` (no `top_db`), `n_mels` rows.
    LogMel,
    /// DCT of `LogMel`, `n_mfcc` rows.
    Mfcc,
    Rms,
    Zcr {
        threshold: f64,
    },
    Centroid,
    Bandwidth {
        p: f64,
        norm: bool,
    },
    Rolloff {
        roll_percent: f64,
    },
    Flatness {
        amin: f64,
        power: f64,
    },
    Flux,
    SpectralEntropy {
        n_blocks: usize,
    },
    EnergyEntropy {
        n_blocks: usize,
    },
    /// Chroma of `|X|^2` with fixed tuning; `norm`: `None` or a p-norm (`f64::INFINITY` for max).
    Chroma {
        tuning: f64,
        norm: Option<f64>,
    },
    /// Spectral contrast of `|X|` in `n_bands + 1` octave bands. `db`: per frame
    /// `power_to_db(peak) - power_to_db(valley)` with the config's `amin` (`n_bands + 1` rows; no
    /// `top_db`, so it streams); otherwise the raw peaks then valleys (`2 (n_bands + 1)` rows) for
    /// `librosa.feature.spectral_contrast`, whose `top_db` clip needs the whole signal.
    Contrast {
        fmin: f64,
        n_bands: usize,
        quantile: f64,
        db: bool,
    },
    /// An eGeMAPS v02 descriptor of the 20 ms frame centred in this one (`voice.rs`).
    Voice(VoiceKind),
}

/// The eGeMAPS descriptors `Feature::Voice` can name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VoiceKind {
    Loudness,
    AlphaRatio,
    Hammarberg,
    Slope0To500,
    Slope500To1500,
    F0Semitones,
    Voicing,
    Hnr,
    Jitter,
    Shimmer,
}

impl VoiceKind {
    /// Read from the 60 ms frame (`periodicity.rs`) rather than the 20 ms one.
    fn periodic(&self) -> bool {
        matches!(
            self,
            VoiceKind::F0Semitones | VoiceKind::Voicing | VoiceKind::Hnr | VoiceKind::Jitter | VoiceKind::Shimmer
        )
    }

    fn of(&self, d: &voice::Descriptors, p: &Periodicity) -> f64 {
        match self {
            VoiceKind::F0Semitones => p.f0_semitones,
            VoiceKind::Voicing => p.voicing,
            VoiceKind::Hnr => p.hnr,
            VoiceKind::Jitter => p.jitter,
            VoiceKind::Shimmer => p.shimmer_db,
            VoiceKind::Loudness => d.loudness,
            VoiceKind::AlphaRatio => d.alpha_ratio,
            VoiceKind::Hammarberg => d.hammarberg,
            VoiceKind::Slope0To500 => d.slope_0_500,
            VoiceKind::Slope500To1500 => d.slope_500_1500,
        }
    }
}

impl Feature {
    pub fn parse(name: &str) -> Result<Feature> {
        Ok(match name {
            "mfcc" => Feature::Mfcc,
            "log_melspectrogram" => Feature::LogMel,
            "melspectrogram" => Feature::Mel,
            "rms" => Feature::Rms,
            "zero_crossing_rate" => Feature::Zcr { threshold: 1e-10 },
            "spectral_centroid" => Feature::Centroid,
            "spectral_bandwidth" => Feature::Bandwidth { p: 2.0, norm: true },
            "spectral_rolloff" => Feature::Rolloff { roll_percent: 0.85 },
            "spectral_flatness" => Feature::Flatness {
                amin: 1e-10,
                power: 2.0,
            },
            "spectral_flux" => Feature::Flux,
            "spectral_entropy" => Feature::SpectralEntropy { n_blocks: 10 },
            "energy_entropy" => Feature::EnergyEntropy { n_blocks: 10 },
            "chroma_stft" => Feature::Chroma {
                tuning: 0.0,
                norm: Some(f64::INFINITY),
            },
            "spectral_contrast" => Feature::Contrast {
                fmin: 200.0,
                n_bands: 6,
                quantile: 0.02,
                db: true,
            },
            "loudness" => Feature::Voice(VoiceKind::Loudness),
            "alpha_ratio" => Feature::Voice(VoiceKind::AlphaRatio),
            "hammarberg_index" => Feature::Voice(VoiceKind::Hammarberg),
            "slope_0_500" => Feature::Voice(VoiceKind::Slope0To500),
            "slope_500_1500" => Feature::Voice(VoiceKind::Slope500To1500),
            "f0_semitones" => Feature::Voice(VoiceKind::F0Semitones),
            "voicing" => Feature::Voice(VoiceKind::Voicing),
            "hnr" => Feature::Voice(VoiceKind::Hnr),
            "jitter" => Feature::Voice(VoiceKind::Jitter),
            "shimmer" => Feature::Voice(VoiceKind::Shimmer),
            _ => fail!(
                "features: unknown feature {name:?}; known: mfcc, log_melspectrogram, melspectrogram, rms, \
                 zero_crossing_rate, spectral_centroid, spectral_bandwidth, spectral_rolloff, spectral_flatness, \
                 spectral_flux, spectral_entropy, energy_entropy, chroma_stft, spectral_contrast, loudness, alpha_ratio, \
                 hammarberg_index, slope_0_500, slope_500_1500, f0_semitones, voicing, hnr, \
                 jitter, shimmer"
            ),
        })
    }

    /// Rows this feature yields per frame under `cfg`: the one table of row counts (Python reads
    /// it through `Spec.rows`).
    pub fn rows(&self, cfg: &Config) -> usize {
        match *self {
            Feature::Spectrogram { .. } => cfg.n_fft / 2 + 1,
            Feature::Mel | Feature::LogMel => cfg.n_mels,
            Feature::Mfcc => cfg.n_mfcc,
            Feature::Chroma { .. } => cfg.n_chroma,
            Feature::Contrast { n_bands, db, .. } => (n_bands + 1) * if db { 1 } else { 2 },
            Feature::Rms
            | Feature::Zcr { .. }
            | Feature::Centroid
            | Feature::Bandwidth { .. }
            | Feature::Rolloff { .. }
            | Feature::Flatness { .. }
            | Feature::Flux
            | Feature::SpectralEntropy { .. }
            | Feature::EnergyEntropy { .. }
            | Feature::Voice(_) => 1,
        }
    }

    fn needs_spectrum(&self) -> bool {
        !matches!(
            self,
            Feature::Rms | Feature::Zcr { .. } | Feature::EnergyEntropy { .. } | Feature::Voice(_)
        )
    }
}

/// Everything that defines a model's input features. Defaults are librosa's.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    pub sr: f64,
    pub n_fft: usize,
    pub hop_length: usize,
    /// `None`: `n_fft`.
    pub win_length: Option<usize>,
    pub window: Window,
    pub center: bool,
    pub pad_mode: PadMode,
    pub power: f32,
    pub n_mels: usize,
    pub fmin: f64,
    pub fmax: Option<f64>,
    pub htk: bool,
    pub mel_norm: MelNorm,
    pub n_mfcc: usize,
    pub dct_ortho: bool,
    pub lifter: f64,
    pub ref_db: f64,
    pub amin: f64,
    pub n_chroma: usize,
    pub features: Vec<Feature>,
    /// Allow a float32 FFT for mel-domain features: for callers whose output hides the float32
    /// noise floor (~140 dB below each frame's peak): linear mel spectra, dB clipped by `top_db`.
    pub single_precision: bool,
}

impl Default for Config {
    fn default() -> Config {
        Config {
            sr: 22050.0,
            n_fft: 2048,
            hop_length: 512,
            win_length: None,
            window: Window::Hann,
            center: true,
            pad_mode: PadMode::Constant,
            power: 2.0,
            n_mels: 128,
            fmin: 0.0,
            fmax: None,
            htk: false,
            mel_norm: MelNorm::Slaney,
            n_mfcc: 20,
            dct_ortho: true,
            lifter: 0.0,
            ref_db: 1.0,
            amin: 1e-10,
            n_chroma: 12,
            features: vec![Feature::Mfcc],
            single_precision: false,
        }
    }
}

/// The immutable, validated part of extraction: window, filterbanks, DCT. Cached per config.
pub struct Plan {
    pub cfg: Config,
    pub n_features: usize,
    pub freqs: Vec<f64>,
    window: Vec<f64>,
    mel: Option<MelBank>,
    dct: Option<Vec<f32>>,
    /// Each DCT row's sum (float64 sums of the float32 entries).
    dct_sums: Vec<f32>,
    chroma: Option<Vec<f32>>,
    contrast: Option<ContrastBands>,
    /// The eGeMAPS analysis, if a `Feature::Voice` is configured.
    pub(crate) voice: Option<VoicePlan>,
    /// The 60 ms F0/voicing/HNR analysis, if one of those is configured.
    pub(crate) periodicity: Option<PeriodicityPlan>,
    fft: bool,
    /// A float32 FFT: allowed by the config, and only mel-domain spectral features.
    single: bool,
    mag: bool,
    pow2: bool,
    /// Some feature reads the log-mel spectrum (log-mel itself or MFCC).
    logmel: bool,
}

impl Plan {
    /// The validated plan for `cfg`, built once per distinct config.
    pub fn get(cfg: &Config) -> Result<Arc<Plan>> {
        static CACHE: OnceLock<Mutex<Vec<Arc<Plan>>>> = OnceLock::new();
        let cache = CACHE.get_or_init(|| Mutex::new(Vec::new()));
        if let Some(p) = cache
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .find(|p| &p.cfg == cfg)
        {
            return Ok(p.clone());
        }
        let plan = Arc::new(Plan::build(cfg.clone())?);
        let mut cache = cache.lock().unwrap_or_else(|e| e.into_inner());
        if cache.len() >= 32 {
            cache.remove(0);
        }
        cache.push(plan.clone());
        Ok(plan)
    }

    fn build(cfg: Config) -> Result<Plan> {
        positive_f64("sr", cfg.sr)?;
        positive("n_fft", cfg.n_fft)?;
        limits::frame_length("n_fft", cfg.n_fft)?;
        positive("hop_length", cfg.hop_length)?;
        let win_length = positive("win_length", cfg.win_length.unwrap_or(cfg.n_fft))?;
        if !(cfg.power.is_finite() && cfg.power > 0.0) {
            fail!("power={} must be a positive number", cfg.power);
        }
        check_db_params(cfg.ref_db, cfg.amin)?;
        if cfg.features.is_empty() {
            fail!("features must name at least one feature");
        }
        let n_bins = cfg.n_fft / 2 + 1;
        let freqs = fft_frequencies(cfg.sr, cfg.n_fft);
        let has = |pred: fn(&Feature) -> bool| cfg.features.iter().any(pred);
        let fft = has(Feature::needs_spectrum);
        let window = if fft {
            window::padded(&cfg.window, win_length, cfg.n_fft)?
        } else {
            Vec::new()
        };
        let uses_mel = has(|f| matches!(f, Feature::Mel | Feature::LogMel | Feature::Mfcc));
        if uses_mel {
            // Every size first, before any filterbank is built.
            limits::bands("n_mels", cfg.n_mels)?;
            limits::matrix("n_mels", cfg.n_mels, "1 + n_fft // 2", n_bins)?;
        }
        if has(|f| matches!(f, Feature::Mfcc)) {
            limits::matrix("n_mfcc", cfg.n_mfcc, "n_mels", cfg.n_mels)?;
        }
        let mel = if uses_mel {
            Some(MelBank::new(&MelParams {
                sr: cfg.sr,
                n_fft: cfg.n_fft,
                n_mels: cfg.n_mels,
                fmin: cfg.fmin,
                fmax: cfg.fmax,
                htk: cfg.htk,
                norm: cfg.mel_norm,
            })?)
        } else {
            None
        };
        let dct = if has(|f| matches!(f, Feature::Mfcc)) {
            // Zero rows up to a multiple of `DCT_ROWS`, for `dct_block`; `matvec` reads `n_mfcc`.
            let mut d = dct_matrix(cfg.n_mfcc, cfg.n_mels, cfg.dct_ortho, cfg.lifter)?;
            d.resize(cfg.n_mfcc.next_multiple_of(DCT_ROWS) * cfg.n_mels, 0.0);
            Some(d)
        } else {
            None
        };
        let dct_sums = dct.as_ref().map_or(Vec::new(), |d| {
            d.chunks_exact(cfg.n_mels)
                .map(|row| row.iter().map(|&v| v as f64).sum::<f64>() as f32)
                .collect()
        });
        let (mut chroma_fb, mut contrast) = (None, None);
        for f in &cfg.features {
            match *f {
                Feature::Spectrogram { power } => {
                    if !(power.is_finite() && power > 0.0) {
                        fail!("power={power} must be a positive number");
                    }
                }
                Feature::Mel | Feature::LogMel | Feature::Mfcc => {}
                Feature::Chroma { tuning, norm } => {
                    if let Some(q) = norm {
                        if q.is_nan() || q <= 0.0 {
                            fail!("norm={q} must be None or a positive number");
                        }
                    }
                    chroma_fb = Some(chroma::chroma_filters(cfg.sr, cfg.n_fft, cfg.n_chroma, tuning)?);
                }
                Feature::Contrast {
                    fmin,
                    n_bands,
                    quantile,
                    ..
                } => {
                    contrast = Some(ContrastBands::new(&freqs, cfg.sr, fmin, n_bands, quantile)?);
                }
                Feature::Rolloff { roll_percent } => {
                    spectral::check_roll_percent(roll_percent)?;
                }
                Feature::Flatness { amin, power } => {
                    positive_f64("amin", amin)?;
                    positive_f64("power", power)?;
                }
                Feature::Bandwidth { p, .. } => {
                    positive_f64("p", p)?;
                }
                Feature::SpectralEntropy { n_blocks } => {
                    spectral::check_blocks(n_blocks, n_bins, "frequency bins")?;
                }
                Feature::EnergyEntropy { n_blocks } => {
                    spectral::check_blocks(n_blocks, cfg.n_fft, "samples in a frame")?;
                }
                Feature::Zcr { threshold } => {
                    if !(threshold >= 0.0) {
                        fail!("threshold={threshold} must be non-negative");
                    }
                }
                Feature::Rms | Feature::Centroid | Feature::Flux | Feature::Voice(_) => {}
            }
        }
        let n_features = cfg.features.iter().map(|f| f.rows(&cfg)).sum();
        let mel_power = if uses_mel { Some(cfg.power) } else { None };
        let mag = has(|f| {
            matches!(
                f,
                Feature::Centroid
                    | Feature::Bandwidth { .. }
                    | Feature::Rolloff { .. }
                    | Feature::Flatness { .. }
                    | Feature::Flux
                    | Feature::Contrast { .. }
            ) || matches!(f, Feature::Spectrogram { power } if *power != 2.0)
        }) || mel_power.is_some_and(|p| p != 2.0);
        let single = cfg.single_precision
            && cfg.features.iter().all(|f| {
                matches!(
                    f,
                    Feature::Mel
                        | Feature::LogMel
                        | Feature::Mfcc
                        | Feature::Rms
                        | Feature::Zcr { .. }
                        | Feature::EnergyEntropy { .. }
                )
            });
        let pow2 = has(|f| {
            matches!(f, Feature::SpectralEntropy { .. } | Feature::Chroma { .. })
                || matches!(f, Feature::Spectrogram { power } if *power == 2.0)
        }) || mel_power == Some(2.0);
        let logmel = has(|f| matches!(f, Feature::LogMel | Feature::Mfcc));
        let voice = if has(|f| matches!(f, Feature::Voice(k) if !k.periodic())) {
            let v = VoicePlan::new(cfg.sr)?;
            if cfg.n_fft < v.frame_length {
                fail!(
                    "n_fft={} is shorter than the {}-sample (20 ms) frame the eGeMAPS descriptors read at sr={}; \
                     use n_fft >= {}",
                    cfg.n_fft,
                    v.frame_length,
                    cfg.sr,
                    v.frame_length
                );
            }
            Some(v)
        } else {
            None
        };
        let periodicity = if has(|f| matches!(f, Feature::Voice(k) if k.periodic())) {
            let mut p = PeriodicityPlan::new(cfg.sr)?;
            p.periods = has(|f| matches!(f, Feature::Voice(VoiceKind::Jitter | VoiceKind::Shimmer)));
            p.hop = cfg.hop_length;
            if cfg.n_fft < p.frame_length {
                fail!(
                    "n_fft={} is shorter than the {}-sample (60 ms) frame F0, voicing and HNR read at sr={}; \
                     use n_fft >= {}",
                    cfg.n_fft,
                    p.frame_length,
                    cfg.sr,
                    p.frame_length
                );
            }
            // Built once here so that a bad rate fails now, not in a worker thread.
            PeriodicityFrame::new(&p)?;
            Some(p)
        } else {
            None
        };
        Ok(Plan {
            voice,
            periodicity,
            n_features,
            freqs,
            window,
            mel,
            dct,
            dct_sums,
            chroma: chroma_fb,
            contrast,
            fft,
            single,
            mag,
            pow2,
            logmel,
            cfg,
        })
    }
}

/// The FFT of a plan: float64 unless the config allows float32 (see `Config::single_precision`);
/// a float32 plan that only needs `|X|^2` gets the fused power transform.
enum Fft {
    Power(PowerFft),
    Single(FrameFft<f32>),
    Double(FrameFft<f64>),
}

impl Plan {
    /// The analysis window, centred and zero-padded to `n_fft`.
    pub(crate) fn window(&self) -> &[f64] {
        &self.window
    }

    pub(crate) fn mel_bank(&self) -> Option<&MelBank> {
        self.mel.as_ref()
    }

    /// The `(n_mfcc, n_mels)` DCT matrix, lifter included, then zero rows up to a multiple of
    /// `DCT_ROWS` (a plan that includes `Feature::Mfcc`).
    pub(crate) fn dct(&self) -> Option<&[f32]> {
        self.dct.as_deref()
    }

    /// The sum of each row of `dct()`.
    pub(crate) fn dct_sums(&self) -> &[f32] {
        &self.dct_sums
    }

    /// MFCC of one log-mel frame (a plan that includes `Feature::Mfcc`).
    pub fn mfcc_of(&self, logmel: &[f32], out: &mut [f32]) {
        if let Some(d) = &self.dct {
            matvec(d, logmel, out);
        }
    }
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
                            pf.compute(pp, &x[at..])
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plans_are_cached_and_validated() {
        let cfg = Config::default();
        assert!(Arc::ptr_eq(&Plan::get(&cfg).unwrap(), &Plan::get(&cfg).unwrap()));
        let bad = Config {
            hop_length: 0,
            ..Config::default()
        };
        assert!(Plan::get(&bad).err().unwrap().0.starts_with("hop_length=0"));
        let bad = Config {
            win_length: Some(4096),
            ..Config::default()
        };
        assert!(Plan::get(&bad).err().unwrap().0.starts_with("win_length=4096"));
    }

    #[test]
    fn feature_rows_add_up() {
        let cfg = Config {
            features: vec![
                Feature::Mfcc,
                Feature::Rms,
                Feature::Chroma {
                    tuning: 0.0,
                    norm: None,
                },
            ],
            ..Config::default()
        };
        assert_eq!(Plan::get(&cfg).unwrap().n_features, 20 + 1 + 12);
        assert!(Feature::parse("mfccs").unwrap_err().0.starts_with("features"));
    }

    #[test]
    fn contrast_in_db_is_the_difference_of_the_raw_peaks_and_valleys_in_db() {
        let contrast = |db| Config {
            features: vec![Feature::Contrast {
                fmin: 200.0,
                n_bands: 6,
                quantile: 0.02,
                db,
            }],
            ..Config::default()
        };
        let (raw, dbc) = (contrast(false), contrast(true));
        assert_eq!(Feature::parse("spectral_contrast").unwrap().rows(&dbc), 7);
        let frame: Vec<f32> = (0..2048).map(|i| ((i * 7919) % 1000) as f32 / 5000.0 - 0.1).collect();
        let run = |cfg: &Config| {
            let plan = Plan::get(cfg).unwrap();
            let mut out = vec![0.0; plan.n_features];
            Extractor::new(plan).frame(&frame, &mut out);
            out
        };
        let (r, d) = (run(&raw), run(&dbc));
        assert_eq!((r.len(), d.len()), (14, 7));
        for k in 0..7 {
            let want = 10.0 * (r[k].max(1e-10) as f64).log10() - 10.0 * (r[7 + k].max(1e-10) as f64).log10();
            assert!((d[k] as f64 - want).abs() < 1e-4, "band {k}: {} vs {want}", d[k]);
            assert!(d[k] > 0.0);
        }
    }
}

#[cfg(test)]
mod timing {
    use super::*;
    use std::time::Instant;

    /// Whole-signal cost against the FFT floor, without Python.
    #[test]
    #[ignore]
    fn batch_costs() {
        let y: Vec<f32> = (0..16000).map(|i| ((i * 7919) % 1000) as f32 / 5000.0 - 0.1).collect();
        let cfg = Config {
            sr: 16000.0,
            ..Config::default()
        };
        let n: usize = std::env::var("REPS").ok().and_then(|v| v.parse().ok()).unwrap_or(2000);
        let time = |label: &str, f: &mut dyn FnMut()| {
            f();
            let t = Instant::now();
            for _ in 0..n {
                f();
            }
            println!("{label:>14}: {:.1} us", t.elapsed().as_secs_f64() * 1e6 / n as f64);
        };
        time("fft floor", &mut || {
            crate::batch::fft_floor(&y, 2048, 512).unwrap();
        });
        time("mfcc top_db 80", &mut || {
            crate::batch::mfcc(&y, &cfg, Some(80.0)).unwrap();
        });
        let lm = Config {
            features: vec![Feature::LogMel],
            single_precision: true,
            ..cfg.clone()
        };
        time("logmel extract", &mut || {
            crate::batch::extract(&y, &lm).unwrap();
        });
        time("plan lookup", &mut || {
            Plan::get(&lm).unwrap();
        });
        time("check audio", &mut || {
            crate::error::audio("y", &y).unwrap();
        });
    }

    /// Stage costs of one mfcc frame: `cargo test --release stage_costs -- --ignored --nocapture`.
    #[test]
    #[ignore]
    fn stage_costs() {
        let cfg = Config {
            sr: 16000.0,
            single_precision: true,
            ..Config::default()
        };
        let plan = Plan::get(&cfg).unwrap();
        let mut ex = Extractor::new(plan.clone());
        let frame: Vec<f32> = (0..2048).map(|i| ((i * 7919) % 1000) as f32 / 5000.0 - 0.1).collect();
        let mut out = vec![0.0; plan.n_features];
        let n = 20000;
        let time = |label: &str, f: &mut dyn FnMut()| {
            let t = Instant::now();
            for _ in 0..n {
                f();
            }
            println!("{label:>12}: {:.3} us", t.elapsed().as_secs_f64() * 1e6 / n as f64);
        };
        let mut fft = FrameFft::<f32>::new(&plan.window);
        time("fft only", &mut || fft.transform_raw(&frame));
        time("window+fft", &mut || fft.transform(&frame));
        let mut pow2 = vec![0.0; 1025];
        time("pow2", &mut || fft.magnitudes(None, Some(&mut pow2)));
        let mut mel = vec![0.0; 128];
        let bank = plan.mel.as_ref().unwrap();
        time("mel", &mut || bank.apply(&pow2, &mut mel));
        let mut lm = mel.clone();
        time("db", &mut || {
            lm.copy_from_slice(&mel);
            power_to_db(&mut lm, 1.0, 1e-10)
        });
        let d = plan.dct.as_ref().unwrap();
        time("dct", &mut || matvec(d, &lm, &mut out));
        time("whole frame", &mut || ex.frame(&frame, &mut out));
    }
}

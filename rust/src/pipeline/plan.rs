//! The validated, cached, immutable part of extraction.

use super::{Config, Feature, VoiceKind};
use crate::db::{check_db_params, dct_matrix, matvec, DCT_ROWS};
use crate::error::{positive, positive_f64, Result};
use crate::fail;
use crate::mel::{fft_frequencies, MelBank, MelParams};
use crate::periodicity::{PeriodicityFrame, PeriodicityPlan};
use crate::spectral::{self, ContrastBands};
use crate::voice::VoicePlan;
use crate::window::{self};
use crate::{chroma, limits};
use std::sync::{Arc, Mutex, OnceLock};

/// The immutable, validated part of extraction: window, filterbanks, DCT. Cached per config.
pub struct Plan {
    pub cfg: Config,
    pub n_features: usize,
    pub freqs: Vec<f64>,
    pub(super) window: Vec<f64>,
    pub(super) mel: Option<MelBank>,
    pub(super) dct: Option<Vec<f32>>,
    /// Each DCT row's sum (float64 sums of the float32 entries).
    pub(super) dct_sums: Vec<f32>,
    pub(super) chroma: Option<Vec<f32>>,
    pub(super) contrast: Option<ContrastBands>,
    /// The eGeMAPS analysis, if a `Feature::Voice` is configured.
    pub(crate) voice: Option<VoicePlan>,
    /// The 60 ms F0/voicing/HNR analysis, if one of those is configured.
    pub(crate) periodicity: Option<PeriodicityPlan>,
    pub(super) fft: bool,
    /// A float32 FFT: allowed by the config, and only mel-domain spectral features.
    pub(super) single: bool,
    pub(super) mag: bool,
    pub(super) pow2: bool,
    /// Some feature reads the log-mel spectrum (log-mel itself or MFCC).
    pub(super) logmel: bool,
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
            let mut p = PeriodicityPlan::with_method(cfg.sr, cfg.f0)?;
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

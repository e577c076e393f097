//! What a caller asks for: the features and the framing/filterbank parameters.

use crate::error::Result;
use crate::fail;
use crate::mel::MelNorm;
use crate::pad::PadMode;
use crate::periodicity::{F0Method, Periodicity};
use crate::voice::{self};
use crate::window::Window;

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
    pub(super) fn periodic(&self) -> bool {
        matches!(
            self,
            VoiceKind::F0Semitones | VoiceKind::Voicing | VoiceKind::Hnr | VoiceKind::Jitter | VoiceKind::Shimmer
        )
    }

    pub(super) fn of(&self, d: &voice::Descriptors, p: &Periodicity) -> f64 {
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

    pub(super) fn needs_spectrum(&self) -> bool {
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
    /// How the 60 ms descriptors get F0 and voicing (YIN, or openSMILE's SHS + Viterbi, whose
    /// rows come out up to `shs::MAX_LAG` frames late).
    pub f0: F0Method,
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
            f0: F0Method::Yin,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pipeline::{Extractor, Plan};
    use std::sync::Arc;

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

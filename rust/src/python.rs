//! The `ser_edge._dsp` extension module: argument conversion only. Every kernel error becomes a
//! `ValueError` here, and kernels run with the GIL released. Every result is checked finite
//! (`error::finite_result`), and every entry point runs under `guard`: a panic (a bug) becomes a
//! `RuntimeError` naming it, never a `PanicException`.

use crate::batch::{self, Matrix};
use crate::delta::DeltaMode;
use crate::error::{finite_result, DspError};
use crate::mel::{MelBank, MelNorm, MelParams};
use crate::pad::PadMode;
use crate::pipeline::{Config, Feature};
use crate::pitch::YinParams;
use crate::window::Window;
use crate::{chroma, parallel, stream};
use numpy::ndarray::Array2;
use numpy::{Complex32, IntoPyArray, PyArray1, PyArray2, PyReadonlyArray1, PyReadonlyArray2};
use pyo3::exceptions::{PyRuntimeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::PyDict;

impl From<DspError> for PyErr {
    fn from(e: DspError) -> PyErr {
        PyValueError::new_err(e.0)
    }
}

/// The safety net at the boundary: a panic in a kernel becomes `RuntimeError` (an `Exception`, so
/// a daemon that catches errors survives it) instead of pyo3's `PanicException` (a `BaseException`).
fn guard<T>(f: impl FnOnce() -> PyResult<T>) -> PyResult<T> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)).unwrap_or_else(|p| {
        let msg = p
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| p.downcast_ref::<String>().cloned())
            .unwrap_or_default();
        Err(PyRuntimeError::new_err(format!(
            "ser_edge._dsp internal error (a bug; please report it): {msg}"
        )))
    })
}

fn to_py<'py>(py: Python<'py>, m: Matrix) -> PyResult<Bound<'py, PyArray2<f32>>> {
    finite_result(&m.data)?;
    let a = Array2::from_shape_vec((m.rows, m.cols), m.data).map_err(|e| PyValueError::new_err(e.to_string()))?;
    Ok(a.into_pyarray(py))
}

fn slice<'a>(name: &str, a: &'a PyReadonlyArray1<'_, f32>) -> PyResult<&'a [f32]> {
    a.as_slice()
        .map_err(|_| PyValueError::new_err(format!("{name} must be a contiguous array")))
}

fn matrix(s: &PyReadonlyArray2<'_, f32>) -> Matrix {
    let a = s.as_array();
    let (rows, cols) = a.dim();
    Matrix {
        rows,
        cols,
        data: a.iter().copied().collect(),
    }
}

/// Parses one `(name, params)` feature description.
fn feature(name: &str, params: &Bound<'_, PyDict>) -> PyResult<Feature> {
    fn get<'py, T: FromPyObjectOwned<'py>>(d: &Bound<'py, PyDict>, key: &str, default: T) -> PyResult<T> {
        match d.get_item(key)? {
            Some(v) if !v.is_none() => v
                .extract::<T>()
                .map_err(|_| PyValueError::new_err(format!("{key}={v} has the wrong type"))),
            _ => Ok(default),
        }
    }
    Ok(match Feature::parse(name) {
        Ok(Feature::Zcr { threshold }) => Feature::Zcr {
            threshold: get(params, "threshold", threshold)?,
        },
        Ok(Feature::Bandwidth { p, norm }) => Feature::Bandwidth {
            p: get(params, "p", p)?,
            norm: get(params, "norm", norm)?,
        },
        Ok(Feature::Rolloff { roll_percent }) => Feature::Rolloff {
            roll_percent: get(params, "roll_percent", roll_percent)?,
        },
        Ok(Feature::Flatness { amin, power }) => Feature::Flatness {
            amin: get(params, "amin", amin)?,
            power: get(params, "power", power)?,
        },
        Ok(Feature::SpectralEntropy { n_blocks }) => Feature::SpectralEntropy {
            n_blocks: get(params, "n_blocks", n_blocks)?,
        },
        Ok(Feature::EnergyEntropy { n_blocks }) => Feature::EnergyEntropy {
            n_blocks: get(params, "n_blocks", n_blocks)?,
        },
        Ok(Feature::Chroma { tuning, norm }) => {
            let norm = match params.get_item("norm")? {
                Some(v) if v.is_none() => None,
                Some(v) => Some(
                    v.extract::<f64>()
                        .map_err(|_| PyValueError::new_err(format!("norm={v} must be None or a number")))?,
                ),
                None => norm,
            };
            Feature::Chroma {
                tuning: get(params, "tuning", tuning)?,
                norm,
            }
        }
        Ok(Feature::Contrast {
            fmin,
            n_bands,
            quantile,
            db,
        }) => Feature::Contrast {
            fmin: get(params, "fmin", fmin)?,
            n_bands: get(params, "n_bands", n_bands)?,
            quantile: get(params, "quantile", quantile)?,
            db,
        },
        Ok(f) => f,
        Err(_) if name == "spectrogram" => Feature::Spectrogram {
            power: get(params, "power", 2.0)?,
        },
        Err(_) if name == "spectral_contrast_raw" => Feature::Contrast {
            fmin: get(params, "fmin", 200.0)?,
            n_bands: get(params, "n_bands", 6)?,
            quantile: get(params, "quantile", 0.02)?,
            db: false,
        },
        Err(e) => return Err(e.into()),
    })
}

/// A validated feature configuration (the native side of `ser_edge.features.FeatureConfig`).
#[pyclass(frozen, module = "ser_edge._dsp")]
pub struct Spec {
    cfg: Config,
    names: Vec<String>,
}

#[pymethods]
impl Spec {
    #[new]
    #[pyo3(signature = (features, *, sr=22050.0, n_fft=2048, hop_length=512, win_length=None, window=None,
        center=true, pad_mode="constant", power=2.0, n_mels=128, fmin=0.0, fmax=None, htk=false,
        mel_norm=None, n_mfcc=20, dct_ortho=true, lifter=0.0, r#ref=1.0, amin=1e-10, n_chroma=12,
        single_precision=false, f0="yin"))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        features: Vec<(String, Bound<'_, PyDict>)>,
        sr: f64,
        n_fft: usize,
        hop_length: usize,
        win_length: Option<usize>,
        window: Option<&Bound<'_, PyAny>>,
        center: bool,
        pad_mode: &str,
        power: f32,
        n_mels: usize,
        fmin: f64,
        fmax: Option<f64>,
        htk: bool,
        mel_norm: Option<&Bound<'_, PyAny>>,
        n_mfcc: usize,
        dct_ortho: bool,
        lifter: f64,
        r#ref: f64,
        amin: f64,
        n_chroma: usize,
        single_precision: bool,
        f0: &str,
    ) -> PyResult<Spec> {
        let window = match window {
            None => Window::Hann,
            Some(w) => match w.extract::<String>() {
                Ok(name) => Window::parse(&name)?,
                Err(_) => Window::Custom(w.extract::<Vec<f32>>().map_err(|_| {
                    PyValueError::new_err("window must be a window name or a 1-D array of coefficients")
                })?),
            },
        };
        let mel_norm = match mel_norm {
            None => MelNorm::None,
            Some(v) => match v.extract::<String>() {
                Ok(s) if s == "slaney" => MelNorm::Slaney,
                Ok(s) => {
                    return Err(PyValueError::new_err(format!(
                        "norm={s:?} must be 'slaney', None or a number"
                    )))
                }
                Err(_) => MelNorm::P(
                    v.extract::<f64>()
                        .map_err(|_| PyValueError::new_err(format!("norm={v} must be 'slaney', None or a number")))?,
                ),
            },
        };
        let names = features.iter().map(|(n, _)| n.clone()).collect();
        let features = features
            .iter()
            .map(|(n, p)| feature(n, p))
            .collect::<PyResult<Vec<_>>>()?;
        let cfg = Config {
            sr,
            n_fft,
            hop_length,
            win_length,
            window,
            center,
            pad_mode: PadMode::parse(pad_mode)?,
            power,
            n_mels,
            fmin,
            fmax,
            htk,
            mel_norm,
            n_mfcc,
            dct_ortho,
            lifter,
            ref_db: r#ref,
            amin,
            n_chroma,
            features,
            single_precision,
            f0: crate::periodicity::F0Method::parse(f0)?,
        };
        guard(|| {
            crate::pipeline::Plan::get(&cfg)?;
            Ok(Spec { cfg, names })
        })
    }

    /// Rows each frame yields.
    #[getter]
    fn n_features(&self) -> PyResult<usize> {
        Ok(crate::pipeline::Plan::get(&self.cfg)?.n_features)
    }

    /// `(name, start, stop)` of each feature's rows, in output order.
    #[getter]
    fn rows(&self) -> Vec<(String, usize, usize)> {
        let mut start = 0;
        (self.names.iter().zip(&self.cfg.features))
            .map(|(name, f)| {
                let stop = start + f.rows(&self.cfg);
                let r = (name.clone(), start, stop);
                start = stop;
                r
            })
            .collect()
    }
}

#[pyfunction]
fn extract<'py>(py: Python<'py>, y: PyReadonlyArray1<'py, f32>, spec: &Spec) -> PyResult<Bound<'py, PyArray2<f32>>> {
    guard(|| {
        let y = slice("y", &y)?;
        let m = py.detach(|| batch::extract(y, &spec.cfg))?;
        to_py(py, m)
    })
}

#[pyfunction]
fn from_spectrogram<'py>(
    py: Python<'py>,
    s: PyReadonlyArray2<'py, f32>,
    spec: &Spec,
) -> PyResult<Bound<'py, PyArray2<f32>>> {
    guard(|| {
        let s = matrix(&s);
        let m = py.detach(|| batch::from_spectrogram(&s, &spec.cfg))?;
        to_py(py, m)
    })
}

#[pyfunction]
#[pyo3(signature = (y, spec, top_db))]
fn mfcc<'py>(
    py: Python<'py>,
    y: PyReadonlyArray1<'py, f32>,
    spec: &Spec,
    top_db: Option<f64>,
) -> PyResult<Bound<'py, PyArray2<f32>>> {
    guard(|| {
        let y = slice("y", &y)?;
        let m = py.detach(|| batch::mfcc(y, &spec.cfg, top_db))?;
        to_py(py, m)
    })
}

#[pyfunction]
fn extract_many<'py>(
    py: Python<'py>,
    clips: Vec<PyReadonlyArray1<'py, f32>>,
    spec: &Spec,
    n_jobs: usize,
) -> PyResult<Vec<Bound<'py, PyArray2<f32>>>> {
    guard(|| {
        let slices = clips.iter().map(|c| slice("clips", c)).collect::<PyResult<Vec<_>>>()?;
        let out = py.detach(|| parallel::extract_many(&slices, &spec.cfg, n_jobs))?;
        out.into_iter().map(|m| to_py(py, m)).collect()
    })
}

#[pyfunction]
#[pyo3(signature = (s, r#ref, amin, top_db))]
fn power_to_db<'py>(
    py: Python<'py>,
    s: PyReadonlyArray1<'py, f32>,
    r#ref: f64,
    amin: f64,
    top_db: Option<f64>,
) -> PyResult<Bound<'py, PyArray1<f32>>> {
    guard(|| {
        let mut x = s.as_array().to_vec();
        batch::db(&mut x, r#ref, amin, top_db)?;
        finite_result(&x)?;
        Ok(x.into_pyarray(py))
    })
}

#[pyfunction]
fn contrast_db<'py>(py: Python<'py>, raw: PyReadonlyArray2<'py, f32>) -> PyResult<Bound<'py, PyArray2<f32>>> {
    guard(|| to_py(py, batch::contrast_db(&matrix(&raw))?))
}

/// Tuning from audio (`spec` gives the STFT) or from a float64 power spectrogram `s`.
#[pyfunction]
#[pyo3(signature = (spec, bins_per_octave, y=None, s=None))]
fn estimate_tuning(
    spec: &Spec,
    bins_per_octave: usize,
    y: Option<PyReadonlyArray1<'_, f32>>,
    s: Option<PyReadonlyArray2<'_, f64>>,
) -> PyResult<f64> {
    guard(|| {
        let c = &spec.cfg;
        match (y, s) {
            (Some(y), _) => Ok(batch::estimate_tuning(slice("y", &y)?, c, bins_per_octave)?),
            (None, Some(s)) => {
                let a = s.as_array();
                let columns = a.columns().into_iter().map(|col| col.to_vec());
                Ok(chroma::estimate_tuning(columns, c.sr, c.n_fft, bins_per_octave))
            }
            (None, None) => Err(PyValueError::new_err("estimate_tuning needs y or S")),
        }
    })
}

#[pyfunction]
fn stft<'py>(py: Python<'py>, y: PyReadonlyArray1<'py, f32>, spec: &Spec) -> PyResult<Bound<'py, PyArray2<Complex32>>> {
    guard(|| {
        let y = slice("y", &y)?;
        let (rows, cols, data) = py.detach(|| batch::stft(y, &spec.cfg))?;
        // Re and im interleaved: one finite check over both.
        finite_result(&data.iter().flat_map(|c| [c.re, c.im]).collect::<Vec<f32>>())?;
        let a = Array2::from_shape_vec((rows, cols), data).map_err(|e| PyValueError::new_err(e.to_string()))?;
        Ok(a.into_pyarray(py))
    })
}

#[pyfunction]
fn frame<'py>(
    py: Python<'py>,
    y: PyReadonlyArray1<'py, f32>,
    frame_length: usize,
    hop_length: usize,
) -> PyResult<Bound<'py, PyArray2<f32>>> {
    guard(|| to_py(py, batch::frame(slice("y", &y)?, frame_length, hop_length)?))
}

/// The dense mel filterbank of a spec's mel parameters.
#[pyfunction]
fn mel_filters<'py>(py: Python<'py>, spec: &Spec) -> PyResult<Bound<'py, PyArray2<f32>>> {
    guard(|| {
        let c = &spec.cfg;
        let p = MelParams {
            sr: c.sr,
            n_fft: c.n_fft,
            n_mels: c.n_mels,
            fmin: c.fmin,
            fmax: c.fmax,
            htk: c.htk,
            norm: c.mel_norm,
        };
        let bank = MelBank::new(&p)?;
        to_py(
            py,
            Matrix {
                rows: c.n_mels,
                cols: bank.n_bins,
                data: bank.dense(),
            },
        )
    })
}

#[pyfunction]
fn delta<'py>(
    py: Python<'py>,
    data: PyReadonlyArray2<'py, f32>,
    width: usize,
    order: usize,
    mode: &str,
) -> PyResult<Bound<'py, PyArray2<f32>>> {
    guard(|| {
        let m = matrix(&data);
        let mode = DeltaMode::parse(mode)?;
        if let Some(i) = m.data.iter().position(|v| !v.is_finite()) {
            return Err(PyValueError::new_err(format!(
                "data is not finite everywhere (data.flat[{i}]={})",
                m.data[i]
            )));
        }
        let mut out = vec![0.0; m.data.len()];
        crate::delta::delta(&m.data, m.cols, width, order, mode, &mut out)?;
        to_py(py, Matrix { data: out, ..m })
    })
}

#[pyfunction]
fn resample<'py>(
    py: Python<'py>,
    y: PyReadonlyArray1<'py, f32>,
    orig_sr: f64,
    target_sr: f64,
) -> PyResult<Bound<'py, PyArray1<f32>>> {
    guard(|| {
        let y = slice("y", &y)?;
        let out = py.detach(|| crate::resample::resample(y, orig_sr, target_sr))?;
        finite_result(&out)?;
        Ok(out.into_pyarray(py))
    })
}

#[pyfunction]
fn fft_floor(py: Python<'_>, y: PyReadonlyArray1<'_, f32>, n_fft: usize, hop_length: usize) -> PyResult<usize> {
    guard(|| {
        let y = slice("y", &y)?;
        Ok(py.detach(|| batch::fft_floor(y, n_fft, hop_length))?)
    })
}

#[allow(clippy::too_many_arguments)]
fn yin_params(
    sr: f64,
    fmin: f64,
    fmax: f64,
    frame_length: usize,
    hop_length: Option<usize>,
    trough_threshold: f64,
    center: bool,
    pad_mode: &str,
) -> PyResult<YinParams> {
    let p = YinParams {
        sr,
        fmin,
        fmax,
        frame_length,
        hop_length,
        trough_threshold,
        center,
        pad_mode: PadMode::parse(pad_mode)?,
    };
    p.validate()?;
    Ok(p)
}

/// `librosa.yin`: f0 of every frame.
#[pyfunction]
#[pyo3(signature = (y, *, sr, fmin, fmax, frame_length, hop_length, trough_threshold, center, pad_mode))]
#[allow(clippy::too_many_arguments)]
fn yin<'py>(
    py: Python<'py>,
    y: PyReadonlyArray1<'py, f32>,
    sr: f64,
    fmin: f64,
    fmax: f64,
    frame_length: usize,
    hop_length: Option<usize>,
    trough_threshold: f64,
    center: bool,
    pad_mode: &str,
) -> PyResult<Bound<'py, PyArray1<f32>>> {
    let p = yin_params(
        sr,
        fmin,
        fmax,
        frame_length,
        hop_length,
        trough_threshold,
        center,
        pad_mode,
    )?;
    let y = slice("y", &y)?;
    let f0 = py.detach(|| crate::pitch::yin(y, &p))?;
    Ok(f0.into_iter().map(|v| v as f32).collect::<Vec<f32>>().into_pyarray(py))
}

/// `librosa.pyin`: `(f0, voiced_flag, voiced_prob)` of every frame.
#[pyfunction]
#[pyo3(signature = (y, *, sr, fmin, fmax, frame_length, hop_length, n_thresholds, beta_parameters, boltzmann_parameter,
    resolution, max_transition_rate, switch_prob, no_trough_prob, fill_na, center, pad_mode))]
#[allow(clippy::too_many_arguments, clippy::type_complexity)]
fn pyin<'py>(
    py: Python<'py>,
    y: PyReadonlyArray1<'py, f32>,
    sr: f64,
    fmin: f64,
    fmax: f64,
    frame_length: usize,
    hop_length: Option<usize>,
    n_thresholds: usize,
    beta_parameters: (f64, f64),
    boltzmann_parameter: f64,
    resolution: f64,
    max_transition_rate: f64,
    switch_prob: f64,
    no_trough_prob: f64,
    fill_na: Option<f64>,
    center: bool,
    pad_mode: &str,
) -> PyResult<(
    Bound<'py, PyArray1<f32>>,
    Bound<'py, PyArray1<bool>>,
    Bound<'py, PyArray1<f32>>,
)> {
    let yp = yin_params(sr, fmin, fmax, frame_length, hop_length, 0.1, center, pad_mode)?;
    let pp = crate::pitch_hmm::PyinParams {
        n_thresholds,
        beta_parameters,
        boltzmann_parameter,
        resolution,
        max_transition_rate,
        switch_prob,
        no_trough_prob,
        fill_na,
    };
    let y = slice("y", &y)?;
    let out = py.detach(|| crate::pitch_hmm::pyin(y, &yp, &pp))?;
    let f32s = |v: Vec<f64>| v.into_iter().map(|x| x as f32).collect::<Vec<f32>>();
    Ok((
        f32s(out.f0).into_pyarray(py),
        out.voiced_flag.into_pyarray(py),
        f32s(out.voiced_prob).into_pyarray(py),
    ))
}

/// Streaming resampler (the native side of `ser_edge.audio.Resampler`).
#[pyclass(module = "ser_edge._dsp")]
pub struct Resampler {
    inner: crate::resample::Resampler,
}

#[pymethods]
impl Resampler {
    #[new]
    fn new(orig_sr: f64, target_sr: f64) -> PyResult<Resampler> {
        guard(|| {
            Ok(Resampler {
                inner: crate::resample::Resampler::new(orig_sr, target_sr)?,
            })
        })
    }

    /// A result that overflows float32 raises `ValueError` and resets the resampler.
    fn push<'py>(&mut self, py: Python<'py>, chunk: PyReadonlyArray1<'py, f32>) -> PyResult<Bound<'py, PyArray1<f32>>> {
        guard(|| {
            let chunk = slice("chunk", &chunk)?;
            let inner = &mut self.inner;
            let out = py.detach(|| inner.push(chunk))?;
            finite_result(&out).inspect_err(|_| self.inner.reset())?;
            Ok(out.into_pyarray(py))
        })
    }

    fn flush<'py>(&mut self, py: Python<'py>) -> PyResult<Bound<'py, PyArray1<f32>>> {
        guard(|| {
            let out = self.inner.flush();
            finite_result(&out)?;
            Ok(out.into_pyarray(py))
        })
    }

    fn reset(&mut self) {
        self.inner.reset();
    }
}

/// Streaming extractor (the native side of `ser_edge.features.Stream`).
#[pyclass(module = "ser_edge._dsp")]
pub struct Stream {
    inner: stream::Stream,
}

#[pymethods]
impl Stream {
    #[new]
    fn new(spec: &Spec) -> PyResult<Stream> {
        guard(|| {
            Ok(Stream {
                inner: stream::Stream::new(&spec.cfg)?,
            })
        })
    }

    /// Frames that overflow float32 raise `ValueError` and reset the stream.
    fn push<'py>(&mut self, py: Python<'py>, chunk: PyReadonlyArray1<'py, f32>) -> PyResult<Bound<'py, PyArray2<f32>>> {
        guard(|| {
            let m = self.inner.push(slice("chunk", &chunk)?)?;
            to_py(py, m).inspect_err(|_| self.inner.reset())
        })
    }

    fn flush<'py>(&mut self, py: Python<'py>) -> PyResult<Bound<'py, PyArray2<f32>>> {
        guard(|| {
            let m = self.inner.flush()?;
            to_py(py, m)
        })
    }

    fn reset(&mut self) {
        self.inner.reset();
    }

    #[getter]
    fn n_features(&self) -> usize {
        self.inner.n_features()
    }
}

#[pymodule]
fn _dsp(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<Spec>()?;
    m.add_class::<Stream>()?;
    m.add_class::<Resampler>()?;
    m.add_function(wrap_pyfunction!(extract, m)?)?;
    m.add_function(wrap_pyfunction!(extract_many, m)?)?;
    m.add_function(wrap_pyfunction!(from_spectrogram, m)?)?;
    m.add_function(wrap_pyfunction!(mfcc, m)?)?;
    m.add_function(wrap_pyfunction!(power_to_db, m)?)?;
    m.add_function(wrap_pyfunction!(contrast_db, m)?)?;
    m.add_function(wrap_pyfunction!(estimate_tuning, m)?)?;
    m.add_function(wrap_pyfunction!(stft, m)?)?;
    m.add_function(wrap_pyfunction!(frame, m)?)?;
    m.add_function(wrap_pyfunction!(mel_filters, m)?)?;
    m.add_function(wrap_pyfunction!(delta, m)?)?;
    m.add_function(wrap_pyfunction!(resample, m)?)?;
    m.add_function(wrap_pyfunction!(fft_floor, m)?)?;
    m.add_function(wrap_pyfunction!(yin, m)?)?;
    m.add_function(wrap_pyfunction!(pyin, m)?)?;
    Ok(())
}

//! Windowed real FFT of one frame. float64 for features that read bins far below the peak
//! (librosa's window is float64, so numpy transforms in float64 even for float32 audio);
//! float32 where only mel bands are read, whose sums are insensitive to the float32 noise floor.
//! Plans are cached per size and precision and shared by threads.

use realfft::num_complex::Complex;
use realfft::num_traits::{AsPrimitive, Float};
use realfft::{ComplexToReal, FftNum, RealFftPlanner, RealToComplex};
use std::any::Any;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

type Plan<T> = Arc<dyn RealToComplex<T>>;

fn plan<T: FftNum>(n_fft: usize) -> Plan<T> {
    static PLANS: OnceLock<Mutex<HashMap<(usize, usize), Box<dyn Any + Send>>>> = OnceLock::new();
    let mut plans = PLANS
        .get_or_init(|| Mutex::new(HashMap::new()))
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    let entry = plans
        .entry((n_fft, std::mem::size_of::<T>()))
        .or_insert_with(|| Box::new(RealFftPlanner::<T>::new().plan_fft_forward(n_fft)));
    match entry.downcast_ref::<Plan<T>>() {
        Some(p) => p.clone(),
        None => RealFftPlanner::<T>::new().plan_fft_forward(n_fft),
    }
}

/// The cached inverse real FFT plan of size `n_fft` (unnormalised, as realfft computes it).
pub fn inverse_plan<T: FftNum>(n_fft: usize) -> Arc<dyn ComplexToReal<T>> {
    static PLANS: OnceLock<Mutex<HashMap<(usize, usize), Box<dyn Any + Send>>>> = OnceLock::new();
    let mut plans = PLANS
        .get_or_init(|| Mutex::new(HashMap::new()))
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    let entry = plans
        .entry((n_fft, std::mem::size_of::<T>()))
        .or_insert_with(|| Box::new(RealFftPlanner::<T>::new().plan_fft_inverse(n_fft)));
    match entry.downcast_ref::<Arc<dyn ComplexToReal<T>>>() {
        Some(p) => p.clone(),
        None => RealFftPlanner::<T>::new().plan_fft_inverse(n_fft),
    }
}

/// The cached forward real FFT plan of size `n_fft`.
pub fn forward_plan<T: FftNum>(n_fft: usize) -> Arc<dyn RealToComplex<T>> {
    plan::<T>(n_fft)
}

/// Circular autocorrelation by a real FFT pair of size `n` (transform, `|X|^2`, inverse), with
/// its plans and buffers: write the (zero-padded) signal into `time`, call
/// [`Autocorrelation::run`], read the unnormalised autocorrelation (`n` times the mean) back from
/// `time`.
pub struct Autocorrelation {
    fwd: Arc<dyn RealToComplex<f64>>,
    inv: Arc<dyn ComplexToReal<f64>>,
    pub time: Vec<f64>,
    spectrum: Vec<Complex<f64>>,
    scratch_fwd: Vec<Complex<f64>>,
    scratch_inv: Vec<Complex<f64>>,
}

impl Autocorrelation {
    pub fn new(n: usize) -> Autocorrelation {
        let fwd = forward_plan::<f64>(n);
        let inv = inverse_plan::<f64>(n);
        Autocorrelation {
            time: fwd.make_input_vec(),
            spectrum: fwd.make_output_vec(),
            scratch_fwd: fwd.make_scratch_vec(),
            scratch_inv: inv.make_scratch_vec(),
            fwd,
            inv,
        }
    }

    /// `time` <- the autocorrelation of `time`.
    pub fn run(&mut self) {
        // Lengths are consistent by construction, so the transforms cannot fail.
        let _ = self
            .fwd
            .process_with_scratch(&mut self.time, &mut self.spectrum, &mut self.scratch_fwd);
        for c in self.spectrum.iter_mut() {
            *c = Complex::new(c.re * c.re + c.im * c.im, 0.0);
        }
        self.inverse();
    }

    /// `time` <- the autocorrelation of a signal whose `|X|^2` (`n/2 + 1` bins) is `power`.
    pub fn from_power(&mut self, power: &[f64]) {
        for (c, &v) in self.spectrum.iter_mut().zip(power) {
            *c = Complex::new(v, 0.0);
        }
        self.inverse();
    }

    fn inverse(&mut self) {
        let _ = self
            .inv
            .process_with_scratch(&mut self.spectrum, &mut self.time, &mut self.scratch_inv);
    }
}

/// One frame's windowed real FFT in precision `T`. Owns its buffers; one per thread.
pub struct FrameFft<T: FftNum> {
    plan: Plan<T>,
    window: Vec<T>,
    input: Vec<T>,
    scratch: Vec<Complex<T>>,
    pub spectrum: Vec<Complex<T>>,
}

impl<T: FftNum + Float + AsPrimitive<f32>> FrameFft<T>
where
    f32: AsPrimitive<T>,
    f64: AsPrimitive<T>,
{
    /// `window` has length `n_fft` (already centred and zero-padded).
    pub fn new(window: &[f64]) -> FrameFft<T> {
        let plan = plan::<T>(window.len());
        FrameFft {
            input: plan.make_input_vec(),
            scratch: plan.make_scratch_vec(),
            spectrum: plan.make_output_vec(),
            window: window.iter().map(|&w| w.as_()).collect(),
            plan,
        }
    }

    pub fn n_bins(&self) -> usize {
        self.spectrum.len()
    }

    /// Windows `frame` (length `n_fft`) and transforms it into `self.spectrum`.
    #[inline(always)]
    pub fn transform(&mut self, frame: &[f32]) {
        for ((x, &s), &w) in self.input.iter_mut().zip(frame).zip(&self.window) {
            *x = s.as_() * w;
        }
        self.run();
    }

    /// The FFT alone on unwindowed input: the benchmarks' floor.
    pub fn transform_raw(&mut self, frame: &[f32]) {
        self.input.iter_mut().zip(frame).for_each(|(x, &s)| *x = s.as_());
        self.run();
    }

    fn run(&mut self) {
        // Lengths are consistent by construction, so this cannot fail.
        let _ = self
            .plan
            .process_with_scratch(&mut self.input, &mut self.spectrum, &mut self.scratch);
    }

    /// `|X|` and/or `|X|^2` of the last transform, as float32.
    #[inline(always)]
    pub fn magnitudes(&self, mag: Option<&mut [f32]>, pow2: Option<&mut [f32]>) {
        // Four bins at a time, so that the re/im de-interleave vectorises.
        fn each<T: Float + AsPrimitive<f32>>(spectrum: &[Complex<T>], out: &mut [f32], f: impl Fn(T) -> f32) {
            let mut outs = out.chunks_exact_mut(4);
            let mut ins = spectrum.chunks_exact(4);
            for (o, c) in (&mut outs).zip(&mut ins) {
                for k in 0..4 {
                    o[k] = f(c[k].re * c[k].re + c[k].im * c[k].im);
                }
            }
            for (o, c) in outs.into_remainder().iter_mut().zip(ins.remainder()) {
                *o = f(c.re * c.re + c.im * c.im);
            }
        }
        if let Some(m) = mag {
            each(&self.spectrum, m, |p| p.sqrt().as_());
        }
        if let Some(p) = pow2 {
            each(&self.spectrum, p, |p| p.as_());
        }
    }
}

/// Power spectrum of a windowed real frame of even length `n`, float32, by the real-input
/// trick: even and odd samples packed as re/im of one `n/2`-point complex FFT, then split with
/// twiddles in a single pass that also squares. Twice realfft's speed on the mel path, whose
/// scalar split step costs more than the complex FFT itself.
pub struct PowerFft {
    fft: Arc<dyn rustfft::Fft<f32>>,
    twiddles: Arc<Vec<Complex<f32>>>,
    window: Vec<f32>,
    buf: Vec<Complex<f32>>,
    rev: Vec<Complex<f32>>,
    scratch: Vec<Complex<f32>>,
}

/// The `n/2`-point complex FFT plan and the split step's twiddles `e^{-2 pi i k / n}`, per `n`.
fn half_plan(n: usize) -> (Arc<dyn rustfft::Fft<f32>>, Arc<Vec<Complex<f32>>>) {
    type Entry = (Arc<dyn rustfft::Fft<f32>>, Arc<Vec<Complex<f32>>>);
    static PLANS: OnceLock<Mutex<(rustfft::FftPlanner<f32>, HashMap<usize, Entry>)>> = OnceLock::new();
    let cell = PLANS.get_or_init(|| Mutex::new((rustfft::FftPlanner::new(), HashMap::new())));
    let mut guard = cell.lock().unwrap_or_else(|e| e.into_inner());
    let (planner, plans) = &mut *guard;
    plans
        .entry(n)
        .or_insert_with(|| {
            let twiddles = (0..n / 2)
                .map(|k| {
                    let a = -2.0 * std::f64::consts::PI * k as f64 / n as f64;
                    Complex::new(a.cos() as f32, a.sin() as f32)
                })
                .collect();
            (planner.plan_fft_forward(n / 2), Arc::new(twiddles))
        })
        .clone()
}

impl PowerFft {
    /// `None` for odd `n` (use `FrameFft`).
    pub fn new(window: &[f64]) -> Option<PowerFft> {
        let n = window.len();
        if !n.is_multiple_of(2) || n < 2 {
            return None;
        }
        let m = n / 2;
        let (fft, twiddles) = half_plan(n);
        Some(PowerFft {
            scratch: vec![Complex::new(0.0, 0.0); fft.get_inplace_scratch_len()],
            buf: vec![Complex::new(0.0, 0.0); m],
            window: window.iter().map(|&w| w as f32).collect(),
            rev: vec![Complex::new(0.0, 0.0); m],
            twiddles,
            fft,
        })
    }

    /// `|X[k]|^2`, `k = 0..=n/2`, of `frame * window` into `out`.
    #[inline]
    pub fn power(&mut self, frame: &[f32], out: &mut [f32]) {
        for ((z, x), w) in self
            .buf
            .iter_mut()
            .zip(frame.chunks_exact(2))
            .zip(self.window.chunks_exact(2))
        {
            *z = Complex::new(x[0] * w[0], x[1] * w[1]);
        }
        self.split(out, |x| x.re * x.re + x.im * x.im);
    }

    /// The real FFT alone (no window, `X` itself): the benchmarks' floor.
    pub fn transform_raw(&mut self, frame: &[f32], out: &mut [Complex<f32>]) {
        for (z, x) in self.buf.iter_mut().zip(frame.chunks_exact(2)) {
            *z = Complex::new(x[0], x[1]);
        }
        self.split(out, |x| x);
    }

    /// `|X[k]|^2` of `frame * window` into `out[k * S]`, `k = 0..=n/2`: one frame of a
    /// block stored frame-interleaved (`MelBank::apply_block`). The same transform as `power`.
    #[inline]
    pub fn power_strided<const S: usize>(&mut self, frame: &[f32], out: &mut [f32]) {
        for ((z, x), w) in self
            .buf
            .iter_mut()
            .zip(frame.chunks_exact(2))
            .zip(self.window.chunks_exact(2))
        {
            *z = Complex::new(x[0] * w[0], x[1] * w[1]);
        }
        self.half_transform();
        let m = self.buf.len();
        for (((o, &z), &r), &w) in out
            .chunks_exact_mut(S)
            .zip(&self.buf)
            .zip(&self.rev)
            .zip(self.twiddles.iter())
        {
            let x = unpack(z, r, w);
            o[0] = x.re * x.re + x.im * x.im;
        }
        let z0 = self.buf[0];
        out[m * S] = (z0.re - z0.im) * (z0.re - z0.im);
    }

    /// The half-length complex FFT of `buf`, and `rev[k] = conj(Z[(m - k) mod m])`.
    #[inline(always)]
    fn half_transform(&mut self) {
        self.fft.process_with_scratch(&mut self.buf, &mut self.scratch);
        self.rev[0] = self.buf[0].conj();
        for (r, z) in self.rev[1..].iter_mut().zip(self.buf[1..].iter().rev()) {
            *r = z.conj();
        }
    }

    /// Transforms `buf` and writes `f(X[k])` for `k = 0..=n/2`.
    #[inline(always)]
    fn split<T>(&mut self, out: &mut [T], f: impl Fn(Complex<f32>) -> T) {
        self.half_transform();
        let m = self.buf.len();
        for (((o, &z), &r), &w) in out.iter_mut().zip(&self.buf).zip(&self.rev).zip(self.twiddles.iter()) {
            *o = f(unpack(z, r, w));
        }
        let z0 = self.buf[0];
        out[m] = f(Complex::new(z0.re - z0.im, 0.0));
    }
}

/// `X[k] = (Z[k] + rev[k]) / 2 + W^k (Z[k] - rev[k]) / 2i` from the half-length transform `Z`.
#[inline(always)]
fn unpack(z: Complex<f32>, r: Complex<f32>, w: Complex<f32>) -> Complex<f32> {
    let (er, ei) = (0.5 * (z.re + r.re), 0.5 * (z.im + r.im));
    let (or, oi) = (0.5 * (z.im - r.im), -0.5 * (z.re - r.re));
    Complex::new(er + w.re * or - w.im * oi, ei + w.re * oi + w.im * or)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn power_fft_equals_realfft() {
        for n in [2usize, 4, 16, 400, 512, 2048] {
            let window: Vec<f64> = (0..n)
                .map(|i| 0.5 - 0.5 * (2.0 * std::f64::consts::PI * i as f64 / n as f64).cos())
                .collect();
            let frame: Vec<f32> = (0..n).map(|i| ((i * 7919) % 1000) as f32 / 500.0 - 1.0).collect();
            let mut want = vec![0.0; n / 2 + 1];
            let mut f = FrameFft::<f64>::new(&window);
            f.transform(&frame);
            f.magnitudes(None, Some(&mut want));
            let mut got = vec![0.0; n / 2 + 1];
            PowerFft::new(&window).unwrap().power(&frame, &mut got);
            let peak = want.iter().copied().fold(0f32, f32::max);
            for (g, w) in got.iter().zip(&want) {
                assert!((g - w).abs() <= 1e-5 * peak, "n={n}: {g} vs {w}");
            }
        }
        assert!(PowerFft::new(&[1.0; 5]).is_none());
        // The strided form is the same transform, value for value.
        let window: Vec<f64> = (0..512).map(|i| 0.5 - 0.5 * (i as f64 * 0.0123).cos()).collect();
        let frame: Vec<f32> = (0..512).map(|i| ((i * 7919) % 1000) as f32 / 500.0 - 1.0).collect();
        let mut f = PowerFft::new(&window).unwrap();
        let (mut flat, mut strided) = (vec![0.0; 257], vec![-1.0; 257 * 3]);
        f.power(&frame, &mut flat);
        f.power_strided::<3>(&frame, &mut strided[1..]);
        assert!(flat.iter().zip(strided[1..].iter().step_by(3)).all(|(a, b)| a == b));
    }

    #[test]
    fn dc_and_sine_bins() {
        let n = 16;
        let mut f = FrameFft::<f64>::new(&vec![1.0; n]);
        f.transform(&vec![1.0; n]);
        assert!((f.spectrum[0].re - n as f64).abs() < 1e-12);
        let mut g = FrameFft::<f32>::new(&vec![1.0; n]);
        g.transform(&vec![1.0; n]);
        assert!((g.spectrum[0].re - n as f32).abs() < 1e-5);
        let sine: Vec<f32> = (0..n)
            .map(|i| (2.0 * std::f64::consts::PI * 3.0 * i as f64 / n as f64).cos() as f32)
            .collect();
        f.transform(&sine);
        let mut mag = vec![0.0; f.n_bins()];
        f.magnitudes(Some(&mut mag), None);
        assert!((mag[3] - n as f32 / 2.0).abs() < 1e-4);
        assert!(mag[2] < 1e-4 && mag[4] < 1e-4);
    }
}

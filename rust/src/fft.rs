//! Windowed real FFT of one frame, with plans cached per size and shared across threads.
//! float32 for speed; float64 where a feature reads bins far below the peak (spectral contrast).

use realfft::num_complex::Complex;
use realfft::num_traits::AsPrimitive;
use realfft::{FftNum, RealFftPlanner, RealToComplex};
use std::any::Any;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

type Plan<T> = Arc<dyn RealToComplex<T>>;

fn plan<T: FftNum>(n_fft: usize) -> Plan<T> {
    static PLANS: OnceLock<Mutex<HashMap<(usize, usize), Box<dyn Any + Send>>>> = OnceLock::new();
    let mut plans = PLANS.get_or_init(|| Mutex::new(HashMap::new())).lock().unwrap_or_else(|e| e.into_inner());
    let entry = plans
        .entry((n_fft, std::mem::size_of::<T>()))
        .or_insert_with(|| Box::new(RealFftPlanner::<T>::new().plan_fft_forward(n_fft)));
    match entry.downcast_ref::<Plan<T>>() {
        Some(p) => p.clone(),
        None => RealFftPlanner::<T>::new().plan_fft_forward(n_fft),
    }
}

/// One frame's windowed real FFT. Owns its buffers; one per thread.
pub struct FrameFft<T: FftNum> {
    plan: Plan<T>,
    window: Vec<T>,
    input: Vec<T>,
    scratch: Vec<Complex<T>>,
    pub spectrum: Vec<Complex<T>>,
}

impl<T: FftNum + realfft::num_traits::Float> FrameFft<T>
where
    f32: AsPrimitive<T>,
    f64: AsPrimitive<T>,
    T: AsPrimitive<f32>,
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
        let _ = self.plan.process_with_scratch(&mut self.input, &mut self.spectrum, &mut self.scratch);
    }

    /// `|X|^power` of the last transform into `out`.
    pub fn magnitude_pow(&self, power: f32, out: &mut [f32]) {
        let it = out.iter_mut().zip(&self.spectrum);
        let norm2 = |c: &Complex<T>| c.re * c.re + c.im * c.im;
        if power == 2.0 {
            it.for_each(|(o, c)| *o = norm2(c).as_());
        } else if power == 1.0 {
            it.for_each(|(o, c)| *o = norm2(c).sqrt().as_());
        } else {
            it.for_each(|(o, c)| *o = norm2(c).sqrt().as_().powf(power));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dc_and_sine_bins() {
        let n = 16;
        let mut f = FrameFft::<f32>::new(&vec![1.0; n]);
        f.transform(&vec![1.0; n]);
        assert!((f.spectrum[0].re - n as f32).abs() < 1e-5);
        let sine: Vec<f32> = (0..n)
            .map(|i| (2.0 * std::f32::consts::PI * 3.0 * i as f32 / n as f32).cos())
            .collect();
        let mut g = FrameFft::<f64>::new(&vec![1.0; n]);
        for mag in [
            {
                f.transform(&sine);
                let mut m = vec![0.0; f.n_bins()];
                f.magnitude_pow(1.0, &mut m);
                m
            },
            {
                g.transform(&sine);
                let mut m = vec![0.0; g.n_bins()];
                g.magnitude_pow(1.0, &mut m);
                m
            },
        ] {
            assert!((mag[3] - n as f32 / 2.0).abs() < 1e-4);
            assert!(mag[2] < 1e-4 && mag[4] < 1e-4);
        }
    }
}

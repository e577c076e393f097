//! Band-limited resampling with one filter for every pair of rates: a Kaiser-windowed sinc
//! (beta 9, 32 zero crossings, cutoff 0.945 of the lower Nyquist), the signal zero-padded at
//! both ends. Output sample `n` lies at input time `t = n * orig_sr / target_sr`.
//!
//! The filter is applied in one of two ways, chosen by the rates:
//! - **polyphase** (`Bank`): when both rates are integers (up to float rounding) and
//!   `target/orig = up/down` in lowest terms has few phases, `t` only takes `up` fractional
//!   positions. Their taps are computed once per ratio (cached), stored as f32 per phase, and
//!   each output is one dot product. 22.05 -> 16 kHz has 320 phases of 96 taps.
//! - **table** otherwise: the kernel is interpolated from a table for every tap, in f64.
//!
//! [`Resampler`] streams: chunks of any size in, exactly the samples [`resample`] gives for the
//! concatenated signal out. [`resample`] is one push of the whole signal and a flush.

use crate::error::{self, positive_f64, Result};
use crate::fail;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock, PoisonError};

const ZERO_CROSSINGS: usize = 32;
const TABLE_PER_CROSSING: usize = 512;
const ROLLOFF: f64 = 0.945;
const BETA: f64 = 9.0;
/// Rates further apart than this factor are refused (the kernel or the output would be huge).
const MAX_RATIO: f64 = 16384.0;
/// A polyphase bank holds at most this many taps (4 MiB); larger ones use the table.
const MAX_BANK_TAPS: usize = 1 << 20;
/// Banks kept in the cache (it is emptied when full).
const MAX_CACHED_BANKS: usize = 8;
/// Accumulators of the dot product; taps per phase are a multiple of this.
const LANES: usize = 8;

fn bessel_i0(x: f64) -> f64 {
    let (mut sum, mut term, mut k) = (1.0, 1.0, 1.0);
    while term > 1e-12 * sum {
        term *= (x / (2.0 * k)).powi(2);
        sum += term;
        k += 1.0;
    }
    sum
}

/// The kernel `h(u)` at `u >= 0` zero crossings from its centre (0 from `ZERO_CROSSINGS` on).
fn kernel(u: f64) -> f64 {
    let x = u / ZERO_CROSSINGS as f64;
    if x >= 1.0 {
        return 0.0;
    }
    let w = bessel_i0(BETA * (1.0 - x * x).sqrt()) / bessel_i0(BETA);
    let a = std::f64::consts::PI * u * ROLLOFF;
    let sinc = if u == 0.0 { 1.0 } else { a.sin() / a };
    ROLLOFF * sinc * w
}

/// `kernel(i / TABLE_PER_CROSSING)` for `i` in `0..=ZERO_CROSSINGS * TABLE_PER_CROSSING + 1`.
fn table() -> &'static [f64] {
    static TABLE: OnceLock<Vec<f64>> = OnceLock::new();
    TABLE.get_or_init(|| {
        (0..ZERO_CROSSINGS * TABLE_PER_CROSSING + 2)
            .map(|i| kernel(i as f64 / TABLE_PER_CROSSING as f64))
            .collect()
    })
}

/// The polyphase filter bank of `target/orig = up/down`: for phase `p` (input time
/// `t = base + p/up`), `taps` coefficients for the inputs `base - lead ..`.
struct Bank {
    up: u64,
    down: u64,
    lead: i64,
    taps: usize,
    coef: Vec<f32>,
}

impl Bank {
    /// `(lead, taps)`: the kernel reaches `lead` input samples to each side of `t`.
    fn size(up: u64, down: u64) -> (usize, usize) {
        let scale = (up as f64 / down as f64).min(1.0);
        let lead = (ZERO_CROSSINGS as f64 / scale).ceil() as usize;
        (lead, (2 * lead + 1).next_multiple_of(LANES))
    }

    fn new(up: u64, down: u64) -> Bank {
        let scale = (up as f64 / down as f64).min(1.0);
        let (lead, taps) = Bank::size(up, down);
        let mut coef = Vec::with_capacity(up as usize * taps);
        for p in 0..up {
            for j in 0..taps {
                let dist = p as f64 / up as f64 + lead as f64 - j as f64; // t - input index
                coef.push((scale * kernel(dist.abs() * scale)) as f32);
            }
        }
        Bank {
            up,
            down,
            lead: lead as i64,
            taps,
            coef,
        }
    }

    /// The cached bank of `up/down`.
    fn get(up: u64, down: u64) -> Arc<Bank> {
        type Banks = Mutex<HashMap<(u64, u64), Arc<Bank>>>;
        static CACHE: OnceLock<Banks> = OnceLock::new();
        let cache = CACHE.get_or_init(Default::default);
        if let Some(bank) = cache.lock().unwrap_or_else(PoisonError::into_inner).get(&(up, down)) {
            return bank.clone();
        }
        let bank = Arc::new(Bank::new(up, down)); // built without holding the lock
        let mut banks = cache.lock().unwrap_or_else(PoisonError::into_inner);
        if banks.len() >= MAX_CACHED_BANKS {
            banks.clear();
        }
        banks.insert((up, down), bank.clone());
        bank
    }
}

/// `(up, down)` with `target/orig = up/down` in lowest terms when both rates are integers (up
/// to float rounding, e.g. `16000 * 1.05`) and the bank is small enough.
fn rational(orig_sr: f64, target_sr: f64) -> Option<(u64, u64)> {
    fn whole(x: f64) -> Option<u64> {
        let r = x.round();
        ((1.0..=1e12).contains(&r) && (x - r).abs() <= 1e-9 * x).then_some(r as u64)
    }
    fn gcd(a: u64, b: u64) -> u64 {
        if b == 0 {
            a
        } else {
            gcd(b, a % b)
        }
    }
    let (orig, target) = (whole(orig_sr)?, whole(target_sr)?);
    let g = gcd(orig, target);
    let (up, down) = (target / g, orig / g);
    let (_, taps) = Bank::size(up, down);
    (up as usize <= MAX_BANK_TAPS / taps).then_some((up, down))
}

/// Sum of `x[i] * h[i]` over a multiple of `LANES` taps, in `LANES` f32 accumulators (vectorised).
#[inline]
fn dot(x: &[f32], h: &[f32]) -> f32 {
    let mut acc = [0.0f32; LANES];
    for (xs, hs) in x.chunks_exact(LANES).zip(h.chunks_exact(LANES)) {
        for i in 0..LANES {
            acc[i] += xs[i] * hs[i];
        }
    }
    acc.iter().sum()
}

/// How output samples are computed from input samples.
enum Filter {
    Identity,
    Poly(Arc<Bank>),
    /// `ratio = target/orig`, `scale = min(ratio, 1)`, kernel half-width `reach` input samples.
    Table {
        ratio: f64,
        scale: f64,
        reach: f64,
        span: usize,
    },
}

impl Filter {
    fn new(orig_sr: f64, target_sr: f64) -> Filter {
        if orig_sr == target_sr {
            return Filter::Identity;
        }
        if let Some((up, down)) = rational(orig_sr, target_sr) {
            return Filter::Poly(Bank::get(up, down));
        }
        let ratio = target_sr / orig_sr;
        let scale = ratio.min(1.0);
        let reach = ZERO_CROSSINGS as f64 / scale;
        Filter::Table {
            ratio,
            scale,
            reach,
            span: (2.0 * reach).floor() as usize + 2,
        }
    }

    /// Output samples of `n_in` input samples: `ceil(n_in * target / orig)`.
    fn n_out(&self, n_in: u64) -> u64 {
        match self {
            Filter::Identity => n_in,
            Filter::Poly(b) => (n_in * b.up).div_ceil(b.down),
            Filter::Table { ratio, .. } => (n_in as f64 * ratio).ceil() as u64,
        }
    }

    /// Number of input samples one output reads.
    fn span(&self) -> usize {
        match self {
            Filter::Identity => 1,
            Filter::Poly(b) => b.taps,
            Filter::Table { span, .. } => *span,
        }
    }

    /// Index of the first input sample output `n` reads (negative: the zero padding).
    fn first_input(&self, n: u64) -> i64 {
        match self {
            Filter::Identity => n as i64,
            Filter::Poly(b) => (n * b.down / b.up) as i64 - b.lead,
            Filter::Table { ratio, reach, .. } => (n as f64 / ratio - reach).ceil() as i64,
        }
    }

    /// Output `n` from `x`, the `span()` input samples from `first_input(n)`.
    fn output(&self, n: u64, x: &[f32]) -> f32 {
        match self {
            Filter::Identity => x[0],
            Filter::Poly(b) => {
                let p = (n * b.down % b.up) as usize;
                dot(x, &b.coef[p * b.taps..(p + 1) * b.taps])
            }
            Filter::Table { ratio, scale, .. } => {
                let h = table();
                let t = n as f64 / ratio;
                let k0 = self.first_input(n) as f64;
                let step = scale * TABLE_PER_CROSSING as f64;
                let mut acc = 0.0;
                for (j, &v) in x.iter().enumerate() {
                    let pos = (t - (k0 + j as f64)).abs() * step;
                    let i = pos as usize;
                    if i + 1 < h.len() {
                        let frac = pos - i as f64;
                        acc += v as f64 * (h[i] + frac * (h[i + 1] - h[i]));
                    }
                }
                (acc * scale) as f32
            }
        }
    }
}

/// Streaming resampler: [`push`](Resampler::push) chunks, then [`flush`](Resampler::flush) at
/// the end of the signal. An output is returned once the inputs its kernel reaches have arrived
/// (about 2 ms of audio; 4 ms at 8 kHz upwards).
pub struct Resampler {
    filter: Filter,
    /// Input samples from index `start` on (the zero padding before the signal included).
    buf: Vec<f32>,
    start: i64,
    n_in: u64,
    n_done: u64,
}

impl Resampler {
    pub fn new(orig_sr: f64, target_sr: f64) -> Result<Resampler> {
        positive_f64("orig_sr", orig_sr)?;
        positive_f64("target_sr", target_sr)?;
        let ratio = target_sr / orig_sr;
        if !(1.0 / MAX_RATIO..=MAX_RATIO).contains(&ratio) {
            fail!("target_sr/orig_sr={ratio} must be between 1/{MAX_RATIO} and {MAX_RATIO}");
        }
        let mut r = Resampler {
            filter: Filter::new(orig_sr, target_sr),
            buf: Vec::new(),
            start: 0,
            n_in: 0,
            n_done: 0,
        };
        r.reset();
        Ok(r)
    }

    /// Starts a new signal.
    pub fn reset(&mut self) {
        self.start = self.filter.first_input(0).min(0);
        self.buf.clear();
        self.buf.resize((-self.start) as usize, 0.0);
        self.n_in = 0;
        self.n_done = 0;
    }

    /// Adds samples; returns the outputs they complete. A non-finite chunk is refused whole.
    pub fn push(&mut self, chunk: &[f32]) -> Result<Vec<f32>> {
        if let Some(i) = chunk.iter().position(|v| !v.is_finite()) {
            fail!("chunk is not finite everywhere: chunk[{i}]={}", chunk[i]);
        }
        Ok(self.feed(chunk))
    }

    fn feed(&mut self, chunk: &[f32]) -> Vec<f32> {
        self.buf.extend_from_slice(chunk);
        self.n_in += chunk.len() as u64;
        self.produce(u64::MAX)
    }

    /// Ends the signal: the remaining outputs (reading zeros past its end), then reset.
    pub fn flush(&mut self) -> Vec<f32> {
        let total = self.filter.n_out(self.n_in);
        if total > self.n_done {
            let end = self.start + self.buf.len() as i64;
            let need = self.filter.first_input(total - 1) + self.filter.span() as i64 - end;
            self.buf.resize(self.buf.len() + need.max(0) as usize, 0.0);
        }
        let out = self.produce(total);
        self.reset();
        out
    }

    /// Outputs `n_done..limit` whose inputs are all buffered; drops inputs no later output reads.
    fn produce(&mut self, limit: u64) -> Vec<f32> {
        let (end, span) = (self.start + self.buf.len() as i64, self.filter.span());
        let mut out = Vec::with_capacity(self.filter.n_out(self.n_in).saturating_sub(self.n_done) as usize);
        while self.n_done < limit {
            let a = self.filter.first_input(self.n_done);
            if a + span as i64 > end {
                break;
            }
            let i = (a - self.start) as usize; // first_input grows with n and start <= it
            out.push(self.filter.output(self.n_done, &self.buf[i..i + span]));
            self.n_done += 1;
        }
        let used = (self.filter.first_input(self.n_done) - self.start).clamp(0, self.buf.len() as i64);
        self.buf.drain(..used as usize);
        self.start += used;
        out
    }
}

/// `y` resampled from `orig_sr` to `target_sr`; `ceil(len * target_sr / orig_sr)` samples.
pub fn resample(y: &[f32], orig_sr: f64, target_sr: f64) -> Result<Vec<f32>> {
    positive_f64("orig_sr", orig_sr)?;
    positive_f64("target_sr", target_sr)?;
    error::audio("y", y)?;
    if orig_sr == target_sr {
        return Ok(y.to_vec());
    }
    let mut r = Resampler::new(orig_sr, target_sr)?;
    let mut out = r.feed(y);
    out.extend(r.flush());
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::f64::consts::PI;

    fn sine(f: f64, sr: f64, n: usize) -> Vec<f32> {
        (0..n).map(|i| (2.0 * PI * f * i as f64 / sr).sin() as f32).collect()
    }

    /// RMS of `z`.
    fn rms(z: &[f32]) -> f64 {
        (z.iter().map(|&v| v as f64 * v as f64).sum::<f64>() / z.len() as f64).sqrt()
    }

    #[test]
    fn a_sine_keeps_its_frequency_and_level() {
        for (sr, f, target) in [
            (48000.0, 1000.0, 16000.0),
            (22050.0, 440.0, 16000.0),
            (16000.0, 3000.0, 44100.0),
            (16000.0 * 1.037, 700.0, 16000.0),
            (22050.5, 440.0, 16000.0),
        ] {
            let z = resample(&sine(f, sr, sr as usize), sr, target).unwrap();
            let want = sine(f, target, z.len());
            let max_err = (200..z.len() - 200).map(|i| (z[i] - want[i]).abs()).fold(0.0, f32::max);
            assert!(max_err < 2e-3, "{sr} -> {target}: {max_err}");
        }
    }

    #[test]
    fn polyphase_is_chosen_for_integer_rates_only() {
        assert!(matches!(Filter::new(22050.0, 16000.0), Filter::Poly(ref b) if (b.up, b.down) == (320, 441)));
        assert!(matches!(Filter::new(16000.0 * 1.05, 16000.0), Filter::Poly(ref b) if (b.up, b.down) == (20, 21)));
        assert!(matches!(Filter::new(22050.5, 16000.0), Filter::Table { .. }));
        assert!(matches!(Filter::new(16001.0, 16000.0), Filter::Table { .. })); // 16000 phases
    }

    #[test]
    fn polyphase_equals_the_table_interpolation() {
        let y: Vec<f32> = (0..5000)
            .map(|i| ((i * 7919 % 1000) as f32 / 500.0 - 1.0) * 0.5)
            .collect();
        for (orig, target) in [(22050.0, 16000.0), (48000.0, 16000.0), (8000.0, 44100.0)] {
            let ratio: f64 = target / orig;
            let reach = ZERO_CROSSINGS as f64 / ratio.min(1.0);
            let table = Filter::Table {
                ratio,
                scale: ratio.min(1.0),
                reach,
                span: (2.0 * reach).floor() as usize + 2,
            };
            let poly = Filter::new(orig, target);
            for n in (0..poly.n_out(y.len() as u64)).step_by(7) {
                let at = |f: &Filter| {
                    let a = f.first_input(n) + 200; // y is read from index -200
                    let mut x = vec![0.0; 200];
                    x.extend(&y);
                    x.resize(x.len() + 400, 0.0); // past the last output's reach
                    f.output(n, &x[a as usize..a as usize + f.span()])
                };
                assert!((at(&table) - at(&poly)).abs() < 1e-5, "{orig} -> {target}, n={n}");
            }
        }
    }

    #[test]
    fn aliases_are_rejected() {
        // Tones above the 16 kHz output's Nyquist would fold into the band (8.3 kHz -> 7.7 kHz).
        // (7.9 kHz is no alias: it lies in the transition band above the 7.56 kHz cutoff, -23 dB.)
        for (sr, f) in [
            (22050.0, 8300.0),
            (22050.0, 10000.0),
            (48000.0, 8300.0),
            (48000.0, 9000.0),
            (48000.0, 20000.0),
        ] {
            let z = resample(&sine(f, sr, sr as usize), sr, 16000.0).unwrap();
            let db = 20.0 * (rms(&z[500..z.len() - 500]) / 0.5f64.sqrt()).log10();
            assert!(db < -90.0, "{sr}: {f} Hz at {db:.1} dB");
        }
    }

    #[test]
    fn output_length_is_the_ceiling() {
        for (orig, target) in [
            (22050.0, 16000.0),
            (48000.0, 16000.0),
            (16000.0, 44100.0),
            (22050.5, 16000.0),
            (16000.0, 16000.0),
        ] {
            for len in [1usize, 2, 440, 441, 442, 1000, 4411] {
                let z = resample(&vec![0.1; len], orig, target).unwrap();
                assert_eq!(
                    z.len() as f64,
                    (len as f64 * target / orig - 1e-9).ceil(),
                    "{orig} -> {target}, {len}"
                );
            }
        }
    }

    #[test]
    fn streaming_equals_batch_for_any_chunking() {
        let y: Vec<f32> = (0..20000)
            .map(|i| ((i as f64 * 0.013).sin() * 0.7 + ((i * 31 % 97) as f64 / 970.0)) as f32)
            .collect();
        for (orig, target) in [
            (22050.0, 16000.0),
            (48000.0, 16000.0),
            (8000.0, 16000.0),
            (22050.5, 16000.0),
            (16000.0, 16000.0),
        ] {
            let want = resample(&y, orig, target).unwrap();
            let mut r = Resampler::new(orig, target).unwrap();
            for sizes in [&[1usize, 7, 0, 300][..], &[4096], &[20000], &[3, 1000, 1]] {
                let (mut got, mut pos, mut k) = (Vec::new(), 0, 0);
                while pos < y.len() {
                    let n = sizes[k % sizes.len()].min(y.len() - pos);
                    got.extend(r.push(&y[pos..pos + n]).unwrap());
                    pos += n;
                    k += 1;
                }
                got.extend(r.flush());
                assert_eq!(got, want, "{orig} -> {target}, chunks {sizes:?}");
            }
        }
    }

    #[test]
    fn bad_arguments_are_errors() {
        assert!(resample(&[0.0; 10], 0.0, 16000.0).unwrap_err().0.starts_with("orig_sr"));
        assert!(resample(&[0.0; 10], 16000.0, f64::NAN)
            .unwrap_err()
            .0
            .starts_with("target_sr"));
        assert!(resample(&[], 16000.0, 8000.0).unwrap_err().0.starts_with("y is empty"));
        assert!(resample(&[0.0, f32::NAN], 16000.0, 8000.0)
            .unwrap_err()
            .0
            .starts_with("y is not finite"));
        assert!(Resampler::new(1e9, 1.0)
            .err()
            .unwrap()
            .0
            .starts_with("target_sr/orig_sr"));
        let mut r = Resampler::new(16000.0, 8000.0).unwrap();
        assert!(r
            .push(&[0.0, f32::INFINITY])
            .unwrap_err()
            .0
            .starts_with("chunk is not finite"));
        assert!(r.flush().is_empty()); // the refused chunk left nothing behind
    }
}

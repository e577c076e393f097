//! Streaming extraction: chunks of any size in, exactly the frames `batch::extract` gives for
//! the concatenated signal out.
//!
//! Rules that make this exact: a frame is emitted once its last sample has arrived; with
//! `center=True` the left padding is built as soon as the samples it mirrors are known
//! (`n_fft/2 + 1` samples for `reflect`), and the frames that overlap the right padding are
//! emitted by `flush`, which ends the signal. Features never depend on later frames (dB values
//! use a fixed reference and no `top_db` clipping), except F0 from the SHS tracker
//! (`f0="shs"`): its Viterbi smoother decides a frame up to `shs::MAX_LAG` frames later, as
//! openSMILE's does, and its rows (all features of those frames) come out then, in order.

use crate::batch::{Frames, Matrix};
use crate::error::Result;
use crate::fail;
use crate::pad::PadMode;
use crate::pipeline::{Config, Extractor, Plan};

pub struct Stream {
    ex: Extractor,
    n_fft: usize,
    hop: usize,
    left: usize,
    mode: PadMode,
    /// Before the head is built: the raw samples. After: the padded signal from `start`.
    buf: Vec<f32>,
    start: usize,
    head_built: bool,
    seen: usize,
    next: usize,
}

impl Stream {
    pub fn new(cfg: &Config) -> Result<Stream> {
        let plan = Plan::get(cfg)?;
        let left = if cfg.center { cfg.n_fft / 2 } else { 0 };
        let mut stream = Stream {
            ex: Extractor::new(plan),
            n_fft: cfg.n_fft,
            hop: cfg.hop_length,
            left,
            mode: cfg.pad_mode,
            buf: Vec::new(),
            start: 0,
            head_built: left == 0 || cfg.pad_mode == PadMode::Constant,
            seen: 0,
            next: 0,
        };
        stream.reset();
        Ok(stream)
    }

    pub fn n_features(&self) -> usize {
        self.ex.plan.n_features
    }

    /// Starts a new signal.
    pub fn reset(&mut self) {
        self.buf.clear();
        self.start = 0;
        self.head_built = self.left == 0 || self.mode == PadMode::Constant;
        self.seen = 0;
        self.next = 0;
        self.ex.reset();
        if self.head_built {
            self.buf.resize(self.left, 0.0);
        }
    }

    /// Adds samples; returns the frames completed by them. A non-finite chunk is refused whole.
    pub fn push(&mut self, chunk: &[f32]) -> Result<Matrix> {
        if let Some(i) = chunk.iter().position(|v| !v.is_finite()) {
            fail!("chunk is not finite everywhere: chunk[{i}]={}", chunk[i]);
        }
        self.buf.extend_from_slice(chunk);
        self.seen += chunk.len();
        if !self.head_built && (self.seen > self.left || (self.mode == PadMode::Edge && self.seen > 0)) {
            let head: Vec<f32> = (0..self.left)
                .map(|k| self.mode.sample(&self.buf, k as isize - self.left as isize))
                .collect();
            self.buf.splice(0..0, head);
            self.head_built = true;
        }
        let nf = self.n_features();
        let mut out = Vec::new();
        if self.head_built {
            while self.next * self.hop + self.n_fft <= self.left + self.seen {
                let s = self.next * self.hop - self.start;
                self.ex.push(&self.buf[s..s + self.n_fft], &mut out);
                self.next += 1;
            }
            // Keep the next frame's samples and the last `left + 1` (the right padding mirrors them).
            let tail = self.left + self.seen - (self.left + 1).min(self.seen);
            let keep = (self.next * self.hop).min(tail);
            if keep > self.start {
                self.buf.drain(..keep - self.start);
                self.start = keep;
            }
        }
        let cols = out.len() / nf.max(1);
        Ok(Matrix::from_frames(&out, nf, cols))
    }

    /// Ends the signal: returns the frames that overlap the end padding, then resets.
    pub fn flush(&mut self) -> Result<Matrix> {
        let nf = self.n_features();
        let mut out = Vec::new();
        if self.seen > 0 && !self.head_built {
            // Too little audio to mirror at the start: it is all still here, run it as a batch.
            let raw = std::mem::take(&mut self.buf);
            let mut frames = Frames::new(&raw, self.n_fft, self.hop, true, self.mode)?;
            for t in 0..frames.count {
                self.ex.push(frames.get(t), &mut out);
            }
        } else if self.seen > 0 && self.left > 0 {
            let total = 1 + (self.seen + 2 * self.left - self.n_fft) / self.hop;
            let mut frame = vec![0.0; self.n_fft];
            for t in self.next..total {
                for (k, v) in frame.iter_mut().enumerate() {
                    let p = t * self.hop + k;
                    let y = p as isize - self.left as isize;
                    *v = match self.mode.source(self.seen, y) {
                        Some(j) => self.buf[self.left + j - self.start],
                        None => 0.0,
                    };
                }
                self.ex.push(&frame, &mut out);
            }
        }
        // Rows the SHS smoother still holds.
        self.ex.finish(&mut out);
        self.reset();
        let cols = out.len() / nf.max(1);
        Ok(Matrix::from_frames(&out, nf, cols))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::batch::extract;
    use crate::pipeline::Feature;

    fn signal(n: usize) -> Vec<f32> {
        (0..n).map(|i| ((i * 7919) % 1000) as f32 / 500.0 - 1.0).collect()
    }

    fn streamed(cfg: &Config, y: &[f32], chunk: usize) -> Matrix {
        let mut s = Stream::new(cfg).unwrap();
        let mut cols: Vec<Vec<f32>> = Vec::new();
        let mut take = |m: Matrix| (0..m.cols).for_each(|t| cols.push(m.column(t)));
        for c in y.chunks(chunk) {
            take(s.push(c).unwrap());
        }
        take(s.flush().unwrap());
        let flat: Vec<f32> = cols.concat();
        Matrix::from_frames(&flat, s.n_features(), cols.len())
    }

    #[test]
    fn any_chunking_equals_batch() {
        for mode in [PadMode::Constant, PadMode::Reflect, PadMode::Edge] {
            for center in [true, false] {
                let cfg = Config {
                    sr: 16000.0,
                    n_fft: 512,
                    win_length: Some(400),
                    hop_length: 160,
                    n_mels: 40,
                    center,
                    pad_mode: mode,
                    features: vec![Feature::Mfcc, Feature::Flux, Feature::Zcr { threshold: 1e-10 }],
                    ..Config::default()
                };
                let y = signal(5000);
                let want = extract(&y, &cfg).unwrap();
                for chunk in [1, 7, 160, 1000, 5000] {
                    assert_eq!(
                        streamed(&cfg, &y, chunk),
                        want,
                        "{mode:?} center={center} chunk={chunk}"
                    );
                }
            }
        }
    }

    #[test]
    fn shs_rows_wait_for_the_smoother_and_equal_batch() {
        use crate::periodicity::F0Method;
        use crate::pipeline::VoiceKind;
        // A voiced stretch between silences: a 200 Hz pulse train, 0.6 s.
        let sr = 16000.0;
        let y: Vec<f32> = (0..16000)
            .map(|i| {
                if (4000..13600).contains(&i) {
                    let p = (i % 80) as f32;
                    0.3 * (-p / 10.0).exp() * (p * 0.5).cos()
                } else {
                    0.0
                }
            })
            .collect();
        let cfg = Config {
            sr,
            n_fft: 1024,
            hop_length: 160,
            features: vec![
                Feature::Voice(VoiceKind::F0Semitones),
                Feature::Voice(VoiceKind::Jitter),
                Feature::Rms,
            ],
            f0: F0Method::Shs,
            ..Config::default()
        };
        let want = extract(&y, &cfg).unwrap();
        assert!(want.row(0).iter().any(|&v| v > 0.0));
        for chunk in [1, 160, 333, 16000] {
            assert_eq!(streamed(&cfg, &y, chunk), want, "chunk={chunk}");
        }
        // Hop by hop: never more than `MAX_LAG` complete frames held back.
        let mut s = Stream::new(&cfg).unwrap();
        let (mut out, mut held) = (0, 0);
        for (k, c) in y.chunks(160).enumerate() {
            out += s.push(c).unwrap().cols;
            let seen = (k + 1) * 160;
            let complete = if seen >= 512 { (seen - 512) / 160 + 1 } else { 0 };
            held = held.max(complete - out);
        }
        assert!(held > 0 && held <= crate::shs::MAX_LAG, "held {held}");
    }

    #[test]
    fn short_signals_flush_like_batch() {
        let cfg = Config {
            n_fft: 512,
            hop_length: 128,
            pad_mode: PadMode::Reflect,
            ..Config::default()
        };
        for n in [1, 2, 100, 256, 257, 300] {
            let y = signal(n);
            assert_eq!(streamed(&cfg, &y, 50), extract(&y, &cfg).unwrap(), "n={n}");
        }
    }

    #[test]
    fn a_bad_chunk_is_refused_and_loses_nothing() {
        let cfg = Config::default();
        let y = signal(6000);
        let mut s = Stream::new(&cfg).unwrap();
        let mut a = s.push(&y[..3000]).unwrap();
        assert!(s.push(&[0.0, f32::NAN]).unwrap_err().0.contains("chunk[1]=NaN"));
        let b = s.push(&y[3000..]).unwrap();
        let c = s.flush().unwrap();
        a.cols += b.cols + c.cols;
        assert_eq!(a.cols, extract(&y, &cfg).unwrap().cols);
    }
}

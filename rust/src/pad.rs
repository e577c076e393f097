//! Signal padding with numpy's semantics (`np.pad` modes), and framing.

use crate::error::Result;
use crate::fail;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PadMode {
    /// Zeros.
    Constant,
    /// Mirror without repeating the edge sample (`np.pad(mode='reflect')`, ndimage `mirror`).
    Reflect,
    /// Repeat the edge sample (`np.pad(mode='edge')`, ndimage `nearest`).
    Edge,
    /// Periodic (`np.pad(mode='wrap')`).
    Wrap,
}

impl PadMode {
    pub fn parse(name: &str) -> Result<PadMode> {
        Ok(match name {
            "constant" => PadMode::Constant,
            "reflect" => PadMode::Reflect,
            "edge" => PadMode::Edge,
            _ => fail!("pad_mode={name:?} is not supported: use 'constant', 'reflect' or 'edge'"),
        })
    }

    /// Which sample of a signal of length `n` stands at index `i` (possibly outside `0..n`) of the
    /// padded signal; `None` for a zero.
    pub fn source(self, n: usize, i: isize) -> Option<usize> {
        let n = n as isize;
        if (0..n).contains(&i) {
            return Some(i as usize);
        }
        if n == 0 {
            return None;
        }
        let j = match self {
            PadMode::Constant => return None,
            PadMode::Edge => i.clamp(0, n - 1),
            PadMode::Wrap => i.rem_euclid(n),
            PadMode::Reflect if n == 1 => 0,
            PadMode::Reflect => {
                let period = 2 * (n - 1);
                let j = i.rem_euclid(period);
                if j >= n {
                    period - j
                } else {
                    j
                }
            }
        };
        Some(j as usize)
    }

    /// The value at index `i` (possibly outside `0..y.len()`) of the padded signal.
    pub fn sample(self, y: &[f32], i: isize) -> f32 {
        self.source(y.len(), i).map_or(0.0, |j| y[j])
    }
}

/// `y` with `left` and `right` samples of padding.
pub fn pad(y: &[f32], left: usize, right: usize, mode: PadMode) -> Vec<f32> {
    let mut out = Vec::with_capacity(y.len() + left + right);
    out.extend((0..left).map(|k| mode.sample(y, k as isize - left as isize)));
    out.extend_from_slice(y);
    out.extend((0..right).map(|k| mode.sample(y, (y.len() + k) as isize)));
    out
}

/// Number of frames `librosa.util.frame` makes; an error if the signal is shorter than a frame.
pub fn n_frames(len: usize, frame_length: usize, hop_length: usize) -> Result<usize> {
    if len < frame_length {
        fail!("input is too short (n={len}) for frame_length={frame_length}");
    }
    Ok(1 + (len - frame_length) / hop_length)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modes_match_numpy() {
        let y = [1.0, 2.0, 3.0];
        assert_eq!(pad(&y, 2, 2, PadMode::Constant), [0., 0., 1., 2., 3., 0., 0.]);
        assert_eq!(pad(&y, 2, 2, PadMode::Edge), [1., 1., 1., 2., 3., 3., 3.]);
        assert_eq!(pad(&y, 2, 2, PadMode::Reflect), [3., 2., 1., 2., 3., 2., 1.]);
        assert_eq!(pad(&y, 2, 2, PadMode::Wrap), [2., 3., 1., 2., 3., 1., 2.]);
        // np.pad([1, 2, 3], 5, mode='reflect')
        assert_eq!(
            pad(&y, 5, 5, PadMode::Reflect),
            [2., 1., 2., 3., 2., 1., 2., 3., 2., 1., 2., 3., 2.]
        );
    }

    #[test]
    fn frame_count() {
        assert_eq!(n_frames(10, 4, 2).unwrap(), 4);
        assert!(n_frames(3, 4, 2).is_err());
    }
}

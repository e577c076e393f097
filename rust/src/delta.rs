//! Savitzky–Golay derivatives along time (`librosa.feature.delta`, i.e. `scipy.signal.savgol_filter`
//! with `polyorder = deriv = order`).

use crate::error::Result;
use crate::fail;
use crate::pad::PadMode;

/// How the ends are handled: least-squares fits over the first and last windows (`Interp`),
/// or padding of the series.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum DeltaMode {
    Interp,
    Pad(PadMode),
}

impl DeltaMode {
    pub fn parse(name: &str) -> Result<DeltaMode> {
        Ok(match name {
            "interp" => DeltaMode::Interp,
            "nearest" => DeltaMode::Pad(PadMode::Edge),
            "mirror" => DeltaMode::Pad(PadMode::Reflect),
            "constant" => DeltaMode::Pad(PadMode::Constant),
            "wrap" => DeltaMode::Pad(PadMode::Wrap),
            _ => fail!("mode={name:?} is not supported: use 'interp', 'nearest', 'mirror', 'constant' or 'wrap'"),
        })
    }
}

/// Weights `w` with `sum_i w[i] * y[i]` = the `deriv`-th derivative at `at` of the degree-`order`
/// least-squares polynomial through `(positions[i], y[i])`.
fn fit_weights(positions: &[f64], order: usize, deriv: usize, at: f64) -> Vec<f64> {
    let p = order + 1;
    // Normal equations (A^T A) z = g, then w = A z.
    let mut ata = vec![vec![0.0; p + 1]; p];
    for (r, row) in ata.iter_mut().enumerate() {
        for c in 0..p {
            row[c] = positions.iter().map(|&x| x.powi((r + c) as i32)).sum();
        }
        row[p] = if r >= deriv {
            let falling: f64 = ((r - deriv + 1)..=r).map(|v| v as f64).product();
            falling * at.powi((r - deriv) as i32)
        } else {
            0.0
        };
    }
    // Gaussian elimination with partial pivoting on the augmented matrix.
    for col in 0..p {
        let pivot = (col..p).fold(col, |b, r| if ata[r][col].abs() > ata[b][col].abs() { r } else { b });
        ata.swap(col, pivot);
        for r in 0..p {
            if r != col {
                let f = ata[r][col] / ata[col][col];
                for c in col..=p {
                    ata[r][c] -= f * ata[col][c];
                }
            }
        }
    }
    let z: Vec<f64> = (0..p).map(|r| ata[r][p] / ata[r][r]).collect();
    positions
        .iter()
        .map(|&x| z.iter().enumerate().map(|(j, &zj)| zj * x.powi(j as i32)).sum())
        .collect()
}

pub fn check(width: usize, order: usize, len: usize, mode: DeltaMode) -> Result<()> {
    if mode == DeltaMode::Interp && width > len {
        fail!("when mode='interp', width={width} cannot exceed data.shape[axis]={len}");
    }
    if width > crate::limits::MAX_DELTA_WIDTH || order > crate::limits::MAX_DELTA_ORDER {
        fail!(
            "width={width}, order={order}: at most width={} and order={}",
            crate::limits::MAX_DELTA_WIDTH,
            crate::limits::MAX_DELTA_ORDER
        );
    }
    if width < 3 || width % 2 != 1 {
        fail!("width={width} must be an odd integer >= 3");
    }
    if order == 0 || order >= width {
        fail!("order={order} must be a positive integer smaller than width={width}");
    }
    Ok(())
}

/// The `order`-th delta of each row of a row-major `(rows, len)` array, written to `out`.
pub fn delta(data: &[f32], len: usize, width: usize, order: usize, mode: DeltaMode, out: &mut [f32]) -> Result<()> {
    check(width, order, len, mode)?;
    let h = width / 2;
    let window: Vec<f64> = (0..width).map(|i| i as f64 - h as f64).collect();
    let centre = fit_weights(&window, order, order, 0.0);
    let first: Vec<f64> = (0..width).map(|i| i as f64).collect();
    // With deriv == polyorder the edge derivative is the same at every edge position.
    let edge = fit_weights(&first, order, order, 0.0);
    for (row, o) in data.chunks_exact(len).zip(out.chunks_exact_mut(len)) {
        for (t, ot) in o.iter_mut().enumerate() {
            let interior = t >= h && t + h < len;
            let v: f64 = match mode {
                DeltaMode::Interp if !interior => {
                    let start = if t < h { 0 } else { len - width };
                    edge.iter()
                        .zip(&row[start..start + width])
                        .map(|(w, &y)| w * y as f64)
                        .sum()
                }
                DeltaMode::Pad(pad) if !interior => centre
                    .iter()
                    .enumerate()
                    .map(|(k, w)| w * pad.sample(row, t as isize + k as isize - h as isize) as f64)
                    .sum(),
                _ => centre
                    .iter()
                    .zip(&row[t - h..t + h + 1])
                    .map(|(w, &y)| w * y as f64)
                    .sum(),
            };
            *ot = v as f32;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_delta_of_a_ramp_is_its_slope() {
        let x: Vec<f32> = (0..20).map(|i| 3.0 * i as f32 + 1.0).collect();
        let mut out = vec![0.0; 20];
        delta(&x, 20, 9, 1, DeltaMode::Interp, &mut out).unwrap();
        assert!(out.iter().all(|&v| (v - 3.0).abs() < 1e-4), "{out:?}");
    }

    #[test]
    fn second_delta_of_a_parabola_is_constant() {
        let x: Vec<f32> = (0..15).map(|i| (i * i) as f32).collect();
        let mut out = vec![0.0; 15];
        delta(&x, 15, 5, 2, DeltaMode::Interp, &mut out).unwrap();
        assert!(out.iter().all(|&v| (v - 2.0).abs() < 1e-3), "{out:?}");
    }

    #[test]
    fn bad_width_is_named() {
        let mut out = vec![0.0; 10];
        assert!(delta(&[0.0; 10], 10, 4, 1, DeltaMode::Interp, &mut out)
            .unwrap_err()
            .0
            .starts_with("width"));
        assert!(delta(&[0.0; 10], 10, 11, 1, DeltaMode::Interp, &mut out)
            .unwrap_err()
            .0
            .contains("width=11"));
    }
}

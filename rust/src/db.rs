//! Decibels and the DCT that turns log-mel into MFCC.

use crate::error::{positive_f64, Result};
use crate::fail;

/// Natural log of a positive normal float32, branch-free so that loops over it vectorise:
/// `ln x = e ln 2 + 2 atanh((m - 1) / (m + 1))` with `m` in `[sqrt(1/2), sqrt(2))`; the series
/// to `s^9` is exact to ~1e-8 there (far below float32 rounding of the dB values).
#[inline(always)]
fn ln_normal(x: f32) -> f32 {
    let bits = x.to_bits();
    let e = ((bits >> 23) & 0xff) as i32 - 127;
    let m = f32::from_bits((bits & 0x007f_ffff) | 0x3f80_0000);
    let big = m > std::f32::consts::SQRT_2;
    let (m, e) = (if big { 0.5 * m } else { m }, if big { e + 1 } else { e });
    let s = (m - 1.0) / (m + 1.0);
    let s2 = s * s;
    let series = s * (2.0 + s2 * (2.0 / 3.0 + s2 * (2.0 / 5.0 + s2 * (2.0 / 7.0 + s2 * (2.0 / 9.0)))));
    // Infinity and NaN (exponent 255) stay non-finite, so that an overflowed power is caught
    // downstream instead of turning into a plausible 385 dB (a select: still vectorises).
    if e >= 128 {
        f32::INFINITY
    } else {
        e as f32 * std::f32::consts::LN_2 + series
    }
}

/// `max(amin, v)` that keeps a NaN (`f32::max` would drop it and give `amin`).
#[inline(always)]
fn floor_nan(v: f32, amin: f32) -> f32 {
    if v < amin {
        amin
    } else {
        v
    }
}

/// `10 log10(max(amin, x)) - 10 log10(max(amin, ref))`, in place (`librosa.power_to_db` without `top_db`).
#[inline(always)]
pub fn power_to_db(x: &mut [f32], ref_value: f64, amin: f64) {
    let offset = 10.0 * amin.max(ref_value.abs()).log10() as f32;
    let amin32 = amin as f32;
    if amin32 >= f32::MIN_POSITIVE {
        const DB_PER_NEPER: f32 = 10.0 / std::f32::consts::LN_10;
        x.iter_mut()
            .for_each(|v| *v = DB_PER_NEPER * ln_normal(floor_nan(*v, amin32)) - offset);
    } else {
        x.iter_mut()
            .for_each(|v| *v = 10.0 * floor_nan(*v, amin32).log10() - offset);
    }
}

/// `top_db` must be a non-negative number.
pub fn check_top_db(top_db: f64) -> Result<()> {
    if top_db.is_nan() || top_db < 0.0 {
        fail!("top_db={top_db} must be non-negative");
    }
    Ok(())
}

/// Clips to `max - top_db` over the whole array (`librosa.power_to_db`'s `top_db` rule).
pub fn clip_top_db(x: &mut [f32], top_db: f64) -> Result<()> {
    check_top_db(top_db)?;
    let max = x.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let floor = max - top_db as f32;
    x.iter_mut().for_each(|v| *v = v.max(floor));
    Ok(())
}

pub fn check_db_params(ref_value: f64, amin: f64) -> Result<()> {
    positive_f64("amin", amin)?;
    if !ref_value.is_finite() {
        fail!("ref={ref_value} must be a finite number");
    }
    Ok(())
}

/// DCT-II (`scipy.fft.dct(type=2)`, `norm='ortho'` or unnormalised) as an `(n_out, n_in)` row-major
/// matrix, with the MFCC lifter folded into its rows.
pub fn dct_matrix(n_out: usize, n_in: usize, ortho: bool, lifter: f64) -> Result<Vec<f32>> {
    if n_out == 0 {
        fail!("n_mfcc={n_out} must be a positive integer");
    }
    if n_out > n_in {
        fail!("n_mfcc={n_out} must be <= n_mels={n_in}");
    }
    if lifter.is_nan() || lifter < 0.0 {
        fail!("lifter={lifter} must be a non-negative number");
    }
    let n = n_in as f64;
    let mut m = Vec::with_capacity(n_out * n_in);
    for k in 0..n_out {
        let scale = match (ortho, k) {
            (true, 0) => (1.0 / n).sqrt(),
            (true, _) => (2.0 / n).sqrt(),
            (false, _) => 2.0,
        };
        let lift = if lifter > 0.0 {
            1.0 + (lifter / 2.0) * (std::f64::consts::PI * (k + 1) as f64 / lifter).sin()
        } else {
            1.0
        };
        for i in 0..n_in {
            let c = (std::f64::consts::PI * k as f64 * (2 * i + 1) as f64 / (2.0 * n)).cos();
            m.push((scale * c * lift) as f32);
        }
    }
    Ok(m)
}

/// Dot product in 8 independent lanes, so that it compiles to SIMD.
#[inline(always)]
pub fn dot(a: &[f32], b: &[f32]) -> f32 {
    let n = a.len().min(b.len());
    let (a, b) = (&a[..n], &b[..n]);
    let mut lanes = [0f32; 8];
    let (ca, cb) = (a.chunks_exact(8), b.chunks_exact(8));
    let (ra, rb) = (ca.remainder(), cb.remainder());
    for (x, y) in ca.zip(cb) {
        for k in 0..8 {
            lanes[k] += x[k] * y[k];
        }
    }
    let tail: f32 = ra.iter().zip(rb).map(|(x, y)| x * y).sum();
    lanes.iter().sum::<f32>() + tail
}

/// `a * b + c`, fused where `FMA` (only where the instruction is native: otherwise `mul_add`
/// is a library call).
#[inline(always)]
pub fn madd<const FMA: bool>(a: f32, b: f32, c: f32) -> f32 {
    if FMA {
        a.mul_add(b, c)
    } else {
        a * b + c
    }
}

/// Rows of the DCT taken together by `dct_block`.
pub const DCT_ROWS: usize = 4;

/// `out = D @ x` over a block of `B` frames stored frame-interleaved (`x[i * B + j]`,
/// `out[k * B + j]`), for `D` row-major `(rows, n_in)` with `rows` a multiple of `DCT_ROWS`
/// (pad with zero rows). Four rows at once: each `x` row is loaded once for them, and their
/// sums are independent.
#[inline(always)]
pub fn dct_block<const B: usize, const FMA: bool>(d: &[f32], n_in: usize, x: &[f32], out: &mut [f32]) {
    for (rows, o) in d.chunks_exact(DCT_ROWS * n_in).zip(out.chunks_exact_mut(DCT_ROWS * B)) {
        let mut total = [[0f32; B]; DCT_ROWS];
        // Sums of 16 inputs at a time, then their total: float32 error grows with the number of
        // additions into one accumulator, and a block's partial sums stay small.
        for i0 in (0..n_in).step_by(16) {
            let mut acc = [[0f32; B]; DCT_ROWS];
            for (i, xi) in x[i0 * B..].chunks_exact(B).enumerate().take(16.min(n_in - i0)) {
                for (r, a) in acc.iter_mut().enumerate() {
                    let c = rows[r * n_in + i0 + i];
                    for j in 0..B {
                        a[j] = madd::<FMA>(c, xi[j], a[j]);
                    }
                }
            }
            for (t, a) in total.iter_mut().zip(&acc) {
                for j in 0..B {
                    t[j] += a[j];
                }
            }
        }
        for (dst, t) in o.chunks_exact_mut(B).zip(&total) {
            dst.copy_from_slice(t);
        }
    }
}

/// `out = D @ x` for a row-major `(out.len(), x.len())` matrix.
#[inline(always)]
pub fn matvec(d: &[f32], x: &[f32], out: &mut [f32]) {
    for (o, row) in out.iter_mut().zip(d.chunks_exact(x.len())) {
        *o = dot(row, x);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fast_log_matches_std() {
        let mut worst = 0f64;
        let mut x = 1e-30f32;
        while x < 1e30 {
            let want = (x as f64).ln();
            worst = worst.max((ln_normal(x) as f64 - want).abs() / want.abs().max(1.0));
            x *= 1.0137;
        }
        assert!(worst < 3e-7, "{worst}");
    }

    #[test]
    fn db_of_powers_of_ten() {
        let mut x = [1.0, 10.0, 100.0, 0.0];
        power_to_db(&mut x, 1.0, 1e-10);
        let want = [0.0, 10.0, 20.0, -100.0];
        assert!(x.iter().zip(want).all(|(a, b)| (a - b).abs() < 1e-4), "{x:?}");
        let mut x = [5.0, 10.0, 20.0, -100.0];
        clip_top_db(&mut x, 15.0).unwrap();
        assert_eq!(x, [5.0, 10.0, 20.0, 5.0]);
        assert!(clip_top_db(&mut x, -1.0).unwrap_err().0.starts_with("top_db"));
    }

    #[test]
    fn ortho_dct_is_orthonormal() {
        let n = 8;
        let d = dct_matrix(n, n, true, 0.0).unwrap();
        for a in 0..n {
            for b in 0..n {
                let dot: f32 = (0..n).map(|i| d[a * n + i] * d[b * n + i]).sum();
                let want = if a == b { 1.0 } else { 0.0 };
                assert!((dot - want).abs() < 1e-5);
            }
        }
    }
}

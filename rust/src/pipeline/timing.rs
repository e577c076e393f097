//! Timing probes (ignored tests: `cargo test --release -- --ignored --nocapture`).

use super::*;
use crate::db::{matvec, power_to_db};
use crate::fft::FrameFft;
use std::time::Instant;

/// Whole-signal cost against the FFT floor, without Python.
#[test]
#[ignore]
fn batch_costs() {
    let y: Vec<f32> = (0..16000).map(|i| ((i * 7919) % 1000) as f32 / 5000.0 - 0.1).collect();
    let cfg = Config {
        sr: 16000.0,
        ..Config::default()
    };
    let n: usize = std::env::var("REPS").ok().and_then(|v| v.parse().ok()).unwrap_or(2000);
    let time = |label: &str, f: &mut dyn FnMut()| {
        f();
        let t = Instant::now();
        for _ in 0..n {
            f();
        }
        println!("{label:>14}: {:.1} us", t.elapsed().as_secs_f64() * 1e6 / n as f64);
    };
    time("fft floor", &mut || {
        crate::batch::fft_floor(&y, 2048, 512).unwrap();
    });
    time("mfcc top_db 80", &mut || {
        crate::batch::mfcc(&y, &cfg, Some(80.0)).unwrap();
    });
    let lm = Config {
        features: vec![Feature::LogMel],
        single_precision: true,
        ..cfg.clone()
    };
    time("logmel extract", &mut || {
        crate::batch::extract(&y, &lm).unwrap();
    });
    time("plan lookup", &mut || {
        Plan::get(&lm).unwrap();
    });
    time("check audio", &mut || {
        crate::error::audio("y", &y).unwrap();
    });
}

/// Stage costs of one mfcc frame: `cargo test --release stage_costs -- --ignored --nocapture`.
#[test]
#[ignore]
fn stage_costs() {
    let cfg = Config {
        sr: 16000.0,
        single_precision: true,
        ..Config::default()
    };
    let plan = Plan::get(&cfg).unwrap();
    let mut ex = Extractor::new(plan.clone());
    let frame: Vec<f32> = (0..2048).map(|i| ((i * 7919) % 1000) as f32 / 5000.0 - 0.1).collect();
    let mut out = vec![0.0; plan.n_features];
    let n = 20000;
    let time = |label: &str, f: &mut dyn FnMut()| {
        let t = Instant::now();
        for _ in 0..n {
            f();
        }
        println!("{label:>12}: {:.3} us", t.elapsed().as_secs_f64() * 1e6 / n as f64);
    };
    let mut fft = FrameFft::<f32>::new(&plan.window);
    time("fft only", &mut || fft.transform_raw(&frame));
    time("window+fft", &mut || fft.transform(&frame));
    let mut pow2 = vec![0.0; 1025];
    time("pow2", &mut || fft.magnitudes(None, Some(&mut pow2)));
    let mut mel = vec![0.0; 128];
    let bank = plan.mel.as_ref().unwrap();
    time("mel", &mut || bank.apply(&pow2, &mut mel));
    let mut lm = mel.clone();
    time("db", &mut || {
        lm.copy_from_slice(&mel);
        power_to_db(&mut lm, 1.0, 1e-10)
    });
    let d = plan.dct.as_ref().unwrap();
    time("dct", &mut || matvec(d, &lm, &mut out));
    time("whole frame", &mut || ex.frame(&frame, &mut out));
}

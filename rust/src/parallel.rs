//! Many clips at once on a pool of threads.

use crate::batch::{extract_with, Matrix};
use crate::error::{DspError, Result};
use crate::fail;
use crate::pipeline::{Config, Extractor, Plan};
use rayon::prelude::*;
use rayon::{ThreadPool, ThreadPoolBuilder};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

/// Threads actually used for `n_jobs`: at most the cores available, so at most that many pools
/// (one per distinct thread count) ever exist, however many distinct `n_jobs` callers pass.
pub fn threads(n_jobs: usize) -> usize {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    n_jobs.clamp(1, cores)
}

fn pool(n_jobs: usize) -> Result<Arc<ThreadPool>> {
    let n_jobs = threads(n_jobs);
    static POOLS: OnceLock<Mutex<HashMap<usize, Arc<ThreadPool>>>> = OnceLock::new();
    let pools = POOLS.get_or_init(|| Mutex::new(HashMap::new()));
    let mut pools = pools.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(p) = pools.get(&n_jobs) {
        return Ok(p.clone());
    }
    let p = ThreadPoolBuilder::new()
        .num_threads(n_jobs)
        .build()
        .map_err(|e| DspError(format!("n_jobs={n_jobs}: cannot start threads: {e}")))?;
    let p = Arc::new(p);
    pools.insert(n_jobs, p.clone());
    Ok(p)
}

/// `extract` on every clip, on `n_jobs` threads; the first failing clip is named in the error.
pub fn extract_many(clips: &[&[f32]], cfg: &Config, n_jobs: usize) -> Result<Vec<Matrix>> {
    if n_jobs == 0 {
        fail!("n_jobs={n_jobs} must be a positive integer");
    }
    let plan = Plan::get(cfg)?;
    let results: Vec<Result<Matrix>> = pool(n_jobs)?.install(|| {
        clips
            .par_iter()
            .map_init(|| Extractor::new(plan.clone()), |ex, y| extract_with(ex, y))
            .collect()
    });
    results
        .into_iter()
        .enumerate()
        .map(|(i, r)| r.map_err(|e| DspError(format!("clips[{i}]: {e}"))))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::batch::extract;

    #[test]
    fn parallel_equals_serial_and_names_the_bad_clip() {
        let a: Vec<f32> = (0..5000).map(|i| (i as f32 * 0.01).sin()).collect();
        let b: Vec<f32> = (0..3000).map(|i| (i as f32 * 0.03).cos()).collect();
        let cfg = Config::default();
        let got = extract_many(&[&a, &b], &cfg, 2).unwrap();
        assert_eq!(got[0], extract(&a, &cfg).unwrap());
        assert_eq!(got[1], extract(&b, &cfg).unwrap());
        let err = extract_many(&[&a, &[]], &cfg, 2).unwrap_err();
        assert!(err.0.starts_with("clips[1]: y is empty"), "{err}");
    }

    #[test]
    fn huge_n_jobs_is_clamped_to_the_cores() {
        let a: Vec<f32> = (0..5000).map(|i| (i as f32 * 0.01).sin()).collect();
        let cores = std::thread::available_parallelism().unwrap().get();
        assert_eq!(threads(usize::MAX), cores);
        assert_eq!(
            extract_many(&[&a], &Config::default(), usize::MAX).unwrap()[0],
            extract(&a, &Config::default()).unwrap()
        );
    }
}

//! Threading: output row groups are split into chunks and run on a persistent rayon pool
//! (one pool per thread count, built on first use and kept), so a GEMV pays a task hand-off,
//! not a thread spawn.

use rayon::prelude::*;
use rayon::ThreadPool;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

/// The persistent pool of `threads` workers.
pub fn pool(threads: usize) -> Arc<ThreadPool> {
    static POOLS: OnceLock<Mutex<HashMap<usize, Arc<ThreadPool>>>> = OnceLock::new();
    let pools = POOLS.get_or_init(|| Mutex::new(HashMap::new()));
    let mut pools = pools.lock().unwrap_or_else(|e| e.into_inner());
    pools
        .entry(threads)
        .or_insert_with(|| {
            Arc::new(
                rayon::ThreadPoolBuilder::new()
                    .num_threads(threads)
                    .thread_name(|i| format!("tern-kernel-{i}"))
                    .build()
                    .expect("building a rayon thread pool"),
            )
        })
        .clone()
}

/// Groups per task: about 8 tasks per thread for balance on a shared machine, and an even
/// number so the decode kernels can pair groups.
pub fn chunk_groups(groups: usize, threads: usize) -> usize {
    let c = groups.div_ceil(threads * 8).max(2);
    c + c % 2
}

/// Runs `f(g0, g1, out_chunk)` over all `groups`, where `out` holds `per_group` values per
/// group; with `threads <= 1` (or a single chunk) it runs on the calling thread.
pub fn for_groups<F>(threads: usize, groups: usize, per_group: usize, out: &mut [i64], f: F)
where
    F: Fn(usize, usize, &mut [i64]) + Sync,
{
    debug_assert_eq!(out.len(), groups * per_group);
    let cg = chunk_groups(groups, threads.max(1));
    if threads <= 1 || groups <= cg {
        f(0, groups, out);
        return;
    }
    pool(threads).install(|| {
        out.par_chunks_mut(cg * per_group)
            .enumerate()
            .for_each(|(i, chunk)| {
                let g0 = i * cg;
                f(g0, g0 + chunk.len() / per_group, chunk)
            })
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunks_cover_every_group_once() {
        for threads in 1..=3 {
            for groups in [1, 2, 3, 7, 16, 33, 100] {
                let per = 3;
                let mut out = vec![0i64; groups * per];
                for_groups(threads, groups, per, &mut out, |g0, g1, chunk| {
                    assert_eq!(chunk.len(), (g1 - g0) * per);
                    for (i, v) in chunk.iter_mut().enumerate() {
                        *v += (g0 * per + i) as i64;
                    }
                });
                let want: Vec<i64> = (0..groups * per).map(|i| i as i64).collect();
                assert_eq!(out, want, "threads {threads} groups {groups}");
                assert_eq!(chunk_groups(groups, threads) % 2, 0);
            }
        }
    }
}

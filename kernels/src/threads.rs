//! Threading: a persistent team per thread count — the calling thread plus `threads − 1`
//! helper threads — that runs a job's tasks `0..n` from a shared counter.
//!
//! Decoding one token makes about 150 short parallel calls (each ternary linear, attention,
//! the output head) separated by a little single-threaded host work. A general pool puts the
//! caller to sleep and wakes every worker on each call (tens of µs per hand-off on a VM).
//! Here the caller works on its own job, so with 2 threads only one helper is handed work,
//! and helpers keep polling for [`SPIN`] after a job before they park, so the next call
//! usually finds them awake. While polling they yield every few iterations so a competing
//! process still gets the core. Results do not depend on which thread runs which task.
//!
//! A job called from inside a job runs on the calling thread (no nesting, no deadlock).

use std::cell::Cell;
use std::collections::HashMap;
use std::panic::{catch_unwind, resume_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicPtr, AtomicU64, AtomicUsize, Ordering::*};
use std::sync::{Arc, Condvar, Mutex, OnceLock};
use std::time::{Duration, Instant};

/// How long an idle helper polls for the next job before it parks.
pub const SPIN: Duration = Duration::from_micros(300);

/// One job: `f(i)` for every `i < n`, each claimed once from `next`.
struct Job<'a> {
    f: &'a (dyn Fn(usize) + Sync),
    n: usize,
    next: AtomicUsize,
    panicked: AtomicBool,
}

impl Job<'_> {
    /// Claims and runs tasks until none are left; a panic is recorded, not propagated.
    fn work(&self) {
        IN_JOB.with(|c| c.set(true));
        let r = catch_unwind(AssertUnwindSafe(|| loop {
            let i = self.next.fetch_add(1, Relaxed);
            if i >= self.n {
                break;
            }
            (self.f)(i);
        }));
        if r.is_err() {
            self.panicked.store(true, Relaxed);
        }
        IN_JOB.with(|c| c.set(false));
    }
}

thread_local! {
    static IN_JOB: Cell<bool> = const { Cell::new(false) };
}

struct Shared {
    /// Bumped once per job; a helper runs each epoch's job once.
    epoch: AtomicU64,
    /// The current job (on the caller's stack; valid until every helper reported `done`).
    job: AtomicPtr<Job<'static>>,
    /// Helpers finished with the current epoch.
    done: AtomicUsize,
    /// Helpers parked on `cv`.
    sleepers: AtomicUsize,
    lock: Mutex<()>,
    cv: Condvar,
}

/// A persistent team of `helpers` threads plus the caller.
pub struct Team {
    shared: Arc<Shared>,
    helpers: usize,
    /// One job at a time (callers from several threads take turns).
    turn: Mutex<()>,
}

impl Team {
    fn new(threads: usize) -> Self {
        let shared = Arc::new(Shared {
            epoch: AtomicU64::new(0),
            job: AtomicPtr::new(std::ptr::null_mut()),
            done: AtomicUsize::new(0),
            sleepers: AtomicUsize::new(0),
            lock: Mutex::new(()),
            cv: Condvar::new(),
        });
        let helpers = threads.saturating_sub(1);
        let mut started = 0;
        for i in 0..helpers {
            let s = shared.clone();
            let ok = std::thread::Builder::new()
                .name(format!("tern-kernel-{}", i + 1))
                .spawn(move || helper(&s))
                .is_ok();
            started += usize::from(ok);
        }
        // If the OS refused a thread, the team is smaller; results are the same.
        Self {
            shared,
            helpers: started,
            turn: Mutex::new(()),
        }
    }

    /// Threads that run a job (helpers + the caller).
    pub fn threads(&self) -> usize {
        self.helpers + 1
    }

    /// Runs `f(i)` for every `i < n` on the team; returns when all are done. A panic in a
    /// task is re-raised here after every thread has left the job.
    pub fn run(&self, n: usize, f: &(dyn Fn(usize) + Sync)) {
        if n == 0 {
            return;
        }
        if self.helpers == 0 || n == 1 || IN_JOB.with(|c| c.get()) {
            (0..n).for_each(f);
            return;
        }
        let _turn = self.turn.lock().unwrap_or_else(|e| e.into_inner());
        let job = Job {
            f,
            n,
            next: AtomicUsize::new(0),
            panicked: AtomicBool::new(false),
        };
        let s = &*self.shared;
        s.done.store(0, SeqCst);
        // SAFETY (for the helpers' dereference): `job` outlives every use — this function
        // does not return (or unwind) before all helpers have counted themselves `done`.
        s.job
            .store(&job as *const Job<'_> as *mut Job<'static>, SeqCst);
        s.epoch.fetch_add(1, SeqCst);
        if s.sleepers.load(SeqCst) > 0 {
            let _g = s.lock.lock().unwrap_or_else(|e| e.into_inner());
            s.cv.notify_all();
        }
        let mine = catch_unwind(AssertUnwindSafe(|| job.work()));
        let mut spins = 0u32;
        while s.done.load(Acquire) < self.helpers {
            spins = spins.wrapping_add(1);
            if spins.is_multiple_of(64) {
                std::thread::yield_now();
            } else {
                std::hint::spin_loop();
            }
        }
        if let Err(p) = mine {
            resume_unwind(p);
        }
        if job.panicked.load(Relaxed) {
            panic!("a task of a parallel kernel job panicked");
        }
    }
}

fn helper(s: &Shared) {
    let mut seen = 0u64;
    loop {
        let start = Instant::now();
        let mut spins = 0u32;
        let e = loop {
            let e = s.epoch.load(SeqCst);
            if e != seen {
                break e;
            }
            spins = spins.wrapping_add(1);
            if !spins.is_multiple_of(64) {
                std::hint::spin_loop();
                continue;
            }
            if start.elapsed() < SPIN {
                std::thread::yield_now();
                continue;
            }
            let mut g = s.lock.lock().unwrap_or_else(|e| e.into_inner());
            s.sleepers.fetch_add(1, SeqCst);
            while s.epoch.load(SeqCst) == seen {
                g = s.cv.wait(g).unwrap_or_else(|e| e.into_inner());
            }
            s.sleepers.fetch_sub(1, SeqCst);
            break s.epoch.load(SeqCst);
        };
        seen = e;
        // SAFETY: the caller published the job before bumping the epoch and keeps it alive
        // until this helper increments `done`.
        let job = unsafe { &*s.job.load(SeqCst) };
        job.work();
        s.done.fetch_add(1, Release);
    }
}

/// The persistent team of `threads` threads (built on first use and kept).
pub fn team(threads: usize) -> Arc<Team> {
    static TEAMS: OnceLock<Mutex<HashMap<usize, Arc<Team>>>> = OnceLock::new();
    let teams = TEAMS.get_or_init(|| Mutex::new(HashMap::new()));
    let mut teams = teams.lock().unwrap_or_else(|e| e.into_inner());
    teams
        .entry(threads.max(1))
        .or_insert_with(|| Arc::new(Team::new(threads.max(1))))
        .clone()
}

/// Runs `f(i)` for `i < n` on `threads` threads (the caller among them).
pub fn run(threads: usize, n: usize, f: impl Fn(usize) + Sync) {
    if threads <= 1 || n <= 1 {
        (0..n).for_each(f);
    } else {
        team(threads).run(n, &f);
    }
}

/// `&mut` items handed to tasks by index: each index is claimed once, so each item is
/// borrowed by one task at a time.
struct Items<T>(*mut T, usize);
// SAFETY: only disjoint elements are reached (one task per index), and `T: Send`.
unsafe impl<T: Send> Sync for Items<T> {}

impl<T> Items<T> {
    /// The `i`-th item. SAFETY: `i < len`, and no other live borrow of it.
    #[allow(clippy::mut_from_ref)]
    unsafe fn get(&self, i: usize) -> &mut T {
        assert!(i < self.1);
        unsafe { &mut *self.0.add(i) }
    }
}

/// Calls `f(i, &mut items[i])` for every item on `threads` threads.
pub fn for_each_mut<T: Send>(threads: usize, items: &mut [T], f: impl Fn(usize, &mut T) + Sync) {
    let it = Items(items.as_mut_ptr(), items.len());
    run(threads, items.len(), |i| {
        // SAFETY: `run` hands each index `< len` to exactly one task.
        f(i, unsafe { it.get(i) })
    });
}

/// Calls `f(i, chunk)` for the `i`-th `size`-value chunk of `data` on `threads` threads.
pub fn for_chunks_mut<T: Send>(
    threads: usize,
    data: &mut [T],
    size: usize,
    f: impl Fn(usize, &mut [T]) + Sync,
) {
    let mut chunks: Vec<&mut [T]> = data.chunks_mut(size.max(1)).collect();
    for_each_mut(threads, &mut chunks, |i, c| f(i, c));
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
    for_chunks_mut(threads, out, cg * per_group, |i, chunk| {
        let g0 = i * cg;
        f(g0, g0 + chunk.len() / per_group, chunk)
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

    /// Many jobs back to back (helpers awake) and after pauses (helpers parked), from several
    /// caller threads at once: every task runs exactly once per job.
    #[test]
    fn every_task_runs_once_per_job() {
        let callers: Vec<_> = (0..3)
            .map(|c| {
                std::thread::spawn(move || {
                    for job in 0..300 {
                        let n = 1 + (job * 7 + c) % 50;
                        let hits: Vec<AtomicUsize> = (0..n).map(|_| AtomicUsize::new(0)).collect();
                        run(2 + c % 2, n, |i| {
                            hits[i].fetch_add(1, Relaxed);
                        });
                        assert!(hits.iter().all(|h| h.load(Relaxed) == 1), "job {job}");
                        if job % 100 == 99 {
                            std::thread::sleep(SPIN * 3);
                        }
                    }
                })
            })
            .collect();
        for c in callers {
            c.join().unwrap();
        }
    }

    #[test]
    fn nested_jobs_run_inline_and_panics_reach_the_caller() {
        let total = AtomicUsize::new(0);
        run(2, 8, |_| {
            run(2, 4, |_| {
                total.fetch_add(1, Relaxed);
            })
        });
        assert_eq!(total.load(Relaxed), 32);
        let r = catch_unwind(|| {
            run(2, 16, |i| {
                if i == 9 {
                    panic!("task 9");
                }
            })
        });
        assert!(r.is_err());
        // the team still works afterwards
        let n = AtomicUsize::new(0);
        run(2, 10, |_| {
            n.fetch_add(1, Relaxed);
        });
        assert_eq!(n.load(Relaxed), 10);
    }
}

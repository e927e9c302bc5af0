//! Next-token sampling: greedy at temperature 0, else temperature + top-p with a seeded RNG.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// Sampling settings.
#[derive(Debug, Clone)]
pub struct Sampler {
    pub temperature: f32,
    pub top_p: f32,
    rng: ChaCha8Rng,
}

impl Sampler {
    pub fn new(temperature: f32, top_p: f32, seed: u64) -> Self {
        Self {
            temperature,
            top_p,
            rng: ChaCha8Rng::seed_from_u64(seed),
        }
    }

    pub fn greedy() -> Self {
        Self::new(0.0, 1.0, 0)
    }

    /// Picks a token from `logits`.
    pub fn sample(&mut self, logits: &[f32]) -> u32 {
        if self.temperature <= 0.0 {
            return argmax(logits);
        }
        let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
        let mut p: Vec<(u32, f64)> = logits
            .iter()
            .enumerate()
            .map(|(i, &l)| (i as u32, (((l - max) / self.temperature) as f64).exp()))
            .collect();
        let sum: f64 = p.iter().map(|x| x.1).sum();
        p.iter_mut().for_each(|x| x.1 /= sum);
        p.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
        let mut keep = 0;
        let mut cum = 0.0;
        for (i, x) in p.iter().enumerate() {
            cum += x.1;
            keep = i + 1;
            if cum >= self.top_p as f64 {
                break;
            }
        }
        let total: f64 = p[..keep].iter().map(|x| x.1).sum();
        let mut r = self.rng.gen::<f64>() * total;
        for x in &p[..keep] {
            r -= x.1;
            if r <= 0.0 {
                return x.0;
            }
        }
        p[keep - 1].0
    }
}

/// Index of the largest value (the first one on ties).
pub fn argmax(v: &[f32]) -> u32 {
    let mut best = 0;
    for (i, &x) in v.iter().enumerate() {
        if x > v[best] {
            best = i;
        }
    }
    best as u32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn greedy_and_seeded() {
        assert_eq!(argmax(&[1.0, 3.0, 3.0, 2.0]), 1);
        let l = [0.1f32, 2.0, 1.9, -5.0];
        let a: Vec<u32> = {
            let mut s = Sampler::new(1.0, 0.9, 7);
            (0..50).map(|_| s.sample(&l)).collect()
        };
        let b: Vec<u32> = {
            let mut s = Sampler::new(1.0, 0.9, 7);
            (0..50).map(|_| s.sample(&l)).collect()
        };
        assert_eq!(a, b);
        assert!(a.iter().all(|&t| t == 1 || t == 2 || t == 0), "{a:?}");
        assert!(a.contains(&1) && a.contains(&2));
        // top_p tiny keeps only the best.
        let mut s = Sampler::new(1.0, 1e-6, 1);
        assert!((0..20).all(|_| s.sample(&l) == 1));
    }
}

//! The paper's rank fusion of `angle_loss` across candidates (used by `select`).
//!
//! Metric rank = rank(rank(sign * cos) + rank(-loss)); search rank = metric rank + rank(#Param).
//! Ranks are average ranks, ascending, so the highest search rank is the pick. With the default
//! sign +1, a degenerate candidate's `cos` 0 and `loss` 100 rank it worst; whatever the sign,
//! degenerate and NaN parts are forced to the worst rank. Parts and sign are options; repeats
//! over seeds are averaged before ranking (see [`average_repeats`]).
use super::rank::{average_ranks, fuse};
use super::AngleLoss;

/// Which parts of the fusion are used, and the sign of the angle part.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FusionOptions {
    /// +1 ranks a higher cosine better (the authors' code); -1 a larger angle.
    pub angle_sign: f64,
    pub use_angle: bool,
    pub use_loss: bool,
    /// Adds rank(#Param) (the search rank).
    pub use_params: bool,
}

impl Default for FusionOptions {
    fn default() -> Self {
        FusionOptions {
            angle_sign: 1.0,
            use_angle: true,
            use_loss: true,
            use_params: true,
        }
    }
}

fn worst_if(v: f64, degenerate: bool) -> f64 {
    if degenerate || v.is_nan() {
        f64::NEG_INFINITY
    } else {
        v
    }
}

/// rank(rank(sign * cos) + rank(-loss)) over the candidates (parts per `opts`); `None` when no
/// part is selected.
pub fn metric_rank(values: &[AngleLoss], opts: &FusionOptions) -> Option<Vec<f64>> {
    let mut parts = Vec::new();
    if opts.use_angle {
        let a: Vec<f64> = values
            .iter()
            .map(|v| worst_if(opts.angle_sign * v.cos, v.degenerate))
            .collect();
        parts.push(average_ranks(&a));
    }
    if opts.use_loss {
        let l: Vec<f64> = values
            .iter()
            .map(|v| worst_if(-v.loss, v.degenerate))
            .collect();
        parts.push(average_ranks(&l));
    }
    fuse(&parts)
}

/// The search score: metric rank plus rank(#Param) when `use_params`; higher is better.
/// `None` when lengths differ or no part is selected.
pub fn search_rank(values: &[AngleLoss], params: &[f64], opts: &FusionOptions) -> Option<Vec<f64>> {
    if values.len() != params.len() {
        return None;
    }
    let metric = if opts.use_angle || opts.use_loss {
        metric_rank(values, opts)
    } else {
        None
    };
    match (metric, opts.use_params) {
        (Some(m), true) => {
            let p = average_ranks(params);
            Some(m.iter().zip(&p).map(|(a, b)| a + b).collect())
        }
        (Some(m), false) => Some(m),
        (None, true) => Some(average_ranks(params)),
        (None, false) => None,
    }
}

/// The index of the highest score (first on ties); `None` for an empty list.
pub fn best(scores: &[f64]) -> Option<usize> {
    let mut best: Option<usize> = None;
    for (i, s) in scores.iter().enumerate() {
        match best {
            Some(b) if s.partial_cmp(&scores[b]) != Some(std::cmp::Ordering::Greater) => {}
            _ => best = Some(i),
        }
    }
    best
}

/// Mean cos and loss over repeats; degenerate only when every repeat is. `None` when empty.
pub fn average_repeats(runs: &[AngleLoss]) -> Option<AngleLoss> {
    if runs.is_empty() {
        return None;
    }
    let n = runs.len() as f64;
    Some(AngleLoss {
        cos: runs.iter().map(|r| r.cos).sum::<f64>() / n,
        loss: runs.iter().map(|r| r.loss).sum::<f64>() / n,
        degenerate: runs.iter().all(|r| r.degenerate),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::angle_loss::DEGENERATE;

    fn al(cos: f64, loss: f64) -> AngleLoss {
        AngleLoss {
            cos,
            loss,
            degenerate: false,
        }
    }

    #[test]
    fn paper_fusion_by_hand() {
        let v = [al(0.5, 1.0), al(0.2, 2.0), al(0.8, 1.5), DEGENERATE];
        // rank(cos): 3, 2, 4, 1; rank(-loss): 4, 2, 3, 1; sums 7, 4, 7, 2 -> 3.5, 2, 3.5, 1.
        let m = metric_rank(&v, &FusionOptions::default()).unwrap();
        assert_eq!(m, vec![3.5, 2.0, 3.5, 1.0]);
        // params 10, 40, 20, 30 -> ranks 1, 4, 2, 3; search 4.5, 6, 5.5, 4.
        let s = search_rank(&v, &[10.0, 40.0, 20.0, 30.0], &FusionOptions::default()).unwrap();
        assert_eq!(s, vec![4.5, 6.0, 5.5, 4.0]);
        assert_eq!(best(&s), Some(1));
    }

    #[test]
    fn negative_sign_keeps_degenerate_worst() {
        let v = [al(0.5, 1.0), al(0.2, 1.0), DEGENERATE];
        let opts = FusionOptions {
            angle_sign: -1.0,
            use_loss: false,
            use_params: false,
            ..Default::default()
        };
        assert_eq!(metric_rank(&v, &opts).unwrap(), vec![2.0, 3.0, 1.0]);
    }

    #[test]
    fn repeats_average() {
        let r = average_repeats(&[al(0.2, 1.0), DEGENERATE]).unwrap();
        assert_eq!((r.cos, r.loss, r.degenerate), (0.1, 50.5, false));
        assert!(average_repeats(&[]).is_none());
        let opts = FusionOptions {
            use_angle: false,
            use_loss: false,
            use_params: false,
            ..Default::default()
        };
        assert!(search_rank(&[al(0.1, 1.0)], &[1.0], &opts).is_none());
    }
}

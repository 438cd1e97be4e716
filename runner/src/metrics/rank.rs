//! Rank utilities: ordinal and average ranks, rank fusion, Kendall tau-b and Spearman rho.
//!
//! Ranks are 1-based and ascending (the smallest value gets rank 1), so with "higher is better"
//! values the best candidate has the highest rank, as `scipy.stats.rankdata` gives. NaN sorts
//! below every number (a failed score ranks worst). The correlations drop pairs where either
//! value is NaN.
use std::cmp::Ordering;

/// Total order with NaN below every number.
fn cmp_nan_low(a: f64, b: f64) -> Ordering {
    match (a.is_nan(), b.is_nan()) {
        (true, true) => Ordering::Equal,
        (true, false) => Ordering::Less,
        (false, true) => Ordering::Greater,
        (false, false) => a.partial_cmp(&b).unwrap_or(Ordering::Equal),
    }
}

fn order(values: &[f64]) -> Vec<usize> {
    let mut idx: Vec<usize> = (0..values.len()).collect();
    idx.sort_by(|&i, &j| cmp_nan_low(values[i], values[j])); // stable: ties keep input order
    idx
}

/// Ranks 1..=n; ties are broken by input order (scipy's `method="ordinal"`).
pub fn ordinal_ranks(values: &[f64]) -> Vec<f64> {
    let mut ranks = vec![0.0; values.len()];
    for (pos, &i) in order(values).iter().enumerate() {
        ranks[i] = (pos + 1) as f64;
    }
    ranks
}

/// Ranks 1..=n; tied values share the mean of their positions (scipy's `method="average"`).
pub fn average_ranks(values: &[f64]) -> Vec<f64> {
    let idx = order(values);
    let mut ranks = vec![0.0; values.len()];
    let mut start = 0;
    while start < idx.len() {
        let mut end = start + 1;
        while end < idx.len() && cmp_nan_low(values[idx[start]], values[idx[end]]).is_eq() {
            end += 1;
        }
        // Positions start+1 ..= end share their mean.
        let mean = (start + 1 + end) as f64 / 2.0;
        for &i in &idx[start..end] {
            ranks[i] = mean;
        }
        start = end;
    }
    ranks
}

/// Rank fusion: the average rank of the element-wise sum of several rank (or score) lists of
/// equal length. `None` when the lists are empty or their lengths differ.
pub fn fuse(rank_lists: &[Vec<f64>]) -> Option<Vec<f64>> {
    let n = rank_lists.first()?.len();
    if rank_lists.iter().any(|r| r.len() != n) {
        return None;
    }
    let sum: Vec<f64> = (0..n)
        .map(|i| rank_lists.iter().map(|r| r[i]).sum())
        .collect();
    Some(average_ranks(&sum))
}

fn finite_pairs(x: &[f64], y: &[f64]) -> Option<(Vec<f64>, Vec<f64>)> {
    if x.len() != y.len() {
        return None;
    }
    Some(
        x.iter()
            .zip(y)
            .filter(|(a, b)| !a.is_nan() && !b.is_nan())
            .map(|(a, b)| (*a, *b))
            .unzip(),
    )
}

/// Kendall's tau-b, `(C - D) / sqrt((n0 - n1)(n0 - n2))` with `n1`, `n2` the pairs tied in `x`
/// and in `y`. `None` for unequal lengths, fewer than two pairs, or a constant side.
pub fn kendall_tau_b(x: &[f64], y: &[f64]) -> Option<f64> {
    let (x, y) = finite_pairs(x, y)?;
    let n = x.len();
    if n < 2 {
        return None;
    }
    let (mut concordant, mut discordant, mut tied_x, mut tied_y) = (0i64, 0i64, 0i64, 0i64);
    for i in 0..n {
        for j in (i + 1)..n {
            let dx = x[i].partial_cmp(&x[j]).unwrap_or(Ordering::Equal);
            let dy = y[i].partial_cmp(&y[j]).unwrap_or(Ordering::Equal);
            match (dx, dy) {
                (Ordering::Equal, Ordering::Equal) => {
                    tied_x += 1;
                    tied_y += 1;
                }
                (Ordering::Equal, _) => tied_x += 1,
                (_, Ordering::Equal) => tied_y += 1,
                (a, b) if a == b => concordant += 1,
                _ => discordant += 1,
            }
        }
    }
    let n0 = (n * (n - 1) / 2) as i64;
    let denom = (((n0 - tied_x) as f64) * ((n0 - tied_y) as f64)).sqrt();
    (denom > 0.0).then(|| (concordant - discordant) as f64 / denom)
}

/// Spearman's rho: Pearson correlation of the average ranks. `None` as for tau-b.
pub fn spearman_rho(x: &[f64], y: &[f64]) -> Option<f64> {
    let (x, y) = finite_pairs(x, y)?;
    if x.len() < 2 {
        return None;
    }
    pearson(&average_ranks(&x), &average_ranks(&y))
}

/// Pearson correlation; `None` when either side is constant.
pub fn pearson(x: &[f64], y: &[f64]) -> Option<f64> {
    let n = x.len() as f64;
    let (mx, my) = (x.iter().sum::<f64>() / n, y.iter().sum::<f64>() / n);
    let (mut sxy, mut sxx, mut syy) = (0.0, 0.0, 0.0);
    for (a, b) in x.iter().zip(y) {
        sxy += (a - mx) * (b - my);
        sxx += (a - mx) * (a - mx);
        syy += (b - my) * (b - my);
    }
    let denom = (sxx * syy).sqrt();
    (denom > 0.0).then(|| sxy / denom)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranks_with_ties_and_nan() {
        let v = [3.0, 1.0, 3.0, f64::NAN, 2.0];
        assert_eq!(ordinal_ranks(&v), vec![4.0, 2.0, 5.0, 1.0, 3.0]);
        assert_eq!(average_ranks(&v), vec![4.5, 2.0, 4.5, 1.0, 3.0]);
        assert_eq!(average_ranks(&[7.0, 7.0, 7.0]), vec![2.0, 2.0, 2.0]);
        assert!(average_ranks(&[]).is_empty());
    }

    #[test]
    fn fusion_sums_then_reranks() {
        let a = vec![1.0, 2.0, 3.0];
        let b = vec![3.0, 1.0, 2.0];
        // sums 4, 3, 5
        assert_eq!(fuse(&[a.clone(), b]).unwrap(), vec![2.0, 1.0, 3.0]);
        assert!(fuse(&[a, vec![1.0]]).is_none());
        assert!(fuse(&[]).is_none());
    }

    #[test]
    fn kendall_by_hand() {
        // x = 1 2 3 4, y = 1 3 2 4: pairs 6, one discordant (2,3) -> (5 - 1) / 6.
        let t = kendall_tau_b(&[1.0, 2.0, 3.0, 4.0], &[1.0, 3.0, 2.0, 4.0]).unwrap();
        assert!((t - 4.0 / 6.0).abs() < 1e-12);
        // Ties: x = 1 1 2 3, y = 1 2 2 3. Pairs: (0,1) tied x; (0,2) C; (0,3) C; (1,2) tied y;
        // (1,3) C; (2,3) C. C=4, D=0, n0=6, n1=1, n2=1 -> 4 / sqrt(5*5) = 0.8.
        let t = kendall_tau_b(&[1.0, 1.0, 2.0, 3.0], &[1.0, 2.0, 2.0, 3.0]).unwrap();
        assert!((t - 0.8).abs() < 1e-12, "{t}");
        assert_eq!(kendall_tau_b(&[1.0, 2.0], &[2.0, 1.0]), Some(-1.0));
        assert!(kendall_tau_b(&[1.0, 1.0], &[1.0, 2.0]).is_none());
        assert!(kendall_tau_b(&[1.0], &[1.0, 2.0]).is_none());
        // NaN pairs are dropped.
        assert_eq!(
            kendall_tau_b(&[1.0, f64::NAN, 2.0], &[1.0, 5.0, 3.0]),
            Some(1.0)
        );
    }

    #[test]
    fn spearman_by_hand() {
        // d = 0, 1, -1, 0 -> 1 - 6*2 / (4*15) = 0.8.
        let r = spearman_rho(&[1.0, 2.0, 3.0, 4.0], &[10.0, 30.0, 20.0, 40.0]).unwrap();
        assert!((r - 0.8).abs() < 1e-12);
        // Ties: x ranks 1.5 1.5 3, y ranks 1 2 3 -> Pearson = 0.8660254 (sqrt 3 / 2).
        let r = spearman_rho(&[5.0, 5.0, 9.0], &[1.0, 2.0, 3.0]).unwrap();
        assert!((r - 3f64.sqrt() / 2.0).abs() < 1e-12, "{r}");
        assert!(spearman_rho(&[1.0, 1.0], &[1.0, 2.0]).is_none());
    }
}

//! Weight initialisation shared by the metrics and the trainer.
use tch::{nn::VarStore, no_grad, Tensor};

/// Kaiming-normal (fan-in, gain sqrt 2) for conv and linear weights, zero biases, BatchNorm
/// weight 1 and bias 0; running statistics are left alone. The paper's code initialises every
/// candidate this way before its short training.
pub fn kaiming_normal_fan_in(vs: &VarStore) {
    no_grad(|| {
        for (name, mut t) in vs.variables() {
            let leaf = name.rsplit('.').next().unwrap_or(&name);
            match (leaf, t.dim()) {
                ("weight", d) if d >= 2 => {
                    let size = t.size();
                    let fan_in: i64 = size[1..].iter().product();
                    let std = (2.0 / fan_in as f64).sqrt();
                    let fresh = Tensor::randn(size.as_slice(), (t.kind(), t.device())) * std;
                    t.copy_(&fresh);
                }
                ("weight", 1) => {
                    let _ = t.fill_(1.0);
                }
                ("bias", _) => {
                    let _ = t.zero_();
                }
                _ => {}
            }
        }
    });
}

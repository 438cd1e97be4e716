//! SGD with momentum (optionally Nesterov) and L2 weight decay, the update of
//! `torch.optim.SGD` with dampening 0:
//! `d = g + wd * p; buf = m * buf + d; p -= lr * (nesterov ? d + m * buf : buf)`.
//! Written here rather than using tch's optimiser so that the momentum buffers can be saved and
//! restored for exact resumption. Buffers start at zero, which equals PyTorch's first step
//! (`buf = d`) exactly.
use tch::{nn::VarStore, Tensor};

pub struct Sgd {
    /// Trainable parameters, sorted by name.
    names: Vec<String>,
    params: Vec<Tensor>,
    bufs: Vec<Tensor>,
    pub momentum: f64,
    pub nesterov: bool,
    pub weight_decay: f64,
}

impl Sgd {
    pub fn new(vs: &VarStore, momentum: f64, nesterov: bool, weight_decay: f64) -> Sgd {
        let mut named: Vec<(String, Tensor)> = vs
            .variables()
            .into_iter()
            .filter(|(_, t)| t.requires_grad())
            .collect();
        named.sort_by(|a, b| a.0.cmp(&b.0));
        let bufs = named.iter().map(|(_, t)| t.zeros_like().detach()).collect();
        let (names, params) = named.into_iter().unzip();
        Sgd {
            names,
            params,
            bufs,
            momentum,
            nesterov,
            weight_decay,
        }
    }

    pub fn zero_grad(&mut self) {
        for p in &mut self.params {
            p.zero_grad();
        }
    }

    /// Scales gradients so that their global L2 norm is at most `max`; returns the norm before.
    pub fn clip_grad_norm(&mut self, max: f64) -> f64 {
        let grads: Vec<Tensor> = self
            .params
            .iter()
            .map(|p| p.grad())
            .filter(|g| g.defined())
            .collect();
        if grads.is_empty() {
            return 0.0;
        }
        let total = tch::no_grad(|| {
            let sq: Vec<Tensor> = grads
                .iter()
                .map(|g| g.pow_tensor_scalar(2).sum(tch::Kind::Float))
                .collect();
            Tensor::stack(&sq, 0)
                .sum(tch::Kind::Float)
                .sqrt()
                .double_value(&[])
        });
        if total > max {
            let scale = max / (total + 1e-6);
            tch::no_grad(|| {
                for mut g in grads {
                    let _ = g.g_mul_scalar_(scale);
                }
            });
        }
        total
    }

    pub fn step(&mut self, lr: f64) {
        let (m, wd, nesterov) = (self.momentum, self.weight_decay, self.nesterov);
        tch::no_grad(|| {
            for (p, buf) in self.params.iter_mut().zip(self.bufs.iter_mut()) {
                let g = p.grad();
                if !g.defined() {
                    continue;
                }
                let d = if wd != 0.0 { &g + &*p * wd } else { g };
                if m != 0.0 {
                    let _ = buf.g_mul_scalar_(m).g_add_(&d);
                    let update = if nesterov {
                        &d + &*buf * m
                    } else {
                        buf.shallow_clone()
                    };
                    let _ = p.g_sub_(&(update * lr));
                } else {
                    let _ = p.g_sub_(&(d * lr));
                }
            }
        });
    }

    /// Momentum buffers by parameter name (for checkpoints).
    pub fn named_buffers(&self) -> Vec<(String, Tensor)> {
        self.names
            .iter()
            .cloned()
            .zip(self.bufs.iter().map(|b| b.shallow_clone()))
            .collect()
    }

    /// Restores buffers saved by [`Sgd::named_buffers`]; every parameter must be present.
    pub fn load_buffers(&mut self, saved: &[(String, Tensor)]) -> Result<(), String> {
        let map: std::collections::HashMap<&str, &Tensor> =
            saved.iter().map(|(n, t)| (n.as_str(), t)).collect();
        for (name, buf) in self.names.iter().zip(self.bufs.iter_mut()) {
            let src = map
                .get(name.as_str())
                .ok_or_else(|| format!("no momentum buffer for '{name}'"))?;
            if src.size() != buf.size() {
                return Err(format!(
                    "momentum buffer '{name}' has shape {:?}, expected {:?}",
                    src.size(),
                    buf.size()
                ));
            }
            tch::no_grad(|| buf.copy_(src));
        }
        Ok(())
    }
}

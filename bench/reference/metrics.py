"""Reference metrics (PyTorch eager), written by us from each metric's published definition.

Used for timing against the Rust runner and for checking its numbers on identical initial weights
and batches (bench/README.md). Every function takes a built network whose weights are already set
(the caller initialises or loads them) and leaves the network's parameters as they were, except
`angle_loss`, which trains it in place.

Sources of the definitions (read for the definitions only):
- angle_loss: Yang et al., "Revisiting Training-free NAS Metrics: An Efficient Training-based
  Method", WACV 2023, and the protocol of issue 9 (100 images, 10 per class, flip + 4-px padded
  crop per iteration, 50 its of SGD lr 0.2 Nesterov 0.9 wd 5e-4 on the whole batch, BN train
  mode; cos of the classifier weight before/after, loss of the 50th forward; cos >= 0.95 or a cell
  with no conv and no pooling op -> degenerate: cos 0, loss 100).
- grad_norm, snip, grasp, fisher, synflow, jacob_cov: Abdelfattah et al., "Zero-Cost Proxies for
  Lightweight NAS", ICLR 2021 (BN in training mode except synflow; summed over conv and linear
  layers; cross-entropy with mean reduction).
- naswot: Mellor et al., "Neural Architecture Search without Training", ICML 2021 (binary codes
  of every ReLU input, K = C C^T + (1-C)(1-C)^T, log|det K|).
- ntk_cond: Chen et al., "Neural Architecture Search on ImageNet in Four GPU Hours" (TE-NAS),
  ICLR 2021 (per-sample gradient of the summed logits over every parameter named `weight`, BN
  included, train mode; condition number lambda_max / lambda_min of the Gram matrix; lower is
  better; NaN -> 1e5 as TE-NAS does).
- zen: Lin et al., "Zen-NAS", ICCV 2021 (Gaussian input x and x + 0.01 eps, mean over the batch of
  the L1 distance of the pre-GAP feature maps, log of it plus sum of log sqrt(mean BN variance)).
  Zen-NAS's code reads BN running_var after two forwards, which mostly measures the momentum
  update; we follow the paper's intent and use each BN's batch variance in the forward of x
  (biased, as BN normalises with it); a BN whose input is all zero (variance 0) is left out.
"""

from __future__ import annotations

import math
from typing import Callable, Dict, Optional

import numpy as np
import torch
import torch.nn.functional as F

from nb201 import NB201, Record, has_learnable_ops

DEGENERATE = {"cos": 0.0, "loss": 100.0, "degenerate": True}


def normalize(images_u8: torch.Tensor, mean: torch.Tensor, std: torch.Tensor) -> torch.Tensor:
    """uint8 [N,C,H,W] -> float32 (x/255 - mean)/std."""
    x = images_u8.float().div_(255.0)
    m = mean.to(x).view(1, -1, 1, 1)
    s = std.to(x).view(1, -1, 1, 1)
    return (x - m) / s


def draw_augmentation(iters: int, n: int, pad: int, gen: torch.Generator):
    """Per-iteration flip flags and crop offsets (0..2 pad), as the exchange format stores them."""
    flip = torch.randint(0, 2, (iters, n), generator=gen, dtype=torch.int64).to(torch.uint8)
    dx = torch.randint(0, 2 * pad + 1, (iters, n), generator=gen, dtype=torch.int64)
    dy = torch.randint(0, 2 * pad + 1, (iters, n), generator=gen, dtype=torch.int64)
    return flip, dx, dy


def augment(padded: torch.Tensor, flip: torch.Tensor, dx: torch.Tensor, dy: torch.Tensor,
            h: int, w: int) -> torch.Tensor:
    """Crop [h,w] at (dy,dx) of each padded image, then flip it horizontally where flip != 0."""
    n, c = padded.shape[:2]
    dev = padded.device
    rows = dy.to(dev).view(n, 1) + torch.arange(h, device=dev).view(1, h)
    cols = dx.to(dev).view(n, 1) + torch.arange(w, device=dev).view(1, w)
    cols = torch.where(flip.to(dev).view(n, 1) != 0, cols.flip(1), cols)
    ni = torch.arange(n, device=dev).view(n, 1, 1, 1)
    ci = torch.arange(c, device=dev).view(1, c, 1, 1)
    return padded[ni, ci, rows.view(n, 1, h, 1), cols.view(n, 1, 1, w)]


def angle_loss(net: NB201, images_u8: torch.Tensor, labels: torch.Tensor, mean: torch.Tensor,
               std: torch.Tensor, aug=None, gen: Optional[torch.Generator] = None,
               iters: int = 50, lr: float = 0.2, momentum: float = 0.9, wd: float = 5e-4,
               pad: int = 4, threshold: float = 0.95, prune: bool = True) -> Dict:
    """The paper's metric. `aug` = (flip, dx, dy) [iters, N] or None to draw them with `gen`.

    Padding is applied to the uint8 image with value 0 (torchvision's RandomCrop(padding=4)
    before ToTensor/Normalize), so padded pixels become -mean/std.
    """
    if not has_learnable_ops(net.ops):
        return dict(DEGENERATE)
    dev = next(net.parameters()).device
    n, _, h, w = images_u8.shape
    if aug is None:
        aug = draw_augmentation(iters, n, pad, gen if gen is not None else torch.Generator())
    flip, dx, dy = aug
    # Normalise the padded uint8 images once; cropping commutes with per-channel normalisation.
    padded = normalize(F.pad(images_u8, (pad, pad, pad, pad)).to(dev), mean, std)
    labels = labels.to(dev)
    w0 = net.classifier.weight.detach().clone()
    opt = torch.optim.SGD(net.parameters(), lr=lr, momentum=momentum, nesterov=True,
                          weight_decay=wd)
    net.train()
    rec = Record(prune=prune)
    loss_v = float("nan")
    for it in range(iters):
        x = augment(padded, flip[it], dx[it], dy[it], h, w)
        opt.zero_grad(set_to_none=True)
        loss = F.cross_entropy(net(x, rec), labels)
        loss.backward()
        opt.step()
        if it == iters - 1:
            loss_v = loss.item()
    w1 = net.classifier.weight.detach()
    cos = F.cosine_similarity(w0.flatten(), w1.flatten(), dim=0).item()
    if not (math.isfinite(cos) and math.isfinite(loss_v)) or cos >= threshold:
        return dict(DEGENERATE)
    return {"cos": cos, "loss": loss_v, "degenerate": False}


def _ce_backward(net: NB201, x: torch.Tensor, y: torch.Tensor, rec: Optional[Record] = None):
    net.train()
    net.zero_grad(set_to_none=False)
    loss = F.cross_entropy(net(x, rec), y)
    loss.backward()
    return loss


def grad_norm(net: NB201, x: torch.Tensor, y: torch.Tensor) -> float:
    """Sum over conv/linear layers of ||dL/dW||_2."""
    _ce_backward(net, x, y)
    return sum(w.grad.norm().item() for w in net.conv_linear_weights())


def snip(net: NB201, x: torch.Tensor, y: torch.Tensor) -> float:
    """Sum over conv/linear weights of |W * dL/dW| (the gradient of a unit mask)."""
    _ce_backward(net, x, y)
    return sum((w * w.grad).abs().sum().item() for w in net.conv_linear_weights())


def grasp(net: NB201, x: torch.Tensor, y: torch.Tensor) -> float:
    """Sum over conv/linear weights of -W * (H g), g = dL/dW, H g by double backprop."""
    net.train()
    ws = net.conv_linear_weights()
    g = torch.autograd.grad(F.cross_entropy(net(x), y), ws, allow_unused=True)
    g = [torch.zeros_like(w) if gi is None else gi.detach() for w, gi in zip(ws, g, strict=True)]
    gf = torch.autograd.grad(F.cross_entropy(net(x), y), ws, create_graph=True, allow_unused=True)
    z = sum((gi * gfi).sum() for gi, gfi in zip(g, gf, strict=True) if gfi is not None)
    hg = torch.autograd.grad(z, ws, allow_unused=True)
    return sum((-w.detach() * h).sum().item() for w, h in zip(ws, hg, strict=True) if h is not None)


def fisher(net: NB201, x: torch.Tensor, y: torch.Tensor) -> float:
    """Sum over conv/linear outputs a and channels k of 0.5 mean_n (sum_space a * dL/da)^2."""
    net.train()
    net.zero_grad(set_to_none=False)
    rec = Record(layer_outputs=[])
    loss = F.cross_entropy(net(x, rec), y)
    acts = rec.layer_outputs
    grads = torch.autograd.grad(loss, acts, allow_unused=True)
    total = 0.0
    for a, g in zip(acts, grads, strict=True):
        if g is None:
            continue
        prod = a.detach() * g
        g_nk = prod.sum(dim=tuple(range(2, prod.dim()))) if prod.dim() > 2 else prod
        total += (0.5 * g_nk.pow(2).mean(0)).sum().item()
    return total


def jacob_cov(net: NB201, x: torch.Tensor, y: torch.Tensor) -> float:
    """-sum_i log(v_i + k) + 1/(v_i + k), v = eigenvalues of the correlation matrix of the
    per-sample input Jacobians of the summed logits, k = 1e-5 (NASWOT v1). Undefined
    correlations (a constant row, e.g. an output that ignores the input) give NaN, as the
    authors' `try`/`except` does."""
    net.train()
    xg = x.clone().requires_grad_(True)
    out = net(xg)
    (jac,) = torch.autograd.grad(out.sum(), xg, allow_unused=True)
    if jac is None:
        return float("nan")
    jac = jac.reshape(jac.shape[0], -1).double().cpu().numpy()
    with np.errstate(invalid="ignore", divide="ignore"):
        corr = np.corrcoef(jac)
    if np.isnan(corr).any():
        return float("nan")
    v = np.linalg.eigvalsh(corr)
    k = 1e-5
    return float(-np.sum(np.log(v + k) + 1.0 / (v + k)))


def synflow(net: NB201, x: torch.Tensor, y: torch.Tensor) -> float:
    """sum |W * dR/dW|, R = sum of the outputs of |W|-valued network without BN, float64, on an
    all-ones input of one image. The network is restored afterwards."""
    saved = {k: v.detach().clone() for k, v in net.state_dict().items()}
    dtype = next(net.parameters()).dtype
    try:
        net.double()
        with torch.no_grad():
            for p in net.parameters():
                p.abs_()
        net.zero_grad(set_to_none=False)
        ones = torch.ones((1,) + tuple(x.shape[1:]), dtype=torch.float64, device=x.device)
        net(ones, Record(no_bn=True)).sum().backward()
        return sum((w * w.grad).abs().sum().item() for w in net.conv_linear_weights())
    finally:
        net.to(dtype)
        net.load_state_dict(saved)


def naswot(net: NB201, x: torch.Tensor, y: torch.Tensor, prune: bool = False) -> float:
    """log|det K|, K = sum over executed ReLUs of C C^T + (1-C)(1-C)^T, C the binary codes of the
    ReLU's flattened input per image. `prune=False` counts every ReLU eager PyTorch executes."""
    net.train()
    rec = Record(relu_inputs=[], prune=prune)
    with torch.no_grad():
        net(x, rec)
        n = x.shape[0]
        k = torch.zeros((n, n), dtype=torch.float64, device=x.device)
        for r in rec.relu_inputs:
            c = (r.reshape(n, -1) > 0).double()
            k += c @ c.t() + (1.0 - c) @ (1.0 - c).t()
    return float(torch.linalg.slogdet(k.cpu())[1])


def ntk_cond(net: NB201, x: torch.Tensor, y: torch.Tensor) -> float:
    """lambda_max / lambda_min of G G^T, G[n] = d(sum of logits of image n)/d(all `weight` params),
    BN in train mode (so the images interact through the batch statistics)."""
    net.train()
    ws = [p for name, p in net.named_parameters() if "weight" in name]
    out = net(x)
    rows = []
    for i in range(x.shape[0]):
        g = torch.autograd.grad(out[i].sum(), ws, retain_graph=True, allow_unused=True)
        rows.append(torch.cat([(torch.zeros_like(w) if gi is None else gi).reshape(-1)
                               for w, gi in zip(ws, g, strict=True)]))
    gm = torch.stack(rows).double()
    ntk = gm @ gm.t()
    ev = torch.linalg.eigvalsh(ntk.cpu())
    cond = (ev[-1] / ev[0]).item()
    return 1e5 if math.isnan(cond) else cond


def zen(net: NB201, x: torch.Tensor, y: torch.Tensor, noise=None,
        gen: Optional[torch.Generator] = None, mixup_gamma: float = 1e-2,
        prune: bool = False) -> float:
    """log(mean_n sum |f(z1) - f(z1 + gamma z2)|) + sum_BN log sqrt(mean batch variance), f the
    pre-GAP features, z1, z2 standard normal of the batch's shape (`noise` or drawn by `gen`)."""
    if noise is None:
        g = gen if gen is not None else torch.Generator()
        noise = (torch.randn(x.shape, generator=g), torch.randn(x.shape, generator=g))
    z1, z2 = (t.to(x) for t in noise)
    net.train()
    with torch.no_grad():
        rec = Record(bn_batch_vars=[], prune=prune)
        net(z1, rec)
        f1 = rec.features
        rec2 = Record(prune=prune)
        net(z1 + mixup_gamma * z2, rec2)
        f2 = rec2.features
        score = (f1 - f2).abs().sum(dim=(1, 2, 3)).mean()
        # A BN of an all-zero input (a conv fed by a node only `none` edges reach) scales
        # nothing in f: left out, or its log would be -inf (the runner does the same).
        log_bn = sum(torch.log(torch.sqrt(v.mean())) for v in rec.bn_batch_vars if v.mean() > 0)
    return float(torch.log(score) + log_bn)


def params(net: NB201, x: torch.Tensor, y: torch.Tensor) -> float:
    return float(sum(p.numel() for p in net.parameters()))


TRAINING_FREE: Dict[str, Callable] = {
    "params": params,
    "grad_norm": grad_norm,
    "snip": snip,
    "grasp": grasp,
    "fisher": fisher,
    "jacob_cov": jacob_cov,
    "synflow": synflow,
    "naswot": naswot,
    "ntk_cond": ntk_cond,
    "zen": zen,
}

# Batch sizes the metrics' reference code uses on CIFAR (timing runs use these).
DEFAULT_BATCH = {
    "params": 1, "grad_norm": 64, "snip": 64, "grasp": 64, "fisher": 64, "jacob_cov": 64,
    "synflow": 1, "naswot": 128, "ntk_cond": 64, "zen": 64, "linear_regions": 3000,
}

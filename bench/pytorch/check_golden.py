#!/usr/bin/env python3
"""Check golden files against independent float64 NumPy forwards.

The NumPy code below is written from the model specification (not from
models.py), so it cross-checks both the PyTorch reference and the stored
files: logits and loss must match, and central finite differences of the
NumPy loss must match sampled entries of /grads.  It also re-runs the SGD
steps with models.py and compares /after.

    python3 bench/pytorch/check_golden.py tests/golden/*.h5
"""

import os
import sys

import h5py
import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))


# ------------------------------------------------------------------ forwards

def relu(x):
    return np.maximum(x, 0.0)


def linear(p, name, x):
    return x @ p[name + ".weight"].T + p[name + ".bias"]


def dlrm_forward(p, b, attrs):
    dense, sparse, label = b["dense"].astype(np.float64), b["sparse"], b["label"].astype(np.float64)
    n_bot = len([k for k in p if k.startswith("bot_l.") and k.endswith(".weight")])
    n_top = len([k for k in p if k.startswith("top_l.") and k.endswith(".weight")])
    x = dense
    for k in range(n_bot):
        x = relu(linear(p, f"bot_l.{2 * k}", x))
    vecs = [x] + [p[f"emb_l.{t}.weight"][sparse[:, t]] for t in range(26)]
    T = np.stack(vecs, axis=1)                        # [B, 27, D]
    Z = T @ T.transpose(0, 2, 1)
    inter = [Z[:, i, j] for i in range(27) for j in range(i)]
    r = np.concatenate([x, np.stack(inter, axis=1)], axis=1)
    for k in range(n_top):
        r = linear(p, f"top_l.{2 * k}", r)
        if k < n_top - 1:
            r = relu(r)
    z = r[:, 0]
    loss = np.mean(np.maximum(z, 0) - z * label + np.log1p(np.exp(-np.abs(z))))
    return z, loss


def l2n(x):
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)


def logsoftmax_ce(logits, target, smoothing=0.0):
    m = logits.max(axis=1, keepdims=True)
    lse = m[:, 0] + np.log(np.exp(logits - m).sum(axis=1))
    logp = logits - lse[:, None]
    nll = -logp[np.arange(len(target)), target]
    return np.mean((1 - smoothing) * nll - smoothing * logp.mean(axis=1))


def two_tower_forward(p, b, attrs, logq):
    hist = b["user_hist"]
    rows = []
    for i in range(hist.shape[0]):
        ids = [h for h in hist[i] if h >= 0]
        rows.append(np.mean(p["user_tower.hist_emb.weight"][ids], axis=0) if ids
                    else np.zeros(p["user_tower.hist_emb.weight"].shape[1]))
    uin = np.concatenate([p["user_tower.user_emb.weight"][b["user_id"]], np.stack(rows)], axis=1)
    iin = np.concatenate([p["item_tower.item_emb.weight"][b["item_id"]],
                          p["item_tower.cat_emb.weight"][b["item_cat"]]], axis=1)

    def tower(pre, x):
        return l2n(linear(p, pre + ".mlp.2", relu(linear(p, pre + ".mlp.0", x))))
    u, v = tower("user_tower", uin), tower("item_tower", iin)
    logits = u @ v.T / float(attrs["temperature"]) - logq[None, :]
    return logits, logsoftmax_ce(logits, np.arange(len(logits)))


def layernorm(x, w, bias, eps=1e-6):
    mu = x.mean(axis=-1, keepdims=True)
    var = ((x - mu) ** 2).mean(axis=-1, keepdims=True)
    return (x - mu) / np.sqrt(var + eps) * w + bias


def gelu_tanh(x):
    return 0.5 * x * (1 + np.tanh(np.sqrt(2 / np.pi) * (x + 0.044715 * x ** 3)))


def vit_forward(p, b, attrs):
    imgs = b["images"].astype(np.float64) / 255.0          # [B, H, W, C]
    C = imgs.shape[3]
    mean, std = ((0.2860,), (0.3530,)) if C == 1 else ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))
    imgs = (imgs - np.array(mean)) / np.array(std)
    W = p["patch_embed.proj.weight"]                       # [D, C, P, P]
    D, _, P, _ = W.shape
    Bn, H, Wd, _ = imgs.shape
    gh, gw = H // P, Wd // P
    patches = imgs.reshape(Bn, gh, P, gw, P, C).transpose(0, 1, 3, 5, 2, 4).reshape(Bn, gh * gw, C * P * P)
    x = patches @ W.reshape(D, -1).T + p["patch_embed.proj.bias"]
    x = np.concatenate([np.broadcast_to(p["cls_token"], (Bn, 1, D)), x], axis=1) + p["pos_embed"]
    depth = len({k.split(".")[1] for k in p if k.startswith("blocks.")})
    heads = {16: 2, 96: 4, 192: 3, 384: 6}[D]
    hd = D // heads
    for k in range(depth):
        pre = f"blocks.{k}"
        h = layernorm(x, p[pre + ".norm1.weight"], p[pre + ".norm1.bias"])
        qkv = linear(p, pre + ".attn.qkv", h).reshape(Bn, -1, 3, heads, hd)
        q, kk, v = (qkv[:, :, s].transpose(0, 2, 1, 3) for s in range(3))
        a = q @ kk.transpose(0, 1, 3, 2) * hd ** -0.5
        a = np.exp(a - a.max(axis=-1, keepdims=True))
        a /= a.sum(axis=-1, keepdims=True)
        o = (a @ v).transpose(0, 2, 1, 3).reshape(Bn, -1, D)
        x = x + linear(p, pre + ".attn.proj", o)
        h = layernorm(x, p[pre + ".norm2.weight"], p[pre + ".norm2.bias"])
        x = x + linear(p, pre + ".mlp.fc2", gelu_tanh(linear(p, pre + ".mlp.fc1", h)))
    x = layernorm(x, p["norm.weight"], p["norm.bias"])
    logits = linear(p, "head", x[:, 0])
    return logits, logsoftmax_ce(logits, b["labels"].astype(np.int64),
                                 float(attrs.get("label_smoothing", 0.0)))


def logq_reference(items, num_items, alpha):
    """The streaming estimator written plainly, in float64."""
    A, Bv, out = [0.0] * num_items, [0.0] * num_items, []
    for t, ids in enumerate(items, start=1):
        for h in sorted(set(int(i) for i in ids)):
            Bv[h] = (1 - alpha) * Bv[h] + alpha * (t - A[h])
            A[h] = t
        out.append([-np.log(max(Bv[int(i)], 1.0)) for i in ids])
    return np.array(out)


# ------------------------------------------------------------------ checks

def rel(a, b):
    return float(np.max(np.abs(a - b)) / max(np.max(np.abs(b)), 1e-30))


def check(path, fd_samples=4):
    with h5py.File(path, "r") as f:
        attrs = dict(f.attrs)
        name = attrs["model"].decode() if isinstance(attrs["model"], bytes) else str(attrs["model"])
        p = {k: f["params"][k][...].astype(np.float64) for k in f["params"]}
        g = {k: f["grads"][k][...] for k in f["grads"]}
        after = {k: f["after"][k][...] for k in f["after"]}
        b = {k: f["batch"][k][...] for k in f["batch"]}
        logits_ref, loss_ref = f["logits"][...], float(f["loss"][()])
        logq = f["logq"][...].astype(np.float64) if "logq" in f else None
        seq = (f["logq_seq/item_id"][...], f["logq_seq/logq"][...]) if "logq_seq" in f else None
    if name == "dlrm":
        fwd = lambda q: dlrm_forward(q, b, attrs)          # noqa: E731
    elif name == "two_tower":
        fwd = lambda q: two_tower_forward(q, b, attrs, logq)  # noqa: E731
    else:
        fwd = lambda q: vit_forward(q, b, attrs)            # noqa: E731
    logits, loss = fwd(p)
    errs = {"logits": rel(logits, logits_ref), "loss": abs(loss - loss_ref) / abs(loss)}
    rng = np.random.default_rng(0)
    worst = 0.0
    for k, w in p.items():                   # central differences in float64
        flat = w.reshape(-1)
        gk = g[k].reshape(-1)
        scale = max(np.max(np.abs(gk)), 1e-12)
        for idx in rng.choice(flat.size, size=min(fd_samples, flat.size), replace=False):
            h = 1e-6
            old = flat[idx]
            flat[idx] = old + h
            lp = fwd(p)[1]
            flat[idx] = old - h
            lm = fwd(p)[1]
            flat[idx] = old
            worst = max(worst, abs((lp - lm) / (2 * h) - gk[idx]) / scale)
    errs["grads_fd"] = worst
    errs["after_vs_rerun"] = rerun_after(path, after)
    ok = errs["logits"] < 1e-5 and errs["loss"] < 1e-6 and worst < 1e-4 and errs["after_vs_rerun"] == 0.0
    if seq is not None:
        ref = logq_reference(seq[0], int(attrs["num_items"]), float(attrs["logq_alpha"]))
        errs["logq_seq"] = float(np.max(np.abs(ref - seq[1])))
        ok = ok and errs["logq_seq"] < 1e-5 and np.max(np.abs(ref)) > 0.1
    print(f"{path}: {'OK' if ok else 'FAIL'} " + " ".join(f"{k}={v:.2e}" for k, v in errs.items()))
    return ok


def rerun_after(path, after):
    """Regenerate the file's model with make_golden and compare /after bitwise."""
    import tempfile

    import make_golden
    import torch
    torch.use_deterministic_algorithms(True)
    torch.set_num_threads(1)
    with h5py.File(path, "r") as f:
        name = f.attrs["model"].decode()
        seed = int(f.attrs["seed"])
    with tempfile.TemporaryDirectory() as d:
        out, _ = make_golden.golden(name, seed, d)
        with h5py.File(out, "r") as f:
            return max(float(np.max(np.abs(f["after"][k][...] - after[k]))) for k in after)


def main():
    paths = sys.argv[1:] or [os.path.join("tests", "golden", f"{m}_tiny.h5")
                             for m in ("dlrm", "two_tower", "vit")]
    ok = all([check(pth) for pth in paths])
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()

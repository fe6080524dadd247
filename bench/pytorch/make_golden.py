#!/usr/bin/env python3
"""Write the golden files cddp's model tests compare against (tests/golden/).

For each model's tiny variant: initial weights, one batch, the mean loss, the
logits, the gradient of every parameter, and the parameters after `steps` plain
SGD steps on that same batch.  Format: tests/golden/README.md.

    python3 bench/pytorch/make_golden.py --seed 1234 --out tests/golden
"""

import argparse
import os
import sys

import h5py
import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import models  # noqa: E402

STEPS = 10
LR = {"dlrm": 0.1, "two_tower": 0.02, "vit": 0.05}
BATCH = {"dlrm": 8, "two_tower": 6, "vit": 8}


def make_dlrm(rng):
    table_sizes = rng.integers(3, 21, size=models.NUM_SPARSE).astype(np.int64)
    B = BATCH["dlrm"]
    counts = rng.poisson(lam=rng.uniform(0.5, 30.0, size=models.NUM_DENSE), size=(B, models.NUM_DENSE))
    batch = {
        "dense": np.log1p(counts).astype(np.float32),
        "sparse": np.stack([rng.integers(0, n, size=B) for n in table_sizes], axis=1).astype(np.int32),
        "label": np.array([0, 1] * (B // 2), dtype=np.uint8)[rng.permutation(B)],
    }
    info = {"table_sizes": table_sizes.tolist()}
    attrs = {"table_sizes": table_sizes}
    return batch, info, attrs


def make_two_tower(rng):
    num_users, num_items, num_cats, H = 11, 17, 5, 4
    B = BATCH["two_tower"]
    item_id = rng.choice(num_items, size=B, replace=False).astype(np.int32)
    item_id[B - 1] = item_id[1]          # one duplicate item: exercises shared rows
    hist = rng.integers(0, num_items, size=(B, H)).astype(np.int32)
    for i in range(B):                   # varied padding lengths, incl. all-padding
        n_valid = [H, 3, 1, 0, 2, H][i % 6]
        hist[i, n_valid:] = -1
    item_cat = rng.integers(0, num_cats, size=num_items).astype(np.int32)[item_id]
    batch = {
        "user_id": rng.integers(0, num_users, size=B).astype(np.int32),
        "user_hist": hist,
        "item_id": item_id,
        "item_cat": item_cat,
    }
    info = {"num_users": num_users, "num_items": num_items, "num_cats": num_cats}
    attrs = dict(info, hist_len=H, temperature=models.TWO_TOWER_VARIANTS["tiny"]["temperature"],
                 logq_alpha=models.LOGQ_ALPHA)
    return batch, info, attrs


def make_vit(rng):
    cfg = models.VIT_VARIANTS["tiny"]
    B = BATCH["vit"]
    batch = {
        "images": rng.integers(0, 256, size=(B, cfg["img"], cfg["img"], cfg["chans"])).astype(np.uint8),
        "labels": rng.integers(0, cfg["classes"], size=B).astype(np.int32),
    }
    info = {"num_classes": cfg["classes"]}
    attrs = {"height": cfg["img"], "width": cfg["img"], "channels": cfg["chans"],
             "num_classes": cfg["classes"], "label_smoothing": 0.0}
    return batch, info, attrs


MAKERS = {"dlrm": make_dlrm, "two_tower": make_two_tower, "vit": make_vit}


@torch.no_grad()
def perturb(model, name, gen):
    """Make the default init non-trivial where it is degenerate for a test:
    ViT's zero biases, unit LayerNorm and ~0 cls_token would hide swapped or
    missing terms, so they get small random values."""
    if name != "vit":
        return
    for pname, p in model.named_parameters():
        if pname.endswith("bias") or "norm" in pname or pname == "cls_token":
            base = 1.0 if (("norm" in pname) and pname.endswith("weight")) else 0.0
            p.copy_(base + 0.1 * torch.randn(p.shape, generator=gen))


def forward_loss(model, name, batch, logq):
    logits = model(batch, logq) if name == "two_tower" else model(batch)
    return logits, model.loss(logits, batch)


def logq_sequence(rng, num_items, B, steps=40):
    """Item batches with varied revisit gaps and the logQ the estimator gives
    at each step; with the golden's single repeated batch logQ stays 0 (B < 1),
    so this sequence is what exercises the correction."""
    est = models.LogQEstimator(num_items)
    hot = rng.choice(num_items, size=3, replace=False)
    items, logq = [], []
    for _ in range(steps):
        ids = rng.integers(0, num_items, size=B)
        ids[0] = rng.choice(hot)                  # some items seen often
        ids[1] = ids[0] if rng.random() < 0.3 else ids[1]   # in-batch duplicates
        items.append(ids.astype(np.int32))
        logq.append(est.update(ids).numpy())
    return np.stack(items), np.stack(logq).astype(np.float32)


def golden(name, seed, out_dir):
    rng = np.random.default_rng([seed, list(models.MODELS).index(name)])
    torch.manual_seed(seed * 10 + list(models.MODELS).index(name))
    gen = torch.Generator().manual_seed(seed + 7)
    batch_np, info, attrs = MAKERS[name](rng)
    model = models.build_model(name, "tiny", info)
    perturb(model, name, gen)
    batch = {k: torch.from_numpy(v) for k, v in batch_np.items()}
    params0 = {k: v.detach().clone() for k, v in model.state_dict().items()}

    est = models.LogQEstimator(info["num_items"]) if name == "two_tower" else None
    opt = torch.optim.SGD(model.parameters(), lr=LR[name], momentum=0.0, weight_decay=0.0)
    first, losses = None, []
    for step in range(STEPS):
        logq = est.update(batch_np["item_id"]) if est is not None else None
        opt.zero_grad(set_to_none=False)
        logits, loss = forward_loss(model, name, batch, logq)
        loss.backward()
        losses.append(float(loss.item()))
        if step == 0:
            first = (logits.detach().clone(), float(loss.item()),
                     {k: p.grad.detach().clone() for k, p in model.named_parameters()},
                     None if logq is None else logq.clone())
        opt.step()
    logits0, loss0, grads0, logq0 = first

    for k, g in grads0.items():
        if not torch.all(torch.isfinite(g)) or float(g.abs().max()) == 0.0:
            raise SystemExit(f"{name}: gradient of {k} is zero or non-finite; change the seed")

    path = os.path.join(out_dir, f"{name}_tiny.h5")
    with h5py.File(path, "w") as f:
        f.attrs["model"] = np.bytes_(name)   # fixed-length ASCII strings
        f.attrs["variant"] = np.bytes_("tiny")
        f.attrs["batch"] = np.int64(BATCH[name])
        f.attrs["lr"] = np.float64(LR[name])
        f.attrs["steps"] = np.int64(STEPS)
        f.attrs["seed"] = np.int64(seed)
        f.attrs["torch_version"] = np.bytes_(str(torch.__version__))
        for k, v in attrs.items():
            f.attrs[k] = v
        g = f.create_group("batch")
        for k, v in batch_np.items():
            g.create_dataset(k, data=v)
        if name == "dlrm":
            g["sparse"].attrs["table_sizes"] = attrs["table_sizes"]
        for grp, tensors in (("params", params0), ("grads", grads0)):
            h = f.create_group(grp)
            for k, v in tensors.items():
                h.create_dataset(k, data=v.numpy().astype(np.float32))
        h = f.create_group("after")
        for k, v in model.state_dict().items():
            h.create_dataset(k, data=v.numpy().astype(np.float32))
        f.create_dataset("loss", data=np.float64(loss0))
        f.create_dataset("losses", data=np.array(losses, dtype=np.float64))
        f.create_dataset("logits", data=logits0.numpy().astype(np.float32))
        if name == "two_tower":
            f.create_dataset("logq", data=logq0.numpy())
            items, lq = logq_sequence(rng, info["num_items"], BATCH[name])
            s = f.create_group("logq_seq")
            s.create_dataset("item_id", data=items)
            s.create_dataset("logq", data=lq)
    return path, loss0


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seed", type=int, default=1234)
    ap.add_argument("--out", default="tests/golden")
    ap.add_argument("--models", default=",".join(models.MODELS))
    args = ap.parse_args()
    torch.use_deterministic_algorithms(True)
    torch.set_num_threads(1)
    os.makedirs(args.out, exist_ok=True)
    for name in args.models.split(","):
        path, loss = golden(name, args.seed, args.out)
        print(f"{path}: loss {loss:.6f}, {os.path.getsize(path)} bytes")


if __name__ == "__main__":
    main()

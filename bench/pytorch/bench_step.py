#!/usr/bin/env python3
"""Time one training step (forward + backward + SGD update) of the PyTorch
reference models on CPU (or a GPU with --device cuda), for comparison with
cddp at the same thread count.

Prints one JSON line per model, e.g.
    python3 bench/pytorch/bench_step.py --model dlrm --threads 1
    python3 bench/pytorch/bench_step.py --model vit --threads 1
    python3 bench/pytorch/bench_step.py --model dlrm --data train.h5   # table sizes from a cddp ctr file

DLRM defaults follow facebookresearch/dlrm on CPU: embedding tables produce
sparse gradients (EmbeddingBag(sparse=True)) and SGD updates only the touched
rows; --dense-emb-grad switches to dense table gradients.
"""

import argparse
import json
import os
import sys
import time

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import models  # noqa: E402

# Per-table cardinalities of the Criteo Kaggle Display Advertising Challenge
# data set (C1..C26), as used by facebookresearch/dlrm and TorchRec examples.
CRITEO_KAGGLE_TABLE_SIZES = [
    1460, 583, 10131227, 2202608, 305, 24, 12517, 633, 3, 93145, 5683,
    8351593, 3194, 27, 14992, 5461306, 10, 5652, 2173, 4, 7046547, 18,
    15, 286181, 105, 142572,
]

DEFAULT_BATCH = {"dlrm": 2048, "vit": 128, "two_tower": 1024}
TWO_TOWER_SIZES = {"num_users": 100000, "num_items": 50000, "num_cats": 100}


def synthetic_batch(model, variant, info, B, rng, hist_len=20):
    if model == "dlrm":
        ts = info["table_sizes"]
        return {
            "dense": torch.from_numpy(np.log1p(rng.poisson(5.0, size=(B, 13))).astype(np.float32)),
            "sparse": torch.from_numpy(np.stack([rng.integers(0, n, size=B) for n in ts], 1).astype(np.int32)),
            "label": torch.from_numpy(rng.integers(0, 2, size=B).astype(np.uint8)),
        }
    if model == "vit":
        c = models.VIT_VARIANTS[variant]
        return {
            "images": torch.from_numpy(rng.integers(0, 256, size=(B, c["img"], c["img"], c["chans"]), dtype=np.uint8)),
            "labels": torch.from_numpy(rng.integers(0, c["classes"], size=B).astype(np.int32)),
        }
    hist = rng.integers(0, info["num_items"], size=(B, hist_len)).astype(np.int32)
    hist[np.arange(hist_len)[None, :] >= rng.integers(0, hist_len + 1, size=(B, 1))] = -1
    return {
        "user_id": torch.from_numpy(rng.integers(0, info["num_users"], size=B).astype(np.int32)),
        "user_hist": torch.from_numpy(hist),
        "item_id": torch.from_numpy(rng.integers(0, info["num_items"], size=B).astype(np.int32)),
        "item_cat": torch.from_numpy(rng.integers(0, info["num_cats"], size=B).astype(np.int32)),
    }


def batch_from_file(path, B, info, cap):
    import h5py
    with h5py.File(path, "r") as f:
        n = next(f[k].shape[0] for k in ("label", "labels", "item_id") if k in f)
        if n < B:
            raise SystemExit(f"{path}: {n} rows, fewer than batch {B}")
        batch = models.batch_from_h5(f, slice(0, B))
    if "sparse" in batch and cap:
        # tables were capped: fold ids into the capped range
        sizes = torch.tensor(info["table_sizes"], dtype=torch.int32)
        batch["sparse"] = torch.remainder(batch["sparse"], sizes)
    return batch


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="dlrm,vit", help="comma list of dlrm, vit, two_tower")
    ap.add_argument("--variant", default=None, help="dlrm: kaggle|terabyte; vit: vit-fmnist|deit-tiny|deit-small")
    ap.add_argument("--batch", type=int, default=None, help="default: dlrm 2048, vit 128, two_tower 1024")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--steps", type=int, default=20, help="timed steps")
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--precision", choices=("fp32", "bf16"), default="fp32")
    ap.add_argument("--device", choices=("cpu", "cuda"), default="cpu",
                    help="cuda: model and batch on the GPU, each step timed to its synchronisation")
    ap.add_argument("--lr", type=float, default=0.01)
    ap.add_argument("--data", default=None, help="cddp HDF5 file: sizes (and the first batch) come from it")
    ap.add_argument("--table-sizes", default=None, help="dlrm: 26 comma-separated sizes (default Criteo Kaggle)")
    ap.add_argument("--max-rows", type=int, default=1000000, help="dlrm: cap on rows per table")
    ap.add_argument("--dense-emb-grad", action="store_true", help="dlrm: dense embedding gradients")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()

    torch.set_num_threads(args.threads)
    torch.set_num_interop_threads(1)
    torch.manual_seed(args.seed)
    rng = np.random.default_rng(args.seed)

    for model_name in args.model.split(","):
        variant = args.variant if args.variant and len(args.model.split(",")) == 1 \
            else models.DEFAULT_VARIANT[model_name]
        B = args.batch or DEFAULT_BATCH[model_name]
        info = models.read_data_info(args.data) if args.data else {}
        capped = False
        if model_name == "dlrm":
            sizes = info.get("table_sizes") or (
                [int(s) for s in args.table_sizes.split(",")] if args.table_sizes else CRITEO_KAGGLE_TABLE_SIZES)
            capped = any(s > args.max_rows for s in sizes)
            info["table_sizes"] = [min(int(s), args.max_rows) for s in sizes]
        elif model_name == "two_tower":
            for k, v in TWO_TOWER_SIZES.items():
                info.setdefault(k, v)
        model = models.build_model(model_name, variant, info,
                                   sparse_grad=(model_name == "dlrm" and not args.dense_emb_grad))
        model.train()
        batch = batch_from_file(args.data, B, info, capped) if args.data \
            else synthetic_batch(model_name, variant, info, B, rng)
        dev = torch.device(args.device)
        model.to(dev)
        if model_name == "two_tower" and args.device != "cpu":
            raise SystemExit("--device cuda: two_tower's logQ estimator runs on the host; use dlrm or vit")
        batch = {k: v.to(dev) for k, v in batch.items()}
        opt = torch.optim.SGD(model.parameters(), lr=args.lr)
        est = models.LogQEstimator(info["num_items"]) if model_name == "two_tower" else None

        def step():
            logq = est.update(batch["item_id"].numpy()) if est is not None else None
            opt.zero_grad(set_to_none=True)
            with torch.autocast(args.device, dtype=torch.bfloat16, enabled=(args.precision == "bf16")):
                logits = model(batch, logq) if est is not None else model(batch)
                loss = model.loss(logits.float(), batch)
            loss.backward()
            opt.step()
            return loss

        for _ in range(args.warmup):
            step()
        if args.device == "cuda":
            torch.cuda.synchronize()
        times = []
        for _ in range(args.steps):
            t0 = time.perf_counter()
            loss = step()
            if args.device == "cuda":
                torch.cuda.synchronize()
            times.append(time.perf_counter() - t0)
        total = sum(times)
        print(json.dumps({
            "impl": "pytorch", "torch": str(torch.__version__), "model": model_name, "variant": variant,
            "batch": B, "device": args.device, "threads": args.threads, "precision": args.precision, "steps": args.steps,
            "step_ms_mean": round(1e3 * total / args.steps, 3),
            "step_ms_median": round(1e3 * float(np.median(times)), 3),
            "samples_per_s": round(B * args.steps / total, 1),
            "sparse_emb_grad": model_name == "dlrm" and not args.dense_emb_grad,
            "params": sum(p.numel() for p in model.parameters()),
            "final_loss": round(float(loss.detach()), 6),
        }), flush=True)
        del model, opt, batch


if __name__ == "__main__":
    main()

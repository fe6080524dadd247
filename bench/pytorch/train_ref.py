#!/usr/bin/env python3
"""Train a PyTorch reference model on cddp HDF5 files, for loss-curve and
metric comparison with `cddp train` (single process, CPU).

    python3 bench/pytorch/train_ref.py --model dlrm --train ctr_train.h5 --eval ctr_test.h5 \
        --batch 2048 --lr 0.1 --epochs 1 --metrics-out ref.jsonl
    python3 bench/pytorch/train_ref.py --model vit --train fmnist_train.h5 --eval fmnist_test.h5 \
        --optimizer adamw --lr 1e-3 --weight-decay 0.05 --batch 128 --epochs 5
    python3 bench/pytorch/train_ref.py --model two_tower --train tt_train.h5 --eval tt_test.h5 --recall-k 50

Each logging step and evaluation writes one JSON object (stdout, and
--metrics-out FILE.jsonl). Shuffling uses NumPy's generator seeded with
seed + epoch, which is NOT cddp's sampler permutation: compare curves, not
bits; --no-shuffle reads rows in file order for step-by-step comparisons.
Metrics: dlrm AUC (exact, rank based) and logloss; vit accuracy; two_tower
Recall@K against every item id (item categories taken from the data rows).
"""

import argparse
import json
import os
import sys
import time

import h5py
import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import models  # noqa: E402


def load_all(path):
    with h5py.File(path, "r") as f:
        return models.batch_from_h5(f)


def num_rows(data):
    return next(v.shape[0] for v in data.values())


def take(data, idx):
    return {k: v[idx] for k, v in data.items()}


def exact_auc(scores, labels):
    """Mann-Whitney AUC with average ranks for ties."""
    order = np.argsort(scores, kind="mergesort")
    s = scores[order]
    ranks = np.empty(len(s), dtype=np.float64)
    i = 0
    while i < len(s):
        j = i
        while j + 1 < len(s) and s[j + 1] == s[i]:
            j += 1
        ranks[i:j + 1] = 0.5 * (i + j) + 1.0
        i = j + 1
    r = np.empty_like(ranks)
    r[order] = ranks
    pos = labels == 1
    n_pos, n_neg = pos.sum(), (~pos).sum()
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    return float((r[pos].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


@torch.no_grad()
def evaluate(model, name, data, batch, k, item_cats):
    model.eval()
    n = num_rows(data)
    out = {}
    if name == "two_tower":
        items = torch.arange(len(item_cats), dtype=torch.int32)
        v = model.item_tower(items, torch.from_numpy(item_cats))
        hits = 0
        for s in range(0, n, batch):
            b = take(data, slice(s, s + batch))
            u = model.user_tower(b["user_id"], b["user_hist"])
            scores = u @ v.t()
            top = scores.topk(k, dim=1).indices
            hits += int((top == b["item_id"].long().unsqueeze(1)).any(dim=1).sum())
        out[f"recall@{k}"] = hits / n
    else:
        logits, tot = [], 0.0
        for s in range(0, n, batch):
            b = take(data, slice(s, s + batch))
            lg = model(b)
            tot += float(model.loss(lg, b)) * lg.shape[0]
            logits.append(lg)
        lg = torch.cat(logits)
        out["loss"] = tot / n
        if name == "dlrm":
            out["auc"] = exact_auc(lg.numpy().astype(np.float64), data["label"].numpy())
        else:
            out["accuracy"] = float((lg.argmax(1) == data["labels"].long()).float().mean())
    model.train()
    return out


def make_optimizer(args, model):
    if args.optimizer == "sgd":
        return torch.optim.SGD(model.parameters(), lr=args.lr, momentum=args.momentum,
                               weight_decay=args.weight_decay)
    if args.optimizer == "adagrad":
        return torch.optim.Adagrad(model.parameters(), lr=args.lr, weight_decay=args.weight_decay)
    # timm convention: no weight decay on biases, norms, pos_embed, cls_token
    decay, no_decay = [], []
    for n, p in model.named_parameters():
        (no_decay if p.ndim <= 1 or n in ("pos_embed", "cls_token") else decay).append(p)
    return torch.optim.AdamW([{"params": decay, "weight_decay": args.weight_decay},
                              {"params": no_decay, "weight_decay": 0.0}], lr=args.lr)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", required=True, choices=models.MODELS)
    ap.add_argument("--variant", default=None)
    ap.add_argument("--train", required=True)
    ap.add_argument("--eval", default=None)
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--epochs", type=int, default=1)
    ap.add_argument("--max-steps", type=int, default=0, help="stop after this many steps (0: epochs)")
    ap.add_argument("--optimizer", choices=("sgd", "adamw", "adagrad"), default="sgd")
    ap.add_argument("--lr", type=float, default=0.01)
    ap.add_argument("--momentum", type=float, default=0.0)
    ap.add_argument("--weight-decay", type=float, default=0.0)
    ap.add_argument("--label-smoothing", type=float, default=0.0)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--no-shuffle", action="store_true")
    ap.add_argument("--log-every", type=int, default=50)
    ap.add_argument("--eval-every", type=int, default=0, help="steps between evaluations (0: end of each epoch)")
    ap.add_argument("--recall-k", type=int, default=50)
    ap.add_argument("--metrics-out", default=None)
    args = ap.parse_args()

    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    name = args.model
    variant = args.variant or models.DEFAULT_VARIANT[name]
    info = models.read_data_info(args.train)
    model = models.build_model(name, variant, info, label_smoothing=args.label_smoothing)
    opt = make_optimizer(args, model)
    train = load_all(args.train)
    test = load_all(args.eval) if args.eval else None
    item_cats = None
    if name == "two_tower":
        item_cats = np.zeros(info["num_items"], dtype=np.int32)
        for d in [train] + ([test] if test else []):
            item_cats[d["item_id"].numpy()] = d["item_cat"].numpy()
    est = models.LogQEstimator(info["num_items"]) if name == "two_tower" else None
    sink = open(args.metrics_out, "w") if args.metrics_out else None

    def emit(rec):
        line = json.dumps(rec)
        print(line, flush=True)
        if sink:
            sink.write(line + "\n")
            sink.flush()

    n = num_rows(train)
    steps_per_epoch = n // args.batch        # drop the last partial batch
    step, t0 = 0, time.perf_counter()
    for epoch in range(args.epochs):
        perm = np.arange(n) if args.no_shuffle else np.random.default_rng(args.seed + epoch).permutation(n)
        for s in range(steps_per_epoch):
            b = take(train, torch.from_numpy(perm[s * args.batch:(s + 1) * args.batch]))
            logq = est.update(b["item_id"].numpy()) if est else None
            opt.zero_grad(set_to_none=True)
            logits = model(b, logq) if est else model(b)
            loss = model.loss(logits, b)
            loss.backward()
            opt.step()
            step += 1
            if step % args.log_every == 0 or step == 1:
                el = time.perf_counter() - t0
                emit({"step": step, "epoch": epoch, "loss": float(loss.detach()),
                      "samples_per_s": step * args.batch / el})
            if test is not None and args.eval_every and step % args.eval_every == 0:
                emit(dict({"step": step, "eval": True}, **evaluate(model, name, test, 4096, args.recall_k, item_cats)))
            if args.max_steps and step >= args.max_steps:
                break
        last = epoch == args.epochs - 1 or (args.max_steps and step >= args.max_steps)
        # evaluate at each epoch end (no --eval-every) and always after the last step
        if test is not None and (not args.eval_every or (last and step % args.eval_every)):
            emit(dict({"step": step, "epoch": epoch, "eval": True},
                      **evaluate(model, name, test, 4096, args.recall_k, item_cats)))
        if last:
            break
    emit({"done": True, "steps": step, "seconds": time.perf_counter() - t0})
    if sink:
        sink.close()


if __name__ == "__main__":
    main()

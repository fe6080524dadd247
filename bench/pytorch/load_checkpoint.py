#!/usr/bin/env python3
"""Move weights between cddp checkpoints and the PyTorch reference models.

cddp checkpoints store every parameter as /model/<name> (fp32, PyTorch
state_dict name and layout; DESIGN section 7), so a few lines of h5py load
them into PyTorch with load_state_dict(strict=True) and back.

    # cddp checkpoint -> PyTorch (prints OK and the number of tensors)
    python3 bench/pytorch/load_checkpoint.py CKPT.h5 --model dlrm [--variant kaggle] [--data train.h5]
    # ... and evaluate the loaded model on the first rows of a data file
    python3 bench/pytorch/load_checkpoint.py CKPT.h5 --model vit --data test.h5 --eval-rows 1000
    # PyTorch -> cddp-style HDF5 (/model/<name>), fresh init from --seed
    python3 bench/pytorch/load_checkpoint.py --export OUT.h5 --model vit --variant tiny --seed 0

Without --data the data-dependent sizes (table rows, users, items, classes)
are read off the checkpoint's tensor shapes.
"""

import argparse
import os
import sys

import h5py
import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import models  # noqa: E402


def read_model_group(path):
    """{name: tensor} from /model; nested groups are joined with '.' so that
    both /model/bot_l.0.weight and /model/bot_l/0/weight read the same."""
    out = {}
    with h5py.File(path, "r") as f:
        if "model" not in f:
            raise SystemExit(f"{path}: no /model group (not a cddp checkpoint)")

        def visit(name, obj):
            if isinstance(obj, h5py.Dataset):
                out[name.replace("/", ".")] = torch.from_numpy(np.asarray(obj[...], dtype=np.float32))
        f["model"].visititems(visit)
        attrs = {k: (v.decode() if isinstance(v, bytes) else v) for k, v in f.attrs.items()}
    return out, attrs


def info_from_tensors(model, t):
    """Data-dependent sizes implied by the stored tensor shapes."""
    if model == "dlrm":
        return {"table_sizes": [int(t[f"emb_l.{k}.weight"].shape[0]) for k in range(models.NUM_SPARSE)]}
    if model == "two_tower":
        return {"num_users": t["user_tower.user_emb.weight"].shape[0],
                "num_items": t["item_tower.item_emb.weight"].shape[0],
                "num_cats": t["item_tower.cat_emb.weight"].shape[0]}
    return {"num_classes": int(t["head.weight"].shape[0])}


def write_model_group(path, model_name, variant, state, extra_attrs=None):
    tmp = path + ".tmp"
    with h5py.File(tmp, "w") as f:
        f.attrs["model"] = np.bytes_(model_name)
        f.attrs["variant"] = np.bytes_(variant)
        for k, v in (extra_attrs or {}).items():
            f.attrs[k] = v
        g = f.create_group("model")
        for k, v in state.items():
            g.create_dataset(k, data=v.detach().cpu().float().numpy())
    os.replace(tmp, path)


@torch.no_grad()
def evaluate(model, model_name, data, rows, batch=1024):
    """Mean loss (and accuracy for vit) over the first `rows` rows of a file."""
    with h5py.File(data, "r") as f:
        n = next(f[k].shape[0] for k in ("label", "labels", "item_id") if k in f)
        rows = min(rows, n)
        tot, correct, seen = 0.0, 0, 0
        for s in range(0, rows, batch):
            b = models.batch_from_h5(f, slice(s, min(s + batch, rows)))
            logits = model(b)      # two_tower: no logQ at evaluation
            tot += float(model.loss(logits, b)) * logits.shape[0]
            if model_name == "vit":
                correct += int((logits.argmax(1) == b["labels"].long()).sum())
            seen += logits.shape[0]
    out = {"rows": seen, "loss": tot / seen}
    if model_name == "vit":
        out["accuracy"] = correct / seen
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("checkpoint", nargs="?", help="cddp checkpoint HDF5 to load")
    ap.add_argument("--model", choices=models.MODELS, help="default: the checkpoint's 'model' attribute")
    ap.add_argument("--variant", default=None, help="default: the checkpoint's 'variant' attribute or the model's default")
    ap.add_argument("--data", default=None, help="cddp data HDF5 giving table sizes / users / items / classes")
    ap.add_argument("--eval-rows", type=int, default=0, help="evaluate the loaded model on this many rows of --data")
    ap.add_argument("--export", default=None, help="write the (loaded or freshly initialised) state_dict as /model/<name>")
    ap.add_argument("--seed", type=int, default=0, help="init seed when nothing is loaded")
    args = ap.parse_args()

    tensors, attrs = read_model_group(args.checkpoint) if args.checkpoint else ({}, {})
    model_name = args.model or attrs.get("model")
    if model_name not in models.MODELS:
        raise SystemExit("give --model (dlrm, two_tower or vit)")
    variant = args.variant or attrs.get("variant") or models.DEFAULT_VARIANT[model_name]
    if args.data:
        info = models.read_data_info(args.data)
    elif tensors:
        info = info_from_tensors(model_name, tensors)
    elif model_name == "vit":
        info = {}
    else:
        raise SystemExit(f"{model_name}: give --data (sizes) or a checkpoint")

    torch.manual_seed(args.seed)
    model = models.build_model(model_name, variant, info)
    if tensors:
        model.load_state_dict(tensors, strict=True)   # names, count and shapes must all match
        print(f"OK {len(tensors)} tensors loaded from {args.checkpoint} into {model_name}/{variant} "
              f"({sum(v.numel() for v in tensors.values())} values)")
    if args.eval_rows and args.data:
        model.eval()
        print("eval", evaluate(model, model_name, args.data, args.eval_rows))
    if args.export:
        write_model_group(args.export, model_name, variant, model.state_dict())
        print(f"OK {len(model.state_dict())} tensors written to {args.export}")


if __name__ == "__main__":
    main()

#!/bin/sh
# Files written by h5py with the documented names, types and shapes load:
# h5py's defaults (contiguous layout, variable-length string attributes,
# int64 scalar attributes) and chunked + gzip-compressed datasets. The
# loader's checksum must equal numpy's. The interpreter is $CDDP_PYTHON, else
# the first of `python3` on PATH and Debian's /usr/bin/python3 that imports
# h5py and numpy (a pyenv or venv python3 first on PATH usually lacks them);
# none is a failure: scripts/install-deps.sh installs python3-h5py.
# usage: test_h5py.sh TOOL SCRATCH_DIR SOURCE_DIR
set -eu
T=$1; D=$2
PY=""
for p in ${CDDP_PYTHON:-} python3 /usr/bin/python3; do
  if "$p" -c 'import h5py, numpy' 2>/dev/null; then PY=$p; break; fi
done
[ -n "$PY" ] || { echo "FAIL: no python3 with h5py and numpy (tried ${CDDP_PYTHON:-} python3 /usr/bin/python3); install python3-h5py (scripts/install-deps.sh) or set CDDP_PYTHON"; exit 1; }
echo "python: $(command -v "$PY") (h5py $("$PY" -c 'import h5py; print(h5py.__version__)'))"
rm -rf "$D"; mkdir -p "$D"; cd "$D"
"$PY" - <<'PY'
import h5py, numpy as np
rng = np.random.default_rng(7)
N = 997
def ctr(path, **kw):
    with h5py.File(path, "w") as f:
        f.attrs["schema"] = "cddp.ctr.v1"
        lab = rng.integers(0, 2, N).astype(np.uint8)
        dense = np.log1p(rng.integers(0, 1000, (N, 13))).astype(np.float32)
        ts = rng.integers(2, 500, 26).astype(np.int64)
        sp = (rng.integers(0, 1 << 30, (N, 26)) % ts).astype(np.int32)
        f.create_dataset("label", data=lab, **kw)
        f.create_dataset("dense", data=dense, **kw)
        d = f.create_dataset("sparse", data=sp, **kw)
        d.attrs["table_sizes"] = ts
        return float(lab.sum()) + float(dense.astype(np.float64).sum()) + float(sp.astype(np.int64).sum())
def tt(path, **kw):
    with h5py.File(path, "w") as f:
        f.attrs["schema"] = "cddp.twotower.v1"
        f.attrs["num_users"] = 40; f.attrs["num_items"] = 90; f.attrs["num_cats"] = 6
        u = rng.integers(0, 40, N).astype(np.int32); i = rng.integers(0, 90, N).astype(np.int32)
        c = rng.integers(0, 6, N).astype(np.int32); h = rng.integers(-1, 90, (N, 8)).astype(np.int32)
        for k, v in [("user_id", u), ("user_hist", h), ("item_id", i), ("item_cat", c)]:
            f.create_dataset(k, data=v, **kw)
        return float(u.sum() + i.sum() + c.sum() + h.astype(np.int64).sum())
def img(path, **kw):
    with h5py.File(path, "w") as f:
        f.attrs["schema"] = "cddp.image.v1"
        f.attrs["num_classes"] = np.int32(10)
        x = rng.integers(0, 256, (N, 7, 5, 2)).astype(np.uint8); y = rng.integers(0, 10, N).astype(np.int32)
        f.create_dataset("images", data=x, **kw); f.create_dataset("labels", data=y, **kw)
        return float(x.astype(np.int64).sum() + y.sum())
with open("expected.txt", "w") as out:
    for name, fn in [("ctr", ctr), ("tt", tt), ("img", img)]:
        out.write("%s %.6f\n" % (name, fn(name + ".h5")))
        out.write("%sz %.6f\n" % (name, fn(name + "z.h5", chunks=True, compression="gzip", shuffle=True)))
PY
fail=0
while read -r name sum; do
  "$T" info "$name.h5" >/dev/null || { echo "FAIL: info $name.h5"; fail=1; }
  got=$("$T" load "$name.h5" --eval contiguous --batch 100 | sed -n 's/^rows 997 sum //p')
  "$PY" -c "import sys; a,b=float('$got' or 'nan'),float('$sum'); sys.exit(0 if abs(a-b)<=1e-6*max(1,abs(b)) else 1)" \
    || { echo "FAIL: $name.h5 checksum $got, numpy $sum"; fail=1; }
done <expected.txt
[ $fail = 0 ] && echo "data_h5py: all passed"
exit $fail

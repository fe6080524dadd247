"""Tables and a plot for bench/bench_sharding.sh (issue 15).

Embedding bytes per step that one rank sends, per-rank batch B, T = 26
tables of width D, W ranks (dense MLP all-reduce excluded, it is the same in
both modes):
  replicated (sparse all-gather of B ids + B rows per table):
      (W-1) * T * B * (4 + 4D)         every rank's rows reach every other rank
  sharded (all-to-all; owners balanced, a fraction (W-1)/W of ids off-rank):
      (W-1) * T * 4                    the counts
    + (W-1)/W * T * B * (4 + 4D + 4D)  ids out, vectors back, gradients out
Figures are medians over the repetitions. Measured: the sharded all-to-alls' bytes (metric a2a_bytes); the replicated
all-gather's per-rank contribution is bytes - dense, with dense = the
sharded run's bytes - a2a_bytes at the same W.
usage: sharding_bytes.py results.jsonl OUTDIR"""
import json
import os
import subprocess
import sys

T = 26
DIM = {"kaggle": 16, "terabyte": 128}


def rep_bytes(W, B, D):
    return (W - 1) * T * B * (4 + 4 * D)


def shard_bytes(W, B, D):
    return (W - 1) * T * 4 + (W - 1) / W * T * B * (4 + 8 * D)


def mb(x):
    return "%.2f" % (x / 1e6)


import statistics

runs = [json.loads(l) for l in open(sys.argv[1])]
out = sys.argv[2]


def get(v, m, n):
    # median over the repetitions of every figure
    rs = [r for r in runs if r["variant"] == v and r["mode"] == m and r["np"] == n]
    if not rs:
        return None
    return {k: (statistics.median(r[k] for r in rs) if isinstance(rs[0][k], (int, float)) else rs[0][k])
            for k in rs[0]}


print("| model | ranks | mode | samples/s per rank | step ms | weak-scaling eff. | embedding MB sent/step: measured | model | exposed all-reduce ms | exposed all-to-all ms (% of step) |")
print("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
for v in ("kaggle", "terabyte"):
    for n in (1, 2, 4):
        for m in ("replicated", "auto"):
            r = get(v, m, n)
            if not r:
                continue
            one = get(v, m, 1)
            eff = r["per_rank_sps"] / one["per_rank_sps"] if one else float("nan")
            D, B = DIM[v], r["batch"]
            if m == "auto":
                meas, model = r["a2a_bytes"], shard_bytes(n, B, D)
            else:
                s = get(v, "auto", n)
                dense = s["bytes"] - s["a2a_bytes"] if s else 0
                contrib = r["bytes"] - dense  # the all-gather's per-rank block
                meas, model = (n - 1) * contrib, rep_bytes(n, B, D)
            a2a = r["exposed_a2a_ms"]
            print("| %s | %d | %s | %.0f | %.1f | %.1f %% | %s | %s | %.1f | %.1f (%.1f %%) |" % (
                v, n, "sharded (auto)" if m == "auto" else m, r["per_rank_sps"], r["step_ms"],
                100 * eff, mb(meas), mb(model), r["exposed_comm_ms"], a2a, 100 * a2a / r["step_ms"]))

print()
print("| model | per-rank batch | ranks | replicated MB/step | sharded MB/step | replicated / sharded |")
print("| --- | --- | --- | --- | --- | --- |")
dat = open(os.path.join(out, "bytes.dat"), "w")
for v, B in (("kaggle", 1024), ("terabyte", 256)):
    D = DIM[v]
    for W in (2, 4, 8, 64, 512):
        a, b = rep_bytes(W, B, D), shard_bytes(W, B, D)
        print("| %s | %d | %d | %s | %s | %.1f |" % (v, B, W, mb(a), mb(b), a / b))
    for W in (2, 4, 8, 16, 32, 64, 128, 256, 512):
        dat.write("%s %d %g %g\n" % (v, W, rep_bytes(W, B, D) / 1e6, shard_bytes(W, B, D) / 1e6))
dat.close()
png = os.path.join(out, "sharding_bytes.png")
gp = """set terminal pngcairo size 800,500
set output '%s'
set logscale xy
set xlabel 'ranks'
set ylabel 'embedding MB sent per rank per step'
set key top left
set title 'dlrm embeddings: replicated all-gather vs sharded all-to-all (per-rank batch fixed)'
plot '< grep kaggle %s' u 2:3 w lp t 'kaggle (D=16, B=1024) replicated', \\
     '< grep kaggle %s' u 2:4 w lp t 'kaggle sharded', \\
     '< grep terabyte %s' u 2:3 w lp t 'terabyte (D=128, B=256) replicated', \\
     '< grep terabyte %s' u 2:4 w lp t 'terabyte sharded'
""" % ((png,) + (os.path.join(out, "bytes.dat"),) * 4)
subprocess.run(["gnuplot"], input=gp.encode(), check=True)
print()
print("plot: " + png)

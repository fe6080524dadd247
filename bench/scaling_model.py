#!/usr/bin/env python3
"""Scaling model of a cddp training step from 1 to 1024 ranks.

Calibrated on one measured run (a `cddp train --trace` file), it simulates a
data-parallel step at W ranks: gradients become ready at the times measured in
backward; the reducer groups the dense ones into buckets (as the run did, or
re-bucketed with --bucket-mb); each bucket's all-reduce costs
    ring: 2(W-1) alpha + 2(W-1)/W * bytes / busbw
    tree: 2 (log2 hops) alpha + 2(W-1)/W * bytes / busbw   (NCCL's double binary tree)
(busbw in NCCL's bus-bandwidth convention, so busbw is what nccl-tests and
bench/allreduce_perf print); sparse embedding gradients travel as two
all-gathers per table, (W-1) alpha + (W-1) * bytes / busbw; sharded embeddings
as two all-to-alls of the pooled vectors, alpha + (W-1)/W * bytes / busbw,
which sit on the critical path. Launches queue on one communication channel
in the order they became ready; exposed communication is what remains after
backward ends. Beyond `ranks_per_node` the inter-node level (its alpha and
busbw) sets the cost.

A level measured on the machine itself may instead carry cost tables (time by
message size from allreduce_perf, interpolated between sizes), used at the
rank count they were measured at: "spaced" (each all-reduce alone after an
idle link, allreduce_perf --gap) for a collective that finds the channel
idle, "back_to_back" (plain allreduce_perf) for one that queued behind
another, and "busy" (--gap --busy T: T computing threads per rank, the ranks
bound as in training) for the part of a collective that runs while backward
keeps the rank's cores busy.

Python 3 standard library only (runs in CI). Subcommands:
  profile TRACE.json            -> profile JSON (median per step)
  fit ALLREDUCE_PERF.txt        -> a link level {alpha_us, busbw_GBs} (least squares)
  table ALLREDUCE_PERF.txt      -> a cost table {ranks, points: [[bytes, us], ...]}
  predict PROFILE.json LINKS.json [--ranks 1,2,4] [--bucket-mb M] ...  -> table
  validate SPEC.json            -> predicted vs measured table (bench/results)
  project SPEC.json             -> projection tables and plot data
"""
import argparse
import json
import math
import os
import statistics
import sys


# ---- profile: a trace -> per-step medians ------------------------------------------
def load_trace(path):
    with open(path) as f:
        return json.load(f)


def profile_from_trace(trace, rank=0, skip=0):
    ev = [e for e in trace["traceEvents"] if e.get("pid") == rank and e.get("ph") in ("X", "i")]
    ev.sort(key=lambda e: e["ts"])
    steps = [e for e in ev if e["tid"] == 1 and e["name"].startswith("step ")]
    if len(steps) <= skip:
        sys.exit(f"profile: rank {rank} has {len(steps)} traced steps, nothing left after --skip {skip}")
    per = []
    for s in steps[skip:]:
        t0, t1 = s["ts"], s["ts"] + s["dur"]
        inside = [e for e in ev if t0 <= e["ts"] <= t1]

        def total(tid, name):
            return sum(e["dur"] for e in inside if e["tid"] == tid and e["name"] == name and e["ph"] == "X")
        bwd = [e for e in inside if e["tid"] == 2 and e["name"] == "backward"]
        if len(bwd) != 1:
            sys.exit("profile: traces with --grad-accum > 1 are not modelled (one backward per step)")
        b0 = bwd[0]["ts"]
        params = {}
        for e in inside:
            if e["ph"] == "i" and e["tid"] >= 100:
                params[e["name"]] = {"ready_ms": (e["ts"] - b0) / 1e3,
                                     "bytes": e.get("args", {}).get("bytes", 0),
                                     "sparse": e["tid"] < 1000}
        colls = []
        for e in inside:
            if e["ph"] == "X" and e["tid"] >= 100 and e["name"] in ("all-reduce", "all-gather"):
                colls.append({"kind": e["name"], "track": e["tid"], "launch_ms": (e["ts"] - b0) / 1e3,
                              "ms": e["dur"] / 1e3, "bytes": e["args"]["bytes"]})
        per.append({
            "step_ms": s["dur"] / 1e3,
            "data_ms": (total(3, "data wait") + total(3, "h2d copy")) / 1e3,
            "forward_ms": total(2, "forward") / 1e3,
            "backward_ms": bwd[0]["dur"] / 1e3,
            "wait_ms": total(2, "gradient wait") / 1e3,
            "optimizer_ms": total(2, "optimizer") / 1e3,
            "params": params,
            "collectives": colls,
        })
    med = lambda k: statistics.median(p[k] for p in per)
    names = list(per[0]["params"])
    params = []
    for n in names:
        first = per[0]["params"][n]
        params.append({"name": n, "bytes": first["bytes"], "sparse": first["sparse"],
                       "ready_ms": statistics.median(p["params"][n]["ready_ms"] for p in per if n in p["params"])})
    params.sort(key=lambda p: p["ready_ms"])
    # the buckets as the run made them: track -> (bytes, last ready of its parameters)
    buckets = {}
    for c in per[0]["collectives"]:
        if c["kind"] == "all-reduce":
            buckets[c["track"]] = {"bytes": c["bytes"]}
    od = trace.get("otherData", {})
    parts = ("data_ms", "forward_ms", "backward_ms", "wait_ms", "optimizer_ms")
    for p in per:
        p["other_ms"] = max(0.0, p["step_ms"] - sum(p[k] for k in parts))
    prof = {k: med(k) for k in ("step_ms", "other_ms") + parts}
    prof["comm_ms"] = statistics.median(sum(c["ms"] for c in p["collectives"]) for p in per)
    prof.update({"world": od.get("world", 1), "model": od.get("model"), "variant": od.get("variant"),
                 "batch": od.get("batch"), "bucket_mb": od.get("bucket_mb", 25),
                 "first_bucket_mb": od.get("first_bucket_mb", 1), "steps": len(per),
                 "params": params, "bucket_bytes": [buckets[t]["bytes"] for t in sorted(buckets)]})
    prof["step_ms_all"] = [p["step_ms"] for p in per]
    first = steps[skip]
    prof["layer_spans"] = sum(1 for e in ev if e["tid"] == 2 and e.get("cat") in ("forward", "backward")
                              and first["ts"] <= e["ts"] <= first["ts"] + first["dur"])
    return prof


# ---- link fit from allreduce_perf output -----------------------------------------------
def read_allreduce_perf(path):
    rows, world = [], None
    with open(path) as f:
        lines = f.readlines()
    for line in lines:
        if line.startswith("# cddp allreduce_perf:"):
            world = int(line.split("nRanks")[1].split()[0])
        if line.startswith("#") or not line.strip():
            continue
        f = line.split()
        rows.append((int(f[0]), float(f[5]) * 1e-6))  # bytes, seconds
    return world, rows


def fit_level(path, small=16384, large=262144, largest=None):
    """alpha and busbw of t = 2(W-1) alpha + 2(W-1)/W bytes / busbw: alpha from the
    median time of messages <= small bytes, busbw from the least-squares slope
    over messages from large to largest bytes (the sizes a run sends: a
    transport's speed changes with size, e.g. once messages leave the cache)."""
    W, rows = read_allreduce_perf(path)
    t_small = statistics.median(t for b, t in rows if b <= small)
    big = [(b, t) for b, t in rows if b >= large and (largest is None or b <= largest)]
    n = len(big)
    mx, my = sum(b for b, _ in big) / n, sum(t for _, t in big) / n
    slope = sum((b - mx) * (t - my) for b, t in big) / sum((b - mx) ** 2 for b, _ in big)
    return {"alpha_us": t_small / (2 * (W - 1)) * 1e6, "busbw_GBs": 2 * (W - 1) / W / slope / 1e9,
            "fitted_from": f"{path.split('/')[-1]}: {W} ranks, {n} sizes {large}..{max(b for b, _ in big)} B"}


def read_table(path):
    """An allreduce_perf output as a cost table: the ranks and (bytes, us) by size."""
    W, rows = read_allreduce_perf(path)
    return {"ranks": W, "points": [[b, round(t * 1e6, 6)] for b, t in sorted(rows)]}


def table_s(points, nbytes):
    """Seconds for nbytes from a table of [bytes, us]: linear between measured
    sizes (alpha + beta * bytes locally), the smallest size's time below it,
    the last segment's slope beyond the largest."""
    if nbytes <= points[0][0] or len(points) == 1:
        return points[0][1] * 1e-6
    for i in range(1, len(points)):
        if nbytes <= points[i][0] or i == len(points) - 1:
            (b0, t0), (b1, t1) = points[i - 1], points[i]
            return max(points[0][1], t0 + (t1 - t0) * (nbytes - b0) / (b1 - b0)) * 1e-6


# ---- the cost model ------------------------------------------------------------------------
def level(links, W):
    G = links.get("ranks_per_node", 1 << 30)
    if W <= G or "inter" not in links:
        return links["intra"]["alpha_us"] * 1e-6, links["intra"]["busbw_GBs"] * 1e9, False
    return (links["inter"]["alpha_us"] * 1e-6,
            min(links["intra"]["busbw_GBs"], links["inter"]["busbw_GBs"]) * 1e9, True)


def measured(links, W, regime):
    """The cost table of this regime when the level was measured at W ranks."""
    tables = links["intra"].get("tables")
    if W <= links.get("ranks_per_node", 1 << 30) and tables and tables.get("ranks") == W:
        return tables.get(regime)
    return None


def allreduce_s(nbytes, W, links, regime="spaced"):
    if W <= 1:
        return 0.0
    tab = measured(links, W, regime)
    if tab:
        return table_s(tab, nbytes)
    a, bw, multi = level(links, W)
    band = 2 * (W - 1) / W * nbytes / bw
    ring = 2 * (W - 1) * a + band
    G = links.get("ranks_per_node", W)
    if multi:
        ai = links["intra"]["alpha_us"] * 1e-6
        hops = 2 * (G - 1) * ai + 2 * math.ceil(math.log2(W / G)) * a
    else:
        hops = 2 * math.ceil(math.log2(W)) * a
    tree = hops + band
    algo = links.get("algorithm", "auto")
    return ring if algo == "ring" else tree if algo == "tree" else min(ring, tree)


def allgather_s(nbytes, W, links, regime="spaced"):
    if W <= 1:
        return 0.0
    tab = measured(links, W, regime)
    if tab:  # the all-reduce that puts as many bytes per rank on the wire: W * nbytes / 2
        return table_s(tab, W * nbytes / 2)
    a, bw, _ = level(links, W)
    return (W - 1) * a + (W - 1) * nbytes / bw


def alltoall_s(nbytes, W, links):
    """Pairwise exchange: the W-1 peers are sent to at once (NCCL's grouped
    send/recv), so one latency; per-peer software overhead is not modelled."""
    if W <= 1:
        return 0.0
    a, bw, _ = level(links, W)
    return a + (W - 1) / W * nbytes / bw


def collective_ms(kind, nbytes, W, links, regime):
    """A bucket's all-reduce, or a sparse table's exchange: two all-gathers
    (ids, rows), the bytes once, the latency of a small collective twice."""
    if kind == "all-reduce":
        return allreduce_s(nbytes, W, links, regime) * 1e3
    tab = measured(links, W, regime)
    second = tab[0][1] * 1e-6 if tab else (W - 1) * level(links, W)[0] * (W > 1)
    return (allgather_s(nbytes, W, links, regime) + second) * 1e3


def buckets_of(prof, bucket_mb=None, first_mb=None, compress=1.0):
    """Dense buckets as (ready_ms, bytes): the run's own, or re-bucketed."""
    dense = [p for p in prof["params"] if not p["sparse"]]
    bmb = bucket_mb if bucket_mb is not None else prof["bucket_mb"]
    fmb = first_mb if first_mb is not None else prof["first_bucket_mb"]
    out, cur_b, cur_r = [], 0, 0.0
    for p in dense:  # ready order = gradient-buffer order (params.h)
        cur_b += p["bytes"]
        cur_r = max(cur_r, p["ready_ms"])
        lim = (fmb if not out else bmb) * 1048576
        if cur_b >= lim:
            out.append((cur_r, cur_b * compress))
            cur_b, cur_r = 0, 0.0
    if cur_b:
        out.append((cur_r, cur_b * compress))
    return out


def simulate(prof, links, W, compute_scale=1.0, bucket_mb=None, first_mb=None, compress=1.0,
             sparse="replicated", a2a_bytes=0):
    """One step at W ranks; times in ms. compute_scale multiplies every measured compute part."""
    s = compute_scale
    if links.get("host_cores"):  # ranks sharing one host's cores (validation on this VM)
        s *= max(1.0, W * links.get("threads_per_rank", 1) / links["host_cores"])
    bwd = prof["backward_ms"] * s
    launches = [(r * s, b, "all-reduce") for r, b in buckets_of(prof, bucket_mb, first_mb, compress)]
    sp = [p for p in prof["params"] if p["sparse"]]
    if sparse == "replicated":
        launches += [(p["ready_ms"] * s, p["bytes"], "all-gather") for p in sp]
    launches.sort(key=lambda x: x[0])
    t, comm = 0.0, 0.0
    for ready, nbytes, kind in launches:
        regime = "back_to_back" if ready < t else "spaced"  # queued behind another, or the channel idle
        start = max(t, ready)
        after = collective_ms(kind, nbytes, W, links, regime)
        busy = collective_ms(kind, nbytes, W, links, "busy") if start < bwd and measured(links, W, "busy") else 0
        if busy and start + busy > bwd:  # busy speed until backward ends, then the idle one
            t = bwd + (1 - (bwd - start) / busy) * after
        else:
            t = start + (busy or after)
        comm += t - start
    exposed = max(0.0, t - bwd)
    # what finish() computes besides waiting: the sparse coalesce grows with the W*cap rows
    finish = prof["wait_ms_compute"] * s * (W if sp and sparse == "replicated" else 1)
    a2a = 2 * alltoall_s(a2a_bytes, W, links) * 1e3 if sparse == "sharded" else 0.0
    compute = (prof["data_ms"] + prof["forward_ms"] + prof["optimizer_ms"] + prof["other_ms"]) * s + bwd
    step = compute + exposed + finish + a2a
    return {"W": W, "step_ms": step, "compute_ms": compute, "comm_ms": comm, "exposed_ms": exposed + a2a,
            "finish_ms": finish, "buckets": sum(1 for x in launches if x[2] == "all-reduce")}


def calibrate(prof):
    """The 1-rank wait is compute (its all-reduces are local copies): keep it as such."""
    prof = dict(prof)
    prof["wait_ms_compute"] = prof["wait_ms"]
    return prof


def table(rows):
    out = ["| ranks | step ms | compute ms | comm ms (sum) | exposed ms | efficiency |",
           "| ---: | ---: | ---: | ---: | ---: | ---: |"]
    base = rows[0]["step_ms"]
    for r in rows:
        out.append(f"| {r['W']} | {r['step_ms']:.2f} | {r['compute_ms']:.2f} | {r['comm_ms']:.2f} | "
                   f"{r['exposed_ms']:.2f} | {100 * base / r['step_ms']:.1f} % |")
    return "\n".join(out)


# ---- validation: predicted against measured, all from one session's files ----------------
VALIDATION = [  # (configuration, ranks, nominal rate in bit/s or None, what it is)
    ("local2", 2, None, "2 ranks, one host (shared memory)"),
    ("local4", 4, None, "4 ranks, one host (shared memory), 2 ranks per core"),
    ("1gbit", 2, 1e9, "2 namespace hosts, 1 rank each, veth at 1 Gbit/s (tc tbf)"),
    ("100mbit", 2, 1e8, "2 namespace hosts, 1 rank each, veth at 100 Mbit/s (tc tbf)"),
]
REGIMES = (("back_to_back", ""), ("spaced", "_spaced"), ("busy", "_busy"))  # (table, perf file suffix)
ALL_REGIMES = tuple(r for r, _ in REGIMES)


def link_of(d, cfg, rate, biggest, regimes=ALL_REGIMES):
    """The link of one configuration from its allreduce_perf outputs in d:
    perf_CFG.txt (back to back), perf_CFG_spaced.txt (--gap), perf_CFG_busy.txt
    (--gap --busy). With a spaced file the level carries the cost tables of
    `regimes`; without (older work directories) only alpha and busbw, fitted
    back to back."""
    perf = f"{d}/perf_{cfg}.txt"
    if not os.path.exists(perf):  # older directories measured 2 local ranks only
        perf = f"{d}/perf_local2.txt"
    lv = fit_level(perf, largest=4 * biggest)
    if rate:  # the link as its owner describes it; 2 ranks: bus bandwidth = line rate
        lv["busbw_GBs"] = rate / 8 / 1e9
    if os.path.exists(f"{d}/perf_{cfg}_spaced.txt"):
        lv["tables"] = {}
        for regime, suffix in REGIMES:
            if regime in regimes and os.path.exists(f"{d}/perf_{cfg}{suffix}.txt"):
                tab = read_table(f"{d}/perf_{cfg}{suffix}.txt")
                lv["tables"]["ranks"] = tab["ranks"]
                lv["tables"][regime] = tab["points"]
    return {"intra": lv}


def measured_profiles(d, model, cfg):
    import glob
    return [profile_from_trace(load_trace(f)) for f in sorted(glob.glob(f"{d}/trace_{model}_{cfg}_*.json"))]


def merge(profs):
    """One profile from several runs: medians of the per-run medians."""
    out = dict(profs[0])
    for k in ("step_ms", "data_ms", "forward_ms", "backward_ms", "wait_ms", "optimizer_ms", "other_ms", "comm_ms"):
        out[k] = statistics.median(p[k] for p in profs)
    for p in out["params"]:
        p["ready_ms"] = statistics.median(q["ready_ms"] for pr in profs for q in pr["params"] if q["name"] == p["name"])
    return out


def validate(d, models, host_cores, out_dir=None, regimes=ALL_REGIMES):
    """Three predictions per configuration. 'own compute': the step's compute
    parts and ready times from the W-rank trace itself, communication from the
    model with the configuration's link (link_of; what the model is for: on
    this shared 2-core VM a rank's compute speed depends on the other
    engineers' load, not on the model). '1-rank compute': everything from the
    1-rank run, compute slowed by ranks sharing host_cores. 'one alpha + beta':
    own compute with the link reduced to its fitted alpha and busbw."""
    rows = []
    for model in models:
        base = calibrate(merge(measured_profiles(d, model, "1")))
        sparse = any(p["sparse"] for p in base["params"])
        rows.append((model, "1 rank", 1, base["step_ms"], base["step_ms"], base["step_ms"], base["step_ms"],
                     "calibration run"))
        for cfg, W, rate, what in VALIDATION:
            meas = measured_profiles(d, model, cfg)
            if not meas:
                continue
            m = merge(meas)
            # the largest message this run sends: a bucket, or a table's rows x ranks
            biggest = max([b for _, b in buckets_of(m)] + [p["bytes"] * W for p in m["params"] if p["sparse"]])
            links = link_of(d, cfg, rate, biggest, regimes)
            own = dict(m)
            own["wait_ms_compute"] = base["wait_ms"]  # finish()'s own work; the model scales it with W
            p_own = simulate(own, links, W)
            p_one = simulate(base, dict(links, host_cores=host_cores, threads_per_rank=1), W)
            lv = links["intra"]
            p_ab = simulate(own, {"intra": {k: lv[k] for k in ("alpha_us", "busbw_GBs")}}, W)
            tabs = lv.get("tables", {})
            link = (f"tables at {tabs['ranks']} ranks, 1 MB: " + ", ".join(
                f"{r.replace('_', ' ')} {table_s(tabs[r], 1 << 20) * 1e3:.1f} ms" for r, _ in REGIMES if r in tabs)
                if tabs else f"{lv['alpha_us']:.0f} us, {lv['busbw_GBs']:.3f} GB/s")
            rows.append((model, what, W, p_own["step_ms"], p_one["step_ms"], m["step_ms"], p_ab["step_ms"],
                         f"link {link}; exposed: predicted {p_own['exposed_ms'] + p_own['finish_ms']:.1f} ms, "
                         f"measured {m['wait_ms']:.1f} ms"))
    err = lambda p, m: f"{100 * (p - m) / m:+.1f} %"
    print("| model | configuration | ranks | measured step (ms) | predicted, own compute (ms) | error | "
          "predicted, 1-rank compute (ms) | error | one alpha + beta per link, own compute: error | notes |")
    print("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |")
    for model, what, W, po, p1, m, pab, note in rows:
        print(f"| {model} | {what} | {W} | {m:.1f} | {po:.1f} | {err(po, m)} | {p1:.1f} | {err(p1, m)} | "
              f"{err(pab, m)} | {note} |")
    if out_dir:  # for bench/plot.sh: label, measured, predicted (own compute; and with one alpha + beta)
        short = {"1 rank": "1", "2 ranks, one host (shared memory)": "2 local",
                 "4 ranks, one host (shared memory), 2 ranks per core": "4 local"}
        with open(f"{out_dir}/validation.dat", "w") as f:
            f.write("# configuration measured_ms predicted_ms predicted_alpha_beta_ms\n")
            for model, what, W, po, p1, m, pab, note in rows:
                label = short.get(what, what.split("at ")[-1].split(" (")[0].replace(" ", ""))
                f.write(f'"{model} {label}" {m:.2f} {po:.2f} {pab:.2f}\n')
    return rows


# ---- projections: GPU clusters, compute time from FLOPs ----------------------------------
def gpu_compute_ms(model, gpu, prof):
    """Per-GPU compute of one step: FLOPs at the stated utilisation, but never less
    than a per-layer floor (kernel launches) for each layer span of the trace."""
    flops = model["train_flops_per_sample"] * model["batch"]
    t_flops = flops / (gpu["peak_tflops"] * 1e12 * gpu["utilisation"]) * 1e3
    return max(t_flops, prof["layer_spans"] * gpu["per_layer_us"] * 1e-3)


def project(spec_path, out_dir=None):
    spec = json.load(open(spec_path))
    base_dir = spec_path.rsplit("/", 1)[0] if "/" in spec_path else "."
    ranks = spec["ranks"]
    lines = []
    for m in spec["models"]:
        prof = calibrate(json.load(open(f"{base_dir}/{m['profile']}")))
        cpu_ms = sum(prof[k] for k in ("data_ms", "forward_ms", "backward_ms", "optimizer_ms", "other_ms", "wait_ms"))
        # sparse exchange scales with the per-rank batch (the capacity is the batch's rows)
        bscale = m["batch"] / prof["batch"]
        for p in prof["params"]:
            if p["sparse"]:
                p["bytes"] *= bscale
        for c in spec["clusters"]:
            gpu_ms = gpu_compute_ms(m, c["gpu"], prof)
            scale = gpu_ms / cpu_ms
            lines.append(f"\n**{m['name']}** on **{c['name']}**: per-GPU batch {m['batch']}, compute "
                         f"{gpu_ms:.2f} ms per step ({m['train_flops_per_sample'] / 1e9:.3g} GFLOP/sample at "
                         f"{100 * c['gpu']['utilisation']:.0f} % of {c['gpu']['peak_tflops']:g} TFLOP/s, "
                         f"floor {c['gpu']['per_layer_us']:g} us x {prof['layer_spans']} layer spans)\n")
            variants = m.get("variants", [{"name": "as run"}])
            hdr = "| variant | " + " | ".join(str(w) for w in ranks) + " | stops scaling (eff < 80 %) |"
            lines += [hdr, "| --- |" + " ---: |" * (len(ranks) + 1)]
            for v in variants:
                kw = {k: v[k] for k in ("bucket_mb", "first_bucket_mb", "compress", "sparse") if k in v}
                if kw.get("sparse") == "sharded":
                    kw["a2a_bytes"] = m["batch"] * m["a2a_bytes_per_sample"]
                rows = [simulate(prof, c["links"], w, scale, **kw) for w in [1] + ranks]
                base = rows[0]["step_ms"]
                eff = [base / r["step_ms"] for r in rows[1:]]
                stop = next((w for w, e in zip(ranks, eff) if e < 0.8), None)
                lines.append(f"| {v['name']} | " + " | ".join(f"{100 * e:.0f} %" for e in eff) +
                             f" | {stop if stop else '> ' + str(ranks[-1])} |")
                if out_dir:
                    fn = f"{out_dir}/projection_{m['key']}_{c['key']}_{v['key']}.dat"
                    with open(fn, "w") as f:
                        f.write(f"# model: {m['name']}\n# label: {c['key'].upper()}, {v['name']}\n"
                                f"# {m['name']} on {c['name']}, {v['name']}\n# ranks step_ms efficiency exposed_ms\n")
                        for r, e in zip(rows[1:], eff):
                            f.write(f"{r['W']} {r['step_ms']:.4f} {e:.4f} {r['exposed_ms']:.4f}\n")
    print("\n".join(lines))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("profile")
    p.add_argument("trace")
    p.add_argument("--rank", type=int, default=0)
    p.add_argument("--skip", type=int, default=0, help="traced steps to ignore at the start")
    p = sub.add_parser("fit")
    p.add_argument("perf")
    p.add_argument("--largest", type=float, help="fit sizes up to this many bytes (default: all)")
    p = sub.add_parser("table", help="an allreduce_perf output as a cost table for links.json")
    p.add_argument("perf")
    p = sub.add_parser("predict")
    p.add_argument("profile")
    p.add_argument("links")
    p.add_argument("--ranks", default="1,2,4,8,16,32,64,128,256,512,1024")
    p.add_argument("--compute-scale", type=float, default=1.0)
    p.add_argument("--bucket-mb", type=float)
    p.add_argument("--first-bucket-mb", type=float)
    p.add_argument("--compress", type=float, default=1.0, help="bytes factor (0.5: fp16/bf16 on the wire)")
    p = sub.add_parser("project")
    p.add_argument("spec", help="bench/results/projections.json")
    p.add_argument("--out-dir", help="write projection_*.dat files for bench/plot.sh")
    p = sub.add_parser("validate")
    p.add_argument("dir", help="bench/validate_model.sh's work directory")
    p.add_argument("--models", default="vit,dlrm")
    p.add_argument("--host-cores", type=int, default=2)
    p.add_argument("--out-dir", help="write validation.dat for bench/plot.sh")
    p.add_argument("--regimes", default=",".join(ALL_REGIMES),
                   help="the cost tables to use (leave one out to see what it contributes)")
    a = ap.parse_args()
    if a.cmd == "profile":
        json.dump(profile_from_trace(load_trace(a.trace), a.rank, a.skip), sys.stdout, indent=1)
        print()
    elif a.cmd == "fit":
        json.dump(fit_level(a.perf, largest=a.largest), sys.stdout, indent=1)
        print()
    elif a.cmd == "table":
        json.dump(read_table(a.perf), sys.stdout)
        print()
    elif a.cmd == "predict":
        prof = calibrate(json.load(open(a.profile)))
        links = json.load(open(a.links))
        rows = [simulate(prof, links, int(w), a.compute_scale, a.bucket_mb, a.first_bucket_mb, a.compress)
                for w in a.ranks.split(",")]
        print(table(rows))
    elif a.cmd == "project":
        project(a.spec, a.out_dir)
    elif a.cmd == "validate":
        validate(a.dir, a.models.split(","), a.host_cores, a.out_dir, tuple(a.regimes.split(",")))


if __name__ == "__main__":
    main()

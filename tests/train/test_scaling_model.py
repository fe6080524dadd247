"""Unit tests of bench/scaling_model.py: the cost formulas, the channel queue,
exposed time, re-bucketing, the profile extracted from a trace, the link fit,
measured cost tables (interpolation, spaced/back-to-back/busy regimes)."""
import json
import math
import os
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "bench"))
import scaling_model as sm  # noqa: E402

LINK = {"intra": {"alpha_us": 1.0, "busbw_GBs": 1.0}}


def prof(params, backward_ms=10.0, forward_ms=5.0, wait_ms=0.0):
    return sm.calibrate({"data_ms": 0.0, "forward_ms": forward_ms, "backward_ms": backward_ms,
                         "wait_ms": wait_ms, "optimizer_ms": 1.0, "other_ms": 0.0, "step_ms": 0.0,
                         "bucket_mb": 25, "first_bucket_mb": 1, "batch": 8, "params": params})


class Costs(unittest.TestCase):
    def test_ring_allreduce(self):
        links = dict(LINK, algorithm="ring")
        self.assertAlmostEqual(sm.allreduce_s(1e6, 4, links), 2 * 3 * 1e-6 + 1.5 * 1e6 / 1e9)
        self.assertEqual(sm.allreduce_s(1e6, 1, links), 0.0)

    def test_tree_and_auto(self):
        links = dict(LINK, algorithm="tree")
        W = 1024
        self.assertAlmostEqual(sm.allreduce_s(8, W, links), 2 * 10 * 1e-6 + 2 * (W - 1) / W * 8 / 1e9)
        ring = sm.allreduce_s(8, W, dict(LINK, algorithm="ring"))
        self.assertAlmostEqual(sm.allreduce_s(8, W, dict(LINK, algorithm="auto")), min(ring, sm.allreduce_s(8, W, links)))

    def test_inter_node_level(self):
        links = {"ranks_per_node": 8, "algorithm": "ring", "intra": {"alpha_us": 1, "busbw_GBs": 100},
                 "inter": {"alpha_us": 5, "busbw_GBs": 10}}
        self.assertAlmostEqual(sm.allreduce_s(1e6, 8, links), 14e-6 + 1.75 * 1e6 / 100e9)
        self.assertAlmostEqual(sm.allreduce_s(1e6, 16, links), 30 * 5e-6 + 2 * 15 / 16 * 1e6 / 10e9)

    def test_allgather_grows_with_ranks(self):
        self.assertAlmostEqual(sm.allgather_s(1e6, 8, LINK), 7e-6 + 7 * 1e6 / 1e9)


class Simulation(unittest.TestCase):
    def test_exposed_is_what_ends_after_backward(self):
        # one 1 MB bucket ready at 9 ms of a 10 ms backward, ring at 2 ranks: 1 ms + 2 us
        p = prof([{"name": "w", "bytes": 1 << 20, "sparse": False, "ready_ms": 9.0}])
        r = sm.simulate(p, dict(LINK, algorithm="ring"), 2)
        cost = 1e3 * (2e-6 + (1 << 20) / 1e9)
        self.assertAlmostEqual(r["comm_ms"], cost)
        self.assertAlmostEqual(r["exposed_ms"], 9.0 + cost - 10.0)
        self.assertAlmostEqual(r["step_ms"], 5.0 + 10.0 + 1.0 + (9.0 + cost - 10.0))

    def test_one_channel_queues(self):
        # two 2 MB buckets ready at 0 and 1 ms: the second waits for the first
        p = prof([{"name": "a", "bytes": 2 << 20, "sparse": False, "ready_ms": 0.0},
                  {"name": "b", "bytes": 2 << 20, "sparse": False, "ready_ms": 1.0}], backward_ms=1.0)
        r = sm.simulate(p, dict(LINK, algorithm="ring"), 2)
        one = 1e3 * (2e-6 + (2 << 20) / 1e9)
        self.assertEqual(r["buckets"], 2)
        self.assertAlmostEqual(r["exposed_ms"], 2 * one - 1.0)

    def test_one_rank_is_the_measured_step(self):
        p = prof([{"name": "a", "bytes": 4, "sparse": False, "ready_ms": 3.0}], wait_ms=0.5)
        r = sm.simulate(p, LINK, 1)
        self.assertAlmostEqual(r["step_ms"], 5.0 + 10.0 + 1.0 + 0.5)

    def test_rebucketing(self):
        ps = [{"name": str(i), "bytes": 1 << 20, "sparse": False, "ready_ms": float(i)} for i in range(10)]
        p = prof(ps)
        self.assertEqual([b for _, b in sm.buckets_of(p, bucket_mb=4, first_mb=1)],
                         [1 << 20, 4 << 20, 4 << 20, 1 << 20])
        self.assertEqual([r for r, _ in sm.buckets_of(p, bucket_mb=4, first_mb=1)], [0.0, 4.0, 8.0, 9.0])
        self.assertEqual([b for _, b in sm.buckets_of(p, bucket_mb=100, first_mb=100, compress=0.5)],
                         [5 << 20])

    def test_sharded_moves_cost_to_alltoall(self):
        ps = [{"name": "emb", "bytes": 1 << 20, "sparse": True, "ready_ms": 10.0}]
        rep = sm.simulate(prof(ps), LINK, 8)
        sh = sm.simulate(prof(ps), LINK, 8, sparse="sharded", a2a_bytes=1 << 20)
        self.assertAlmostEqual(sh["exposed_ms"], 2e3 * (1e-6 + 7 / 8 * (1 << 20) / 1e9))
        self.assertGreater(rep["exposed_ms"], sh["exposed_ms"])


def tables(**regimes):
    return {"intra": {"alpha_us": 1.0, "busbw_GBs": 1.0, "tables": dict(ranks=2, **regimes)}}


class Tables(unittest.TestCase):
    PTS = [[1000, 10.0], [2000, 30.0], [4000, 50.0]]

    def test_interpolation(self):
        f = lambda b: sm.table_s(self.PTS, b) * 1e6
        self.assertAlmostEqual(f(2000), 30.0)
        self.assertAlmostEqual(f(1500), 20.0)       # linear between sizes
        self.assertAlmostEqual(f(3000), 40.0)
        self.assertAlmostEqual(f(10), 10.0)         # below the smallest: its time
        self.assertAlmostEqual(f(8000), 90.0)       # beyond the largest: the last slope
        self.assertAlmostEqual(sm.table_s([[1000, 10.0], [2000, 2.0]], 4000) * 1e6, 10.0)  # never below the smallest

    def test_table_only_at_its_rank_count(self):
        links = tables(spaced=self.PTS)
        self.assertAlmostEqual(sm.allreduce_s(2000, 2, links), 30e-6)
        self.assertAlmostEqual(sm.allreduce_s(2000, 4, links), sm.allreduce_s(2000, 4, LINK))
        # an all-gather puts W * bytes / 2 on the wire per rank, as an all-reduce of that size
        self.assertAlmostEqual(sm.allgather_s(1500, 2, links), 20e-6)
        # a regime that was not measured falls back to alpha + beta
        self.assertAlmostEqual(sm.allreduce_s(2000, 2, links, "back_to_back"), sm.allreduce_s(2000, 2, LINK))

    def test_queued_collectives_cost_back_to_back(self):
        # 1 ms spaced, 3 ms back to back: a bucket ready at 0, another at 0.5 ms (queued), a third at 10 ms
        links = tables(spaced=[[1, 1000.0]], back_to_back=[[1, 3000.0]])
        ps = [{"name": n, "bytes": 1 << 21, "sparse": False, "ready_ms": r} for n, r in (("a", 0), ("b", .5), ("c", 10))]
        r = sm.simulate(prof(ps, backward_ms=10.0), links, 2, first_mb=2, bucket_mb=2)
        self.assertEqual(r["buckets"], 3)
        self.assertAlmostEqual(r["comm_ms"], 1 + 3 + 1)
        self.assertAlmostEqual(r["exposed_ms"], 1.0)

    def test_busy_until_backward_ends(self):
        links = tables(spaced=[[1, 2000.0]], busy=[[1, 8000.0]])
        p = lambda ready: prof([{"name": "w", "bytes": 4, "sparse": False, "ready_ms": ready}], backward_ms=10.0)
        # starts 2 ms before backward ends: a quarter done at busy speed, the rest at idle speed
        self.assertAlmostEqual(sm.simulate(p(8.0), links, 2)["exposed_ms"], 0.75 * 2.0)
        # starts 9 ms before: all of it at busy speed, hidden
        r = sm.simulate(p(1.0), links, 2)
        self.assertAlmostEqual(r["comm_ms"], 8.0)
        self.assertAlmostEqual(r["exposed_ms"], 0.0)
        # after backward, or without a busy table: the idle cost
        self.assertAlmostEqual(sm.simulate(p(10.0), links, 2)["exposed_ms"], 2.0)
        self.assertAlmostEqual(sm.simulate(p(8.0), tables(spaced=[[1, 2000.0]]), 2)["exposed_ms"], 0.0)

    def test_sparse_exchange_from_tables(self):
        # two all-gathers per table: the bytes once, the smallest measured time for the second
        links = tables(spaced=self.PTS)
        self.assertAlmostEqual(sm.collective_ms("all-gather", 1500, 2, links, "spaced"), (20 + 10) * 1e-3)

    def test_read_table(self):
        with tempfile.NamedTemporaryFile("w", suffix=".txt", delete=False) as f:
            f.write("# cddp allreduce_perf: nRanks 2 minBytes 4096 gap_us: 10000\n# comment\n")
            f.write("8192 2048 float sum -1 300.5 0 0 0\n4096 1024 float sum -1 100.0 0 0 0\n")
        t = sm.read_table(f.name)
        os.unlink(f.name)
        self.assertEqual(t, {"ranks": 2, "points": [[4096, 100.0], [8192, 300.5]]})


class FromFiles(unittest.TestCase):
    def test_profile_of_a_trace(self):
        ev = [{"ph": "X", "pid": 0, "tid": 1, "ts": 0, "dur": 100, "name": "step 1", "cat": "step"},
              {"ph": "X", "pid": 0, "tid": 3, "ts": 0, "dur": 5, "name": "data wait", "cat": "data"},
              {"ph": "X", "pid": 0, "tid": 2, "ts": 5, "dur": 30, "name": "forward", "cat": "step"},
              {"ph": "X", "pid": 0, "tid": 2, "ts": 35, "dur": 50, "name": "backward", "cat": "step"},
              {"ph": "X", "pid": 0, "tid": 2, "ts": 40, "dur": 10, "name": "blocks.0", "cat": "backward"},
              {"ph": "i", "pid": 0, "tid": 1000, "ts": 45, "s": "t", "name": "w", "cat": "ready",
               "args": {"bytes": 400}},
              {"ph": "X", "pid": 0, "tid": 1000, "ts": 46, "dur": 20, "name": "all-reduce", "cat": "ddp",
               "args": {"bytes": 400}},
              {"ph": "X", "pid": 0, "tid": 2, "ts": 85, "dur": 5, "name": "gradient wait", "cat": "ddp"},
              {"ph": "X", "pid": 0, "tid": 2, "ts": 90, "dur": 8, "name": "optimizer", "cat": "step"}]
        p = sm.profile_from_trace({"traceEvents": ev, "otherData": {"world": 1, "batch": 8}})
        self.assertAlmostEqual(p["step_ms"], 0.1)
        self.assertAlmostEqual(p["backward_ms"], 0.05)
        self.assertAlmostEqual(p["other_ms"], 0.002)
        self.assertEqual(p["params"], [{"name": "w", "bytes": 400, "sparse": False, "ready_ms": 0.01}])
        self.assertEqual(p["layer_spans"], 1)

    def test_fit_recovers_alpha_and_busbw(self):
        W, a, bw = 2, 5e-6, 2e9
        with tempfile.NamedTemporaryFile("w", suffix=".txt", delete=False) as f:
            f.write(f"# cddp allreduce_perf: nRanks {W} minBytes 4096\n")
            for b in (4096, 16384, 262144, 1 << 20, 4 << 20):
                t = 2 * (W - 1) * a + 2 * (W - 1) / W * b / bw if b > 16384 else 2 * (W - 1) * a
                f.write(f"{b} {b // 4} float sum -1 {t * 1e6:.4f} 0 0 0\n")
        fit = sm.fit_level(f.name)
        os.unlink(f.name)
        self.assertAlmostEqual(fit["alpha_us"], 5.0, places=3)
        self.assertTrue(math.isclose(fit["busbw_GBs"], 2.0, rel_tol=1e-3))


if __name__ == "__main__":
    unittest.main()

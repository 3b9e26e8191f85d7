#!/usr/bin/python3
"""PyTorch side by side with chord: single-user inference latency, and optionally one ML-1M training epoch.

Inference (batch 1, one thread, the ML-1M models' shapes, the same as bench/bench_models.cpp):
  SASRec.pytorch's model (tests/interop/reference_models.py: its state_dict names and eval forward, the
  legacy and norm-first graphs) with d = 50, 2 blocks, 1 head, max length 200, 3,416 items; a Caser as
  caser_pytorch computes it (d = 50, L = 5, nh = 16, nv = 4, 6,040 users). Each is timed eager (eval mode,
  torch.inference_mode), TorchScript-traced (torch.jit.trace + freeze), and after
  torch.quantization.quantize_dynamic (qint8 nn.Linear; the script prints which modules it replaced:
  SASRec.pytorch's Conv1d FFN and MultiheadAttention's projections are not nn.Linear, so it covers little).
  One call = encode a full 200-item history and score 101 candidates (or the whole catalogue).
chord: build/bench/bench/chord_bench_models in the same run, the rows model/<m>/<variant>/encode+score*.
The two alternate (chord, torch, chord, torch, ...) and every figure is the median over rounds of the
thread's CPU time per call (time.thread_time; Google Benchmark's cpu_time): on a shared machine CPU time
is steadier than wall time, and with one thread the two agree on a quiet one.

Training (--train-data ../shared/data/ml-1m/ml-1m.txt): one epoch of SASRec.pytorch's training step
(BCE on one sampled negative per position, Adam lr 1e-3 betas (0.9, 0.98), batch 128, max length 200,
d = 50, dropout 0.2, 2 threads), its batches sampled before the clock starts (SASRec.pytorch samples in
separate processes), against `chord train --epochs 1` with the same batch size, length and threads
(its own "s per epoch of training" line). Wall time for both.

Usage: /usr/bin/python3 bench/torch_side_by_side.py [--rounds 5] [--train-data FILE] [--json out.json]
"""
import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import time

import torch

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tests", "interop"))
import reference_models  # noqa: E402  (SASRec.pytorch / caser_pytorch model classes)

ITEMS, USERS, D, BLOCKS, HEADS, MAX_LEN, CANDIDATES = 3416, 6040, 50, 2, 1, 200, 101
CASER_L, CASER_NH, CASER_NV = 5, 16, 4


def cpu_time_per_call(fn, calls):
    for _ in range(3):  # warm-up: lazy initialization, and TorchScript's profiling runs before it optimizes
        fn()
    start = time.thread_time()
    for _ in range(calls):
        fn()
    return (time.thread_time() - start) / calls


def torch_rows():
    """{row name: callable} for every PyTorch configuration; prints what dynamic quantization replaced."""
    torch.manual_seed(1)
    history = torch.randint(1, ITEMS + 1, (1, MAX_LEN))
    candidates = torch.randint(1, ITEMS + 1, (1, CANDIDATES))
    all_items = torch.arange(0, ITEMS + 1)
    rows = {}

    def sasrec_forms(variant):
        model = reference_models.SASRec(ITEMS, D, BLOCKS, HEADS, MAX_LEN, variant).eval()

        class Score101(torch.nn.Module):
            def __init__(self, m):
                super().__init__()
                self.m = m

            def forward(self, seqs, items):
                return self.m.predict(seqs, items)

        class ScoreAll(Score101):
            def forward(self, seqs, items):
                return self.m.log2feats(seqs)[:, -1, :].matmul(self.m.item_emb(items).T)

        traced101 = torch.jit.freeze(torch.jit.trace(Score101(model).eval(), (history, candidates)))
        traced_all = torch.jit.freeze(torch.jit.trace(ScoreAll(model).eval(), (history, all_items)))
        dynamic = torch.quantization.quantize_dynamic(model, {torch.nn.Linear}, dtype=torch.qint8)
        replaced = [n for n, m in dynamic.named_modules() if "quantized" in type(m).__module__]
        print(f"# quantize_dynamic on SASRec.pytorch ({variant}) replaced {len(replaced)} modules: "
              f"{', '.join(replaced) or 'none'}", file=sys.stderr)
        out = {}
        for name, m in (("eager", model), ("int8-dynamic", dynamic)):
            out[f"{name}/encode+score101"] = lambda m=m: m.predict(history, candidates)
            out[f"{name}/encode+score_all"] = lambda m=m: m.log2feats(history)[:, -1, :].matmul(m.item_emb.weight.T)
        out["traced/encode+score101"] = lambda: traced101(history, candidates)
        out["traced/encode+score_all"] = lambda: traced_all(history, all_items)
        return out

    for variant in ("legacy", "norm-first"):
        for name, fn in sasrec_forms(variant).items():
            rows[f"torch/sasrec-{variant}/{name}"] = fn

    caser = reference_models.Caser(USERS + 1, ITEMS + 1, D, CASER_L, CASER_NH, CASER_NV).eval()
    window = history[:, -CASER_L:]
    user = torch.tensor([17])
    cand = candidates
    every = all_items.unsqueeze(0)
    traced101 = torch.jit.freeze(torch.jit.trace(caser.eval(), (window, user, cand)))
    traced_all = torch.jit.freeze(torch.jit.trace(caser.eval(), (window, user, every)))
    dynamic = torch.quantization.quantize_dynamic(caser, {torch.nn.Linear}, dtype=torch.qint8)
    replaced = [n for n, m in dynamic.named_modules() if "quantized" in type(m).__module__]
    print(f"# quantize_dynamic on Caser replaced {len(replaced)} modules: {', '.join(replaced) or 'none'}",
          file=sys.stderr)
    for name, m in (("eager", caser), ("int8-dynamic", dynamic)):
        rows[f"torch/caser/{name}/encode+score101"] = lambda m=m: m(window, user, cand)
        rows[f"torch/caser/{name}/encode+score_all"] = lambda m=m: m(window, user, every)
    rows["torch/caser/traced/encode+score101"] = lambda: traced101(window, user, cand)
    rows["torch/caser/traced/encode+score_all"] = lambda: traced_all(window, user, every)
    return rows


def run_torch(rows, calls):
    out = {}
    with torch.inference_mode():
        for name, fn in rows.items():
            n = max(3, calls // 20) if "score_all" in name or "sasrec" in name else calls
            out[name] = cpu_time_per_call(fn, n) * 1e6
    return out


def run_chord(binary):
    cmd = [binary, r"--benchmark_filter=^model/(sasrec|caser)/(fp32|w8a8|w4a8)/encode\+score(101|_all)$",
           "--benchmark_min_time=0.2", "--benchmark_format=json"]
    report = json.loads(subprocess.run(cmd, check=True, capture_output=True, text=True).stdout)
    return {b["name"]: b["cpu_time"] for b in report["benchmarks"] if b.get("time_unit") == "us"}


def train_comparison(data, chord_binary, threads):
    """(torch seconds, chord seconds) for one ML-1M epoch of SASRec at batch 128, length 200."""
    import numpy as np
    users = {}
    with open(data) as f:
        for line in f:
            u, i = line.split()
            users.setdefault(int(u), []).append(int(i))
    num_items = max(max(s) for s in users.values())
    train = {u: s[:-2] for u, s in users.items() if len(s) >= 3}
    trainable = [u for u, s in train.items() if len(s) >= 2]
    rng = np.random.default_rng(1)
    order = rng.permutation(trainable)
    batches = []
    for b in range(len(order) // 128):  # SASRec.pytorch: num_batch = users // batch_size
        seq = np.zeros((128, MAX_LEN), np.int64)
        pos, neg = np.zeros_like(seq), np.zeros_like(seq)
        for r, u in enumerate(order[b * 128:(b + 1) * 128]):
            items = train[u][-(MAX_LEN + 1):]
            n = len(items) - 1
            seq[r, MAX_LEN - n:] = items[:-1]
            pos[r, MAX_LEN - n:] = items[1:]
            seen = set(train[u])
            for c in range(MAX_LEN - n, MAX_LEN):
                x = int(rng.integers(1, num_items + 1))
                while x in seen:
                    x = int(rng.integers(1, num_items + 1))
                neg[r, c] = x
        batches.append(tuple(torch.from_numpy(a) for a in (seq, pos, neg)))
    torch.set_num_threads(threads)
    model = reference_models.SASRec(num_items, D, BLOCKS, HEADS, MAX_LEN, "legacy", dropout=0.2).train()
    for p in model.parameters():
        if p.dim() > 1:
            torch.nn.init.xavier_normal_(p)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3, betas=(0.9, 0.98))
    loss_fn = torch.nn.BCEWithLogitsLoss()
    start = time.perf_counter()
    for seq, pos, neg in batches:
        feats = model.log2feats(seq)
        pos_logits = (feats * model.item_emb(pos)).sum(-1)
        neg_logits = (feats * model.item_emb(neg)).sum(-1)
        valid = pos != 0
        loss = loss_fn(pos_logits[valid], torch.ones_like(pos_logits[valid])) + \
            loss_fn(neg_logits[valid], torch.zeros_like(neg_logits[valid]))
        opt.zero_grad()
        loss.backward()
        opt.step()
    torch_seconds = time.perf_counter() - start
    out = os.path.join(os.path.dirname(chord_binary), "torch_side_by_side.safetensors")
    log = subprocess.run([chord_binary, "train", "--model", "sasrec", "--data", data, "--epochs", "1", "--batch", "128",
                          "--max-len", str(MAX_LEN), "--d", str(D), "--dropout", "0.2", "--threads", str(threads),
                          "--eval-every", "0", "--out", out], check=True, capture_output=True, text=True).stdout
    m = re.search(r"\(([0-9.]+) s per epoch of training\)", log)
    if not m:
        raise SystemExit("chord train printed no 's per epoch of training' line:\n" + log)
    return torch_seconds, float(m.group(1)), len(batches)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=5, help="alternating chord / torch rounds (median)")
    ap.add_argument("--calls", type=int, default=200, help="PyTorch calls per round (fewer for the slow rows)")
    ap.add_argument("--bench", default=os.path.join(ROOT, "build", "bench", "bench", "chord_bench_models"))
    ap.add_argument("--chord", default=os.path.join(ROOT, "build", "gcc", "examples", "chord", "chord"))
    ap.add_argument("--train-data", help="ML-1M file: also compare one training epoch")
    ap.add_argument("--threads", type=int, default=2, help="training threads (inference is one thread)")
    ap.add_argument("--json", help="write every median here")
    args = ap.parse_args()
    torch.set_num_threads(1)
    rows = torch_rows()
    chord_runs, torch_runs = [], []
    for _ in range(args.rounds):
        chord_runs.append(run_chord(args.bench))
        torch_runs.append(run_torch(rows, args.calls))
    med = lambda runs, k: statistics.median(r[k] for r in runs if k in r)
    ours = {k: med(chord_runs, k) for k in chord_runs[0]}
    theirs = {k: med(torch_runs, k) for k in torch_runs[0]}
    load = open("/proc/loadavg").read().split()[:3] if os.path.exists("/proc/loadavg") else ["?"]
    print(f"# medians of {args.rounds} alternating rounds, CPU time per call in us, load {' '.join(load)}")
    print("| model | call | chord fp32 | chord w8a8 | chord w4a8 | torch eager | torch traced | torch int8-dynamic |"
          " eager / chord fp32 | eager / chord w4a8 |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for model, torch_model in (("sasrec", "sasrec-legacy"), ("sasrec", "sasrec-norm-first"), ("caser", "caser")):
        for call in ("encode+score101", "encode+score_all"):
            c = {v: ours.get(f"model/{model}/{v}/{call}") for v in ("fp32", "w8a8", "w4a8")}
            t = {f: theirs.get(f"torch/{torch_model}/{f}/{call}") for f in ("eager", "traced", "int8-dynamic")}
            cell = lambda x: f"{x:.1f}" if x else "-"
            ratio = lambda a, b: f"{a / b:.1f}x" if a and b else "-"
            print(f"| {torch_model} | {call} | {cell(c['fp32'])} | {cell(c['w8a8'])} | {cell(c['w4a8'])} | "
                  f"{cell(t['eager'])} | {cell(t['traced'])} | {cell(t['int8-dynamic'])} | "
                  f"{ratio(t['eager'], c['fp32'])} | {ratio(t['eager'], c['w4a8'])} |")
    result = {"chord_us": ours, "torch_us": theirs, "load": load, "torch": torch.__version__}
    if args.train_data:
        t_s, c_s, batches = train_comparison(args.train_data, args.chord, args.threads)
        print(f"\nSASRec ML-1M, one epoch ({batches} batches of 128, length 200, d {D}, {args.threads} threads): "
              f"SASRec.pytorch-style loop {t_s:.1f} s, chord train {c_s:.2f} s: {t_s / c_s:.1f}x")
        result.update({"train_torch_s": t_s, "train_chord_s": c_s})
    if args.json:
        with open(args.json, "w") as f:
            json.dump(result, f, indent=1)


if __name__ == "__main__":
    main()

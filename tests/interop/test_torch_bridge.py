"""Interop tests (ctest label interop): scripts/torch_bridge.py against PyTorch itself.

  /usr/bin/python3 test_torch_bridge.py BRIDGE INTEROP_SCORES WORKDIR [CHORD_CLI]

For SASRec.pytorch (every variant) and caser_pytorch: a random model in the projects' own layout
(reference_models.py), imported by the bridge; chord's scores (tests/interop/interop_scores.cpp: fp32,
fp32 with SIMD row kernels, W8A8, W4A8) against PyTorch's forward on random histories (longer than the
input, full, short, length 1); chord's writer re-saving the imported file byte for byte; import ->
export -> import bit-identical, the export loading strictly into the projects' classes; refusals naming
the tensor; with the chord program, a model chord trains (--variant post-ln) exported and scored by
PyTorch's class. Exit 77 (ctest: skipped) without torch.
"""
import contextlib
import io
import os
import subprocess
import sys

try:
    import numpy as np
    import torch
except ImportError as e:
    print("SKIPPED: the interop tests need /usr/bin/python3 with torch and numpy (python3-torch): %s" % e)
    sys.exit(77)

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import reference_models as ref  # noqa: E402

BRIDGE, SCORES, WORK = sys.argv[1], sys.argv[2], sys.argv[3]
CHORD_CLI = os.path.abspath(sys.argv[4]) if len(sys.argv) > 4 else None  # the chord program, when built
os.makedirs(WORK, exist_ok=True)
failures = []


def check(cond, what):
    print(("ok    " if cond else "FAIL  ") + what)
    if not cond:
        failures.append(what)


sys.path.insert(0, os.path.dirname(os.path.abspath(BRIDGE)))
import torch_bridge  # noqa: E402  (called in-process: one torch import for the whole test)


class Result:
    def __init__(self, returncode, stderr):
        self.returncode, self.stderr = returncode, stderr


def bridge(*args, expect_ok=True):
    errors = io.StringIO()
    with contextlib.redirect_stderr(errors), contextlib.redirect_stdout(io.StringIO()):
        code = torch_bridge.main(list(args))
    if expect_ok and code != 0:
        raise SystemExit("bridge failed: %s\n%s" % (" ".join(args), errors.getvalue()))
    return Result(code, errors.getvalue())


def path(name):
    return os.path.join(WORK, name)


def left_pad_list(items, L):
    items = items[-L:]
    return [0] * (L - len(items)) + items


def randomize(model, seed):
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            p.copy_(torch.randn(p.shape, generator=g) * (0.5 if p.dim() > 1 else 0.3) + (1.0 if "norm" in name and
                                                                                          name.endswith("weight") else 0.0))


def chord_scores(model_file, histories, tag):
    hist, out, resaved = path(tag + ".hist"), path(tag + ".scores"), path(tag + ".resaved.safetensors")
    with open(hist, "w") as f:
        for user, items in histories:
            f.write("%d %s\n" % (user, " ".join(map(str, items))))
    r = subprocess.run([SCORES, model_file, hist, out, resaved], capture_output=True, text=True)
    if r.returncode != 0:
        raise SystemExit("interop_scores failed: %s" % r.stderr)
    scores = {}
    for line in open(out):
        fields = line.split()
        scores.setdefault(fields[0], []).append(np.array([float(x) for x in fields[2:]]))
    with open(model_file, "rb") as a, open(resaved, "rb") as b:
        check(a.read() == b.read(), "%s: chord's writer re-saves the bridge's file byte for byte" % tag)
    return scores


def compare(tag, torch_scores, scores):
    worst = {}
    for mode, rows in scores.items():
        errs = [np.linalg.norm(c - t) / np.linalg.norm(t) for c, t in zip(rows, torch_scores)]
        worst[mode] = max(errs)
    # fp32: the same products in another order: relative distance a few float32 roundings (measured
    # ~1e-7); with SIMD row kernels (other exp/rsqrt) 1e-5 at most; W8A8 / W4A8 quantize every layer,
    # embeddings included: one int8 / int4 step of each.
    print("      %s: relative distance to PyTorch, worst history: %s" %
          (tag, ", ".join("%s %.2e" % kv for kv in worst.items())))
    check(worst["fp32"] <= 1e-5, "%s: chord fp32 equals PyTorch (worst %.2e <= 1e-5)" % (tag, worst["fp32"]))
    check(worst["fp32-simd"] <= 1e-4, "%s: chord fp32 + SIMD kernels equals PyTorch (worst %.2e)" %
          (tag, worst["fp32-simd"]))
    check(worst["w8a8"] <= 0.1 and worst["w8a8"] < worst["w4a8"] <= 0.6,
          "%s: W8A8 (%.2e) and W4A8 (%.2e) run on the imported model and stay close" %
          (tag, worst["w8a8"], worst["w4a8"]))


def round_trip(tag, fmt, model_file, make_model, torch_fn, export_args=()):
    pth2, again = path(tag + ".exported.pth"), path(tag + ".again.safetensors")
    # exported from the file chord's writer saved: the bridge reads what the C++ side writes
    bridge("export", "--model", path(tag + ".resaved.safetensors"), "--format", fmt, "--out", pth2, *export_args)
    fresh = make_model()
    fresh.load_state_dict(torch.load(pth2), strict=True)  # the projects' names and shapes, nothing else
    fresh.eval()
    return pth2, again, fresh


rng = np.random.default_rng(7)

# --- SASRec.pytorch, every variant --------------------------------------------------------------------------
items, d, blocks, heads, L = 40, 12, 2, 2, 10
for variant in ("legacy", "norm-first", "post-ln"):
    tag = "sasrec-" + variant

    def make(variant=variant, pos_rows=None):
        return ref.SASRec(items, d, blocks, heads, L, variant, pos_rows=pos_rows)
    model = make()
    randomize(model, 11)
    with torch.no_grad():
        model.item_emb.weight[0].zero_()
        model.pos_emb.weight[0].zero_()
    model.eval()
    pth = path(tag + ".pth")
    torch.save(model.state_dict(), pth)
    chord_file = path(tag + ".safetensors")
    bridge("import", "--format", "sasrec-pytorch", "--variant", variant, "--heads", str(heads), "--state-dict", pth,
           "--out", chord_file)
    histories = [(0, list(rng.integers(1, items + 1, n))) for n in (15, L, 4, 1, 7)]

    def torch_scores(m):
        out = []
        with torch.no_grad():
            for _, h in histories:
                h = h[-L:]
                seq = torch.tensor([[0] * (L - len(h)) + h])
                out.append(m.predict(seq, torch.arange(1, items + 1)).numpy()[0].astype(np.float64))
        return out
    expected = torch_scores(model)
    compare(tag, expected, chord_scores(chord_file, histories, tag))
    pth2, again, fresh = round_trip(tag, "sasrec-pytorch", chord_file, make, torch_scores)
    check(all(np.array_equal(a, b) for a, b in zip(torch_scores(fresh), expected)),
          "%s: the exported state_dict loads into SASRec.pytorch's class and scores bit for bit the same" % tag)
    bridge("import", "--format", "sasrec-pytorch", "--variant", variant, "--heads", str(heads), "--state-dict", pth2,
           "--out", again)
    check(open(again, "rb").read() == open(chord_file, "rb").read(), "%s: import -> export -> import is bit-identical" % tag)

# python/model.py builds pos_emb with 201 rows whatever maxlen is: --max-len picks the used rows, and
# export --pos-rows gives them back
big = ref.SASRec(items, d, 1, 1, L, "post-ln", pos_rows=201)
randomize(big, 5)
with torch.no_grad():
    big.item_emb.weight[0].zero_()
    big.pos_emb.weight[0].zero_()
    big.pos_emb.weight[L + 1:].zero_()
torch.save(big.state_dict(), path("pos201.pth"))
bridge("import", "--format", "sasrec-pytorch", "--variant", "post-ln", "--max-len", str(L), "--state-dict",
       path("pos201.pth"), "--out", path("pos201.safetensors"))
bridge("export", "--model", path("pos201.safetensors"), "--format", "sasrec-pytorch", "--pos-rows", "201", "--out",
       path("pos201.back.pth"))
back = torch.load(path("pos201.back.pth"))
check(all(torch.equal(back[k], v) for k, v in big.state_dict().items()) and set(back) == set(big.state_dict()),
      "sasrec --max-len 10 of a 201-row pos_emb, exported with --pos-rows 201: the original state_dict exactly")

# --- refusals -----------------------------------------------------------------------------------------------------
state = torch.load(path("sasrec-legacy.pth"))
state["attention_layers.0.bias_k"] = torch.zeros(1, 1, d)
torch.save(state, path("extra.pth"))
r = bridge("import", "--format", "sasrec-pytorch", "--variant", "legacy", "--state-dict", path("extra.pth"), "--out",
           path("extra.safetensors"), expect_ok=False)
check(r.returncode == 1 and "attention_layers.0.bias_k" in r.stderr and not os.path.exists(path("extra.safetensors")),
      "an unmappable tensor is refused by name: " + r.stderr.strip())
state = torch.load(path("sasrec-legacy.pth"))
state["pos_emb.weight"][0] = 1.0
torch.save(state, path("pos0.pth"))
r = bridge("import", "--format", "sasrec-pytorch", "--variant", "legacy", "--state-dict", path("pos0.pth"), "--out",
           path("pos0.safetensors"), expect_ok=False)
check(r.returncode == 1 and "pos_emb.weight" in r.stderr, "a non-zero padding row is refused by name")
r = bridge("import", "--format", "sasrec-pytorch", "--state-dict", path("sasrec-legacy.pth"), "--out",
           path("novariant.safetensors"), expect_ok=False)
check(r.returncode == 1 and "--variant" in r.stderr, "sasrec-pytorch without --variant is refused")
raw = bytearray(open(path("sasrec-legacy.safetensors"), "rb").read())
raw[-3] ^= 0x10
open(path("damaged.safetensors"), "wb").write(bytes(raw))
r = bridge("export", "--model", path("damaged.safetensors"), "--format", "sasrec-pytorch", "--out",
           path("damaged.pth"), expect_ok=False)
check(r.returncode == 1 and "checksum" in r.stderr, "a damaged chord file is refused (checksum): " + r.stderr.strip())
meta, tensors = torch_bridge.decode_safetensors(open(path("sasrec-legacy.safetensors"), "rb").read(), "legacy")
del meta["sasrec.variant"]  # chord's own graph: no SASRec.pytorch class computes it
open(path("chordgraph.safetensors"), "wb").write(torch_bridge.encode_safetensors(meta, tensors))
r = bridge("export", "--model", path("chordgraph.safetensors"), "--format", "sasrec-pytorch", "--out",
           path("chordgraph.pth"), expect_ok=False)
check(r.returncode == 1 and "no SASRec.pytorch equivalent" in r.stderr, "exporting chord's own SASRec graph is refused")
r = bridge("export", "--model", path("sasrec-legacy.safetensors"), "--format", "caser-pytorch", "--out",
           path("wrong.pth"), expect_ok=False)
check(r.returncode == 1 and "sasrec" in r.stderr, "exporting a SASRec file as Caser is refused")

# --- caser_pytorch --------------------------------------------------------------------------------------------------
users, citems, cd, cL, nh, nv = 5, 31, 6, 4, 3, 2  # caser_pytorch's num_items counts the padding id 0


def make_caser():
    return ref.Caser(users, citems, cd, cL, nh, nv)


for tag, zero_pad in (("caser", True), ("caser-padrow", False)):
    caser = make_caser()
    randomize(caser, 3)
    if zero_pad:
        with torch.no_grad():
            caser.item_embeddings.weight[0].zero_()
    caser.eval()
    pth = path(tag + ".pth")
    torch.save(caser.state_dict(), pth)
    chord_file = path(tag + ".safetensors")
    bridge("import", "--format", "caser-pytorch", "--state-dict", pth, "--out", chord_file)
    # windows longer than L, full, short and of length 1 (padded: caser_pytorch's learned row 0, or zero)
    lengths = (9, cL, 2, 1)
    histories = [(int(u), list(rng.integers(1, citems, n))) for u, n in zip(rng.integers(0, users, 4), lengths)]

    def caser_scores(m):
        out = []
        with torch.no_grad():
            for u, h in histories:
                h = h[-cL:]
                seq = torch.tensor([[0] * (cL - len(h)) + h])
                out.append(m(seq, torch.tensor([u]), torch.arange(1, citems).unsqueeze(0)).numpy()[0].astype(np.float64))
        return out
    expected = caser_scores(caser)
    compare(tag, expected, chord_scores(chord_file, histories, tag))
    pth2, again, fresh = round_trip(tag, "caser-pytorch", chord_file, make_caser, caser_scores)
    check(all(np.array_equal(a, b) for a, b in zip(caser_scores(fresh), expected)),
          "%s: the exported state_dict loads into caser_pytorch's class and scores bit for bit the same" % tag)
    bridge("import", "--format", "caser-pytorch", "--state-dict", pth2, "--out", again)
    check(open(again, "rb").read() == open(chord_file, "rb").read(), "%s: import -> export -> import is bit-identical" % tag)

# --- a model trained by chord itself (chord train --variant), taken to PyTorch ---------------------------
if CHORD_CLI:
    trained = path("chord-trained.safetensors")
    r = subprocess.run([CHORD_CLI, "train", "--model", "sasrec", "--variant", "post-ln", "--epochs", "1", "--d", "8",
                        "--heads", "2", "--blocks", "1", "--max-len", "12", "--out", trained],
                       capture_output=True, text=True, cwd=WORK)
    check(r.returncode == 0, "chord train --variant post-ln (synthetic data, 1 epoch) " + r.stderr.strip())
    bridge("export", "--model", trained, "--format", "sasrec-pytorch", "--out", path("chord-trained.pth"))
    state = torch.load(path("chord-trained.pth"))
    n_items = state["item_emb.weight"].shape[0] - 1
    back = ref.SASRec(n_items, 8, 1, 2, 12, "post-ln")
    back.load_state_dict(state, strict=True)
    back.eval()
    histories = [(0, list(rng.integers(1, n_items + 1, n))) for n in (20, 12, 3, 1)]
    with torch.no_grad():
        expected = [back.predict(torch.tensor([left_pad_list(h, 12)]), torch.arange(1, n_items + 1)).numpy()[0]
                    .astype(np.float64) for _, h in histories]
    compare("chord-trained post-ln", expected, chord_scores(trained, histories, "chord-trained"))

print("%d failure(s)" % len(failures))
sys.exit(1 if failures else 0)

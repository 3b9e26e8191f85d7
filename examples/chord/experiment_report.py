#!/usr/bin/python3
"""Tables, target checks and plots from `chord experiment --report` files (docs/results.md, CHORD part).

Usage: /usr/bin/python3 examples/chord/experiment_report.py RUN_DIR [PNG_PREFIX]
       /usr/bin/python3 examples/chord/experiment_report.py --markdown docs/results.md PNG_PREFIX  (plots only)
Reads RUN_DIR/<model>-<dataset>.json (written by `chord experiment --report`), prints per dataset and
model one markdown table (rows: method x budget; sampled HR@10 / NDCG@10, full NDCG@10, average bits,
device bytes, bytes sent, adaptation ms), then the issue's targets per run (CHORD at 3 bits against
fp32, uniform 4-bit and user-agnostic 3-bit; packet size against the fp32 weights it personalizes).
With PNG_PREFIX, writes PNG_PREFIX-<dataset>.png: NDCG@10 (sampled and full) against average bits per
method, one panel per model and protocol, with 95 % error bars (qat and the random-backbone ablation only
in the tables; Debian python3-matplotlib). --markdown rebuilds the plots from the per-run tables of
docs/results.md when the JSON reports are not at hand.
"""
import glob
import json
import os
import re
import sys

DATASETS = ["ml100k", "yelp", "beauty"]
NAMES = {"ml100k": "ML-100K", "yelp": "Yelp", "beauty": "Beauty"}
MODELS = ["sasrec", "caser"]
METHODS = ["fp32", "uniform", "user_agnostic", "random_mixed", "q2_energy", "chord", "chord_random_backbone",
           "qat", "user_agnostic_qat_users"]


def load(run_dir):
    runs = {}
    for path in sorted(glob.glob(os.path.join(run_dir, "*.json"))):
        model, _, dataset = os.path.basename(path)[: -len(".json")].partition("-")
        if model in MODELS and dataset in DATASETS:
            with open(path) as f:
                runs[(model, dataset)] = json.load(f)
    return runs


def find(run, method, budget):
    for r in run["results"]:
        if r["method"] == method and abs(r["budget"] - budget) < 1e-9 and r["available"]:
            return r
    return None


def table(run):
    lines = ["| method | budget | users | HR@10 s | NDCG@10 s | NDCG@10 full | avg bits | device bytes | sent B | adapt ms |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for budget in sorted({r["budget"] for r in run["results"]}):
        for method in METHODS:
            r = find(run, method, budget)
            if r is None:
                continue
            extra = ""
            if method == "qat":
                extra = " (fine-tuning %.0f ms to best step)" % (1e3 * r["device_seconds"])
            lines.append("| %s%s | %g | %d | %.4f | %.4f | %.4f | %.3f | %d | %d | %.2f |" % (
                method, extra, budget, r["users"], r["sampled"]["hr@10"], r["sampled"]["ndcg@10"],
                r["full"]["ndcg@10"], r["average_bits"], round(r["device_bytes"]), round(r["bytes_sent"]),
                1e3 * r["adaptation_seconds"]))
    return "\n".join(lines)


def targets(model, dataset, run):
    fp32, chord3 = find(run, "fp32", 3.0), find(run, "chord", 3.0)
    uni4, agn3 = find(run, "uniform", 4.0), find(run, "user_agnostic", 3.0)
    if None in (fp32, chord3, uni4, agn3):
        return "| %s | %s | (missing rows) |||||" % (NAMES[dataset], model)
    c, f = chord3["sampled"]["ndcg@10"], fp32["sampled"]["ndcg@10"]
    u, a = uni4["sampled"]["ndcg@10"], agn3["sampled"]["ndcg@10"]
    ratio = run["fp32_personalized_bytes"] / chord3["bytes_sent"]
    ok = lambda b: "yes" if b else "**no**"
    return "| %s | %s | %.4f | %.4f (%.1f %%, %s) | %.4f (%s) | %.4f (%s) | 1/%.0f (%s) |" % (
        NAMES[dataset], model, c, f, 100 * c / f, ok(c >= 0.98 * f), u, ok(c >= u), a, ok(c > a), ratio,
        ok(ratio >= 500))


def interval(r, protocol, users):
    """95 % half-width of a mean NDCG@10: the report's own ("ndcg@10_ci95": [lo, hi]) when it has one,
    else a conservative bound: per-user NDCG@10 lies in [0, 1], so its variance is at most mu (1 - mu)."""
    m = r[protocol]
    if "ndcg@10_ci95" in m:
        lo, hi = m["ndcg@10_ci95"]
        return (hi - lo) / 2, True
    mu = m["ndcg@10"]
    return 1.96 * (max(mu * (1 - mu), 0.0) / max(users, 1)) ** 0.5, False


def plot(runs, dataset, png):
    """NDCG@10 against average bits: one panel per model (columns) and protocol (rows: sampled, full;
    each its own axis). Methods defined at every budget are lines; uniform PTQ exists only at the
    palette widths (2, 4, 8) and is drawn as points, with no line through the budgets between them."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    models = [m for m in MODELS if (m, dataset) in runs]
    fig, axes = plt.subplots(2, len(models), figsize=(5.5 * len(models), 7.5), squeeze=False)
    own_intervals = False
    for col, model in enumerate(models):
        run = runs[(model, dataset)]
        for row, protocol in enumerate(["sampled", "full"]):
            ax = axes[row][col]
            for k, method in enumerate(METHODS):
                # qat runs on a smaller user subset (its own table rows compare it with user_agnostic on
                # the same users); the ablation sits an order of magnitude lower and would flatten the rest.
                if method in ("fp32", "qat", "user_agnostic_qat_users", "chord_random_backbone"):
                    continue
                rows = sorted((r for r in run["results"] if r["method"] == method and r["available"]),
                              key=lambda r: r["average_bits"])
                if not rows:
                    continue
                errors = [interval(r, protocol, r["users"]) for r in rows]
                own_intervals = own_intervals or any(e[1] for e in errors)
                label = method if rows[0]["users"] == run["evaluation_users"] else "%s (%d users)" % (method, rows[0]["users"])
                offset = 0.04 * (k - 3)  # a small horizontal shift, so that the error bars do not hide each other
                ax.errorbar([r["average_bits"] + offset for r in rows], [r[protocol]["ndcg@10"] for r in rows],
                            yerr=[e[0] for e in errors], marker="o", capsize=3, label=label,
                            linestyle="none" if method == "uniform" else "-")
            f = find(run, "fp32", run["results"][0]["budget"])
            if f is not None:
                ax.axhline(f[protocol]["ndcg@10"], color="black", linestyle="--", label="fp32")
            ax.set_title("%s %s, %s ranking (%d users)" % (NAMES[dataset], model, protocol, f["users"] if f else 0))
            ax.set_xlabel("average bits per personalized weight")
            ax.set_ylabel("NDCG@10 (%s)" % protocol)
            ax.grid(alpha=0.3)
            if row == 0 and col == 0:
                ax.legend(fontsize=8)
    fig.suptitle("error bars: %s" % ("95 % intervals from the report" if own_intervals else
                 "conservative 95 % bounds (per-user NDCG in [0, 1]: variance <= mu (1 - mu)); "
                 "unpaired; the reports hold no per-user intervals"), fontsize=9)
    fig.tight_layout()
    fig.savefig(png, dpi=90)
    plt.close(fig)


def from_markdown(path):
    """The runs as far as docs/results.md's per-run tables hold them ("#### <dataset>, <model> (...)"
    then "| method | budget | users | HR@10 s | NDCG@10 s | NDCG@10 full | avg bits | ..."), for when the
    JSON reports are not at hand (they are not committed). Only what the plots read is filled in."""
    runs, key = {}, None
    names = {v: k for k, v in NAMES.items()}
    with open(path) as f:
        for line in f:
            m = re.match(r"^#### (\S+), (\w+) \(", line)
            if m and m.group(1) in names and m.group(2) in MODELS:
                key = (m.group(2), names[m.group(1)])
                runs[key] = {"results": [], "evaluation_users": 0}
                continue
            if key is None or not line.startswith("| ") or line.startswith("| method") or line.startswith("|---"):
                if line.startswith("## "):
                    key = None
                continue
            cells = [c.strip() for c in line.strip().strip("|").split("|")]
            method = cells[0].split(" ")[0]
            r = {"method": method, "budget": float(cells[1]), "users": int(cells[2]), "available": True,
                 "sampled": {"hr@10": float(cells[3]), "ndcg@10": float(cells[4])},
                 "full": {"ndcg@10": float(cells[5])}, "average_bits": float(cells[6])}
            runs[key]["results"].append(r)
            if method == "fp32":
                runs[key]["evaluation_users"] = r["users"]
    return runs


def main():
    if len(sys.argv) > 2 and sys.argv[1] == "--markdown":  # plots only, from docs/results.md's tables
        runs = from_markdown(sys.argv[2])
        for dataset in DATASETS:
            if any((m, dataset) in runs for m in MODELS) and len(sys.argv) > 3:
                plot(runs, dataset, "%s-%s.png" % (sys.argv[3], dataset))
        return
    runs = load(sys.argv[1])
    for dataset in DATASETS:
        for model in MODELS:
            if (model, dataset) in runs:
                run = runs[(model, dataset)]
                print("### %s, %s (%d personalized weights, %d fp32 bytes; %s)\n" % (
                    NAMES[dataset], model, run["personalized_weights"], run["fp32_personalized_bytes"],
                    "qat on %d users" % run["qat_users"]))
                print(table(run) + "\n")
    print("| dataset | model | CHORD@3 NDCG@10 s | >= 98 % fp32 | >= uniform 4-bit | > user-agnostic @3 | packet <= 1/500 |")
    print("|---|---|---|---|---|---|---|")
    for dataset in DATASETS:
        for model in MODELS:
            if (model, dataset) in runs:
                print(targets(model, dataset, runs[(model, dataset)]))
    if len(sys.argv) > 2:
        for dataset in DATASETS:
            if any((m, dataset) in runs for m in MODELS):
                plot(runs, dataset, "%s-%s.png" % (sys.argv[2], dataset))


if __name__ == "__main__":
    main()

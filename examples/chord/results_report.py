#!/usr/bin/python3
"""Tables and a plot from `chord eval --report` files (docs/results.md).

Usage: /usr/bin/python3 examples/chord/results_report.py RUN_DIR [PNG]
Reads RUN_DIR/<model>-<dataset>.eval.json (written by `chord eval --report`), prints one markdown table
per dataset (rows: model x variant; columns: HR@5, NDCG@5, HR@10, NDCG@10 for the sampled and the full
protocol, average bits, weight bytes) and, with PNG, plots test NDCG@10 (sampled and full) against
weight bits for every model and dataset (Debian python3-matplotlib).
"""
import glob
import json
import os
import sys

DATASETS = ["ml-1m", "ml-100k", "beauty", "yelp"]
NAMES = {"ml-1m": "ML-1M", "ml-100k": "ML-100K", "beauty": "Beauty", "yelp": "Yelp"}


def load(run_dir):
    runs = {}
    for path in sorted(glob.glob(os.path.join(run_dir, "*.eval.json"))):
        name = os.path.basename(path)[: -len(".eval.json")]
        model, _, dataset = name.partition("-")
        dataset = {"ml1m": "ml-1m", "ml100k": "ml-100k"}.get(dataset, dataset)
        with open(path) as f:
            runs[(model, dataset)] = json.load(f)
    return runs


def table(runs, dataset):
    lines = [
        "| model | variant | avg bits | weight KiB | sampled HR@5 | NDCG@5 | HR@10 | NDCG@10 | full HR@5 | NDCG@5 | HR@10 | NDCG@10 |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for model in ["sasrec", "caser"]:
        report = runs.get((model, dataset))
        if report is None:
            continue
        for r in report["results"]:
            s, f = r.get("sampled", {}), r.get("full", {})
            cells = [model, r["variant"], "%.1f" % r["average_bits"], "%.0f" % (r["weight_bytes"] / 1024.0)]
            for m in (s, f):
                cells += ["%.4f" % m.get(k, float("nan")) for k in ("hr@5", "ndcg@5", "hr@10", "ndcg@10")]
            lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def plot(runs, png):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    datasets = [d for d in DATASETS if any((m, d) in runs for m in ("sasrec", "caser"))]
    fig, axes = plt.subplots(1, len(datasets), figsize=(4.2 * len(datasets), 3.6), squeeze=False)
    for ax, dataset in zip(axes[0], datasets):
        for model, colour in (("sasrec", "tab:blue"), ("caser", "tab:orange")):
            report = runs.get((model, dataset))
            if report is None:
                continue
            for protocol, style in (("sampled", "-"), ("full", "--")):
                for acts, marker in (("f32", "o"), ("s8", "s")):
                    points = sorted(
                        (r["weight_bits"], r[protocol]["ndcg@10"])
                        for r in report["results"]
                        if protocol in r and (r["activations"] == acts or r["weight_bits"] == 32)
                    )
                    if not points:
                        continue
                    xs, ys = zip(*points)
                    label = "%s %s %s" % (model, protocol, "a8" if acts == "s8" else "a32")
                    ax.plot(xs, ys, style, marker=marker, color=colour, label=label, alpha=0.85)
        ax.set_xscale("log", base=2)
        ax.set_xticks([2, 4, 8, 32])
        ax.set_xticklabels(["2", "4", "8", "fp32"])
        ax.set_xlabel("weight bits (every layer)")
        ax.set_ylabel("test NDCG@10")
        ax.set_title(NAMES.get(dataset, dataset))
        ax.grid(True, alpha=0.3)
    axes[0][0].legend(fontsize=6.5, loc="best")
    fig.tight_layout()
    fig.savefig(png, dpi=110)


def main():
    if len(sys.argv) < 2:
        print(__doc__)
        return 2
    runs = load(sys.argv[1])
    for dataset in DATASETS:
        if any((m, dataset) in runs for m in ("sasrec", "caser")):
            print("### " + NAMES[dataset] + "\n")
            print(table(runs, dataset) + "\n")
    if len(sys.argv) > 2:
        plot(runs, sys.argv[2])
    return 0


if __name__ == "__main__":
    sys.exit(main())

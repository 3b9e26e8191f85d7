#!/usr/bin/python3
"""Tables and a plot from `chord eval --report` files (docs/results.md).

Usage: /usr/bin/python3 examples/chord/results_report.py RUN_DIR [PNG]
       /usr/bin/python3 examples/chord/results_report.py --markdown docs/results.md PNG   (the plot only)
Reads RUN_DIR/<model>-<dataset>.eval.json (written by `chord eval --report`), prints one markdown table
per dataset (rows: model x variant; columns: HR@5, NDCG@5, HR@10, NDCG@10 for the sampled and the full
protocol, average bits, weight bytes) and, with PNG, plots test NDCG@10 against weight bits for every
model and dataset, sampled and full ranking in separate panels, with conservative 95 % error bars
(Debian python3-matplotlib). --markdown rebuilds the plot from docs/results.md's tables when the JSON
reports (not committed) are not at hand.
"""
import glob
import json
import os
import re
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


# Users each eval run of docs/results.md averaged over ("all evaluated users": every user of the data),
# for --markdown, whose tables do not list them.
DATASET_USERS = {"ml-1m": 6040, "ml-100k": 943, "beauty": 22363, "yelp": 30431}


def half_width(mean, users):
    """Conservative 95 % half-width of a mean of per-user values in [0, 1] (variance <= mu (1 - mu))."""
    return 1.96 * (max(mean * (1 - mean), 0.0) / max(users, 1)) ** 0.5


def plot(runs, png):
    """Test NDCG@10 against weight bits: one column per dataset, one row per protocol (sampled, full:
    each on its own axis, so neither is squashed by the other's scale)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    datasets = [d for d in DATASETS if any((m, d) in runs for m in ("sasrec", "caser"))]
    fig, axes = plt.subplots(2, len(datasets), figsize=(4.2 * len(datasets), 6.8), squeeze=False)
    for col, dataset in enumerate(datasets):
        for row, protocol in enumerate(("sampled", "full")):
            ax = axes[row][col]
            for model, colour in (("sasrec", "tab:blue"), ("caser", "tab:orange")):
                report = runs.get((model, dataset))
                if report is None:
                    continue
                for acts, marker, style in (("f32", "o", "-"), ("s8", "s", "--")):
                    points = sorted(
                        (r["weight_bits"], r[protocol]["ndcg@10"], r[protocol].get("users", 0))
                        for r in report["results"]
                        if protocol in r and (r["activations"] == acts or r["weight_bits"] == 32)
                    )
                    if not points:
                        continue
                    xs, ys, users = zip(*points)
                    label = "%s %s" % (model, "a8" if acts == "s8" else "a32")
                    ax.errorbar(xs, ys, yerr=[half_width(y, n) for y, n in zip(ys, users)], fmt=style,
                                marker=marker, color=colour, label=label, alpha=0.85, capsize=3)
            ax.set_xscale("log", base=2)
            ax.set_xticks([2, 4, 8, 32])
            ax.set_xticklabels(["2", "4", "8", "fp32"])
            ax.set_xlabel("weight bits (every layer)")
            ax.set_ylabel("test NDCG@10, %s" % protocol)
            ax.set_title("%s, %s ranking" % (NAMES.get(dataset, dataset), protocol), fontsize=10)
            ax.grid(True, alpha=0.3)
    axes[0][0].legend(fontsize=7, loc="best")
    fig.suptitle("error bars: conservative 95 % bounds (per-user NDCG in [0, 1]), unpaired", fontsize=9)
    fig.tight_layout()
    fig.savefig(png, dpi=110)
    plt.close(fig)


def from_markdown(path):
    """The runs as docs/results.md's tables hold them ("### <dataset>" then "| model | variant | avg bits |
    weight KiB | sampled HR@5 | NDCG@5 | HR@10 | NDCG@10 | full HR@5 | ..."), for when the JSON reports
    are not at hand (they are not committed). Only what the plot reads is filled in."""
    names = {v: k for k, v in NAMES.items()}
    runs, dataset = {}, None
    with open(path) as f:
        for line in f:
            if line.startswith("#"):
                title = line.lstrip("#").strip()
                dataset = names.get(title) if line.startswith("### ") else None
                continue
            if dataset is None or not line.startswith("| ") or line.startswith("| model") or line.startswith("|---"):
                continue
            cells = [c.strip() for c in line.strip().strip("|").split("|")]
            if len(cells) != 12:
                continue
            model, variant = cells[0], cells[1]
            m = re.match(r"^w(\d)a(8|32)$", variant)
            bits, acts = (32, "f32") if variant == "fp32" else (int(m.group(1)), "s8" if m.group(2) == "8" else "f32")
            users = DATASET_USERS[dataset]
            r = {"variant": variant, "weight_bits": bits, "activations": acts,
                 "sampled": {"ndcg@10": float(cells[7]), "users": users},
                 "full": {"ndcg@10": float(cells[11]), "users": users}}
            runs.setdefault((model, dataset), {"results": []})["results"].append(r)
    return runs


def main():
    if len(sys.argv) < 2:
        print(__doc__)
        return 2
    if sys.argv[1] == "--markdown":  # the plot only, from docs/results.md's tables
        if len(sys.argv) < 4:
            print(__doc__)
            return 2
        plot(from_markdown(sys.argv[2]), sys.argv[3])
        return 0
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

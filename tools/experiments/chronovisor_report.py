#!/usr/bin/env python3
"""The tables and plots of the Chronovisor experiments, from tools/experiments/chronovisor_sweep.sh's output.

  tools/experiments/chronovisor_report.py OUT [--plots DIR]

Per model and routing control: held-out perplexity; expert-usage balance over the last fifth of training
(coefficient of variation of the load across experts and max/min load, both averaged over layers, and the
experts that got under a tenth of their fair share); stability (loss spikes: steps whose loss exceeds the
median of the previous ten by 20%; the standard deviation of the gradient norm over the second half);
coherence (1 - H(load)/log E of each step's load, averaged over layers, the same formula for every
control) at the end and its Pearson correlation with the validation loss at the checkpoints; expert
specialisation by domain (the mutual information between a held-out token's domain and the experts it is
routed to, per layer, averaged, in bits); and the offload hit rate at the sweep's budget, reactive and
predictive. Prints Markdown; with --plots, writes coherence and validation-loss curves per model.

With several seeds (SEEDS of the sweep: OUT/MODEL/SETTING is seed 0, OUT/MODEL/seedN/SETTING seed N) each
cell is the mean and standard deviation over the seeds, and each setting's perplexity is compared with
"none" of the same seed (same init, same data order): the paired change's mean and spread, and in how many
seeds it helped. The plots show the lowest seed.
"""
import argparse
import glob
import json
import math
import os
import statistics
import sys


def read_jsonl(path):
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def coherence(p):
    total = sum(p)
    if total <= 0:
        return 0.0
    h = -sum(v / total * math.log(v / total) for v in p if v > 0)
    return 1 - h / math.log(len(p))


def balance(loads):
    """CV, max/min and starved experts of per-layer loads [L][E], averaged over layers."""
    cvs, ratios, starved = [], [], 0
    for row in loads:
        mean = sum(row) / len(row)
        cvs.append(statistics.pstdev(row) / mean if mean > 0 else 0)
        ratios.append(max(row) / min(row) if min(row) > 0 else math.inf)
        starved += sum(1 for v in row if v < 0.1 / len(row))
    return statistics.mean(cvs), statistics.mean(ratios), starved


def mean_load(steps):
    layers, experts = len(steps[0]["expert_load"]), len(steps[0]["expert_load"][0])
    return [[statistics.mean(s["expert_load"][l][e] for s in steps) for e in range(experts)] for l in range(layers)]


def spikes(losses):
    return sum(1 for i in range(10, len(losses)) if losses[i] > 1.2 * statistics.median(losses[i - 10:i]))


def pearson(xs, ys):
    if len(xs) < 3 or statistics.pstdev(xs) == 0 or statistics.pstdev(ys) == 0:
        return math.nan
    mx, my = statistics.mean(xs), statistics.mean(ys)
    return sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / (len(xs) * statistics.pstdev(xs) * statistics.pstdev(ys))


def mutual_information(groups):
    """I(domain; expert) in bits per layer, averaged, from each domain's expert counts [L][E] and its token count."""
    names = [g for g in groups if groups[g].get("expert_counts")]
    if len(names) < 2:
        return math.nan
    layers = len(groups[names[0]]["expert_counts"])
    out = []
    for l in range(layers):
        joint = {(d, e): c for d in names for e, c in enumerate(groups[d]["expert_counts"][l])}
        total = sum(joint.values())
        if total <= 0:
            continue
        pd = {d: sum(c for (dd, _), c in joint.items() if dd == d) / total for d in names}
        pe = {}
        for (d, e), c in joint.items():
            pe[e] = pe.get(e, 0) + c / total
        out.append(sum(c / total * math.log2((c / total) / (pd[d] * pe[e])) for (d, e), c in joint.items() if c > 0))
    return statistics.mean(out) if out else math.nan


def analyse(run):
    log = read_jsonl(os.path.join(run, "log.jsonl"))
    steps = [r for r in log if "loss" in r and "expert_load" in r]
    if not steps:
        raise ValueError(f"{run}/log.jsonl: no step lines with expert_load (train with --log-every 1)")
    tail = steps[-max(1, len(steps) // 5):]
    cv, ratio, starved = balance(mean_load(tail))
    coh = {s["step"]: statistics.mean(coherence(row) for row in s["expert_load"]) for s in steps}
    grad = [s["grad_norm"] for s in steps[len(steps) // 2:]]
    val = []
    for ckpt in sorted(glob.glob(os.path.join(run, "model", "checkpoints", "step_*"))):
        path = os.path.join(ckpt, "eval.json")
        if os.path.exists(path):
            step = int(os.path.basename(ckpt).split("_")[1])
            window = [coh[s] for s in range(max(1, step - 4), step + 1) if s in coh]
            val.append((step, statistics.mean(window), json.load(open(path))["runs"]["resident"]["total"]["cross_entropy"]))
    final = json.load(open(os.path.join(run, "eval.json")))["runs"]["resident"]
    offload = {}
    if os.path.exists(os.path.join(run, "offload.json")):
        try:
            offload = json.load(open(os.path.join(run, "offload.json"))).get("modes", {})
        except json.JSONDecodeError:
            offload = {}
    timing = json.load(open(os.path.join(run, "timing.json"))) if os.path.exists(os.path.join(run, "timing.json")) else {}
    return {
        "ppl": final["total"]["perplexity"],
        "ce": final["total"]["cross_entropy"],
        "cv": cv, "max_min": ratio, "starved": starved,
        "spikes": spikes([s["loss"] for s in steps]),
        "grad_sd": statistics.pstdev(grad) if len(grad) > 1 else 0.0,
        "coherence_end": statistics.mean(coh[s["step"]] for s in tail),
        "coh_val_r": pearson([v[1] for v in val], [v[2] for v in val]),
        "mi_bits": mutual_information(final.get("groups", {})),
        "hit_reactive": offload.get("reactive", {}).get("hit_rate", math.nan),
        "hit_lookahead": offload.get("lookahead", {}).get("hit_rate", math.nan),
        "train_s": timing.get("train_seconds", math.nan),
        "curve": [(s["step"], coh[s["step"]], s["loss"]) for s in steps],
        "val": val,
    }


def fmt(v, digits=3):
    if isinstance(v, float) and math.isnan(v):
        return "n/a"
    if isinstance(v, float) and math.isinf(v):
        return "inf"
    return f"{v:.{digits}f}" if isinstance(v, float) else str(v)


def mean_sd(values):
    """'mean +- sd' over the finite values (inf when any is infinite), n/a when none."""
    if any(isinstance(v, float) and math.isinf(v) for v in values):
        return "inf"
    finite = [v for v in values if not (isinstance(v, float) and math.isnan(v))]
    if not finite:
        return "n/a"
    m = statistics.mean(finite)
    sd = statistics.stdev(finite) if len(finite) > 1 else 0.0
    digits = 0 if abs(m) >= 100 else 3
    return f"{m:.{digits}f} ± {sd:.{digits}f}"


def print_seeds(model, seeds, columns, order):
    """The table of one model over several seeds, and each setting paired with "none" of its seed."""
    names = sorted({n for runs in seeds.values() for n in runs}, key=lambda n: order.index(n) if n in order else len(order))
    print(f"\n### {model} ({len(seeds)} seeds: {', '.join(str(s) for s in sorted(seeds))}; mean ± sd)\n")
    print("| control | seeds | " + " | ".join(c[1] for c in columns) + " |")
    print("|---|---|" + "---|" * len(columns))
    for name in names:
        runs = [seeds[s][name] for s in sorted(seeds) if name in seeds[s]]
        print(f"| {name} | {len(runs)} | " + " | ".join(mean_sd([r[k] for r in runs]) for k, _, _ in columns) + " |")
    paired = []
    for name in names:
        if name == "none":
            continue
        changes = [100 * (seeds[s][name]["ppl"] / seeds[s]["none"]["ppl"] - 1) for s in sorted(seeds) if name in seeds[s] and "none" in seeds[s]]
        if changes:
            sd = statistics.stdev(changes) if len(changes) > 1 else 0.0
            helped = sum(1 for c in changes if c < 0)
            paired.append(f"{name} {statistics.mean(changes):+.1f}% ± {sd:.1f} (lower in {helped} of {len(changes)})")
    if paired:
        print("\nPerplexity against no control of the same seed: " + ", ".join(paired))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", help="the sweep's output folder (OUT of chronovisor_sweep.sh)")
    parser.add_argument("--plots", help="write coherence and validation-loss plots here")
    args = parser.parse_args()
    if not os.path.isdir(args.out):
        print(f"chronovisor_report: {args.out}: no such folder (run tools/experiments/chronovisor_sweep.sh first)", file=sys.stderr)
        return 1
    models = sorted(d for d in os.listdir(args.out) if os.path.isdir(os.path.join(args.out, d)))
    if not models:
        print(f"chronovisor_report: {args.out}: no model folders", file=sys.stderr)
        return 1
    by_seed = {}  # model -> seed -> setting -> figures
    for model in models:
        runs = [(0, r) for r in glob.glob(os.path.join(args.out, model, "*", "log.jsonl"))]
        for r in glob.glob(os.path.join(args.out, model, "seed*", "*", "log.jsonl")):
            seed = os.path.basename(os.path.dirname(os.path.dirname(r)))[len("seed"):]
            if seed.isdigit():
                runs.append((int(seed), r))
        for seed, run in sorted(runs):
            name = os.path.basename(os.path.dirname(run))
            try:
                by_seed.setdefault(model, {}).setdefault(seed, {})[name] = analyse(os.path.dirname(run))
            except (OSError, ValueError, KeyError, json.JSONDecodeError) as e:
                print(f"chronovisor_report: skipping {os.path.dirname(run)}: {e}", file=sys.stderr)
    results = {model: seeds[min(seeds)] for model, seeds in by_seed.items()}  # the single-seed tables and the plots
    columns = [("ppl", "held-out ppl", 2), ("cv", "load CV", 3), ("max_min", "max/min load", 1), ("starved", "starved experts", 0),
               ("spikes", "loss spikes", 0), ("grad_sd", "grad-norm sd", 3), ("coherence_end", "coherence", 3),
               ("coh_val_r", "r(coherence, val CE)", 2), ("mi_bits", "I(domain; expert) bits", 3),
               ("hit_reactive", "hit rate LRU", 3), ("hit_lookahead", "hit rate predictive", 3), ("train_s", "train s", 0)]
    order = ["none", "aux_free", "cv_s0.01", "cv_s0.05", "cv_s0.1", "cv_s0.5", "cv_s0.1_p10_40", "cv_s0.1_p3_10"]
    for model, runs in results.items():
        if len(by_seed[model]) > 1:
            print_seeds(model, by_seed[model], columns, order)
            continue
        print(f"\n### {model}\n")
        print("| control | " + " | ".join(c[1] for c in columns) + " |")
        print("|---|" + "---|" * len(columns))
        for name in sorted(runs, key=lambda n: order.index(n) if n in order else len(order)):
            r = runs[name]
            print(f"| {name} | " + " | ".join(fmt(r[k], d) if d else fmt(r[k] if not isinstance(r[k], float) or math.isnan(r[k]) else round(r[k])) for k, _, d in columns) + " |")
        if "none" in runs:
            base = runs["none"]["ppl"]
            print("\nPerplexity against no control: " + ", ".join(f"{n} {100 * (r['ppl'] / base - 1):+.1f}%" for n, r in runs.items() if n != "none"))
    if args.plots:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        os.makedirs(args.plots, exist_ok=True)
        for model, runs in results.items():
            fig, (a, b) = plt.subplots(1, 2, figsize=(12, 4))
            for name in sorted(runs, key=lambda n: order.index(n) if n in order else len(order)):
                curve = runs[name]["curve"]
                a.plot([c[0] for c in curve], [c[1] for c in curve], linewidth=1.0, label=name)
                val = runs[name]["val"]
                b.plot([v[0] for v in val], [v[2] for v in val], marker="o", linewidth=1.0, label=name)
            a.set_title(f"{model}: coherence of the expert load (mean over layers)")
            a.set_xlabel("step")
            b.set_title(f"{model}: held-out cross-entropy at the checkpoints")
            b.set_xlabel("step")
            for ax in (a, b):
                ax.grid(alpha=0.3)
                ax.legend(fontsize=7)
            fig.tight_layout()
            path = os.path.join(args.plots, f"{model}_coherence_val.png")
            fig.savefig(path, dpi=100)
            plt.close(fig)
            print(f"\n(plot: {path})", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())

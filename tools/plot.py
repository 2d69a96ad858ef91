#!/usr/bin/env python3
"""Plots from the JSON that Chronos tools write (matplotlib, Debian's python3-matplotlib).

  tools/plot.py training LOG.jsonl --out DIR
      From a chronos-train --log-jsonl file: DIR/losses.png (every loss term over the steps, one panel
      per stage), DIR/training.png (learning rate, gradient norm, tokens/s, skipped steps) and
      DIR/expert_load.png (each layer's expert load over the steps, as a heatmap).

A malformed line is one error naming the file and line; the exit status is then 1.
"""
import argparse
import json
import math
import os
import sys

# The per-step keys of a training record that are not loss terms.
NOT_LOSSES = {"step", "total_steps", "lr", "grad_norm", "tokens_per_s", "skipped_steps", "stage", "expert_load", "epoch"}


class InputError(Exception):
    pass


def read_log(path):
    records = []
    try:
        with open(path, encoding="utf-8") as f:
            for number, line in enumerate(f, 1):
                if not line.strip():
                    continue
                try:
                    record = json.loads(line)
                except json.JSONDecodeError as e:
                    raise InputError(f"{path}:{number}: invalid JSON ({e.msg} at column {e.colno})")
                if not isinstance(record, dict) or not isinstance(record.get("step"), int):
                    raise InputError(f"{path}:{number}: a training record needs an integer 'step'")
                records.append(record)
    except OSError as e:
        raise InputError(f"{path}: {e.strerror}")
    if not records:
        raise InputError(f"{path}: no training records")
    return records


def finite(value):
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def by_stage(records):
    stages = {}
    for r in records:
        stages.setdefault(r.get("stage", "train"), []).append(r)
    return stages


def plot_losses(plt, records, path):
    stages = by_stage(records)
    fig, axes = plt.subplots(len(stages), 1, figsize=(9, 3.6 * len(stages)), squeeze=False)
    for ax, (stage, rows) in zip(axes[:, 0], stages.items()):
        terms = sorted({k for r in rows for k, v in r.items() if k not in NOT_LOSSES and finite(v)})
        for term in terms:
            points = [(r["step"], r[term]) for r in rows if finite(r.get(term))]
            ax.plot([p[0] for p in points], [p[1] for p in points], label=term, linewidth=1.4 if term == "loss" else 1.0)
        values = [r[t] for r in rows for t in terms if finite(r.get(t))]
        if values and min(values) > 0:
            ax.set_yscale("log")  # the terms differ by orders of magnitude
        ax.set_title(f"{stage}: loss terms")
        ax.set_xlabel("step")
        if terms:
            ax.legend(fontsize=8, ncol=4)
        ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_training(plt, records, path):
    panels = [("lr", "learning rate"), ("grad_norm", "gradient norm"), ("tokens_per_s", "tokens/s"), ("skipped_steps", "skipped steps")]
    fig, axes = plt.subplots(2, 2, figsize=(10, 6))
    for ax, (key, title) in zip(axes.flat, panels):
        points = [(r["step"], r[key]) for r in records if finite(r.get(key))]
        ax.plot([p[0] for p in points], [p[1] for p in points])
        ax.set_title(title)
        ax.set_xlabel("step")
        ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_expert_load(plt, records, path, source):
    rows = [r for r in records if isinstance(r.get("expert_load"), list) and r["expert_load"]]
    if not rows:
        return False
    layers = len(rows[0]["expert_load"])
    for r in rows:
        load = r["expert_load"]
        if len(load) != layers or any(not isinstance(l, list) or len(l) != len(rows[0]["expert_load"][0]) for l in load):
            raise InputError(f"{source}: step {r['step']}: expert_load must be {layers} layers of {len(rows[0]['expert_load'][0])} experts like the first record's")
    cols = min(layers, 4)
    grid = (layers + cols - 1) // cols
    fig, axes = plt.subplots(grid, cols, figsize=(3.6 * cols, 2.8 * grid), squeeze=False)
    steps = [r["step"] for r in rows]
    for l in range(grid * cols):
        ax = axes[l // cols][l % cols]
        if l >= layers:
            ax.axis("off")
            continue
        matrix = [[r["expert_load"][l][e] for r in rows] for e in range(len(rows[0]["expert_load"][l]))]
        image = ax.imshow(matrix, aspect="auto", interpolation="nearest", cmap="viridis",
                          extent=(steps[0], steps[-1], len(matrix) - 0.5, -0.5))
        ax.set_title(f"layer {l}", fontsize=9)
        ax.set_xlabel("step", fontsize=8)
        ax.set_ylabel("expert", fontsize=8)
        fig.colorbar(image, ax=ax, fraction=0.046)
    fig.suptitle("expert load (share of routed slots)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True


def training(args):
    records = read_log(args.log)
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    os.makedirs(args.out, exist_ok=True)
    written = [os.path.join(args.out, "losses.png"), os.path.join(args.out, "training.png")]
    plot_losses(plt, records, written[0])
    plot_training(plt, records, written[1])
    load = os.path.join(args.out, "expert_load.png")
    if plot_expert_load(plt, records, load, args.log):
        written.append(load)
    for path in written:
        print(path)


def main():
    parser = argparse.ArgumentParser(description="Plots from the JSON Chronos tools write.")
    sub = parser.add_subparsers(dest="command", required=True)
    t = sub.add_parser("training", help="loss terms, learning rate, gradient norm, tokens/s and expert load from a --log-jsonl file")
    t.add_argument("log", help="chronos-train --log-jsonl file")
    t.add_argument("--out", required=True, help="folder for the PNG files")
    args = parser.parse_args()
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        # Debian's python3-matplotlib belongs to Debian's interpreter; another python3 first on PATH
        # (pyenv, a virtual environment) does not see it.
        debian = "/usr/bin/python3"
        if os.path.realpath(sys.executable) != os.path.realpath(debian) and os.path.exists(debian):
            os.execv(debian, [debian] + sys.argv)
        print("plot.py: error: matplotlib is missing (apt-get install python3-matplotlib; tools/setup_deps.sh does)", file=sys.stderr)
        return 1
    try:
        training(args)
    except InputError as e:
        print(f"plot.py: error: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

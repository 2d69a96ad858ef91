#!/usr/bin/env python3
"""Plots from the JSON that Chronos tools write (matplotlib, Debian's python3-matplotlib).

  tools/plot.py training LOG.jsonl --out DIR
      From a chronos-train --log-jsonl file: DIR/losses.png (every loss term over the steps, one panel
      per stage), DIR/training.png (learning rate, gradient norm, tokens/s, skipped steps) and
      DIR/expert_load.png (each layer's expert load over the steps, as a heatmap).

  tools/plot.py chronovisor LOG.jsonl --out DIR
      From the tick lines a chronos-train --chronovisor run writes to its --log-jsonl (or
      chronos-generate --chronovisor-log): DIR/coherence.png (each layer's coherence over the ticks,
      with the training loss where the log has it), DIR/lens.png (each layer's lens, one line per
      expert) and DIR/pressure.png (each layer's pressure per expert over the ticks, as a heatmap).

  tools/plot.py compare DIR/compare.json [--out DIR]
      From a chronos-compare result: compare_bars.png (each figure, vanilla beside Chronos),
      kv_bytes.png (KV-cache bytes per token against the context, both models) and
      compare_training.png (each stage's metric over the steps, both models, from the stage logs
      compare.json names). --out defaults to the JSON's folder.

  tools/plot.py tune DIR [--out DIR]
      From a chronos-tune study folder's tune.json: pareto.png (every completed trial, the Pareto
      front, its knee and the --apply-best choice).

A malformed line is one error naming the file and line; the exit status is then 1.
"""
import argparse
import json
import math
import os
import sys

# The per-step keys of a training record that are not loss terms.
NOT_LOSSES = {"step", "total_steps", "lr", "grad_norm", "tokens_per_s", "skipped_steps", "stage", "expert_load", "epoch", "_line"}


class InputError(Exception):
    pass


def is_tick(record):
    return "chronovisor" in record or "aux_free" in record


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
                if isinstance(record, dict) and isinstance(record.get("chronovisor"), dict) and "step" not in record:
                    record["step"] = record["chronovisor"].get("tick")  # a chronos-generate tick line
                if not isinstance(record, dict) or not isinstance(record.get("step"), int):
                    raise InputError(f"{path}:{number}: a training record needs an integer 'step'")
                record["_line"] = number
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
    records = [r for r in read_log(args.log) if not is_tick(r)]
    if not records:
        raise InputError(f"{args.log}: no training records (only router-control ticks)")
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


def number_rows(value, layers, experts):
    return (isinstance(value, list) and len(value) == layers
            and all(isinstance(row, list) and len(row) == experts and all(finite(v) for v in row) for row in value))


def read_ticks(records, source):
    ticks = [r for r in records if isinstance(r.get("chronovisor"), dict)]
    if not ticks:
        raise InputError(f"{source}: no Chronovisor ticks (lines with a 'chronovisor' object)")
    first = ticks[0]["chronovisor"]
    if not isinstance(first.get("lens"), list) or not first["lens"] or not isinstance(first["lens"][0], list):
        raise InputError(f"{source}:{ticks[0]['_line']}: a tick needs 'lens' as a list of layers")
    layers, experts = len(first["lens"]), len(first["lens"][0])
    for r in ticks:
        t = r["chronovisor"]
        c = t.get("coherence")
        if not (isinstance(c, list) and len(c) == layers and all(finite(v) for v in c)):
            raise InputError(f"{source}:{r['_line']}: 'coherence' must be {layers} numbers")
        for key in ("lens", "pressure"):
            if not number_rows(t.get(key), layers, experts):
                raise InputError(f"{source}:{r['_line']}: '{key}' must be {layers} layers of {experts} numbers")
    return ticks, layers, experts


def layer_grid(plt, layers, width=3.8, height=2.8):
    cols = min(layers, 4)
    grid = (layers + cols - 1) // cols
    fig, axes = plt.subplots(grid, cols, figsize=(width * cols, height * grid), squeeze=False)
    for l in range(layers, grid * cols):
        axes[l // cols][l % cols].axis("off")
    return fig, [axes[l // cols][l % cols] for l in range(layers)]


def chronovisor(args):
    records = read_log(args.log)
    ticks, layers, experts = read_ticks(records, args.log)
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    os.makedirs(args.out, exist_ok=True)
    steps = [r["step"] for r in ticks]

    path = os.path.join(args.out, "coherence.png")
    fig, ax = plt.subplots(figsize=(9, 4))
    for l in range(layers):
        ax.plot(steps, [r["chronovisor"]["coherence"][l] for r in ticks], linewidth=1.0, label=f"layer {l}")
    ax.set_xlabel("step")
    ax.set_ylabel("coherence 1 - H(usage)/log E")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, ncol=4, loc="upper left")
    losses = [(r["step"], r["loss"]) for r in records if not is_tick(r) and finite(r.get("loss"))]
    if losses:
        twin = ax.twinx()
        twin.plot([p[0] for p in losses], [p[1] for p in losses], color="black", linewidth=1.6, label="loss")
        twin.set_ylabel("training loss")
        twin.legend(fontsize=7, loc="upper right")
    ax.set_title("Chronovisor: coherence per layer")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    written = [path]

    path = os.path.join(args.out, "lens.png")
    fig, axes = layer_grid(plt, layers)
    for l, ax in enumerate(axes):
        for e in range(experts):
            ax.plot(steps, [r["chronovisor"]["lens"][l][e] for r in ticks], linewidth=0.9)
        ax.axhline(1.0 / experts, color="grey", linestyle=":", linewidth=0.8)
        ax.set_title(f"layer {l}: lens (one line per expert)", fontsize=9)
        ax.set_xlabel("step", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    written.append(path)

    path = os.path.join(args.out, "pressure.png")
    fig, axes = layer_grid(plt, layers)
    for l, ax in enumerate(axes):
        matrix = [[r["chronovisor"]["pressure"][l][e] for r in ticks] for e in range(experts)]
        bound = max(1e-12, max(abs(v) for row in matrix for v in row))
        image = ax.imshow(matrix, aspect="auto", interpolation="nearest", cmap="coolwarm", vmin=-bound, vmax=bound,
                          extent=(steps[0], steps[-1], experts - 0.5, -0.5))
        ax.set_title(f"layer {l}: pressure", fontsize=9)
        ax.set_xlabel("step", fontsize=8)
        ax.set_ylabel("expert", fontsize=8)
        fig.colorbar(image, ax=ax, fraction=0.046)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    written.append(path)
    for p in written:
        print(p)


# The compare figures drawn as bars: (key in each side's object, label, lower is better).
COMPARE_BARS = [
    ("perplexity", "held-out perplexity", True),
    ("decode_tokens_per_s", "resident decode tokens/s", False),
    ("offload_tokens_per_s", "offloaded decode tokens/s", False),
    ("hit_rate", "offloaded hit rate", False),
    ("stall_ms_per_token", "stall ms/token", True),
    ("ssd_mb_per_token", "SSD MB/token", True),
    ("params", "parameters", None),
]
SIDES = [("vanilla", "#8c8c8c"), ("chronos", "#1f77b4")]


def read_json(path):
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except OSError as e:
        raise InputError(f"{path}: {e.strerror}")
    except json.JSONDecodeError as e:
        raise InputError(f"{path}:{e.lineno}: invalid JSON ({e.msg} at column {e.colno})")


def read_compare(path):
    data = read_json(path)
    for side, _ in SIDES:
        if not isinstance(data, dict) or not isinstance(data.get(side), dict):
            raise InputError(f"{path}: not a chronos-compare result (no '{side}' object)")
        kv = data[side].get("kv_bytes_per_token")
        if not isinstance(kv, dict) or not kv or not all(finite(v) for v in kv.values()):
            raise InputError(f"{path}: '{side}.kv_bytes_per_token' must map contexts to numbers")
    return data


def plot_compare_bars(plt, data, path):
    bars = [b for b in COMPARE_BARS if any(finite(data[s].get(b[0])) for s, _ in SIDES)]
    cols = min(4, len(bars))
    rows = (len(bars) + cols - 1) // cols
    fig, axes = plt.subplots(rows, cols, figsize=(3.2 * cols, 2.8 * rows), squeeze=False)
    for ax, (key, label, lower) in zip(axes.flat, bars):
        values = [data[s].get(key) if finite(data[s].get(key)) else 0 for s, _ in SIDES]
        ax.bar([s for s, _ in SIDES], values, color=[c for _, c in SIDES])
        for i, v in enumerate(values):
            ax.annotate(f"{v:.3g}", (i, v), ha="center", va="bottom", fontsize=8)
        note = "" if lower is None else (" (lower is better)" if lower else " (higher is better)")
        ax.set_title(label + note, fontsize=9)
        ax.margins(y=0.15)
    for ax in list(axes.flat)[len(bars):]:
        ax.axis("off")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_kv_bytes(plt, data, path):
    fig, ax = plt.subplots(figsize=(5.5, 3.8))
    for side, color in SIDES:
        points = sorted((int(k), v) for k, v in data[side]["kv_bytes_per_token"].items())
        ax.plot([p[0] for p in points], [p[1] / 1024 for p in points], "o-", color=color, label=side)
    ax.set_xscale("log", base=2)
    ax.set_xlabel("context (tokens)")
    ax.set_ylabel("KV cache KiB per token (float32)")
    ax.set_title("KV-cache bytes per token")
    ax.legend()
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_compare_training(plt, data, folder, path):
    """Each stage's metric over the steps, both sides; False when no stage log can be read."""
    stages = list(data["chronos"].get("stages", {}).keys())
    curves = {}
    for stage in stages:
        for side, _ in SIDES:
            info = data[side].get("stages", {}).get(stage, {})
            log, metric = info.get("log"), info.get("metric")
            if not isinstance(log, str) or not isinstance(metric, str):
                continue
            log = os.path.join(folder, log)  # relative to compare.json's folder
            if not os.path.exists(log):
                continue
            points = [(r["step"], r[metric]) for r in read_log(log) if not is_tick(r) and finite(r.get(metric))]
            if points:
                curves[(stage, side)] = (metric, points)
    if not curves:
        return False
    shown = [s for s in stages if any((s, side) in curves for side, _ in SIDES)]
    fig, axes = plt.subplots(1, len(shown), figsize=(4.5 * len(shown), 3.4), squeeze=False)
    for ax, stage in zip(axes.flat, shown):
        for side, color in SIDES:
            if (stage, side) in curves:
                metric, points = curves[(stage, side)]
                ax.plot([p[0] for p in points], [p[1] for p in points], color=color, label=side)
                ax.set_ylabel(metric)
        ax.set_title(stage)
        ax.set_xlabel("step")
        ax.legend()
        ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True


def compare(args):
    data = read_compare(args.json)
    folder = args.out or os.path.dirname(os.path.abspath(args.json))
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    os.makedirs(folder, exist_ok=True)
    written = [os.path.join(folder, "compare_bars.png"), os.path.join(folder, "kv_bytes.png")]
    plot_compare_bars(plt, data, written[0])
    plot_kv_bytes(plt, data, written[1])
    curves = os.path.join(folder, "compare_training.png")
    if plot_compare_training(plt, data, os.path.dirname(os.path.abspath(args.json)), curves):
        written.append(curves)
    for p in written:
        print(p)


def tune(args):
    path = os.path.join(args.dir, "tune.json")
    data = read_json(path)
    if not isinstance(data, dict) or not isinstance(data.get("trials"), list) or not isinstance(data.get("objectives"), list):
        raise InputError(f"{path}: not a chronos-tune summary (no 'trials' / 'objectives')")
    done = {t["number"]: t["values"] for t in data["trials"]
            if isinstance(t, dict) and t.get("state") == "COMPLETE" and isinstance(t.get("values"), list)
            and len(t["values"]) == 2 and all(finite(v) for v in t["values"])}
    if not done:
        raise InputError(f"{path}: no completed trial to plot")
    failed = sum(1 for t in data["trials"] if isinstance(t, dict) and t.get("state") == "FAIL")
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    folder = args.out or args.dir
    os.makedirs(folder, exist_ok=True)
    fig, ax = plt.subplots(figsize=(6.5, 4.5))
    ax.scatter([v[0] for v in done.values()], [v[1] for v in done.values()], color="#bbbbbb", label="trials")
    front = [n for n in data.get("pareto", []) if n in done]
    if front:
        ax.plot([done[n][0] for n in front], [done[n][1] for n in front], "o-", color="#1f77b4", label="Pareto front")
    # The chosen point under the knee's star, so both show when they are the same trial.
    for key, marker, color, size in (("chosen", "D", "#2ca02c", 260), ("knee", "*", "#d62728", 170)):
        n = data.get(key)
        if n in done:
            ax.scatter([done[n][0]], [done[n][1]], marker=marker, s=size, color=color, zorder=5, label=f"{key} (trial {n})")
    ax.set_xlabel(f"{data['objectives'][0]} ({data.get('directions', ['minimize'])[0]})")
    second = data["objectives"][1] if len(data["objectives"]) > 1 else "objective 2"
    direction = data.get("directions", ["", ""])[1] if len(data.get("directions", [])) > 1 else ""
    ax.set_ylabel(f"{second} ({direction})")
    ax.set_title(f"{len(done)} completed trials, {failed} failed")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    out = os.path.join(folder, "pareto.png")
    fig.savefig(out, dpi=110)
    plt.close(fig)
    print(out)


def main():
    parser = argparse.ArgumentParser(description="Plots from the JSON Chronos tools write.")
    sub = parser.add_subparsers(dest="command", required=True)
    t = sub.add_parser("training", help="loss terms, learning rate, gradient norm, tokens/s and expert load from a --log-jsonl file")
    t.add_argument("log", help="chronos-train --log-jsonl file")
    t.add_argument("--out", required=True, help="folder for the PNG files")
    c = sub.add_parser("chronovisor", help="coherence, lens and pressure from the Chronovisor ticks of a --log-jsonl file")
    c.add_argument("log", help="chronos-train --log-jsonl file of a --chronovisor run (or a chronos-generate --chronovisor-log)")
    c.add_argument("--out", required=True, help="folder for the PNG files")
    k = sub.add_parser("compare", help="bars, KV bytes against context and training curves from a chronos-compare result")
    k.add_argument("json", help="compare.json of chronos-compare")
    k.add_argument("--out", help="folder for the PNG files (default: the JSON's folder)")
    u = sub.add_parser("tune", help="the Pareto front of a chronos-tune study folder (its tune.json)")
    u.add_argument("dir", help="chronos-tune --out folder")
    u.add_argument("--out", help="folder for the PNG file (default: the study folder)")
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
        {"training": training, "chronovisor": chronovisor, "compare": compare, "tune": tune}[args.command](args)
    except InputError as e:
        print(f"plot.py: error: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

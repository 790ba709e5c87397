#!/usr/bin/env python3
"""Rebuilds the tables and plots of docs/experiments.md from the committed outputs of the full protocol.

Reads experiments/results/full/<run>/ (metrics.csv, command.txt, train.log of experiments/full-protocol.sh;
analysis/*.csv of experiments/analyze-full.sh) and rewrites every block of docs/experiments.md between
"<!-- generated:NAME -->" and "<!-- /generated -->". A run or an analysis that is not there yet shows as
"pending"; nothing fails for lack of it. Plots (PNG, in docs/experiments/) are drawn by `cedsl plot`.

  experiments/summarize.py [--cedsl "COMMAND"] [--no-plots] [--check] [--results DIR] [--doc FILE]

--check changes nothing and exits with 1 if docs/experiments.md is not what the committed outputs give.
Standard library only (any Python 3.9+).
"""

import argparse
import csv
import math
import os
import re
import shlex
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PROTOCOL_SCRIPT = ROOT / "experiments" / "full-protocol.sh"
RESULTS = ROOT / "experiments" / "results" / "full"
PRUNING = ROOT / "experiments" / "results" / "pruning"
DOC = ROOT / "docs" / "experiments.md"
PLOTS = ROOT / "docs" / "experiments"

# cedsl train's defaults, which the protocol keeps (docs/cli.md); the epochs and batch come from full-protocol.sh.
LEARNING_RATE, MOMENTUM, TRAINING_IMAGES = 0.1, 0.9, 60_000
PENDING = "pending"
LABELS = {"resnet20": "BN", "se-resnet20": "SE", "ce-resnet20": "CE", "bd-resnet20": "BD", "aii-resnet20": "AII",
          "preresnet29": "PreResNet-29", "sconv-preresnet29": "SConv-PreResNet-29"}
SEEDS = (1, 2, 3)
WEIGHT_DECAYS = (0.0001, 0.001, 0.005)


# ---------------------------------------------------------------- the runs and their outputs

class Run:
    """One run of full-protocol.sh's list, with whatever of its outputs is committed."""

    def __init__(self, name, model, seed, options, epochs, root=None):
        self.name, self.model, self.seed, self.options, self.epochs = name, model, int(seed), options, epochs
        self.dir = (root or RESULTS) / name
        self.metrics = read_csv(self.dir / "metrics.csv")
        self.channels = read_csv(self.dir / "analysis" / "channels.csv")
        self.ablation = self.dir / "analysis" / "ablation.csv"
        self.importance = read_csv(self.dir / "analysis" / "importance.csv")

    @property
    def weight_decay(self):
        match = re.search(r"--weight-decay\s+(\S+)", self.options)
        return float(match.group(1)) if match else 0.0001

    @property
    def done(self):
        return bool(self.metrics) and int(self.metrics[-1]["epoch"]) >= self.epochs

    def final(self, column):
        return float(self.metrics[-1][column])

    @property
    def test_error(self):
        """Percent, after the last epoch."""
        return 100 * (1 - self.final("test_accuracy")) if self.done else None

    @property
    def train_error(self):
        return 100 * (1 - self.final("train_accuracy")) if self.done else None

    @property
    def hours(self):
        return sum(float(row["seconds"]) for row in self.metrics) / 3600 if self.done else None

    def criteria(self):
        """The '(before rectifier)' row of channels.csv: the paper's criteria and the slides' ratios, or None."""
        rows = [row for row in self.channels if row["layer"] == "(before rectifier)"]
        return rows[0] if rows and self.done else None

    def importance_gini(self):
        rows = [row for row in self.importance if row["normalization"] == "(overall)"]
        chains = sum(1 for row in self.importance if row["normalization"] != "(overall)")
        return (float(rows[0]["gini"]), chains) if rows and self.done else None

    def selective_state(self):
        """(released, re-allocated, the final 'selective:' line) from train.log, or None."""
        log = self.dir / "train.log"
        if not self.done or not log.exists():
            return None
        per_epoch, final = {}, None
        for line in log.read_text(encoding="utf-8").splitlines():
            match = re.match(r"selective, after epoch (\d+): released (\d+), re-allocated (\d+) channels", line)
            if match:  # a resumed run may print an epoch again: the last report of each epoch counts
                per_epoch[int(match.group(1))] = (int(match.group(2)), int(match.group(3)))
            elif line.startswith("selective: "):
                final = line[len("selective: "):]
        if final is None:
            return None
        return sum(r for r, _ in per_epoch.values()), sum(c for _, c in per_epoch.values()), final


def read_csv(path):
    if not path.exists():
        return []
    with open(path, newline="", encoding="utf-8") as file:
        return list(csv.DictReader(file))


def protocol():
    """The runs (name, model, seed, options) and the epochs of full-protocol.sh, the one list of runs."""
    text = PROTOCOL_SCRIPT.read_text(encoding="utf-8")
    epochs = int(re.search(r"^EPOCHS=(\d+)$", text, re.M).group(1))
    batch = int(re.search(r'^RECIPE="--epochs \$EPOCHS --batch (\d+)"$', text, re.M).group(1))
    block = re.search(r"^RUNS=\(\n(.*?)^\)$", text, re.M | re.S).group(1)
    runs = []
    for line in block.splitlines():
        match = re.match(r'\s*"(\S+) (\S+) (\d+)\s*(.*)"\s*$', line)
        if match:
            runs.append(Run(match.group(1), match.group(2), match.group(3), match.group(4), epochs))
    return runs, epochs, batch


# ---------------------------------------------------------------- formatting

def number(value, decimals=2):
    return PENDING if value is None else f"{value:.{decimals}f}"


def mean_sd(values, decimals=2):
    if not values:
        return PENDING
    if len(values) == 1:
        return f"{values[0]:.{decimals}f} (1 run)"
    return f"{statistics.mean(values):.{decimals}f} ± {statistics.stdev(values):.{decimals}f}"


def signed(value, decimals=2):
    return PENDING if value is None else f"{value:+.{decimals}f}"


def table(header, rows, align=None):
    """A Markdown table; a '|' inside a cell is escaped."""
    align = align or ["---"] + ["---:"] * (len(header) - 1)

    def line(cells):
        return "| " + " | ".join(str(cell).replace("|", "\\|") for cell in cells) + " |"
    return "\n".join([line(header), "|" + "|".join(align) + "|"] + [line(row) for row in rows])


def percent(row, column, decimals=1):
    return PENDING if row is None or row[column] == "" else f"{100 * float(row[column]):.{decimals}f}"


# ---------------------------------------------------------------- the weight-decay arithmetic

def learning_rates(epochs, steps_per_epoch):
    """The learning rate of every step: cedsl's per-step cosine, evaluated at step / steps per epoch before each step."""
    total = epochs * steps_per_epoch
    return [LEARNING_RATE * (1 + math.cos(math.pi * (t / steps_per_epoch) / epochs)) / 2 for t in range(total)]


def decay_only_factor(rates, weight_decay, momentum):
    """What SGD with momentum (PyTorch's, dampening 0) leaves of a weight whose loss gradient is always 0."""
    theta, buffer = 1.0, None
    for lr in rates:
        step = weight_decay * theta
        buffer = step if buffer is None else momentum * buffer + step
        theta -= lr * buffer
    return theta


def shrink_table(runs, epochs, batch):
    steps = TRAINING_IMAGES // batch  # the loader drops the last partial batch
    rates = learning_rates(epochs, steps)
    checked = check_schedule(runs, epochs, steps)
    lr_sum = sum(rates)
    rows = []
    for wd in WEIGHT_DECAYS:
        rows.append([f"{wd:g}", f"{lr_sum * wd:.4g}", f"{math.exp(-lr_sum * wd):.3g}",
                     f"{math.exp(-lr_sum * wd / (1 - MOMENTUM)):.3g}", f"{decay_only_factor(rates, wd, MOMENTUM):.3g}"])
    note = (f"{epochs} epochs x {steps} steps (batch {batch}, {TRAINING_IMAGES:,} images), learning rate {LEARNING_RATE:g} "
            f"with the per-step cosine schedule, momentum {MOMENTUM:g}: sum of the learning rates {lr_sum:.2f}. {checked}")
    return table(["weight decay", "Σ lr·wd", "exp(−Σ lr·wd) (no momentum)", "exp(−Σ lr·wd/(1−μ))",
                  "decay-only SGD with momentum, exact"], rows) + "\n\n" + note


def check_schedule(runs, epochs, steps):
    """The schedule above against the learning_rate column (the last step of each epoch) of a finished run."""
    for run in runs:
        if run.done:
            rates = learning_rates(epochs, steps)
            worst = max(abs(float(row["learning_rate"]) - rates[int(row["step"]) - 1]) for row in run.metrics)
            if worst > 1e-8:
                raise SystemExit(f"summarize: the schedule computed here differs from {run.name}'s metrics.csv by {worst:g}")
            return f"This schedule gives the learning_rate column of {run.name}/metrics.csv (the last step of each epoch) to 1e-8."
    return "(No finished run yet to check the schedule against.)"


# ---------------------------------------------------------------- the tables

def find(runs, name):
    return next((run for run in runs if run.name == name), None)


def seeds_of(runs, model):
    return [find(runs, f"{model}-s{seed}") for seed in SEEDS]


def runs_table(runs, _epochs, _batch):
    rows = []
    for run in runs:
        options = f"--model {run.model} --seed {run.seed}" + (f" {run.options}" if run.options else "")
        if run.done:
            rows.append([f"[{run.name}](../experiments/results/full/{run.name}/)", f"`{options}`", run.epochs,
                         number(run.test_error), number(run.train_error), number(run.hours, 1),
                         "yes" if run.channels else PENDING])
        else:
            progress = f"{PENDING} ({len(run.metrics)} of {run.epochs} epochs committed)" if run.metrics else PENDING
            rows.append([run.name, f"`{options}`", progress, PENDING, PENDING, PENDING, PENDING])
    return table(["run", "options", "epochs", "test error %", "training error % (last epoch, augmented)", "training hours", "analysed"], rows,
                 ["---", "---", "---:", "---:", "---:", "---:", "---"])


def variants_table(runs, *_):
    rows = []
    for model in ("resnet20", "se-resnet20", "ce-resnet20"):
        errors = [run.test_error for run in seeds_of(runs, model)]
        done = [e for e in errors if e is not None]
        rows.append([f"{model} ({LABELS[model]})", len(done), mean_sd(done)] + [number(e) for e in errors])
    for model in ("bd-resnet20", "aii-resnet20"):
        run = find(runs, f"{model}-s1")
        rows.append([f"{model} ({LABELS[model]})", 1 if run.done else 0, number(run.test_error), number(run.test_error), "-", "-"])
    return table(["model", "seeds done", "test error % (mean ± s.d.)", "seed 1", "seed 2", "seed 3"], rows)


def paired_table(runs, *_):
    rows, differences = [], {"CE": [], "SE": []}
    for seed in SEEDS:
        bn, se, ce = (find(runs, f"{m}-s{seed}").test_error for m in ("resnet20", "se-resnet20", "ce-resnet20"))
        ce_bn = ce - bn if None not in (ce, bn) else None
        se_bn = se - bn if None not in (se, bn) else None
        if ce_bn is not None:
            differences["CE"].append(ce_bn)
        if se_bn is not None:
            differences["SE"].append(se_bn)
        rows.append([seed, number(bn), number(se), number(ce), signed(ce_bn), signed(se_bn)])
    summary = ["mean ± s.d.", "", "", ""]
    for key in ("CE", "SE"):
        values = differences[key]
        if not values:
            summary.append(PENDING)
            continue
        lower = sum(1 for v in values if v < 0)
        spread = f" ± {statistics.stdev(values):.2f}" if len(values) > 1 else ""
        summary.append(f"{statistics.mean(values):+.2f}{spread} (lower in {lower} of {len(values)})")
    rows.append(summary)
    return table(["seed", "BN", "SE", "CE", "CE − BN", "SE − BN"], rows)


def single_seed_table(runs, *_):
    bn = find(runs, "resnet20-s1").test_error
    rows = []
    for model in ("resnet20", "bd-resnet20", "aii-resnet20", "ce-resnet20"):
        error = find(runs, f"{model}-s1").test_error
        rows.append([f"{model} ({LABELS[model]})", number(error), signed(error - bn) if None not in (error, bn) else PENDING])
    return table(["model, seed 1", "test error %", "− BN (seed 1)"], rows)


def weight_decay_runs(runs, model):
    return [(wd, find(runs, f"{model}-s1" if wd == 0.0001 else f"{model}-wd{wd:g}")) for wd in WEIGHT_DECAYS]


def weight_decay_table(runs, *_):
    rows = []
    for (wd, bn), (_, ce) in zip(weight_decay_runs(runs, "resnet20"), weight_decay_runs(runs, "ce-resnet20")):
        row = [f"{wd:g}"]
        for run in (bn, ce):
            criteria = run.criteria()
            row += [number(run.test_error), percent(criteria, "zero_gamma_ratio"), percent(criteria, "sparsity_ratio")]
        rows.append(row)
    return table(["weight decay", "BN test error %", "BN |γ| < 1e-3 %", "BN sparsity %",
                  "CE test error %", "CE |γ| < 1e-3 %", "CE sparsity %"], rows)


def slides_table(runs, *_):
    rows = []
    for (wd, bn), (_, ce) in zip(weight_decay_runs(runs, "resnet20"), weight_decay_runs(runs, "ce-resnet20")):
        row = [f"{wd:g}"]
        for run in (bn, ce):
            criteria = run.criteria()
            row += [percent(criteria, "gamma_below_ratio"), percent(criteria, "beta_nonpositive_ratio"), percent(criteria, "inhibited_ratio")]
        rows.append(row)
    return table(["weight decay", "BN γ < 0.1 %", "BN β ≤ 0 %", "BN both %", "CE γ < 0.1 %", "CE β ≤ 0 %", "CE both %"], rows)


def criteria_table(runs, *_):
    rows = []
    for model in ("resnet20", "se-resnet20", "ce-resnet20", "bd-resnet20", "aii-resnet20"):
        analysed = [run.criteria() for run in runs if run.model == model and re.fullmatch(r"s\d+", run.name[len(model) + 1:])]
        analysed = [c for c in analysed if c is not None]
        def column(name):
            return mean_sd([100 * float(c[name]) for c in analysed], 1)
        rows.append([f"{model} ({LABELS[model]})", len(analysed), column("zero_gamma_ratio"), column("sparsity_ratio"),
                     column("gamma_below_ratio"), column("beta_nonpositive_ratio"), column("inhibited_ratio")])
    return table(["model (weight decay 1e-4)", "runs analysed", "|γ| < 1e-3 %", "sparsity %", "γ < 0.1 %", "β ≤ 0 %", "both %"], rows)


def pooled_ablation(runs, model):
    """ratio -> every accuracy of the model's analysed seeds (seeds x orders), and how many runs."""
    points, count = {}, 0
    for run in seeds_of(runs, model):
        if not (run.done and run.ablation.exists()):
            continue
        count += 1
        for row in read_csv(run.ablation):
            points.setdefault(float(row["ratio"]), []).extend(float(a) for a in row["accuracies"].split(";"))
    return points, count


def ablation_table(runs, *_):
    bn, bn_runs = pooled_ablation(runs, "resnet20")
    ce, ce_runs = pooled_ablation(runs, "ce-resnet20")
    rows = []
    for ratio in sorted(set(bn) | set(ce)) or [PENDING]:
        cells = [ratio if ratio == PENDING else f"{ratio:g}"]
        for points in (bn, ce):
            values = [100 * a for a in points.get(ratio, [])]
            cells.append(f"{mean_sd(values, 1)} (n = {len(values)})" if values else PENDING)
        difference = (statistics.mean(ce[ratio]) - statistics.mean(bn[ratio])) * 100 if ratio in bn and ratio in ce else None
        cells.append(signed(difference, 1))
        rows.append(cells)
    return (table(["ablated ratio", "BN accuracy %", "CE accuracy %", "CE − BN (points)"], rows)
            + f"\n\nPooled over {bn_runs} BN and {ce_runs} CE runs (seeds) with 3 random orders each; n counts the accuracies.")


def importance_table(runs, *_):
    rows = []
    for model in ("resnet20", "ce-resnet20"):
        cells, chains = [], None
        for run in seeds_of(runs, model):
            gini = run.importance_gini()
            cells.append(PENDING if gini is None else f"{gini[0]:.3f}")
            chains = gini[1] if gini else chains
        rows.append([f"{model} ({LABELS[model]})" + (f", {chains} chains" if chains else "")] + cells)
    return table(["mean Gini of the channel importances", "seed 1", "seed 2", "seed 3"], rows)


def selective_table(runs, *_):
    rows = []
    for model in ("preresnet29", "sconv-preresnet29"):
        run = find(runs, f"{model}-s1")
        selective = model.startswith("sconv")
        state = run.selective_state() if selective else None
        missing = "-" if not selective else "not in the log" if run.done else PENDING
        released = f"{state[0]:,} / {state[1]:,}" if state else missing
        final = state[2] if state else missing
        rows.append([model, number(run.test_error), released, final])
    return table(["model, seed 1", "test error %", "channels released / re-allocated", "at the end (cedsl train's last line)"], rows,
                 ["---", "---:", "---:", "---"])


def paired_test(differences):
    """Mean, s.d. and two-sided p of Student's paired t-test (n - 1 degrees of freedom) of per-seed differences."""
    n = len(differences)
    mean, sd = statistics.mean(differences), statistics.stdev(differences)
    if sd == 0:
        return mean, sd, 0.0 if mean != 0 else 1.0
    t, nu = abs(mean) / (sd / math.sqrt(n)), n - 1
    density = math.gamma((nu + 1) / 2) / (math.sqrt(nu * math.pi) * math.gamma(nu / 2))
    steps = 2000  # Simpson's rule over [0, t]
    h = t / steps
    area = sum((1 if i in (0, steps) else 4 if i % 2 else 2) * (1 + (i * h) ** 2 / nu) ** (-(nu + 1) / 2) for i in range(steps + 1)) * h / 3
    return mean, sd, max(0.0, 1 - 2 * density * area)


def paired_claim(runs, better, worse):
    """'better' lowers the test error of 'worse', seed by seed: reproduced if lower on average with p < 0.05."""
    differences = [find(runs, f"{better}-s{seed}").test_error - find(runs, f"{worse}-s{seed}").test_error
                   for seed in SEEDS if None not in (find(runs, f"{better}-s{seed}").test_error, find(runs, f"{worse}-s{seed}").test_error)]
    if len(differences) < len(SEEDS):
        return f"{PENDING} ({len(differences)} of {len(SEEDS)} seed pairs)"
    mean, sd, p = paired_test(differences)
    verdict = "**reproduced**" if mean < 0 and p < 0.05 else "**not shown**"
    return f"{verdict}: {mean:+.2f} ± {sd:.2f} points, lower in {sum(d < 0 for d in differences)} of {len(differences)} seeds, paired t-test p = {p:.2f}"


def claims_table(runs, *_):
    rows = [
        ["CE lowers the test error of the BN network (Table 1: ResNet-18 +1.5 top-1 on ImageNet)",
         "CE − BN per seed (3 seeds): lower on average and paired t-test p < 0.05", paired_claim(runs, "ce-resnet20", "resnet20")],
        ["CE does better than SE (Table 1)", "CE − SE per seed, as above", paired_claim(runs, "ce-resnet20", "se-resnet20")],
    ]
    single = {m: find(runs, f"{m}-s1").test_error for m in ("resnet20", "bd-resnet20", "aii-resnet20", "ce-resnet20")}
    if None in single.values():
        verdict = PENDING
    else:
        bd, aii, ce = (single[m] - single["resnet20"] for m in ("bd-resnet20", "aii-resnet20", "ce-resnet20"))
        same = bd < 0 and aii < 0 and ce < min(bd, aii)
        verdict = (f"{'same direction' if same else '**not the same direction**'} (one seed, not a test): "
                   f"BD {bd:+.2f}, AII {aii:+.2f}, CE {ce:+.2f} points against BN")
    rows.append(["BD and AII alone each help, CE more than either (Table 4: ResNet-50 +0.4, +0.7, +1.7 top-1)",
                 "seed 1: BD − BN < 0, AII − BN < 0, CE − BN below both", verdict])

    bn, bn_runs = pooled_ablation(runs, "resnet20")
    ce, ce_runs = pooled_ablation(runs, "ce-resnet20")
    ratios = [r for r in sorted(set(bn) & set(ce)) if r > 0]
    if not ratios:
        verdict = PENDING
    else:
        higher = sum(statistics.mean(ce[r]) > statistics.mean(bn[r]) for r in ratios)
        so_far = f"CE's mean accuracy higher at {higher} of {len(ratios)} ablated ratios"
        if min(bn_runs, ce_runs) < len(SEEDS):
            # Decided on every seed: one seed's three orders spread by up to 24 points at a ratio.
            verdict = f"{PENDING} ({bn_runs} BN and {ce_runs} CE runs of {len(SEEDS)} analysed; so far {so_far})"
        else:
            verdict = (f"{'**reproduced**' if higher == len(ratios) else '**partly**' if 2 * higher > len(ratios) else '**not shown**'}: "
                       f"{so_far}")
    rows.append(["CE resists cumulative random channel ablation better than BN (Fig. 3a/b, ImageNet)",
                 "mean accuracy (seeds x 3 orders) of CE above BN's at every ablated ratio", verdict])

    criteria = {(m, wd): run.criteria() for m in ("resnet20", "ce-resnet20") for wd, run in weight_decay_runs(runs, m)}
    if None in criteria.values():
        verdict = PENDING
    else:
        zero = {key: 100 * float(c["zero_gamma_ratio"]) for key, c in criteria.items()}
        grows = zero[("resnet20", 0.005)] > zero[("resnet20", 0.0001)]
        lower = all(zero[("ce-resnet20", wd)] < zero[("resnet20", wd)] for wd in WEIGHT_DECAYS[1:])
        verdict = (f"{'same direction' if grows and lower else '**not the same direction**'} (one seed): BN "
                   + " → ".join(f"{zero[('resnet20', wd)]:.1f}" for wd in WEIGHT_DECAYS) + " %, CE "
                   + " → ".join(f"{zero[('ce-resnet20', wd)]:.1f}" for wd in WEIGHT_DECAYS) + " %")
    rows.append(["With a larger weight decay BN has more channels with |γ| < 1e-3, CE fewer than BN (Fig. 3d, VGG on CIFAR-10)",
                 "seed 1 at weight decay 1e-4, 1e-3, 5e-3: BN's share grows, CE's is below BN's at 1e-3 and 5e-3", verdict])

    errors = {(m, wd): run.test_error for m in ("resnet20", "ce-resnet20") for wd, run in weight_decay_runs(runs, m)}
    if None in errors.values():
        verdict = PENDING
    else:
        drop = {m: errors[(m, 0.005)] - errors[(m, 0.0001)] for m in ("resnet20", "ce-resnet20")}
        verdict = (f"{'same direction' if drop['ce-resnet20'] < drop['resnet20'] else '**not the same direction**'} (one seed): "
                   f"error from 1e-4 to 5e-3: BN {drop['resnet20']:+.2f}, CE {drop['ce-resnet20']:+.2f} points")
    rows.append(["BN loses more accuracy than CE as the weight decay grows (Fig. 3c)",
                 "seed 1: error at 5e-3 minus error at 1e-4, CE's below BN's", verdict])

    pairs = [(find(runs, f"ce-resnet20-s{seed}").criteria(), find(runs, f"resnet20-s{seed}").criteria()) for seed in SEEDS]
    pairs = [(c, b) for c, b in pairs if c is not None and b is not None]
    if len(pairs) < len(SEEDS):
        verdict = f"{PENDING} ({len(pairs)} of {len(SEEDS)} seed pairs analysed)"
    else:
        differences = [100 * (float(c["sparsity_ratio"]) - float(b["sparsity_ratio"])) for c, b in pairs]
        mean, sd, p = paired_test(differences)
        verdict = (f"{'**reproduced**' if mean < 0 and p < 0.05 else '**not shown**'}: CE − BN {mean:+.1f} ± {sd:.1f} points, "
                   f"paired t-test p = {p:.2f}")
    rows.append(["CE lowers the sparsity ratio of BN + ReLU (Fig. 1, VGG on CIFAR-10)",
                 "CE − BN per seed of the share of post-ReLU values < 1e-3: lower, p < 0.05", verdict])

    sconv = find(runs, "sconv-preresnet29-s1")
    plain, selective = find(runs, "preresnet29-s1").test_error, sconv.test_error
    verdict = PENDING
    if None not in (plain, selective):
        verdict = (f"{'same direction' if selective < plain else '**not the same direction**'} (one seed): "
                   f"{selective - plain:+.2f} points ({number(plain)} → {number(selective)} %)")
        state = sconv.selective_state()
        if state and state[0] == 0:
            verdict += "; no channel's importance fell below the dealloc threshold, so none was released or re-allocated"
    rows.append(["Selective convolutions lower the error (selective-convolution slides: Fashion-MNIST, ResNet-164 4.53 → 4.37 %)",
                 "seed 1: sconv-preresnet29 − preresnet29 < 0", verdict])
    return table(["claim (where the paper shows it)", "what counts here", "result"], rows, ["---", "---", "---"])


PRUNING_RUNS = (("prune-preresnet29-g0.001", "0.001 (released)"), ("prune-preresnet29-g0.02", "0.02"),
                 ("prune-preresnet29-g0.1", "0.1"), ("sconv-preresnet29-g0.1", "0.1, with re-allocation"))


def pruning_table(*_):
    rows = []
    for name, threshold in PRUNING_RUNS:
        run = Run(name, name.rsplit("-g", 1)[0], 1, "", 4, PRUNING)
        state = run.selective_state()
        if state is None:
            rows.append([name, threshold] + [PENDING] * 7)
            continue
        released, copies, final = state
        match = re.match(r"([\d,]+) of ([\d,]+) input channels open \(([\d.]+) %\); closed channels free ([\d,]+) convolution weights; ([\d.]+) M", final)
        opened, total, share, freed, macs = match.groups() if match else (PENDING,) * 5
        folded = read_text(run.dir / "summary-folded.txt")
        parameters = re.search(r"^Parameters: ([\d,]+)", folded, re.M)
        size = re.search(r"^file: (\d+) bytes", folded, re.M)
        check = re.search(r"largest relative logit difference (\S+), same prediction for ([\d,]+) \(([\d.]+%)\)", read_text(run.dir / "fold.txt"))
        rows.append([name, threshold, number(run.test_error), f"{released:,} / {copies:,}", f"{opened} of {total} ({share} %)", freed, f"{macs} M",
                     f"{parameters.group(1)}, {int(size.group(1)):,} B" if parameters and size else "-",
                     f"{check.group(1)}, same prediction {check.group(3)}" if check else "-"])
    return table(["run", "dealloc threshold", "test error % (2,000 images)", "released / re-allocated", "input channels open",
                  "convolution weights freed", "MACs per image", "folded: parameters, file", "folded vs unfolded: largest relative logit difference"], rows,
                 ["---", "---:", "---:", "---:", "---:", "---:", "---:", "---:", "---"])


def pruning_bench(*_):
    text = read_text(PRUNING / "bench.txt")
    return "```\n" + text.rstrip("\n") + "\n```" if text else f"*(timing {PENDING}: experiments/pruning.sh writes experiments/results/pruning/bench.txt)*"


def read_text(path):
    return path.read_text(encoding="utf-8") if path.exists() else ""


TABLES = {
    "claims": claims_table,
    "runs": runs_table,
    "variants": variants_table,
    "paired": paired_table,
    "single-seed": single_seed_table,
    "weight-decay": weight_decay_table,
    "weight-decay-slides": slides_table,
    "weight-decay-shrink": shrink_table,
    "criteria": criteria_table,
    "ablation": ablation_table,
    "importance": importance_table,
    "selective": selective_table,
    "pruning": pruning_table,
    "pruning-bench": pruning_bench,
}


# ---------------------------------------------------------------- the plots

def plots(runs, cedsl, draw):
    """name -> (PNG path relative to docs/, alt text) of every plot whose data exist; draws them if asked."""
    made = {}
    work = Path(tempfile.mkdtemp(prefix="cedsl-summarize-"))

    def plot(name, alt, args):
        png = PLOTS / f"{name}.png"
        if draw:
            PLOTS.mkdir(parents=True, exist_ok=True)
            subprocess.run(shlex.split(cedsl) + ["plot"] + args + ["--out", str(png)], check=True, stdout=subprocess.DEVNULL)
        if png.exists():
            made[name] = (f"experiments/{name}.png", alt)

    curves = [run for run in runs if run.done and run.model in ("resnet20", "se-resnet20", "ce-resnet20", "bd-resnet20", "aii-resnet20")
              and not run.options]
    if curves:
        dirs = [str(run.dir) for run in curves]
        labels = [LABELS[run.model] for run in curves]
        plot("training-test-error", "Test error per epoch of the ResNet-20 runs",
             ["training", "--run", *dirs, "--label", *labels, "--measure", "test-error", "--title", "Test error per epoch (Fashion-MNIST, 10,000 test images)"])
        plot("training-loss", "Training loss per epoch of the ResNet-20 runs",
             ["training", "--run", *dirs, "--label", *labels, "--measure", "train-loss", "--title", "Training loss per epoch"])

    ablations = [(run, LABELS[run.model]) for model in ("resnet20", "ce-resnet20") for run in seeds_of(runs, model)
                 if run.done and run.ablation.exists()]
    if ablations:
        plot("ablation", "Cumulative random channel ablation, BN and CE (Fig. 3a/b analogue)",
             ["ablation", "--csv", *[str(run.ablation) for run, _ in ablations], "--label", *[label for _, label in ablations]])

    rows = []
    for model in ("resnet20", "ce-resnet20"):
        for wd, run in weight_decay_runs(runs, model):
            criteria = run.criteria()
            if run.done:
                rows.append([LABELS[model], f"{wd:g}", f"{run.test_error:.4f}",
                             "" if criteria is None else f"{100 * float(criteria['zero_gamma_ratio']):.4f}",
                             "" if criteria is None else f"{100 * float(criteria['sparsity_ratio']):.4f}"])
    if rows:
        data = work / "weight-decay.csv"
        data.write_text("model,weight_decay,test_error,zero_gamma,sparsity\n" + "".join(",".join(r) + "\n" for r in rows), encoding="utf-8")
        common = ["lines", "--csv", str(data), "--x", "weight_decay", "--series", "model", "--log-x", "--x-label", "Weight decay"]
        plot("weight-decay-error", "Test error against weight decay, BN and CE (Fig. 3c analogue)",
             common + ["--y", "test_error", "--y-label", "Test error (%)", "--title", "Test error against weight decay"])
        if any(r[3] for r in rows):
            plot("weight-decay-gamma", "Channels with |gamma| < 1e-3 against weight decay, BN and CE (Fig. 3d analogue)",
                 common + ["--y", "zero_gamma", "--y-label", "Channels with |γ| < 1e-3 (%)", "--title", "|γ| < 1e-3 before a ReLU, against weight decay"])
            plot("weight-decay-sparsity", "Sparsity ratio against weight decay, BN and CE",
                 common + ["--y", "sparsity", "--y-label", "Post-ReLU values < 1e-3 (%)", "--title", "Sparsity ratio against weight decay"])
    return made


def figure(made, *names):
    lines = [f"![{made[n][1]}]({made[n][0]})" for n in names if n in made]
    return "\n\n" + ("\n".join(lines) if lines else f"*(plot {PENDING}: no finished run has the data yet)*")


FIGURES = {"variants": ("training-test-error", "training-loss"), "ablation": ("ablation",),
           "weight-decay": ("weight-decay-error", "weight-decay-gamma", "weight-decay-sparsity")}


# ---------------------------------------------------------------- the document

BLOCK = re.compile(r"(<!-- generated:([a-z-]+) -->\n)(.*?)(<!-- /generated -->)", re.S)


def display(path):
    return os.path.relpath(path, Path.cwd())


def render(text, runs, epochs, batch, made):
    seen = set()

    def replace(match):
        name = match.group(2)
        if name not in TABLES:
            raise SystemExit(f"summarize: {display(DOC)} has a block '{name}' that no table of this script fills")
        seen.add(name)
        body = TABLES[name](runs, epochs, batch)
        if name in FIGURES:
            body += figure(made, *FIGURES[name])
        return match.group(1) + body + "\n" + match.group(4)

    result = BLOCK.sub(replace, text)
    missing = set(TABLES) - seen
    if missing:
        raise SystemExit(f"summarize: {display(DOC)} has no block for {', '.join(sorted(missing))}")
    return result


def main():
    global RESULTS, PRUNING, DOC, PLOTS
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cedsl", default=os.environ.get("CEDSL", "dotnet run --project src/CeDsl.Cli -c Release --"),
                        help="the cedsl command line that draws the plots")
    parser.add_argument("--no-plots", action="store_true", help="do not draw the plots (keep the PNGs there are)")
    parser.add_argument("--check", action="store_true", help="change nothing; exit 1 if docs/experiments.md is out of date")
    parser.add_argument("--results", type=Path, default=RESULTS,
                        help="the committed outputs of the full protocol; those of experiments/pruning.sh in pruning/ beside it [default: experiments/results/full]")
    parser.add_argument("--doc", type=Path, default=DOC, help="the document to update; its plots go to experiments/ beside it [default: docs/experiments.md]")
    args = parser.parse_args()
    RESULTS, DOC = args.results.resolve(), args.doc.resolve()
    PRUNING = RESULTS.parent / "pruning"
    PLOTS = DOC.parent / "experiments"

    runs, epochs, batch = protocol()
    made = plots(runs, args.cedsl, draw=not (args.no_plots or args.check))
    old = DOC.read_text(encoding="utf-8")
    new = render(old, runs, epochs, batch, made)
    done = sum(run.done for run in runs)
    if args.check:
        if new != old:
            print(f"summarize: {display(DOC)} is not what the committed outputs give; run experiments/summarize.sh", file=sys.stderr)
            return 1
        print(f"{display(DOC)} is up to date ({done} of {len(runs)} runs done)")
        return 0
    if new != old:
        temporary = DOC.with_suffix(".md.tmp")
        temporary.write_text(new, encoding="utf-8")
        os.replace(temporary, DOC)
    print(f"{display(DOC)}: {len(TABLES)} tables from {done} of {len(runs)} finished runs"
          f" ({sum(bool(run.channels) for run in runs)} analysed), {len(made)} plots")
    return 0


if __name__ == "__main__":
    sys.exit(main())

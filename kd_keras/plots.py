"""Pictures a person would rather look at than read. Each function writes one PNG atomically.

Figures are built with `matplotlib.figure.Figure` rather than pyplot, so plotting
needs no display and leaves no global state behind.

Example:

>>> import os, tempfile
>>> from kd_keras.data import generate_wafer_maps
>>> data = generate_wafer_maps(76, seed=0)
>>> out = os.path.join(tempfile.mkdtemp(), "grid.png")
>>> plot_pattern_grid(data.maps, data.pattern_ids, out, maps_per_pattern=2)
>>> os.path.getsize(out) > 0
True
"""

import math

import matplotlib
import numpy as np
from matplotlib.figure import Figure

from kd_keras.data.labels import NUM_PATTERNS, PATTERN_NAMES, flags_name
from kd_keras.fileio import atomic_path

# Off-wafer white, good dies pale green, failed dies dark red: readable in print too.
WAFER_COLORS = matplotlib.colors.ListedColormap(["#ffffff", "#cfe8cf", "#b2182b"])


def _save(figure, out_path):
    with atomic_path(out_path) as tmp:
        figure.savefig(tmp, format="png", dpi=100, bbox_inches="tight")


def plot_pattern_grid(maps, pattern_ids, out_path, maps_per_pattern=3, seed=0, title=None, beside=None):
    """A grid with one panel per pattern present, each showing up to `maps_per_pattern` sample maps.

    `beside`: (maps, pattern_ids) of a second set (e.g. synthetic maps next to real ones), whose
    maps of the same pattern are drawn to the right of the first set's, after a wider gap."""
    maps, pattern_ids = np.asarray(maps), np.asarray(pattern_ids)
    if len(maps) != len(pattern_ids) or len(maps) == 0:
        raise ValueError(f"need one pattern id per map and at least one map, got {len(maps)} and {len(pattern_ids)}")
    rng = np.random.default_rng(seed)
    present = [p for p in range(NUM_PATTERNS) if (pattern_ids == p).any()]
    per_panel = maps_per_pattern * (2 if beside is not None else 1)
    columns = max(1, min(len(present), 24 // (per_panel + 1)))
    rows = math.ceil(len(present) / columns)
    figure = Figure(figsize=(columns * 1.1 * per_panel, rows * 1.35))
    axes = figure.subplots(rows, columns, squeeze=False)
    gap = np.full((maps.shape[1], 2), np.nan)

    def strip(sample_maps, sample_ids, pattern_id):
        members = np.flatnonzero(sample_ids == pattern_id)
        chosen = rng.choice(members, min(maps_per_pattern, len(members)), replace=False)
        return np.hstack([np.hstack([sample_maps[i].astype(float), gap]) for i in chosen])[:, :-2], len(members)

    for ax in axes.ravel():
        ax.axis("off")
    for ax, pattern_id in zip(axes.ravel(), present):
        drawn, count = strip(maps, pattern_ids, pattern_id)
        if beside is not None and (np.asarray(beside[1]) == pattern_id).any():
            drawn = np.hstack([drawn, np.full((maps.shape[1], 8), np.nan),
                               strip(np.asarray(beside[0]), np.asarray(beside[1]), pattern_id)[0]])
        ax.imshow(drawn, cmap=WAFER_COLORS, vmin=0, vmax=2, interpolation="nearest")
        ax.set_title(f"{PATTERN_NAMES[pattern_id]} ({count})", fontsize=8)
    figure.suptitle(title or f"{len(maps)} wafer maps, {len(present)} patterns (red: failed dies)")
    _save(figure, out_path)


def plot_training_curves(history_csv, out_path, title="training"):
    """Loss and exact-match accuracy per epoch, training and validation, from a CSVLogger file."""
    history = np.genfromtxt(history_csv, delimiter=",", names=True)
    history = np.atleast_1d(history)
    epochs = history["epoch"] + 1
    figure = Figure(figsize=(10, 3.6))
    loss_ax, accuracy_ax = figure.subplots(1, 2)
    for ax, key, label in ((loss_ax, "loss", "loss"), (accuracy_ax, "exact_match", "exact-match accuracy")):
        ax.plot(epochs, history[key], marker="o", label="train")
        if f"val_{key}" in history.dtype.names:
            ax.plot(epochs, history[f"val_{key}"], marker="o", label="validation")
        ax.set_xlabel("epoch")
        ax.set_ylabel(label)
        ax.grid(alpha=0.3)
        ax.legend()
    figure.suptitle(title)
    _save(figure, out_path)


def plot_validation_curves(groups, out_path, title="validation exact match by epoch"):
    """Validation exact match by epoch, in percent: {group: {run: [value of each epoch]}};
    a group's runs (e.g. one recipe's seeds) share a colour, each with its own line style."""
    runs = [values for group in groups.values() for values in group.values()]
    if not runs or not all(len(values) for values in runs):
        raise ValueError("need at least one run, each with at least one epoch")
    figure = Figure(figsize=(8, 4.5))
    ax = figure.subplots()
    for color, (group, group_runs) in zip(matplotlib.colormaps["tab10"].colors, groups.items()):
        for style, (run, values) in zip(["-", "--", ":", "-."] * len(group_runs), group_runs.items()):
            ax.plot(np.arange(1, len(values) + 1), 100 * np.asarray(values, float), style, color=color, marker="o",
                    markersize=3, label=f"{group}, {run}")
    ax.set_xlabel("epoch")
    ax.set_ylabel("validation exact match (%)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    ax.set_title(title, fontsize=10)
    _save(figure, out_path)


def plot_confusion(confusion, out_path, title="confusion (rows: true pattern)"):
    """A 38 x 39 confusion matrix (last column: predictions that are none of the 38), row-normalized."""
    confusion = np.asarray(confusion, float)
    rates = confusion / np.maximum(confusion.sum(axis=1, keepdims=True), 1)
    figure = Figure(figsize=(13, 12))
    ax = figure.subplots()
    image = ax.imshow(rates, cmap="Blues", vmin=0, vmax=1)
    names = list(PATTERN_NAMES)
    ax.set_xticks(range(confusion.shape[1]), names + ["invalid"][: confusion.shape[1] - len(names)],
                  rotation=90, fontsize=7)
    ax.set_yticks(range(len(names)), names, fontsize=7)
    ax.set_xlabel("predicted pattern")
    ax.set_ylabel("true pattern")
    for (row, column), count in np.ndenumerate(confusion):
        if count:
            ax.text(column, row, int(count), ha="center", va="center", fontsize=5,
                    color="white" if rates[row, column] > 0.5 else "black")
    figure.colorbar(image, ax=ax, fraction=0.04, label="share of the true pattern's maps")
    ax.set_title(title)
    _save(figure, out_path)


def plot_pattern_counts(pattern_ids, out_path, title="maps per pattern"):
    """A bar per pattern (all 38, in codec order): how many maps it has."""
    counts = np.bincount(np.asarray(pattern_ids), minlength=NUM_PATTERNS)
    figure = Figure(figsize=(12, 3.8))
    ax = figure.subplots()
    ax.bar(range(NUM_PATTERNS), counts, color="#4575b4")
    ax.set_xticks(range(NUM_PATTERNS), PATTERN_NAMES, rotation=90, fontsize=8)
    ax.set_ylabel("maps")
    ax.set_title(f"{title} ({counts.sum():,} maps)")
    ax.grid(axis="y", alpha=0.3)
    _save(figure, out_path)


def plot_accuracy_vs_flash(points, out_path, budgets=None, title="exact-match accuracy against flash"):
    """Accuracy against model size, log-scaled, with the flash budgets as vertical lines.

    `points`: dicts with "label", "bytes", "accuracy" (0-1) and "group" (one marker and
    colour per group, e.g. "ours, int8 in TFLite Micro" or "paper, float32 file").
    `budgets`: {"21 KB": 21504, ...}."""
    if not points:
        raise ValueError("no points to plot")
    figure = Figure(figsize=(8, 5))
    ax = figure.subplots()
    markers = "os^Dv"
    for index, group in enumerate(dict.fromkeys(point["group"] for point in points)):
        members = [point for point in points if point["group"] == group]
        ax.scatter([p["bytes"] for p in members], [100 * p["accuracy"] for p in members], s=60,
                   marker=markers[index % len(markers)], label=group, zorder=3)
        # Alternate groups label above-left and below-right, so neighbouring points of
        # different groups (ours next to a paper's, at the same budget) do not overwrite each other.
        left = index % 2 == 0
        for point in members:
            ax.annotate(point["label"], (point["bytes"], 100 * point["accuracy"]), fontsize=8,
                        xytext=(-6, 4) if left else (6, -10), textcoords="offset points",
                        ha="right" if left else "left")
    for name, size in (budgets or {}).items():
        ax.axvline(size, color="grey", linestyle="--", linewidth=1)
        ax.text(size, 0.02, f" {name} budget", transform=ax.get_xaxis_transform(), rotation=90,
                fontsize=8, color="grey", va="bottom")
    ax.set_xscale("log")
    ax.set_xlabel("model bytes (log scale)")
    ax.set_ylabel("exact-match accuracy (%)")
    ax.grid(alpha=0.3)
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.13), ncol=2, fontsize=8)  # clear of points and lines
    ax.set_title(title)
    _save(figure, out_path)


def plot_per_pattern_accuracy(per_pattern, out_path, title="accuracy per pattern"):
    """A pattern x model grid of exact-match accuracy; `per_pattern` is {model: {pattern name: 0-1}}.

    Patterns absent from a model's data are left blank."""
    models = list(per_pattern)
    if not models:
        raise ValueError("no models to plot")
    grid = np.full((NUM_PATTERNS, len(models)), np.nan)
    for column, model in enumerate(models):
        for pattern, accuracy in per_pattern[model].items():
            grid[PATTERN_NAMES.index(pattern), column] = 100 * accuracy
    figure = Figure(figsize=(2.2 + 1.6 * len(models), 11))
    ax = figure.subplots()
    image = ax.imshow(grid, cmap="RdYlGn", vmin=0, vmax=100, aspect="auto")
    ax.set_xticks(range(len(models)), models, rotation=20, fontsize=8)
    ax.set_yticks(range(NUM_PATTERNS), PATTERN_NAMES, fontsize=8)
    for (row, column), value in np.ndenumerate(grid):
        if not np.isnan(value):
            ax.text(column, row, f"{value:.0f}", ha="center", va="center", fontsize=7)
    figure.colorbar(image, ax=ax, fraction=0.05, label="exact-match accuracy (%)")
    ax.set_title(title)
    _save(figure, out_path)


def plot_mistakes(maps, true_flags, predicted_flags, out_path, columns=6, title="mistakes", captions=None):
    """Each map with its true and predicted defects ('C+EL', or any other combination), or with
    its line of `captions` instead."""
    maps = np.asarray(maps)
    if len(maps) == 0 or not len(maps) == len(true_flags) == len(predicted_flags):
        raise ValueError(f"need at least one map and one true and predicted label row per map, got "
                         f"{len(maps)}, {len(true_flags)} and {len(predicted_flags)}")
    rows = math.ceil(len(maps) / columns)
    figure = Figure(figsize=(2 * columns, 2.3 * rows))
    axes = np.atleast_1d(figure.subplots(rows, columns)).ravel()
    for ax in axes:
        ax.axis("off")
    if captions is None:
        captions = [f"true {flags_name(truth)}\nread {flags_name(prediction)}"
                    for truth, prediction in zip(true_flags, predicted_flags)]
    for ax, wafer_map, caption in zip(axes, maps, captions):
        ax.imshow(wafer_map, cmap=WAFER_COLORS, vmin=0, vmax=2, interpolation="nearest")
        ax.set_title(caption, fontsize=8)
    figure.suptitle(title)
    _save(figure, out_path)


def plot_masks(maps, true_masks, predicted_masks, titles, out_path, title="defect masks"):
    """One row per map: the map, its true mask, the predicted mask (`titles`: one caption per map)."""
    maps = np.asarray(maps)
    if len(maps) == 0 or not len(maps) == len(true_masks) == len(predicted_masks) == len(titles):
        raise ValueError(f"need at least one map and one true mask, predicted mask and title per map, got "
                         f"{len(maps)}, {len(true_masks)}, {len(predicted_masks)} and {len(titles)}")
    figure = Figure(figsize=(6.6, 2.2 * len(maps)), layout="constrained")
    axes = np.atleast_2d(figure.subplots(len(maps), 3))
    for row, wafer_map, truth, prediction, caption in zip(axes, maps, true_masks, predicted_masks, titles):
        row[0].imshow(wafer_map, cmap=WAFER_COLORS, vmin=0, vmax=2, interpolation="nearest")
        row[0].set_title(caption, fontsize=8)
        for ax, mask, name in ((row[1], truth, "true mask"), (row[2], prediction, "predicted mask")):
            ax.imshow(mask, cmap="Reds", vmin=0, vmax=1, interpolation="nearest")
            ax.set_title(name, fontsize=8)
        for ax in row:
            ax.axis("off")
    figure.suptitle(title)
    _save(figure, out_path)

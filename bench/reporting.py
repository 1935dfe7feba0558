"""Formatting shared by the benchmark scripts: intervals as text and curves as PNG plots."""

from __future__ import annotations

from pathlib import Path


def interval_text(mean: float, lo: float, hi: float, *, signed: bool = False) -> str:
    """``0.0512 [0.0441, 0.0589]``; ``signed`` for differences: ``+0.0064 [+0.0034, +0.0096]``"""
    spec = "+.4f" if signed else ".4f"
    return f"{mean:{spec}} [{lo:{spec}}, {hi:{spec}}]"


def save_curves_plot(
    curves: dict[str, list[tuple[float, float]]],
    path: Path,
    *,
    title: str,
    ylabel: str,
    hline: float | None = None,
    boundaries: dict[str, list[float]] | None = None,
) -> None:
    """One line per run (x = seconds, y = value); dotted verticals mark each run's stage boundaries."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 4.5), dpi=110)
    for name, points in curves.items():
        if not points:
            continue
        xs, ys = zip(*points, strict=True)
        (line,) = ax.plot(xs, ys, marker=".", label=name)
        for x in (boundaries or {}).get(name, []):
            ax.axvline(x, color=line.get_color(), linestyle=":", linewidth=1)
    if hline is not None:
        ax.axhline(hline, color="grey", linestyle="--", linewidth=1, label="target")
    ax.set_xlabel("wall time (s)")
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)

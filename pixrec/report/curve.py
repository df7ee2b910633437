"""The training curve as PNG bytes (matplotlib, Agg): loss and validation NDCG@10 by epoch."""

from __future__ import annotations

import io
from collections.abc import Mapping


def training_curve_png(history: list[Mapping], best_epoch: int | None = None) -> bytes | None:
    """Two panels, the kept epoch marked; None when there is no history to draw.

    PNG metadata carries no date or version, so the same history gives the same bytes.
    """
    rows = [r for r in history if isinstance(r.get("epoch"), int | float)]
    if not rows:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    epochs = [r["epoch"] for r in rows]
    fig, (ax_loss, ax_ndcg) = plt.subplots(1, 2, figsize=(9, 3.2), dpi=100)
    try:
        for ax, key, label, colour in (
            (ax_loss, "loss", "training loss", "tab:blue"),
            (ax_ndcg, "val_ndcg@10", "validation NDCG@10 (full ranking)", "tab:green"),
        ):
            pts = [(e, r[key]) for e, r in zip(epochs, rows, strict=True)
                   if isinstance(r.get(key), int | float)]
            if pts:
                ax.plot(*zip(*pts, strict=True), marker="o", color=colour)
            if best_epoch is not None:
                ax.axvline(best_epoch, color="grey", linestyle="--", linewidth=1, label="kept epoch")
                ax.legend(loc="best", fontsize=8)
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))
            ax.set_xlabel("epoch")
            ax.set_title(label, fontsize=10)
            ax.grid(alpha=0.3)
        fig.tight_layout()
        buf = io.BytesIO()
        fig.savefig(buf, format="png", metadata={"Software": None})
        return buf.getvalue()
    finally:
        plt.close(fig)

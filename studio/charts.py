"""Plotly figure adjustments and tables the pages share (the figures themselves are arlib.viz)."""

from __future__ import annotations

SCALAR_KEYS = ["epoch", "train_loss", "train_top1", "val_loss", "val_top1", "val_top5", "val_mean_class_accuracy",
               "lr", "seconds", "clips_skipped"]


def legend_below(fig, height: int = 380):
    """For charts in narrow columns: the legend under the plot instead of eating its width."""
    fig.update_layout(height=height, legend=dict(orientation="h", yanchor="top", y=-0.28, x=0, xanchor="left"),
                      margin=dict(l=10, r=10, t=40, b=10))
    return fig


def epoch_axis(fig, rows_by_run: dict):
    """viz.metric_curves ticks every epoch; past 8 epochs let plotly choose fewer ticks."""
    longest = max((len(rows) for rows in rows_by_run.values()), default=0)
    if longest > 8:
        fig.update_xaxes(dtick=None, nticks=8)
    return fig


def epoch_table(rows: list[dict], run: str | None = None) -> list[dict]:
    out = []
    for r in rows:
        row = {"run": run} if run else {}
        row.update({k: r.get(k) for k in SCALAR_KEYS})
        out.append(row)
    return out

"""Plotly figure adjustments and tables the pages share (the figures themselves are arlib.viz)."""

from __future__ import annotations

SCALAR_KEYS = ["epoch", "train_loss", "train_top1", "val_loss", "val_top1", "val_top5", "val_mean_class_accuracy",
               "test_top1", "val_attention_on_action", "lr", "seconds", "clips_skipped"]


def localisation_note(rows: list[dict]) -> str | None:
    """What val_attention_on_action means, under a chart that shows it (runs trained with background)."""
    shares = [r["val_action_share"] for r in rows if r.get("val_action_share") is not None]
    if not shares:
        return None
    return (f"val_attention_on_action: the share of the attention that falls on the action in validation clips "
            f"spliced between held-out background footage; uniform attention would give {shares[-1]:.0%}.")


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


def best_epoch(run, rows: list[dict]) -> int | None:
    """The epoch checkpoints/best holds (its metadata), else the trainer's rule applied to the metrics rows:
    highest validation top-1, ties to the lower validation loss, then the earlier epoch."""
    from arlib.errors import ArlibError

    from .resources import checkpoint_meta

    best = run.checkpoint("best")
    if best.exists():
        try:
            epoch = checkpoint_meta(best).get("epoch")
            if epoch is not None:
                return int(epoch)
        except ArlibError:
            pass
    scored = [r for r in rows if r.get("val_top1") is not None]
    if not scored:
        return None
    top = max(scored, key=lambda r: (r["val_top1"], -(r.get("val_loss") or 0.0), -int(r["epoch"])))
    return int(top["epoch"])

"""Short texts the pages show: percentages, durations, state badges, why a backbone is unavailable."""

from __future__ import annotations

# `arlib train --preset demo` on the demo data, 2-core reference machine, idle, backbone in ONNX Runtime:
# 21 s from a cold feature cache (encoding the demo clips' frames is most of it), 7.5 s warm.
DEMO_TIME = "about 20 seconds the first time (most of it encoding frames), under 10 seconds once its features are cached"


def probability(p) -> str:
    """A model's confidence with one decimal: 99.6 % must not read as 100 %."""
    return "–" if p is None else f"{p:.1%}"


def pct(x) -> str:
    return "–" if x is None else f"{x:.1%}"


def format_seconds(seconds) -> str:
    """Short enough for a metric tile: '45 s', '3m 20s', '29 min', '2h 05m'."""
    seconds = max(0, int(round(float(seconds))))
    if seconds < 90:
        return f"{seconds} s"
    if seconds < 600:
        return f"{seconds // 60}m {seconds % 60:02d}s"
    if seconds < 3600:
        return f"{round(seconds / 60)} min"
    return f"{seconds // 3600}h {seconds % 3600 // 60:02d}m"


def state_badge(state: str) -> str:
    colour = {"finished": "green", "training": "blue", "features": "blue", "evaluating": "blue", "starting": "blue",
              "stopped": "orange", "failed": "red", "died": "red"}.get(state, "gray")
    return f":{colour}-badge[{state}]"


def unavailable_backbones() -> list[str]:
    """One markdown line per reason: the backbones that cannot run here, grouped by why."""
    from arlib.backbones import availability

    by_reason: dict[str, list[str]] = {}
    for name, reason in availability().items():
        if reason is not None:
            by_reason.setdefault(reason, []).append(name)
    return [f"{', '.join(f'**{n}**' for n in names)}: {reason}" for reason, names in by_reason.items()]

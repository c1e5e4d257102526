"""Checkpoints shipped inside the package (arlib/assets/), found without a path wherever arlib is installed."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

# name -> (file, what it is)
SHIPPED = {
    "ucf9-mini": ("ucf9-mini.safetensors", "UCF-101, the thesis's 9 classes, trained on ucf101-mini"),
    "demo": ("demo.safetensors", "demo twins (8 synthetic classes)"),
}


def shipped_checkpoint(name: str = "ucf9-mini") -> Path:
    """Path of a shipped checkpoint ('ucf9-mini' or 'demo'); the file may be absent in a stripped install."""
    if name not in SHIPPED:
        raise KeyError(f"no shipped checkpoint '{name}'; known: {', '.join(SHIPPED)}")
    # A regular (non-zipped) install or checkout: the package folder is a real directory.
    return Path(str(resources.files("arlib") / "assets" / SHIPPED[name][0]))


def shipped_checkpoints() -> dict[str, Path]:
    """Every shipped checkpoint that is present: name -> path."""
    return {name: path for name in SHIPPED if (path := shipped_checkpoint(name)).is_file()}

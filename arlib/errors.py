"""Errors that carry one clear sentence for the user (what was wrong, which file, what to do)."""


class ArlibError(Exception):
    """Base class: str(error) is a single sentence fit to show in the UI or the CLI."""

    def __init__(self, *args):
        # One line even when a file name holds a line break: escape it, so the name stays recognisable.
        if len(args) == 1 and isinstance(args[0], str):
            args = (args[0].replace("\r", "\\r").replace("\n", "\\n"),)
        super().__init__(*args)


class VideoError(ArlibError):
    """A clip could not be opened or decoded."""


class DatasetError(ArlibError):
    """A dataset folder, split file or class selection is unusable."""


class CheckpointError(ArlibError):
    """A checkpoint is missing, corrupt, unsafe or does not fit."""


class BackboneError(ArlibError):
    """A backbone is unknown or its weights/packages are not installed."""

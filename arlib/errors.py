"""Errors that carry one clear sentence for the user (what was wrong, which file, what to do)."""


class ArlibError(Exception):
    """Base class: str(error) is a single sentence fit to show in the UI or the CLI."""


class VideoError(ArlibError):
    """A clip could not be opened or decoded."""


class DatasetError(ArlibError):
    """A dataset folder, split file or class selection is unusable."""


class CheckpointError(ArlibError):
    """A checkpoint is missing, corrupt, unsafe or does not fit."""


class BackboneError(ArlibError):
    """A backbone is unknown or its weights/packages are not installed."""

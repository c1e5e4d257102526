"""arlib: action recognition with a frozen per-frame CNN, a BiLSTM and temporal attention."""

__version__ = "0.1.0"

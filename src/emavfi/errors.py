"""Errors that are the user's to fix: the CLI prints them as one line and exits with code 2."""

import pickle


class EmavfiError(Exception):
    """A user's mistake (bad path, bad option, unreadable file): one clear line, no traceback."""


# What ``torch.load(path, weights_only=True)`` raises on a damaged, truncated or foreign file:
# UnpicklingError (not a pickle, or one holding more than tensors), RuntimeError (a broken zip
# archive), EOFError (truncated), KeyError / ValueError (another format), IndexError (garbage the
# weights-only unpickler reads past its stack: about one random file in twelve), OSError
# (unreadable).
# Readers of a user's file catch exactly these (plus SafetensorError for .safetensors) and raise
# an EmavfiError; anything else is a bug and keeps its traceback.
TORCH_LOAD_ERRORS = (
    pickle.UnpicklingError,
    RuntimeError,
    EOFError,
    KeyError,
    ValueError,
    IndexError,
    OSError,
)

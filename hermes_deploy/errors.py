"""Error types.

Every error a user can cause derives from :class:`HermesError`; the CLI prints its
message as one line and exits non-zero. Messages say what was expected, what was
received, and how to fix it.
"""

from __future__ import annotations


class HermesError(Exception):
    """Base class of all user-facing errors of hermes-deploy."""


class ConfigError(HermesError):
    """A model configuration or preset is invalid."""


class CheckpointError(HermesError):
    """A checkpoint cannot be read, is unsafe, or does not match the model."""


class InputError(HermesError):
    """An input (image, tensor, file) is unusable."""


class MissingDependencyError(HermesError):
    """An optional package is not installed."""

    def __init__(self, package: str, extra: str, purpose: str) -> None:
        super().__init__(
            f"{purpose} needs the optional package '{package}', which is not installed; "
            f"install it with: pip install 'hermes-deploy[{extra}]'"
        )
        self.package = package
        self.extra = extra

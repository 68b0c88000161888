"""Every error type of hermes-deploy, in one place.

Every error a user can cause derives from :class:`HermesError`; the CLI prints its
message as one line and exits non-zero. Messages say what was expected, what was
received, and how to fix it. One subclass per phase (after Polygraphy's single
exception root); the modules that raise them re-export their names, so
``from hermes_deploy.engines.trt.manifest import EngineMismatchError`` keeps working.
"""

from __future__ import annotations


class HermesError(Exception):
    """Base class of all user-facing errors of hermes-deploy."""


# -- inputs and configuration ---------------------------------------------------------

class ConfigError(HermesError):
    """A model configuration or preset is invalid."""


class CheckpointError(HermesError):
    """A checkpoint cannot be read, is unsafe, or does not match the model."""


class InputError(HermesError):
    """An input (image, tensor, file, option) is unusable."""


class InvalidImageError(InputError, ValueError):
    """An image argument has the wrong shape, dtype or value range.

    Derives from ``ValueError`` for plain-Python callers and from :class:`InputError`
    so the CLI reports it as a user error.
    """


class InvalidArgumentError(InputError, ValueError):
    """An argument of a library call has an invalid value (a scale, a kernel size, a
    fidelity choice the model cannot take). A ``ValueError`` too, for Python callers."""


class OutputError(HermesError):
    """An output cannot be written (folder not writable, disk full)."""


class MissingDependencyError(HermesError):
    """An optional package is not installed (see :func:`hermes_deploy.optional.require`)."""

    def __init__(self, package: str, extra: str, purpose: str) -> None:
        # extra "" marks a core dependency: the install is incomplete, not a choice
        kind, fix = (("optional package", f"pip install 'hermes-deploy[{extra}]'") if extra
                     else ("package", f"pip install '{package}'"))
        super().__init__(f"{purpose} needs the {kind} '{package}', which is not installed; "
                         f"install it with: {fix}")
        self.package = package
        self.extra = extra


# -- export and precision passes -------------------------------------------------------

class ExportError(HermesError):
    """Export or graph processing failed."""


class PrecisionError(HermesError):
    """A precision pass (FP16 islands) cannot run on the given model or inputs."""


class QuantizationError(HermesError):
    """INT8 calibration or Q/DQ insertion failed."""


# -- engines -------------------------------------------------------------------------

class EngineBuildError(HermesError):
    """An ONNX model cannot be parsed or compiled into an engine."""


class EngineMismatchError(HermesError):
    """An engine does not fit the running TensorRT, GPU or its ONNX: rebuild it."""


class PluginUnavailableError(HermesError):
    """The requested TensorRT cannot take the HERMES plugins."""


class KernelCompileError(HermesError):
    """A plugin kernel cannot be compiled into PTX that TensorRT can launch."""


# -- scale-out -------------------------------------------------------------------------

class ServingError(HermesError):
    """A model server (a local tritonserver) cannot start, or stopped answering."""

"""The errors edgewatch raises, shared by the trainer, the runtime and the tools.

::

    EdgewatchError                 exit 1 unless a subclass says otherwise
    ├── InputError                 exit 2: the user gave us something we cannot use
    │   ├── ConfigError            a flag, config file or environment value
    │   ├── DataError              a data file: column, cell, row count
    │   └── BundleError            a bundle that is not one, or fails verification
    │       └── ModelIncompatibleError  a model whose tensors disagree with its manifest
    ├── ModelError                 a detector used before it is ready
    │   └── NotFittedError
    ├── MissingDependencyError     an optional extra is not installed
    └── TransportError             serial port or broker trouble at run time
        ├── SerialPortError
        └── BrokerUnavailableError

Messages follow one recipe: what failed, the offending value (``!r``), what was
expected, and what to do next -- on one line, because the CLI prints exactly
that line and exits with ``exit_code``. The firmware bridge is stdlib-only and
keeps its own small error types; its CLI maps them the same way.
"""

from __future__ import annotations

__all__ = [
    "EdgewatchError",
    "InputError",
    "ConfigError",
    "DataError",
    "BundleError",
    "ModelIncompatibleError",
    "ModelError",
    "NotFittedError",
    "MissingDependencyError",
    "TransportError",
    "SerialPortError",
    "BrokerUnavailableError",
    "require",
]


class EdgewatchError(Exception):
    """Base class of every error edgewatch raises on purpose."""

    exit_code = 1


class InputError(EdgewatchError):
    """Bad input from the user: exit code 2, like a click usage error."""

    exit_code = 2


class ConfigError(InputError):
    """A flag, config-file or environment value is invalid."""


class DataError(InputError):
    """A data file cannot be used (missing column, non-numeric cell, too short...)."""


class BundleError(InputError):
    """A file is not a valid edgewatch bundle, or a member fails verification."""


class ModelIncompatibleError(BundleError):
    """A model's tensors disagree with what the manifest promises."""


class ModelError(EdgewatchError):
    """A detector or scorer is used in a state that does not allow it."""


class NotFittedError(ModelError):
    """A detector method was called before ``fit``."""


class MissingDependencyError(EdgewatchError):
    """An optional extra is needed but not installed."""


class TransportError(EdgewatchError):
    """Trouble with the serial line or the MQTT broker."""


class SerialPortError(TransportError):
    """The serial port cannot be opened or went away."""


class BrokerUnavailableError(TransportError):
    """The MQTT broker cannot be reached."""


def require(module: str, extra: str):  # noqa: ANN201 - returns a module
    """Import ``module`` or raise :class:`MissingDependencyError` naming the pip extra.

    Heavy imports happen here, inside the functions that need them, so that
    ``edgewatch --help`` and the gateway commands stay light.
    """
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as err:
        raise MissingDependencyError(
            f"{module!r} is not installed; this command needs the {extra!r} extra: "
            f"pip install 'edgewatch[{extra}]'"
        ) from err

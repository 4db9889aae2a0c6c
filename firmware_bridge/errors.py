"""The firmware bridge's own errors (it is stdlib-only, so it cannot share
``edge_runtime.errors``; its CLI maps these to exit codes the same way).

::

    BridgeError
    ├── FrameEncodeError    a local mistake while *building* a frame (ValueError)
    ├── SourceError         a data source that cannot be used (file, column, value)
    └── PortError           a serial port or pseudo-terminal that cannot be opened

Wire garbage is never an exception: decoders report it as ``DecodeError`` events.
"""

from __future__ import annotations

__all__ = ["BridgeError", "FrameEncodeError", "SourceError", "PortError"]


class BridgeError(Exception):
    """Base class of the errors the firmware bridge raises on purpose."""


class FrameEncodeError(BridgeError, ValueError):
    """The caller asked the encoder for a frame the protocol cannot carry."""


class SourceError(BridgeError, ValueError):
    """A data source for the simulator cannot be used as given."""


class PortError(BridgeError, OSError):
    """A serial port or pseudo-terminal cannot be opened or written."""

"""Serial frame protocol, decoder, C reference firmware and sensor simulator.

Standard library only: this package must import on a bare Python (pyserial is
imported lazily by ``serial_reader``, click only by ``cli``). The protocol's
public names live in :mod:`firmware_bridge.protocol` and are re-exported here.
"""

from __future__ import annotations

from firmware_bridge.protocol import *  # noqa: F403 - re-export the protocol's __all__
from firmware_bridge.protocol import __all__ as _protocol_all

__all__ = list(_protocol_all)

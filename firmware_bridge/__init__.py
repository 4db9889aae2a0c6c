"""Serial frame protocol, decoder, C reference firmware and sensor simulator.

Standard library only: this package must import on a bare Python.
"""

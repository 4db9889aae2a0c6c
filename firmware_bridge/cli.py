"""``edgewatch simulate``, ``edgewatch capture`` and ``edgewatch synth``.

Import-light: click at module level (the root CLI already has it), pyserial
only inside ``capture``. Bad input is one ``Error: ...`` line with exit code 2.
"""

from __future__ import annotations

import json
import os
import sys
import threading
import time

import click

from firmware_bridge.errors import PortError, SourceError
from firmware_bridge.synthetic import FAULTS

__all__ = ["simulate", "capture", "synth"]

_FORMATS = {"int16": 1, "float32": 2, "float64": 3}


def _positive_rate(ctx: click.Context, param: click.Parameter, value: float | None) -> float | None:
    if value is not None and not value > 0:
        raise click.BadParameter(f"{value!r} is not a positive rate; give the sample rate in Hz, e.g. --rate 1000", ctx, param)
    return value


@click.command()
@click.option("--source", default="synthetic", show_default=True, metavar="synthetic|PATH.csv|cmapss:PATH",
              help="What to play: synthetic vibration, a CSV file (header row), or C-MAPSS text.")
@click.option("--rate", type=float, callback=_positive_rate, help="Sample rate in Hz (default: 1000 synthetic, 10 cmapss, CSV time column).")
@click.option("--mode", type=click.Choice(["binary", "text"]), default="binary", show_default=True)
@click.option("--format", "sample_format", type=click.Choice(sorted(_FORMATS)),
              help="Binary sample format (default: float32 for files, int16 for synthetic).")
@click.option("--fault", type=click.Choice(FAULTS), help="Machine fault in synthetic data.")
@click.option("--fault-start", type=click.FloatRange(0, 1), default=0.6, show_default=True)
@click.option("--seconds", type=click.FloatRange(min=0, min_open=True), default=60.0, show_default=True,
              help="Length of synthetic data.")
@click.option("--columns", help="Comma-separated CSV columns to play (default: all but time/label).")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--bit-error-rate", type=click.FloatRange(0, 1, max_open=True), default=0.0, show_default=True)
@click.option("--drop-rate", type=click.FloatRange(0, 1, max_open=True), default=0.0, show_default=True)
@click.option("--disconnect-every", type=click.FloatRange(min=0, min_open=True), help="Seconds between board resets.")
@click.option("--disconnect-for", type=click.FloatRange(min=0), default=0.5, show_default=True)
@click.option("--port", type=click.Path(), help="Write to this existing device instead of a new pseudo-terminal.")
@click.option("--link", type=click.Path(), help="Keep a symlink at this path to the current pseudo-terminal.")
@click.option("--fast", is_flag=True, help="Write as fast as the reader takes data instead of in real time.")
@click.option("--loop", is_flag=True, help="Replay the source until interrupted.")
@click.option("--samples-per-frame", type=click.IntRange(1, 65535))
@click.option("--fault-log", type=click.Path(dir_okay=False), help="Write injected faults as JSON lines here.")
@click.option("--device-id", default="sim-1", show_default=True)
def simulate(source: str, rate: float | None, mode: str, sample_format: str | None, fault: str | None,
             fault_start: float, seconds: float, columns: str | None, seed: int, bit_error_rate: float,
             drop_rate: float, disconnect_every: float | None, disconnect_for: float, port: str | None,
             link: str | None, fast: bool, loop: bool, samples_per_frame: int | None, fault_log: str | None,
             device_id: str) -> None:
    """Play sensor data into a pseudo-terminal (its path is printed first) or a serial port."""
    from firmware_bridge.simulator import LineFaults, Simulator
    from firmware_bridge.sources import load_source

    try:
        src = load_source(source, rate_hz=rate, seconds=seconds, fault=fault, fault_start=fault_start, seed=seed,
                          columns=columns.split(",") if columns else None)
    except SourceError as err:
        raise click.BadParameter(str(err), param_hint="--source") from err
    faults = LineFaults(bit_error_rate, drop_rate, disconnect_every, disconnect_for)
    try:
        sim = Simulator(src, mode=mode, sample_format=_FORMATS.get(sample_format or ""), samples_per_frame=samples_per_frame,
                        faults=faults, realtime=not fast, port=port, link=link, fault_log=fault_log, seed=seed,
                        device_id=device_id, loop=loop)
    except PortError as err:
        raise click.BadParameter(str(err), param_hint="--port") from err
    with sim:
        click.echo(sim.port_path)
        sys.stdout.flush()
        sim.start()
        try:
            while not sim.done.wait(0.5):
                pass
        except KeyboardInterrupt:
            sim.stop()
    click.echo(json.dumps(sim.truth), err=True)


@click.command()
@click.option("--serial", "port", metavar="PORT", help="Device path or pyserial URL to record.")
@click.option("--out", type=click.Path(dir_okay=False), help="Capture file to write.")
@click.option("--baud", type=click.IntRange(min=1), default=921600, show_default=True)
@click.option("--seconds", type=click.FloatRange(min=0, min_open=True), help="Stop after this long (default: until Ctrl-C).")
@click.option("--wait", is_flag=True, help="If the port does not exist yet, keep retrying instead of failing.")
@click.option("--replay", "replay_path", type=click.Path(dir_okay=False), help="Decode a capture and print its counters instead.")
def capture(port: str | None, out: str | None, baud: int, seconds: float | None, wait: bool, replay_path: str | None) -> None:
    """Record raw serial bytes with host timestamps (or --replay a capture through the decoder)."""
    from firmware_bridge import capture as cap

    if replay_path is not None:
        if port or out:
            raise click.UsageError("--replay decodes an existing capture; do not combine it with --serial/--out")
        if not os.path.isfile(replay_path):
            raise click.BadParameter(f"{replay_path!r} does not exist; give a file written by 'edgewatch capture'", param_hint="--replay")
        try:
            _, stats = cap.replay(replay_path)
        except ValueError as err:
            raise click.BadParameter(str(err), param_hint="--replay") from err
        click.echo(json.dumps(stats.as_dict()))
        return
    if not port or not out:
        raise click.UsageError("give --serial PORT and --out FILE (or --replay FILE)")
    if "://" not in port and not os.path.exists(port) and not wait:
        raise click.BadParameter(f"serial port {port!r} does not exist; check the device path or pass --wait to retry until it appears",
                                 param_hint="--serial")
    try:
        import serial  # noqa: F401 - fail early with the extra to install
    except ImportError as err:
        raise click.ClickException("pyserial is not installed; this command needs the 'edge' extra: pip install 'edgewatch[edge]'") from err
    from firmware_bridge.serial_reader import SerialReader

    writer = cap.CaptureWriter(out, {"port": port, "baud": baud})
    reader = SerialReader(
        port, lambda data: writer.write(data), baudrate=baud,
        on_connect=lambda url: click.echo(f"capturing {url} -> {out}", err=True),
        on_disconnect=lambda url, msg: click.echo(msg, err=True),
    )
    stop = threading.Event()
    reader.start()
    deadline = None if seconds is None else time.monotonic() + seconds
    try:
        while not stop.wait(0.2):
            writer.flush()
            if deadline is not None and time.monotonic() >= deadline:
                break
    except KeyboardInterrupt:
        pass
    finally:
        reader.stop()
        writer.close()
    click.echo(f"wrote {writer.bytes_written} bytes in {writer.records} records to {out}", err=True)


@click.command()
@click.option("--seconds", type=click.FloatRange(min=0, min_open=True), required=True)
@click.option("--rate", type=float, default=1000.0, show_default=True, callback=_positive_rate)
@click.option("--fault", type=click.Choice(FAULTS))
@click.option("--fault-start", type=click.FloatRange(0, 1), default=0.6, show_default=True)
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--out", type=click.Path(dir_okay=False), required=True)
def synth(seconds: float, rate: float, fault: str | None, fault_start: float, seed: int, out: str) -> None:
    """Write synthetic rotating-machine vibration data to CSV."""
    from firmware_bridge.synthetic import generate, write_csv

    directory = os.path.dirname(os.path.abspath(out))
    if not os.path.isdir(directory):
        raise click.BadParameter(f"directory {directory!r} does not exist; create it first", param_hint="--out")
    try:
        series = generate(seconds, rate, fault, fault_start, seed)
    except ValueError as err:
        raise click.BadParameter(str(err)) from err
    write_csv(series, out)
    click.echo(f"wrote {len(series.rows)} rows to {out}", err=True)

"""``edgewatch run``: the gateway process. Import-light: heavy modules load inside the command."""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path

import click

__all__ = ["run", "setup_logging"]

# syslog priorities, which journald reads from a "<N>" line prefix on stderr.
_PRIORITY = {logging.DEBUG: 7, logging.INFO: 6, logging.WARNING: 4, logging.ERROR: 3, logging.CRITICAL: 2}


class _JournalFormatter(logging.Formatter):
    """``<6>edge_runtime: message`` under systemd (``$JOURNAL_STREAM``), timestamped otherwise."""

    def __init__(self, journal: bool) -> None:
        super().__init__("%(name)s: %(message)s" if journal else "%(asctime)s %(levelname)s %(name)s: %(message)s")
        self.journal = journal

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record).replace("\n", " | ")
        return f"<{_PRIORITY.get(record.levelno, 6)}>{text}" if self.journal else text


def setup_logging(level: str = "info") -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_JournalFormatter(bool(os.environ.get("JOURNAL_STREAM"))))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(getattr(logging, level.upper()))
    logging.getLogger("edge_runtime.paho").setLevel(logging.WARNING)


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--bundle", type=click.Path(path_type=Path, dir_okay=False), help="Model bundle (.ewb).")
@click.option("--serial", "serial_url", metavar="PORT", help="Serial port path or pyserial URL (socket://, spy://).")
@click.option("--replay", type=click.Path(path_type=Path, dir_okay=False), metavar="CAPTURE_OR_CSV",
              help="Drive the pipeline from a serial capture or CSV instead of a port, as fast as possible.")
@click.option("--baud", type=int, help="Serial baud rate [115200].")
@click.option("--mqtt", "mqtt_url", metavar="URL", help="Broker: mqtt://host:port or mqtts://host:port.")
@click.option("--device-id", help="Device id; the default topic prefix is edgewatch/<device-id>/.")
@click.option("--config", "config_file", type=click.Path(path_type=Path, dir_okay=False), help="TOML config file.")
@click.option("--state-dir", type=click.Path(path_type=Path, file_okay=False), help="Event queue and runtime state.")
@click.option("--delegate", help="auto|cpu|xnnpack|edgetpu|gpu[:LIBRARY] (CPU fallback) [auto].")
@click.option("--topic-prefix", help="Topic prefix ending in '/' [edgewatch/<device-id>/].")
@click.option("--mqtt-username", help="MQTT user name (the password comes from a file or $EDGEWATCH_MQTT_PASSWORD).")
@click.option("--mqtt-password-file", type=click.Path(path_type=Path, dir_okay=False), help="File holding the MQTT password.")
@click.option("--tls-ca", type=click.Path(path_type=Path, dir_okay=False), help="CA certificate (PEM) for mqtts://.")
@click.option("--tls-cert", type=click.Path(path_type=Path, dir_okay=False), help="Client certificate (PEM).")
@click.option("--tls-key", type=click.Path(path_type=Path, dir_okay=False), help="Client key (PEM); passphrase in "
              "$EDGEWATCH_TLS_KEY_PASSWORD or tls.key_password_file.")
@click.option("--metrics-interval", type=float, help="Seconds between metrics messages [10].")
@click.option("--summary", type=click.Path(path_type=Path, dir_okay=False), help="Write final counters as JSON on exit.")
@click.option("--log-level", type=click.Choice(["debug", "info", "warning", "error"]), default="info", show_default=True)
def run(bundle: Path | None, serial_url: str | None, replay: Path | None, baud: int | None, mqtt_url: str | None,
        device_id: str | None, config_file: Path | None, state_dir: Path | None, delegate: str | None,
        topic_prefix: str | None, mqtt_username: str | None, mqtt_password_file: Path | None, tls_ca: Path | None,
        tls_cert: Path | None, tls_key: Path | None, metrics_interval: float | None, summary: Path | None,
        log_level: str) -> None:
    """Run the gateway pipeline: serial -> model -> alarms -> MQTT.

    Configuration merges, in increasing priority, --config FILE (TOML),
    EDGEWATCH_* environment variables and these flags; see
    edge_runtime/config.py and edge_runtime/EVENTS.md.
    """
    from edge_runtime.config import load_config

    flags = {
        "bundle": str(bundle) if bundle else None, "serial.url": serial_url, "replay": str(replay) if replay else None,
        "serial.baud": baud, "mqtt.url": mqtt_url, "device_id": device_id, "state_dir": str(state_dir) if state_dir else None,
        "delegate": delegate, "mqtt.topic_prefix": topic_prefix, "mqtt.username": mqtt_username,
        "mqtt.password_file": str(mqtt_password_file) if mqtt_password_file else None,
        "tls.ca_file": str(tls_ca) if tls_ca else None, "tls.cert_file": str(tls_cert) if tls_cert else None,
        "tls.key_file": str(tls_key) if tls_key else None, "mqtt.metrics_interval_s": metrics_interval,
        "summary_file": str(summary) if summary else None,
    }
    cfg = load_config(config_file, flags)
    setup_logging(log_level)
    from edge_runtime.app import Runtime

    code = Runtime(cfg).run()
    if code:
        sys.exit(code)

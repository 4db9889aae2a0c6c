"""Runtime configuration: defaults < TOML file < ``EDGEWATCH_*`` environment < flags.

Everything is validated once, at start, into a frozen :class:`RuntimeConfig`;
a bad value raises :class:`~edge_runtime.errors.ConfigError` with one line that
names the key, the value and what is expected.

TOML layout (every key optional except where the command needs it)::

    bundle = "/opt/edgewatch/pump3.ewb"
    device_id = "pump3"
    state_dir = "/var/lib/edgewatch/pump3"     # outbox + runtime state
    delegate = "auto"                          # auto|cpu|xnnpack|edgetpu|gpu[:LIB]

    [serial]    url = "/dev/ttyUSB0"; baud = 115200; mode = "auto"
    [mqtt]      url = "mqtts://broker:8883"; username = "edge"; password_file = "/etc/edgewatch/pw"
                topic_prefix = "plant1/area2/pump3/edgewatch/"; keepalive = 30
                metrics_interval_s = 10; scores_every = 0
    [tls]       ca_file = ...; cert_file = ...; key_file = ...; key_password_file = ...
    [alarm]     k = 3; n = 5; m = 5; deadband = 0.05; ema_alpha = 0.0
                flood_limit = 10; flood_window_s = 600; top_channels = 3
    [queue]     max_events = 10000
    [security]  bundle_public_key = "/etc/edgewatch/bundle.pub"    # refuse unsigned/tampered bundles
                command_public_key = "/etc/edgewatch/operator.pub" # require signed remote commands

Environment variables are ``EDGEWATCH_<SECTION>_<KEY>`` (``EDGEWATCH_MQTT_URL``,
``EDGEWATCH_ALARM_K``) or ``EDGEWATCH_<KEY>`` for top-level keys. Secrets
(``EDGEWATCH_MQTT_PASSWORD``, ``EDGEWATCH_TLS_KEY_PASSWORD``) come from the
environment or from a ``*_file``; there is deliberately no flag for them.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from edge_runtime.errors import ConfigError

__all__ = ["RuntimeConfig", "AlarmSettings", "load_config", "ENV_PREFIX"]

ENV_PREFIX = "EDGEWATCH_"
_DEVICE_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$")
_DELEGATES = ("auto", "cpu", "xnnpack", "edgetpu", "gpu")


@dataclass(frozen=True)
class AlarmSettings:
    """ISA-18.2 style alarm parameters (see :mod:`edge_runtime.alarms`)."""

    k: int = 3                       # raise when k of the last n windows exceed the threshold
    n: int = 5
    m: int = 5                       # clear after m consecutive windows below threshold*(1-deadband)
    deadband: float = 0.05
    ema_alpha: float = 0.0           # 0 disables score smoothing
    flood_limit: int = 10            # raised events per flood window, the rest are counted
    flood_window_s: float = 600.0
    top_channels: int = 3


@dataclass(frozen=True)
class RuntimeConfig:
    """Everything ``edgewatch run`` needs, validated."""

    bundle: Path
    device_id: str
    mqtt_url: str
    serial_url: str | None = None
    replay: Path | None = None
    baud: int = 115200
    serial_mode: str = "auto"
    state_dir: Path | None = None
    delegate: str = "auto"
    num_threads: int = 1
    topic_prefix: str = ""
    mqtt_username: str | None = None
    mqtt_password: str | None = field(default=None, repr=False)
    mqtt_client_id: str | None = None
    keepalive: int = 30
    reconnect_min_s: float = 0.5
    reconnect_max_s: float = 30.0
    tls_ca_file: Path | None = None
    tls_cert_file: Path | None = None
    tls_key_file: Path | None = None
    tls_key_password: str | None = field(default=None, repr=False)
    metrics_interval_s: float = 10.0
    scores_every: int = 0
    queue_max_events: int = 10000
    alarm: AlarmSettings = AlarmSettings()
    summary_file: Path | None = None   # final counters as JSON on exit (tests, benchmark)
    bundle_public_key: Path | None = None    # refuse bundles not signed by this Ed25519 key
    command_public_key: Path | None = None   # require remote commands signed by this key

    # ------------------------------------------------------------ derived
    @property
    def mqtt_host(self) -> str:
        return urlsplit(self.mqtt_url).hostname or "localhost"

    @property
    def mqtt_port(self) -> int:
        parts = urlsplit(self.mqtt_url)
        return parts.port or (8883 if parts.scheme == "mqtts" else 1883)

    @property
    def mqtt_tls(self) -> bool:
        return urlsplit(self.mqtt_url).scheme == "mqtts"

    @property
    def prefix(self) -> str:
        return self.topic_prefix or f"edgewatch/{self.device_id}/"

    def topic(self, leaf: str) -> str:
        return self.prefix + leaf


# --------------------------------------------------------------- the table
# (toml path, field name, parser). Parsers take (name, raw value) and raise ConfigError.
def _str(name: str, v: Any) -> str:
    if not isinstance(v, str) or not v:
        raise ConfigError(f"{name} must be a non-empty string (got {v!r})")
    return v


def _path(name: str, v: Any) -> Path:
    return Path(os.path.expanduser(_str(name, v)))


def _int(lo: int, hi: int | None = None) -> Callable[[str, Any], int]:
    def parse(name: str, v: Any) -> int:
        try:
            n = int(v) if not isinstance(v, bool) and str(v).strip().lstrip("-").isdigit() else None
        except (TypeError, ValueError):
            n = None
        if n is None or n < lo or (hi is not None and n > hi):
            rng = f">= {lo}" if hi is None else f"between {lo} and {hi}"
            raise ConfigError(f"{name} must be an integer {rng} (got {v!r})")
        return n
    return parse


def _float(lo: float, hi: float | None = None, *, lo_open: bool = False) -> Callable[[str, Any], float]:
    def parse(name: str, v: Any) -> float:
        try:
            x = float(v) if not isinstance(v, bool) else float("nan")
        except (TypeError, ValueError):
            x = float("nan")
        bad = not (x == x) or x < lo or (lo_open and x == lo) or (hi is not None and x > hi)
        if bad:
            rng = f"{'>' if lo_open else '>='} {lo}" + ("" if hi is None else f" and <= {hi}")
            raise ConfigError(f"{name} must be a number {rng} (got {v!r})")
        return x
    return parse


def _choice(*options: str) -> Callable[[str, Any], str]:
    def parse(name: str, v: Any) -> str:
        if v not in options:
            raise ConfigError(f"{name} must be one of {', '.join(options)} (got {v!r})")
        return str(v)
    return parse


def _secret_file(name: str, v: Any) -> str:
    path = _path(name, v)
    try:
        return path.read_text().strip()
    except OSError as err:
        raise ConfigError(f"{name}: cannot read {str(path)!r} ({err.strerror}); point it at a readable file holding only the secret") from err


_KEYS: list[tuple[str, str, Callable[[str, Any], Any]]] = [
    ("bundle", "bundle", _path),
    ("device_id", "device_id", _str),
    ("state_dir", "state_dir", _path),
    ("delegate", "delegate", _str),
    ("num_threads", "num_threads", _int(1, 64)),
    ("replay", "replay", _path),
    ("summary_file", "summary_file", _path),
    ("serial.url", "serial_url", _str),
    ("serial.baud", "baud", _int(50, 10_000_000)),
    ("serial.mode", "serial_mode", _choice("auto", "binary", "text")),
    ("mqtt.url", "mqtt_url", _str),
    ("mqtt.username", "mqtt_username", _str),
    ("mqtt.password_file", "mqtt_password", _secret_file),
    ("mqtt.client_id", "mqtt_client_id", _str),
    ("mqtt.topic_prefix", "topic_prefix", _str),
    ("mqtt.keepalive", "keepalive", _int(5, 3600)),
    ("mqtt.reconnect_min_s", "reconnect_min_s", _float(0.0, lo_open=True)),
    ("mqtt.reconnect_max_s", "reconnect_max_s", _float(0.0, lo_open=True)),
    ("mqtt.metrics_interval_s", "metrics_interval_s", _float(0.0, lo_open=True)),
    ("mqtt.scores_every", "scores_every", _int(0)),
    ("tls.ca_file", "tls_ca_file", _path),
    ("tls.cert_file", "tls_cert_file", _path),
    ("tls.key_file", "tls_key_file", _path),
    ("tls.key_password_file", "tls_key_password", _secret_file),
    ("queue.max_events", "queue_max_events", _int(1)),
    ("alarm.k", "alarm.k", _int(1)),
    ("alarm.n", "alarm.n", _int(1)),
    ("alarm.m", "alarm.m", _int(1)),
    ("alarm.deadband", "alarm.deadband", _float(0.0, 0.99)),
    ("alarm.ema_alpha", "alarm.ema_alpha", _float(0.0, 1.0)),
    ("alarm.flood_limit", "alarm.flood_limit", _int(1)),
    ("alarm.flood_window_s", "alarm.flood_window_s", _float(0.0, lo_open=True)),
    ("alarm.top_channels", "alarm.top_channels", _int(1)),
    ("security.bundle_public_key", "bundle_public_key", _path),
    ("security.command_public_key", "command_public_key", _path),
]
#: The ``edgewatch run`` flag of each key, so messages name what the user typed.
_FLAGS = {"bundle": "--bundle", "device_id": "--device-id", "state_dir": "--state-dir", "delegate": "--delegate",
          "replay": "--replay", "summary_file": "--summary", "serial.url": "--serial", "serial.baud": "--baud",
          "mqtt.url": "--mqtt", "mqtt.username": "--mqtt-username", "mqtt.password_file": "--mqtt-password-file",
          "mqtt.topic_prefix": "--topic-prefix", "mqtt.metrics_interval_s": "--metrics-interval",
          "tls.ca_file": "--tls-ca", "tls.cert_file": "--tls-cert", "tls.key_file": "--tls-key"}
_SECRETS_ENV = {"mqtt_password": "EDGEWATCH_MQTT_PASSWORD", "tls_key_password": "EDGEWATCH_TLS_KEY_PASSWORD"}


def _env_name(key: str) -> str:
    return ENV_PREFIX + key.replace(".", "_").upper()


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        import tomllib  # Python >= 3.11
    except ImportError:  # pragma: no cover - Python 3.10
        from edge_runtime.errors import require

        tomllib = require("tomli", "edge")
    try:
        with open(path, "rb") as fh:
            return tomllib.load(fh)
    except OSError as err:
        raise ConfigError(f"--config {str(path)!r}: cannot read it ({err.strerror}); pass an existing TOML file") from err
    except tomllib.TOMLDecodeError as err:
        raise ConfigError(f"--config {str(path)!r} is not valid TOML ({err}); fix the file") from err


def _flatten(doc: Mapping[str, Any], where: str) -> dict[str, Any]:
    known = {k for k, _, _ in _KEYS} | {"mqtt.password", "tls.key_password"}
    flat: dict[str, Any] = {}
    for key, value in doc.items():
        if isinstance(value, dict):
            for sub, v in value.items():
                flat[f"{key}.{sub}"] = v
        else:
            flat[key] = value
    for key in flat:
        if key in ("mqtt.password", "tls.key_password"):
            raise ConfigError(
                f"{where}: {key!r} is not read from the config file; put the secret in a file named by "
                f"'{key}_file' or in ${_SECRETS_ENV['mqtt_password' if key.startswith('mqtt') else 'tls_key_password']}"
            )
        if key not in known:
            raise ConfigError(f"{where}: unknown key {key!r}; known keys: {', '.join(sorted(k for k, _, _ in _KEYS))}")
    return flat


def load_config(config_file: Path | None = None, flags: Mapping[str, Any] | None = None,
                env: Mapping[str, str] | None = None) -> RuntimeConfig:
    """Merge and validate. ``flags`` uses the TOML key names (``"mqtt.url"``); ``None`` values are ignored."""
    env = os.environ if env is None else env
    raw: dict[str, tuple[str, Any]] = {}   # toml key -> (where it came from, value)
    if config_file is not None:
        for key, value in _flatten(_read_toml(config_file), f"--config {str(config_file)!r}").items():
            raw[key] = (f"{config_file}: {key}", value)
    for key, _, _ in _KEYS:
        name = _env_name(key)
        if name in env:
            raw[key] = (f"${name}", env[name])
    for key, value in (flags or {}).items():
        if value is not None:
            raw[key] = (_FLAGS.get(key, key), value)

    values: dict[str, Any] = {}
    alarm: dict[str, Any] = {}
    for key, fname, parse in _KEYS:
        if key not in raw:
            continue
        where, value = raw[key]
        parsed = parse(where if where.startswith(("$", "--")) else key, value)
        if fname.startswith("alarm."):
            alarm[fname[6:]] = parsed
        else:
            values[fname] = parsed
    for fname, var in _SECRETS_ENV.items():
        if fname not in values and env.get(var):
            values[fname] = env[var]
    values["alarm"] = AlarmSettings(**alarm)
    for required, hint in (("bundle", "--bundle BUNDLE"), ("device_id", "--device-id ID"), ("mqtt_url", "--mqtt mqtt://host:port")):
        if required not in values:
            raise ConfigError(f"{hint} is required (or set it in --config or ${_env_name(required.replace('mqtt_url', 'mqtt.url'))})")
    return _validate(RuntimeConfig(**values))


def _validate(cfg: RuntimeConfig) -> RuntimeConfig:
    if not _DEVICE_ID.match(cfg.device_id):
        raise ConfigError(
            f"device id {cfg.device_id!r} is invalid; use 1-64 letters, digits, '_', '-', '.', ':' "
            "(no '/', '+', '#' or spaces: it becomes an MQTT topic level)"
        )
    parts = urlsplit(cfg.mqtt_url)
    try:
        port = parts.port
    except ValueError:
        port = -1
    if parts.scheme not in ("mqtt", "mqtts") or not parts.hostname or port == -1 or parts.path not in ("", "/"):
        raise ConfigError(f"MQTT URL {cfg.mqtt_url!r} is invalid; use mqtt://host:port or mqtts://host:port")
    if (cfg.serial_url is None) == (cfg.replay is None):
        raise ConfigError("give exactly one of --serial PORT and --replay FILE" if cfg.serial_url is None
                          else f"--serial {cfg.serial_url!r} and --replay {str(cfg.replay)!r} exclude each other; give one")
    if cfg.replay is not None and not cfg.replay.is_file():
        raise ConfigError(f"--replay {str(cfg.replay)!r}: no such file; pass a serial capture or a CSV data file")
    if cfg.delegate.partition(":")[0] not in _DELEGATES:
        raise ConfigError(f"delegate {cfg.delegate!r} is unknown; use one of auto, cpu, xnnpack, edgetpu, gpu[:LIBRARY_PATH]")
    if cfg.topic_prefix and (not cfg.topic_prefix.endswith("/") or any(c in cfg.topic_prefix for c in "+#")):
        raise ConfigError(f"topic prefix {cfg.topic_prefix!r} must end with '/' and contain no '+' or '#'")
    a = cfg.alarm
    if a.k > a.n:
        raise ConfigError(f"alarm.k ({a.k}) must be <= alarm.n ({a.n}): raise when k of the last n windows exceed the threshold")
    if cfg.reconnect_min_s > cfg.reconnect_max_s:
        raise ConfigError(f"mqtt.reconnect_min_s ({cfg.reconnect_min_s}) must be <= mqtt.reconnect_max_s ({cfg.reconnect_max_s})")
    for name in ("bundle_public_key", "command_public_key"):
        path = getattr(cfg, name)
        if path is not None and not path.is_file():
            raise ConfigError(f"security.{name} {str(path)!r}: no such file; pass the .pub file from 'edgewatch keys generate'")
    for name in ("tls_ca_file", "tls_cert_file", "tls_key_file"):
        path = getattr(cfg, name)
        if path is not None and not path.is_file():
            raise ConfigError(f"{name.replace('_', '.', 1)} {str(path)!r}: no such file; pass a PEM file")
    if (cfg.tls_cert_file is None) != (cfg.tls_key_file is None) and cfg.tls_cert_file is None:
        raise ConfigError("tls.key_file is set without tls.cert_file; give both for a client certificate")
    if (cfg.tls_ca_file or cfg.tls_cert_file) and not cfg.mqtt_tls:
        raise ConfigError(f"TLS files are set but the MQTT URL {cfg.mqtt_url!r} is not mqtts://; use mqtts://host:port")
    if cfg.state_dir is None:
        base = os.environ.get("STATE_DIRECTORY") or os.path.join(
            os.environ.get("XDG_STATE_HOME") or os.path.expanduser("~/.local/state"), "edgewatch")
        cfg = replace(cfg, state_dir=Path(base) / cfg.device_id)
    return cfg


def field_names() -> list[str]:
    """Every configurable key, for documentation and tests."""
    return [k for k, _, _ in _KEYS] + [f.name for f in fields(RuntimeConfig) if f.name in _SECRETS_ENV]

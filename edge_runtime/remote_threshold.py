"""Remote threshold tuning and bundle reload, as runtime command handlers.

``<prefix>cmd/threshold/set`` with a JSON object::

    {"id": "3f2a...",            # required: echoed on <prefix>ack
     "device": "pump3",          # required: must be this device (no replay on another)
     "value": 0.42               # exactly one of value | method | reset
     "method": "percentile:99.9" #   computed on the bundle's calibration scores
     "reset": true               #   back to the bundle's own threshold
     "reason": "too many nuisance alarms on night shift",
     "user": "alice@laptop", "ts": 1718000000.0,
     "sig": {...}}               # Ed25519, see edge_runtime.signing

Validation, in order: schema (known keys, types), authorization, value
(finite, positive, inside :func:`threshold_bounds` of the calibration
distribution). Authorization: when ``security.command_public_key`` is set the
command must be signed by that key, carry a ``ts`` within
:data:`MAX_CLOCK_SKEW_S` of the device clock and an ``id`` not used before;
otherwise the broker ACL is the authorization (only the operator account may
publish to a device's ``cmd/#``; see deploy/mosquitto/acl).

An accepted value is applied to the next window, persisted in the state
directory (``runtime_state.json``) and so survives restarts; every command,
accepted or refused, is appended to ``audit.jsonl`` beside it.

``<prefix>cmd/reload`` (same id/device/auth fields) asks the runtime to reload
its bundle, exactly like SIGHUP: a bundle that fails to load or verify is
refused and the running one is kept.
"""

from __future__ import annotations

import json
import math
import os
import socket
import time
from pathlib import Path
from typing import Any

import numpy as np

from edge_runtime.commands import CommandContext, CommandError, command

__all__ = ["threshold_bounds", "MAX_CLOCK_SKEW_S", "AUDIT_FILE", "BOUND_LOW_PERCENTILE", "BOUND_HIGH_FACTOR"]

MAX_CLOCK_SKEW_S = 300.0
AUDIT_FILE = "audit.jsonl"
#: Below the calibration median, half of all normal windows would exceed the threshold.
BOUND_LOW_PERCENTILE = 50.0
#: Above this many times the largest calibration score, the alarm would practically never fire.
BOUND_HIGH_FACTOR = 10.0
_SEEN_KEY = "seen_command_ids"
_KEYS = {"id", "device", "value", "method", "reset", "reason", "user", "ts", "sig", "cmd"}


def threshold_bounds(calibration: Any, fallback: float) -> tuple[float, float]:
    """(low, high) a threshold must lie in: [median, 10 x max] of the calibration scores."""
    cal = np.asarray(calibration, dtype=np.float64)
    cal = cal[np.isfinite(cal)]
    if len(cal) == 0:
        return fallback / BOUND_HIGH_FACTOR, fallback * BOUND_HIGH_FACTOR
    return float(np.percentile(cal, BOUND_LOW_PERCENTILE)), float(cal.max() * BOUND_HIGH_FACTOR)


def _audit(ctx: CommandContext, entry: dict[str, Any]) -> None:
    path = Path(ctx.state.path).parent / AUDIT_FILE
    line = json.dumps({"ts": ctx.clock(), "device": ctx.device_id, **entry}, sort_keys=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o640)
    with os.fdopen(fd, "a") as fh:
        fh.write(line + "\n")
        fh.flush()
        os.fsync(fh.fileno())


def _check_common(ctx: CommandContext, name: str, args: dict[str, Any]) -> str:
    """Schema of the shared fields and authorization; returns how the command was authorized."""
    unknown = sorted(set(args) - _KEYS)
    if unknown:
        raise CommandError(f"unknown field(s) {unknown!r}; allowed: {', '.join(sorted(_KEYS))}")
    cid = args.get("id")
    if not isinstance(cid, str) or not 1 <= len(cid) <= 64:
        raise CommandError(f"'id' must be a string of 1-64 characters (got {cid!r})")
    if args.get("device") != ctx.device_id:
        raise CommandError(f"'device' is {args.get('device')!r} but this is device {ctx.device_id!r}; "
                           "address the command to this device")
    if args.get("cmd", name) != name:
        raise CommandError(f"'cmd' is {args.get('cmd')!r} but the command was sent to {name!r}")
    for key in ("reason", "user"):
        if key in args and (not isinstance(args[key], str) or len(args[key]) > 500):
            raise CommandError(f"{key!r} must be a string of at most 500 characters (got {args[key]!r:.60})")
    cfg = ctx.config
    pub_path = getattr(cfg, "command_public_key", None) if cfg is not None else None
    if pub_path is None:
        return "broker-acl"
    from edge_runtime.signing import SignatureError, load_public_key, verify_command

    if "sig" in args and "cmd" not in args:
        raise CommandError("a signed command must name its 'cmd', so it cannot be replayed as another command")
    try:
        verify_command(args, load_public_key(pub_path), f"command {name!r} id {cid!r}")
    except SignatureError as err:
        raise CommandError(str(err)) from err
    ts = args.get("ts")
    if isinstance(ts, bool) or not isinstance(ts, (int, float)) or abs(ctx.clock() - float(ts)) > MAX_CLOCK_SKEW_S:
        raise CommandError(f"'ts' {ts!r} is more than {MAX_CLOCK_SKEW_S:.0f} s from the device clock "
                           f"({ctx.clock():.0f}); check both clocks (NTP) and send the command again")
    seen = list(ctx.state.get(_SEEN_KEY, []) or [])
    if cid in seen:
        raise CommandError(f"command id {cid!r} was already used; a signed command is accepted once (replay refused)")
    ctx.state.set(_SEEN_KEY, (seen + [cid])[-200:])
    return "signature"


def _current_bundle(ctx: CommandContext) -> Any:
    if ctx.bundle is None:
        raise CommandError("this runtime does not expose its bundle to commands; upgrade edgewatch on the device")
    return ctx.bundle()


def _new_value(args: dict[str, Any], bundle: Any) -> tuple[float | None, str]:
    given = [k for k in ("value", "method", "reset") if k in args]
    if len(given) != 1:
        raise CommandError(f"give exactly one of 'value', 'method', 'reset' (got {given or 'none'})")
    if "reset" in args:
        if args["reset"] is not True:
            raise CommandError(f"'reset' must be true (got {args['reset']!r})")
        return None, "reset"
    if "method" in args:
        from edge_runtime.errors import EdgewatchError
        from edge_runtime.thresholds import choose_threshold, parse_method

        method = args["method"]
        if not isinstance(method, str):
            raise CommandError(f"'method' must be a string like 'percentile:99.9' (got {method!r})")
        try:
            name, _ = parse_method(method)
            if name in ("f1", "recall"):
                raise CommandError(f"method {method!r} needs labelled data, which the device does not have; "
                                   "compute it on the host with 'edgewatch threshold BUNDLE --data ... --labels' "
                                   "and send --value")
            cal = bundle.calibration_scores
            if len(cal) == 0:
                raise CommandError(f"method {method!r} needs the bundle's calibration scores and it has none; send --value")
            choice = choose_threshold(cal, method)
        except EdgewatchError as err:
            raise CommandError(str(err)) from err
        return choice.value, choice.method
    value = args["value"]
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise CommandError(f"'value' must be a number (got {value!r})")
    return float(value), "manual"


def _check_bounds(value: float, bundle: Any) -> tuple[float, float]:
    lo, hi = threshold_bounds(bundle.calibration_scores, bundle.threshold)
    if not math.isfinite(value) or value <= 0:
        raise CommandError(f"threshold {value!r} is not a finite positive number; scores are >= 0, "
                           f"send a value between {lo:.6g} and {hi:.6g}")
    if not lo <= value <= hi:
        raise CommandError(f"threshold {value!r} is outside {lo:.6g} .. {hi:.6g} (median .. {BOUND_HIGH_FACTOR:g} x max of "
                           f"the model's {len(bundle.calibration_scores)} calibration scores); below it the alarm would "
                           "chatter, above it it would never fire: pick a value inside, or retrain the model")
    return lo, hi


@command("threshold/set")
def set_threshold(ctx: CommandContext, args: dict[str, Any]) -> dict[str, Any]:
    old = ctx.info().get("threshold")
    entry: dict[str, Any] = {"cmd": "threshold/set", "id": args.get("id"), "user": args.get("user"),
                             "reason": args.get("reason"), "old": old, "requested": {k: args[k] for k in
                                                                                     ("value", "method", "reset") if k in args}}
    try:
        auth = _check_common(ctx, "threshold/set", args)
        entry["auth"] = auth
        bundle = _current_bundle(ctx)
        value, method = _new_value(args, bundle)
        bounds = _check_bounds(value, bundle) if value is not None else None
        ctx.set_threshold_override(value)
    except CommandError as err:
        _audit(ctx, {**entry, "ok": False, "error": str(err)})
        raise
    new = ctx.info().get("threshold")
    result = {"threshold": new, "previous": old, "method": method, "override": value is not None, "auth": auth,
              "bounds": list(bounds) if bounds else None, "model_id": bundle.model_id,
              "model_version": bundle.version, "model_sha256": bundle.sha256,
              "persisted": str(ctx.state.path)}
    _audit(ctx, {**entry, "ok": True, "new": new, "method": method, "model_sha256": bundle.sha256})
    return result


@command("reload")
def reload_bundle(ctx: CommandContext, args: dict[str, Any]) -> dict[str, Any]:
    entry: dict[str, Any] = {"cmd": "reload", "id": args.get("id"), "user": args.get("user"), "reason": args.get("reason")}
    try:
        entry["auth"] = _check_common(ctx, "reload", args)
        if ctx.reload is None:
            raise CommandError("this runtime cannot reload on command; restart the service instead")
    except CommandError as err:
        _audit(ctx, {**entry, "ok": False, "error": str(err)})
        raise
    running = ctx.info()
    _audit(ctx, {**entry, "ok": True, "running_sha256": running.get("model_sha256")})
    ctx.reload()
    return {"reloading": True, "running_model_sha256": running.get("model_sha256"),
            "running_model_version": running.get("model_version"), "host": socket.gethostname(), "at": time.time()}

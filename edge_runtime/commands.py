"""Remote commands: ``<prefix>cmd/<name>`` in, ``<prefix>ack`` out, and persisted runtime state.

A command is a JSON object published to ``<prefix>cmd/<name>`` (``name`` may
have several levels, e.g. ``threshold/set``). Its handler is looked up in a
registry, runs with a :class:`CommandContext`, and its result is answered on
``<prefix>ack`` as ``{"id", "cmd", "ok", "result" | "error", "ts"}``; ``id`` is
copied from the request so the sender can match answers.

Adding a command needs no change here: in your own module ::

    from edge_runtime.commands import command, CommandContext

    @command("threshold/set")
    def set_threshold(ctx: CommandContext, args: dict) -> dict:
        value = float(args["value"])          # ValueError/KeyError -> ok=false with the message
        ctx.set_threshold_override(value)     # applied to the next window, persisted across restarts
        return {"threshold": value}

and list the module in :data:`PLUGIN_MODULES` (or import it before the runtime
starts). Handlers run on the MQTT network thread: keep them short.
"""

from __future__ import annotations

import importlib
import json
import logging
import os
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

__all__ = ["command", "CommandContext", "CommandDispatcher", "RuntimeState", "HANDLERS", "PLUGIN_MODULES", "CommandError"]

log = logging.getLogger(__name__)

Handler = Callable[["CommandContext", dict[str, Any]], "dict[str, Any] | None"]
HANDLERS: dict[str, Handler] = {}
#: Modules imported when the runtime starts so their ``@command`` handlers register.
PLUGIN_MODULES: list[str] = ["edge_runtime.remote_threshold"]


class CommandError(Exception):
    """A handler's way of answering ``ok: false`` with a message."""


def command(name: str) -> Callable[[Handler], Handler]:
    """Register ``fn`` as the handler of ``<prefix>cmd/<name>``."""
    def register(fn: Handler) -> Handler:
        HANDLERS[name] = fn
        return fn
    return register


class RuntimeState:
    """Small JSON document in the state directory, written atomically on every change.

    Keys used by the runtime: ``shelved_until`` (UTC epoch seconds) and
    ``threshold_override`` (float or null).
    """

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()
        try:
            self._data: dict[str, Any] = json.loads(self.path.read_text()) if self.path.exists() else {}
        except (OSError, ValueError) as err:
            log.warning("runtime state %s is unreadable (%s); starting from defaults", self.path, err)
            self._data = {}

    def get(self, key: str, default: Any = None) -> Any:
        with self._lock:
            return self._data.get(key, default)

    def set(self, key: str, value: Any) -> None:
        with self._lock:
            self._data[key] = value
            fd, tmp = tempfile.mkstemp(prefix=".state.", dir=self.path.parent)
            try:
                with os.fdopen(fd, "w") as fh:
                    json.dump(self._data, fh, sort_keys=True)
                    fh.flush()
                    os.fsync(fh.fileno())
                os.replace(tmp, self.path)
            except BaseException:
                Path(tmp).unlink(missing_ok=True)
                raise


class CommandContext:
    """What a handler may touch; the runtime fills in the callables."""

    def __init__(self, state: RuntimeState, *, device_id: str, shelve: Callable[[float], None],
                 set_threshold: Callable[[float | None], None], info: Callable[[], dict[str, Any]],
                 clock: Callable[[], float] = time.time, bundle: Callable[[], Any] | None = None,
                 config: Any = None, reload: Callable[[], None] | None = None) -> None:
        self.state = state
        self.device_id = device_id
        self._shelve = shelve
        self._set_threshold = set_threshold
        self._info = info
        self.clock = clock
        self.bundle = bundle        # the running Bundle (calibration scores for bounds)
        self.config = config        # the RuntimeConfig (security keys)
        self.reload = reload        # ask the runtime to reload its bundle, as SIGHUP does

    def shelve_until(self, until: float) -> None:
        """Shelve the device's alarm until UTC epoch ``until`` (0 unshelves); persisted."""
        self.state.set("shelved_until", float(until))
        self._shelve(float(until))

    def set_threshold_override(self, value: float | None) -> None:
        """Use ``value`` instead of the bundle's threshold (None restores it); persisted."""
        self.state.set("threshold_override", value)
        self._set_threshold(value)

    def info(self) -> dict[str, Any]:
        return self._info()


class CommandDispatcher:
    """Callable given to the publisher: parses, dispatches, answers on ``ack``."""

    def __init__(self, ctx: CommandContext, answer: Callable[[bytes], object],
                 handlers: dict[str, Handler] | None = None) -> None:
        self.ctx = ctx
        self.answer = answer
        self.handlers = HANDLERS if handlers is None else handlers
        for module in PLUGIN_MODULES:
            importlib.import_module(module)

    def __call__(self, name: str, payload: bytes) -> dict[str, Any]:
        reply: dict[str, Any] = {"cmd": name, "id": None, "ok": False}
        try:
            args = json.loads(payload) if payload.strip() else {}
            if not isinstance(args, dict):
                raise CommandError(f"payload must be a JSON object (got {type(args).__name__})")
            reply["id"] = args.get("id")
            handler = self.handlers.get(name)
            if handler is None:
                raise CommandError(f"unknown command {name!r}; known: {', '.join(sorted(self.handlers))}")
            reply["result"] = handler(self.ctx, args) or {}
            reply["ok"] = True
        except (CommandError, ValueError, KeyError, TypeError) as err:
            reply["error"] = str(err) if not isinstance(err, KeyError) else f"missing field {err}"
            log.warning("command %r rejected: %s", name, reply["error"])
        reply["ts"] = time.time()
        self.answer(json.dumps(reply, sort_keys=True).encode())
        return reply


@command("shelve")
def _shelve(ctx: CommandContext, args: dict[str, Any]) -> dict[str, Any]:
    """``{"duration_s": 3600}`` shelves for an hour; ``{"duration_s": 0}`` unshelves."""
    duration = float(args.get("duration_s", 3600))
    if not (0 <= duration <= 7 * 24 * 3600):
        raise CommandError(f"duration_s must be between 0 and 604800 (got {duration!r})")
    until = ctx.clock() + duration if duration > 0 else 0.0
    ctx.shelve_until(until)
    return {"shelved_until": until}


@command("unshelve")
def _unshelve(ctx: CommandContext, args: dict[str, Any]) -> dict[str, Any]:
    ctx.shelve_until(0.0)
    return {"shelved_until": 0.0}


@command("ping")
def _ping(ctx: CommandContext, args: dict[str, Any]) -> dict[str, Any]:
    return ctx.info()

"""Wiring of the gateway runtime: threads, signals, bundle reload, shutdown.

::

    SerialSource / ReplaySource  --queue-->  inference thread (Pipeline)  --Outbox (SQLite)-->  Publisher (paho)
         bytes -> decoder                    windows, model, alarms              durable          QoS 1, PUBACK deletes
                                                         metrics thread  --volatile-->  metrics / scores

The three stages only meet at a bounded queue and at the on-disk outbox, so a
slow broker never stalls inference and a slow model never stalls the reader.
SIGTERM/SIGINT stop gracefully (drain the queue, flush, publish ``offline``);
SIGHUP reloads the bundle and keeps the running one if the new one fails.
"""

from __future__ import annotations

import json
import logging
import os
import queue
import signal
import threading
import time
import uuid
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from edge_runtime import __version__
from edge_runtime.alarms import AlarmEvent
from edge_runtime.commands import CommandContext, CommandDispatcher, RuntimeState
from edge_runtime.config import RuntimeConfig
from edge_runtime.errors import ConfigError, EdgewatchError
from edge_runtime.metrics import Metrics
from edge_runtime.pipeline import Pipeline, ScoredWindow
from edge_runtime.publisher import Publisher
from edge_runtime.serial_source import END, ReplaySource, SerialSource, make_decoder
from edge_runtime.store import Outbox

__all__ = ["Runtime", "iso_utc"]

log = logging.getLogger("edge_runtime")

EVENT_SCHEMA = 1


def iso_utc(ts: float) -> str:
    return datetime.fromtimestamp(ts, timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class Runtime:
    """``edgewatch run`` as an object: :meth:`run` blocks until stopped and returns the exit code."""

    def __init__(self, cfg: RuntimeConfig, *, install_signals: bool = True) -> None:
        self.cfg = cfg
        self.install_signals = install_signals
        self.stop_event = threading.Event()
        self.reload_requested = threading.Event()
        self.fatal: EdgewatchError | None = None
        self.metrics = Metrics()
        self.queue: queue.Queue[Any] = queue.Queue(maxsize=1024)
        self._origin: dict[int, float] = {}          # outbox seq -> t_rx of the window's last sample
        self._window_count = 0
        self._last_device_channels: tuple[str, ...] | None = None
        self._prepare()

    # ----------------------------------------------------------------- setup
    def _prepare(self) -> None:
        cfg = self.cfg
        assert cfg.state_dir is not None
        try:
            cfg.state_dir.mkdir(parents=True, exist_ok=True)
        except OSError as err:
            raise ConfigError(f"state directory {str(cfg.state_dir)!r} cannot be created ({err.strerror}); pass a writable --state-dir") from err
        if not os.access(cfg.state_dir, os.W_OK | os.X_OK):
            raise ConfigError(f"state directory {str(cfg.state_dir)!r} is not writable; pass a writable --state-dir "
                              "(it holds the event queue)")
        self.bundle, self.scorer = self._load_bundle()
        self.outbox = Outbox(cfg.state_dir / "outbox.db", max_events=cfg.queue_max_events)
        self.state = RuntimeState(cfg.state_dir / "runtime_state.json")
        pending = len(self.outbox)
        if pending:
            log.info("%d event(s) from a previous run are waiting in %s; sending them first", pending, self.outbox.path)
        self.pipeline = Pipeline(self.scorer, stride=self.bundle.stride, alarm=cfg.alarm,
                                 sample_rate_hz=self.bundle.manifest.get("sample_rate_hz"), on_event=self._on_alarm,
                                 metrics=self.metrics, on_window=self._on_window if cfg.scores_every else None,
                                 source=f"device on {cfg.serial_url or cfg.replay}")
        self.pipeline.alarms.shelve(float(self.state.get("shelved_until", 0.0) or 0.0))
        override = self.state.get("threshold_override")
        self.pipeline.threshold_override = None if override is None else float(override)
        ctx = CommandContext(self.state, device_id=cfg.device_id, shelve=self.pipeline.alarms.shelve,
                             set_threshold=self._set_threshold, info=self.status_info,
                             bundle=lambda: self.bundle, config=cfg, reload=self.reload_requested.set)
        self.publisher = Publisher(cfg, self.outbox, status=self.status_info(), on_delivered=self._on_delivered,
                                   on_command=CommandDispatcher(ctx, self._answer))
        self.decoder = make_decoder(cfg.serial_mode, self.scorer.channels, self.bundle.manifest.get("sample_rate_hz"))

    def _load_bundle(self) -> tuple[Any, Any]:
        from edge_runtime.bundle import Bundle
        from edge_runtime.scorer import BundleScorer

        bundle = Bundle.load(self.cfg.bundle)
        from edge_runtime.signing import check_bundle

        check_bundle(bundle, self.cfg.bundle_public_key)  # no-op unless security.bundle_public_key is set
        scorer = BundleScorer(bundle, delegate=self.cfg.delegate, num_threads=self.cfg.num_threads)
        if scorer.model.fallback:
            log.warning("%s", scorer.model.fallback)
        log.info("bundle %s: model %s v%s (%s), %d channels, window %d, stride %d, threshold %.6g, backend %s",
                 self.cfg.bundle, bundle.model_id, bundle.version, scorer.member, len(scorer.channels), bundle.window,
                 bundle.stride, scorer.threshold, scorer.backend)
        return bundle, scorer

    def status_info(self) -> dict[str, Any]:
        return {
            "device_id": self.cfg.device_id, "model_id": self.bundle.model_id, "model_version": self.bundle.version,
            "model_sha256": self.bundle.sha256, "threshold": self.pipeline.threshold if hasattr(self, "pipeline") else self.scorer.threshold,
            "delegate": self.scorer.backend, "delegate_requested": self.cfg.delegate, "edgewatch_version": __version__,
            "channels": list(self.scorer.channels), "window": self.bundle.window, "stride": self.bundle.stride,
        }

    # ------------------------------------------------------------- callbacks
    def _on_alarm(self, event: AlarmEvent, sw: ScoredWindow) -> None:
        b = self.bundle
        created = time.time()

        def build(seq: int) -> tuple[str, bytes]:
            event_id = uuid.uuid4().hex
            payload = {
                "schema": EVENT_SCHEMA, "event_id": event_id, "seq": seq, "device_id": self.cfg.device_id,
                "model_id": b.model_id, "model_version": b.version, "model_sha256": b.sha256,
                "state": event.state, "score": event.score, "raw_score": event.raw_score, "threshold": event.threshold,
                "window_start": iso_utc(event.window_start), "window_end": iso_utc(event.window_end),
                "top_channels": [{"channel": c, "contribution": round(v, 6)} for c, v in event.top_channels],
                "created": iso_utc(created),
            }
            return event_id, json.dumps(payload, sort_keys=True).encode()

        seq = self.outbox.put(self.cfg.topic("events"), build, created=created)
        self._origin[seq] = sw.t_rx
        if len(self._origin) > 10000:  # events dropped from a full outbox never get a PUBACK
            self._origin.pop(next(iter(self._origin)))
        log.info("alarm %s (score %.6g, threshold %.6g, seq %d)", event.state, event.score, event.threshold, seq)
        self.publisher.notify()

    def _on_delivered(self, seq: int) -> None:
        t = self._origin.pop(seq, None)
        if t is not None:
            self.metrics.end_to_end.add((time.monotonic() - t) * 1000.0)

    def _on_window(self, sw: ScoredWindow) -> None:
        self._window_count += 1
        if self._window_count % self.cfg.scores_every == 0:
            self.publisher.publish_volatile("scores", json.dumps(
                {"score": sw.score, "threshold": sw.threshold, "window_end": iso_utc(sw.window_end)}).encode())

    def _answer(self, payload: bytes) -> None:
        self.publisher.publish_volatile("ack", payload, qos=1)

    def _set_threshold(self, value: float | None) -> None:
        self.pipeline.threshold_override = value
        self.publisher.set_status(self.status_info())

    # ------------------------------------------------------------------- run
    def run(self) -> int:
        cfg = self.cfg
        if self.install_signals:
            signal.signal(signal.SIGTERM, lambda *_: self.stop_event.set())
            signal.signal(signal.SIGINT, lambda *_: self.stop_event.set())
            signal.signal(signal.SIGHUP, lambda *_: self.reload_requested.set())
        self.publisher.start()
        if cfg.replay is not None:
            source: Any = ReplaySource(cfg.replay, self.decoder, self.queue, channels=self.scorer.channels,
                                       rate_hz=self.bundle.manifest.get("sample_rate_hz"))
        else:
            assert cfg.serial_url is not None
            source = SerialSource(cfg.serial_url, cfg.baud, self.decoder, self.queue, self.metrics)
        self.source = source
        inference = threading.Thread(target=self._inference_loop, name="edgewatch-inference", daemon=True)
        metrics = threading.Thread(target=self._metrics_loop, name="edgewatch-metrics", daemon=True)
        source.start()
        inference.start()
        metrics.start()
        log.info("running: device %s, %s -> %s, topics under %s", cfg.device_id, cfg.serial_url or cfg.replay,
                 cfg.mqtt_url, cfg.prefix)
        self.stop_event.wait()
        source.stop()
        inference.join(timeout=30)
        if cfg.replay is not None and self.fatal is None:
            self._wait_outbox_empty(timeout=30.0)
        self.publisher.stop(flush_timeout=5.0 if cfg.replay is None else 1.0)
        self._write_summary()
        left = len(self.outbox)
        if left:
            log.warning("%d event(s) not yet acknowledged stay queued in %s and are sent on the next start", left, self.outbox.path)
        if isinstance(source, ReplaySource) and isinstance(source.error, EdgewatchError):
            raise source.error
        if self.fatal is not None:
            raise self.fatal
        return 0

    def _wait_outbox_empty(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        if not self.publisher.ever_connected.wait(timeout=min(timeout, 10.0)):
            return
        while len(self.outbox) and time.monotonic() < deadline:
            self.publisher._progress.clear()
            self.publisher.notify()
            self.publisher._progress.wait(timeout=0.2)

    def _inference_loop(self) -> None:
        handle = self.pipeline.handle
        while True:
            if self.reload_requested.is_set():
                self.reload_requested.clear()
                self._reload()
            try:
                item = self.queue.get(timeout=0.2)
            except queue.Empty:
                if self.stop_event.is_set():
                    return
                continue
            if item is END:
                self.stop_event.set()
                return
            t_rx, events = item
            if t_rx is None:  # replay: the sample "arrives" when the pipeline takes it
                t_rx = time.monotonic()
            try:
                for ev in events:
                    if type(ev).__name__ == "Hello":
                        self._last_device_channels = tuple(ev.channels)
                    handle(ev, t_rx)
            except EdgewatchError as err:
                log.error("%s", err)
                self.fatal = err
                self.stop_event.set()
                return

    def _reload(self) -> None:
        log.info("SIGHUP: reloading bundle %s", self.cfg.bundle)
        try:
            bundle, scorer = self._load_bundle()
            if self._last_device_channels is not None:
                missing = [c for c in scorer.channels if c not in self._last_device_channels]
                if missing:
                    raise ConfigError(f"new bundle needs channels {missing!r} the device does not send")
        except Exception as err:  # noqa: BLE001 - any failure keeps the running model
            log.error("bundle reload failed, keeping model %s v%s: %s", self.bundle.model_id, self.bundle.version, err)
            return
        self.bundle, self.scorer = bundle, scorer
        self.pipeline._stride = bundle.stride
        self.pipeline.use_scorer(scorer)
        self.publisher.set_status(self.status_info())
        log.info("bundle reloaded: model %s v%s", bundle.model_id, bundle.version)

    def _metrics_loop(self) -> None:
        while not self.stop_event.wait(self.cfg.metrics_interval_s):
            self.publisher.publish_volatile("metrics", json.dumps(self.snapshot()).encode())

    def decoder_stats(self) -> dict[str, int]:
        stats = getattr(self.decoder, "stats", None)
        return {k: v for k, v in vars(stats).items() if isinstance(v, int)} if stats is not None else {}

    def snapshot(self) -> dict[str, Any]:
        dec = self.decoder_stats()
        errors = sum(dec.get(k, 0) for k in ("crc_errors", "cobs_errors", "short_frames", "oversize", "unknown_version",
                                              "unknown_type", "format_errors", "text_errors"))
        snap = self.metrics.snapshot(
            calibration=self.bundle.calibration_scores, queue_depth=self.queue.qsize(), outbox_depth=len(self.outbox),
            events_dropped=self.outbox.dropped,
            extra={"decode_errors": errors, "lost_frames": dec.get("lost_frames", self.metrics.lost_frames),
                   "alarm_state": self.pipeline.alarms.state, "flood_suppressed": self.pipeline.alarms.flood_suppressed,
                   "shelved": self.pipeline.alarms.is_shelved(time.time()), "mqtt_connected": self.publisher.connected.is_set(),
                   "delivered": self.publisher.delivered, "volatile_dropped": self.publisher.volatile_dropped,
                   "decoder": dec, "device_id": self.cfg.device_id, "ts": iso_utc(time.time())})
        return snap

    def _write_summary(self) -> None:
        if self.cfg.summary_file is None:
            return
        snap = self.snapshot()
        snap["end_to_end_ms"] = self.metrics.end_to_end.all()
        Path(self.cfg.summary_file).write_text(json.dumps(snap, indent=1))

"""``edgewatch threshold``: what a threshold means on the plant floor, and changing it.

Two forms, one command::

    edgewatch threshold BUNDLE --data NORMAL.csv [--labels COL] [--method M ...] [--plot out.png]
                               [--apply --reason TEXT [--value X | --method M] [--out NEW.ewb]]
    edgewatch threshold set --device ID --mqtt URL (--value X | --method M | --reset) [--key KEY]

The first scores the data with the bundle's runtime model (the same code as
the gateway), then, for each candidate threshold, replays the gateway's alarm
state machine (k of n, deadband, flood limit) over the scores to say how many
alarms an operator would see per day, and with labels the recall, precision
and detection delay. ``--apply`` writes a new bundle version beside the old
one with an audit entry. The second sends the change to a running device and
waits for its ack (see :mod:`edge_runtime.remote_threshold`).

Import-light: numpy, the scorer and matplotlib load inside the commands.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click

from tools.remote import mqtt_options

__all__ = ["threshold", "Candidate", "evaluate_threshold", "alarms_per_day_threshold", "DEFAULT_METHODS"]

DEFAULT_METHODS = ("percentile:99", "percentile:99.5", "percentile:99.9", "sigma:3", "far:0.001")
LABEL_METHODS = ("f1", "recall:0.9")


@dataclass(frozen=True)
class Candidate:
    name: str
    value: float
    above_normal: float              # fraction of normal windows above the threshold
    alarms: int                      # raised alarms in the normal data
    alarms_per_day: float
    recall: float | None = None      # window level, with labels
    precision: float | None = None
    detection_delay_s: float | None = None   # first raised alarm after the first anomalous window
    detected: bool | None = None


class _ThresholdGroup(click.Group):
    """``threshold BUNDLE ...`` runs the hidden ``tune`` command; ``threshold set ...`` the subcommand."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if args and args[0] not in self.commands and not args[0].startswith("-"):
            args = ["tune", *args]
        return super().parse_args(ctx, args)


@click.group(cls=_ThresholdGroup, context_settings={"help_option_names": ["-h", "--help"]})
def threshold() -> None:
    """See what a threshold means; change it locally or on a running device.

    \b
      edgewatch threshold BUNDLE --data NORMAL.csv [--labels COL] [--method M]... [--plot out.png]
      edgewatch threshold BUNDLE --data NORMAL.csv --method far:0.001 --apply --reason TEXT
      edgewatch threshold set --device ID --mqtt URL (--value X | --method M | --reset)

    Methods: percentile:P, sigma:K, far:RATE, f1, recall:R (f1/recall need --labels),
    alarms-per-day:N (the lowest threshold giving at most N alarms a day on the data).
    Run 'edgewatch threshold BUNDLE --help' for all analysis options.
    """


# ------------------------------------------------------------------ analysis
def _alarm_run(scores: Any, times: Any, value: float, settings: Any) -> list[float]:
    """Times of the raised alarms the gateway's state machine would announce."""
    from edge_runtime.alarms import raised_indices

    stamps = times.tolist()
    return [stamps[i] for i in raised_indices(scores.tolist(), value, settings, stamps)]


def evaluate_threshold(name: str, value: float, scores: Any, times: Any, labels: Any | None, settings: Any) -> Candidate:
    """What ``value`` means on this data: alarms a day on the normal part; recall/precision with labels."""
    import numpy as np

    normal = labels == 0 if labels is not None else np.ones(len(scores), dtype=bool)
    ns, nt = scores[normal], times[normal]
    # Normal windows of a labelled file are replayed as one stream; their span is the normal operating time.
    span_s = _span_seconds(nt)
    alarms = len(_alarm_run(ns, nt, value, settings))
    per_day = alarms / span_s * 86400.0 if span_s > 0 else float("nan")
    above = float(np.mean(ns > value)) if len(ns) else float("nan")
    if labels is None:
        return Candidate(name, value, above, alarms, per_day)
    pos = labels == 1
    hit = scores > value
    tp, fp = int(np.sum(hit & pos)), int(np.sum(hit & normal))
    recall = tp / int(pos.sum()) if pos.any() else float("nan")
    precision = tp / (tp + fp) if tp + fp else float("nan")
    delay, detected = None, None
    if pos.any():
        known = labels >= 0
        first_bad = float(times[pos].min())
        raised = [t for t in _alarm_run(scores[known], times[known], value, settings) if t >= first_bad]
        detected = bool(raised)
        delay = raised[0] - first_bad if raised else None
    return Candidate(name, value, above, alarms, per_day, recall, precision, delay, detected)


def _span_seconds(times: Any) -> float:
    if len(times) < 2:
        return 0.0
    import numpy as np

    dt = np.diff(times)
    step = float(np.median(dt[dt > 0])) if np.any(dt > 0) else 0.0
    return float(len(times) * step)


def alarms_per_day_threshold(target: float, scores: Any, times: Any, labels: Any | None, settings: Any) -> float:
    """The lowest threshold (among the normal scores) whose replayed alarm rate is at most ``target`` a day."""
    import numpy as np

    normal = labels == 0 if labels is not None else np.ones(len(scores), dtype=bool)
    ns, nt = scores[normal], times[normal]
    span = _span_seconds(nt)
    cands = np.unique(ns)
    top = float(cands[-1]) * (1 + 1e-9) + 1e-12

    def rate(v: float) -> float:
        return len(_alarm_run(ns, nt, v, settings)) / span * 86400.0 if span > 0 else 0.0

    if rate(top) > target:
        return top
    lo, hi = 0, len(cands) - 1       # invariant: answer is in cands[lo..hi] or top
    if rate(float(cands[hi])) > target:
        return top
    while lo < hi:
        mid = (lo + hi) // 2
        if rate(float(cands[mid])) <= target:
            hi = mid
        else:
            lo = mid + 1
    return float(cands[lo])


def _alarms_per_day_target(method: str) -> float:
    """N of ``alarms-per-day:N``, validated (checked before any output, used after)."""
    from edge_runtime.errors import ConfigError

    arg = method.partition(":")[2]
    try:
        target = float(arg)
    except ValueError:
        raise ConfigError(f"--method {method!r}: {arg!r} is not a number; write alarms-per-day:N, e.g. alarms-per-day:1") from None
    if not math.isfinite(target) or target < 0:
        raise ConfigError(f"--method {method!r}: N must be a finite number >= 0 (got {target!r})")
    return target


def _check_methods(methods: tuple[str, ...], label_column: str | None) -> None:
    from edge_runtime.errors import ConfigError
    from edge_runtime.thresholds import parse_method

    for method in methods:
        if method.partition(":")[0].strip().lower() == "alarms-per-day":
            _alarms_per_day_target(method)
            continue
        name, _ = parse_method(method)
        if name in ("f1", "recall") and label_column is None:
            raise ConfigError(f"--method {method!r} needs labelled data; pass --labels COLUMN or use percentile/sigma/far/alarms-per-day")


def _resolve(method: str, scores: Any, times: Any, labels: Any | None, settings: Any) -> tuple[str, float]:
    from edge_runtime.thresholds import choose_threshold

    if method.partition(":")[0].strip().lower() == "alarms-per-day":
        target = _alarms_per_day_target(method)
        return f"alarms-per-day:{target:g}", alarms_per_day_threshold(target, scores, times, labels, settings)
    known = labels >= 0 if labels is not None else None
    choice = choose_threshold(scores[known] if known is not None else scores, method,
                              labels=labels[known].astype(int) if known is not None else None)
    return choice.method, choice.value


def _alarm_settings(config: str | None, k: int | None, n: int | None, m: int | None, deadband: float | None) -> Any:
    from dataclasses import replace

    from edge_runtime.config import AlarmSettings, _read_toml
    from edge_runtime.errors import ConfigError

    settings = AlarmSettings()
    if config:
        section = _read_toml(Path(config)).get("alarm", {})
        known = {f for f in AlarmSettings.__dataclass_fields__}
        bad = sorted(set(section) - known)
        if bad:
            raise ConfigError(f"--config {config!r}: unknown [alarm] key(s) {bad!r}; known: {', '.join(sorted(known))}")
        settings = replace(settings, **section)
    for key, v in (("k", k), ("n", n), ("m", m), ("deadband", deadband)):
        if v is not None:
            settings = replace(settings, **{key: v})
    if settings.k > settings.n:
        raise ConfigError(f"alarm k ({settings.k}) must be <= n ({settings.n}): raise when k of the last n windows exceed")
    return settings


def _fmt(v: float | None, spec: str = ".3f") -> str:
    return "-" if v is None or (isinstance(v, float) and math.isnan(v)) else format(v, spec)


def _histogram(scores: Any, width: int = 40, bins: int = 12) -> list[str]:
    import numpy as np

    counts, edges = np.histogram(scores, bins=bins)
    peak = max(int(counts.max()), 1)
    return [f"  {edges[i]:>10.4g} .. {edges[i + 1]:<10.4g} {'#' * max(int(c) * width // peak, 1 if c else 0)} {int(c)}"
            for i, c in enumerate(counts)]


@threshold.command("tune", hidden=True, context_settings={"help_option_names": ["-h", "--help"]})
@click.argument("bundle_path", metavar="BUNDLE", type=click.Path(dir_okay=False))
@click.option("--data", required=True, type=click.Path(dir_okay=False), help="Data to score: normal operation, or labelled.")
@click.option("--labels", "label_column", default=None, metavar="COL", help="Label column (1 anomalous, 0 normal).")
@click.option("--method", "methods", multiple=True, metavar="M",
              help="Candidate(s): percentile:P, sigma:K, far:RATE, f1, recall:R, alarms-per-day:N. Repeatable.")
@click.option("--format", "fmt", default="auto", show_default=True, type=click.Choice(["auto", "csv", "cmapss"]))
@click.option("--sample-rate", type=click.FloatRange(min=0, min_open=True), default=None,
              help="Hz, when the data has no time column and the bundle records none.")
@click.option("--config", "config_file", type=click.Path(dir_okay=False), default=None,
              help="The gateway's TOML config: alarm k/n/m/deadband are read from [alarm].")
@click.option("--k", type=click.IntRange(min=1), default=None, help="Alarm on-delay: k of the last n windows.")
@click.option("--n", type=click.IntRange(min=1), default=None)
@click.option("--m", type=click.IntRange(min=1), default=None, help="Alarm off-delay: m windows below the deadband.")
@click.option("--deadband", type=click.FloatRange(0, 0.99), default=None)
@click.option("--plot", type=click.Path(dir_okay=False), default=None, help="Write a PNG: histogram and score timeline.")
@click.option("--apply", is_flag=True, help="Write a new bundle version with the chosen threshold and an audit entry.")
@click.option("--value", type=float, default=None, help="With --apply: this threshold instead of the first --method.")
@click.option("--reason", default=None, help="With --apply: why (kept in the bundle's audit trail).")
@click.option("--out", type=click.Path(dir_okay=False), default=None, help="With --apply: new bundle path [NAME.vN.ewb].")
@click.option("--force", is_flag=True, help="With --apply: accept a value outside the calibration bounds.")
def tune(bundle_path: str, data: str, label_column: str | None, methods: tuple[str, ...], fmt: str,
         sample_rate: float | None, config_file: str | None, k: int | None, n: int | None, m: int | None,
         deadband: float | None, plot: str | None, apply: bool, value: float | None, reason: str | None,
         out: str | None, force: bool) -> None:
    """Show what thresholds mean on DATA in alarms a day (and recall/precision with --labels)."""
    import numpy as np

    from edge_runtime.bundle import Bundle
    from edge_runtime.categorical import load_bundle_table
    from edge_runtime.errors import ConfigError, DataError
    from edge_runtime.scorer import BundleScorer

    if apply and not (reason and reason.strip()):
        raise ConfigError("--apply needs --reason TEXT: the audit trail records why the threshold changed")
    if apply and value is None and not methods:
        raise ConfigError("--apply needs the threshold to apply: give --value X or --method M (the first --method is applied)")
    if (value is not None or reason or out or force) and not apply:
        raise ConfigError("--value/--reason/--out/--force only make sense with --apply; add --apply or drop them")
    settings = _alarm_settings(config_file, k, n, m, deadband)
    _check_methods(methods, label_column)            # refuse before any output
    bundle = Bundle.load(bundle_path)
    if apply and value is not None:
        _check_value(bundle, float(value), force)     # refuse before any output
    table, unseen = load_bundle_table(bundle, [data], format=fmt, label_column=label_column)
    for u in unseen:
        click.echo(f"warning: {u.message()}", err=True)
    rate = sample_rate or table.sample_rate_hz or bundle.manifest.get("sample_rate_hz")
    if not rate:
        raise DataError(f"{data}: the sample rate is unknown (no time column, none in the bundle); pass --sample-rate HZ")
    scorer = BundleScorer(bundle)
    sw = scorer.score_rows(table.values, table.segments, stride=bundle.stride)
    if len(sw.scores) == 0:
        raise DataError(f"{data}: {len(table)} rows give no window of {bundle.window} rows; give more data")
    scores = sw.scores
    times = sw.end_rows.astype(np.float64) / float(rate)
    labels = None
    if table.labels is not None:
        wl = table.labels[sw.end_rows]
        labels = np.where(np.isnan(wl), -1, wl).astype(int)
        if not (labels == 0).any():
            raise DataError(f"{data}: no window ends on a normal (label 0) row; alarms a day need normal data")

    normal_scores = scores[labels == 0] if labels is not None else scores
    q = np.percentile(normal_scores, [50, 90, 99, 99.9])
    click.echo(f"bundle     {bundle_path}: model {bundle.model_id} v{bundle.version}, threshold {bundle.threshold:.6g} "
               f"({bundle.manifest['threshold'].get('method')})")
    click.echo(f"data       {data}: {len(table)} rows at {rate:g} Hz = {len(table) / rate:.1f} s; {len(scores)} windows "
               f"(window {bundle.window}, stride {bundle.stride})"
               + (f"; {int((labels == 0).sum())} normal, {int((labels == 1).sum())} anomalous" if labels is not None else ""))
    click.echo(f"alarm      raise when {settings.k} of {settings.n} windows exceed, clear after {settings.m} below "
               f"threshold x (1 - {settings.deadband:g}), at most {settings.flood_limit} per {settings.flood_window_s:g} s")
    click.echo(f"scores     normal: median {q[0]:.4g}, p90 {q[1]:.4g}, p99 {q[2]:.4g}, p99.9 {q[3]:.4g}, max {normal_scores.max():.4g}")
    cal = bundle.calibration_scores
    if len(cal):
        c = np.percentile(cal, [50, 99])
        click.echo(f"calibration {len(cal)} windows: median {c[0]:.4g}, p99 {c[1]:.4g}, max {cal.max():.4g}")
    for line in _histogram(normal_scores):
        click.echo(line)

    wanted = list(methods) or [*DEFAULT_METHODS, *(LABEL_METHODS if labels is not None else ())]
    candidates = [evaluate_threshold("current (bundle)", bundle.threshold, scores, times, labels, settings)]
    for method in wanted:
        name, v = _resolve(method, scores, times, labels, settings)
        candidates.append(evaluate_threshold(name, v, scores, times, labels, settings))
    if value is not None:
        candidates.append(evaluate_threshold("manual", float(value), scores, times, labels, settings))
    span_h = _span_seconds(times[labels == 0] if labels is not None else times) / 3600
    click.echo(f"\ncandidates (alarms counted on {span_h * 60:.1f} min of normal data, scaled to a day)")
    head = ["CANDIDATE", "THRESHOLD", "NORMAL>THR", "ALARMS", "ALARMS/DAY"]
    if labels is not None:
        head += ["RECALL", "PRECISION", "DETECTED", "DELAY_S"]
    rows = [head]
    for cnd in candidates:
        row = [cnd.name, f"{cnd.value:.6g}", f"{cnd.above_normal * 100:.2f}%", str(cnd.alarms), _fmt(cnd.alarms_per_day, ".1f")]
        if labels is not None:
            row += [_fmt(cnd.recall), _fmt(cnd.precision), {True: "yes", False: "no", None: "-"}[cnd.detected],
                    _fmt(cnd.detection_delay_s, ".2f")]
        rows.append(row)
    widths = [max(len(r[i]) for r in rows) for i in range(len(head))]
    for r in rows:
        click.echo("  ".join(v.ljust(w) for v, w in zip(r, widths)).rstrip())
    if span_h < 24:
        click.echo(f"note: {span_h:.2g} h of normal data; alarms a day are extrapolated, and 0 alarms only says "
                   f"fewer than about {24 / span_h:.0f} a day. Tune on a day or more of normal operation.")
    if plot:
        path = _plot(plot, scores, times, labels, candidates, bundle)
        click.echo(f"plot       {path}")
    if apply:
        chosen = candidates[-1] if value is not None else candidates[1]
        _apply(bundle, chosen, reason or "", out, force, data, table.fingerprint(), len(scores))


def _plot(path: str, scores: Any, times: Any, labels: Any | None, candidates: list[Candidate], bundle: Any) -> Path:
    from edge_runtime.errors import require

    mpl = require("matplotlib", "train")
    mpl.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    fig, (ax_h, ax_t) = plt.subplots(2, 1, figsize=(10, 7), constrained_layout=True)
    normal = labels == 0 if labels is not None else np.ones(len(scores), dtype=bool)
    bins = np.histogram_bin_edges(scores, bins=60)
    ax_h.hist(scores[normal], bins=bins, alpha=0.7, label="normal windows", log=True)
    if labels is not None and (labels == 1).any():
        ax_h.hist(scores[labels == 1], bins=bins, alpha=0.6, label="anomalous windows", log=True)
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for i, c in enumerate(candidates):
        col = colors[(i + 2) % len(colors)]
        label = f"{c.name}: {c.value:.4g} ({_fmt(c.alarms_per_day, '.1f')}/day)"
        ax_h.axvline(c.value, color=col, linestyle="--", label=label)
        ax_t.axhline(c.value, color=col, linestyle="--", linewidth=0.8)
    ax_h.set_xlabel("window score")
    ax_h.set_ylabel("windows (log)")
    ax_h.set_title(f"{bundle.model_id} v{bundle.version}: score distribution and candidate thresholds")
    ax_h.legend(fontsize=7)
    ax_t.plot(times, scores, linewidth=0.6, color="black")
    if labels is not None and (labels == 1).any():
        ax_t.fill_between(times, 0, 1, where=labels == 1, transform=ax_t.get_xaxis_transform(), alpha=0.15,
                          color="red", label="labelled anomalous")
        ax_t.legend(fontsize=7)
    ax_t.set_xlabel("time (s)")
    ax_t.set_ylabel("score")
    ax_t.set_title("score timeline")
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=100)
    plt.close(fig)
    return out


def _default_out(bundle_path: Path, version: int) -> Path:
    import re

    stem = re.sub(r"\.v\d+$", "", bundle_path.stem)
    return bundle_path.with_name(f"{stem}.v{version}{bundle_path.suffix or '.ewb'}")


def _check_value(bundle: Any, value: float, force: bool) -> float:
    from edge_runtime.errors import ConfigError
    from edge_runtime.remote_threshold import threshold_bounds

    if not math.isfinite(value) or value <= 0:
        raise ConfigError(f"threshold {value!r} is not a finite positive number; window scores are >= 0, give a value above 0")
    lo, hi = threshold_bounds(bundle.calibration_scores, bundle.threshold)
    if not lo <= value <= hi and not force:
        raise ConfigError(f"threshold {value!r} is outside {lo:.6g} .. {hi:.6g} (calibration median .. 10 x max); the "
                          "alarm would chatter or never fire. Pick a value inside, or pass --force if the plant really changed")
    return value


def _apply(bundle: Any, chosen: Candidate, reason: str, out: str | None, force: bool, data: str, fingerprint: str,
           n_windows: int) -> None:
    from datetime import datetime, timezone

    from edge_runtime.errors import ConfigError
    from tools.remote import who

    value = _check_value(bundle, float(chosen.value), force)
    src = Path(bundle.path)
    old = dict(bundle.manifest["threshold"])
    old_version, old_sha = bundle.version, bundle.sha256
    new_version = old_version + 1
    target = Path(out) if out else _default_out(src, new_version)
    if target.resolve() == src.resolve():
        raise ConfigError(f"--out {str(target)!r} is the input bundle; the old version is kept, so write the new one elsewhere")
    if target.exists():
        raise ConfigError(f"{str(target)!r} already exists; pass --out NEW.ewb (bundles are never overwritten by --apply)")
    history = list(old.get("history", [])) + [{k: v for k, v in old.items() if k != "history"}]
    scores_from = f"{n_windows} windows of {Path(data).name}"
    bundle.manifest["threshold"] = {**{k: v for k, v in old.items() if k != "history"}, "value": value,
                                    "method": chosen.name, "scores_from": scores_from, "history": history,
                                    # export keeps an operator's threshold instead of recalibrating it
                                    "set_by": "operator"}
    bundle.manifest["model"]["version"] = new_version
    entry = {"who": who(), "when": datetime.now(timezone.utc).isoformat(timespec="seconds"), "why": reason,
             "what": "threshold", "old": old.get("value"), "new": value, "method": chosen.name,
             "data": str(data), "data_sha256": fingerprint, "from_version": old_version, "from_sha256": old_sha,
             "expected_alarms_per_day": None if math.isnan(chosen.alarms_per_day) else round(chosen.alarms_per_day, 3)}
    bundle.manifest.setdefault("audit", []).append(entry)
    was_signed = bundle.signature is not None
    bundle.save(target)
    click.echo(f"applied    threshold {old.get('value'):.6g} -> {value:.6g} ({chosen.name}); wrote {target} "
               f"(model v{new_version}); {src} (v{old_version}) is unchanged")
    if was_signed or bundle.signature is None:
        click.echo(f"note       {target} is unsigned; sign it before flashing: edgewatch sign {target} --key KEY")


# ------------------------------------------------------------------- remote
@threshold.command("set", context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--device", required=True, help="Device id (the <device> in ROOT/<device>/...).")
@mqtt_options
@click.option("--value", type=float, default=None, help="New threshold.")
@click.option("--method", default=None, help="Computed on the device from its calibration scores: percentile:P, sigma:K, far:RATE.")
@click.option("--reset", is_flag=True, help="Go back to the bundle's own threshold.")
@click.option("--reason", default=None, help="Why (kept in the device's audit log).")
@click.option("--key", "key_path", type=click.Path(dir_okay=False), default=None,
              help="Ed25519 private key to sign the command (needed when the device sets security.command_public_key).")
@click.option("--timeout", type=click.FloatRange(min=0.1), default=15.0, show_default=True, help="Seconds to wait for the ack.")
def set_cmd(device: str, value: float | None, method: str | None, reset: bool, reason: str | None, key_path: str | None,
            timeout: float, **params: Any) -> None:
    """Change the threshold of a running device and wait for its ack."""
    from edge_runtime.errors import ConfigError
    from tools.remote import operator_client_from, send_command

    given = [n for n, v in (("--value", value), ("--method", method), ("--reset", reset or None)) if v is not None]
    if len(given) != 1:
        raise ConfigError(f"give exactly one of --value X, --method M, --reset (got {', '.join(given) or 'none'})")
    if value is not None and (not math.isfinite(value) or value <= 0):
        raise ConfigError(f"--value {value!r} is not a finite positive number; window scores are >= 0, give a value above 0")
    args: dict[str, Any] = {"value": value} if value is not None else {"method": method} if method else {"reset": True}
    if reason:
        args["reason"] = reason
    with operator_client_from(params) as client:
        result = send_command(client, device, "threshold/set", args, root=params["root"], key_path=key_path, timeout=timeout)
    bounds = result.get("bounds")
    click.echo(f"{device}: threshold {result.get('previous')} -> {result.get('threshold')} ({result.get('method')}), "
               f"model {result.get('model_id')} v{result.get('model_version')}, authorized by {result.get('auth')}"
               + (f", bounds {bounds[0]:.6g} .. {bounds[1]:.6g}" if bounds else "") + "; persisted on the device")

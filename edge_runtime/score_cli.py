"""``edgewatch score`` and ``edgewatch info``: gateway-safe bundle commands (no TensorFlow)."""

from __future__ import annotations

import csv
import json
import os
import tempfile
from pathlib import Path
from typing import Any

import click

__all__ = ["score", "info", "format_info"]

_DELEGATE_HELP = "auto|cpu|xnnpack|edgetpu|gpu[:LIBRARY]; falls back to CPU when a delegate cannot load."


@click.command()
@click.option("--bundle", "bundle_path", required=True, type=click.Path(dir_okay=False), help="Model bundle (.ewb).")
@click.argument("data", type=click.Path(dir_okay=False))
@click.option("--out", required=True, type=click.Path(dir_okay=False), help="CSV to write, one row per input row.")
@click.option("--format", "fmt", default="auto", show_default=True, type=click.Choice(["auto", "csv", "cmapss"]))
@click.option("--units", default=None, help="C-MAPSS units to score, e.g. 81-100.")
@click.option("--time-column", default=None, help="CSV column with timestamps (default: time/timestamp if present).")
@click.option("--delegate", default="auto", show_default=True, help=_DELEGATE_HELP)
def score(bundle_path: str, data: str, out: str, fmt: str, units: str | None, time_column: str | None, delegate: str) -> None:
    """Score DATA with a bundle's runtime model, exactly as the gateway would.

    Each output row is one input row, in input order: ``score`` is the score of
    the window that ends at that row (empty for the first window-1 rows of each
    unit) and ``is_anomaly`` is 1 when the score is above the bundle's threshold.
    Categorical columns (bundles trained with --categorical) are encoded with the
    bundle's vocabulary; unseen categories are reported on stderr and scored.
    """
    import numpy as np

    from edge_runtime.bundle import Bundle
    from edge_runtime.categorical import load_bundle_table
    from edge_runtime.scorer import BundleScorer

    bundle = Bundle.load(bundle_path)
    table, unseen = load_bundle_table(bundle, [data], format=fmt, time_column=time_column, units=units)
    scorer = BundleScorer(bundle, delegate=delegate)
    if scorer.model.fallback:
        click.echo(f"warning: {scorer.model.fallback}", err=True)
    for u in unseen:
        click.echo(f"warning: {u.message()}", err=True)
    result = scorer.score_rows(table.values, table.segments)
    if len(result.scores) == 0:
        from edge_runtime.errors import DataError

        raise DataError(f"{data}: {len(table)} rows give no complete window of {bundle.window} (windows never span two "
                        f"units); give at least {bundle.window} consecutive rows")
    scores = np.full(len(table), np.nan)
    top = [""] * len(table)
    scores[result.end_rows] = result.scores
    names = bundle.channel_names
    for row, contrib in zip(result.end_rows, result.contributions):
        top[row] = names[int(np.argmax(contrib))]
    header = ["row"] + (["time"] if table.time is not None else []) + (["unit"] if "unit" in table.extra else [])
    header += ["score", "is_anomaly", "top_channel"]
    rows = []
    for i in range(len(table)):
        r: list[Any] = [i]
        if table.time is not None:
            r.append(table.time[i])
        if "unit" in table.extra:
            r.append(int(table.extra["unit"][i]))
        if np.isnan(scores[i]):
            r += ["", "", ""]
        else:
            r += [repr(float(scores[i])), int(scores[i] > scorer.threshold), top[i]]
        rows.append(r)
    _write_csv_atomically(Path(out), header, rows)
    n_alarm = int(np.sum(result.scores > scorer.threshold))
    click.echo(f"scored {len(result.scores)} windows of {len(table)} rows on {scorer.backend} ({bundle.runtime_model}); "
               f"{n_alarm} above threshold {scorer.threshold:.6g}; wrote {out}")


def _write_csv_atomically(path: Path, header: list[str], rows: list[list[Any]]) -> None:
    from edge_runtime.errors import ConfigError

    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    except OSError as err:
        raise ConfigError(f"cannot write --out {str(path)!r}: {err.strerror or err}; choose a writable path") from err
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes 0600; a scores file is for sharing
    try:
        with os.fdopen(fd, "w", newline="") as fh:
            w = csv.writer(fh)
            w.writerow(header)
            w.writerows(rows)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


@click.command()
@click.argument("bundle_path", metavar="BUNDLE", type=click.Path(dir_okay=False))
@click.option("--json", "as_json", is_flag=True, help="Print the whole manifest as JSON.")
def info(bundle_path: str, as_json: bool) -> None:
    """Show what a bundle holds: model, channels, threshold, ops, parity and Edge TPU figures."""
    from edge_runtime.bundle import Bundle

    bundle = Bundle.load(bundle_path)
    if as_json:
        click.echo(json.dumps(bundle.manifest, indent=1, sort_keys=True))
        return
    click.echo(format_info(bundle))


def format_info(bundle: Any) -> str:
    import numpy as np

    m = bundle.manifest
    model = m["model"]
    lines = [
        f"bundle     {bundle.path}  (schema {m['schema_version']}, sha256 {bundle.sha256[:16]}, "
        f"{'signed' if bundle.signature else 'unsigned'})",
        f"model      {model.get('id')} v{model.get('version')}  {model.get('type')} autoencoder, "
        f"{model.get('parameters', '?')} parameters, edgewatch {model.get('edgewatch_version')}, created {model.get('created')}",
        f"channels   {', '.join(bundle.channel_names)}",
        *([f"categorical {', '.join(f'{c} ({len(v)} values)' for c, v in m['categorical']['vocabulary'].items())}, "
           "one-hot encoded"] if m.get("categorical") else []),
        f"window     {m['window']} samples, stride {m['stride']}"
        + (f", {m['sample_rate_hz']:g} Hz" if m.get("sample_rate_hz") else ""),
        f"score      {m['score']['method']} reduced by {m['score']['reduce']} over time"
        + (f", channel weights {m['score']['channel_weights']}" if m['score'].get('channel_weights') else "")
        + (f", residual averaged over {m['score']['smooth']} steps" if m['score'].get('smooth', 1) > 1 else "")
        + (f", plus {m['score'].get('latent_weight', 1)} x z({m['score']['latent']})" if m['score'].get('latent', 'none') != 'none' else ""),
        f"threshold  {m['threshold']['value']:.6g}  ({m['threshold'].get('method')} of {m['threshold'].get('scores_from')} validation scores)",
    ]
    cal = np.asarray(m.get("calibration", {}).get("scores", []))
    if len(cal):
        p50, p99 = np.percentile(cal, [50, 99])
        lines.append(f"calibration {len(cal)} normal windows: median {p50:.4g}, p99 {p99:.4g}, max {cal.max():.4g}")
    tr = m.get("training", {})
    if tr:
        lines.append(f"training   {tr.get('rows')} rows, {tr.get('train_windows')} train / {tr.get('validation_windows')} "
                     f"validation windows ({tr.get('validation_split')}), {tr.get('epochs')} epochs, "
                     f"{tr.get('seconds')} s, data sha256 {str(tr.get('data_fingerprint'))[:16]}")
    lines.append(f"runtime    {m['runtime']['model']}")
    for name, d in sorted(m.get("models", {}).items()):
        q = d["input"]
        quant = f" input scale {q['scale']:.6g} zero point {q['zero_point']}" if q["dtype"] != "float32" else ""
        lines.append(f"  {name}: {d['size'] / 1024:.1f} KiB, {q['dtype']} input {q['shape']}{quant}")
        lines.append(f"    ops: {' '.join(d['ops'])}")
        tpu = d.get("edgetpu")
        if tpu:
            verdict = "maps entirely onto the Edge TPU" if tpu["compatible"] else tpu["reason"]
            lines.append(f"    edge tpu: {tpu['on_tpu']}/{tpu['on_tpu'] + tpu['on_cpu']} ops on the TPU; {verdict}"
                         + ("; compiled" if tpu.get("compiled") else ""))
    for name, p in sorted(m.get("parity", {}).items()):
        figs = ", ".join(f"{k} {p[k]}" for k in ("spearman", "relative_error_median", "decision_agreement",
                                                   "roc_auc_reference", "roc_auc_quantized", "roc_auc_drop") if k in p)
        state = "passed" if p.get("passed") else ("FORCED past failures: " + "; ".join(p.get("failures", [])))
        lines.append(f"parity     {name} vs {p.get('reference')}: {state}; {figs}")
    for k, v in sorted(m.get("metrics", {}).items()):
        lines.append(f"metric     {k} = {v:.6g}" if isinstance(v, float) else f"metric     {k} = {v}")
    audit = m.get("audit", [])
    for entry in audit[-5:]:
        lines.append(f"audit      {entry}")
    lines.append("members    " + ", ".join(f"{n} ({d['size'] / 1024:.1f} KiB)" for n, d in sorted(m["members"].items())))
    return "\n".join(lines)

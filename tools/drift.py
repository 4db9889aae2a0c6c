"""``edgewatch drift``: do new data score like the bundle's calibration data?

Gateway-safe (no TensorFlow): scoring goes through :class:`edge_runtime.scorer.BundleScorer`,
the statistics through :mod:`edge_runtime.drift`, which the gateway's metrics use too.
"""

from __future__ import annotations

import json

import click

__all__ = ["drift"]


@click.command()
@click.argument("bundle_path", metavar="BUNDLE", type=click.Path(dir_okay=False))
@click.argument("data", nargs=-1, required=True, type=click.Path(dir_okay=False))
@click.option("--format", "fmt", default="auto", show_default=True, type=click.Choice(["auto", "csv", "cmapss"]))
@click.option("--units", default=None, help="C-MAPSS units to check, e.g. 81-100.")
@click.option("--time-column", default=None, help="CSV column with timestamps (default: time/timestamp if present).")
@click.option("--alpha", default=0.01, show_default=True, type=float, help="KS significance level.")
@click.option("--min-statistic", default=0.1, show_default=True, type=float,
              help="Smallest KS statistic that counts as material drift (large samples make tiny shifts significant).")
@click.option("--max-alarm-shift", default=0.05, show_default=True, type=float,
              help="Largest tolerated change of the alarm rate (absolute, 0.05 = 5 points).")
@click.option("--delegate", default="auto", show_default=True, help="auto|cpu|xnnpack|edgetpu|gpu[:LIBRARY].")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
def drift(bundle_path: str, data: tuple[str, ...], fmt: str, units: str | None, time_column: str | None,
          alpha: float, min_statistic: float, max_alarm_shift: float, delegate: str, as_json: bool) -> None:
    """Compare the score distribution of DATA with BUNDLE's calibration scores.

    Prints the two-sample Kolmogorov-Smirnov statistic and p-value, the alarm
    rate on DATA against the calibration alarm rate, and whether retraining is
    advisable. Exit code 0 either way; 2 for bad input.

    \b
    Example:
      edgewatch drift pump3.ewb last_week.csv
    """
    import numpy as np

    from edge_runtime.bundle import Bundle
    from edge_runtime.categorical import load_bundle_table
    from edge_runtime.drift import drift_report
    from edge_runtime.errors import BundleError
    from edge_runtime.scorer import BundleScorer

    for name, value, low_open in (("--alpha", alpha, True), ("--min-statistic", min_statistic, False),
                                  ("--max-alarm-shift", max_alarm_shift, False)):
        if not (0 < value < 1 if low_open else 0 <= value <= 1):
            raise click.BadParameter(f"{value!r} must be between 0 and 1", param_hint=name)
    bundle = Bundle.load(bundle_path)
    reference = bundle.calibration_scores
    if len(reference) == 0:
        raise BundleError(f"{bundle_path}: has no calibration scores; re-export it with 'edgewatch export'")
    table, unseen = load_bundle_table(bundle, data, format=fmt, time_column=time_column, units=units)
    for u in unseen:
        click.echo(f"warning: {u.message()}", err=True)
    result = BundleScorer(bundle, delegate=delegate).score_rows(table.values, table.segments)
    if len(result.scores) == 0:
        raise click.BadParameter(f"{table.source}: {len(table)} rows give no window of {bundle.window}; give more rows",
                                 param_hint="DATA")
    report = drift_report(np.asarray(result.scores), reference, bundle.threshold, alpha=alpha,
                          min_statistic=min_statistic, max_alarm_shift=max_alarm_shift)
    if as_json:
        extra = {"unseen_categories": {u.column: {"rows": u.rows, "values": list(u.values)} for u in unseen}} if unseen else {}
        click.echo(json.dumps({"bundle": str(bundle_path), "data": table.source, **report.as_dict(), **extra}, indent=1))
        return
    click.echo(f"windows       {report.n_new} new vs {report.n_reference} calibration")
    click.echo(f"KS statistic  {report.statistic:.4f} (p = {report.p_value:.3g})")
    click.echo(f"alarm rate    {report.alarm_rate_new:.2%} new vs {report.alarm_rate_reference:.2%} calibration "
               f"({report.alarm_rate_shift:+.2%}) at threshold {report.threshold:.6g}")
    verdict = "retraining advised" if report.retrain_advised else "no retraining needed"
    click.echo(f"verdict       {verdict}: {report.reason}")

"""Score drift: numpy KS test against scipy, the drift verdict, and ``edgewatch drift`` on a real bundle."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from edge_runtime.drift import drift_report, kolmogorov_sf, ks_2samp
from edge_runtime.errors import ConfigError, DataError
from tools.cli import cli


@pytest.mark.parametrize("shift", [0.0, 0.1, 0.3, 1.0])
def test_ks_matches_scipy(shift: float) -> None:
    stats = pytest.importorskip("scipy.stats")
    rng = np.random.default_rng(3)
    a, b = rng.normal(size=300), rng.normal(shift, size=450)
    ours = ks_2samp(a, b)
    ref = stats.ks_2samp(a, b)
    assert ours.statistic == pytest.approx(ref.statistic, abs=1e-12)
    en = np.sqrt(300 * 450 / 750)
    assert ours.p_value == pytest.approx(stats.kstwobign.sf(ref.statistic * en), rel=1e-9, abs=1e-300)


@pytest.mark.parametrize("x", [0.05, 0.4, 0.9, 1.17, 1.19, 1.6, 2.5, 4.0])
def test_kolmogorov_tail_matches_scipy_on_both_branches(x: float) -> None:
    stats = pytest.importorskip("scipy.stats")
    assert kolmogorov_sf(x) == pytest.approx(stats.kstwobign.sf(x), rel=1e-9, abs=1e-15)


def test_identical_samples_do_not_drift_and_shifted_ones_do() -> None:
    rng = np.random.default_rng(0)
    ref = rng.gamma(2.0, size=1000)
    same = drift_report(ref.copy(), ref, threshold=float(np.quantile(ref, 0.99)))
    assert same.statistic == 0 and same.p_value == 1 and not same.retrain_advised
    moved = drift_report(ref * 1.8, ref, threshold=float(np.quantile(ref, 0.99)))
    assert moved.retrain_advised and moved.p_value < 1e-6
    assert moved.alarm_rate_shift > 0.05 and "alarm rate moved" in moved.reason


def test_gateway_metric_uses_the_same_statistic() -> None:
    from edge_runtime.metrics import Metrics, ks_statistic

    rng = np.random.default_rng(1)
    live, cal = rng.normal(0.3, size=200), rng.normal(size=500)
    assert ks_statistic(live, cal) == ks_2samp(live, cal).statistic
    assert ks_statistic(np.empty(0), cal) is None
    m = Metrics()
    m.live_scores.extend(live.tolist())
    snap = m.snapshot(calibration=cal, queue_depth=0, outbox_depth=0, events_dropped=0)
    assert snap["drift_ks"] == round(ks_2samp(live, cal).statistic, 4)
    assert snap["drift_p"] == pytest.approx(ks_2samp(live, cal).p_value, rel=1e-3)


@pytest.mark.parametrize("bad", [{"alpha": 0.0}, {"alpha": 1.5}, {"min_statistic": -0.1}, {"max_alarm_shift": 2.0}])
def test_drift_report_rejects_bad_settings(bad: dict) -> None:
    with pytest.raises(ConfigError):
        drift_report(np.ones(5), np.ones(5), 1.0, **bad)
    with pytest.raises(DataError, match="non-empty"):
        ks_2samp(np.empty(0), np.ones(3))


def test_drift_cli_on_healthy_and_faulty_data(tiny_bundle: Path, vibration_csvs: dict[str, Path]) -> None:
    runner = CliRunner()
    healthy = runner.invoke(cli, ["drift", str(tiny_bundle), str(vibration_csvs["healthy"]), "--json"])
    assert healthy.exit_code == 0, healthy.output
    h = json.loads(healthy.output)
    faulty = runner.invoke(cli, ["drift", str(tiny_bundle), str(vibration_csvs["bearing"]), "--json"])
    assert faulty.exit_code == 0, faulty.output
    f = json.loads(faulty.output)
    assert f["retrain_advised"] and f["statistic"] > h["statistic"]
    assert f["alarm_rate_new"] > h["alarm_rate_new"]
    text = runner.invoke(cli, ["drift", str(tiny_bundle), str(vibration_csvs["bearing"])])
    assert text.exit_code == 0 and "retraining advised" in text.output and "KS statistic" in text.output


def test_drift_cli_bad_alpha_is_one_line_exit_2(tiny_bundle: Path, vibration_csvs: dict[str, Path]) -> None:
    res = CliRunner().invoke(cli, ["drift", str(tiny_bundle), str(vibration_csvs["healthy"]), "--alpha", "-1"])
    assert res.exit_code == 2
    errors = [line for line in res.output.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1 and "--alpha" in errors[0]

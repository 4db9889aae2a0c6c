"""The alarm state machine, driven without threads or clocks."""

from __future__ import annotations

import pytest

from edge_runtime.alarms import AlarmMachine
from edge_runtime.config import AlarmSettings


def drive(machine: AlarmMachine, scores: list[float], threshold: float = 1.0, start: float = 0.0) -> list[str | None]:
    out = []
    for i, s in enumerate(scores):
        ev = machine.update(s, threshold, now=start + i, window_start=start + i - 1, window_end=start + i,
                            contributions=[0.7, 0.2, 0.1])
        out.append(ev.state if ev else None)
    return out


@pytest.mark.parametrize(
    ("k", "n", "scores", "raised_at"),
    [(1, 1, [0, 2], 1), (2, 3, [2, 0, 2], 2), (3, 3, [2, 2, 0, 2, 2, 2], 5), (2, 2, [2, 0, 2, 0, 2, 2], 5)],
    ids=["1of1", "2of3", "3of3-reset-by-low", "2of2-alternating"],
)
def test_on_delay_raises_when_k_of_n_exceed(k: int, n: int, scores: list[float], raised_at: int) -> None:
    states = drive(AlarmMachine(AlarmSettings(k=k, n=n, m=2), ["a", "b", "c"]), scores)
    assert states.index("raised") == raised_at
    assert states.count("raised") == 1


def test_off_delay_uses_deadband_and_m_consecutive() -> None:
    m = AlarmMachine(AlarmSettings(k=1, n=1, m=3, deadband=0.1), ["a", "b", "c"])
    # 0.95 is below the threshold but inside the deadband: it does not count toward clearing.
    states = drive(m, [2, 0.5, 0.5, 0.95, 0.5, 0.5, 0.5])
    assert states == ["raised", None, None, None, None, None, "cleared"]


def test_events_only_on_state_changes_and_carry_top_channels() -> None:
    m = AlarmMachine(AlarmSettings(k=1, n=1, m=1, deadband=0.0, top_channels=2), ["a", "b", "c"])
    ev = m.update(5.0, 1.0, now=0.0, window_start=-1.0, window_end=0.0, contributions=[0.1, 0.6, 0.3])
    assert ev is not None and ev.state == "raised"
    assert ev.top_channels == (("b", 0.6), ("c", 0.3))
    assert [m.update(5.0, 1.0, now=float(i)) for i in range(1, 5)] == [None] * 4


def test_ema_smoothing_ignores_a_single_spike() -> None:
    plain = AlarmMachine(AlarmSettings(k=1, n=1, m=1), ["a"])
    smooth = AlarmMachine(AlarmSettings(k=1, n=1, m=1, ema_alpha=0.2), ["a"])
    scores = [0.5, 0.5, 3.0, 0.5, 0.5]
    assert "raised" in drive(plain, scores)
    assert "raised" not in drive(smooth, scores)


def test_flood_limit_counts_suppressed_raises_and_hides_their_clears() -> None:
    m = AlarmMachine(AlarmSettings(k=1, n=1, m=1, deadband=0.0, flood_limit=2, flood_window_s=600), ["a"])
    states = drive(m, [2, 0, 2, 0, 2, 0, 2, 0])
    assert states == ["raised", "cleared", "raised", "cleared", None, None, None, None]
    assert m.flood_suppressed == 2
    # After the flood window has passed, raises are announced again.
    assert drive(m, [2, 0], start=1000.0) == ["raised", "cleared"]


def test_shelved_alarm_is_announced_when_the_shelf_expires_if_still_active() -> None:
    m = AlarmMachine(AlarmSettings(k=1, n=1, m=2, deadband=0.0), ["a"])
    m.shelve(until=3.0)
    states = drive(m, [2, 2, 2, 2, 0, 0])
    assert states == [None, None, None, "raised", None, "cleared"]
    assert m.shelve_suppressed == 1


def test_shelved_alarm_that_clears_while_shelved_is_never_announced() -> None:
    m = AlarmMachine(AlarmSettings(k=1, n=1, m=1, deadband=0.0), ["a"])
    m.shelve(until=100.0)
    assert drive(m, [2, 0, 2, 0]) == [None] * 4
    m.unshelve()
    assert drive(m, [2], start=4.0) == ["raised"]


def test_host_replay_raises_where_the_gateway_machine_does() -> None:
    import numpy as np

    from edge_runtime.alarms import raised_indices
    from trainer.evaluate import first_alarms

    scores = [0, 2, 2, 0, 2, 2, 2, 0, 0, 0, 0, 0, 2, 2, 2]
    settings = AlarmSettings(k=3, n=3, m=2, deadband=0.0)
    assert raised_indices(scores, 1.0, settings) == [6, 14]
    segments = np.array([0] * 8 + [1] * 7)
    assert first_alarms(np.array(scores, dtype=float), 1.0, segments, 3, 3) == {0: 6, 1: 14}

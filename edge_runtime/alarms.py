"""The alarm state machine, in the manner of ISA-18.2; pure, no threads, no clocks.

One :class:`AlarmMachine` per device takes one window score at a time and
returns an :class:`AlarmEvent` only when the announced state changes:

* **on-delay**: raise when ``k`` of the last ``n`` (optionally EMA-smoothed)
  scores exceed the threshold;
* **off-delay with deadband**: clear after ``m`` consecutive scores below
  ``threshold * (1 - deadband)``;
* **shelving**: until a given time a raised alarm is not announced; if it is
  still active when the shelf expires it is announced then (as ISA-18.2 asks);
* **flood limit**: at most ``flood_limit`` raised events per ``flood_window_s``;
  the rest are counted, and their matching clears are not announced either,
  so consumers never see a clear without its raise.

Time is whatever the caller passes as ``now`` (seconds), so tests drive it.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from edge_runtime.config import AlarmSettings

__all__ = ["AlarmEvent", "AlarmMachine", "raised_indices"]

State = Literal["raised", "cleared"]


@dataclass(frozen=True)
class AlarmEvent:
    """A change of announced alarm state, caused by one window."""

    state: State
    score: float                          # the score the decision used (smoothed if EMA is on)
    raw_score: float
    threshold: float
    window_start: float                   # UTC epoch seconds of the window's first and last sample
    window_end: float
    top_channels: tuple[tuple[str, float], ...]


class AlarmMachine:
    """Alarm logic for one device.

    >>> from edge_runtime.config import AlarmSettings
    >>> m = AlarmMachine(AlarmSettings(k=2, n=3, m=2, deadband=0.1), ["a", "b"])
    >>> [e.state if (e := m.update(s, 1.0, now=float(i))) else None for i, s in enumerate([2, 0, 2, 2, 0.95, 0.5, 0.5])]
    [None, None, 'raised', None, None, None, 'cleared']
    """

    def __init__(self, settings: AlarmSettings, channels: Sequence[str]) -> None:
        self.settings = settings
        self.channels = list(channels)
        self._history: deque[bool] = deque(maxlen=settings.n)
        self._ema: float | None = None
        self._below = 0
        self.active = False                  # the process condition, shelved or not
        self._announced = False              # whether consumers were told it is raised
        self._suppressed_by: str | None = None
        self._raised_times: deque[float] = deque()
        self.shelved_until: float = 0.0
        self.flood_suppressed = 0
        self.shelve_suppressed = 0

    # -------------------------------------------------------------- shelving
    def shelve(self, until: float) -> None:
        self.shelved_until = float(until)

    def unshelve(self) -> None:
        self.shelved_until = 0.0

    def is_shelved(self, now: float) -> bool:
        return now < self.shelved_until

    @property
    def state(self) -> State:
        return "raised" if self._announced else "cleared"

    # ---------------------------------------------------------------- update
    def update(self, score: float, threshold: float, *, now: float, window_start: float | None = None,
               window_end: float | None = None, contributions: Sequence[float] | None = None) -> AlarmEvent | None:
        s = self._smooth(float(score))
        self._history.append(s > threshold)
        if not self.active:
            if sum(self._history) >= self.settings.k:
                self.active = True
                self._below = 0
                return self._try_announce(s, score, threshold, now, window_start, window_end, contributions)
            return None
        if s < threshold * (1.0 - self.settings.deadband):
            self._below += 1
        else:
            self._below = 0
        if self._below >= self.settings.m:
            self.active = False
            self._history.clear()
            self._suppressed_by = None
            if self._announced:
                self._announced = False
                return self._event("cleared", s, score, threshold, window_start, window_end, contributions)
            return None
        if not self._announced and self._suppressed_by == "shelve" and not self.is_shelved(now):
            return self._try_announce(s, score, threshold, now, window_start, window_end, contributions)
        return None

    def _smooth(self, score: float) -> float:
        alpha = self.settings.ema_alpha
        if alpha <= 0.0:
            return score
        self._ema = score if self._ema is None else alpha * score + (1.0 - alpha) * self._ema
        return self._ema

    def _try_announce(self, s: float, raw: float, threshold: float, now: float, start: float | None,
                      end: float | None, contributions: Sequence[float] | None) -> AlarmEvent | None:
        if self.is_shelved(now):
            if self._suppressed_by != "shelve":
                self.shelve_suppressed += 1
            self._suppressed_by = "shelve"
            return None
        window = self.settings.flood_window_s
        while self._raised_times and self._raised_times[0] <= now - window:
            self._raised_times.popleft()
        if len(self._raised_times) >= self.settings.flood_limit:
            self.flood_suppressed += 1
            self._suppressed_by = "flood"
            return None
        self._raised_times.append(now)
        self._suppressed_by = None
        self._announced = True
        return self._event("raised", s, raw, threshold, start, end, contributions)

    def _event(self, state: State, s: float, raw: float, threshold: float, start: float | None,
               end: float | None, contributions: Sequence[float] | None) -> AlarmEvent:
        top: tuple[tuple[str, float], ...] = ()
        if contributions is not None:
            ranked = sorted(zip(self.channels, (float(c) for c in contributions)), key=lambda p: -p[1])
            top = tuple(ranked[: self.settings.top_channels])
        return AlarmEvent(state, s, float(raw), float(threshold), float(start or 0.0), float(end or 0.0), top)


def raised_indices(scores: Sequence[float], threshold: float, settings: AlarmSettings,
                   times: Sequence[float] | None = None) -> list[int]:
    """Indices of the windows at which the gateway would announce a raised alarm.

    Replays :class:`AlarmMachine` over a score series, so host-side analysis
    (``edgewatch threshold``, ``edgewatch evaluate``) counts alarms exactly as
    the gateway raises them. ``times`` (seconds) matter for the flood limit and
    default to the window index.
    """
    machine = AlarmMachine(settings, [])
    stamps = range(len(scores)) if times is None else times
    return [i for i, (s, t) in enumerate(zip(scores, stamps))
            if (ev := machine.update(float(s), threshold, now=float(t))) is not None and ev.state == "raised"]

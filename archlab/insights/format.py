"""Numbers as a researcher reads them (plain text, no HTML): template filters of the web pages
and the report."""
from __future__ import annotations

import math
import time


def fitness(value: float | None, stderr: float | None = None) -> str:
    if value is None or not math.isfinite(value):
        return "–"
    text = f"{value:+.4f}"
    return f"{text} ± {stderr:.4f}" if stderr else text


def number(value: float | int | None, digits: int = 3) -> str:
    """Integers with thousands separators, other numbers with `digits` significant digits."""
    if value is None or isinstance(value, bool):
        return "–" if value is None else str(value)
    if isinstance(value, int):
        return f"{value:,}"
    if not math.isfinite(value):
        return str(value)
    if value == 0:
        return "0"
    if abs(value) >= 10 ** digits:
        return f"{value:,.0f}"
    return f"{value:.{digits}g}"


def value(item: object) -> str:
    """Any metric value: numbers via `number`, anything else as text."""
    return number(item) if isinstance(item, (int, float)) and not isinstance(item, bool) else str(item)


def duration(seconds: float | None) -> str:
    if seconds is None or not math.isfinite(seconds):
        return "–"
    if seconds < 10:
        return f"{max(0.0, seconds):.1f}s"
    seconds = int(round(seconds))
    minutes, secs = divmod(seconds, 60)
    hours, minutes = divmod(minutes, 60)
    if hours:
        return f"{hours}h{minutes:02d}m"
    return f"{minutes}m{secs:02d}s" if minutes else f"{secs}s"


def usd(amount: float | None) -> str:
    return "–" if amount is None else f"${amount:,.2f}" if amount >= 0.01 or amount == 0 else f"${amount:.4f}"


def clock(timestamp: float | None) -> str:
    if not timestamp:
        return "–"
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(timestamp))


def delta(new: object, old: object) -> str:
    """new - old for two numbers ("" otherwise), signed."""
    if isinstance(new, bool) or isinstance(old, bool) or not isinstance(new, (int, float)) \
            or not isinstance(old, (int, float)):
        return ""
    change = new - old
    return "±0" if change == 0 else ("+" if change > 0 else "−") + number(abs(change))


FILTERS = {"fitness": fitness, "number": number, "value": value, "duration": duration, "usd": usd, "clock": clock,
           "delta": delta}

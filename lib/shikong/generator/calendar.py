"""Brazilian retail calendar: national holidays and e-commerce events as demand multipliers.

Loops here run over years and named events (a handful), never over data rows.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

import numpy as np


def easter_sunday(year: int) -> date:
    """Gregorian Easter Sunday (anonymous Gregorian algorithm).

    Args:
        year: Calendar year.

    Returns:
        The date of Easter Sunday.
    """
    a = year % 19
    b, c = divmod(year, 100)
    d, e = divmod(b, 4)
    f = (b + 8) // 25
    g = (b - f + 1) // 3
    h = (19 * a + b - d - g + 15) % 30
    i, k = divmod(c, 4)
    ll = (32 + 2 * e + 2 * i - h - k) % 7
    m = (a + 11 * h + 22 * ll) // 451
    month, day = divmod(h + ll - 7 * m + 114, 31)
    return date(year, month, day + 1)


def _nth_weekday(year: int, month: int, weekday: int, n: int) -> date:
    """The n-th given weekday (Mon=0) of a month."""
    first = date(year, month, 1)
    return first + timedelta(days=(weekday - first.weekday()) % 7 + 7 * (n - 1))


def national_holidays(year: int) -> dict[date, str]:
    """Brazilian national holidays (plus Carnival, observed nation-wide by commerce).

    Args:
        year: Calendar year.

    Returns:
        Mapping date -> holiday name.
    """
    easter = easter_sunday(year)
    hol = {
        date(year, 1, 1): "Confraternizacao Universal",
        easter - timedelta(days=48): "Carnaval (segunda)",
        easter - timedelta(days=47): "Carnaval (terca)",
        easter - timedelta(days=2): "Sexta-feira Santa",
        date(year, 4, 21): "Tiradentes",
        date(year, 5, 1): "Dia do Trabalho",
        easter + timedelta(days=60): "Corpus Christi",
        date(year, 9, 7): "Independencia",
        date(year, 10, 12): "Nossa Senhora Aparecida",
        date(year, 11, 2): "Finados",
        date(year, 11, 15): "Proclamacao da Republica",
        date(year, 12, 25): "Natal",
    }
    if year >= 2024:  # national holiday since Lei 14.759/2023
        hol[date(year, 11, 20)] = "Consciencia Negra"
    return hol


def black_friday(year: int) -> date:
    """Black Friday: the day after the US Thanksgiving (4th Thursday of November)."""
    return _nth_weekday(year, 11, 3, 4) + timedelta(days=1)


@dataclass(frozen=True)
class CalendarEffects:
    """Daily demand multipliers.

    Attributes:
        overall: Shape (days,): multiplier on total demand (events, holidays).
        category: Shape (days, n_categories): extra multiplier per category.
    """

    overall: np.ndarray
    category: np.ndarray


# (category, event) -> extra multiplier on top of the overall one.
_CATEGORY_EVENT_BOOST: dict[str, dict[str, float]] = {
    "toys": {"children": 2.2, "christmas": 1.6},
    "perfumery": {"mothers": 1.7, "valentines": 1.5, "christmas": 1.2},
    "watches_gifts": {"mothers": 1.5, "valentines": 1.6, "fathers": 1.4, "christmas": 1.3},
    "health_beauty": {"mothers": 1.3},
    "electronics": {"black_friday": 1.4, "fathers": 1.2},
    "telephony": {"black_friday": 1.4},
    "computers_accessories": {"black_friday": 1.3},
    "cool_stuff": {"christmas": 1.2},
}


def calendar_effects(start: date, days: int, categories: tuple[str, ...]) -> CalendarEffects:
    """Holiday and retail-event multipliers for a date range.

    Args:
        start: First day.
        days: Number of days.
        categories: Category names, in column order of the result.

    Returns:
        The multipliers; 1.0 on ordinary days.
    """
    overall = np.ones(days)
    cat = np.ones((days, len(categories)))
    col = {c: i for i, c in enumerate(categories)}
    end = start + timedelta(days=days - 1)

    def span(a: date, b: date) -> slice | None:
        lo, hi = max((a - start).days, 0), min((b - start).days, days - 1)
        return slice(lo, hi + 1) if lo <= hi else None

    def apply(a: date, b: date, factor: float, event: str | None = None) -> None:
        s = span(a, b)
        if s is None:
            return
        overall[s] *= factor
        if event is None:
            return
        for name, boosts in _CATEGORY_EVENT_BOOST.items():
            if name in col and event in boosts:
                cat[s, col[name]] *= boosts[event]

    for y in range(start.year, end.year + 1):
        for d, name in national_holidays(y).items():
            # People shop less on holidays; New Year and Christmas much less.
            factor = (
                0.5
                if name in ("Confraternizacao Universal", "Natal")
                else (0.75 if name.startswith("Carnaval") else 0.85)
            )
            apply(d, d, factor)
        # Dia do Consumidor (15 March): the Brazilian "mini Black Friday".
        apply(date(y, 3, 14), date(y, 3, 16), 1.15)
        apply(date(y, 3, 15), date(y, 3, 15), 1.3)
        mothers = _nth_weekday(y, 5, 6, 2)
        apply(mothers - timedelta(days=10), mothers - timedelta(days=1), 1.2, "mothers")
        apply(date(y, 6, 5), date(y, 6, 12), 1.1, "valentines")  # Dia dos Namorados
        fathers = _nth_weekday(y, 8, 6, 2)
        apply(fathers - timedelta(days=7), fathers - timedelta(days=1), 1.08, "fathers")
        apply(date(y, 10, 1), date(y, 10, 11), 1.05, "children")  # Dia das Criancas
        bf = black_friday(y)
        apply(date(y, 11, 1), bf - timedelta(days=2), 1.12)  # "Black November"
        apply(bf - timedelta(days=1), bf - timedelta(days=1), 1.5)
        apply(bf, bf, 3.0, "black_friday")
        apply(bf + timedelta(days=1), bf + timedelta(days=1), 1.9)
        apply(bf + timedelta(days=2), bf + timedelta(days=2), 1.5)
        apply(bf + timedelta(days=3), bf + timedelta(days=3), 1.4, "black_friday")  # Cyber Monday
        apply(date(y, 12, 1), date(y, 12, 21), 1.3, "christmas")
        apply(date(y, 12, 22), date(y, 12, 23), 1.1)
        apply(date(y, 12, 24), date(y, 12, 24), 0.7)
        apply(date(y, 12, 26), date(y, 12, 31), 0.85)
    return CalendarEffects(overall=overall, category=cat)

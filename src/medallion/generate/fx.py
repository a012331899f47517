"""FX rates: a mean-reverting random walk per currency around realistic USD levels.

Day 1 holds FX_HISTORY_DATES business days (weekends are gaps) ending on the start date, or the
last business day before it; each later day adds the extract date itself. ``rate`` is units of
the quote currency per 1 USD; bid < rate < ask with a per-currency spread, mid = rate.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa

from medallion.generate import defects, writers
from medallion.generate.context import Day, Run, TableDay
from medallion.generate.faults import DECIMAL_SHIFT, SHIFT_DIVISOR
from medallion.generate.spec import DECIMAL_SHIFTED, FX_HISTORY_DATES, FX_RATES, UNKNOWN_CURRENCY
from medallion.generate.vocab import CURRENCIES, USD

# Where each rate moves (units per USD): the walk stays inside the band.
BANDS: dict[str, tuple[float, float]] = {
    "AUD": (1.45, 1.62),
    "BRL": (4.80, 6.20),
    "CAD": (1.30, 1.44),
    "CHF": (0.84, 0.94),
    "CNY": (6.90, 7.35),
    "CZK": (21.5, 25.0),
    "DKK": (6.60, 7.15),
    "EUR": (0.88, 0.96),
    "GBP": (0.76, 0.83),
    "HUF": (350.0, 400.0),
    "INR": (81.0, 86.5),
    "JPY": (140.0, 160.0),
    "KRW": (1300.0, 1450.0),
    "MXN": (16.5, 20.5),
    "NOK": (10.0, 11.4),
    "PLN": (3.85, 4.35),
    "SEK": (10.0, 11.2),
    "SGD": (1.31, 1.39),
    "USD": (1.0, 1.0),
    "ZAR": (17.5, 19.5),
}
# Half the bid/ask spread, relative to the rate.
HALF_SPREADS: dict[str, float] = {
    "AUD": 0.0004,
    "BRL": 0.0015,
    "CAD": 0.0003,
    "CHF": 0.0003,
    "CNY": 0.0008,
    "CZK": 0.0010,
    "DKK": 0.0006,
    "EUR": 0.0002,
    "GBP": 0.0003,
    "HUF": 0.0010,
    "INR": 0.0010,
    "JPY": 0.0003,
    "KRW": 0.0010,
    "MXN": 0.0012,
    "NOK": 0.0006,
    "PLN": 0.0010,
    "SEK": 0.0006,
    "SGD": 0.0005,
    "USD": 0.0,
    "ZAR": 0.0015,
}
WMR_SOURCED = frozenset({"BRL", "CNY", "INR", "KRW", "MXN", "ZAR"})
MEAN_REVERSION = 0.98
# Absurd rates multiply the level by 1000; only levels below this keep the result under 1e6.
ABSURD_FACTOR = 1000.0
ABSURD_MAX_LEVEL = 200.0
PEGGED_UNKNOWN_LEVEL = 3.75  # QQQ rows look like a pegged currency, so they trip no jump rule

LOW = np.log(np.array([BANDS[c][0] for c in CURRENCIES]))
HIGH = np.log(np.array([BANDS[c][1] for c in CURRENCIES]))
CENTER = (LOW + HIGH) / 2
HALF_WIDTH = (HIGH - LOW) / 2
# The stationary spread of the walk is 40% of the band's half width.
STEP_SIGMA = HALF_WIDTH / 2.5 * np.sqrt(1 - MEAN_REVERSION**2)
SPREAD = np.array([HALF_SPREADS[c] for c in CURRENCIES])
DECIMALS = np.where(np.exp(CENTER) < 10, 6, 4)
ABSURD_ELIGIBLE = np.array(
    [c != "USD" and np.exp(CENTER[i]) < ABSURD_MAX_LEVEL for i, c in enumerate(CURRENCIES)]
)


@dataclass
class FxState:
    """The walk's position and every rate that passes the contract, for as-of lookups."""

    deviation: np.ndarray = field(default_factory=lambda: np.zeros(len(CURRENCIES)))
    valid_days: list[list[np.ndarray]] = field(default_factory=lambda: [[] for _ in CURRENCIES])
    valid_rates: list[list[np.ndarray]] = field(default_factory=lambda: [[] for _ in CURRENCIES])
    first_date: str = ""
    silver_rows: int = 0

    def asof(self, currency: np.ndarray, day_numbers: np.ndarray) -> np.ndarray:
        """The latest valid rate of each currency on or before each day (silver's rule)."""
        currency = np.asarray(currency, dtype=np.int64)
        out = np.empty(len(currency), dtype=np.float64)
        for c in np.unique(currency):
            days = np.concatenate(self.valid_days[c])
            rates = np.concatenate(self.valid_rates[c])
            mask = currency == c
            position = np.searchsorted(days, day_numbers[mask], side="right") - 1
            out[mask] = rates[np.maximum(position, 0)]
        return out


def _walk(rng: np.random.Generator, start: np.ndarray, steps: int) -> np.ndarray:
    """``steps`` positions of the clipped mean-reverting walk, one row per date."""
    out = np.empty((steps, len(CURRENCIES)))
    shocks = rng.standard_normal((steps, len(CURRENCIES))) * STEP_SIGMA
    position = start
    for t in range(steps):
        position = np.clip(MEAN_REVERSION * position + shocks[t], -HALF_WIDTH, HALF_WIDTH)
        out[t] = position
    return out


def _dates(day: Day) -> np.ndarray:
    if not day.is_first:
        return np.array([day.number], dtype=np.int64)
    last = np.busday_offset(np.datetime64(day.date, "D"), 0, roll="backward")
    dates = np.busday_offset(last, np.arange(-(FX_HISTORY_DATES - 1), 1))
    return dates.astype(np.int64)


def generate_fx_day(run: Run, day: Day, state: FxState) -> TableDay:
    """Write ``fx/fx_rates/dt=<day>/fx_rates.jsonl`` and record the valid rates."""
    rng = run.rng(FX_RATES, day, "walk")
    dates = _dates(day)
    if day.is_first:
        start = np.clip(
            rng.standard_normal(len(CURRENCIES)) * HALF_WIDTH / 2.5, -HALF_WIDTH, HALF_WIDTH
        )
        state.first_date = str(np.datetime64(int(dates[0]), "D"))
    else:
        start = state.deviation
    positions = _walk(rng, start, len(dates))
    state.deviation = positions[-1]
    levels = np.exp(CENTER + positions)  # (dates, currencies)

    n_dates, n_ccy = levels.shape
    cells = n_dates * n_ccy
    rate = levels.reshape(-1).copy()
    ccy = np.tile(np.arange(n_ccy), n_dates)
    date_of = np.repeat(dates, n_ccy)
    half_spread = SPREAD[ccy].copy()
    quote = np.array(CURRENCIES, dtype=object)[ccy]

    picker = run.rng(FX_RATES, day, "defects")
    counts = defects.counts_for(FX_RATES, cells)
    if not day.is_first:
        # One rate a day off by a factor of 1000 (a decimal shift): a daily file holds one
        # rate per currency, so only the currency's last rate can show it (the jump rule's
        # history).
        counts["absurd_rate"] = 1
    non_usd = np.flatnonzero(ccy != USD)
    unknown_dates = picker.choice(
        n_dates, size=min(counts["unknown_currency"], n_dates), replace=False
    )
    unknown_ccy = picker.choice(np.flatnonzero(np.arange(n_ccy) != USD), size=len(unknown_dates))
    unknown = np.sort(unknown_dates * n_ccy + unknown_ccy)
    remaining = np.setdiff1d(non_usd, unknown)
    absurd = defects.pick_disjoint(
        picker, remaining[ABSURD_ELIGIBLE[ccy[remaining]]], {"absurd_rate": counts["absurd_rate"]}
    )["absurd_rate"]
    remaining = np.setdiff1d(remaining, absurd)
    picked = defects.pick_disjoint(
        picker,
        remaining,
        {k: counts[k] for k in ("zero_rate", "negative_rate", "malformed_json")},
    )
    picked["absurd_rate"] = absurd
    picked["unknown_currency"] = unknown

    rate[unknown] = PEGGED_UNKNOWN_LEVEL * np.exp(picker.normal(0, 0.001, len(unknown)))
    half_spread[unknown] = 0.0005
    quote[unknown] = UNKNOWN_CURRENCY
    rate[absurd] *= ABSURD_FACTOR
    rate[picked["zero_rate"]] = 0.0
    rate[picked["negative_rate"]] *= -1.0
    if run.faults.has(day.index, DECIMAL_SHIFT, FX_RATES):
        # The source's unit slip: every rate the day would have delivered right, divided by 100.
        # USD per USD is not a quote the provider computes (it stays 1), so it does not shift.
        shifted = np.flatnonzero(~defects.union(picked, cells) & (ccy != USD))
        rate[shifted] /= SHIFT_DIVISOR
        picked[DECIMAL_SHIFTED] = shifted
        counts[DECIMAL_SHIFTED] = len(shifted)

    decimals = np.where(quote == UNKNOWN_CURRENCY, 6, DECIMALS[ccy])
    lines = _lines(date_of, quote, rate, half_spread, decimals, ccy)
    for row in picked["malformed_json"]:
        text = lines[row]
        lines[row] = text[: int(picker.integers(12, len(text) - 4))]

    folder = writers.partition_dir(run.landing_root, FX_RATES, day.date)
    writers.write_lines(folder / "fx_rates.jsonl", pa.array(lines, pa.string()))
    writers.write_control(folder, FX_RATES, day.date, {"fx_rates.jsonl": len(lines)})

    bad = defects.union(picked, cells)
    for c in range(n_ccy):
        good = (~bad) & (ccy == c)
        state.valid_days[c].append(date_of[good])
        state.valid_rates[c].append(np.round(rate[good], DECIMALS[c]))
    state.silver_rows += int((~bad).sum())
    return TableDay(
        FX_RATES,
        files=1,
        rows_written=cells,
        defects={kind: len(picked[kind]) for kind in counts},
        changes={
            "new_dates": n_dates,
            "first_date": str(np.datetime64(int(dates[0]), "D")),
            "last_date": str(np.datetime64(int(dates[-1]), "D")),
        },
        silver_rows=state.silver_rows,
    )


def _lines(
    date_of: np.ndarray,
    quote: np.ndarray,
    rate: np.ndarray,
    half_spread: np.ndarray,
    decimals: np.ndarray,
    ccy: np.ndarray,
) -> list[str]:
    """One JSON object per line with the pinned keys in order (a few tens of thousands of
    lines at most, whatever the scale, so plain ``json.dumps`` is fast enough)."""
    dates = np.datetime_as_string(date_of.astype("datetime64[D]")).tolist()
    bid = rate - np.abs(rate) * half_spread
    ask = rate + np.abs(rate) * half_spread
    out = []
    for i, d in enumerate(dates):
        places = int(decimals[i])
        value = round(float(rate[i]), places)
        out.append(
            json.dumps(
                {
                    "date": d,
                    "base_ccy": "USD",
                    "quote_ccy": quote[i],
                    "rate": value,
                    "bid_rate": round(float(bid[i]), places),
                    "ask_rate": round(float(ask[i]), places),
                    "mid_rate": value,
                    "source": "WMR" if CURRENCIES[ccy[i]] in WMR_SOURCED else "ECB",
                },
                separators=(",", ":"),
            )
        )
    return out

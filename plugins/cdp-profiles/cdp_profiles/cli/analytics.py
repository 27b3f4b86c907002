"""`cdp analytics rfm|clv`: RFM scores and groups, and lifetime value (BG/NBD + Gamma-Gamma) from the store."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path
from typing import Any

import typer
from cdp_core.cli import common
from cdp_core.cli.common import ConfigOption, JsonOption, emit_json, stdout
from rich.table import Table
from rich.text import Text

from cdp_profiles.analytics.config import AnalyticsConfig, analytics_of
from cdp_profiles.analytics.rfm import GROUPS, to_five
from cdp_profiles.segments.clock import evaluation_time

analytics_app = typer.Typer(help="Customer analytics: RFM and lifetime value (docs/analytics.md).", no_args_is_help=True)
EXIT_DATA = 1


def _open(config: Path) -> tuple[Any, AnalyticsConfig, Any]:
    from cdp_profiles.cli.reading import open_for_reading

    cfg, loaded = common.load(config)
    return cfg, analytics_of(cfg.sections), open_for_reading(cfg, loaded)


@analytics_app.command("rfm")
def rfm_command(config: Path = ConfigOption, as_json: bool = JsonOption) -> None:
    """Recency, frequency and monetary scores: the R x F grid and the named groups, with people and revenue."""
    from cdp_profiles.analytics.orders import histories
    from cdp_profiles.analytics.rfm import rfm

    cfg, settings, engine = _open(config)
    bins = settings.rfm.bins if settings.rfm is not None else 5
    now = evaluation_time()
    with common.store_errors(cfg), engine.connect() as conn:
        people, money, skipped = histories(conn, settings)
    scored = rfm(people, now, bins)
    grid: dict[tuple[int, int], list[float]] = defaultdict(lambda: [0, 0.0])
    groups: dict[str, list[float]] = {g: [0, 0.0, 0] for g in GROUPS}
    for p in scored:
        revenue = p.monetary or 0.0
        cell = grid[(p.r, p.f)]
        cell[0] += 1
        cell[1] += revenue
        row = groups[p.group(bins)]
        row[0] += 1
        row[1] += revenue
        row[2] += p.frequency
    total = sum(p.monetary or 0.0 for p in scored)
    data = {
        "as_of": now.isoformat(), "bins": bins, "currency": money.base or None, "people": len(scored),
        "revenue": round(total, 2), **skipped.to_dict(),
        "groups": [{"group": g, "people": int(n), "orders": int(o), "revenue": round(rev, 2)}
                   for g, (n, rev, o) in groups.items()],
        "grid": [{"r": r, "f": f, "people": int(n), "revenue": round(rev, 2)} for (r, f), (n, rev) in sorted(grid.items())],
    }  # fmt: skip
    if as_json:
        emit_json(data)
        return
    currency = money.base or "(no currency)"
    stdout.print(Text(f"RFM as of {now.date().isoformat()}: {len(scored):,} people with orders, "
                      f"revenue {total:,.2f} {currency}; scores 1-{bins} (recent, frequent, spending = high)"))  # fmt: skip
    table = Table(title="people (revenue) by recency R and frequency F", show_edge=False, pad_edge=False)
    table.add_column("R \\ F")
    for f in range(1, bins + 1):
        table.add_column(f"F{f}", justify="right")
    for r in range(bins, 0, -1):
        cells = [f"{int(grid[(r, f)][0]):,} ({grid[(r, f)][1]:,.0f})" if (r, f) in grid else "" for f in range(1, bins + 1)]
        table.add_row(f"R{r}", *cells)
    stdout.print(table)
    named = Table(show_edge=False, pad_edge=False)
    for column in ("group", "R x F (1-5)", "people", "orders", "revenue", "share of revenue"):
        named.add_column(column, justify="left" if column in ("group", "R x F (1-5)") else "right")
    for g, (n, rev, orders) in groups.items():
        share = f"{100 * rev / total:.1f} %" if total else ""
        named.add_row(g, CELLS[g], f"{int(n):,}", f"{int(orders):,}", f"{rev:,.2f}", share)
    stdout.print(named)
    _skipped(skipped.to_dict())
    if bins != 5:
        stdout.print(Text(f"groups read scores brought to 1-5: 1 + floor((score - 1) * 5 / {bins}); e.g. {bins} -> {to_five(bins, bins)}"))


CELLS = {
    "champions": "R5 F4-5", "loyal_customers": "R3-4 F4-5", "potential_loyalists": "R4-5 F2-3",
    "new_customers": "R5 F1", "promising": "R4 F1", "need_attention": "R3 F3", "about_to_sleep": "R3 F1-2",
    "at_risk": "R1-2 F3-4", "cannot_lose_them": "R1-2 F5", "hibernating": "R1-2 F1-2 but R1 F1", "lost": "R1 F1",
}  # fmt: skip


def _skipped(data: dict[str, Any]) -> None:
    if data["excluded_orders"]:
        stdout.print(Text(f"{data['excluded_orders']:,} orders not counted: their status is excluded ([analytics] exclude_statuses)"))
    for currency, left in data["left_out"].items():
        stdout.print(Text(f"{left['orders']:,} orders in {currency} ({left['amount']:,.2f}): amounts left out, "
                          "no rate to the base currency ([analytics.rates])"))  # fmt: skip


@analytics_app.command("clv")
def clv_command(
    holdout: int | None = typer.Option(None, "--holdout", metavar="DAYS", min=1,
        help="Fit on the history up to (last order day - DAYS), compare predicted and actual purchases in those DAYS."),
    horizon: int | None = typer.Option(None, "--horizon", metavar="DAYS", min=1,
        help="Expected purchases and value over this many days (default: [analytics.clv] horizon_days, else 90)."),
    config: Path = ConfigOption,
    as_json: bool = JsonOption,
) -> None:  # fmt: skip
    """Lifetime value: the BG/NBD and Gamma-Gamma fits (parameters, convergence) and, with --holdout, their check."""
    from cdp_profiles.analytics import lifetime
    from cdp_profiles.analytics.orders import purchase_days

    cfg, settings, engine = _open(config)
    days = horizon or (settings.clv.horizon_days if settings.clv is not None else 90)
    rate = settings.clv.annual_discount_rate if settings.clv is not None else 0.0
    now = evaluation_time()
    with common.store_errors(cfg), engine.connect() as conn:
        purchases, money, skipped = purchase_days(conn, settings)
    check: lifetime.Holdout | None = None
    try:
        if holdout is not None:
            summary, fits, check = lifetime.holdout(purchases, holdout)
        else:
            summary = lifetime.summarize(purchases, now.date(), now.date())
            fits = lifetime.fit(summary)
    except ValueError as exc:
        common.fail(f"lifetime value: {exc}", EXIT_DATA)
    predicted = lifetime.predict(summary, fits, days, rate)
    import numpy as np

    value = predicted.value[np.isfinite(predicted.value)]
    data: dict[str, Any] = {
        "as_of": now.isoformat(), "unit": "days", "currency": money.base or None, "customers": summary.n,
        "bgnbd": {**fits.bg.to_dict(), "alpha_weeks": fits.bg.alpha / 7},
        "gammagamma": fits.gg.to_dict() if fits.gg is not None else None, "gammagamma_error": fits.gg_error,
        "horizon_days": days,
        "predictions": {
            "expected_purchases": round(float(predicted.expected_purchases.sum()), 4),
            "mean_p_alive": round(float(predicted.p_alive.mean()), 4) if summary.n else None,
            "expected_value": round(float(value.sum()), 2), "valued_customers": int(value.size),
        },
        "holdout": check.to_dict() if check is not None else None, **skipped.to_dict(),
    }  # fmt: skip
    if as_json:
        emit_json(data)
        return
    _print_clv(data)
    _skipped(skipped.to_dict())


def _print_clv(data: dict[str, Any]) -> None:
    bg, gg = data["bgnbd"], data["gammagamma"]
    holdout = data["holdout"]
    period = f"calibration up to {holdout['calibration_end']}" if holdout else f"history up to {data['as_of'][:10]}"
    stdout.print(Text(f"{data['customers']:,} customers ({period}); time in days"))
    state = "converged" if bg["converged"] else "NOT converged"
    stdout.print(Text(f"BG/NBD: r {bg['r']:.4f}, alpha {bg['alpha']:.4f} (days; {bg['alpha_weeks']:.4f} in weeks), "
                      f"a {bg['a']:.4f}, b {bg['b']:.4f}; log-likelihood {bg['log_likelihood']:.2f}; {state}"))  # fmt: skip
    if gg is not None:
        state = "converged" if gg["converged"] else "NOT converged"
        stdout.print(Text(f"Gamma-Gamma: p {gg['p']:.4f}, q {gg['q']:.4f}, v {gg['v']:.4f}; "
                          f"{gg['n']:,} repeat buyers; {state}"))  # fmt: skip
    else:
        stdout.print(Text(f"Gamma-Gamma: not fitted ({data['gammagamma_error']})"))
    p = data["predictions"]
    stdout.print(Text(f"next {data['horizon_days']} days: {p['expected_purchases']:,.1f} purchases expected, mean P(alive) "
                      f"{p['mean_p_alive']}, expected value {p['expected_value']:,.2f} {data['currency'] or ''}".rstrip()))  # fmt: skip
    if holdout is None:
        return
    stdout.print(Text(f"holdout: {holdout['holdout_days']} days after {holdout['calibration_end']}: "
                      f"{holdout['actual_purchases']:,.0f} repeat purchases, {holdout['predicted_purchases']:,.1f} predicted; "
                      f"mean absolute error per customer {holdout['mean_absolute_error']:.3f}"))  # fmt: skip
    table = Table(show_edge=False, pad_edge=False)
    for column in ("repeat purchases in calibration", "customers", "actual (mean)", "predicted (mean)"):
        table.add_column(column, justify="right")
    for row in holdout["by_calibration_frequency"]:
        table.add_row(row["frequency"], f"{row['people']:,}", f"{row['actual_mean']:.3f}", f"{row['predicted_mean']:.3f}")
    stdout.print(table)

"""The trading chart: equity, drawdown against the daily loss limit, and P&L per trade.

One figure, drawn by :func:`render` with matplotlib, is both the PNG attached to the daily
report's email and the SVG on the web page's trading view, from the same :class:`ChartData`.

matplotlib costs tens of MB of RSS and about a second to import, and the resident agent must
idle under 100 MB, so nothing here imports it at module level and the agent and the page only
ever call :func:`render_in_child` / :func:`render_in_child_async`: a short-lived interpreter
(``python -m agent.reports.charts FORMAT``) reads the data as JSON on stdin and writes the image
to stdout. A chart that cannot be drawn is an :class:`ChartError`; callers send the report
without it.
"""
from __future__ import annotations

import asyncio
import io
import json
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any, Literal

Format = Literal["png", "svg"]
CHILD_TIMEOUT_S = 60.0
MAX_TRADES = 60
"""At most this many trades are drawn (the newest); more would make bars unreadable."""


class ChartError(RuntimeError):
    """The chart could not be drawn (the message says why); the report goes out without it."""


@dataclass(frozen=True)
class ChartData:
    title: str
    equity: Sequence[tuple[str, float]] = field(default_factory=list)
    """(ISO time, equity) in time order."""
    day_start: float | None = None
    limit_pct: float | None = None
    trades: Sequence[tuple[str, float]] = field(default_factory=list)
    """(label, P&L) of closed trades in close order."""

    def to_json(self) -> str:
        return json.dumps(asdict(self), separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str) -> ChartData:
        doc = json.loads(text)
        return cls(title=str(doc.get("title", "")), equity=[(str(t), float(v)) for t, v in doc.get("equity", [])],
                   day_start=doc.get("day_start"), limit_pct=doc.get("limit_pct"),
                   trades=[(str(label), float(p)) for label, p in doc.get("trades", [])][-MAX_TRADES:])


def chart_data_from_frames(title: str, since: datetime, until: datetime, equity: Any, trades: Any,
                           limit_pct: float | None) -> ChartData:
    """The report window's figure from the bot's frames (:class:`agent.reports.BotFrames`): the
    equity snapshots in ``[since, until)`` (starting from the last one known at ``since``, as the
    report's own figures do) and the trades closed in the window, in close order."""
    import pandas as pd  # the report has loaded it already (this runs in its worker thread)

    points: list[tuple[str, float]] = []
    if len(equity):
        eq = equity.copy()
        eq["at"] = pd.to_datetime(eq["at"], utc=True)
        eq = eq.sort_values([c for c in ("at", "id") if c in eq.columns], kind="stable")
        before = eq[eq["at"] <= since].tail(1)
        inside = eq[(eq["at"] >= since) & (eq["at"] < until)]
        if not before.empty and (inside.empty or inside["at"].iloc[0] > since):
            inside = pd.concat([before.assign(at=pd.Timestamp(since)), inside])
        points = [(t.isoformat(), float(v)) for t, v in zip(inside["at"], inside["equity"], strict=True)]
    closed: list[tuple[str, float]] = []
    if len(trades):
        tr = trades.copy()
        tr["closed_at"] = pd.to_datetime(tr["closed_at"], utc=True)
        tr = tr[tr["closed_at"].notna() & (tr["closed_at"] >= since) & (tr["closed_at"] < until)]
        tr = tr.sort_values(["closed_at", "id"], kind="stable")
        closed = [(f"#{int(r.id)} {r.coin}", float(r.pnl or 0.0)) for r in tr.itertuples()]
    return ChartData(title=title, equity=points, day_start=points[0][1] if points else None,
                     limit_pct=limit_pct, trades=closed[-MAX_TRADES:])


def drawdown_pct(values: Sequence[float]) -> list[float]:
    """Fall from the running peak of each value, in % of that peak (0 at a new peak)."""
    out, peak = [], float("-inf")
    for v in values:
        peak = max(peak, v)
        out.append((peak - v) / peak * 100 if peak > 0 else 0.0)
    return out


def render(data: ChartData, fmt: Format) -> bytes:
    """Draw the figure (imports matplotlib: call it in a child process, see the module docstring)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.dates as mdates
    import matplotlib.pyplot as plt

    plt.rcParams.update({"font.size": 9, "svg.fonttype": "none", "axes.spines.top": False,
                         "axes.spines.right": False})
    fig, (ax_eq, ax_dd, ax_pnl) = plt.subplots(3, 1, figsize=(7.2, 5.4), dpi=100,
                                                gridspec_kw={"height_ratios": [3, 2, 2]})
    fig.suptitle(data.title, fontsize=11)
    times = [datetime.fromisoformat(t) for t, _ in data.equity]
    values = [v for _, v in data.equity]
    if times:
        ax_eq.plot(times, values, color="#1f4e99", linewidth=1.4, label="equity")
        if data.day_start:
            ax_eq.axhline(data.day_start, color="#888", linestyle=":", linewidth=1, label="day start")
            if data.limit_pct:
                ax_eq.axhline(data.day_start * (1 - data.limit_pct / 100), color="#b3261e", linestyle="--",
                              linewidth=1, label=f"daily loss limit ({data.limit_pct:g} %)")
        ax_eq.legend(loc="best", fontsize=8, frameon=False)
        dd = drawdown_pct(values)
        ax_dd.fill_between(times, [-d for d in dd], 0, color="#b3261e", alpha=0.35, step="post")
        if data.limit_pct:
            ax_dd.axhline(-data.limit_pct, color="#b3261e", linestyle="--", linewidth=1, label="daily loss limit")
            ax_dd.set_ylim(bottom=min(-data.limit_pct * 1.1, min((-d for d in dd), default=0) * 1.1))
        for ax in (ax_eq, ax_dd):
            ax.xaxis.set_major_formatter(mdates.DateFormatter("%H:%M"))
    else:
        ax_eq.text(0.5, 0.5, "no equity snapshots in this window", ha="center", va="center",
                   transform=ax_eq.transAxes)
    ax_eq.set_ylabel("equity")
    ax_dd.set_ylabel("drawdown %")
    if data.trades:
        pnls = [p for _, p in data.trades]
        ax_pnl.bar(range(len(pnls)), pnls, color=["#1b7f3b" if p >= 0 else "#b3261e" for p in pnls])
        ax_pnl.axhline(0, color="#444", linewidth=0.8)
        ax_pnl.set_xticks(range(len(pnls)), [label for label, _ in data.trades], rotation=60, fontsize=7,
                          ha="right")
    else:
        ax_pnl.text(0.5, 0.5, "no closed trades", ha="center", va="center", transform=ax_pnl.transAxes)
        ax_pnl.set_xticks([])
    ax_pnl.set_ylabel("P&L per trade")
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format=fmt, metadata={"Date": None} if fmt == "svg" else None)
    plt.close(fig)
    return buf.getvalue()


def _child_command(fmt: Format) -> list[str]:
    return [sys.executable, "-m", "agent.reports.charts", fmt]


def _checked(fmt: Format, code: int | None, out: bytes, err: bytes) -> bytes:
    if code != 0 or not out:
        why = (err.decode(errors="replace").strip().splitlines() or [f"exit code {code}"])[-1]
        raise ChartError(f"drawing the {fmt} chart failed: {why}")
    return out


def render_in_child(data: ChartData, fmt: Format, timeout: float = CHILD_TIMEOUT_S) -> bytes:
    """:func:`render` in a short-lived child interpreter (blocking)."""
    try:
        proc = subprocess.run(_child_command(fmt), input=data.to_json().encode(), capture_output=True,
                              timeout=timeout, check=False)
    except subprocess.TimeoutExpired:
        raise ChartError(f"drawing the {fmt} chart took longer than {timeout:g}s") from None
    return _checked(fmt, proc.returncode, proc.stdout, proc.stderr)


async def render_in_child_async(data: ChartData, fmt: Format, timeout: float = CHILD_TIMEOUT_S) -> bytes:
    """:func:`render` in a short-lived child interpreter, awaited without blocking the loop."""
    proc = await asyncio.create_subprocess_exec(*_child_command(fmt), stdin=subprocess.PIPE,
                                                stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        out, err = await asyncio.wait_for(proc.communicate(data.to_json().encode()), timeout)
    except TimeoutError:
        proc.kill()
        await proc.wait()
        raise ChartError(f"drawing the {fmt} chart took longer than {timeout:g}s") from None
    return _checked(fmt, proc.returncode, out, err)


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    fmt: Any = args[0] if args else "png"
    if fmt not in ("png", "svg"):
        print(f"usage: python -m agent.reports.charts png|svg < data.json (got {fmt!r})", file=sys.stderr)
        return 2
    try:
        data = ChartData.from_json(sys.stdin.read())
    except (ValueError, TypeError, KeyError) as exc:
        print(f"bad chart data: {exc}", file=sys.stderr)
        return 2
    sys.stdout.buffer.write(render(data, fmt))
    return 0


if __name__ == "__main__":
    sys.exit(main())

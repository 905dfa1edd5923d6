"""Check: configuration drift against a recorded baseline (see the ``drift`` action to record).

Facts name what changed, was added or removed since the baseline, and ``count`` (the default
value) totals them, so ``critical: "> 0"`` alerts on any drift. A missing baseline is UNKNOWN
with a hint to record one: drift against nothing cannot be judged.
"""
from __future__ import annotations

import asyncio
from typing import Any, ClassVar

from agent.modules import _drift_baseline as drift
from agent.modules.base import CheckModule, CheckResult, RunContext


class DriftCheckParams(drift.DriftParams):
    pass


class DriftCheck(CheckModule):
    """Snapshots the watched files and settings and compares them with the baseline."""

    name: ClassVar[str] = "drift"
    Params: ClassVar[type[DriftCheckParams]] = DriftCheckParams
    description: ClassVar[str] = "Configuration drift: files and settings changed since the recorded baseline"
    default_value: ClassVar[str | None] = "count"
    facts: ClassVar[dict[str, str]] = {
        "count": "changed + added + removed files plus changed settings",
        "changed": "files whose content differs from the baseline",
        "added": "files present now but not in the baseline",
        "removed": "files in the baseline that are gone",
        "settings_changed": "names of watched settings whose value differs",
        "recorded_at": "when the baseline was recorded, ISO 8601 UTC",
        "baseline": "path of the baseline file",
    }

    async def run(self, params: DriftCheckParams, ctx: RunContext) -> CheckResult:
        path, root = drift.locations(params, ctx)
        try:
            baseline, current = await asyncio.wait_for(ctx.run_blocking(
                lambda: (drift.load(path), drift.snapshot(params.files, params.settings, root))), timeout=ctx.timeout)
        except TimeoutError:
            return CheckResult.failed(f"drift snapshot timed out after {ctx.timeout:g}s")
        except (OSError, ValueError) as exc:
            return CheckResult.failed(f"cannot compare with baseline {path}: {exc}")
        if baseline is None:
            return CheckResult.failed(f"no baseline {path}: record one with a drift task (record: true), "
                                      "e.g. `agent run-playbook monthly -e record_baseline=true`")
        diff: dict[str, Any] = drift.compare(baseline, current)
        diff.update(recorded_at=baseline.get("recorded_at"), baseline=str(path))
        parts = [f"{len(diff[k])} {k.replace('_', ' ')}" for k in ("changed", "added", "removed", "settings_changed")
                 if diff[k]]
        return CheckResult(facts=diff, value=diff["count"],
                           summary=f"drift since {diff['recorded_at']}: {', '.join(parts) or 'none'}")

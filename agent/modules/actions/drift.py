"""Action: record a configuration baseline (``record: true``) or report drift against it.

Recording is changed only when the new snapshot differs from the stored one (or there is
none), so a weekly "record if missing" is idempotent. Without ``record`` the action reports
the same facts as the ``drift`` check and changes nothing; ``fail_on_drift`` makes drift fail
the task (a gate before a deploy).
"""
from __future__ import annotations

import asyncio
from typing import Any, ClassVar

from pydantic import Field

from agent.modules import _drift_baseline as drift
from agent.modules.base import ActionModule, ActionResult, RunContext


class DriftActionParams(drift.DriftParams):
    record: bool = Field(False, description="write the current snapshot as the new baseline")
    only_if_missing: bool = Field(False, description="with record: write only when no baseline exists yet")
    fail_on_drift: bool = Field(False, description="without record: fail the task when anything drifted")


class DriftAction(ActionModule):
    """Computes the snapshot and the difference first; writes the baseline only outside check mode."""

    name: ClassVar[str] = "drift"
    Params: ClassVar[type[DriftActionParams]] = DriftActionParams
    description: ClassVar[str] = "Record a configuration baseline (record: true) or report drift against it"
    supports_check_mode: ClassVar[bool] = True

    async def run(self, params: DriftActionParams, ctx: RunContext) -> ActionResult:
        return await asyncio.to_thread(self._run, params, ctx)

    def _run(self, params: DriftActionParams, ctx: RunContext) -> ActionResult:
        path, root = drift.locations(params, ctx)
        try:
            baseline = drift.load(path)
            current = drift.snapshot(params.files, params.settings, root)
        except (OSError, ValueError) as exc:
            return ActionResult(failed=True, msg=f"cannot snapshot or read {path}: {exc}")
        diff: dict[str, Any] = drift.compare(baseline or {}, current) if baseline else {}
        data: dict[str, Any] = {"baseline": str(path), "exists": baseline is not None,
                                "files": len(current["files"]), **diff}
        if not params.record:
            if baseline is None:
                # Nothing to compare with is not drift; a gate (fail_on_drift) still refuses it.
                return ActionResult(failed=params.fail_on_drift, data=data,
                                    msg=f"no baseline {path} yet; record one with record: true")
            text = f"{diff['count']} difference(s) since {baseline.get('recorded_at')}"
            return ActionResult(failed=params.fail_on_drift and diff["count"] > 0, data=data, msg=text)
        if baseline is not None and (params.only_if_missing or diff["count"] == 0):
            return ActionResult(changed=False, data=data, msg=f"baseline {path.name} kept ({diff['count']} "
                                                              f"difference(s), recorded {baseline.get('recorded_at')})")
        verb = "would record" if ctx.check_mode else "recorded"
        if not ctx.check_mode:
            try:
                drift.save(path, current)
            except OSError as exc:
                return ActionResult(failed=True, data=data, msg=f"cannot write {path}: {exc}")
        return ActionResult(changed=True, data=data,
                            msg=f"{verb} baseline {path.name}: {len(current['files'])} file(s), "
                                f"{len(current['settings'])} setting(s)"
                                + (f", replacing one with {diff['count']} difference(s)" if baseline else ""))

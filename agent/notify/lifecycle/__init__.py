"""The alert lifecycle: when, how and whether an open incident is told to a human.

The engine only opens, changes and resolves incidents (in the transaction of the transition);
:meth:`AlertLifecycle.tick` decides everything else from what is in the store, so every
decision survives a restart of the agent. The engine calls it at once after a hard transition
commits, at :attr:`AlertLifecycle.next_due` (the earliest deadline the pass knows of) and
periodically as a safety net. One module per concern, the way Alertmanager splits its
dispatcher, silences and inhibition, each over the public API of
:class:`~agent.notify.notifications.Notifications`:

* :mod:`.suppression`: flapping, maintenance windows, silences, then :mod:`.inhibition`
  (a check it ``depends_on`` is failing, or has not been seen healthy since this problem began:
  :mod:`.dependency_hold`), then ``digest`` (info severity), then for the first alert of a check
  that names ``remediate:`` the wait for the outcome (:mod:`.remediation_notes`); the first
  that applies is recorded and nothing is sent while it holds;
* :mod:`.grouping`: ``group_wait``/``group_interval`` per host, one message per target;
* :mod:`.resolves`: resolves of announced incidents, grouped per host;
* :mod:`.remediation_notes`: what the agent did, quoted in alerts and resolves, told as an
  update when it was recorded after the alert went out; a problem it
  fixed before its alert went out is told once;
* :mod:`.escalation`: ``escalate: [{after, to}]`` steps of unacknowledged incidents;
* :mod:`.digest`: the scheduled list of info findings;
* :mod:`.checks`: the part of the configured checks these read (tags, ``depends_on``).

Every message is linked to every incident it covers (``notification_incidents``), so
``agent explain`` and repeats see grouped messages too.
"""
from __future__ import annotations

from agent.notify.lifecycle.alert_lifecycle import AlertLifecycle
from agent.notify.lifecycle.checks import CheckCatalog, WatchedCheck, parent_key
from agent.notify.lifecycle.digest import DIGEST_EVENT
from agent.notify.lifecycle.settings import LifecycleSettings
from agent.notify.lifecycle.suppression import SILENCE_FIELDS, MaintenanceWindow, silence_matches

__all__ = ["DIGEST_EVENT", "SILENCE_FIELDS", "AlertLifecycle", "CheckCatalog", "LifecycleSettings",
           "MaintenanceWindow", "WatchedCheck", "parent_key", "silence_matches"]

"""The digest: one message listing the info-severity incidents open or resolved since the
previous digest (info findings are suppressed with reason ``digest`` and told only here)."""
from __future__ import annotations

from datetime import datetime

from agent.notify.notifications import Notifications
from agent.notify.routing import RoutedMessage

DIGEST_EVENT = "digest"
"""The audit event kind recorded for every digest (the alert loop reads the last one)."""


class Digest:
    def __init__(self, notifications: Notifications) -> None:
        self._notes = notifications

    def send(self, since: datetime, now: datetime) -> int:
        """One message listing info findings open or resolved since ``since``; records the digest."""
        notes = self._notes
        with notes.store.transaction() as tx:
            found = [i for i in tx.find_incidents(since=since, limit=500) if i.severity == "info"]
            ids: list[int] = []
            if found:
                items = [{"check": i.check, "play": i.play, "host": i.host, "state": i.state.name,
                          "incident_id": i.id, "open": i.resolved_at is None,
                          "since": i.opened_at.strftime("%Y-%m-%d %H:%M:%S UTC"), "summary": i.summary}
                         for i in reversed(found)]
                title = f"[DIGEST] {len(found)} info finding(s) since {since.strftime('%Y-%m-%d %H:%M UTC')}"
                body = notes.render("digest", {"items": items, "since": since.strftime("%Y-%m-%d %H:%M:%S UTC")})
                pairs = notes.router.route(RoutedMessage("info"))
                ids = notes.enqueue(tx, "notice", pairs, title, body, "info", f"digest:{now.isoformat()}",
                                    found[0].id, now)
                if ids:
                    tx.link_notifications(ids, [i.id for i in found])
            tx.add_event(DIGEST_EVENT, None, None, f"digest: {len(found)} info finding(s)",
                         {"notifications": ids, "incidents": [i.id for i in found]}, at=now)
        return len(ids)

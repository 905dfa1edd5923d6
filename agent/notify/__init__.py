"""Notifications: routing, rendering, the outbox worker and apprise delivery, redaction.

Flow: the engine calls :class:`Notifications` inside its store transaction (rows land in the
outbox, redacted), then ``outbox.wake()``; :class:`Outbox` delivers through apprise with
retries until each message is delivered.
"""
from __future__ import annotations

from agent.core.redaction import Redactor, install, uninstall
from agent.notify.delivery import AppriseDelivery, DeliveryResult
from agent.notify.notifications import AlertInfo, Notifications
from agent.notify.outbox import Outbox
from agent.notify.routing import MatchSpec, RoutedMessage, Router, RouteSpec, TargetSpec, specs_from_inventory
from agent.rendering import SandboxedTemplates, TemplateRenderer

__all__ = [
    "AlertInfo", "AppriseDelivery", "DeliveryResult", "MatchSpec", "Notifications", "Outbox", "Redactor",
    "RouteSpec", "RoutedMessage", "Router", "SandboxedTemplates", "TargetSpec", "TemplateRenderer",
    "install", "specs_from_inventory", "uninstall",
]

"""Collects what the suite emits (API responses, log lines, event payloads) and the
secrets the suite created (K, OPc, PIN, PUK, tokens), for the final leak scan."""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass, field

from sqlalchemy import Engine, select

from ztsim.db import schema


def secret_forms(secret: bytes | str) -> set[str]:
    """The ways a secret could show up in text: hex either case, base64, itself."""
    if isinstance(secret, str):
        return {secret}
    forms = {secret.hex(), secret.hex().upper()}
    forms.add(base64.b64encode(secret).decode().rstrip("="))
    forms.add(base64.urlsafe_b64encode(secret).decode().rstrip("="))
    return forms


@dataclass
class LeakWatch:
    secrets: set[str] = field(default_factory=set)
    # (where, text); the response that issued a token is allowed to carry it once.
    emitted: list[tuple[str, str]] = field(default_factory=list)
    allowed: set[tuple[str, str]] = field(default_factory=set)

    def add_secret(self, secret: bytes | str) -> None:
        self.secrets |= secret_forms(secret)

    def add_text(self, where: str, text: str) -> None:
        self.emitted.append((where, text))

    def allow_once(self, where: str, text: str) -> None:
        self.allowed.add((where, text))

    def add_events(self, engine: Engine) -> None:
        try:
            with engine.connect() as conn:
                rows = conn.execute(
                    select(schema.events.c.reason, schema.events.c.payload, schema.events.c.subject)
                ).all()
        except Exception:
            return
        for reason, payload, subject in rows:
            self.add_text("event", f"{subject} {reason} {json.dumps(payload)}")

    def findings(self) -> list[str]:
        found = []
        for where, text in self.emitted:
            if (where, text) in self.allowed:
                continue
            for secret in self.secrets:
                if secret in text:
                    found.append(f"{where}: contains a test secret ({secret[:6]}…)")
        return found


LEAKS = LeakWatch()

"""Collects what the suite emits (API responses, log lines, event payloads) and the
secrets the suite created (K, OPc, PIN, PUK, tokens), for the final leak scan."""

from __future__ import annotations

import base64
import json
import re
from dataclasses import dataclass, field

from sqlalchemy import Engine, select

from ztsim.db import schema

# The characters of hex, base64 (both alphabets) and API tokens.
_ALPHABET = re.compile(r"[A-Za-z0-9_+/-]+")


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
        """One line per (text, secret) where the text contains the secret. Each secret
        of the alphabet of hex, base64 and tokens lies inside one run of that alphabet
        in the text, so the runs' windows of the secrets' lengths are looked up in a
        set: linear in the texts (testing every secret against every text took minutes
        once the suite had emitted a few hundred thousand texts)."""
        plain = {s for s in self.secrets if not _ALPHABET.fullmatch(s)}
        indexed = self.secrets - plain
        lengths = sorted({len(s) for s in indexed})
        found = []
        for where, text in self.emitted:
            if (where, text) in self.allowed:
                continue
            hits = {s for s in plain if s in text}
            for run in _ALPHABET.findall(text) if lengths else ():
                for size in lengths:
                    if size > len(run):
                        break
                    hits.update(
                        window
                        for i in range(len(run) - size + 1)
                        if (window := run[i : i + size]) in indexed
                    )
            found += [f"{where}: contains a test secret ({s[:6]}…)" for s in sorted(hits)]
        return found


LEAKS = LeakWatch()

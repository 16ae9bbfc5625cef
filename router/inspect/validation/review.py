"""Welsh (any language but the default) reviewed by a fluent speaker, and still the text they reviewed.

Why a fingerprint: `reviewed 2026-12-01 by <name>` next to a phrase says nothing about the text it
was given for. If the phrase is edited afterwards, the mark would vouch for words nobody checked. So a
review names a short fingerprint of the reviewed text: `reviewed 2026-12-01 by Ann Jones, fingerprint
1a2b3c4d`. When the text changes, its fingerprint no longer matches and the phrase counts as
unreviewed again, by itself. `router validate` prints the fingerprint to write.
"""
from __future__ import annotations

import hashlib
import re

from router.inspect.validation.locate import WARNING, Locator
from router.definition.flowfile import Problem
from router.definition.model import Flows

_REVIEWED = re.compile(r"^reviewed\b(?P<who>.*?)(?:,?\s*fingerprint\s+(?P<fp>[0-9a-f]{8}))?\s*$", re.IGNORECASE)


def fingerprint(text: str) -> str:
    """8 hex digits of the text as reviewed (spacing aside)."""
    return hashlib.sha256(" ".join(text.split()).encode("utf-8")).hexdigest()[:8]


def review_state(status: str, text: str) -> str:
    """'reviewed', 'unreviewed', 'changed' (the text is not the one reviewed) or 'no fingerprint'."""
    match = _REVIEWED.match((status or "").strip())
    if not match:
        return "unreviewed"
    if not match.group("fp"):
        return "no fingerprint"
    return "reviewed" if match.group("fp") == fingerprint(text) else "changed"


def check_review_status(flows: Flows, loc: Locator) -> list[Problem]:
    """A warning per phrase changed since its review (with the new fingerprint), per review without a
    fingerprint, and one per language listing every phrase no fluent speaker has reviewed as it is."""
    problems = []
    for lang in flows.config.languages:
        if lang == flows.config.default_language:
            continue
        statuses = flows.phrase_review.get(lang, {})
        pending = []
        for pid, texts in sorted(flows.phrases.items()):
            if lang not in texts:
                continue
            status, text = statuses.get(pid, ""), texts[lang]
            state = review_state(status, text)
            if state == "reviewed":
                continue
            pending.append(pid)
            fp = fingerprint(text)
            if state == "changed":
                problems.append(loc.problem(
                    "phrases.yaml", ("review", lang, pid), f"{pid} in {lang} has changed since it was reviewed "
                    f"({status}): it counts as unreviewed until a fluent speaker reviews the new text", WARNING,
                    hint=f"once they have, write `{pid}: reviewed <date> by <name>, fingerprint {fp}`"))
            elif state == "no fingerprint":
                problems.append(loc.problem(
                    "phrases.yaml", ("review", lang, pid), f"{pid} in {lang} is marked reviewed without the "
                    "fingerprint of the text reviewed, so a later change would go unnoticed: it counts as "
                    "unreviewed", WARNING,
                    hint=f"if the reviewer checked the text as it is now, write `{pid}: {status.strip()}, "
                         f"fingerprint {fp}`"))
        if pending:
            shown = ", ".join(pending[:12]) + (f" and {len(pending) - 12} more" if len(pending) > 12 else "")
            problems.append(loc.problem(
                "phrases.yaml", ("review", lang) if lang in flows.phrase_review else ("phrases",),
                f"{len(pending)} phrases in {lang} have not been reviewed by a fluent speaker as they are now: "
                f"{shown}. When one has, write `<phrase>: reviewed <date> by <name>, fingerprint <fingerprint>` "
                f"under review: {lang}: (`router fingerprint <phrase> --lang {lang}` prints the line)", WARNING))
    return problems

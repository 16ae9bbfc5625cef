"""Every wording in every configured language, and language switches that go somewhere.

A Welsh caller must never hear silence because one label was not translated; a missing language is an
error where the caller would hear nothing, a warning where the default language stands in.
"""
from __future__ import annotations

from typing import Iterator

from router.inspect.validation.locate import ERROR, WARNING, Locator, lang_name
from router.definition.flowfile import Path_, Problem
from router.definition.model import EndNode, Flows, MenuNode, SayNode


def text_fields(flows: Flows) -> Iterator[tuple[str, Path_, dict[str, str], str]]:
    """Every wording given per language: (file, path, texts, severity if a language is missing)."""
    for node_id, node in flows.nodes.items():
        base = ("nodes", node_id)
        if isinstance(node, MenuNode):
            if node.prompt is not None:
                yield "menu.yaml", base + ("prompt",), node.prompt, ERROR
            for i, option in enumerate(node.options):
                for field in ("label", "sms_label"):
                    texts = getattr(option, field)
                    if texts is not None:
                        yield "menu.yaml", base + ("options", i, field), texts, ERROR
        elif isinstance(node, (SayNode, EndNode)) and node.say is not None:
            yield "menu.yaml", base + ("say",), node.say, ERROR
    for sid, service in flows.services.items():
        yield "services.yaml", ("services", sid, "name"), service.name, ERROR
        yield "services.yaml", ("services", sid, "for"), service.for_, WARNING
    for pid, texts in flows.phrases.items():
        yield "phrases.yaml", ("phrases", pid), texts, ERROR


def check_languages(flows: Flows, loc: Locator) -> list[Problem]:
    """Missing or empty translations, languages nobody configured, language options that go nowhere."""
    problems = []
    configured = flows.config.languages
    for name, path, texts, severity in text_fields(flows):
        for lang in configured:
            if not (texts.get(lang) or "").strip():
                problem = "is empty" if lang in texts else f"has no {lang!r} wording"
                fallback = "" if lang == flows.config.default_language else \
                    f": {lang_name(lang)} callers would get the {lang_name(flows.config.default_language)} instead"
                problems.append(loc.problem(name, path + ((lang,) if lang in texts else ()),
                                            f"{problem}{fallback}", severity))
        for lang in texts:
            if lang not in configured:
                problems.append(loc.problem(name, path + (lang,), f"{lang!r} is not one of the configured "
                                            f"languages ({', '.join(configured)}), so it is never used", WARNING))
    for node_id, node in flows.nodes.items():
        if not isinstance(node, MenuNode):
            continue
        for i, option in enumerate(node.options):
            if option.language is not None:
                problems += _language_option(flows, loc, ("nodes", node_id, "options", i, "language"),
                                             option.key, option.language)
    return problems


def _language_option(flows: Flows, loc: Locator, path: Path_, key: str, mapping: dict[str, str]) -> list[Problem]:
    problems = []
    configured = flows.config.languages
    for source, target in mapping.items():
        if target not in configured:
            problems.append(loc.problem("menu.yaml", path + (source,), f"switches to {target!r}, which is not "
                                        f"a configured language ({', '.join(configured)})"))
        elif target == source:
            problems.append(loc.problem("menu.yaml", path + (source,), f"switches {source!r} to itself: "
                                        f"key {key} would only start the menu again", WARNING))
        if source not in configured:
            problems.append(loc.problem("menu.yaml", path + (source,), f"{source!r} is not a configured "
                                        "language, so this line is never used", WARNING))
    for lang in configured:
        if lang not in mapping:
            problems.append(loc.problem("menu.yaml", path, f"has no {lang!r} line: in {lang_name(lang)} key "
                                        f"{key} is not offered and pressing it only repeats the menu", WARNING))
    return problems

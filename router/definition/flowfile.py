"""Read and validate the flow folder; every problem comes back as file, line and reason.

Operators edit these files by hand, so a mistake must be reported the way a person can fix it
("flows/services.yaml:14: services.galop.number: '0800 999' is not a valid phone number"), never as a
traceback, and a folder that fails is never half-loaded: load_flows() returns a whole Flows or raises.

A flow file cannot explode: anchors and aliases (&name, *name) are refused (a few hundred bytes of
nested aliases expand to gigabytes: a "billion laughs"), as are files over MAX_YAML_BYTES and nesting
deeper than MAX_YAML_DEPTH, each in milliseconds and before anything is expanded. The same parser reads
the live folder, `router validate` and a release from Redis (read_flows_from: in memory).
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

import yaml
from pydantic import BaseModel, ValidationError

from router.definition.model import Config, Flows, MenuFile, PhrasesFile, ServicesFile

FILES: dict[str, type[BaseModel]] = {
    "config.yaml": Config,
    "services.yaml": ServicesFile,
    "menu.yaml": MenuFile,
    "phrases.yaml": PhrasesFile,
}

Path_ = tuple[Any, ...]
MAX_YAML_BYTES = 256 * 1024   # the shipped files are ~15 kB at most
MAX_YAML_DEPTH = 24           # the shipped files nest 6 deep


@dataclass(frozen=True, order=True)
class Problem:
    file: str
    line: int
    where: str
    reason: str
    severity: str = "error"  # or "warning"
    hint: str = ""           # what to do about it, in plain words (empty when the reason says it)

    def __str__(self) -> str:
        where = f"{self.where}: " if self.where else ""
        stop = "" if self.reason.endswith((".", "!", "?")) else "."
        hint = f"{stop} Hint: {self.hint}" if self.hint else ""
        return f"{self.file}:{self.line}: {self.severity}: {where}{self.reason}{hint}"


class FlowError(Exception):
    """The flow folder cannot be used; .problems says exactly why."""

    def __init__(self, problems: list[Problem]):
        self.problems = sorted(problems)
        super().__init__("\n".join(str(p) for p in self.problems))


class _Refused(yaml.MarkedYAMLError):
    """A flow file refused before it is expanded: an anchor or alias, or nesting too deep."""


class _LineLoader(yaml.SafeLoader):
    """A safe loader that also remembers the line of every key, and refuses duplicate keys, anchors and
    aliases, and nesting deeper than MAX_YAML_DEPTH (checked while composing, before anything expands)."""

    _depth = 0

    def compose_node(self, parent, index):
        event = self.peek_event()
        if isinstance(event, yaml.AliasEvent) or getattr(event, "anchor", None):
            raise _Refused(None, None, "anchors and aliases (&name, *name) are not allowed in flow files",
                           event.start_mark)
        self._depth += 1
        try:
            if self._depth > MAX_YAML_DEPTH:
                raise _Refused(None, None, f"nested more than {MAX_YAML_DEPTH} levels deep", event.start_mark)
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1


def _to_python(loader: _LineLoader, node: yaml.Node, path: Path_, lines: dict[Path_, int],
               problems: list[Problem], file: str) -> Any:
    lines.setdefault(path, node.start_mark.line + 1)
    if isinstance(node, yaml.MappingNode):
        result: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            key = loader.construct_object(key_node, deep=True)
            if key in result:
                problems.append(Problem(file, key_node.start_mark.line + 1, _dotted(path + (key,)),
                                        f"{key!r} is given twice (first on line {lines[path + (key,)]})"))
                continue
            lines[path + (key,)] = key_node.start_mark.line + 1
            result[key] = _to_python(loader, value_node, path + (key,), lines, problems, file)
        return result
    if isinstance(node, yaml.SequenceNode):
        return [_to_python(loader, item, path + (i,), lines, problems, file) for i, item in enumerate(node.value)]
    return loader.construct_object(node, deep=True)


def _dotted(path: Path_) -> str:
    """('nodes', 'main', 'options', 0, 'next') -> 'nodes.main.options[1].next': list items are counted
    from 1, as an operator counts them ("the first option")."""
    out = ""
    for part in path:
        out += f"[{part + 1}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def parse_yaml(text: str, file: str) -> tuple[Any, dict[Path_, int], list[Problem]]:
    """YAML text -> (data, line of every path, problems). Syntax errors become one Problem."""
    lines: dict[Path_, int] = {}
    problems: list[Problem] = []
    if len(text) > MAX_YAML_BYTES:
        return None, lines, [_too_large(file)]
    loader = _LineLoader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None, lines, [Problem(file, 1, "", "the file is empty")]
        return _to_python(loader, node, (), lines, problems, file), lines, problems
    except _Refused as exc:
        line = exc.problem_mark.line + 1 if exc.problem_mark else 1   # both always set where it is raised
        return None, lines, [Problem(file, line, "", exc.problem or "", hint="write each value out in full where it is used")]
    except yaml.MarkedYAMLError as exc:
        return None, lines, [yaml_problem(exc, text, file)]
    finally:
        loader.dispose()


def _too_large(file: str) -> Problem:
    return Problem(file, 1, "", f"the file is larger than {MAX_YAML_BYTES // 1024} kB",
                   hint="a flow file is a few kB: check that this is the file you meant")


def read_limited(path: Path) -> bytes:
    """A file's bytes, reading no more than one byte past MAX_YAML_BYTES (a huge file is refused, not
    read into memory)."""
    with open(path, "rb") as handle:
        return handle.read(MAX_YAML_BYTES + 1)


def yaml_problem(exc: yaml.MarkedYAMLError, text: str, file: str) -> Problem:
    """A YAML syntax error as an operator can act on it: the line to fix, what is wrong, and a hint.

    The parser's own words ("mapping values are not allowed here", "expected <block end>") describe
    its state, not the mistake; the common mistakes are a tab, an unclosed quote, a line indented
    differently from its neighbours and a ': ' inside unquoted text."""
    problem = exc.problem or ""
    mark = exc.problem_mark or exc.context_mark
    line = mark.line + 1 if mark else 1
    source = text.splitlines()
    if "'\\t'" in problem or "\t" in problem:
        return Problem(file, line, "", "this line is indented with a tab; YAML needs spaces",
                       hint="replace the tab with spaces, lined up with the lines around it")
    if "quoted scalar" in (exc.context or "") and exc.context_mark is not None:
        line = exc.context_mark.line + 1
        return Problem(file, line, "", "a quote opened on this line is never closed",
                       hint='end the text with the same quote it starts with, e.g. en: "Hello."')
    for opener, closer in (("[", "]"), ("{", "}")):
        if f"or '{closer}'" in problem:
            if exc.context_mark is not None:
                line = exc.context_mark.line + 1
            return Problem(file, line, "", f"a list or group opened with '{opener}' on this line is not closed "
                           f"with '{closer}'", hint=f"close it on the same line, e.g. presses: {opener}1, 2{closer}"
                           if opener == "[" else "close it on the same line, e.g. {en: Hello, cy: Helo}")
    opened = _unclosed_quote_line(source, line)
    if opened and ("expected" in problem or "mapping values" in problem):
        return Problem(file, opened, "", "a quote opened on this line is never closed",
                       hint='end the text with the same quote it starts with, e.g. en: "Hello."')
    if "mapping values are not allowed" in problem:
        if _indented_more_than_previous(source, line):
            return Problem(file, line, "", "this line is indented more than the line above, so it does not "
                           "belong anywhere", hint="line it up with the line above (the same number of spaces)")
        return Problem(file, line, "", "this line has a ': ' inside a text, which YAML reads as a new key",
                       hint='put the whole text in double quotes, e.g. en: "Note: we are closed"')
    if "expected <block end>" in problem or "expected <block sequence end>" in problem:
        if "'-'" in problem or "sequence" in problem:
            reason = "this list item (- ...) is not lined up with the items above it"
        elif "'?'" in problem:
            reason = "this line mixes a list item (- ...) and a `key:` at the same indentation"
        else:
            reason = "this line is indented differently from the lines it belongs with"
        return Problem(file, line, "", reason,
                       hint="use the same number of spaces as the lines above at the same level (spaces, never tabs)")
    if "could not find expected ':'" in problem:
        return Problem(file, line, "", "YAML expected `key: value` on this line (or the line above)",
                       hint="check for a missing ':' after the key, or a text that needs quotes")
    return Problem(file, line, "", f"the file cannot be read as YAML here ({problem or exc})",
                   hint="check the indentation (spaces, not tabs) and the quotes on this line and the line above")


def _unclosed_quote_line(source: list[str], line: int) -> int | None:
    """The line (from 1) at or just above `line` whose double quotes do not pair up: an unclosed quote
    runs on into the next lines, so the parser only notices a line or two later."""
    for number in range(min(line, len(source)), max(0, line - 4), -1):
        text = source[number - 1].split(" #")[0]
        if text.count('"') % 2 == 1:
            return number
    return None


def _indented_more_than_previous(source: list[str], line: int) -> bool:
    """Whether line `line` (from 1) is indented more than the previous non-empty line, which is a
    complete `key: value` (so nothing can be nested under it)."""
    if not 1 < line <= len(source):
        return False
    current = source[line - 1]
    for previous in reversed(source[: line - 1]):
        if previous.strip() and not previous.strip().startswith("#"):
            indent = len(current) - len(current.lstrip(" "))
            before = len(previous) - len(previous.lstrip(" "))
            return indent > before and not previous.rstrip().endswith(":")
    return False


def _line_for(loc: Path_, lines: dict[Path_, int]) -> int:
    for cut in range(len(loc), -1, -1):
        if loc[:cut] in lines:
            return lines[loc[:cut]]
    return 1


KEY_PATTERNS = {r"^[1-9]$": ("a key is one of 1 to 9 (0 and * always mean 'hear the options again', and # ends key input on a call, so callers cannot choose it)",
                               "write one key, e.g. key: 4"),
                r"^[a-z][a-z0-9_]*$": ("a name here is lower-case letters, digits and _, starting with a letter",
                                       "e.g. rights_of_women")}


# pydantic's words for a wrong kind of value, as an operator would say them (reason, hint)
PLAIN_TYPE_ERRORS = {
    "date_from_datetime_parsing": ("is not a date", "write it as year-month-day, e.g. 2026-11-21"),
    "date_parsing": ("is not a date", "write it as year-month-day, e.g. 2026-11-21"),
    "date_type": ("is not a date", "write it as year-month-day, e.g. 2026-11-21"),
    "bool_parsing": ("must be true or false", "write true or false"),
    "bool_type": ("must be true or false", "write true or false"),
    "int_parsing": ("must be a whole number", "e.g. 30"),
    "int_type": ("must be a whole number", "e.g. 30"),
    "dict_type": ("should hold `name: value` lines (or {en: ..., cy: ...})",
                  "check the indentation: the lines under it need more spaces than it"),
    "list_type": ("should be a list: one item per line, each starting with '- '",
                  "check the indentation and the '- ' of each item"),
    "string_type": ("must be text", "put it in double quotes"),
}


def _reason(error: Mapping[str, Any], loc: Path_ = ()) -> tuple[str, str]:
    """(reason, hint) in plain words for one pydantic error."""
    message = error["msg"].removeprefix("Value error, ")
    kind = error["type"]
    if kind == "missing":
        return "is required but missing", ""
    if kind == "extra_forbidden":
        return "is not a known field", "check the spelling and the indentation of this line"
    if kind == "union_tag_invalid":
        ctx = error.get("ctx", {})
        return f"type {ctx.get('tag')!r} is not one of: {ctx.get('expected_tags')}", ""
    if kind == "string_type" and isinstance(error.get("input"), (int, float)):
        if loc and loc[-1] in ("number", "from", "dials", "not_dials") or "number" in loc:
            return ("YAML read this phone number as a number, not as text",
                    'put the phone number in quotes, e.g. number: "0808 2000 247"')
        return "YAML read this as a number, but it must be text", 'put it in double quotes, e.g. "10:00-17:00"'
    if kind in PLAIN_TYPE_ERRORS:
        return PLAIN_TYPE_ERRORS[kind]
    if kind == "string_pattern_mismatch":
        pattern = error.get("ctx", {}).get("pattern", "")
        if pattern in KEY_PATTERNS:
            reason, hint = KEY_PATTERNS[pattern]
            return f"{error.get('input')!r}: {reason}", hint
    return message, ""


def validate_file(model: type[BaseModel], data: Any, lines: dict[Path_, int], file: str):
    """Validate parsed data against a model; returns (instance or None, problems with lines)."""
    try:
        return model.model_validate(data), []
    except ValidationError as exc:
        problems = []
        for error in exc.errors():
            # pydantic adds the union member's tag ("menu", "function-after[...]") into loc: drop those
            loc = tuple(part for part in error["loc"] if not (isinstance(part, str) and "[" in part))
            loc = _strip_union_tags(loc, lines)
            if error["type"] == "union_tag_invalid":
                loc = loc + ("type",)
            reason, hint = _reason(error, loc)
            problems.append(Problem(file, _line_for(loc, lines), _dotted(loc), reason, hint=hint))
        return None, problems


def _strip_union_tags(loc: Path_, lines: dict[Path_, int]) -> Path_:
    """Drop discriminator tags pydantic inserts (nodes.main.menu.options -> nodes.main.options)."""
    out: list[Any] = []
    for part in loc:
        candidate = tuple(out) + (part,)
        if candidate in lines or isinstance(part, int) or not out:
            out.append(part)
        elif part in {"menu", "connect", "say", "end"} and tuple(out) in lines:
            continue
        else:
            out.append(part)
    return tuple(out)


def read_folder(folder: Path) -> tuple[dict[str, tuple[Any, dict[Path_, int]]], list[Problem], str]:
    """Parse every flow file of the folder; returns parsed data by file name, problems, content hash."""
    raws: dict[str, bytes | OSError] = {}
    for name in FILES:
        try:
            raws[name] = read_limited(folder / name)
        except OSError as exc:
            raws[name] = exc
    return parse_files(raws, folder)


def parse_files(raws: dict[str, bytes | OSError], folder: Path) -> tuple[dict[str, tuple[Any, dict[Path_, int]]],
                                                                          list[Problem], str]:
    """Parse the flow files given as bytes (or the error reading each), labelled as files of `folder`."""
    digest = hashlib.sha256()
    parsed: dict[str, tuple[Any, dict[Path_, int]]] = {}
    problems: list[Problem] = []
    for name in FILES:
        label = _label(folder, name)
        raw = raws.get(name)
        if raw is None:
            problems.append(Problem(label, 1, "", "is missing"))
            continue
        if isinstance(raw, OSError):
            problems.append(Problem(label, 1, "", f"cannot be read: {raw.strerror or raw}"))
            continue
        if len(raw) > MAX_YAML_BYTES:
            problems.append(_too_large(label))
            continue
        digest.update(name.encode() + b"\0" + raw + b"\0")
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            line = raw[: exc.start].count(b"\n") + 1
            problems.append(Problem(label, line, "", "is not UTF-8 text"))
            continue
        data, lines, file_problems = parse_yaml(text, label)
        problems.extend(file_problems)
        parsed[name] = (data, lines)
    return parsed, problems, digest.hexdigest()[:12]


def _label(folder: Path, name: str) -> str:
    try:
        return str((folder / name).resolve().relative_to(Path.cwd()))
    except ValueError:
        return str(folder / name)


def load_flows(folder: Path | str, *, lint: bool = False) -> Flows:
    """Load and validate a flow folder against the schema. Raises FlowError listing every error.

    The schema only: the cross-file checks are router.inspect.validation (load_checked() is what the app serves
    from). `lint=True` is refused rather than ignored, since this module must not import the checks."""
    if lint:
        raise ValueError("load_flows() checks the schema only: use router.inspect.validation.load_checked()")
    return read_flows(folder)[0]


def read_flows(folder: Path | str) -> tuple[Flows, dict[str, dict[Path_, int]]]:
    """A schema-valid Flows and the line of every path of every file (for the checks to point at)."""
    folder = Path(folder)
    return _build(folder, *read_folder(folder))


def read_flows_from(files: dict[str, bytes], folder: Path | str) -> tuple[Flows, dict[str, dict[Path_, int]]]:
    """read_flows() of files held in memory (a release from Redis), labelled as files of `folder`:
    nothing is written anywhere to check them."""
    folder = Path(folder)
    return _build(folder, *parse_files(dict(files), folder))


def _build(folder: Path, parsed: dict[str, tuple[Any, dict[Path_, int]]], problems: list[Problem],
           version: str) -> tuple[Flows, dict[str, dict[Path_, int]]]:
    models: dict[str, Any] = {}
    for name, model in FILES.items():
        if name not in parsed or parsed[name][0] is None:
            continue
        data, lines = parsed[name]
        instance, file_problems = validate_file(model, data, lines, _label(folder, name))
        problems.extend(file_problems)
        models[name] = instance
    if problems or any(models.get(name) is None for name in FILES):
        raise FlowError(problems or [Problem(str(folder), 1, "", "flow files are missing")])
    services = {sid: svc.model_copy(update={"id": sid}) for sid, svc in models["services.yaml"].services.items()}
    flows = Flows(
        config=models["config.yaml"],
        services=services,
        start=models["menu.yaml"].start,
        nodes=dict(models["menu.yaml"].nodes),
        phrases=dict(models["phrases.yaml"].phrases),
        version=version,
        phrase_review=dict(models["phrases.yaml"].review),
    )
    return flows, {name: parsed[name][1] for name in parsed}

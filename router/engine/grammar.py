"""What a phrase needs once a name is filled into it: Welsh contractions and soft mutation after "i", a
comma that closes a name said with an apposition, a capital letter at the start.

Why a module of its own: these are string rules with no flows, no clock and no context, used by
Context.say (router/engine/context.py) on every line the engine produces; kept apart from wording.py
(which needs a Context) so that the context does not import what imports it.
"""
from __future__ import annotations

import re


def close_apposition(text: str, name: str) -> str:
    """A name said with an apposition is closed by a comma when the sentence goes on: "Galop, the National
    LGBT+ Domestic Abuse Helpline, is closed now" (not "... Helpline is closed now")."""
    if ", " not in name:
        return text
    return re.sub(re.escape(name) + r"(?= \w)", lambda _match: name + ",", text)


# Welsh after the preposition "i" ("to"): the article contracts ("i'r Uned", never "i yr Uned"), as after
# "Mae" ("Mae'r Uned"), and a Welsh noun takes its soft mutation ("i Linell Gymorth Byw Heb Ofn", never
# "i Llinell"). Only the Welsh words that begin the services' Welsh names are mutated: an English name
# ("i Childline", "i Galop") never is.
_WELSH_CONTRACTIONS = re.compile(r"\b(i|I|Mae|mae) (y|yr) ")
_WELSH_SOFT_MUTATION = {"llinell": "linell", "canolfan": "ganolfan", "gwasanaeth": "wasanaeth",
                        "cymorth": "gymorth", "tîm": "dîm", "prosiect": "brosiect"}
_AFTER_I = re.compile(r"\bi (" + "|".join(_WELSH_SOFT_MUTATION) + r")\b", re.I)


def welsh_grammar(text: str) -> str:
    """Contractions and the soft mutation after "i" that filling a name into a Welsh phrase may need."""
    text = _WELSH_CONTRACTIONS.sub(lambda m: f"{m.group(1)}'r ", text)

    def mutate(match: re.Match[str]) -> str:
        word = match.group(1)
        soft = _WELSH_SOFT_MUTATION[word.lower()]
        return "i " + (soft[:1].upper() + soft[1:] if word[:1].isupper() else soft)

    return _AFTER_I.sub(mutate, text)


GRAMMAR = {"cy": welsh_grammar}
"""Per language: what a sentence needs once names are filled in (languages without an entry: nothing)."""


def sentence(text: str) -> str:
    """A phrase that begins with a name said as 'the ...' still begins with a capital letter."""
    return text[:1].upper() + text[1:] if text[:1].islower() else text

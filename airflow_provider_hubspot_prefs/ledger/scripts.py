"""Whether one part of an address mixes writing systems the way a look-alike does (Unicode UTS #39).

UTS #39 calls a string single-script when one script covers all its characters, counting digits,
punctuation and combining marks (Common, Inherited) as part of any script, and Han ideographs as
part of Japanese, Chinese and Korean writing alike (its "augmented" script sets). Its "highly
restrictive" profile also accepts Latin mixed with Han and the scripts written with Han: Hiragana
and Katakana (Japanese), Bopomofo (Chinese), Hangul (Korean). Anything else, such as a Cyrillic a
(U+0430) among Latin letters or a Greek omicron among Cyrillic ones, is a mix a reader cannot see.

The rule holds within one part of an address: the local part, and each domain label. Across the
'@' it means nothing: ``用户@example.com`` is one person's address.

Python's standard library has no Script property: a letter's script is the first word of the
Unicode name of its canonical decomposition's base letter (LATIN, CYRILLIC, CJK, HIRAGANA, ...; the
KELVIN SIGN is a LATIN K). That holds for the letters that reach this check: compatibility forms
(fullwidth, mathematical and circled letters, ligatures, ...) are refused before it as look-alikes
(``compatibility_form``), and characters that are not letters count as Common.

Two characters that are no letters are part of some words: the zero width joiner and non-joiner,
where IDNA2008 allows them (``joiner_allowed``).
"""

from __future__ import annotations

import unicodedata
from collections import Counter

from idna import valid_contextj

_HAN = frozenset({"Han", "Japanese", "Chinese", "Korean"})
# Augmented script sets of the scripts written together with Han; others are their own script.
_AUGMENTED = {
    "CJK": _HAN,
    "IDEOGRAPHIC": _HAN,  # U+3005 IDEOGRAPHIC ITERATION MARK and its kin
    "HIRAGANA": frozenset({"Japanese"}),
    "KATAKANA": frozenset({"Japanese"}),
    "KATAKANA-HIRAGANA": frozenset({"Japanese"}),  # U+30FC PROLONGED SOUND MARK
    "BOPOMOFO": frozenset({"Chinese"}),
    "HANGUL": frozenset({"Korean"}),
}
_NAMES = {"CJK": "Han", "IDEOGRAPHIC": "Han", "KATAKANA-HIRAGANA": "Katakana"}
_COMMON = {"MODIFIER"}  # e.g. U+02BC MODIFIER LETTER APOSTROPHE


# Compatibility characters that are the way a word is written, not a look-alike of it: Thai SARA AM
# and Lao AM (NFKD splits each in two, but they are what the keyboards type: น้ำ, ຄຳ).
_WRITTEN_AS_IS = frozenset("\u0e33\u0eb3")


def compatibility_form(ch: str) -> str | None:
    """What ``ch`` is a look-alike of (its NFKC form), when it is a compatibility character: a
    fullwidth, mathematical or circled letter, a ligature, a superscript. None for any other
    character, canonical equivalents included (the precomposed Devanagari ज़ U+095B is the same text
    as ज + the nukta)."""
    if ch in _WRITTEN_AS_IS or unicodedata.normalize("NFKD", ch) == unicodedata.normalize("NFD", ch):
        return None
    return unicodedata.normalize("NFKC", ch)


def joiner_allowed(value: str, index: int) -> bool:
    """Whether the zero width joiner or non-joiner at ``value[index]`` stands where IDNA2008's
    CONTEXTJ rules (RFC 5892, Appendix A) allow it, within its part of the address: after a virama
    (Sinhala ශ්‍රී), or a non-joiner between letters that join (Persian علی‌رضا)."""
    start = max(value.rfind("@", 0, index), value.rfind(".", 0, index)) + 1
    ends = [end for end in (value.find("@", index), value.find(".", index)) if end != -1]
    part = value[start : min(ends, default=len(value))]
    try:
        return bool(valid_contextj(part, index - start))
    except ValueError:  # a neighbour Unicode does not name, or a part longer than idna reads
        return False


def script_of(ch: str) -> str | None:
    """The script of a letter as the first word of its base letter's name; None for Common characters."""
    if not ch.isalpha():
        return None
    word = unicodedata.name(unicodedata.normalize("NFD", ch)[0], "").split(" ")[0]
    return None if not word or word in _COMMON else word


def _augmented(script: str) -> frozenset[str]:
    return _AUGMENTED.get(script, frozenset({script}))


def _acceptable(scripts: set[str]) -> bool:
    """Whether letters of ``scripts`` may stand together in one part (highly restrictive profile)."""
    for allowed in (scripts, scripts - {"LATIN"}):  # single script, else Latin with a Han script
        sets = [_augmented(s) for s in allowed]
        if not sets:
            return True
        common = frozenset.intersection(*sets)
        if common and (allowed is scripts or common & _HAN):
            return True
    return False


def _shown(script: str) -> str:
    return _NAMES.get(script, script.title())


def mixed_script(part: str) -> tuple[int, str, str] | None:
    """``(index in part, letter, scripts it stands among)`` for the letter that makes ``part`` a
    mix of scripts, or None when ``part`` is acceptable.

    The letter named is the first one that does not go with the part's most frequent script (a
    look-alike is the odd one out); failing that, the first one whose letters before it it does
    not go with.
    """
    letters = [(i, ch, s) for i, ch in enumerate(part) if (s := script_of(ch)) is not None]
    scripts = {s for _, _, s in letters}
    if _acceptable(scripts):
        return None
    main = Counter(s for _, _, s in letters).most_common(1)[0][0]
    for index, ch, script in letters:
        if not _acceptable({main, script}):
            return index, ch, _shown(main)
    seen: set[str] = set()
    for index, ch, script in letters:
        if not _acceptable(seen | {script}):
            return index, ch, " and ".join(sorted(_shown(s) for s in seen))
        seen.add(script)
    raise AssertionError("a part that is not acceptable has a letter that makes it so")

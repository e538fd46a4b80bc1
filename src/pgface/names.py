"""The text forms of names that people give and type (a person's, an API key's): what is
stored, so that names which look the same are one, and which names show nothing."""

from __future__ import annotations

import re
import unicodedata

import regex


def storable(text: str) -> bool:
    """Whether PostgreSQL can store text: no NUL, no lone surrogate (not encodable as UTF-8)."""
    return "\x00" not in text and not any("\ud800" <= c <= "\udfff" for c in text)


# Characters that show nothing: format (zero-width space, joiners, word joiner), separators,
# controls, surrogates, unassigned. A name of these alone is a tile with no name on it.
_INVISIBLE = {"Cf", "Cc", "Cs", "Cn", "Zs", "Zl", "Zp"}
# Letters and symbols that show as blank space: the Hangul fillers (Unicode's default ignorable
# ones, written alone as an "invisible name") and the Braille blank. Taken as spaces: "ㅤBob"
# (U+3164 first) was a second person beside "Bob", and a name of them alone was stored
# (probe i18n37).
_BLANK_LETTERS = "\u115f\u1160\u3164\uffa0\u2800"
_AS_SPACE = str.maketrans(dict.fromkeys(map(ord, _BLANK_LETTERS), " "))
# Marks that show nothing alone (default ignorable, not format characters): the combining
# grapheme joiner, variation selectors (VS16 of "❤️" kept: they change what they follow),
# Khmer's inherent vowels, Mongolian's variation selectors
_MARKS_UNSEEN = re.compile("[\u034f\u17b4\u17b5\u180b-\u180f\ufe00-\ufe0f"
                           "\U000e0100-\U000e01ef]")


def shows_nothing(c: str) -> bool:
    return (unicodedata.category(c) in _INVISIBLE or c in _BLANK_LETTERS
            or _MARKS_UNSEEN.match(c) is not None)


def name_form(text: str) -> str:
    """A name as stored: format characters dropped (shown_characters), spaces collapsed and
    NFC, the form most keyboards type (a folder name from macOS is NFD: "José" would otherwise
    be a second person beside the typed "José")."""
    return unicodedata.normalize("NFC", " ".join(shown_characters(text).translate(_AS_SPACE)
                                                 .split()))


# Joiners that the scripts using them write between two letters (ZWNJ, ZWJ): Arabic
# (Persian), Syriac, N'Ko, the Indic scripts, Myanmar, Khmer, Mongolian; ZWJ in emoji
# sequences. Elsewhere (Latin, Cyrillic, Greek, CJK: "Иван" and "Ив" ZWNJ "ан") they only make
# a look-alike name.
_JOINING_SCRIPTS = ((0x0600, 0x08FF), (0x0900, 0x0DFF), (0x1000, 0x109F), (0x1780, 0x18AF),
                    (0xFB50, 0xFDFF), (0xFE70, 0xFEFF))
_ZWNJ, _ZWJ = "\u200c", "\u200d"
_BLACK_FLAG = "\U0001f3f4"  # a subdivision flag: it and tag characters, then a cancel tag
_TAGS = range(0xE0020, 0xE0080)


def _joining(c: str) -> bool:
    return any(low <= ord(c) <= high for low, high in _JOINING_SCRIPTS)


# A ZWJ that joins two emoji (UAX #29, GB11): an Extended_Pictographic character, what extends
# it (a skin tone, VS16, tag characters), the joiner, and an Extended_Pictographic after it.
# Python's unicodedata has no emoji properties; `regex` has Unicode's. U+2600-27BF and all from
# U+1F000, as was taken, dropped the ZWJ of the black cat and the black bird (U+1F408 or
# U+1F426, ZWJ, U+2B1B) and kept one between two squared Latin letters (U+1F130).
_EMOJI_JOINER = regex.compile(r"(?<=\p{Extended_Pictographic}[\p{Grapheme_Extend}"
                              r"\p{Emoji_Modifier}]*)\u200d(?=\p{Extended_Pictographic})")


# What a variation selector changes the look of (standardized and emoji variation sequences:
# emoji and keycap bases, math symbols, CJK ideographs, Myanmar, Phags-pa), and the Mongolian
# letters its free variation selectors shape. After anything else such a mark shows nothing.
_VARIES = regex.compile(r"[\p{Emoji}\p{Ideographic}\p{Sm}\u1000-\u109f\ua840-\ua877]")


def _mark_shows(mark: str, before: str) -> bool:
    """Whether MARK (one of _MARKS_UNSEEN) changes how BEFORE, the character kept before it,
    shows: "Bob" with a VS16, a CGJ or a Mongolian selector after it was a second person (and
    key) whose name read "Bob" (probe reprobe37b)."""
    code = ord(mark)
    if not before:
        return False
    if 0xFE00 <= code <= 0xFE0F:
        return _VARIES.match(before) is not None
    if 0xE0100 <= code <= 0xE01EF:  # ideographic variation sequences
        return regex.match(r"\p{Ideographic}", before) is not None
    if 0x180B <= code <= 0x180F:
        return 0x1800 <= ord(before) <= 0x18AF
    return False  # the combining grapheme joiner, Khmer's inherent vowels


def shown_characters(text: str) -> str:
    """Text without its format characters (Unicode Cf: zero-width space, word joiner, soft
    hyphen, byte order mark, direction marks), which show nothing: "Qux", "Qux" with a
    zero-width space after it and "Qux" with a soft hyphen in it were three people whose names
    looked the same (a helper's probe), and typing "Qux" reached one. Kept where they are part
    of what shows: a joiner between two letters of a script that writes them, a ZWJ inside an
    emoji sequence, the tag characters of a subdivision flag. So too the marks that show
    nothing alone (_MARKS_UNSEEN), kept only after what they change (_mark_shows)."""
    kept: list[str] = []
    emoji_joiners = {found.start() for found in _EMOJI_JOINER.finditer(text)}
    for i, c in enumerate(text):
        if _MARKS_UNSEEN.match(c):
            if _mark_shows(c, kept[-1] if kept else ""):
                kept.append(c)
            continue
        if unicodedata.category(c) != "Cf":
            kept.append(c)
            continue
        before, after = (text[i - 1] if i else ""), (text[i + 1] if i + 1 < len(text) else "")
        if c in (_ZWNJ, _ZWJ) and before and after and _joining(before) and _joining(after):
            kept.append(c)
        elif i in emoji_joiners:
            kept.append(c)
        elif ord(c) in _TAGS and kept and (kept[-1] == _BLACK_FLAG or ord(kept[-1]) in _TAGS):
            kept.append(c)
    return "".join(kept)

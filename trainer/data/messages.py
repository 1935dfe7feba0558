"""How a problem with input is told: one short sentence, a few shortened examples, no server paths.

A message about bad data ends up in places that show it whole: the dataset page, a job's error, an
API body, the terminal. Quoting a whole line or field of an arbitrary upload made some of them tens
of thousands of characters long (a 5 MB id, a JSON document read as one header of 4,000 columns);
so every quoted value goes through :func:`quote`, every list through :func:`examples`, and every
:class:`~trainer.data.types.DataError` is cut to :data:`MESSAGE_MAX_CHARS` as a last guard.

Files are named by their name only (``clicks.csv``), never by their folder: on a server the folder
is the storage layout, which a user neither knows nor should see.
"""

from __future__ import annotations

from collections.abc import Iterable

MESSAGE_MAX_CHARS = 500  # room for a sentence, five short examples and the option that fixes it
EXAMPLE_MAX_CHARS = 40  # one quoted value: enough to recognise it, never a whole line
MAX_EXAMPLES = 5  # values or lines quoted in one message
ELLIPSIS = "…"


def shorten(text: str, limit: int = EXAMPLE_MAX_CHARS) -> str:
    """``text`` cut to ``limit`` characters, the cut marked with an ellipsis."""
    return text if len(text) <= limit else text[: max(limit - 1, 0)] + ELLIPSIS


def quote(value: object, limit: int = EXAMPLE_MAX_CHARS) -> str:
    """A value as it appears in a message: its ``repr``, shortened (``'abc…'``, ``[1, 2, 3…``)."""
    if isinstance(value, str):
        return repr(shorten(value, limit))
    return shorten(repr(value), limit)


def examples(items: Iterable[str], total: int, limit: int = MAX_EXAMPLES) -> str:
    """At most ``limit`` already-formatted examples, and how many more there are out of ``total``."""
    shown = [item for _, item in zip(range(limit), items, strict=False)]
    rest = total - len(shown)
    return ", ".join(shown) + (f" and {rest:,} more" if rest > 0 else "")


def bound_message(message: str, limit: int = MESSAGE_MAX_CHARS) -> str:
    """``message`` on at most ``limit`` characters (a tail of lines, e.g. a tool's output, is cut)."""
    return shorten(message.strip(), limit)

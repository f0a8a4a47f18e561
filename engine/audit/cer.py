"""Character error rate: Levenshtein edits between recognised and true text, over the true length."""

from __future__ import annotations


def edit_distance(a: str, b: str) -> int:
    """Insertions, deletions and substitutions that turn ``a`` into ``b``."""
    if len(a) < len(b):
        a, b = b, a
    previous = list(range(len(b) + 1))
    for i, char_a in enumerate(a, 1):
        current = [i]
        for j, char_b in enumerate(b, 1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (char_a != char_b)))
        previous = current
    return previous[-1]


def character_error_rate(pairs: list[tuple[str, str]]) -> float:
    """Total edits over total reference characters for (reference, hypothesis) pairs."""
    reference_chars = sum(len(reference) for reference, _ in pairs)
    if reference_chars == 0:
        return 0.0
    return sum(edit_distance(reference, hypothesis) for reference, hypothesis in pairs) / reference_chars

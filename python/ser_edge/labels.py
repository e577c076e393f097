"""The canonical emotion vocabulary, the names corpora use for it, and coarser groupings.

Every corpus label is mapped to one of :data:`CANONICAL`; a model's labels are canonical labels
or, for a grouped model, the group names of :data:`GROUPINGS`.
"""

from __future__ import annotations

CANONICAL = ("neutral", "calm", "happy", "sad", "angry", "fearful", "disgust", "surprised", "boredom")

SYNONYMS = {
    "neutral": "neutral",
    "neu": "neutral",
    "calm": "calm",
    "calmness": "calm",
    "happy": "happy",
    "happiness": "happy",
    "joy": "happy",
    "hap": "happy",
    "sad": "sad",
    "sadness": "sad",
    "angry": "angry",
    "anger": "angry",
    "ang": "angry",
    "wut": "angry",
    "fearful": "fearful",
    "fear": "fearful",
    "fea": "fearful",
    "afraid": "fearful",
    "disgust": "disgust",
    "disgusted": "disgust",
    "dis": "disgust",
    "surprised": "surprised",
    "surprise": "surprised",
    "ps": "surprised",
    "pleasant_surprise": "surprised",
    "pleasant_surprised": "surprised",
    "boredom": "boredom",
    "bored": "boredom",
}

# Each grouping maps a canonical label to its group, or leaves it out (clips with that label are
# not used by a model of that grouping). Order of the group tuples = order of the model outputs.
GROUPINGS: dict[str, tuple[tuple[str, ...], dict[str, str]]] = {
    "full": (CANONICAL, {c: c for c in CANONICAL}),
    "4class": (
        ("neutral", "happy", "sad", "angry"),
        {"neutral": "neutral", "happy": "happy", "sad": "sad", "angry": "angry"},
    ),
    # Valence.
    "3class": (
        ("positive", "neutral", "negative"),
        {
            "happy": "positive",
            "surprised": "positive",
            "neutral": "neutral",
            "calm": "neutral",
            "sad": "negative",
            "angry": "negative",
            "fearful": "negative",
            "disgust": "negative",
            "boredom": "negative",
        },
    ),
    # Emotional (any non-neutral label) against neutral speech.
    "2class": (
        ("neutral", "emotional"),
        {
            "neutral": "neutral",
            "calm": "neutral",
            "happy": "emotional",
            "sad": "emotional",
            "angry": "emotional",
            "fearful": "emotional",
            "disgust": "emotional",
            "surprised": "emotional",
            "boredom": "emotional",
        },
    ),
    # Arousal (high/low) x valence (positive/negative), after Russell's circumplex.
    "quadrants": (
        ("high-positive", "high-negative", "low-positive", "low-negative"),
        {
            "happy": "high-positive",
            "surprised": "high-positive",
            "angry": "high-negative",
            "fearful": "high-negative",
            "disgust": "high-negative",
            "neutral": "low-positive",
            "calm": "low-positive",
            "sad": "low-negative",
            "boredom": "low-negative",
        },
    ),
}


def canonical(name: str) -> str:
    """The canonical label for a corpus or folder name (case-insensitive, synonyms such as
    Anger/Angry, Happiness/Happy). Raises ``ValueError`` for an unknown name."""
    key = str(name).strip().lower().replace("-", "_").replace(" ", "_")
    if key in SYNONYMS:
        return SYNONYMS[key]
    raise ValueError(f"unknown emotion label {name!r}; known: {', '.join(CANONICAL)} (and synonyms)")


def group_labels(grouping: str) -> tuple[str, ...]:
    """The output labels of a model trained with ``grouping``."""
    return _grouping(grouping)[0]


def group(label: str, grouping: str) -> str | None:
    """The group of canonical ``label`` in ``grouping``, or ``None`` if the grouping leaves it out."""
    return _grouping(grouping)[1].get(canonical(label))


def _grouping(grouping: str) -> tuple[tuple[str, ...], dict[str, str]]:
    if grouping not in GROUPINGS:
        raise ValueError(f"grouping={grouping!r}; choose from {', '.join(GROUPINGS)}")
    return GROUPINGS[grouping]

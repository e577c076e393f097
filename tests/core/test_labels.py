"""The canonical label vocabulary, synonyms and groupings."""

import pytest

from ser_edge.labels import CANONICAL, GROUPINGS, canonical, group, group_labels


@pytest.mark.parametrize(
    "name, want",
    [
        ("Anger", "angry"),
        ("ANGRY", "angry"),
        ("Happiness", "happy"),
        ("happy", "happy"),
        ("Sadness", "sad"),
        ("fear", "fearful"),
        ("Disgusted", "disgust"),
        ("surprise", "surprised"),
        ("ps", "surprised"),
        ("Pleasant Surprise", "surprised"),
        ("bored", "boredom"),
        ("Neutral ", "neutral"),
        ("calm", "calm"),
        ("ANG", "angry"),
        ("hap", "happy"),
        ("fea", "fearful"),
        ("dis", "disgust"),
        ("neu", "neutral"),
    ],
)
def test_synonyms_map_to_canonical(name, want):
    assert canonical(name) == want


@pytest.mark.parametrize("name", ["", "excited", "f", "a", "123"])
def test_unknown_label_is_an_error_naming_it(name):
    with pytest.raises(ValueError, match="unknown emotion label"):
        canonical(name)


def test_canonical_labels_are_their_own_names():
    assert [canonical(c) for c in CANONICAL] == list(CANONICAL)


@pytest.mark.parametrize("grouping", ["full", "3class", "2class", "quadrants"])
def test_groupings_cover_every_label(grouping):
    groups = group_labels(grouping)
    assert {group(c, grouping) for c in CANONICAL} == set(groups)


def test_four_classes_leave_the_others_out():
    assert group_labels("4class") == ("neutral", "happy", "sad", "angry")
    assert [c for c in CANONICAL if group(c, "4class") is None] == [
        "calm",
        "fearful",
        "disgust",
        "surprised",
        "boredom",
    ]


def test_group_accepts_synonyms_and_checks_the_grouping():
    assert group("Anger", "3class") == "negative"
    assert group("happiness", "quadrants") == "high-positive"
    with pytest.raises(ValueError, match="grouping='7class'"):
        group("angry", "7class")
    assert set(GROUPINGS) == {"full", "4class", "3class", "2class", "quadrants"}

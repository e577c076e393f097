"""The edge pipeline shared by ``ser-edge predict`` and the ``listen`` daemon: audio in, emotion
events out, no I/O.

:mod:`.gate` (energy voice gate), :mod:`.speech` (the speech/non-speech model behind it),
:mod:`.ring` (the audio ring buffer), :mod:`.utterances` (utterance windows -> inference ->
:mod:`.smoothing` -> events). Importing this package loads nothing heavy.
"""

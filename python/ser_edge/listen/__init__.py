"""``ser-edge listen``: the always-on daemon.

One thread reads a source (microphone, file, raw PCM on stdin) and runs
read -> voice gate -> utterance windows -> inference -> smoothing -> events -> outputs.
Modules: :mod:`.config` (TOML + command line), :mod:`.sources`, :mod:`.outputs`, :mod:`.daemon`,
:mod:`.swap`, :mod:`.state`, :mod:`.cli`; the gate, utterance windows and smoothing are the edge
pipeline that ``predict`` shares (:mod:`ser_edge.pipeline`).
Importing this package loads nothing heavy.
"""

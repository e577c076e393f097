"""``ser-edge listen``: the always-on daemon.

One thread reads a source (microphone, file, raw PCM on stdin) and runs
read -> voice gate -> utterance windows -> inference -> smoothing -> events -> outputs.
Modules: :mod:`.config` (TOML + command line), :mod:`.sources`, :mod:`.gate`, :mod:`.ring`,
:mod:`.smoothing`, :mod:`.utterances`, :mod:`.outputs`, :mod:`.daemon`, :mod:`.cli`.
Importing this package loads nothing heavy.
"""

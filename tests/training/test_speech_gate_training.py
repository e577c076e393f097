"""The speech/non-speech model's trainer: its networks are averaged in one graph that converts
to int8 LiteRT like a single one."""

from __future__ import annotations

import numpy as np

from ser_edge.pipeline import speech as S


def test_averaged_networks_give_the_mean_of_their_probabilities() -> None:
    import tensorflow as tf

    from ser_edge.training.export import tflite_probabilities, to_tflite
    from ser_edge.training.speech_gate import average, make_model

    tf.keras.utils.set_random_seed(0)
    nets = [make_model(), make_model()]
    x = np.random.default_rng(0).standard_normal((16, S.CONTEXT, S.FEATURES.n_mels)).astype(np.float32)
    each = [n.predict(x, verbose=0)[:, 0] for n in nets]
    assert not np.allclose(each[0], each[1])  # two initialisations, two networks
    model = average(nets)
    np.testing.assert_allclose(model.predict(x, verbose=0)[:, 0], (each[0] + each[1]) / 2, atol=1e-6)
    assert average(nets[:1]) is nets[0]
    lite = to_tflite(model, "int8", input_shape=(S.CONTEXT, S.FEATURES.n_mels), representative=x)
    np.testing.assert_allclose(tflite_probabilities(lite, x)[:, 0], (each[0] + each[1]) / 2, atol=0.03)

"""The Keras network ``skimgclf.model.network.build_cnn`` builds: layers, paddings, pooling, augmentation."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st


@pytest.mark.compat
def test_seed_architecture_is_expressible():
    """padding="valid" and per-convolution filters give the seed tutorial's network exactly."""
    from skimgclf.model.network import build_cnn

    model = build_cnn((28, 28, 1), 10, conv_blocks=1, filters=[[32, 64]], convs_per_block=2,
                      padding="valid", batch_norm=False, conv_dropout=0.25, global_pooling="flatten",
                      hidden_layers=1, units=128, dropout=0.5)
    convs = [layer for layer in model.layers if type(layer).__name__ == "Conv2D"]
    assert [c.filters for c in convs] == [32, 64]
    assert [tuple(c.output.shape[1:]) for c in convs] == [(26, 26, 32), (24, 24, 64)]
    assert model.count_params() == 1_199_882  # the seed network's parameter count
    assert not any(type(layer).__name__ == "BatchNormalization" for layer in model.layers)


def test_network_adapts_to_tiny_and_large_inputs():
    from skimgclf.model.network import build_cnn

    small = build_cnn((8, 8, 1), 3, conv_blocks=5, filters=4)
    assert all(d is None or d >= 1 for layer in small.layers for d in layer.output.shape)
    big = build_cnn((96, 96, 3), 3, conv_blocks=2, filters=4)
    assert any(type(layer).__name__ == "GlobalAveragePooling2D" for layer in big.layers)
    assert big.count_params() < 50_000


def _conv_paddings_and_augmentation(model):
    import keras

    paddings = [layer.padding for layer in model.layers if isinstance(layer, keras.layers.Conv2D)]
    augment = {type(layer).__name__: getattr(layer, "factor", None) for layer in model.layers
               if type(layer).__name__.startswith("Random")}
    return paddings, augment


def test_auto_padding_and_augmentation_follow_the_image_size():
    """28x28: every convolution trims, augmentation on; 8x8: trimming stops, augmentation off."""
    from skimgclf.model.network import build_cnn

    model = build_cnn((28, 28, 1), 10)
    paddings, augment = _conv_paddings_and_augmentation(model)
    assert paddings == ["valid", "valid", "valid"]  # 28 -> 26 | 13 -> 11 | 5 -> 3
    assert set(augment) == {"RandomTranslation", "RandomRotation", "RandomZoom"}
    assert augment["RandomRotation"] == (-0.03, 0.03)
    flatten = [layer for layer in model.layers if type(layer).__name__ == "Flatten"]
    assert [tuple(layer.output.shape[1:]) for layer in flatten] == [(3 * 3 * 128,)]

    # 8 -> 6 (still three wide), pooled to 3: trimming 3 would leave 1, so "same" from there.
    paddings, augment = _conv_paddings_and_augmentation(build_cnn((8, 8, 1), 10))
    assert paddings == ["valid", "same", "same"] and augment == {}
    # Explicit values are kept whatever the size.
    paddings, augment = _conv_paddings_and_augmentation(
        build_cnn((8, 8, 1), 10, padding="same", random_shift=0.2, random_rotation=0, random_zoom=0))
    assert paddings == ["same"] * 3 and set(augment) == {"RandomTranslation"}
    # 16 pixels is where "auto" augmentation starts.
    assert set(_conv_paddings_and_augmentation(build_cnn((16, 20, 1), 2))[1]) == {
        "RandomTranslation", "RandomRotation", "RandomZoom"}
    assert _conv_paddings_and_augmentation(build_cnn((15, 40, 1), 2))[1] == {}
    # Flips do not depend on the size, only on colour: a mirrored photo is a photo at any size.
    assert set(_conv_paddings_and_augmentation(build_cnn((15, 40, 3), 2))[1]) == {"RandomFlip"}


@settings(max_examples=12, deadline=None)
@given(height=st.integers(16, 48), width=st.integers(16, 48), channels=st.integers(1, 4))
def test_shifts_reflect_a_photos_border_and_bring_black_into_a_digit(height, width, channels):
    """What a shift brings into the frame: a colour image's own border, a grayscale image's black."""
    from skimgclf.model.network import build_cnn

    ones = np.ones((32, height, width, channels), dtype="float32")
    model = build_cnn((height, width, channels), 2, seed=0, random_rotation=0.1, random_zoom=0.2)
    for name in ("augment_shift", "augment_rotation", "augment_zoom"):
        out = np.asarray(model.get_layer(name)(ones, training=True))
        if channels >= 3:
            assert np.allclose(out, 1, atol=1e-5), name  # reflected ones are ones
        else:
            assert (out < 1 - 1e-3).any(), name  # black came in (zooms out and shifts, in a batch of 32)


@pytest.mark.parametrize("pool_after", [1, 2])
def test_pooling_comes_before_normalisation(pool_after):
    """A block max-pools right after its convolution, so normalisation and activation run on the pooled
    map; average pooling (which does not commute with ReLU) stays after the activation."""
    from skimgclf.model.network import build_cnn

    model = build_cnn((16, 16, 3), 2, conv_blocks=1, filters=8, convs_per_block=2, pool_after=pool_after,
                      hidden_layers=0, random_flip=None, random_shift=0)
    kinds = [type(layer).__name__ for layer in model.layers
             if type(layer).__name__ in ("Conv2D", "MaxPooling2D", "BatchNormalization", "Activation")]
    block = ["Conv2D", "BatchNormalization", "Activation"]
    pooled = ["Conv2D", "MaxPooling2D", "BatchNormalization", "Activation"]
    assert kinds == (pooled + block if pool_after == 1 else block + pooled)
    no_norm = build_cnn((16, 16, 3), 2, conv_blocks=1, filters=8, convs_per_block=2, pool_after=pool_after,
                        hidden_layers=0, batch_norm=False, random_flip=None, random_shift=0)
    maps = [tuple(layer.output.shape[1:3]) for layer in no_norm.layers if type(layer).__name__ == "Activation"]
    assert maps == ([(8, 8), (8, 8)] if pool_after == 1 else [(16, 16), (8, 8)])
    averaged = build_cnn((16, 16, 3), 2, conv_blocks=1, filters=8, convs_per_block=1, pooling="avg",
                         hidden_layers=0, random_flip=None, random_shift=0)
    assert [type(layer).__name__ for layer in averaged.layers if type(layer).__name__ in (
        "Conv2D", "AveragePooling2D", "BatchNormalization", "Activation")] == block + ["AveragePooling2D"]


def test_photo_blocks_that_widen_after_pooling_halve_the_computation():
    """The docs' promise: filters="auto" on 64x48 photos costs at most half the FLOPs of the plain
    blocks (filters=32), ends at the same width, and has fewer weights."""
    from skimgclf.model.netcheck import cost
    from skimgclf.model.network import build_cnn

    auto, plain = build_cnn((64, 48, 3), 10, seed=0), build_cnn((64, 48, 3), 10, seed=0, filters=32)
    assert cost(auto)[0] <= 0.5 * cost(plain)[0]
    assert auto.count_params() < plain.count_params()
    convs = [layer.filters for layer in auto.layers if type(layer).__name__ == "Conv2D"]
    assert convs == [32, 32, 64, 64, 128]

"""Built-in architectures. Band counts, patch sizes and class counts come from the data.

Every builder returns ``(train_model, core, serving)``: ``train_model`` maps a dict of
named inputs to class probabilities shaped like the labels; ``core`` is what is served
(for the FCN, the whole convolutional net, which takes images of any size); ``serving``
says how rsdl:modelserve applies it (receptive fields, expression field, mode).

- ``cnn``: a small patch-based CNN classifier (OTBTF's model1 family);
- ``fcn``: fully convolutional, all 'valid' convolutions down to one output pixel per
  receptive field (Maggiori et al. 2017's FCN for classification): served fully
  convolutionally, much faster than patch by patch;
- ``unet``: a U-Net for dense labels (label patches), served with an expression field
  of half the patch;
- ``m3``: an M3-style fusion net: a CNN branch on image patches (SOURCE1) and a recurrent
  (GRU) branch on a pixel time series (SOURCE2, one band per date), fused before the
  classifier.
"""
from ..errors import ModelError

ARCHITECTURES = ("cnn", "fcn", "unet", "m3")


def _norm(keras, x, name, stats):
    mean, var = stats
    return keras.layers.Normalization(mean=mean, variance=var, name=f"{name}_norm")(x)


def build(arch, keras, inputs, n_classes, stats, seed=0):
    """inputs: [(name, patch size, bands)], stats: per input (mean, variance) per band."""
    keras.utils.set_random_seed(seed)
    if arch == "cnn":
        return _cnn(keras, inputs, n_classes, stats)
    if arch == "fcn":
        return _fcn(keras, inputs, n_classes, stats)
    if arch == "unet":
        return _unet(keras, inputs, n_classes, stats)
    if arch == "m3":
        return _m3(keras, inputs, n_classes, stats)
    raise ModelError(f"unknown architecture '{arch}'; one of {', '.join(ARCHITECTURES)}",
                     "ARCHITECTURE")


def _one_input(arch, inputs):
    if len(inputs) != 1:
        raise ModelError(f"the {arch} architecture takes one source ({len(inputs)} given); "
                         "use m3 for an image and a time series", "TRAIN_SOURCE2")
    return inputs[0]


def _conv(keras, x, filters, k=3, padding="valid"):
    x = keras.layers.Conv2D(filters, k, padding=padding, use_bias=False)(x)
    x = keras.layers.BatchNormalization()(x)
    return keras.layers.Activation("relu")(x)


def _cnn(keras, inputs, k, stats):
    name, size, bands = _one_input("cnn", inputs)
    x_in = keras.Input((size, size, bands), name=name)
    x = _norm(keras, x_in, name, stats[0])
    x = _conv(keras, x, 32, 3, "same")
    if size >= 8:
        x = keras.layers.MaxPooling2D(2)(x)
    x = _conv(keras, x, 64, 3, "same")
    if size >= 16:
        x = keras.layers.MaxPooling2D(2)(x)
    x = _conv(keras, x, 64, 3, "same")
    x = keras.layers.GlobalAveragePooling2D()(x)
    x = keras.layers.Dropout(0.3)(x)
    out = keras.layers.Dense(k, activation="softmax", name="probabilities")(x)
    model = keras.Model({name: x_in}, out, name="cnn")
    return model, model, {"rfields": [size], "efield": 1, "fully_conv": False}


def _fcn(keras, inputs, k, stats):
    name, size, bands = _one_input("fcn", inputs)
    if size < 5:
        raise ModelError("the fcn architecture needs patches of at least 5 pixels",
                         "TRAIN_SOURCE1")
    x_in = keras.Input((None, None, bands), name=name)
    x = _norm(keras, x_in, name, stats[0])
    left, filters = size, 32
    while left > 5:
        x = _conv(keras, x, filters)
        left -= 2
        filters = min(128, filters * 2)
    x = _conv(keras, x, filters, left)           # down to 1 x 1 for a patch of `size`
    x = keras.layers.Dropout(0.3)(x)             # as the cnn: fewer swings, less overfit
    x = keras.layers.Conv2D(k, 1, name="logits")(x)
    out = keras.layers.Softmax(name="probabilities")(x)
    core = keras.Model({name: x_in}, out, name="core")
    p_in = keras.Input((size, size, bands), name=name)
    flat = keras.layers.Reshape((k,), name="per_patch")(core({name: p_in}))
    model = keras.Model({name: p_in}, flat, name="fcn")
    return model, core, {"rfields": [size], "efield": 1, "fully_conv": True}


def _unet(keras, inputs, k, stats):
    name, size, bands = _one_input("unet", inputs)
    if size % 8:
        raise ModelError(f"the unet architecture needs patch sizes that are multiples of 8 "
                         f"(got {size})", "TRAIN_SOURCE1")
    x_in = keras.Input((size, size, bands), name=name)
    x = _norm(keras, x_in, name, stats[0])
    skips, filters = [], 32
    for _ in range(3):
        x = _conv(keras, x, filters, 3, "same")
        skips.append(x)
        x = keras.layers.MaxPooling2D(2)(x)
        filters *= 2
    x = _conv(keras, x, filters, 3, "same")
    for skip in reversed(skips):
        filters //= 2
        x = keras.layers.Conv2DTranspose(filters, 2, strides=2)(x)
        x = keras.layers.Concatenate()([x, skip])
        x = _conv(keras, x, filters, 3, "same")
    out = keras.layers.Conv2D(k, 1, activation="softmax", name="probabilities")(x)
    model = keras.Model({name: x_in}, out, name="unet")
    return model, model, {"rfields": [size], "efield": size // 2, "fully_conv": False,
                          "crop": size // 4}


def _m3(keras, inputs, k, stats):
    if len(inputs) != 2:
        raise ModelError("the m3 architecture takes two sources: image patches (SOURCE1) and "
                         "a pixel time series (SOURCE2, patch size 1, one band per date)",
                         "TRAIN_SOURCE2")
    (n1, s1, b1), (n2, s2, b2) = inputs
    if s2 != 1:
        raise ModelError(f"the time series (SOURCE2) must have patches of 1 pixel (got {s2})",
                         "TRAIN_SOURCE2")
    a_in = keras.Input((s1, s1, b1), name=n1)
    a = _norm(keras, a_in, n1, stats[0])
    a = _conv(keras, a, 32, 3, "same")
    a = _conv(keras, a, 64, 3, "same")
    a = keras.layers.GlobalAveragePooling2D()(a)
    t_in = keras.Input((1, 1, b2), name=n2)
    t = _norm(keras, t_in, n2, stats[1])
    t = keras.layers.Reshape((b2, 1))(t)
    t = keras.layers.GRU(64)(t)
    x = keras.layers.Concatenate()([a, t])
    x = keras.layers.Dense(64, activation="relu")(x)
    x = keras.layers.Dropout(0.3)(x)
    out = keras.layers.Dense(k, activation="softmax", name="probabilities")(x)
    model = keras.Model({n1: a_in, n2: t_in}, out, name="m3")
    return model, model, {"rfields": [s1, 1], "efield": 1, "fully_conv": False}

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
- ``m3``: an M3-style fusion net: a CNN branch on image patches (source 1) and a recurrent
  (GRU) branch on a pixel time series (source 2, one band per date), fused before the
  classifier.
"""
from dataclasses import dataclass
from typing import Any, Callable, Dict, Optional, Sequence, Tuple

from ..errors import ModelError, check_choice


@dataclass(frozen=True)
class Architecture:
    label: str
    #: (keras, inputs, number of classes, statistics, the inputs' parameters) ->
    #: (train_model, core, serving)
    build: Callable[..., Any]


def _norm(keras, x, name, stats):
    mean, var = stats
    return keras.layers.Normalization(mean=mean, variance=var, name=f"{name}_norm")(x)


def build(arch: str, keras: Any, inputs: Sequence[Tuple[str, int, int]], n_classes: int,
          stats: Sequence[Any], seed: int = 0,
          params: Optional[Sequence[Optional[str]]] = None) -> Tuple[Any, Any, Dict[str, Any]]:
    """inputs: [(name, patch size, bands)], stats: per input (mean, variance) per band;
    params: the parameter of each input, which errors name (default: none)."""
    check(arch)
    keras.utils.set_random_seed(seed)
    params = list(params or []) + [None] * (max(len(inputs), 2) - len(params or []))
    return ARCHITECTURES[arch].build(keras, inputs, n_classes, stats, params)


def check(arch: str, param: Optional[str] = None) -> None:
    """An error (naming `param`) unless `arch` is one of ARCHITECTURES."""
    check_choice(arch, list(ARCHITECTURES), param, "architecture")


def _one_input(arch, inputs, params):
    if len(inputs) != 1:
        raise ModelError(f"the {arch} architecture takes one source ({len(inputs)} given); "
                         "use m3 for an image and a time series", params[1])
    return inputs[0]


def _conv(keras, x, filters, k=3, padding="valid"):
    x = keras.layers.Conv2D(filters, k, padding=padding, use_bias=False)(x)
    x = keras.layers.BatchNormalization()(x)
    return keras.layers.Activation("relu")(x)


def _cnn(keras, inputs, k, stats, params):
    name, size, bands = _one_input("cnn", inputs, params)
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


def _fcn(keras, inputs, k, stats, params):
    name, size, bands = _one_input("fcn", inputs, params)
    if size < 5:
        raise ModelError("the fcn architecture needs patches of at least 5 pixels",
                         params[0])
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


def _unet(keras, inputs, k, stats, params):
    name, size, bands = _one_input("unet", inputs, params)
    if size % 8:
        raise ModelError(f"the unet architecture needs patch sizes that are multiples of 8 "
                         f"(got {size})", params[0])
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


def _m3(keras, inputs, k, stats, params):
    if len(inputs) != 2:
        raise ModelError("the m3 architecture takes two sources: image patches (the first) "
                         "and a pixel time series (the second, patch size 1, one band per "
                         "date)", params[1])
    (n1, s1, b1), (n2, s2, b2) = inputs
    if s2 != 1:
        raise ModelError(f"the time series (the second source) must have patches of 1 pixel "
                         f"(got {s2})", params[1])
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


#: the built-in architectures, by the name scripts give (ARCHITECTURE=fcn), in the
#: dialog's order; a new one is one entry and its builder. Old scripts gave an index in
#: this order (ARCHITECTURE=1): new entries go at the end.
ARCHITECTURES: Dict[str, Architecture] = {
    "cnn": Architecture("cnn: small patch-based CNN", _cnn),
    "fcn": Architecture("fcn: fully convolutional (fast to serve)", _fcn),
    "unet": Architecture("unet: U-Net for dense labels", _unet),
    "m3": Architecture("m3: image patches + pixel time series (CNN and GRU)", _m3),
}

"""Where the Keras class of a layer name comes from, and how it is constructed.

The one place that turns a catalogued layer name into a Keras object. Each origin the
catalogue knows (``spec/catalog.Entry.origin``) is resolved here and nowhere else:

- ``keras``: ``keras.layers.<Name>``;
- ``applications``: ``applications.<Function>`` is the model ``keras.applications.
  <Function>(input_shape=..., **kwargs)`` used as one layer; its input shape is the
  tensor's it will be called on. ImageNet weights are downloaded once into the Keras
  cache (``$KERAS_HOME/models``, by default ``~/.keras/models``); a download that fails
  is a ``DataError`` (exit 3) naming the model and the cache folder;
- ``keras_hub``: ``keras_hub.layers.<Name>``, imported only when a pipeline uses one
  (about a second); without keras-hub installed, a ``UsageError`` (exit 2) says which
  extra to install;
- the pipeline's imported classes for ``module.Name``.
"""

from __future__ import annotations

import contextlib
import contextvars
import os
import stat
import traceback
import weakref
from typing import Any, Iterator, Optional

from kerapipe.compiler import backend  # noqa: F401  (imports TensorFlow quietly)
import keras

from kerapipe.errors import DataError, UsageError
from kerapipe.spec.applications import PREFIX as APPLICATIONS_PREFIX
from kerapipe.spec.catalog import load_catalog
from kerapipe.spec.model import is_custom_name

HUB_EXTRA = 'pip install "kerapipe[hub]"'

# Inside `shapes_only()`, backbones are built without their pretrained weights: a check
# of shapes (validate --deep) never downloads.
_SHAPES_ONLY: contextvars.ContextVar[bool] = contextvars.ContextVar("kerapipe_shapes_only",
                                                                    default=False)


@contextlib.contextmanager
def shapes_only() -> Iterator[None]:
    """Within the block, layers are built for their shapes only: a backbone gets
    ``weights=None`` (the same layers and shapes, nothing downloaded)."""
    token = _SHAPES_ONLY.set(True)
    try:
        yield
    finally:
        _SHAPES_ONLY.reset(token)


def construct_layer(name: str, kwargs: dict, custom: Optional[dict[str, Any]] = None,
                    input_shape: Optional[tuple] = None) -> Any:
    """A new layer of the class ``name`` names, from keyword arguments already resolved.

    Args:
        name: the layer's name in the file (`Dense`, `applications.ResNet50`,
            `TransformerEncoder`, `module.Name`).
        kwargs: its keyword arguments (nested layers already built).
        custom: the pipeline's imported classes by ``module.Name``.
        input_shape: the shape (batch axis first) of the tensor it will be called on,
            when known. Only backbones use it.

    Raises:
        DataError: a backbone's weights cannot be downloaded, or its weights file refers
            to other files (``check_weights_file``).
        UsageError: a keras-hub layer without keras-hub installed.
    """
    if is_custom_name(name):
        return (custom or {})[name](**kwargs)
    if name.startswith(APPLICATIONS_PREFIX):
        return construct_backbone(name, kwargs, input_shape)
    entry = load_catalog().layers.get(name)
    if entry is not None and entry.origin == "keras_hub":
        return hub_class(name)(**kwargs)
    return getattr(keras.layers, name)(**kwargs)


def hub_class(name: str) -> type:
    """The class ``keras_hub.layers.<name>``; a keras-hub without it (older than the one
    the catalogue was read from) is a ``UsageError`` saying which version has it."""
    layers = hub_layers(name)
    cls = getattr(layers, name, None)
    if cls is None:
        import keras_hub

        known = load_catalog().keras_hub_version
        raise UsageError(f"layer '{name}' is not in the installed keras-hub "
                         f"{keras_hub.__version__}; kerapipe knows it from keras-hub {known}. "
                         f'Upgrade it: pip install --upgrade "keras-hub>={known}"')
    return cls


def hub_layers(name: str) -> Any:
    """``keras_hub.layers``, imported now (``name``: the layer that needs it)."""
    try:
        import keras_hub
    except ImportError as err:
        raise UsageError(f"layer '{name}' comes from keras-hub, which is not installed "
                         f"here ({err}). Install it with: {HUB_EXTRA}") from None
    return keras_hub.layers


def import_layer_packages(spec: Any) -> None:
    """Import the optional packages the layers of ``spec`` (a ``PipelineSpec``) come
    from: keras-hub, for a saved model that holds a keras-hub layer (Keras's loader would
    otherwise fail with "could not locate class"). ``UsageError`` when it is missing."""
    from kerapipe.spec.checks import every_layer

    layers = load_catalog().layers
    for _, layer in every_layer(spec):
        entry = layers.get(layer.name)
        if entry is not None and entry.origin == "keras_hub":
            hub_layers(layer.name)
            return


def construct_backbone(name: str, kwargs: dict, input_shape: Optional[tuple]) -> Any:
    """The ``keras.applications`` model ``name`` names, for inputs of ``input_shape``.

    A download of its weights that fails (offline, a proxy, a corrupted file) is a
    ``DataError`` naming the model and the Keras cache folder; a file already in the
    cache is used without the network (``keras.utils.get_file`` looks there first).
    """
    function = getattr(keras.applications, name[len(APPLICATIONS_PREFIX):])
    if _SHAPES_ONLY.get():
        kwargs = {**kwargs, "weights": None}
    weights = kwargs.get("weights", "imagenet")
    if isinstance(weights, str) and weights != "imagenet":  # a file (compiler.build resolved it)
        check_weights_file(name, weights)
    if input_shape is not None:
        kwargs = {**kwargs, "input_shape": tuple(input_shape[1:])}
    try:
        model = function(**kwargs)
    except Exception as err:
        download = _failed_download(err)
        if download is None:
            raise
        raise DataError(_download_message(name, kwargs.get("weights", "imagenet"), download,
                                          err)) from err
    _keep_loaded_weights(model, kwargs.get("weights", "imagenet"))
    return model


# What a backbone loaded (ImageNet's or a file's weights) while its variables were not
# allocated yet (``compiler.build`` builds a model inside a StatelessScope that defers
# them, to refuse one too large before allocating): Keras's assignments went to that
# scope, not to the variables, and would be lost when the variables get their initial
# values. ``restore_loaded_weights`` gives them to the variables then.
_LOADED: "weakref.WeakKeyDictionary[Any, list]" = weakref.WeakKeyDictionary()


def _keep_loaded_weights(model: Any, weights: Any) -> None:
    from keras.src.backend.common.stateless_scope import get_stateless_scope

    scope = get_stateless_scope()
    if weights is None or scope is None or scope.initialize_variables:
        return  # random weights, or variables that hold what Keras loaded already
    loaded = [(variable, scope.get_current_value(variable)) for variable in model.weights]
    _LOADED[model] = [(variable, value) for variable, value in loaded if value is not None]


def restore_loaded_weights(allocated: list) -> None:
    """Assign what each backbone loaded while its variables were deferred
    (``_keep_loaded_weights``) to those variables, once ``allocated`` (the variables just
    given their initial values, outside the StatelessScope) holds them all."""
    ids = {id(variable) for variable in allocated}
    for model in list(_LOADED):
        pairs = _LOADED[model]
        if all(id(variable) in ids for variable, _ in pairs):
            del _LOADED[model]
            for variable, value in pairs:
                variable.assign(value)


# Objects a weights file may hold before it is refused unread: a real backbone's file has
# a few thousand groups and datasets; a hostile one could hold millions of links.
MAX_WEIGHTS_OBJECTS = 200_000


def check_weights_file(name: str, path: str) -> None:
    """Refuse a backbone's weights file that would make HDF5 read another file.

    HDF5 follows what the file says: an external link opens another HDF5 file, a
    dataset with external storage reads its bytes from any file (``/etc/passwd``,
    ``~/.ssh/id_rsa``), and a virtual dataset maps other files; Keras would load those
    bytes into the weights and the run would save them in ``model.keras``. ``path`` is
    inside the pipeline's folder already (``compiler.build``); what it refers to is
    checked here, before Keras opens it, without following any of it.

    Raises:
        DataError: the file is not a regular HDF5 file, refers to another file, or
            holds more than ``MAX_WEIGHTS_OBJECTS`` objects.
    """
    import h5py

    problem = None
    try:
        if not stat.S_ISREG(os.stat(path).st_mode):  # a FIFO would block the reader
            problem = "it is not a regular file"
        elif not h5py.is_hdf5(path):
            problem = "it is not an HDF5 file (Keras's .h5 or .weights.h5 weights format)"
        else:
            with h5py.File(path, "r") as handle:
                problem = _outside_reference(handle)
    except OSError as err:  # not there, unreadable, a folder
        problem = f"it cannot be read ({err.strerror or err})"
    if problem is not None:
        raise DataError(f"{name}: the weights file {path} cannot be used: {problem}. Give the "
                        "weights as one .weights.h5 file saved by Keras (save_weights), "
                        "inside the pipeline's folder, or use `weights: imagenet` or `weights: "
                        "null`.")


def _outside_reference(handle: Any) -> Optional[str]:
    """What in an open HDF5 file refers to another file, or ``None``: links are read
    without being followed (``getlink=True``), each object visited once."""
    import h5py

    pending, seen, count = [handle], set(), 0
    while pending:
        group = pending.pop()
        for key in group:
            count += 1
            if count > MAX_WEIGHTS_OBJECTS:
                return f"it holds more than {MAX_WEIGHTS_OBJECTS:,} objects"
            where = f"{group.name.rstrip('/')}/{key}"
            link = group.get(key, getlink=True)
            if isinstance(link, h5py.ExternalLink):
                return f"{where} is a link to another file ({link.filename})"
            if isinstance(link, h5py.SoftLink):
                continue  # a path inside this file: its target is visited where it is
            if not isinstance(link, h5py.HardLink):
                return f"{where} is a link of a kind kerapipe does not follow"
            item = group[key]
            if isinstance(item, h5py.Dataset):
                if item.is_virtual:
                    return f"{where} is a virtual dataset (it maps other files)"
                if item.id.get_create_plist().get_external_count():
                    return f"{where} keeps its values in another file (external storage)"
            elif isinstance(item, h5py.Group) and hash(item.id) not in seen:
                seen.add(hash(item.id))
                pending.append(item)
    return None


def _failed_download(err: BaseException) -> Optional[dict]:
    """The locals of ``keras.utils.get_file`` if ``err`` was raised inside it (where Keras
    fetches and checks the weights file), else None."""
    from keras.src.utils import file_utils

    code = file_utils.get_file.__code__
    for frame, _ in traceback.walk_tb(err.__traceback__):
        if frame.f_code is code:
            return dict(frame.f_locals)
    return None


def _download_message(name: str, weights: Any, download: dict, err: BaseException) -> str:
    folder = download.get("datadir") or "~/.keras/models"
    fname = download.get("fname") or "its weights file"
    origin = download.get("origin") or ""
    reason = str(err).replace(f" on {origin}", "").strip().splitlines()[0][:300]
    source = f" from {origin}" if origin else ""
    return (f"{name} (weights: {weights}) needs its weights file {fname}, which is not in "
            f"the Keras cache {folder}, and downloading it failed ({reason}). Run once with "
            f"network access (Keras keeps the file in {folder}; KERAS_HOME sets another "
            f"cache than ~/.keras), or copy the file there{source}, or set `weights: null` "
            "to train from random weights.")

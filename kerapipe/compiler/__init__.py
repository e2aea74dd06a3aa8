"""The compile side: a typed spec -> plain Keras objects (model, losses, optimizers, ...).

Nothing on the spec side imports this package. Importing the package itself loads no
TensorFlow: the modules that need TensorFlow or Keras import
``kerapipe.compiler.backend`` first, which picks the TensorFlow backend and imports
TensorFlow with its C++ start-up log silenced (see that module for why it must be the
first import); the others (``splits``, the file readers) stay light.
"""

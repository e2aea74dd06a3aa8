"""The compile side: a typed spec -> plain Keras objects (model, losses, optimizers, ...).

Modules here import Keras; nothing on the spec side imports them. Importing this
package picks the TensorFlow backend and quiets TensorFlow's C++ start-up log unless
the user chose otherwise.
"""

import os

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")  # level 2 still lets absl start-up lines through

"""TensorFlow 1.x as this project uses it: tensorflow.compat.v1 in graph mode, with TensorFlow's logs quiet."""
import os

os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')  # before TensorFlow loads: keep its C++ info lines quiet

import tensorflow.compat.v1 as tf  # noqa: E402

tf.logging.set_verbosity(tf.logging.ERROR)
tf.disable_v2_behavior()

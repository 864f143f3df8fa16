"""The FCN-8s decoder's layers: 1x1 class scores and bilinear-initialised transposed convolutions, with L2 terms."""
import numpy as np

from fcn8s.tf1 import tf


def bilinear_upsample_kernel(size, channels):
    """[size, size, channels, channels] float32 kernel that upsamples each channel bilinearly on its own."""
    factor = (size + 1) // 2
    centre = factor - 1 if size % 2 == 1 else factor - 0.5
    ramp = 1 - np.abs(np.arange(size) - centre) / factor
    kernel = np.zeros((size, size, channels, channels), np.float32)
    kernel[:, :, range(channels), range(channels)] = np.outer(ramp, ramp)[..., None]
    return kernel


def decoder_kernel(shape, initializer, l2_scale):
    """The 'weights' variable of a decoder layer, its L2 term l2_scale * sum(w**2) / 2 in REGULARIZATION_LOSSES."""
    kernel = tf.get_variable('weights', shape, initializer=initializer)
    tf.add_to_collection(tf.GraphKeys.REGULARIZATION_LOSSES,
                         tf.multiply(l2_scale, tf.nn.l2_loss(kernel), name='l2_loss'))
    return kernel


def score(features, num_classes, name, init_stddev, l2_scale):
    """1x1 convolution [b, h, w, c] -> [b, h, w, num_classes] class scores."""
    with tf.variable_scope(name):
        kernel = decoder_kernel([1, 1, features.shape[-1], num_classes],
                                tf.random_normal_initializer(stddev=init_stddev), l2_scale)
        bias = tf.get_variable('biases', [num_classes], initializer=tf.zeros_initializer())
        return tf.nn.bias_add(tf.nn.conv2d(features, kernel, 1, 'SAME'), bias)


def upscore(scores, factor, name, l2_scale, like=None):
    """Transposed convolution (kernel 2*factor, stride factor, bilinear init) of [b, h, w, c] scores.

    Returns [b, height, width, c] at the spatial size of the features `like`, or at factor times the
    size of scores when like is None.
    """
    num_classes = scores.shape[-1]
    like, times = (scores, factor) if like is None else (like, 1)
    static_hw = [None if size is None else size * times for size in like.shape.as_list()[1:3]]
    with tf.variable_scope(name):
        kernel = decoder_kernel(None, bilinear_upsample_kernel(2 * factor, num_classes), l2_scale)
        output_shape = tf.concat([tf.shape(scores)[:1], tf.shape(like)[1:3] * times, [num_classes]], axis=0)
        upscored = tf.nn.conv2d_transpose(scores, kernel, output_shape, factor, 'SAME')
    upscored.set_shape([scores.shape[0], *static_hw, num_classes])
    return upscored

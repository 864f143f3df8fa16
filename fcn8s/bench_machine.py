"""What bench knows of the machine: its measured matmul peak, the FLOPs of a graph's convolutions, its description."""
import os

import numpy as np

from fcn8s.bench_pipeline import seconds_of
from fcn8s.precision import available_precisions, cpu_info, gpu_details
from fcn8s.tf1 import tf

# The n x n matrix products (2 n**3 FLOP each) whose fastest measures the machine's peak: which n runs best
# depends on the machine's caches and its load. On a big GPU they are small enough for launch overheads to
# count, so there the peak is an underestimate.
MATMUL_PROBE_SIZES = (1024, 2048, 3072)
MATMUL_DTYPES = {'fp16': tf.float16, 'bf16': tf.bfloat16, 'fp32': tf.float32}
# A training step costs about three forward passes: the pass itself, then the gradients with respect to the
# activations and with respect to the weights, each about as many multiply-adds as the pass.
TRAIN_FLOP_PER_FORWARD_FLOP = 3


def matmul_peak_gflops(precision, sizes=MATMUL_PROBE_SIZES, repeats=3):
    """The machine's measured peak in GFLOP/s at precision: its fastest n x n matrix product, n in sizes.

    Each size runs once untimed, then `repeats` times; the fastest run of the fastest size counts. The
    operands are variables of precision's dtype (fp32 float32, bf16 bfloat16, fp16 float16), in a
    session of TensorFlow's defaults, on the device TensorFlow places them (a GPU if there is one).
    """
    with tf.Graph().as_default(), tf.Session() as sess:
        product_sums = {}
        for size in sizes:
            left, right = (tf.Variable(tf.cast(tf.random.normal([size, size]), MATMUL_DTYPES[precision]))
                           for _ in range(2))
            product_sums[size] = tf.reduce_sum(tf.cast(tf.matmul(left, right), tf.float32))  # a scalar fetch
        sess.run(tf.global_variables_initializer())
        gflops = []
        for size, product_sum in product_sums.items():
            sess.run(product_sum)
            gflops.append(2 * size ** 3 / min(seconds_of(sess.run, product_sum) for _ in range(repeats)) / 1e9)
    return max(gflops)


def conv_gflop_per_image(sess, image_input, keep_prob, image_shape):
    """GFLOP of one image's forward pass through the convolutions of sess's graph: 2 x their multiply-adds.

    Counted from the graph: every Conv2D, and every Conv2DBackpropInput outside the gradients (the
    decoder's transposed convolutions), sized by a batch-1 pass at image_shape (height, width). A
    convolution makes (its output's height x width) x (kernel height x width x in x out channels)
    multiply-adds; a transposed one the same with its input's height x width. ReLU, pooling and the
    loss are left out: they are under 1% of the work.
    """
    convolutions = [op for op in sess.graph.get_operations()
                    if op.type in ('Conv2D', 'Conv2DBackpropInput') and not op.name.startswith('gradients')]
    slid_over = [op.outputs[0] if op.type == 'Conv2D' else op.inputs[2] for op in convolutions]
    kernels = [op.inputs[1] for op in convolutions]
    shapes = sess.run([tf.shape(tensor) for tensor in slid_over + kernels],
                      {image_input: np.zeros((1, *image_shape, 3), np.float32), keep_prob: 1.0})
    multiply_adds = sum(np.prod(slid_shape[1:3], dtype=np.int64) * np.prod(kernel_shape, dtype=np.int64)
                        for slid_shape, kernel_shape in zip(shapes[:len(convolutions)], shapes[len(convolutions):]))
    return 2 * float(multiply_adds) / 1e9


def machine_description():
    """What the bench ran on: CPU model, cores and vector flags, GPUs, TensorFlow version, available precisions."""
    cpu = cpu_info()
    return {
        'cpu': cpu.get('model name', 'unknown'),
        'cpu_cores': os.cpu_count(),
        'cpu_vector_flags': sorted(flag for flag in cpu.get('flags', '').split() if flag.startswith(('avx', 'amx'))),
        'gpus': [details['device_name'] for details in gpu_details()],
        'tensorflow': tf.version.VERSION,
        'available_precisions': list(available_precisions()),
    }

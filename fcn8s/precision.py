"""The arithmetic a session computes in (fp32, bf16, fp16): what this machine runs fast, and the session's config."""
import os

from tensorflow.core.protobuf import rewriter_config_pb2

from fcn8s.tf1 import tf

# The arithmetic a session can run (session_config), and for whom each is fast (available_precisions).
PRECISION_NOTES = {
    'fp16': 'float16 mixed precision (the CUDA graph rewrite, with dynamic loss scaling) on an NVIDIA GPU of '
            'compute capability 7.0 or newer',
    'bf16': "bfloat16 mixed precision (oneDNN's graph rewrite) on a CPU with AVX-512 BF16 and no GPU",
    'fp32': 'float32 throughout, on any machine',
}
PRECISIONS = tuple(PRECISION_NOTES)  # fastest first


def cpu_info(cpuinfo_path='/proc/cpuinfo'):
    """{field: value} of the first processor in /proc/cpuinfo ('model name', 'flags', ...); {} where there is none."""
    if not os.path.exists(cpuinfo_path):
        return {}
    fields = {}
    with open(cpuinfo_path) as cpuinfo:
        for line in cpuinfo:
            if not line.strip():
                break
            name, _, value = line.partition(':')
            fields[name.strip()] = value.strip()
    return fields


def gpu_details():
    """[{'device_name': ..., 'compute_capability': (major, minor), ...}] of each GPU TensorFlow sees."""
    return [{'device_name': gpu.name, **tf.config.experimental.get_device_details(gpu)}
            for gpu in tf.config.list_physical_devices('GPU')]


def gpu_compute_capabilities():
    """[(major, minor)] compute capability of each GPU TensorFlow sees."""
    return [details.get('compute_capability', (0, 0)) for details in gpu_details()]


def available_precisions():
    """The precisions of PRECISIONS that are fast on this machine, fastest first; fp32 is always there.

    fp16 needs an NVIDIA GPU of compute capability 7.0 (Volta) or newer, as TensorFlow's float16 rewrite
    does. bf16 needs the CPU flag avx512_bf16, oneDNN left on (TF_ENABLE_ONEDNN_OPTS not 0) and no GPU:
    oneDNN's bfloat16 rewrite converts only the ops placed on the CPU, and TensorFlow has no bfloat16
    rewrite for GPUs.
    """
    capabilities = gpu_compute_capabilities()
    if capabilities:
        return ('fp16', 'fp32') if max(capabilities) >= (7, 0) else ('fp32',)
    bf16_ready = ('avx512_bf16' in cpu_info().get('flags', '').split()
                  and os.environ.get('TF_ENABLE_ONEDNN_OPTS', '1') != '0')
    return ('bf16', 'fp32') if bf16_ready else ('fp32',)


def resolve_precision(requested):
    """The precision to run for requested, one of PRECISIONS or 'auto' (the fastest available here).

    Raises ValueError naming what the requested precision needs and what this machine offers.
    """
    available = available_precisions()
    if requested == 'auto':
        return available[0]
    if requested not in available:
        raise ValueError(f'--precision {requested} means {PRECISION_NOTES[requested]}, which this machine cannot '
                         f"run fast. It offers {', '.join(available)}: use --precision auto ({available[0]}).")
    return requested


def session_config(precision):
    """The tf.ConfigProto of a session that computes at precision, one of PRECISIONS (resolved, not 'auto').

    bf16 turns on oneDNN's bfloat16 auto-mixed-precision graph rewrite; fp16 the CUDA float16 one, whose
    training needs loss scaling (main.optimize(..., loss_scaling=True)); fp32 keeps TensorFlow's defaults.
    """
    if precision not in PRECISIONS:
        raise ValueError(f'precision {precision!r} is none of {PRECISIONS}; resolve_precision turns auto into one')
    proto = tf.ConfigProto()
    rewrite_options = proto.graph_options.rewrite_options
    if precision == 'bf16':
        rewrite_options.auto_mixed_precision_onednn_bfloat16 = rewriter_config_pb2.RewriterConfig.ON
    elif precision == 'fp16':
        rewrite_options.auto_mixed_precision = rewriter_config_pb2.RewriterConfig.ON
    return proto

"""The arithmetic a session computes in (fp32, bf16, fp16): what this machine runs fast, and the session's config."""
import os

from tensorflow.core.protobuf import rewriter_config_pb2

from fcn8s.errors import SettingError
from fcn8s.precision_names import PRECISION_NOTES, PRECISIONS
from fcn8s.tf1 import tf


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


def unavailable_reasons(workers=1):
    """{precision: why this machine cannot run it fast} of the PRECISIONS it lacks; fp32 is never there.

    fp16 needs an NVIDIA GPU of compute capability 7.0 (Volta) or newer, as TensorFlow's float16 rewrite
    does. bf16 needs the CPU flag avx512_bf16, oneDNN left on (TF_ENABLE_ONEDNN_OPTS not 0) and no GPU:
    oneDNN's bfloat16 rewrite converts only the ops placed on the CPU, and TensorFlow has no bfloat16
    rewrite for GPUs; and one process: with several workers (tf.distribute), a session on a worker's server
    runs the rewritten graph without oneDNN's kernels and fails.
    """
    capabilities = gpu_compute_capabilities()
    reasons = {}
    if not capabilities:
        reasons['fp16'] = 'TensorFlow sees no GPU here'
    elif max(capabilities) < (7, 0):
        reasons['fp16'] = (f'the newest GPU TensorFlow sees has compute capability '
                           f"{'.'.join(map(str, max(capabilities)))}, below 7.0")
    if capabilities:
        reasons['bf16'] = 'TensorFlow places the ops on the GPU here, which oneDNN does not rewrite'
    elif 'avx512_bf16' not in cpu_info().get('flags', '').split():
        reasons['bf16'] = 'this CPU lacks AVX-512 BF16 (no avx512_bf16 flag in /proc/cpuinfo)'
    elif os.environ.get('TF_ENABLE_ONEDNN_OPTS', '1') == '0':
        reasons['bf16'] = ('the environment variable TF_ENABLE_ONEDNN_OPTS=0 turns oneDNN off; unset it '
                           '(or set it to 1) to run bf16 on this CPU')
    elif workers > 1:
        reasons['bf16'] = (f'this run has {workers} workers, and on a worker\'s server TensorFlow 2.21 runs the '
                           'bfloat16 graph without oneDNN\'s kernels ("_FusedConv2D: bfloat16 is not in the list of '
                           'allowed values")')
    return reasons


def available_precisions(reasons=None):
    """The precisions of PRECISIONS that are fast on this machine, fastest first: all but those of reasons
    (default: unavailable_reasons()); fp32 is always there."""
    reasons = unavailable_reasons() if reasons is None else reasons
    return tuple(precision for precision in PRECISIONS if precision not in reasons)


def resolve_precision(requested, workers=1):
    """The precision to run for requested, one of PRECISIONS or 'auto' (the fastest available here, for a run of
    that many workers).

    Raises SettingError naming what the requested precision needs, why this machine cannot run it and what
    it offers.
    """
    reasons = unavailable_reasons(workers)
    available = available_precisions(reasons)
    if requested == 'auto':
        return available[0]
    if requested in reasons:
        raise SettingError(f'--precision {requested} means {PRECISION_NOTES[requested]}, which this machine cannot '
                           f"run fast: {reasons[requested]}. It offers {', '.join(available)}: use --precision auto "
                           f'({available[0]}).')
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

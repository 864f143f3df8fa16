"""The arithmetic a session can compute in, by name, and for whom each is fast: for the command lines and settings,
without TensorFlow (fcn8s.precision makes the sessions)."""

# The arithmetic a session can run (precision.session_config), and for whom each is fast (available_precisions).
PRECISION_NOTES = {
    'fp16': 'float16 mixed precision (the CUDA graph rewrite, with dynamic loss scaling) on an NVIDIA GPU of '
            'compute capability 7.0 or newer',
    'bf16': "bfloat16 mixed precision (oneDNN's graph rewrite) on a CPU with AVX-512 BF16 and no GPU",
    'fp32': 'float32 throughout, on any machine',
}
PRECISIONS = tuple(PRECISION_NOTES)  # fastest first

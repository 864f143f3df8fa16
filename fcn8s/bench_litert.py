"""bench's LiteRT figures: the int8 and fp32 .tflite files' inference speed beside the SavedModel's, and file sizes."""
import dataclasses
import os

import numpy as np

from fcn8s.config import TrainConfig
from fcn8s.datasets import DATASETS
from fcn8s.images import load_image
from fcn8s.litert import open_interpreter, run_network
from fcn8s.litert_export import export_tflite
from fcn8s.predict import export_model
from fcn8s.tf1 import tf

LITERT_PRECISIONS = {'int8': 'int8', 'fp32': 'none'}  # what bench measures: precision -> export's --quantize


@dataclasses.dataclass
class LiteRTSubject:
    """A .tflite file that bench times as it times its other subjects' inference (bench.time_inference)."""
    name: str          # 'litert_int8' or 'litert_fp32'
    infer: object      # infer(batch_size): the road probability of batch_size network-size images in memory
    file_bytes: int    # the size of the .tflite file


def folder_bytes(folder):
    """Bytes of all the files under folder."""
    return sum(os.path.getsize(os.path.join(root, name)) for root, _, names in os.walk(folder) for name in names)


def open_litert_subjects(vgg_path, pairs, options, build_graph, work_dir):
    """([LiteRTSubject int8, fp32], bytes of the SavedModel) of an FCN-8s on the VGG16 at vgg_path.

    build_graph (main.build_graph) makes the FCN-8s in float32 with the classic settings and a fresh
    decoder; export_model writes it to work_dir/model, and export_tflite that to
    work_dir/model_<precision>.tflite, int8 calibrated on the images of pairs [(image path, label path)].
    Each interpreter uses every core. bench opens these first: converting the real VGG16 takes several GB.
    """
    image_shape = (options.image_height, options.image_width)
    model_dir = os.path.join(work_dir, 'model')
    with tf.Graph().as_default(), tf.Session() as sess:
        fcn = build_graph(sess, vgg_path, TrainConfig(), 'fp32')
        export_model(sess, fcn.image_input, fcn.keep_prob, fcn.logits, image_shape, model_dir, DATASETS['kitti_road'])
    image_paths = [image_path for image_path, _ in pairs]
    network_images = np.stack([load_image(image_path, image_shape) for image_path in image_paths]).astype(np.float32)
    subjects = []
    for precision, quantization in LITERT_PRECISIONS.items():
        tflite_path = os.path.join(work_dir, f'model_{precision}.tflite')
        print(f'Exporting the LiteRT {precision} model to {tflite_path}')
        export_tflite(model_dir, DATASETS['kitti_road'], image_shape, tflite_path, quantization, image_paths)
        interpreter, _ = open_interpreter(tflite_path)
        subjects.append(LiteRTSubject(f'litert_{precision}',
                                      lambda batch_size, interpreter=interpreter: run_network(
                                          interpreter, network_images[:batch_size]),
                                      os.path.getsize(tflite_path)))
    return subjects, folder_bytes(model_dir)


def litert_figures(inference_times, savedmodel_name, litert_subjects, savedmodel_bytes):
    """bench's 'litert' entry: images/s at each batch size and file MB of the SavedModel (run as savedmodel_name) and
    of each LiteRT subject, and each LiteRT subject's speedup over the SavedModel.

    inference_times: {batch_size: {subject name: [seconds per call]}}, from one interleaved timing.
    """
    sizes = {savedmodel_name: savedmodel_bytes, **{subject.name: subject.file_bytes for subject in litert_subjects}}
    figures = {name: {'file_mb': size / 1e6, **{f'infer_b{batch_size}_images_per_s': batch_size / float(np.median(
        times[name])) for batch_size, times in inference_times.items()}} for name, size in sizes.items()}
    for subject in litert_subjects:
        figures[subject.name].update({
            f'speedup_b{batch_size}': figures[subject.name][f'infer_b{batch_size}_images_per_s']
            / figures[savedmodel_name][f'infer_b{batch_size}_images_per_s'] for batch_size in inference_times})
    return {'savedmodel': savedmodel_name, 'threads': os.cpu_count(), 'modes': figures}


def format_litert(litert):
    """Text rows of bench's 'litert' entry: images/s, file size and speedup of each mode."""
    batch_sizes = sorted(int(key[len('infer_b'):-len('_images_per_s')])
                         for key in litert['modes'][litert['savedmodel']] if key.startswith('infer_b'))
    lines = [f"Inference of the network alone, interleaved: the SavedModel's network ({litert['savedmodel']}) and the "
             f"LiteRT files ({litert['threads']} threads)",
             f"{'mode':16}" + ''.join(f"{f'b{batch_size} img/s':>12}" for batch_size in batch_sizes)
             + f"{'file MB':>10}" + ''.join(f"{f'speedup b{batch_size}':>13}" for batch_size in batch_sizes)]
    for name, figures in litert['modes'].items():
        lines.append(f'{name:16}' + ''.join(f"{figures[f'infer_b{batch_size}_images_per_s']:12.3f}"
                                            for batch_size in batch_sizes) + f"{figures['file_mb']:10.1f}"
                     + ''.join(f"{figures.get(f'speedup_b{batch_size}', 1.0):12.2f}x" for batch_size in batch_sizes))
    return '\n'.join(lines)

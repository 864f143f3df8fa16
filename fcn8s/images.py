"""Image files: finding and pairing them, reading them, predicting them in batches, and writing the results, one
output per input (each dataset paints its own, as fcn8s.kitti.results does; videos: fcn8s.video)."""
import collections
import os

import numpy as np
from PIL import Image

from fcn8s.errors import DataError, SettingError
from fcn8s.files import written_whole
from fcn8s.png import check_png_pixels

OVERLAY_ALPHA = 127 / 255
IMAGE_EXTENSIONS = ('.png', '.jpg', '.jpeg')  # what `main.py infer` takes from a folder
# PIL's modes of 16-bit grey pixels (a 16-bit grey PNG opens as I;16, in old Pillow as I), which convert('RGB') clips
# to 255: to_rgb scales them instead.
SIXTEEN_BIT_GREY_MODES = ('I;16', 'I;16B', 'I;16L', 'I;16N', 'I')
SIXTEEN_BIT_TO_EIGHT = 257  # 65535 / 255: 16-bit grey value / 257, rounded, is its 8-bit value
# PIL mode -> (what its pixels are, how to_rgb makes them RGB): the modes PIL opens PNG and JPEG files in.
RGB_CONVERSIONS = {
    '1': ('1-bit black and white', 'repeated into R, G, B as 0 and 255'),
    'L': ('8-bit grey', 'repeated into R, G, B'),
    'LA': ('8-bit grey with alpha', 'repeated into R, G, B; alpha dropped'),
    'P': ('palette', 'looked up in the palette; transparency dropped'),
    'RGBA': ('RGB with alpha', 'alpha dropped'),
    'CMYK': ('CMYK', "converted by PIL's formula, without a colour profile"),
    **{mode: ('16-bit grey', f'scaled to 8 bits (value / {SIXTEEN_BIT_TO_EIGHT}) and repeated into R, G, B')
       for mode in SIXTEEN_BIT_GREY_MODES},
}


def to_rgb(image):
    """An opened PIL image as an RGB PIL image, of the same size, as rgb_conversion(image.mode) describes.

    16-bit grey: value / 257, rounded (0..65535 -> 0..255), into R, G and B; any other mode: PIL's convert('RGB').
    """
    if image.mode in SIXTEEN_BIT_GREY_MODES:
        grey = np.clip(np.rint(np.asarray(image) / SIXTEEN_BIT_TO_EIGHT), 0, 255).astype(np.uint8)
        return Image.fromarray(np.repeat(grey[..., None], 3, axis=-1))
    return image.convert('RGB')


def rgb_conversion(mode):
    """(what a PIL mode's pixels are, how to_rgb makes them RGB), such as ('8-bit grey', 'repeated into R, G, B')."""
    return RGB_CONVERSIONS.get(mode, (mode, "converted by PIL's convert('RGB')"))


def load_image(path, image_shape=None, resample=Image.BILINEAR):
    """Read an image file as [height, width, 3] uint8 RGB (to_rgb), resized to image_shape (height, width) if given.

    Raises DataError naming the file when it cannot be decoded, or is a PNG whose pixel data ends early.
    """
    try:
        check_png_pixels(path)
        with Image.open(path) as opened:
            image = to_rgb(opened)
            if image_shape is not None:
                image = image.resize((image_shape[1], image_shape[0]), resample)
            return np.asarray(image)
    except (OSError, SyntaxError) as error:
        raise DataError(f'cannot read image {path}: {error}. Replace or delete the file.') from error


def image_shape_of(path):
    """(height, width) of an image file, read from its header; raises DataError naming a file that is not an image."""
    try:
        with Image.open(path) as opened:
            return opened.height, opened.width
    except (OSError, SyntaxError) as error:
        raise DataError(f'cannot read image {path}: {error}. Replace or delete the file.') from error


def is_under(path, folder):
    """Whether path is folder or lies inside it, their real paths compared (links resolved)."""
    return os.path.join(os.path.realpath(path), '').startswith(os.path.join(os.path.realpath(folder), ''))


def list_image_files(paths, output_dir=None):
    """The image files that paths name, each once: each file as given, and the PNG and JPEG files of each folder
    and of all its subfolders (such as Cityscapes' leftImg8bit/<split>/<city>/), in path order.

    A file named twice (given, and in a folder given) is listed once; a folder's files under output_dir (the
    results of an earlier run written inside an input folder) are left out. Raises SettingError naming a
    path that does not exist or a folder that holds no such image, at any depth.
    """
    image_paths = []
    for path in paths:
        if os.path.isdir(path):
            found = sorted(os.path.join(folder, name) for folder, _, names in os.walk(path)
                           if output_dir is None or not is_under(folder, output_dir)
                           for name in names if name.lower().endswith(IMAGE_EXTENSIONS))
            if not found:
                raise SettingError(f'{path} holds no image ({", ".join(IMAGE_EXTENSIONS)}), nor do its subfolders')
            image_paths += found
        elif os.path.isfile(path):
            image_paths.append(path)
        else:
            raise SettingError(f'{path} does not exist: give PNG or JPEG images, or folders of them')
    first_path_of_file = {}
    for path in image_paths:
        first_path_of_file.setdefault(os.path.realpath(path), path)
    return list(first_path_of_file.values())


def files_by_key(folder, key_of_name):
    """{key: path} of the files under folder, subfolders too, whose name key_of_name maps to a key (not None).

    Raises SettingError when folder does not exist, DataError naming the files when two have one key.
    """
    if not os.path.isdir(folder):
        raise SettingError(f'{folder} does not exist or is not a folder')
    paths_of_key = collections.defaultdict(list)
    for parent, _, names in sorted(os.walk(folder)):
        for name in sorted(names):
            key = key_of_name(name)
            if key is not None:
                paths_of_key[key].append(os.path.join(parent, name))
    twins = [paths for paths in paths_of_key.values() if len(paths) > 1]
    if twins:
        raise DataError(f'files of the same image under {folder}, which cannot both be paired: '
                        + '; '.join(' and '.join(paths) for paths in twins) + '. Keep one of each.')
    return {key: paths[0] for key, paths in paths_of_key.items()}


def pair_images_with_labels(image_dir, label_dir, image_name, label_name, image_form, advice):
    """[(image path, label path)], sorted by image path: each image under image_dir (subfolders too) whose name
    the regular expression image_name matches, with the label under label_dir whose name label_name matches
    with the same groups (such as category and number).

    image_form describes the images' names, advice where they are. Raises SettingError when image_dir holds
    no such image, DataError when an image has no label or when two images or two labels share their groups.
    """
    image_paths, label_paths = (files_by_key(folder, lambda name: (match := pattern.match(name)) and match.groups())
                                for folder, pattern in ((image_dir, image_name), (label_dir, label_name)))
    if not image_paths:
        raise SettingError(f'no {image_form} was found in {image_dir} or its subfolders: {advice}')
    unlabelled = sorted(image_paths[key] for key in image_paths.keys() - label_paths.keys())
    if unlabelled:
        raise DataError(f'{len(unlabelled)} images have no label under {label_dir} or its subfolders: '
                        f'{", ".join(unlabelled)}. Add their labels, or score a folder of labelled images.')
    return sorted((image_path, label_paths[key]) for key, image_path in image_paths.items())


def benchmark_output_names(image_paths, output_name_of, image_form, advice):
    """[output_name_of(path)] of each image, the benchmark's name for its result; checked before predicting.

    output_name_of raises ValueError for a path not named like the benchmark's images (image_form). Raises
    SettingError naming the first few such images, or saying that none of them is named so (advice: where the
    right ones are), and when two images would have one name (require_distinct_outputs).
    """
    output_names, misnamed = [], []
    for path in image_paths:
        try:
            output_names.append(output_name_of(path))
        except ValueError:
            misnamed.append(path)
    if misnamed:
        first_few = ', '.join(misnamed[:3]) + (f' and {len(misnamed) - 3} more' if len(misnamed) > 3 else '')
        found = (f'no {image_form} was found among the {len(image_paths)} images given' if len(misnamed) == len(
            image_paths) else f'{len(misnamed)} of {len(image_paths)} images are not named {image_form}')
        raise SettingError(f'{found} ({first_few}), so the benchmark has no name for their results: {advice}')
    require_distinct_outputs(image_paths, output_names)
    return output_names


def require_distinct_outputs(image_paths, output_names):
    """Raise SettingError naming every group of images whose outputs, output_names[i] of image_paths[i], share a name.

    Called before anything is predicted, so that each input gets its own output and none overwrites another's.
    """
    inputs_of_name = collections.defaultdict(list)
    for image_path, output_name in zip(image_paths, output_names):
        inputs_of_name[output_name].append(image_path)
    clashes = {name: inputs for name, inputs in inputs_of_name.items() if len(inputs) > 1}
    if clashes:
        raise SettingError('input images whose outputs would share a name, so that one would overwrite another: '
                           + '; '.join(f'{" and ".join(inputs)} would write the same {name}'
                                       for name, inputs in sorted(clashes.items()))
                           + '. Give images with distinct file names, or infer each folder into its own --out.')


def result_stems(image_paths):
    """[file name without extension] of each image, which names its results (overlays/<stem>.png, masks/...).

    Raises SettingError, before anything is predicted, when two images share one (require_distinct_outputs).
    """
    stems = [os.path.splitext(os.path.basename(path))[0] for path in image_paths]
    require_distinct_outputs(image_paths, [stem + '.png' for stem in stems])
    return stems


def predict_image_files(predict, image_paths, batch_size=8):
    """Yield (path, image [h, w, 3] uint8 RGB, road_prob [h, w] float32) of each image file, batch_size per predict call.

    predict is a road predictor (fcn8s.predict): a list of images of any sizes -> their road probabilities.
    """
    for start in range(0, len(image_paths), batch_size):
        batch_paths = image_paths[start:start + batch_size]
        images = [load_image(path) for path in batch_paths]
        yield from zip(batch_paths, images, predict(images))


def save_png(pixels, path):
    """Write pixels ([h, w] or [h, w, 3] uint8) as the PNG file path, making its folder: whole, or not at all.

    A write that fails (a full disk) leaves no file at path and no partial one.
    """
    os.makedirs(os.path.dirname(path) or '.', exist_ok=True)
    with written_whole(path, discard_partial_on_error=True) as partial_path:
        Image.fromarray(pixels).save(partial_path, format='PNG')

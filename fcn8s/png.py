"""PNG files checked whole: the pixel data that a PNG's header promises is all there.

PIL decodes a PNG whose compressed pixel data ends early (every chunk and checksum intact, the zlib stream
closed) without a word, the missing rows black. check_png_pixels inflates the IDAT chunks and compares their
length with what the header's size, bit depth, colour type and interlacing need.
"""
import struct
import zlib

from fcn8s.errors import DataError

PNG_SIGNATURE = b'\x89PNG\r\n\x1a\n'
PNG_CHANNELS = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}  # colour type -> samples a pixel
# (first column, first row, column step, row step) of each of Adam7's seven passes over an interlaced image
ADAM7_PASSES = ((0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2), (0, 1, 1, 2))


def png_rows_bytes(width, height, bits_per_pixel, interlaced):
    """The bytes of a PNG's filtered rows (a filter byte + the row's pixels, per row of every Adam7 pass)."""
    passes = ADAM7_PASSES if interlaced else ((0, 0, 1, 1),)
    total = 0
    for x0, y0, dx, dy in passes:
        pass_width, pass_height = -(-(width - x0) // dx), -(-(height - y0) // dy)
        if pass_width > 0 and pass_height > 0:
            total += pass_height * (1 + -(-pass_width * bits_per_pixel // 8))
    return total


def check_png_pixels(path):
    """Raise DataError naming a PNG file whose pixel data ends before its last row.

    PIL decodes such a file without a word (its chunks and checksums may be intact), the missing rows black: the
    IDAT chunks are inflated here and their length compared with what IHDR's size, depth and colour type need.
    Files that are not PNG pass.
    """
    with open(path, 'rb') as image_file:
        data = image_file.read()
    if not data.startswith(PNG_SIGNATURE):
        return
    header, pixel_data, position = None, bytearray(), len(PNG_SIGNATURE)
    while position + 8 <= len(data):
        length, kind = struct.unpack('>I4s', data[position:position + 8])
        body = data[position + 8:position + 8 + length]
        header = body if kind == b'IHDR' else header
        pixel_data += body if kind == b'IDAT' else b''
        position += 12 + length
    if header is None or len(header) < 13:
        raise DataError(f'{path} has no PNG header (IHDR): it is damaged. Replace it with a good copy, or remove it.')
    width, height, depth, colour_type, _, _, interlace = struct.unpack('>IIBBBBB', header[:13])
    expected = png_rows_bytes(width, height, depth * PNG_CHANNELS.get(colour_type, 1), interlace == 1)
    try:
        found = len(zlib.decompressobj().decompress(bytes(pixel_data), expected + 1))
    except zlib.error as error:
        raise DataError(f'{path} has pixel data that cannot be inflated ({error}): it is damaged. Replace it with a '
                        'good copy, or remove it (and its label).') from error
    if found < expected:
        raise DataError(f'{path} holds {found} of the {expected} bytes of pixel data that its {width}x{height} '
                        f'pixels need: it ends after about row {found * height // expected}, and the rows after it '
                        "would be read as black. Replace it with a good copy from the dataset's zip, or remove it "
                        '(and its label).')

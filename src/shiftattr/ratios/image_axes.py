"""Refusing image axes that ``spatial_dims`` most likely misreads.

An image estimator reads a case of shape ``(*spatial)`` or ``(channels, *spatial)``
with ``spatial_dims`` spatial axes. Told the wrong number, it still runs: a 16³
volume read with ``spatial_dims=2`` is 16 channels of 16×16 slices, and 2-channel 2D
images ``(2, H, W)`` read with ``spatial_dims=3`` are volumes 2 voxels deep. The
estimates are then of another problem, and nothing says so; these shapes are refused
instead, with the value to pass.
"""

from __future__ import annotations

__all__ = ["MAX_IMAGE_CHANNELS", "THIN_VOLUME_DEPTH", "check_image_axes"]

#: Most channels one image node may have; more is taken for a misread ``spatial_dims``.
MAX_IMAGE_CHANNELS = 8
#: A volume at most this many voxels deep, and four times as wide, is taken for a
#: misread ``spatial_dims`` (channels read as slices).
THIN_VOLUME_DEPTH = 4


def check_image_axes(node: str, shape: tuple[int, ...], spatial_dims: int) -> None:
    """Refuse one node's case shape if ``spatial_dims`` most likely misreads it.

    Parameters
    ----------
    node : str
        The node's name, for the message.
    shape : tuple of int
        The shape of one case, ``(*spatial)`` or ``(channels, *spatial)``.
    spatial_dims : int
        The number of spatial axes the estimator was given.

    Raises
    ------
    ValueError
        With 2 or more axes but fewer than ``spatial_dims`` (2D images under the default
        3), or more than ``spatial_dims + 1`` (multi-channel volumes read as 2D); with
        more than :data:`MAX_IMAGE_CHANNELS` channels (a volume's slices read as
        channels), or for volumes at most :data:`THIN_VOLUME_DEPTH` voxels deep and
        four times as wide (2D images' channels read as slices); the message says which
        ``spatial_dims`` to pass.

    Examples
    --------
    >>> check_image_axes("X", (2, 16, 16), spatial_dims=2)   # 2 channels of 16×16
    >>> check_image_axes("X", (16, 16, 16), spatial_dims=2)
    Traceback (most recent call last):
    ...
    ValueError: node 'X' has cases of shape (16, 16, 16): with spatial_dims=2 that is 16 channels of 16×16 images. If its cases are 3D volumes, pass spatial_dims=3; images with more than 8 channels are refused as a likely misread.
    """
    if 2 <= len(shape) < spatial_dims:
        raise ValueError(
            f"node {node!r} has cases of shape {shape}, fewer axes than spatial_dims="
            f"{spatial_dims}: if they are {len(shape)}D images, pass spatial_dims={len(shape)}."
        )
    if len(shape) > spatial_dims + 1:
        raise ValueError(
            f"node {node!r} has cases of shape {shape}, more axes than (channels, *spatial) "
            f"with spatial_dims={spatial_dims}: if they are {len(shape) - 1}D volumes of "
            f"{shape[0]} channel(s), pass spatial_dims={len(shape) - 1}."
        )
    if len(shape) == spatial_dims + 1 and shape[0] > MAX_IMAGE_CHANNELS:
        grid = "×".join(map(str, shape[1:]))
        raise ValueError(
            f"node {node!r} has cases of shape {shape}: with spatial_dims={spatial_dims} "
            f"that is {shape[0]} channels of {grid} images. If its cases are "
            f"{len(shape)}D volumes, pass spatial_dims={len(shape)}; images with more than "
            f"{MAX_IMAGE_CHANNELS} channels are refused as a likely misread."
        )
    if len(shape) == spatial_dims == 3:
        depth, rest = shape[0], min(shape[1:])
        if depth <= THIN_VOLUME_DEPTH and 4 * depth <= rest:
            raise ValueError(
                f"node {node!r} has cases of shape {shape}: with spatial_dims=3 these are "
                f"volumes only {depth} voxel(s) deep. If they are 2D images with {depth} "
                "channel(s), pass spatial_dims=2; a volume this thin is also best given "
                "that way, its slices as channels."
            )

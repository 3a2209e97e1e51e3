"""How a model meets a large input, behind one shape (MONAI's inferers): ``inferer(inputs, model)`` returns the
merged output.

- ``tiles.TiledDetector``: 2D detection on overlapping tiles, merged with class-wise NMS.
- ``instance_tiles.TiledInstances``: instance masks on overlapping tiles, objects merged across tile borders.
- ``tta.DetectionTTA``: detection on flipped / transposed views, fused with weighted boxes fusion.
- ``sliding_window.SlidingWindow`` (MONAI's ``SlidingWindowInferer``, Gaussian blending) and
  ``sliding_window.ScanSegmenter``: 3D windows, and whole scans segmented back onto their own grid.

Import the submodule you need: ``sliding_window`` brings in MONAI, which 2D detection does without."""

"""The camera demo in the browser: the same face tracking, alignment and generator as ``edge_demo``, in JavaScript.

``index.html`` with ``app.js`` (camera, photo, styles, the ``window.kerasAsym`` test hook), ``pipeline.js``
(MediaPipe's face detector, the face mesh and the generator on LiteRT.js, the tracker) and ``align.js`` (the
alignment geometry of ``edge_demo.runtime``). ``page`` turns them and a ``.tflite`` generator into a servable folder
and serves it with the headers WebAssembly needs (``build`` and ``serve`` are its commands); ``headless`` drives the
page in headless Chromium for the tests and ``benchmarks/web_fps.py``.
"""

"""``keras-asym <command> [flags]``: one console entry point for every command of the project.

Each command is still its own module (``python -m keras_asym.draw ...`` works
as before); this finds the module by name and imports only the one chosen.
"""

from __future__ import annotations

import importlib
import sys

from edge_demo.runtime import cli

# name -> (module with ``main(argv)``, one line for the listing)
COMMANDS = {
    "draw": ("keras_asym.draw", "draw photos in the three styles (or a mixture) with a .keras/.tflite generator"),
    "import-official": ("keras_asym.import_official", "the authors' PyTorch checkpoints -> .keras models (no torch needed)"),
    "prepare": ("keras_asym.prepare", "photos + drawings -> an aligned training dataset with part masks and style vectors"),
    "train": ("keras_asym.train", "train the asymmetric cycle model with keras.Model.fit (resumable)"),
    "evaluate": ("keras_asym.evaluate", "score a run: paired metrics, style accuracy, hidden information"),
    "distill": ("keras_asym.distill", "distil a generator into the mobile generator"),
    "export": ("export.__main__", "a generator -> SavedModel + TFLite variants, checked"),
    "camera": ("edge_demo.__main__", "the live camera demo (TensorFlow-free)"),
    "gpu-check": ("edge_demo.runtime.gpu_check", "run a .tflite on LiteRT's GPU accelerator and print the verdict"),
    "demo": ("keras_asym.demo", "the built-in end-to-end run (what make demo runs)"),
    "style": ("keras_asym.style", "train the drawing-style classifier and write style vectors"),
    "generate": ("keras_asym.generate", "write a procedural portrait dataset"),
    "align": ("keras_asym.align", "align faces to the official 512x512 template"),
    "landmarks": ("keras_asym.landmarks", "print the 5 alignment points of every face, as JSON"),
}
PLAIN_ARGV = {"gpu-check"}  # takes file names, not absl flags

# The most resident memory (MB) a command may reach before it refuses an input or skips a bad item: every file
# is checked against limits derived from what the command needs before anything large is allocated. TensorFlow's
# own start-up takes about 0.6 GB of it, LiteRT's about 0.1 GB. benchmarks/hostile_inputs.py holds each command to
# its budget on a corpus of bombs and damaged files (the peak counts every child the command waits for).
_TENSORFLOW_COMMAND_MB = 1536
MEMORY_BUDGET_MB = {name: _TENSORFLOW_COMMAND_MB for name in COMMANDS} | {"camera": 512, "gpu-check": 512}  # TensorFlow-free


def usage() -> str:
    width = max(map(len, COMMANDS))
    rows = "\n".join(f"  {name.ljust(width)}  {text}" for name, (_, text) in COMMANDS.items())
    return f"usage: keras-asym <command> [flags]   (keras-asym <command> --helpshort for its flags)\n\ncommands:\n{rows}\n"


def main() -> None:
    args = sys.argv[1:]
    if not args or args[0] in ("-h", "--help", "--helpshort", "help"):
        print(usage())
        sys.exit(cli.OK)
    name, rest = args[0], args[1:]
    if name not in COMMANDS:
        print(f"keras-asym: error: unknown command {name!r}.\n\n{usage()}", file=sys.stderr)
        sys.exit(cli.BAD_INPUT)
    module = importlib.import_module(COMMANDS[name][0])
    if name in PLAIN_ARGV:
        sys.exit(module.main(rest))
    sys.argv = [COMMANDS[name][0], *rest]  # absl's --helpshort lists the flags of the module named here
    cli.run(module.main)


if __name__ == "__main__":
    main()

"""Peak memory of writing the image cache: the project's streaming writer against stacking in RAM.

Usage (from the project root):

    .venv/bin/python benchmarks/cache_memory.py [--images 4000] [--size 192]

Each writer runs in its own child process on the same procedural images (made one at a
time, as decoding would), and the child's peak RSS is read from getrusage after it exits:

1. Streaming: grocer.imagecache.save_cache fed by a generator, as the `cache` stage feeds it
   from the decoding pool: each image is appended to the .npy file as it comes.
2. Stacked: the images collected in a list, np.stack-ed and np.save-d (how the stage wrote
   the cache before the streaming writer).

Prints the cache size and both peaks; the streaming peak should stay near the
interpreter's baseline whatever --images is.
"""

from __future__ import annotations

import argparse
import resource
import subprocess
import sys
import tempfile

CHILD = """
import sys
import numpy as np
from pathlib import Path
from grocer.imagecache import save_cache

mode, n, size, out = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), Path(sys.argv[4])

def images():
    rng = np.random.default_rng(0)
    for _ in range(n):
        yield rng.integers(0, 256, (size, size, 3), dtype=np.uint8)

ids = [f"id{i}" for i in range(n)]
if mode == "streaming":
    save_cache(out, images(), ids, iter([]), [], size, "0" * 64)
else:
    out.mkdir()
    np.save(out / "train.npy", np.stack(list(images())))
"""


def peak_rss_mib(mode: str, images: int, size: int, directory: str) -> float:
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    subprocess.run([sys.executable, "-c", CHILD, mode, str(images), str(size), f"{directory}/{mode}"], check=True)
    after = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    if after <= before:  # ru_maxrss of children is the largest child so far: run the larger one last
        raise RuntimeError("run the streaming writer before the stacked one")
    return after / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=4000)
    parser.add_argument("--size", type=int, default=192)
    args = parser.parse_args()
    cache_mib = args.images * args.size * args.size * 3 / 2**20
    with tempfile.TemporaryDirectory() as directory:
        streaming = peak_rss_mib("streaming", args.images, args.size, directory)
        stacked = peak_rss_mib("stacked", args.images, args.size, directory)
    print(f"cache: {args.images} images at {args.size}px = {cache_mib:.0f} MiB")
    print(f"peak RSS, streaming writer (save_cache): {streaming:.0f} MiB")
    print(f"peak RSS, list + np.stack + np.save:     {stacked:.0f} MiB")


if __name__ == "__main__":
    main()

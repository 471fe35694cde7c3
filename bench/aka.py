"""5G HE authentication vectors per second, pure function, one core.

Runs `fiveg_he_vector` for about three seconds (at most 100,000 vectors) with
seeded RANDs made ahead of time, so only the vector computation is timed. The
last line printed is one JSON object for scripts.
"""

import json
import random
import time

from ztsim.aka.kdf import serving_network_name
from ztsim.aka.milenage import Milenage
from ztsim.aka.vectors import fiveg_he_vector

MAX_VECTORS = 100_000
MAX_SECONDS = 3.0
BATCH = 1_000


def main() -> None:
    rng = random.Random(20261124)
    milenage = Milenage(rng.randbytes(16), rng.randbytes(16))
    snn = serving_network_name("001", "01")
    amf = b"\x80\x00"
    rands = [rng.randbytes(16) for _ in range(BATCH)]
    sqns = [(i + 1).to_bytes(6, "big") for i in range(BATCH)]
    for rand, sqn in zip(rands[:100], sqns[:100], strict=True):
        fiveg_he_vector(milenage, rand, sqn, amf, snn)  # warm-up
    done = 0
    start = time.perf_counter()
    elapsed = 0.0
    while done < MAX_VECTORS and elapsed < MAX_SECONDS:
        for rand, sqn in zip(rands, sqns, strict=True):
            fiveg_he_vector(milenage, rand, sqn, amf, snn)
        done += BATCH
        elapsed = time.perf_counter() - start
    rate = done / elapsed
    print(f"aka: {done} 5G HE vectors in {elapsed:.2f} s on one core: {rate:,.0f} vectors/s")
    print(json.dumps({"pure_vectors_per_s": round(rate)}))


if __name__ == "__main__":
    main()

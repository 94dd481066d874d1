"""Which HDF5 chunking and compression for ECAL (N, 25, 25, 25)? Measure size and read rates on real showers.

Showers come from GFlash (real, sparse calorimeter images). For each layout we measure the file size, the
sequential read rate (validation scans) and the random-batch read rate (training: 64 random sorted indices per
batch, as hpcgen.data.reader does). Repeats give median and min/max. Writes benchmarks/results/hdf5_layout.json.

    python benchmarks/bench_hdf5_layout.py [--n 512] [--repeats 5]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import h5py
import numpy as np

from bench_common import summarise, write_result

LAYOUTS = {
    "chunk1-none": dict(chunks=1),
    "chunk1-lzf-shuffle": dict(chunks=1, compression="lzf", shuffle=True),
    "chunk1-gzip1-shuffle": dict(chunks=1, compression="gzip", compression_opts=1, shuffle=True),
    "chunk1-gzip4-shuffle": dict(chunks=1, compression="gzip", compression_opts=4, shuffle=True),
    "chunk16-gzip1-shuffle": dict(chunks=16, compression="gzip", compression_opts=1, shuffle=True),
}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=512)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "hdf5_layout.json")
    args = ap.parse_args()

    from hpcgen.physics.calo_geometry import DEFAULT_GEOMETRY
    from hpcgen.seeding import stream
    from hpcgen.sim.calo_gflash import simulate_gflash

    rng = stream(1, 0)
    energies = np.exp(rng.uniform(np.log(10), np.log(500), args.n))
    ecal = simulate_gflash(energies, DEFAULT_GEOMETRY, rng).ecal_gev
    raw_mb = ecal.nbytes / 1e6
    print(f"config: n={args.n} showers (GFlash, log-uniform 10-500 GeV), raw {raw_mb:.1f} MB, "
          f"random batch {args.batch}, repeats {args.repeats}; nonzero cells {np.mean(ecal > 0):.1%}")
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for name, opts in LAYOUTS.items():
            path = Path(tmp) / f"{name}.h5"
            kw = dict(opts)
            chunks = (kw.pop("chunks"), 25, 25, 25)
            t0 = time.perf_counter()
            with h5py.File(path, "w") as h5:
                h5.create_dataset("ECAL", data=ecal, chunks=chunks, **kw)
            write_s = time.perf_counter() - t0
            seq, rnd = [], []
            for rep in range(args.repeats + 1):  # first pass is warm-up (page cache)
                with h5py.File(path, "r") as h5:
                    ds = h5["ECAL"]
                    t0 = time.perf_counter()
                    for s in range(0, args.n, 256):
                        ds[s:s + 256]
                    t_seq = time.perf_counter() - t0
                    idx = np.random.default_rng(rep).permutation(args.n)
                    t0 = time.perf_counter()
                    for b in range(0, args.n, args.batch):
                        ds[np.sort(idx[b:b + args.batch])]
                    t_rnd = time.perf_counter() - t0
                if rep:
                    seq.append(args.n / t_seq)
                    rnd.append(args.n / t_rnd)
            with h5py.File(path, "r") as h5:  # fidelity beside the speed: the layout must give the cells back exactly
                identical = bool(np.array_equal(h5["ECAL"][...], ecal))
            size_mb = path.stat().st_size / 1e6
            row = {"layout": name, "chunk_showers": chunks[0], "compression": opts.get("compression", "none"),
                   "file_mb": round(size_mb, 2), "ratio": round(raw_mb / size_mb, 1),
                   "write_showers_per_s": round(args.n / write_s, 1),
                   "seq_read_showers_per_s": summarise(seq), "random_batch_read_showers_per_s": summarise(rnd),
                   "read_back_bit_identical": identical}
            rows.append(row)
            print(f"{name:24s} {size_mb:7.2f} MB (x{raw_mb / size_mb:5.1f})  seq {row['seq_read_showers_per_s']['median']:8.0f}/s"
                  f"  random {row['random_batch_read_showers_per_s']['median']:8.0f}/s  write {row['write_showers_per_s']:7.0f}/s")
    write_result(args.out, "hdf5_layout",
                 {"n": args.n, "batch": args.batch, "repeats": args.repeats, "generator": "gflash"}, rows)


if __name__ == "__main__":
    main()

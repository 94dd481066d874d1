"""Benchmark harnesses of hpcgen: throughput at fidelity, training scaling with a calibrated model, kernel speed; results in the hpcgen.bench/1 JSON schema and reports made from those files alone."""
